"""Concurrent ingests into one store: the graph they leave is the one sequential ingest leaves.

Two folders of MLC scripts whose dependencies cross between them (each needs the other to
resolve) are ingested by real processes at once, into one ``CKG_HOME`` (the embedded server
every process of that home shares) or one Neo4j database, and the dependency edges and
unresolved entries are compared with those of sequential ingest. ``bench/ingest_race_bench.py``
runs the same check twenty times with timings.
"""

import hashlib
import json
import os
import select
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from ckg.ingest import core as ingest_mod
from ckg.ingest import write as ingest_write
from ckg.ingest.write import write_lock

REPO = Path(__file__).resolve().parents[1]


def uid_of(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()[:16]


def script_meta(side: str, other: str, i: int, count: int) -> str:
    """One script of folder ``side``; its deps reach folder ``other`` and its own folder.

    Per script: a dependency on the other folder's script of the same number, one on another
    of the other folder's scripts, one on its own folder (resolved in either order), one that
    two scripts of the other folder match (ambiguous), every seventh one on nothing (missing
    in any order), and a variation's dependency that needs a variation only even-numbered
    scripts of the other folder declare.
    """
    fast = "  fast: {}\n" if i % 2 == 0 else ""
    missing = f"- tags: get,nowhere-{side}{i}\n" if i % 7 == 0 else ""
    return (
        f"alias: {side}-{i}\n"
        f"uid: {uid_of(f'{side}-{i}')}\n"
        "automation_alias: script\n"
        f"tags: [get, {side}{i}, pair-{side}{i // 2}]\n"
        "deps:\n"
        f"- tags: get,{other}{i}\n"
        f"- tags: get,{other}{(i * 7 + 3) % count}\n"
        f"- tags: get,{side}{(i + 1) % count}\n"
        f"- tags: get,pair-{other}{(i * 3) % (count // 2)}\n"
        f"{missing}"
        "variations:\n"
        f"{fast}"
        "  gpu:\n"
        "    deps:\n"
        f"    - tags: get,{other}{(i + 5) % count},_fast\n"
    )


def write_folder(root: Path, side: str, other: str, count: int = 300) -> Path:
    """An MLC repository of ``count`` scripts named ``<side>-<i>`` (see :func:`script_meta`)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "meta.yaml").write_text(f"alias: race@{side}\nuid: {uid_of('repo-' + side)}\n")
    for i in range(count):
        folder = root / "script" / f"{side}-{i}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "meta.yaml").write_text(script_meta(side, other, i, count))
    return root


def crossing_folders(base: Path, count: int = 300) -> tuple[Path, Path]:
    """Folders ``a`` and ``b`` of ``count`` scripts each, whose dependencies cross."""
    return (
        write_folder(base / "a", "a", "b", count),
        write_folder(base / "b", "b", "a", count),
    )


def graph_state(store) -> dict:
    """What resolution decides, as sets that two graphs can be compared by."""
    return {
        "artifacts": {r["u"] for r in store.run("MATCH (a:Artifact) RETURN a.uid AS u")},
        "depends_on": {
            (r["a"], r["b"], r["e"], r["m"])
            for r in store.run(
                "MATCH (a:Artifact)-[r:DEPENDS_ON]->(b:Artifact) "
                "RETURN a.uid AS a, b.uid AS b, r.entry AS e, r.matches AS m"
            )
        },
        "unresolved": {
            r["u"] for r in store.run("MATCH (u:UnresolvedDependency) RETURN u.uid AS u")
        },
        "needs": {
            (r["a"], r["u"])
            for r in store.run(
                "MATCH (a:Artifact)-[:NEEDS]->(u:UnresolvedDependency) "
                "RETURN a.uid AS a, u.uid AS u"
            )
        },
        "complete": {
            (r["u"], r["c"])
            for r in store.run("MATCH (s:Source) RETURN s.uid AS u, s.complete AS c")
        },
    }


#: A process that imports ckg, opens the store, waits for a common start time, then ingests:
#: the ingests overlap however long each process takes to start.
INGEST_AT = """
import json, sys, time
import ckg
with ckg.open() as kg:
    kg.store.run("RETURN 1")
    time.sleep(max(0.0, float(sys.argv[1]) - time.time()))
    print(json.dumps(kg.ingest(sys.argv[2]).as_dict(), default=str))
"""


def ingest_processes(
    folders: list[Path], env: dict, delay: float = 1.0, script: str = INGEST_AT
) -> list[tuple]:
    """Ingest each folder in its own process (``script``), all starting ``delay`` s from now.

    Returns ``(summary, stderr)`` per process (``IngestSummary.as_dict``); a process that
    fails fails the caller.
    """
    start = time.time() + delay
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(start), str(f)],
            env=env,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for f in folders
    ]
    done = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        done.append((json.loads(out), err))
    return done


@pytest.fixture
def writes(kg, monkeypatch) -> list[str]:
    """Every write statement sent to the store (``store.write`` and ``store.transaction``)."""
    sent: list[str] = []
    write, transaction = kg.store.write, kg.store.transaction

    def spy_write(cypher, params=None):
        sent.append(cypher)
        return write(cypher, params)

    def spy_transaction():
        sent.append("transaction")
        return transaction()

    monkeypatch.setattr(kg.store, "write", spy_write)
    monkeypatch.setattr(kg.store, "transaction", spy_transaction)
    return sent


def start_over(kg) -> None:
    """An empty graph and no manifests: the next ingest of any source is a first one."""
    kg.store.reset()
    shutil.rmtree(kg.home / "manifests", ignore_errors=True)


def sequential_state(kg, folders) -> dict:
    """:func:`graph_state` after ingesting ``folders`` one after the other, from empty."""
    start_over(kg)
    for folder in folders:
        kg.ingest(folder)
    return graph_state(kg.store)


def stderr_line(proc: subprocess.Popen, timeout: float = 60) -> str:
    """The next line ``proc`` writes to stderr ("" if it closes it), waiting ``timeout`` s."""
    ready, _, _ = select.select([proc.stderr], [], [], timeout)
    assert ready, f"no line on stderr within {timeout} s"
    return proc.stderr.readline()


# --- the tests ------------------------------------------------------------------------------

#: Concurrent runs per engine here; bench/ingest_race_bench.py makes twenty.
RUNS = 3


@pytest.fixture
def crossing(tmp_path) -> tuple[Path, Path]:
    return crossing_folders(tmp_path / "folders")


def test_two_processes_ingesting_crossing_folders_leave_the_sequential_graph(kg, crossing):
    a, b = crossing
    expected = sequential_state(kg, (a, b))  # b then a gives the same (the bench checks it)
    # every kind of outcome is there: edges across folders, ambiguous ones, missing entries
    assert len(expected["depends_on"]) == 3300 and len(expected["unresolved"]) == 386
    assert {m for *_, m in expected["depends_on"]} == {1, 2}
    for run in range(RUNS):
        start_over(kg)
        done = ingest_processes([a, b], dict(os.environ))
        assert graph_state(kg.store) == expected, f"run {run}"
        assert sorted(s["missing"] for s, _ in done)[0] == 193  # the later one saw all


def test_an_ingest_waits_for_the_lock_and_says_who_holds_it(kg, tmp_path):
    folder = write_folder(tmp_path / "a", "a", "b", count=3)
    ckg = str(Path(sys.executable).with_name("ckg"))
    with write_lock(kg.store):
        proc = subprocess.Popen(
            [ckg, "ingest", str(folder), "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        line = stderr_line(proc)
        assert line.startswith(
            f"waiting for another ingest into {kg.store.location} (pid {os.getpid()}"
        ), line
        time.sleep(0.5)
        assert proc.poll() is None
        assert kg.query("MATCH (a:Artifact) RETURN count(a) AS n") == [{"n": 0}]
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert json.loads(out)[0]["new"] == 4  # three scripts and the repository


def test_a_killed_holder_frees_the_lock(kg):
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline() == "held\n", holder.stderr.read()
        told: list[str] = []
        waiter = threading.Thread(target=take_lock, args=(kg.store, told), daemon=True)
        waiter.start()
        waiter.join(2)
        assert waiter.is_alive()  # waiting behind the holder
    finally:
        holder.kill()  # SIGKILL: no chance to release anything itself
        holder.wait()
    waiter.join(30)
    assert not waiter.is_alive(), "the lock of a killed holder was not freed"
    assert told and f"(pid {holder.pid}" in told[0]


HOLD = """
import time
import ckg
from ckg.ingest.write import write_lock
with ckg.open() as kg, write_lock(kg.store):
    print("held", flush=True)
    time.sleep(600)
"""


def take_lock(store, told: list) -> None:
    with write_lock(store, told.append):
        pass


@pytest.mark.parametrize("how", ["unchanged", "touched"])
def test_reingest_resolves_entries_left_missing_whose_targets_now_exist(
    kg, tmp_path, monkeypatch, how
):
    a, b = crossing_folders(tmp_path, count=20)
    expected = sequential_state(kg, (a, b))
    start_over(kg)
    kg.ingest(a)
    with monkeypatch.context() as patch:
        # b's ingest does not look at a's missing entries: the graph an ingest racing a's
        # used to leave (and still does, should the lock have been lost).
        patch.setattr(ingest_write, "_unresolved", lambda store, **where: [])
        kg.ingest(b)
    stale = graph_state(kg.store)
    left = stale["unresolved"] - expected["unresolved"]
    assert len(left) == 70 and stale["unresolved"] > expected["unresolved"]
    if how == "touched":
        (a / "script" / "a-0" / "run.sh").write_text("echo\n")  # not a meta file
    summary = kg.ingest(a)
    assert (summary.parsed, summary.new, summary.changed) == (0, 0, 0)
    assert summary.reresolved == len(left) and summary.wrote
    assert graph_state(kg.store) == expected
    again = kg.ingest(a)
    assert (again.reresolved, again.wrote) == (0, False)


def test_unchanged_reingest_looks_for_new_targets_only_after_another_ingest_wrote(
    kg, tmp_path, monkeypatch, writes
):
    a = write_folder(tmp_path / "a", "a", "b", count=4)
    kg.ingest(a)
    looks = []
    real = ingest_mod.resolvable
    monkeypatch.setattr(ingest_mod, "resolvable", lambda *args: looks.append(1) or real(*args))
    writes.clear()
    assert kg.ingest(a).missing == 17  # b's scripts and the variation are not there
    assert looks == [] and writes == []  # no ingest wrote since a's: not even a look
    kg.ingest(write_folder(tmp_path / "c", "c", "d", count=2))  # matches none of a's entries
    writes.clear()
    assert (kg.ingest(a).missing, looks, writes) == (17, [1], [])  # one look, nothing found
    assert (kg.ingest(a).missing, looks, writes) == (17, [1], [])  # and it is remembered


def test_an_ingest_whose_source_was_written_while_it_waited_starts_again(kg, tmp_path, monkeypatch):
    folder = write_folder(tmp_path / "a", "a", "b", count=5)
    kg.ingest(folder)
    shutil.rmtree(folder / "script" / "a-4")
    write_folder(tmp_path / "extra", "a", "b", count=6)
    shutil.copytree(tmp_path / "extra" / "script" / "a-5", folder / "script" / "a-5")
    real, calls = ingest_mod.write_lock, []

    def racing(store, *args):
        if not calls:  # this ingest has read the folder (a-4 gone, a-5 new): change it again
            calls.append(1)
            shutil.rmtree(folder / "script" / "a-5")
            shutil.rmtree(folder / "script" / "a-3")
            ingest_processes([folder], dict(os.environ), delay=0)
        return real(store, *args)

    monkeypatch.setattr(ingest_mod, "write_lock", racing)
    summary = kg.ingest(folder)
    on_disk = {uid_of(f"a-{i}") for i in range(3)} | {uid_of("repo-a")}
    assert graph_state(kg.store)["artifacts"] == on_disk
    assert (summary.new, summary.removed, summary.unchanged) == (0, 0, 4)
