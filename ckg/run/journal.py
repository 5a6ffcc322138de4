"""The run journal: every run's records on disk before they reach the graph.

``$CKG_HOME/journal/runs.jsonl`` holds one JSON line per finished run: its ``Run``,
``Measurement``, ``Platform`` and ``Experiment`` nodes and their relationships. A line is
written, flushed and fsynced (under an exclusive lock, so concurrent runs never interleave)
before the graph is touched, so a measurement survives a database that is down, killed or
unreachable. :func:`recover` writes back every journalled run whose measurements the graph
lacks; writing is an idempotent MERGE, so recovering twice changes nothing.
"""

import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

from ckg.errors import InvalidInput
from ckg.graph.execution import measured_counts
from ckg.records import Edge, Node, Records
from ckg.redact import ambient, mask_node

JOURNAL = Path("journal") / "runs.jsonl"
#: Runs ``ckg rm`` removed, one uid a line: :func:`recover` leaves them out.
REMOVED = Path("journal") / "removed.txt"
#: Uids per membership query during recovery.
_CHUNK = 1000


def journal_path(home: Path) -> Path:
    """Where the journal of ``home`` lives."""
    return Path(home) / JOURNAL


def append(home: Path, records: Records) -> None:
    """Append ``records`` as one line and make it durable before returning.

    >>> import tempfile
    >>> home = Path(tempfile.mkdtemp())
    >>> append(home, Records(nodes=[Node("Run", "r1", {"status": "ok"})]))
    >>> [r.nodes[0].key for r in read(home)]
    ['r1']
    """
    entry = {
        "nodes": [asdict(n) for n in records.nodes],
        "edges": [asdict(e) for e in records.edges],
    }
    line = (json.dumps(entry, separators=(",", ":"), ensure_ascii=False) + "\n").encode()
    path = journal_path(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Private: the journal holds commands, environments and log tails.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        view = memoryview(line)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def forget(home: Path, run_uids: list[str]) -> None:
    """Add ``run_uids`` to the removed list, durably, so that :func:`recover` never writes
    them back.

    >>> import tempfile
    >>> home = Path(tempfile.mkdtemp())
    >>> forget(home, ["r1", "r2"])
    >>> sorted(removed(home))
    ['r1', 'r2']
    """
    if not run_uids:
        return
    path = Path(home) / REMOVED
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        view = memoryview("".join(f"{uid}\n" for uid in run_uids).encode())
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def removed(home: Path) -> set[str]:
    """The uids of the runs :func:`forget` was given."""
    path = Path(home) / REMOVED
    return set(path.read_text().split()) if path.is_file() else set()


def read(home: Path) -> Iterator[Records]:
    """Every journalled entry in order. A torn last line (a crash mid-write) is skipped.

    Raises
    ------
    InvalidInput
        When a line other than the last is not a journal entry.
    """
    path = journal_path(home)
    if not path.is_file():
        return
    lines = path.read_bytes().splitlines()
    for number, raw in enumerate(lines, 1):
        try:
            entry = json.loads(raw)
            yield Records(
                nodes=[Node(**n) for n in entry["nodes"]],
                edges=[Edge(**e) for e in entry["edges"]],
            )
        except (ValueError, KeyError, TypeError):
            if number == len(lines):
                return
            raise InvalidInput(f"{path}:{number}: not a journal entry") from None


def recover(store, home: Path) -> dict:
    """Write to ``store`` every journalled run whose measurements it does not fully hold,
    less the runs ``ckg rm`` removed (:func:`forget`).

    A run counts as recorded when its ``Run`` node has a ``MEASURED`` relationship to each of
    its journalled measurements (the runner writes those last).

    Returns
    -------
    dict
        ``journalled`` runs, ``recovered`` runs and ``measurements`` written.
    """
    entries = list(read(home))
    gone = removed(home)
    expected: dict[str, int] = {}
    for records in entries:
        for run_uid in _run_uids(records):
            if run_uid not in gone:
                expected[run_uid] = expected.get(run_uid, 0) + _measurement_count(records)
    present = _measured_counts(store, list(expected))
    missing = {uid for uid, n in expected.items() if present.get(uid, 0) < n}
    recovered = Records()
    for records in entries:
        if missing.intersection(_run_uids(records)):
            recovered.extend(records)
    if recovered.nodes:
        # Masked again: a journal written by an older ckg holds secrets in clear.
        secrets = ambient()
        recovered.nodes = [mask_node(node, secrets) for node in recovered.nodes]
        store.write_records(recovered)
    return {
        "journalled": len(expected),
        "recovered": len(missing),
        "measurements": sum(1 for n in recovered.nodes if n.label == "Measurement"),
    }


def _run_uids(records: Records) -> list[str]:
    return [n.key for n in records.nodes if n.label == "Run"]


def _measurement_count(records: Records) -> int:
    return sum(1 for e in records.edges if e.type == "MEASURED")


def _measured_counts(store, run_uids: list[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for start in range(0, len(run_uids), _CHUNK):
        counts.update(measured_counts(store, run_uids[start : start + _CHUNK]))
    return counts
