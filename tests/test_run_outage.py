"""The graph made unavailable for real in the middle of a ``ckg run`` process, then
``ckg db recover``: every journalled run and measurement ends up in the graph.

Each test runs ``ckg run outage --grid n=1,2,3`` as a real process. The step of point 2 takes
the graph away and the step itself returns normally, so point 1 is written to the graph and
points 2 and 3 only to the journal:

- Neo4j: ckg reaches the real server of ``neo4j_uri`` through a TCP proxy in this file; the
  step creates a trigger file, the proxy drops every connection and stops listening, and
  the step returns once the proxy port refuses connections.
- embedded: the step stops the server with ``ckg db stop`` and puts a folder where the
  server's log file goes, so the store's attempt to start it again fails (redis-server
  refuses a log file it cannot open) instead of restarting it silently.
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from ckg.api import KnowledgeGraph
from ckg.run import journal
from ckg.store import open_store
from tests.tcp_proxy import Proxy

CKG = str(Path(sys.executable).with_name("ckg"))

# The step: point 2 takes the graph away (OUTAGE_COMMAND, or the trigger file the proxy
# watches), then waits for OUTAGE_DONE to hold; every point prints a metric of its own.
STEP = """
import os, socket, subprocess, sys, time
from pathlib import Path

n = int(sys.argv[1])
if n == 2:
    if os.environ.get("OUTAGE_COMMAND"):
        subprocess.run(os.environ["OUTAGE_COMMAND"], shell=True, check=True)
    if os.environ.get("OUTAGE_TRIGGER"):
        Path(os.environ["OUTAGE_TRIGGER"]).touch()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", int(os.environ["OUTAGE_PORT"])), 0.2).close()
            except OSError:
                break
            time.sleep(0.02)
        else:
            sys.exit("the proxy still accepts connections")
print('{"score": %d}' % n)
"""


def _ckg(*args: str, db: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CKG, "--db", db, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture
def outage_workflow(tmp_path) -> Path:
    folder = tmp_path / "outage"
    folder.mkdir()
    (folder / "step.py").write_text(textwrap.dedent(STEP))
    (folder / "ckg.yaml").write_text(
        "alias: outage\nuid: wf-outage\nparams: {n: 1}\n"
        'run: "{python} {artifact_dir}/step.py {n}"\n'
    )
    return folder


def _journalled(home: Path) -> dict[str, set[str]]:
    keys: dict[str, set[str]] = {"Run": set(), "Measurement": set()}
    for records in journal.read(home):
        for node in records.nodes:
            if node.label in keys:
                keys[node.label].add(node.key)
    return keys


def _in_graph(store) -> dict[str, set[str]]:
    runs = store.run("MATCH (r:Run) RETURN r.uid AS uid")
    measured = store.run("MATCH (:Run)-[:MEASURED]->(m:Measurement) RETURN m.uid AS uid")
    return {"Run": {r["uid"] for r in runs}, "Measurement": {r["uid"] for r in measured}}


def _run_through_outage(db: str, home: Path, env: dict) -> dict[str, set[str]]:
    """``ckg run`` of the grid; checks that two runs were left to the journal."""
    done = _ckg("run", "outage", "--grid", "n=1,2,3", "--json", db=db, env=env)
    assert done.returncode == 1, done.stdout + done.stderr
    assert json.loads(done.stdout)["unrecorded"] == 2
    assert "2 runs are only in the journal" in done.stderr and "ckg db recover" in done.stderr
    journalled = _journalled(home)
    assert len(journalled["Run"]) == 3 and len(journalled["Measurement"]) >= 3 * 5
    return journalled


def _recover_and_check(db: str, store, journalled: dict[str, set[str]]) -> None:
    before = _in_graph(store)
    assert len(journalled["Run"] - before["Run"]) == 2  # point 1 reached the graph, 2 and 3 not
    done = _ckg("db", "recover", "--json", db=db)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["journalled"] == 3 and summary["recovered"] == 2
    after = _in_graph(store)
    assert journalled["Run"] <= after["Run"]
    assert journalled["Measurement"] <= after["Measurement"]
    scores = store.run(
        "MATCH (r:Run)-[:MEASURED]->(m:Measurement {metric: 'score'}) RETURN m.value AS v"
    )
    assert sorted(r["v"] for r in scores) == [1.0, 2.0, 3.0]


def test_neo4j_cut_off_mid_run_then_recover(neo4j_uri, ckg_home, outage_workflow, tmp_path):
    store = open_store(neo4j_uri)
    try:
        store.reset()
        store.ensure_schema()
        KnowledgeGraph(store, ckg_home).ingest(str(outage_workflow))
        proxy = Proxy(urlsplit(neo4j_uri).port)
        trigger = tmp_path / "cut-the-graph"
        proxy.close_when(trigger, limit_s=50)
        try:
            journalled = _run_through_outage(
                f"bolt://127.0.0.1:{proxy.port}",
                ckg_home,
                {"OUTAGE_TRIGGER": str(trigger), "OUTAGE_PORT": str(proxy.port)},
            )
        finally:
            proxy.close()
            proxy.join()
        _recover_and_check(neo4j_uri, store, journalled)
    finally:
        store.close()


def test_embedded_server_gone_mid_run_then_recover(ckg_home, outage_workflow):
    with open_store("embedded", home=ckg_home) as store:
        store.ensure_schema()
        KnowledgeGraph(store, ckg_home).ingest(str(outage_workflow))
    log = ckg_home / "falkordb.log"
    outage = f"{CKG} db stop && mv {log} {log}.saved && mkdir {log}"
    journalled = _run_through_outage("embedded", ckg_home, {"OUTAGE_COMMAND": outage})
    log.rmdir()
    (ckg_home / "falkordb.log.saved").rename(log)
    with open_store("embedded", home=ckg_home) as store:
        _recover_and_check("embedded", store, journalled)
