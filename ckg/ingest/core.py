"""Ingest: a source in, its artifacts, variations and resolved dependencies in the graph.

The stages, each a plain value handed to the next:

1. :func:`ckg.formats.sources.open_source` gives a read-only tree and its provenance.
2. A stat of every file is compared with the source's manifest (``CKG_HOME/manifests``):
   an unchanged tree of a complete source stops here, having parsed and written nothing.
3. :func:`ckg.formats.detect.detect_formats` lists meta files ("units"); a unit whose size or
   mtime changed is hashed, and only units whose bytes changed are parsed, by the format's
   importer (``ckg.formats.<format>.read``).
4. Records are grouped per artifact and digested; only new or changed artifacts are written.
5. The store's ingest lock is taken (:func:`ckg.ingest.write.write_lock`; concurrent ingests
   into one store are serialised from here on, so each resolves against a graph no other is
   writing). Should another ingest of this same source have written since stage 2, the
   ingest starts again, the lock held. Dependencies of written artifacts are resolved with
   :func:`ckg.core.resolve.resolve` against every artifact in the graph (one query), the own
   source first.
6. Writes, in an order that lets a killed ingest be repaired: ``Source.complete`` set false,
   artifacts and edges merged, artifacts gone deleted, other sources' unresolved entries
   re-resolved, ``complete`` set true; then the manifest is saved. A source found incomplete
   (or without a manifest) is re-read whole and every artifact rewritten.
7. When anything was written, papers whose code links name this repository (its location or
   its Git ``origin``) get ``(Artifact)-[:IMPLEMENTS]->(Paper)``
   (:func:`ckg.ingest.link.link_code`), so results imported before the code find it too.
8. Entries of the source still missing are resolved again, under the lock, when an artifact
   now in the graph carries their tags: so does an ingest that found its source unchanged.
   The look (:func:`ckg.ingest.write.resolvable`, a scan of the artifacts) is made only
   when an ingest has written since the last one (the manifest keeps the graph's
   :func:`ckg.ingest.write.graph_mark`, one query over the sources).

A single results file (Papers with Code JSON, an MLPerf ``cm-result.json``, a results table)
skips these stages: it is read and written as ``ckg results import`` of it would be
(:func:`ckg.ingest.results.read_path`, :func:`ckg.ingest.results.write_source`), the same graph.
"""

import hashlib
import json
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath

from ckg.core.errors import InvalidInput, UsageError
from ckg.core.records import Dependency, Edge, Node, Problem, Records
from ckg.formats import importer
from ckg.formats.archives import Limits
from ckg.formats.files import open_file
from ckg.formats.sources import kind_of, open_source, source_uid, walk_files
from ckg.ingest.write import (
    count_resolution,
    graph_artifacts,
    graph_mark,
    mark_complete,
    resolvable,
    resolve_missing,
    write_lock,
    write_plan,
)

FORMATS = ("cm", "mlc", "ck", "ckg", "generic", "notebook", "container")
MANIFEST_VERSION = 1
Progress = Callable[[str, int, int], None]


@dataclass
class IngestSummary:
    """What one ingest found and did. ``unresolved`` lists missing and ambiguous entries;
    ``implements`` counts the ``IMPLEMENTS`` edges to papers added.

    A folder written by ``ckg export`` brings in runs, not artifacts: its summary has
    ``kind`` ``"runs"`` and what the import did in ``runs_imported``
    (:class:`ckg.transfer.runs.RunImport`; its counts are left at zero here), which
    :meth:`as_dict` then gives.
    """

    uid: str
    location: str
    kind: str
    commit: str = ""
    name: str = ""
    files: int = 0
    meta_files: int = 0
    parsed: int = 0
    new: int = 0
    changed: int = 0
    removed: int = 0
    unchanged: int = 0
    edges: int = 0
    missing: int = 0
    ambiguous: int = 0
    reresolved: int = 0
    renamed: int = 0
    implements: int = 0
    results: int = 0  # published results read from the source's files
    wrote: bool = False
    seconds: float = 0.0
    unresolved: list[dict] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    runs_imported: object | None = None  # a RunImport: transfer sits above ingest

    @property
    def artifacts(self) -> int:
        return self.new + self.changed + self.unchanged

    def __getattr__(self, name: str):
        # Deprecated: an export folder's ingest returned the RunImport itself until ckg 0.2;
        # its fields still read through, with a warning.
        imported = self.__dict__.get("runs_imported")
        if imported is None or name.startswith("_") or not hasattr(imported, name):
            raise AttributeError(name)
        warnings.warn(
            f"IngestSummary.{name} of an export folder: read IngestSummary.runs_imported.{name}",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(imported, name)

    def as_dict(self) -> dict:
        if self.runs_imported is not None:
            return self.runs_imported.as_dict()
        data = asdict(self)
        data["artifacts"] = self.artifacts
        data["warnings"] = [
            {"path": w.path, "line": w.line, "message": w.message} for w in self.warnings
        ]
        return data


class StrictFailure(InvalidInput):
    """``strict=True`` and the source gave warnings: nothing was written."""

    def __init__(self, summary: IngestSummary):
        self.summary = summary
        count = len(summary.warnings)
        super().__init__(f"{summary.location}: {count} warning(s) with --strict; nothing written")


@dataclass
class Group:
    """One artifact's records: its node, the nodes its edges reach, its edges and entries."""

    node: Node
    nodes: list[Node] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    deps: list[Dependency] = field(default_factory=list)

    def digest(self) -> str:
        body = [
            self.node.props,
            sorted((n.label, n.key, n.props) for n in self.nodes),
            sorted((e.type, e.dst_label, e.dst_key, e.props) for e in self.edges),
            [asdict(d) for d in self.deps],
        ]
        return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


def ingest(
    store,
    home: Path,
    source: str | Path,
    *,
    ref: str | None = None,
    name: str | None = None,
    fmt: str = "auto",
    strict: bool = False,
    progress: Progress | None = None,
    limits: Limits | None = None,
) -> IngestSummary:
    """Bring ``source`` into the graph of ``store``, writing only what changed.

    Parameters
    ----------
    store : GraphStore
        Read and written (under its ingest lock).
    home : Path
        ckg's home: the source's copies (``cache/``) and manifests (``manifests/``).
    source : str or Path
        A Git URL or repository, an archive (``.zip``, ``.whl``, ``.tar[.gz|.bz2|.xz]``,
        ``.tgz``), a folder, or a results file (:func:`_ingest_results_file`).
    ref : str, optional
        Branch, tag or commit of a Git source.
    name : str, optional
        A name stored on the ``Source`` node.
    fmt : str
        ``auto`` (every format detected, folder by folder) or one of :data:`FORMATS`.
    strict : bool
        Fail with :class:`StrictFailure` (nothing written) when there is any warning.
    progress : callable, optional
        Called as ``progress(stage, done, total)``, stage in ``files``, ``artifacts``, ``edges``.
    limits : Limits, optional
        Archive bounds (:meth:`ckg.formats.archives.Limits.from_env` when None).

    Returns
    -------
    IngestSummary

    Raises
    ------
    UsageError
        An unknown ``fmt``.
    NotFound, InvalidInput, UnsafeArchive
        From :func:`ckg.formats.sources.open_source`; :class:`StrictFailure` as said above.

    Examples
    --------
    >>> with ckg.open() as kg:                                  # doctest: +SKIP
    ...     summary = kg.ingest("https://github.com/mlcommons/cm4mlops", ref="main")
    >>> summary.new, summary.missing                            # doctest: +SKIP
    (352, 4)
    """
    if fmt != "auto" and fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r}: use auto, {', '.join(FORMATS)}")
    started = time.perf_counter()
    report = progress or (lambda stage, done, total: None)
    location, kind = _locate(source)
    if kind == "dir" and os.path.isfile(location):
        return _ingest_results_file(store, home, location, ref, name, fmt, strict, started)
    uid = source_uid(location, ref or "")
    manifest_file = _manifest_path(store, home, uid)
    seen = _Seen.load(store, uid, manifest_file)
    old, node = seen.manifest, seen.node
    trusted = seen.trusted(fmt)
    summary = IngestSummary(uid, location, kind, name=name or (node or {}).get("name", ""))

    archive_stat = None
    if kind in ("zip", "tar"):
        st = os.stat(location)
        archive_stat = [st.st_size, st.st_mtime_ns]
        if trusted and old["archive"] == archive_stat:
            return _finish_unchanged(
                store, summary, manifest_file, old, node, name, strict, started
            )
    tree = open_source(location, ref=ref, cache=Path(home) / "cache", limits=limits)
    summary.commit = tree.commit
    listing, refused = _listing(tree.root)
    summary.files = len(listing)
    listing_digest = _digest_listing(listing, refused)
    if trusted and old["listing"] == listing_digest and old["commit"] == tree.commit:
        if old["archive"] != archive_stat:  # an archive touched but not changed
            old["archive"] = archive_stat
            _save_manifest(manifest_file, old)
        # A remote added or changed since: the one provenance a clean tree can hide.
        moved = {k: v for k, v in tree.props().items() if node.get(k) != v}
        return _finish_unchanged(
            store, summary, manifest_file, old, node, name, strict, started, moved
        )

    state = _Reader(tree.root, uid, listing, old if trusted else None, fmt, report)
    state.read()
    if not listing:
        state.fmt_warnings["files"] = [
            [".", None, f"{tree.location} holds no files: nothing to ingest (the right folder?)"]
        ]
    summary.meta_files, summary.parsed = len(state.units), state.parsed
    summary.warnings = state.all_warnings()
    if strict and summary.warnings:
        raise StrictFailure(summary)
    moved = trusted and (
        bool(name and name != node.get("name"))
        or any(node.get(k) != v for k, v in tree.props().items())
    )
    if trusted and not moved and not state.changes():
        # Files changed but no artifact did (a script edited, a meta file touched): the
        # manifest is all there is to write, and the graph lock is not needed.
        _count_plan(summary, state.plan(None))
        mark = _settle_missing(store, summary, old.get("settled"))
        _ingest_results(store, tree.root, uid, summary)
        state.save(manifest_file, tree, archive_stat, listing_digest, fmt, mark)
        return _done(summary, started)
    with write_lock(store) as held:
        if not held.reentered and _Seen.load(store, uid, manifest_file, parse=False) != seen:
            # Another ingest of this source wrote after stage 2: what was read may undo part
            # of its work. Start again, keeping the lock (it is reentrant in this thread).
            options = dict(ref=ref, name=name, fmt=fmt, strict=strict, limits=limits)
            return ingest(store, home, source, progress=progress, **options)
        graph = graph_artifacts(store)
        state.claim_uids(graph)
        summary.renamed = state.renamed
        summary.warnings = state.all_warnings()  # with a line per uid clash
        own_before = {u for u, row in graph.items() if row["source_uid"] == uid}
        plan = state.plan(own_before if not trusted else None)
        _count_plan(summary, plan)
        source_props = {
            **tree.props(),
            "name": summary.name,
            "complete": False,
            "artifacts": summary.artifacts,
        }
        settled = False  # whether every entry of the source was resolved just now
        if plan.new or plan.changed or plan.removed or plan.shared.nodes or not trusted:
            summary.reresolved = write_plan(store, uid, source_props, plan, graph, report)
            settled = bool(plan.new or plan.changed)
            held.confirm()
            mark_complete(store, uid, source_props)
            summary.wrote = True
        elif moved:
            # Only provenance moved (a commit that touched no meta file, a new name).
            props = {**source_props, "complete": True}
            store.upsert_nodes("Source", [{"key": uid, "props": props}])
            summary.wrote = True
        if summary.wrote:
            summary.implements = _link_code(store, uid)
        mark = _settle_missing(store, summary, None, settled=settled, report=report)
        _ingest_results(store, tree.root, uid, summary)
        state.save(manifest_file, tree, archive_stat, listing_digest, fmt, mark)
        return _done(summary, started)


def _ingest_results_file(store, home, location, ref, name, fmt, strict, started) -> IngestSummary:
    """One results file, written as ``ckg results import`` of it writes it: its ``Source``
    (kind ``file``), its Results, its stale Results removed, papers linked to code."""
    from ckg.formats.results import KNOWN
    from ckg.ingest.link import link_code
    from ckg.ingest.results import read_path, write_source

    if ref:
        raise InvalidInput(f"--ref {ref!r} applies to Git sources only, not to {location}")
    if fmt != "auto":
        raise UsageError(f"{location} is a results file: --format {fmt} applies to artifacts")
    try:
        source, records = read_path(location, Path(home) / "cache")
    except InvalidInput:
        raise InvalidInput(
            f"{location} is neither a folder, a Git repository, an archive nor "
            f"a results file ({KNOWN})"
        ) from None
    summary = IngestSummary(
        source.key,
        location,
        "file",
        name=name or "",
        files=1,
        results=records.tally.results,
        warnings=list(records.warnings),
    )
    if strict and summary.warnings:
        raise StrictFailure(summary)
    if name:
        source.props["name"] = name
    write_source(store, source, records)
    summary.wrote = True
    summary.implements = link_code(store)
    return _done(summary, started)


def _ingest_results(store, root: Path, uid: str, summary: IngestSummary) -> None:
    """Published results in the source's files (Papers with Code, MLPerf, result tables):
    read and written as ``ckg results import`` would, and the results of this source that
    its files no longer hold removed. One door: a results repository ingests like any other.
    An unchanged source never gets here, so its results are not read again."""
    from ckg.formats import results as result_files

    found = result_files.detect(root)
    records = result_files.read(root, uid, found) if found else None
    if records is not None and records.nodes:
        store.write_records(records)
        summary.results = records.tally.results
        summary.warnings.extend(records.warnings)
        summary.wrote = True
    kept = [n.key for n in records.nodes if n.label == "Result"] if records else []
    if store.delete_unlisted("Result", uid, kept):
        summary.wrote = True


def _count_plan(summary: IngestSummary, plan: "_Plan") -> None:
    summary.new, summary.changed = len(plan.new), len(plan.changed)
    summary.removed, summary.unchanged = len(plan.removed), plan.unchanged


def _settle_missing(store, summary, known, *, settled=False, report=None) -> str | None:
    """Count edges and entries; resolve again the entries still missing that now match.

    Entries of the source left missing whose targets have come since (by an ingest that
    ran alongside this source's last one, say) are resolved under the lock. The look for
    such targets (:func:`ckg.ingest.write.resolvable`) is skipped when this ingest
    ``settled`` every entry of the source already, or when the graph's mark
    (:func:`ckg.ingest.write.graph_mark`) is still ``known``, the mark at which the
    manifest says no missing entry matched. Returns the mark for the manifest (None when
    nothing is missing).
    """
    missing = count_resolution(store, summary)
    if not missing:
        return None
    mark = graph_mark(store)  # read first: a change after it only makes it stale
    if settled or mark == known or not resolvable(store, missing):
        return mark
    with write_lock(store):
        found = resolve_missing(store, summary.uid, report)
    summary.reresolved += found
    summary.wrote = summary.wrote or bool(found)
    count_resolution(store, summary)
    return mark


def _done(summary: IngestSummary, started: float) -> IngestSummary:
    summary.seconds = time.perf_counter() - started
    return summary


@dataclass(frozen=True)
class _Seen:
    """What an ingest knows of its source before reading it: manifest and ``Source`` node.

    The manifest is compared by its file's identity (a save replaces the file), so that the
    check made under the lock does not parse it again.
    """

    stamp: tuple | None
    manifest: dict | None = field(compare=False)
    node: dict | None

    @classmethod
    def load(cls, store, uid: str, path: Path, *, parse: bool = True) -> "_Seen":
        try:
            st = path.stat()
            stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        except OSError:
            stamp = None
        manifest = _load_manifest(path) if stamp and parse else None
        return cls(stamp, manifest, store.get_node("Source", uid))

    def trusted(self, fmt: str) -> bool:
        """Whether the manifest describes the graph: the last ingest of ``fmt`` completed."""
        old, node = self.manifest, self.node
        return bool(old and node and node.get("complete") and old.get("format") == fmt)


# --- reading -----------------------------------------------------------------------------


@dataclass
class _Plan:
    """What to write: artifacts by state, and nodes and edges that belong to no artifact."""

    new: dict[str, Group]
    changed: dict[str, Group]
    removed: set[str]
    unchanged: int
    shared: Records


class _Reader:
    """Decides which units to parse, parses them, and groups the records per artifact."""

    def __init__(self, root, uid, listing, old, fmt, report):
        self.root, self.uid, self.listing, self.old = root, uid, listing, old
        self.fmt, self.report = fmt, report
        self.units: dict[str, dict] = {}  # rel -> {fmt, stat, sha, artifacts, warnings}
        self.groups: dict[str, Group] = {}
        self.parsed_artifacts: set[str] = set()
        self.affected: set[str] = set()  # artifacts whose units were parsed or are gone
        self.shared = Records()
        self.fmt_warnings: dict[str, list] = {}
        self.digests: dict[str, str] = {}
        self.parsed = 0
        self.renamed = 0

    def read(self) -> None:
        from ckg.formats.detect import detect_formats

        detected = detect_formats(self.root)
        # Names that are not UTF-8 were left out by detection: each is one warning.
        self.fmt_warnings["names"] = [[p.path, p.line, p.message] for p in detected.problems]
        formats = FORMATS if self.fmt == "auto" else (self.fmt,)
        old_units = self.old["units"] if self.old else {}
        done = 0
        total = sum(len(detected.get(f, ())) for f in formats)
        for fmt in formats:
            files = detected.get(fmt, [])
            to_parse: list[str] = []
            for path in files:
                rel = path.relative_to(self.root).as_posix()
                unit = self._fingerprint(rel, fmt, old_units.get(rel))
                self.units[rel] = unit
                if unit.pop("dirty"):
                    to_parse.append(rel)
                done += 1
                self.report("files", done, total)
            gone = [r for r, u in old_units.items() if u["fmt"] == fmt and r not in self.units]
            if self.old is None:
                if files:
                    self._parse(fmt, list(files), full=True)
            elif to_parse or gone:
                self._parse_changed(fmt, to_parse, gone, old_units)
            else:
                self.fmt_warnings[fmt] = self.old["fmt_warnings"].get(fmt, [])

    def _fingerprint(self, rel: str, fmt: str, old: dict | None) -> dict:
        files = _unit_files(rel, self.listing)
        stat = _digest_listing({f: self.listing[f] for f in files})
        if old and old["fmt"] == fmt and old["stat"] == stat:
            return {**old, "dirty": False}
        sha = hashlib.sha256()
        for f in files:
            sha.update(f.encode() + b"\0")
            try:
                with open_file(self.root / f, self.root) as handle:  # in chunks: an image
                    while chunk := handle.read(1 << 20):  # archive is large
                        sha.update(chunk)
            except OSError as exc:  # swapped since the walk: the importer says why
                sha.update(str(exc).encode())
        digest = sha.hexdigest()
        if old and old["fmt"] == fmt and old["sha"] == digest:
            return {**old, "stat": stat, "dirty": False}
        return {
            "fmt": fmt,
            "stat": stat,
            "sha": digest,
            "artifacts": [],
            "warnings": [],
            "dirty": True,
        }

    def _parse_changed(self, fmt, to_parse, gone, old_units) -> None:
        # A changed unit that gave no artifact and no warning is a repository descriptor
        # (cmr.yaml, .ckr.json) whose content may shape every artifact: re-read the format.
        for rel in to_parse + gone:
            prev = old_units.get(rel)
            if prev and not prev["artifacts"] and not prev["warnings"]:
                return self._parse(fmt, [self.root / r for r in self._units_of(fmt)], full=True)
        dirs = {_unit_dir(r) for r in to_parse + gone}
        chosen = [r for r in self._units_of(fmt) if _unit_dir(r) in dirs]
        for rel in chosen + gone:
            self.affected.update(old_units.get(rel, {}).get("artifacts", ()))
        owner = {a: _unit_dir(r) for r, u in old_units.items() for a in u["artifacts"]}
        records = self._import(fmt, [self.root / r for r in chosen])
        for n in records.nodes:
            # A uid that an unparsed folder holds (duplicates are renamed by position).
            if (
                n.label == "Artifact"
                and owner.get(n.key, _artifact_dir(n.props.get("path"))) not in dirs
            ):
                return self._parse(fmt, [self.root / r for r in self._units_of(fmt)], full=True)
        self.parsed += len(chosen)
        self.fmt_warnings[fmt] = self.old["fmt_warnings"].get(fmt, [])
        self._absorb(fmt, records, chosen)

    def _parse(self, fmt, files, *, full) -> None:
        if self.old:
            self.affected.update(
                a for u in self.old["units"].values() if u["fmt"] == fmt for a in u["artifacts"]
            )
        records = self._import(fmt, files)
        self.parsed += len(files or ())
        self.fmt_warnings[fmt] = []
        self._absorb(fmt, records, self._units_of(fmt))

    def _import(self, fmt, files) -> Records:
        return importer(fmt).read(self.root, self.uid, files)

    def _units_of(self, fmt) -> list[str]:
        return [r for r, u in self.units.items() if u["fmt"] == fmt]

    def _absorb(self, fmt: str, records: Records, parsed_units: list[str]) -> None:
        """Group ``records`` per artifact and attach artifacts and warnings to units."""
        by_dir: dict[str, list[str]] = {}
        for rel in parsed_units:
            unit = self.units[rel]
            unit["artifacts"], unit["warnings"] = [], []
            by_dir.setdefault(_unit_dir(rel), []).append(rel)
        groups = group_records(records, self.shared)
        for uid, group in groups.items():
            self.groups[uid] = group
            self.parsed_artifacts.add(uid)
            for rel in by_dir.get(_artifact_dir(group.node.props.get("path")), ()):
                self.units[rel]["artifacts"].append(uid)
        for w in records.warnings:
            unit = self.units.get(w.path)
            if unit is not None and unit["fmt"] == fmt:
                unit["warnings"].append([w.line, w.message])
            else:
                self.fmt_warnings[fmt].append([w.path, w.line, w.message])

    def claim_uids(self, graph: dict[str, dict]) -> None:
        """Give a parsed artifact whose uid another source holds a uid derived from its path.

        Artifact uids key the graph; two sources shipping one script (cm4mlops and the
        mlc-scripts wheel share uids) must not overwrite each other: the first keeps it.
        """
        for uid in list(self.groups):
            held = graph.get(uid)
            if held is None or held["source_uid"] == self.uid:
                continue
            group = self.groups.pop(uid)
            self.parsed_artifacts.discard(uid)
            props = group.node.props
            new = _free_uid(self.uid, props, set(self.groups) | set(graph))
            _rename(group, uid, new)
            self.groups[new] = group
            self.parsed_artifacts.add(new)
            self.renamed += 1
            message = (
                f"uid {uid} of {props.get('alias') or props.get('kind')} is held by "
                f"{held.get('alias') or '?'} ({held.get('kind')}) of source "
                f"{held['source_uid']}: this one is {new}"
            )
            for unit in self.units.values():
                if uid in unit["artifacts"]:
                    unit["artifacts"] = [new if a == uid else a for a in unit["artifacts"]]
                    unit["warnings"].append([None, message])

    def all_warnings(self) -> list[Problem]:
        out = [
            Problem(rel, msg, line) for rel, u in self.units.items() for line, msg in u["warnings"]
        ]
        for items in self.fmt_warnings.values():
            out.extend(Problem(path, msg, line) for path, line, msg in items)
        return out

    def changes(self) -> bool:
        """Whether :meth:`plan` of a trusted source would write anything."""
        old_digests = self.old["artifacts"]
        return bool(
            self.shared.nodes
            or self.affected - self.parsed_artifacts
            or any(old_digests.get(uid) != g.digest() for uid, g in self.groups.items())
        )

    def plan(self, own_in_graph: set[str] | None) -> _Plan:
        """Compare parsed groups with the manifest (trusted) or the graph (repair)."""
        old_digests = self.old["artifacts"] if self.old else {}
        new, changed = {}, {}
        for uid, group in self.groups.items():
            self.digests[uid] = digest = group.digest()
            if own_in_graph is not None:
                (changed if uid in own_in_graph else new)[uid] = group
            elif uid not in old_digests:
                new[uid] = group
            elif old_digests[uid] != digest:
                changed[uid] = group
        if own_in_graph is not None:
            removed = own_in_graph - set(self.groups)
            unchanged = 0
        else:
            removed = self.affected - self.parsed_artifacts
            unchanged = len(set(old_digests) - removed) - len(changed)
        return _Plan(new, changed, removed, unchanged, self.shared)

    def save(self, path: Path, tree, archive_stat, listing_digest: str, fmt: str, mark) -> None:
        artifacts = {u: a for u, a in (self.old["artifacts"] if self.old else {}).items()}
        for uid in self.affected - self.parsed_artifacts:
            artifacts.pop(uid, None)
        artifacts.update(self.digests)
        _save_manifest(
            path,
            {
                "version": MANIFEST_VERSION,
                "format": fmt,
                "location": tree.location,
                "commit": tree.commit,
                "digest": tree.digest,
                "archive": archive_stat,
                "listing": listing_digest,
                "files": len(self.listing),
                "units": self.units,
                "artifacts": artifacts,
                "fmt_warnings": self.fmt_warnings,
                "settled": mark,
            },
        )


def group_records(records: Records, shared: Records) -> dict[str, Group]:
    """Split ``records`` per artifact; what belongs to none is appended to ``shared``.

    An artifact's group holds the nodes its edges reach (variations, papers), its edges,
    and its dependency entries.
    """
    groups = {n.key: Group(n) for n in records.nodes if n.label == "Artifact"}
    others = {(n.label, n.key): n for n in records.nodes if n.label != "Artifact"}
    reached: set[tuple[str, str]] = set()
    for e in records.edges:
        group = groups.get(e.src_key) if e.src_label == "Artifact" else None
        if group is None:
            shared.edges.append(e)
            continue
        group.edges.append(e)
        target = (e.dst_label, e.dst_key)
        if target in others:
            group.nodes.append(others[target])
            reached.add(target)
    shared.nodes.extend(n for k, n in others.items() if k not in reached)
    for dep in records.dependencies:
        if dep.artifact_uid in groups:
            groups[dep.artifact_uid].deps.append(dep)
    return groups


def _free_uid(source_uid: str, props: dict, taken: set[str]) -> str:
    """A uid for an artifact whose own uid another source holds, derived from the source,
    its path, format and kind, and never one already taken: a generic project and a
    repository descriptor in one folder share the path, and neither may replace the other.

    >>> a = _free_uid("s", {"path": ".", "format": "mlc", "kind": "repo"}, set())
    >>> a != _free_uid("s", {"path": ".", "format": "generic", "kind": "project"}, set())
    True
    >>> _free_uid("s", {"path": ".", "format": "mlc", "kind": "repo"}, {a}) != a
    True
    """
    base = f"{source_uid}:{props.get('path', '.')}:{props.get('format')}:{props.get('kind')}"
    for n in range(len(taken) + 1):
        new = hashlib.sha256(f"{base}:{n}".encode()).hexdigest()[:16]
        if new not in taken:
            return new
    raise AssertionError("unreachable: a free uid exists among len(taken) + 1 candidates")


def _rename(group: Group, old: str, new: str) -> None:
    group.node.key = new
    group.node.props["uid"] = new
    for n in group.nodes:
        if n.label == "Variation" and n.key.startswith(old + ":"):
            n.key = n.props["uid"] = new + n.key[len(old) :]
    for e in group.edges:
        e.src_key = new
        if e.dst_label == "Variation" and e.dst_key.startswith(old + ":"):
            e.dst_key = new + e.dst_key[len(old) :]
    for d in group.deps:
        d.artifact_uid = new


def _unit_files(rel: str, listing: dict) -> list[str]:
    """The files whose bytes make a unit: the meta file, or CK's whole ``.cm`` folder."""
    parent = rel.rpartition("/")[0]
    if parent.endswith(".cm") and parent.rpartition("/")[2] == ".cm":
        prefix = parent + "/"
        return sorted(f for f in listing if f.startswith(prefix) and "/" not in f[len(prefix) :])
    return [rel]


def _unit_dir(rel: str) -> str:
    """The artifact folder of a meta file (CK's ``x/.cm/meta.json`` is ``x``)."""
    parent = PurePosixPath(rel).parent
    if parent.name == ".cm":
        parent = parent.parent
    return parent.as_posix()


def _artifact_dir(path) -> str:
    return PurePosixPath(path or ".").as_posix()


def _listing(root: Path) -> tuple[dict[str, tuple[int, int]], list[str]]:
    """Size and mtime of every file that may be read, and what was refused (links out,
    special files: the detection stage warns of them, so each must make the tree change)."""
    prefix = len(str(root)) + 1
    out = {}
    refused: list[Problem] = []
    for entry in walk_files(root, refused):
        st = entry.stat()
        mtime = st.st_mtime_ns
        if entry.is_symlink():  # a link re-pointed at an older file of the same size moved
            mtime = max(mtime, entry.stat(follow_symlinks=False).st_mtime_ns)
        out[entry.path[prefix:].replace(os.sep, "/")] = (st.st_size, mtime)
    return out, sorted(str(p) for p in refused)


def _digest_listing(listing: dict, refused: list[str] = ()) -> str:
    data = sorted(listing.items())
    if refused:
        data.append(("refused", refused))
    body = json.dumps(data, separators=(",", ":")).encode()
    return hashlib.sha256(body).hexdigest()


def _locate(source: str | Path) -> tuple[str, str]:
    text = str(source)
    kind = kind_of(text)
    if kind == "git" and text.lower().startswith(
        ("https://", "http://", "git://", "ssh://", "git@", "file://")
    ):
        return text, kind
    return str(Path(text).expanduser().resolve()), kind


def _manifest_path(store, home: Path, uid: str) -> Path:
    where = f"{store.engine}\n{store.location}"
    key = hashlib.sha256(where.encode()).hexdigest()[:12]
    return Path(home) / "manifests" / key / f"{uid}.json"


def _load_manifest(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if data.get("version") == MANIFEST_VERSION else None


def _save_manifest(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp-{os.getpid()}")
    tmp.write_text(json.dumps(data, separators=(",", ":")))
    tmp.replace(path)


def _finish_unchanged(
    store, summary, manifest_file, old, node, name, strict, started, moved=None
) -> IngestSummary:
    """Nothing changed on disk: report from the manifest and the graph, write nothing.

    Only a new ``name``, or provenance that ``moved`` (a Git remote set since), is written,
    and entries left missing whose targets have come since are resolved.
    """
    summary.commit = old["commit"]
    summary.files = old["files"]
    summary.meta_files = len(old["units"])
    summary.unchanged = len(old["artifacts"])
    summary.warnings = [
        Problem(rel, msg, line) for rel, u in old["units"].items() for line, msg in u["warnings"]
    ] + [Problem(p, msg, line) for items in old["fmt_warnings"].values() for p, line, msg in items]
    if strict and summary.warnings:
        raise StrictFailure(summary)
    named = name and name != node.get("name")
    props = {**(moved or {}), **({"name": name} if named else {})}
    if props:
        store.upsert_nodes("Source", [{"key": summary.uid, "props": props}])
        summary.wrote = True
    if moved:
        summary.implements = _link_code(store, summary.uid)
    mark = _settle_missing(store, summary, old.get("settled"))
    if mark != old.get("settled"):
        old["settled"] = mark
        _save_manifest(manifest_file, old)
    return _done(summary, started)


def _link_code(store, uid: str) -> int:
    """:func:`ckg.ingest.link.link_code` for one source, imported only on a path that wrote:
    the results modules take about 40 ms to import, a quarter of an unchanged re-ingest."""
    from ckg.ingest.link import link_code

    return link_code(store, source=uid)
