"""Published results in a file tree: which files hold them, and one call to read them all.

The ingest pipeline's hook for results (Papers with Code, MLPerf, tables), shaped like the
artifact importers: :func:`detect` lists the files per format, :func:`read` turns them into
:class:`ckg.formats.published.ResultRecords`. :func:`read_file` reads one file of any of these
formats and names a file in none of them as such.
"""

from pathlib import Path

from ckg.core.errors import InvalidInput
from ckg.formats import mlperf, pwc, tables
from ckg.formats.files import walk
from ckg.formats.published import ResultRecords, merge, settle_papers

FORMATS = {"pwc": pwc, "mlperf": mlperf, "tables": tables}
SUFFIXES = (".json", ".csv", ".tsv", ".yaml", ".yml")
#: Meta files of artifact formats, never results: skipped without being opened.
_META_NAMES = frozenset({"_cm.json", "_cm.yaml", "meta.json", "meta.yaml", "cmr.yaml", ".ckr.json"})
_SKIP_DIRS = frozenset({".git", ".hg", ".svn", "node_modules", "__pycache__", ".venv", ".cm"})
KNOWN = "Papers with Code JSON, MLPerf CM records or submission, or a CSV/TSV/YAML/JSON table"


def detect(root: Path) -> dict[str, list[Path]]:
    """Map ``pwc``, ``mlperf`` and ``tables`` to the absolute paths of their files under ``root``.

    Formats with no file are left out. A file is claimed by the first format that recognises
    it, in that order.
    """
    root = Path(root)
    candidates = []
    # The walk refuses links out of the source and special files (a FIFO named results.csv
    # would block the header's read for ever); detect_formats warns of them.
    for dirpath, dirnames, filenames in walk(root, _SKIP_DIRS):
        dirnames.sort()
        for name in sorted(filenames):
            if name.lower().endswith(SUFFIXES) and name not in _META_NAMES:
                candidates.append(Path(dirpath, name).relative_to(root))
    found: dict[str, list[Path]] = {}
    for fmt, module in FORMATS.items():
        claimed = module.detect(root, candidates)
        if claimed:
            found[fmt] = [root / rel for rel in claimed]
            candidates = [c for c in candidates if c not in set(claimed)]
    return found


def read(root: Path, source_uid: str, found: dict[str, list[Path]] | None = None) -> ResultRecords:
    """Read every results file under ``root`` (``found`` as :func:`detect` returns it)."""
    root = Path(root)
    found = detect(root) if found is None else found
    out = ResultRecords()
    for fmt, files in found.items():
        part = FORMATS[fmt].read(root, source_uid, [Path(f).relative_to(root) for f in files])
        merge(out, part)
    settle_papers(out)
    return out


def read_file(path: Path, source_uid: str) -> ResultRecords:
    """Read one results file of any known format; raises InvalidInput naming it otherwise."""
    path = Path(path).resolve()
    if not path.is_file():
        raise InvalidInput(f"{path}: not a file")
    root = path.parent
    # A submission's system file is read with its results: from <root>/<division>/<submitter>.
    if path.parent.name == "systems" and len(path.parents) > 3:
        root = path.parents[3]
    rel = path.relative_to(root)
    for module in FORMATS.values():
        if module.detect(root, [rel]) or (module is tables and path.suffix in tables.DATA_SUFFIXES):
            out = module.read(root, source_uid, [rel])
            if out.tally.rows or out.nodes:
                settle_papers(out)
                return out
    raise InvalidInput(f"{path}: not in a known results format ({KNOWN})")
