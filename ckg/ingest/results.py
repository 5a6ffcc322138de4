"""A results file, folder or archive into the graph as one source (``ckg ingest FILE``,
``ckg results import``)."""

from datetime import UTC, datetime
from pathlib import Path

from ckg.core.errors import InvalidInput, NotFound
from ckg.core.records import Node
from ckg.formats import results as result_files
from ckg.formats.published import ResultRecords
from ckg.formats.sources import file_digest, kind_of, open_source, source_uid


def read_path(path: str | Path, cache: Path) -> tuple[Node, ResultRecords]:
    """The Source node and records of one results file, folder or archive (no writing).

    Raises
    ------
    InvalidInput
        A file in none of the known formats, or a folder holding no results file.
    """
    text = str(path)
    kind = kind_of(text)
    if kind in ("zip", "tar", "git") or Path(text).is_dir():
        tree = open_source(text, cache=cache)
        found = result_files.detect(tree.root)
        if not found:
            raise InvalidInput(f"{text}: no results files found ({result_files.KNOWN})")
        records = result_files.read(tree.root, tree.uid, found)
        props = tree.props()
    else:
        file = Path(text).expanduser()
        if not file.exists():
            raise NotFound(f"no such file or folder: {text}")
        location = str(file.resolve())
        uid = source_uid(location)
        records = result_files.read_file(file, uid)
        props = {"uid": uid, "location": location, "kind": "file", "digest": file_digest(file)}
    props.update(ingested_at=datetime.now(UTC).isoformat(timespec="seconds"), complete=True)
    return Node(
        "Source", props["uid"], {k: v for k, v in props.items() if v not in ("", None)}
    ), records


def write_source(store, source: Node, records: ResultRecords) -> int:
    """Write a source's results and its ``Source`` node, and remove the Results of that
    source its files no longer hold (an edited table, a cell read apart since): what
    ``ckg ingest`` does for a folder, so that a source imported twice is the graph of its
    last reading. Returns the Results removed."""
    kept = [n.key for n in records.nodes if n.label == "Result"]
    store.write_records(records)
    store.upsert_nodes("Source", [{"key": source.key, "props": source.props}])
    return store.delete_unlisted("Result", source.key, kept)
