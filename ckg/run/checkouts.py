"""Where each planned step's code lies on this host, and what that code was when it ran.

An artifact of a folder source runs in place; one of a Git or archive source runs from the
source's local copy, the clone or extraction cache that ingest filled (fetched again when it
is gone, and refused when its content is no longer what was ingested). :class:`Checkouts`
finds those copies once per command; :class:`Provenance` remembers, per artifact, what its
``Run`` records about the code (:mod:`ckg.run.provenance`).
"""

import json
from pathlib import Path

from ckg.core.errors import RunFailed
from ckg.graph.execution import artifact_sources
from ckg.run import provenance


class Checkouts:
    """The local folders of the artifacts one command runs.

    Parameters
    ----------
    store : GraphStore
        Where the artifacts' sources are recorded.
    home : Path
        ckg's home; Git and archive sources are copied under ``home/cache``.
    roots : dict, optional
        ``(location, ref, digest) -> local copy``, shared by the commands of one cluster
        worker so that a Git commit or an archive is fetched once per worker; a new dict
        when None.

    Attributes
    ----------
    states : dict
        ``local copy -> {"source_commit", "source_dirty"}`` of the Git copies whose state
        was seen when they were found: :class:`Provenance` need not run git for them.
    within : dict
        ``local copy -> folders`` (relative; "" for all of it) whose code that state is
        known to be: those of the steps planned from it when it was found unchanged.
    """

    def __init__(self, store, home: Path, roots: dict | None = None):
        self.store = store
        self.home = Path(home)
        self.roots: dict[tuple, str] = {} if roots is None else roots
        self.infos: dict[str, dict] = {}
        self.paths: dict[str, str] = {}
        self.states: dict[str, dict] = {}
        self.within: dict[str, tuple[str, ...]] = {}

    def load(self, steps) -> None:
        """Read the sources of those ``steps`` not read yet (one query)."""
        # Once each: a plan holds an artifact once per set of variations (23 steps, 6 uids).
        missing = list(dict.fromkeys(s.uid for s in steps if s.uid not in self.infos))
        self.paths.update((s.uid, (s.path or "").strip("/")) for s in steps)
        if missing:
            for row in artifact_sources(self.store, missing):
                self.infos[row["uid"]] = row

    def info(self, uid: str) -> dict:
        """What :func:`ckg.graph.execution.artifact_sources` gave for artifact ``uid``
        ({} when unknown)."""
        return self.infos.get(uid, {})

    def folder(self, step) -> Path:
        """The folder of ``step``'s artifact on this host."""
        return Path(self.root(step)) / (step.path or "")

    def root(self, step) -> str:
        """The folder of ``step``'s source on this host: a folder source's own location,
        else the local copy of its Git or archive source.

        Raises
        ------
        RunFailed
            No source is recorded for the step, or its content changed since it was
            ingested.
        """
        info = self.info(step.uid)
        if info.get("source_kind") == "dir":
            return info.get("location")
        return self._copy(step, info)

    def _copy(self, step, info: dict) -> str:
        from ckg.formats.git import last_checkout
        from ckg.formats.sources import open_source

        if not info.get("location"):
            raise RunFailed(f"{step.alias}: no source recorded for it; ingest it again")
        key = (info["location"], info.get("ref") or "", info.get("source_digest") or "")
        folder = self.paths.get(step.uid, "")
        if key not in self.roots or not self.covers(self.roots[key], folder):
            # One clone per location: fetching other content makes older entries stale.
            for stale in [k for k in self.roots if k[:2] == key[:2]]:
                del self.roots[stale]
            # A Git copy is checked in the folders of the steps planned from it alone, all
            # at once: what else it holds is not their code.
            same = [
                uid
                for uid, row in self.infos.items()
                if (row.get("location"), row.get("ref") or "") == key[:2]
            ]
            within = tuple(sorted({folder, *(self.paths[uid] for uid in same)}))
            tree = open_source(
                info["location"], ref=key[1] or None, cache=self.home / "cache", within=within
            )
            if info.get("source_digest") and tree.digest != info["source_digest"]:
                raise RunFailed(
                    f"{step.alias}: {info['location']} changed since it was ingested; "
                    "ingest it again"
                )
            self.roots[key] = str(tree.root)
            kept = last_checkout(tree.root) if tree.kind == "git" else None
            if kept and kept["commit"] == tree.commit:
                # The state the checkout was just found in (or git just reported), which its
                # steps run from: no git run again for the provenance.
                self.states[str(tree.root)] = {
                    "source_commit": tree.commit,
                    "source_dirty": kept["dirty"],
                }
                self.within[str(tree.root)] = within
        return self.roots[key]

    def covers(self, root: str, folder: str) -> bool:
        """Whether the state known of the copy ``root`` (:attr:`states`) is that of the code
        in its ``folder`` (relative, "/"-separated)."""
        return any(
            w in ("", folder) or folder.startswith(w + "/") for w in self.within.get(root, ())
        )

    def state(self, root: str, folder: Path) -> dict:
        """``{"source_commit", "source_dirty"}`` of the code in ``folder`` of the source copy
        ``root`` ({} when ``root`` is not a Git work tree): the state known of it, else
        what ``git`` reports (:func:`~ckg.run.provenance.source_state`), which holds for
        all of it."""
        try:
            inside = Path(folder).relative_to(root).as_posix()
        except ValueError:  # not in it: nothing known of it
            inside = None
        if inside == ".":
            inside = ""
        if root not in self.states or inside is None or not self.covers(root, inside):
            self.states[root] = provenance.source_state(root)
            self.within[root] = ("",)
        return self.states[root]


class Provenance:
    """What the runs of one command record about their code, worked out once per artifact.

    Parameters
    ----------
    checkouts : Checkouts
        Gives each artifact's source digest, and the Git states it already knows.
    home : Path
        ckg's home, where the lists of installed distributions are kept.
    """

    def __init__(self, checkouts: Checkouts, home: Path):
        self.checkouts = checkouts
        self.home = home
        self.done: dict[str, dict] = {}
        self.package_set = None

    def of(self, uid: str, root, folder: Path) -> dict:
        """The ``Run`` properties of a run of artifact ``uid`` whose source is at ``root``
        and whose folder is ``folder``: the source's Git state at run time
        (:func:`~ckg.run.provenance.source_state`), its ingested digest, and the manifest of
        the folder as executed and its digest."""
        if uid not in self.done:
            state = self.checkouts.state(str(root), folder) if root else {}
            manifest = provenance.folder_manifest(folder) if folder.is_dir() else {}
            self.done[uid] = {
                **state,
                "source_digest": self.checkouts.info(uid).get("source_digest") or "",
                "artifact_digest": provenance.manifest_digest(manifest),
                "artifact_files": json.dumps(manifest, sort_keys=True),
            }
        return self.done[uid]

    def link_packages(self, records, run_uid: str) -> None:
        """Add to ``records`` the edge from Run ``run_uid`` to the set of Python
        distributions of this interpreter, and that ``PackageSet`` node the first time
        (it never changes, so it is written once per command)."""
        from ckg.core.records import Edge

        if self.package_set is None:
            self.package_set = provenance.package_set_node(provenance.installed_packages(self.home))
            records.nodes.append(self.package_set)
        records.edges.append(
            Edge("WITH_PACKAGES", "Run", run_uid, "PackageSet", self.package_set.key)
        )
