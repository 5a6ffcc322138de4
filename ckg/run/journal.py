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
import shutil
from collections.abc import Iterator
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from ckg.core.errors import InvalidInput
from ckg.core.records import Edge, Node, Records
from ckg.core.redact import ambient, mask_node
from ckg.graph.execution import measured_counts
from ckg.graph.removal import empty_experiments, reached_by, runs_to_remove
from ckg.graph.runs import resolve_run_or_experiment

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


def remove(store, home: Path, names: list[str]) -> dict:
    """Remove runs and experiments (``ckg rm``): each run with the steps it called, their
    measurements and work folders; each experiment with every run in it.

    Platforms, artifacts, metrics, package sets and cache entries stay: other runs and
    results share them. A Pareto front that ranked a removed run is marked ``stale``, a
    Result a removed run reproduced ``reproduction_stale``, each with the runs and when;
    an experiment left without runs goes too. The runs are added to the journal's removed
    list, so that ``ckg db recover`` does not write them back.

    Parameters
    ----------
    names : list of str
        Runs (:func:`~ckg.graph.runs.resolve_run`) and experiments
        (:func:`~ckg.graph.runs.resolve_experiment`); all are
        resolved before anything is removed.

    Returns
    -------
    dict
        ``runs``, ``experiments`` and ``stale_fronts``, ``stale_reproductions`` (uids), and
        the number of ``measurements`` removed.

    Raises
    ------
    NotFound
        A name that is no run or experiment.
    UsageError
        A name that fits several, or a step of a script run (its run is removed whole).
    """
    named_runs, experiments = [], []
    for name in dict.fromkeys(names):
        label, uid = resolve_run_or_experiment(store, name)
        (named_runs if label == "Run" else experiments).append(uid)
    runs = runs_to_remove(store, named_runs, experiments)
    when = datetime.now(UTC).isoformat(timespec="seconds")
    reached = reached_by(store, runs)
    experiments = list(dict.fromkeys(experiments + reached["experiments"]))
    forget(home, runs)  # first: a crash after it leaves runs recover cannot bring back
    # In this order, each write repeatable: a crash part way leaves the runs named by their
    # uids, and ckg rm of them again finishes the removal.
    for row in reached["fronts"]:
        store.update_nodes("Front", [row["uid"]], {"stale": _why_stale(row["runs"], when)})
    for row in reached["results"]:
        store.update_nodes("Result", [row["uid"]],
                           {"reproduction_stale": _why_stale(row["runs"], when)})
    store.delete_reached("Run", runs, "MEASURED", "Measurement")
    store.delete_nodes("Run", runs)
    gone = set(empty_experiments(store, experiments))
    store.delete_nodes("Experiment", sorted(gone))
    _remove_workdirs(Path(home) / "runs", runs)
    return {
        "runs": runs,
        "experiments": [e for e in experiments if e in gone],
        "measurements": reached["measurements"],
        "stale_fronts": [r["uid"] for r in reached["fronts"]],
        "stale_reproductions": [r["uid"] for r in reached["results"]],
    }


def _why_stale(runs: list[str], when: str) -> str:
    """What a stale front or reproduction says: the runs it used that were removed, when."""
    shown = ", ".join(sorted(runs)[:4]) + (f" and {len(runs) - 4} more" if len(runs) > 4 else "")
    return f"{shown} removed at {when}"


def _remove_workdirs(folder: Path, runs: list[str]) -> None:
    """The work folders ``folder/<run>`` of the removed runs. A uid from the graph (a shared
    one, an imported one) is a name here only when it is one plain file name; a link is
    removed, not followed."""
    for uid in runs:
        if "\0" in uid or uid in ("", ".", "..") or (folder / uid).name != uid:
            continue
        path = folder / uid
        if path.is_symlink() or path.is_file():
            path.unlink()
        elif path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
