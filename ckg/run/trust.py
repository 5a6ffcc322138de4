"""Which sources may run code here, and the cache of dependency steps.

A folder on this machine is the code of the user running ckg when everything a step runs
from it, the folders above and where its links lead, belongs to that user or the system
(root) and no one else may write to it (:class:`Ownership`); a Git repository, a zip, wheel
or tar archive runs only after ``ckg trust SOURCE`` put its uid in ``$CKG_HOME/trust.json``,
or with ``--trust`` for one run. Trust is given to content, not to a
place: the entry keeps the source's digest (the archive's sha256, the Git commit), and once a
re-ingest brings other content, that content needs ``ckg trust`` again. What a step runs is
read from its meta in the graph; before it runs, that meta is checked against the meta file
of the folder it runs from (:func:`meta_mismatch`), so a graph others can write cannot change
what a trusted source runs.

A dependency step that succeeded is remembered in ``$CKG_HOME/cache/steps/<key>.json``
with the environment it exported; a later run with the same key reuses it. A failed step is
never written there.
"""

import hashlib
import json
import os
import stat
from pathlib import Path

TRUST_FILE = "trust.json"
CACHE_DIR = Path("cache") / "steps"
#: Where the metas found equal to their source's files are remembered (:func:`meta_mismatch`).
META_CHECKED_DIR = Path("cache") / "metas-checked"


def trusted(home: Path) -> dict[str, dict]:
    """Trusted source uids, each with the ``location`` and content ``digest`` it was trusted at.

    An entry written before digests were kept (a bare location) has an empty digest, which
    no content matches.
    """
    path = Path(home) / TRUST_FILE
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except ValueError:
        entries = None
    if not isinstance(entries, dict):
        from ckg.core.errors import InvalidInput

        raise InvalidInput(f"{path}: not a JSON object of trusted sources; fix or delete it")
    return {
        uid: entry if isinstance(entry, dict) else {"location": entry, "digest": ""}
        for uid, entry in entries.items()
    }


def add_trust(home: Path, sources: dict[str, dict]) -> None:
    """Trust each ``uid -> {"location", "digest"}`` of ``sources`` from now on."""
    entries = trusted(home) | sources
    _write_json(Path(home) / TRUST_FILE, entries)


def distrust(entry: dict | None, digest: str | None) -> str | None:
    """Why content with ``digest`` is not trusted by ``entry``, or None when it is.

    >>> distrust({"location": "x.tar", "digest": "ab12"}, "ab12") is None
    True
    >>> distrust({"location": "x.tar", "digest": "ab12"}, "cd34")
    'which changed since it was trusted (content ab12 then, cd34 now)'
    """
    if entry is None:
        return "which is not trusted"
    if not entry.get("digest"):
        return "which was trusted before ckg recorded what it trusted"
    if entry["digest"] != digest:
        return (
            f"which changed since it was trusted "
            f"(content {entry['digest'][:12]} then, {(digest or 'unknown')[:12]} now)"
        )
    return None


def cache_get(home: Path, key: str) -> dict | None:
    """The cached outcome of the step with ``key``, or None."""
    try:
        return json.loads((Path(home) / CACHE_DIR / f"{key}.json").read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return None


def cache_put(home: Path, key: str, entry: dict) -> None:
    """Remember a succeeded step (written atomically: a reader sees all of it or nothing)."""
    _write_json(Path(home) / CACHE_DIR / f"{key}.json", entry)


def _write_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # the user's alone
    with open(fd, "w", encoding="utf-8") as handle:
        handle.write(json.dumps(data, indent=1, sort_keys=True))
    os.replace(tmp, path)


def trust_source(store, home: Path, source: str) -> list[dict]:
    """Trust the ingested source(s) whose uid or location is ``source``, at the content they
    were last ingested with (their ``digest``); return them.

    A local path is matched by its absolute form, as ingest stores it.

    Raises
    ------
    NotFound
        When no ingested source has that uid or location.
    """
    from ckg.core.errors import NotFound

    names = [source]
    if Path(source).expanduser().exists():
        names.append(str(Path(source).expanduser().resolve()))
    from ckg.graph.execution import sources_named

    rows = sources_named(store, names)
    if not rows:
        raise NotFound(f"no ingested source has uid or location {source!r}: ingest it first")
    add_trust(
        home,
        {row["uid"]: {"location": row["location"], "digest": row["digest"]} for row in rows},
    )
    return rows


def meta_mismatch(root: Path, step, home: Path) -> str | None:
    """Why the meta the graph holds for ``step`` is not the one its source holds, or None.

    The command, environment and dependencies of a step come from the graph; a graph that
    others can write (a shared Neo4j) could hold another meta than the trusted source, so
    the meta file in the folder the step runs from is read again, with the importer that
    read it at ingest, and must give the same meta. A pair of meta file bytes and graph meta
    found equal once is remembered in ``home`` (private to the user), so that a run of the
    same step reads the file but parses nothing.
    """
    from ckg.formats import importer
    from ckg.formats.detect import CKG_META, CM_META, MLC_META

    # The files an artifact's meta is read from, per format whose meta says what runs.
    names = {"ckg": (CKG_META,), "mlc": MLC_META, "cm": CM_META}.get(step.format)
    if not names:
        return None
    folder = Path(root) / (step.path or "")
    files = [folder / name for name in names if (folder / name).is_file()]
    if not files:
        return f"no {' or '.join(names)} in {folder}"
    seen = hashlib.sha256(step.uid.encode())
    for file in files:
        seen.update(file.read_bytes())
    seen.update(json.dumps(step.meta, sort_keys=True, default=str).encode())
    checked = Path(home) / META_CHECKED_DIR / seen.hexdigest()[:32]
    if checked.exists():
        return None
    read = importer(step.format).read(Path(root), step.source_uid or "", files)
    metas = [json.loads(n.props["meta"]) for n in read.nodes
             if n.label == "Artifact" and n.props.get("path") == step.path]
    if metas != [step.meta]:
        return f"its meta in the graph is not the one in {files[0]}"
    checked.parent.mkdir(parents=True, exist_ok=True)
    checked.touch()
    return None


#: Links followed one after another before a path is taken for a loop (Linux's own limit).
MAX_LINKS = 40
#: The folder of a script repository whose ``utils.py`` customize.py imports
#: (:func:`ckg.run.scripts.hooks.automation_folder`).
AUTOMATION = "automation"


def step_folders(fmt: str, artifact_dir, root) -> list[Path]:
    """The folders whose files a step of format ``fmt`` in ``artifact_dir`` may execute:
    its own, and for a script the repository's ``automation`` folder that its hooks import.

    >>> [str(p) for p in step_folders("mlc", "/r/script/x", "/r")]
    ['/r/script/x', '/r/automation']
    >>> [str(p) for p in step_folders("ckg", "/r/wf", "/r")]
    ['/r/wf']
    """
    folders = [Path(artifact_dir)]
    if fmt in ("mlc", "cm"):  # steps.SCRIPT_FORMATS, whose worker need not import steps
        folders.append(Path(root) / AUTOMATION)
    return folders


def folder_refusal(alias: str, location, why: str) -> str:
    """The one line that refuses to run ``alias`` of the folder ``location`` as the user's
    own, ``why`` naming the path at fault (:meth:`Ownership.foreign_path`)."""
    return (
        f"{alias} comes from {location}, which is not yours alone: {why}; ckg runs your own "
        "folders, and others' sources by their content; copy it into a folder of yours, or "
        "ingest it as an archive, or use --trust"
    )


def fault(path: str, info: os.stat_result, uid: int, *, above: bool = False,
          private_group=lambda gid: False) -> str | None:
    """Why the file or folder at ``path`` with ``info`` is not ``uid``'s alone, or None.

    ``above``: a folder above the tree (the sticky bit excuses others' write there);
    ``private_group(gid)``: whether the group holds no account but ``uid`` and root.

    >>> st = lambda mode, uid=0, gid=0: os.stat_result((mode, 0, 0, 1, uid, gid, 0, 0, 0, 0))
    >>> fault("/x", st(0o40755), 0), fault("/x", st(0o40755, 1001), 0)
    (None, '/x is owned by uid 1001')
    >>> fault("/tmp", st(0o41777), 0), fault("/tmp", st(0o41777), 0, above=True)
    ('/tmp is writable by everyone (mode 1777)', None)
    >>> fault("/x/run.sh", st(0o100664, gid=5), 0)
    '/x/run.sh is writable by group 5 (mode 0664)'
    >>> fault("/dev/null", st(0o20666), 0) is None
    True
    """
    mode = info.st_mode
    if info.st_uid not in (uid, 0):
        return f"{path} is owned by uid {info.st_uid}"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISSOCK(mode):
        return None
    if above and stat.S_ISDIR(mode) and mode & stat.S_ISVTX:
        return None
    if mode & stat.S_IWOTH:
        return f"{path} is writable by everyone (mode {stat.S_IMODE(mode):04o})"
    if mode & stat.S_IWGRP and not private_group(info.st_gid):
        return f"{path} is writable by group {info.st_gid} (mode {stat.S_IMODE(mode):04o})"
    return None


class Ownership:
    """Whether what runs from a folder is the code of the user running ckg alone; what it
    found safe is remembered (make one per run, right before running).

    A folder passes when the folders above it (each link on the way followed and the
    folders it leads through checked too), the folder, and every file and folder under it
    (each link inside followed the same way, to what it leads to and under it) belong to
    that user or to root, and no one else may write them: not their group (unless the group
    holds no other account, a user private group), not everyone. A folder above that
    everyone may write but with the sticky bit (``/tmp``) passes: others may add names there
    but not rename or remove the user's. Inside the tree it does not: a new name there is
    new code. Devices and sockets are checked by owner only (their mode says who may use
    them, not who changes what runs). A missing folder passes (the runner names it); a link
    that leads nowhere fails only where another user could put something at its end.
    """

    def __init__(self, uid: int | None = None):
        self.uid = os.getuid() if uid is None else uid
        self.above: dict[str, str | None] = {}  # a folder (links resolved) -> its fault
        self.walked: set[tuple[int, int]] = set()
        self.groups: dict[int, bool] = {}

    def foreign_path(self, *folders) -> str | None:
        """Why what runs from ``folders`` is not the user's own code: the first path that
        another user owns or may change, and how; None when there is none.

        >>> Ownership().foreign_path("/no/such/folder") is None
        True
        >>> Ownership().foreign_path("/tmp")
        '/tmp is writable by everyone (mode 1777)'
        """
        for folder in folders:
            walked = set(self.walked)
            path, info, why = self.resolve(os.path.abspath(folder))
            why = why or (info is not None and self.tree(path, info))
            if why:
                self.walked = walked  # a walk cut short is not a folder that passed
                return why
        return None

    def fault(self, path: str, info: os.stat_result, above: bool = False) -> str | None:
        return fault(path, info, self.uid, above=above, private_group=self.private_group)

    def private_group(self, gid: int) -> bool:
        if gid not in self.groups:
            self.groups[gid] = _private_group(gid, self.uid)
        return self.groups[gid]

    def folder_above(self, path: str, info: os.stat_result | None = None) -> str | None:
        if path not in self.above:
            self.above[path] = self.fault(path, info or os.lstat(path), above=True)
        return self.above[path]

    def resolve(self, path: str, links: int = 0, above: bool = False
                ) -> tuple[str, os.stat_result | None, str | None]:
        """``path`` (absolute) with each link followed, name by name, every folder on the
        way checked as one above the tree and the last name as inside it (unless ``above``):
        where it leads, its ``lstat`` (None when nothing is there) and the first fault."""
        current, info = "/", None
        why = self.folder_above(current)
        names = [name for name in path.split("/") if name not in ("", ".")]
        for index, name in enumerate(names):
            if why:
                return current, info, why
            step = os.path.join(current, name)
            if name == "..":
                current, info = os.path.dirname(current), None
            elif index < len(names) - 1 and step in self.above:
                current, info = step, None  # a folder on the way, checked before
            else:
                try:
                    info = os.lstat(step)
                except (FileNotFoundError, NotADirectoryError):
                    # Nothing to run there, unless someone else may put something there.
                    return step, None, self.fault(current, os.lstat(current))
                if stat.S_ISLNK(info.st_mode):
                    if links >= MAX_LINKS:
                        return step, None, None  # a loop: nothing opens through it
                    current, info, why = self.resolve(
                        os.path.join(current, os.readlink(step)), links + 1,
                        above or index < len(names) - 1)
                    if info is None or why:
                        return current, info, why
                else:
                    current = step
            if index < len(names) - 1:
                why = self.folder_above(current, info)
        info = info or os.lstat(current)
        if not why:
            why = self.folder_above(current) if above else self.fault(current, info)
        return current, info, why

    def tree(self, top: str, info: os.stat_result) -> str | None:
        """The first fault under the folder ``top`` (itself checked already), each link
        followed; None when there is none."""
        stack = [(top, info)]
        while stack:
            folder, info = stack.pop()
            if not stat.S_ISDIR(info.st_mode) or (info.st_dev, info.st_ino) in self.walked:
                continue
            self.walked.add((info.st_dev, info.st_ino))
            self.above[folder] = None  # passed as inside the tree, which is stricter
            with os.scandir(folder) as entries:
                for entry in entries:
                    path, info = entry.path, entry.stat(follow_symlinks=False)
                    if stat.S_ISLNK(info.st_mode):
                        path, info, why = self.resolve(path)
                        if why:
                            return f"{why} (through the link {entry.path})"
                    else:
                        why = self.fault(path, info)
                        if why:
                            return why
                    if info is not None and stat.S_ISDIR(info.st_mode):
                        stack.append((path, info))
        return None


def _private_group(gid: int, uid: int) -> bool:
    """Whether no account but ``uid`` and root is in group ``gid``, as a member or by its
    primary group (a user private group: Debian gives each user one, and umask 002)."""
    import grp
    import pwd

    try:
        names = set(grp.getgrgid(gid).gr_mem)
    except KeyError:
        return False
    for account in pwd.getpwall():
        if account.pw_gid == gid or account.pw_name in names:
            if account.pw_uid not in (uid, 0):
                return False
            names.discard(account.pw_name)
    return not names  # a member no account list names cannot be told apart: not private
