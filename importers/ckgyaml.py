"""ckg's own workflow format: a ``ckg.yaml`` per folder (see :mod:`ckg.run.workflow`).

Each ``ckg.yaml`` becomes an ``Artifact`` with format ``ckg`` and kind ``workflow`` (or the
meta's ``kind``), its meta as JSON and the digest of its bytes, and a
:class:`~ckg.records.Dependency` per ``deps`` entry, written in CM's syntax so the same
resolution rules apply. A file that cannot be read, or whose ``run``, ``params`` or ``grid``
is malformed, is one warning naming file and line; the rest of the source is read.
"""

from pathlib import Path

from ckg.errors import InvalidInput
from ckg.records import Dependency, Node, Problem, Records
from ckg.run.workflow import FILENAME, check_meta
from importers.cmlike import as_list, derived_uid, guard_json, split_tags
from importers.loaders import Loaded, digest, json_text, load_mapping, relpath

SKIP_DIRS = frozenset({".git", ".hg", ".svn", "node_modules", "__pycache__", ".tox", ".venv"})


def detect(root: Path, candidates: list[Path]) -> list[Path]:
    """The ``ckg.yaml`` files among ``candidates`` (paths relative to ``root``).

    >>> detect(Path("/r"), [Path("a/ckg.yaml"), Path("a/meta.yaml")])
    [PosixPath('a/ckg.yaml')]
    """
    return [rel for rel in candidates if Path(rel).name == FILENAME]


def find(root: Path) -> list[Path]:
    """Every ``ckg.yaml`` under ``root`` (absolute paths, sorted), VCS folders skipped."""
    found = []
    for path in Path(root).rglob(FILENAME):
        if not SKIP_DIRS.intersection(path.relative_to(root).parts):
            found.append(path)
    return sorted(found)


def read(root: Path, source_uid: str, files: list[Path] | None = None) -> Records:
    """Records of every ``ckg.yaml`` workflow under ``root``.

    Parameters
    ----------
    root : Path
        The source's folder.
    source_uid : str
        Stored on every artifact.
    files : list of Path, optional
        The ``ckg.yaml`` files to read (absolute, or relative to ``root``); None finds them.

    Examples
    --------
    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp()); (d / "w").mkdir()
    >>> _ = (d / "w" / "ckg.yaml").write_text("alias: w\\nrun: echo hi\\n")
    >>> [(n.props["alias"], n.props["format"], n.props["path"]) for n in read(d, "s1").nodes]
    [('w', 'ckg', 'w')]
    """
    root = Path(root)
    out = Records()
    for path in find(root) if files is None else files:
        path = Path(path)
        _read_one(root, source_uid, path if path.is_absolute() else root / path, out)
    return out


def _read_one(root: Path, source_uid: str, path: Path, out: Records) -> None:
    doc = load_mapping(path, root)
    if isinstance(doc, Problem):
        out.warnings.append(doc)
        return
    meta = doc.data
    try:
        for message in check_meta(meta, doc.rel):
            out.warnings.append(Problem(doc.rel, message.split(": ", 1)[1]))
    except InvalidInput as exc:
        out.warnings.append(Problem(doc.rel, str(exc).split(": ", 1)[1], _line(doc, exc)))
        return
    folder = relpath(path.parent, root)
    uid = str(meta.get("uid") or derived_uid(source_uid, folder))
    tags = split_tags(meta.get("tags", [])) or []
    out.nodes.append(
        Node(
            "Artifact",
            uid,
            {
                "uid": uid,
                "alias": meta["alias"],
                "kind": str(meta.get("kind") or "workflow"),
                "format": "ckg",
                "tags": tags,
                "path": folder,
                "meta": json_text(meta),
                "digest": digest(doc.raw),
                "source_uid": source_uid,
                "variations": [],
            },
        )
    )
    for position, entry in enumerate(meta.get("deps") or []):
        if not isinstance(entry, dict):
            out.warnings.append(
                Problem(doc.rel, "deps entry is not a mapping", doc.line_of("deps", position))
            )
            continue
        out.dependencies.append(
            Dependency(
                artifact_uid=uid,
                kind="deps",
                position=position,
                tags=split_tags(entry.get("tags")) or [],
                names=as_list(entry.get("names")),
                guard=guard_json(entry),
                path=doc.rel,
                line=doc.line_of("deps", position),
            )
        )


def _line(doc: Loaded, exc: InvalidInput) -> int | None:
    """The line of the first top-level key the error message names."""
    text = str(exc)
    for key in ("run", "params", "grid", "timeout", "env", "alias"):
        if f" {key} " in text or f": {key}" in text:
            return doc.line_of(key)
    return None
