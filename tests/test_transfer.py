"""Runs and whole graphs moved between homes and engines (ckg/transfer): what arrives answers
the same questions, with the same values, as what left.

Runs come from a CM repository made here (``app`` calls ``get-tool``, a cached script, so a
run has a step, a cache entry and a used artifact) and from the sklearn-digits example; the
whole graph is the real corpora plus those runs and a Pareto front.
"""

import json
import os
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from ckg.api import KnowledgeGraph
from ckg.api import open as open_kg
from ckg.core.errors import InvalidInput, NotFound, UsageError
from ckg.ingest import IngestSummary
from ckg.run.demo import EXAMPLE
from ckg.store import open_store
from ckg.store.server import stop_server
from ckg.transfer.runs import PROVENANCE

CKG = str(Path(sys.executable).with_name("ckg"))


def _repo(root: Path) -> Path:
    """A CM repository: ``app`` depends on ``get-tool`` (``cache: true``)."""
    (root / "script" / "get-tool").mkdir(parents=True)
    (root / "script" / "app").mkdir(parents=True)
    (root / "cmr.yaml").write_text("alias: transfer-repo\nuid: 00000000000000aa\n")
    (root / "script" / "get-tool" / "_cm.yaml").write_text(
        textwrap.dedent("""
        alias: get-tool
        uid: 10000000000000a1
        automation_alias: script
        tags: [get, tool]
        cache: true
        new_env_keys: [CM_TOOL_*]
        """)
    )
    (root / "script" / "get-tool" / "run.sh").write_text(
        '#!/bin/bash\necho "building the tool"\necho "CM_TOOL_BIN=$PWD/tool" > tmp-run-env.out\n'
    )
    (root / "script" / "app" / "_cm.yaml").write_text(
        textwrap.dedent("""
        alias: app
        uid: 10000000000000a2
        automation_alias: script
        tags: [app, transfer]
        default_env: {CM_APP_SIZE: "3"}
        deps:
          - tags: get,tool
        """)
    )
    (root / "script" / "app" / "run.sh").write_text(
        textwrap.dedent("""\
        #!/bin/bash
        printf '{"Accuracy": %s, "Result": 7, "Result_Units": "Samples/s"}' "$CM_APP_SIZE" \\
          > cm-result.json
        echo "tool=$CM_TOOL_BIN"
        """)
    )
    return root


def _record_run(kg, tmp_path) -> str:
    kg.ingest(str(_repo(tmp_path / "repo")))
    [run] = kg.run("app").runs
    assert run.status == "ok"
    return run.uid


def _strip(value):
    """``value`` less what an import adds, its numbers to the 15 significant digits in which
    the embedded engine returns them (FalkorDB's replies), so that engines compare."""
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k not in PROVENANCE}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    if isinstance(value, float):
        return float(f"{value:.15g}")
    return value


def _provenance(kg, uid: str) -> dict:
    """What a user asks of a run: its properties, artifact, platform, experiment,
    measurements with their metrics, the artifacts it used, its steps and their cache entries."""
    params = {"uid": uid}
    [row] = kg.query(
        "MATCH (r:Run {uid: $uid})-[:OF]->(a:Artifact) MATCH (r)-[:ON]->(p:Platform) "
        "MATCH (r)-[:IN]->(e:Experiment) RETURN r, a, p, e",
        params,
    )
    measured = kg.query(
        "MATCH (:Run {uid: $uid})-[:MEASURED]->(m:Measurement)-[:OF_METRIC]->(k:Metric) "
        "RETURN m, k ORDER BY m.uid",
        params,
    )
    used = kg.query(
        "MATCH (:Run {uid: $uid})-[:USED]->(a:Artifact) RETURN a.uid AS uid ORDER BY uid", params
    )
    steps = kg.query(
        "MATCH (:Run {uid: $uid})-[:CALLED]->(s:Run)-[:OF]->(a:Artifact) "
        "OPTIONAL MATCH (s)-[:MADE]->(c:CacheEntry) OPTIONAL MATCH (c)-[:OF]->(ca:Artifact) "
        "OPTIONAL MATCH (c)-[:ON]->(cp:Platform) "
        "RETURN s, a.alias AS artifact, c, ca.uid AS cache_of, cp.uid AS cache_on "
        "ORDER BY s.uid",
        params,
    )
    return _strip({**row, "measured": measured, "used": used, "steps": steps})


def _graph(store) -> list[str]:
    """Every node and relationship with every property, as sorted JSON lines (read without
    ckg.transfer, so that it checks that code rather than repeats it). Properties an import
    adds are left out: callers compare graphs that went through the same imports."""
    key = "coalesce(n.uid, n.name)"
    nodes = store.run(f"MATCH (n) RETURN labels(n) AS labels, n ORDER BY {key}")
    rels = store.run(
        "MATCH (a)-[r]->(b) RETURN labels(a) AS a, coalesce(a.uid, a.name) AS src, type(r) AS t, "
        "r, labels(b) AS b, coalesce(b.uid, b.name) AS dst"
    )
    lines = [
        json.dumps(_strip(row), sort_keys=True)
        for row in nodes + rels
        if "IngestLock" not in row.get("labels", [])
    ]
    return sorted(lines)


@pytest.fixture
def fresh(request, tmp_path):
    """Opens a second, empty graph with a home of its own on the engine named. There is one
    Neo4j server here: opening it there empties it, the graph a test exported from included."""
    home = tmp_path / "other-home"
    opened = []

    def make(engine: str) -> KnowledgeGraph:
        uri = request.getfixturevalue("neo4j_uri") if engine == "neo4j" else "embedded"
        graph = open_kg(uri, home=home)
        if engine == "neo4j":
            graph.reset()
        opened.append(graph)
        return graph

    yield make
    for graph in opened:
        graph.close()
    stop_server(home)


# --- runs ---------------------------------------------------------------------------------


@pytest.mark.parametrize("engine", ["embedded", "neo4j"])
def test_an_exported_run_answers_the_same_provenance_in_a_fresh_graph(kg, fresh, engine, tmp_path):
    uid = _record_run(kg, tmp_path)
    exported = kg.export_runs([uid[:12]], tmp_path / "exported")
    assert [r["run"] for r in exported.runs] == [uid]
    before = _provenance(kg, uid)
    log = "runs/" + uid + "/ckg-run.log"
    origin = f"{kg.store.engine} {kg.store.location}"

    other = fresh(engine)
    ingested = other.ingest(str(tmp_path / "exported"))
    assert isinstance(ingested, IngestSummary) and ingested.kind == "runs"
    summary = ingested.runs_imported
    with pytest.warns(DeprecationWarning, match="read IngestSummary.runs_imported.runs"):
        assert ingested.runs == [uid]  # the name it had when ingest returned the RunImport

    assert summary.runs == [uid] and summary.kept == 0 and summary.created["Run"] == 2
    after = _provenance(other, uid)
    assert after == before
    assert after["measured"] and after["steps"][0]["c"] and after["used"]
    assert {m["m"]["metric"]: m["m"]["value"] for m in after["measured"]}["accuracy"] == 3
    [row] = other.query("MATCH (r:Run {uid: $uid}) RETURN r", {"uid": uid})
    assert row["r"]["imported_from"] == origin
    assert row["r"]["exported_with"].startswith("ckg ")
    assert (other.home / log).read_bytes() == (kg.home / log).read_bytes()

    graph = _graph(other.store)
    again = other.ingest(str(tmp_path / "exported")).runs_imported
    assert (again.created, again.logs) == ({}, 0)
    assert again.kept == sum(summary.created.values())
    assert _graph(other.store) == graph


def test_importing_into_the_graph_it_came_from_changes_nothing(kg, tmp_path):
    uid = _record_run(kg, tmp_path)
    graph = _graph(kg.store)
    kg.export_runs([uid], tmp_path / "exported")
    summary = kg.import_runs(tmp_path / "exported")
    assert summary.created == {} and summary.logs == 0
    assert _graph(kg.store) == graph


def test_a_node_already_here_keeps_its_own_properties(kg, tmp_path):
    uid = _record_run(kg, tmp_path)
    kg.export_runs([uid], tmp_path / "exported")
    kg.reset()
    kg.store.upsert_nodes(
        "Artifact", [{"key": "10000000000000a2", "props": {"alias": "app", "source_uid": "mine"}}]
    )
    kg.import_runs(tmp_path / "exported")
    [row] = kg.query("MATCH (r:Run {uid: $uid})-[:OF]->(a:Artifact) RETURN a", {"uid": uid})
    assert row["a"] == {"uid": "10000000000000a2", "alias": "app", "source_uid": "mine"}


def test_a_run_exported_again_keeps_its_first_origin_and_reads_no_foreign_folder(
    kg, fresh, tmp_path
):
    uid = _record_run(kg, tmp_path)
    origin = f"{kg.store.engine} {kg.store.location}"
    kg.export_runs([uid], tmp_path / "first")
    relay = fresh("embedded")
    relay.ingest(str(tmp_path / "first"))
    elsewhere = tmp_path / "elsewhere"  # a workdir outside the relay's home, as a record may name
    elsewhere.mkdir()
    (elsewhere / "secret.log").write_text("not for export")
    relay.query(
        "MATCH (r:Run {uid: $uid}) SET r.workdir = $dir", {"uid": uid, "dir": str(elsewhere)}
    )
    [run] = relay.export_runs([uid], tmp_path / "second").runs
    assert sorted(Path(f).name for f in run["logs"]) == ["ckg-run.log", "cm-result.json"]
    kg.reset()
    kg.ingest(str(tmp_path / "second"))
    [row] = kg.query("MATCH (r:Run {uid: $uid}) RETURN r.imported_from AS origin", {"uid": uid})
    assert row["origin"] == origin


def test_export_of_an_experiment_takes_its_runs_not_their_steps(kg, tmp_path):
    kg.ingest(str(_repo(tmp_path / "repo")))
    report = kg.run("app", grid={"CM_APP_SIZE": [1, 2]})
    summary = kg.export_runs([], tmp_path / "exported", experiment=report.experiment)
    assert sorted(r["run"] for r in summary.runs) == sorted(r.uid for r in report.runs)
    with pytest.raises(NotFound, match="no runs of experiment 'nope'"):
        kg.export_runs([], tmp_path / "x", experiment="nope")
    with pytest.raises(UsageError, match="name the runs to export"):
        kg.export_runs([], tmp_path / "x")


def test_an_export_that_points_outside_its_folder_is_refused(ckg_home, tmp_path):
    folder = tmp_path / "evil"
    folder.mkdir()
    (folder / "ckg-export.json").write_text(
        json.dumps({"format": "ckg-export", "version": 1, "runs": {"run-1": "../secret.json"}})
    )
    with open_kg("embedded", home=ckg_home) as kg:
        with pytest.raises(InvalidInput, match="'../secret.json' is not a path inside"):
            kg.ingest(str(folder))
        (folder / "ckg-export.json").write_text(
            json.dumps({"format": "ckg-export", "version": 9, "runs": {}})
        )
        with pytest.raises(InvalidInput, match="format version 9 is newer"):
            kg.ingest(str(folder))


def _ckg(args: list[str], env: dict, code: int = 0) -> subprocess.CompletedProcess:
    done = subprocess.run([CKG, *args], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == code, f"ckg {' '.join(args)}: {done.stderr}"
    return done


def test_cli_export_then_ingest_elsewhere_with_logs_capped_and_checked(ckg_home, tmp_path):
    with KnowledgeGraph(open_store("embedded", home=ckg_home), ckg_home) as kg:
        uid = _record_run(kg, tmp_path)
    env = {**os.environ, "CKG_HOME": str(ckg_home), "CKG_DB": "embedded"}
    env.pop("NEO4J_URI", None)
    out = tmp_path / "exported"
    done = _ckg(["export", uid, "--to", str(out), "--max-log-bytes", "10", "--json"], env)
    [run] = json.loads(done.stdout)["runs"]
    record = json.loads(Path(run["file"]).read_text())
    [log] = [e for e in record["logs"] if e["name"] == "ckg-run.log"]
    source_log = (ckg_home / "runs" / uid / "ckg-run.log").read_bytes()
    assert log["truncated"] and log["kept"] == 10 and log["size"] == len(source_log)
    assert (out / log["file"]).read_bytes() == source_log[-10:]

    home2 = tmp_path / "home2"
    env2 = {**env, "CKG_HOME": str(home2)}
    try:
        refused = _ckg(["ingest", str(out), "--ref", "main"], env2, 2).stderr
        assert refused.endswith("is a ckg export of runs: --ref does not apply to it\n")
        (out / log["file"]).write_bytes(b"0123456789")  # altered after the export
        failed = _ckg(["ingest", str(out), "--strict"], env2, 1)
        assert failed.stderr.count("\n") == 1 and "--strict; nothing written" in failed.stderr
        done = _ckg(["ingest", str(out), "--json"], env2)
        [summary] = json.loads(done.stdout)
        assert summary["runs"] == [uid] and summary["created"]["Run"] == 2
        assert "not the file" in summary["warnings"][0]
        assert not (home2 / "runs" / uid / "ckg-run.log").exists()
        status = json.loads(_ckg(["db", "status", "--json"], env2).stdout)
        assert status["nodes"]["Run"] == 2 and status["relationships"]["CALLED"] == 1
        assert "nodes created" in _ckg(["ingest", str(out)], env2).stdout

        assert _ckg(["export", "run-nope", "--to", str(tmp_path / "x")], env, 2).stderr == (
            "ckg: error: no run 'run-nope' in the graph (see ckg runs)\n"
        )
        assert (
            "not an export folder"
            in _ckg(["export", uid, "--to", str(tmp_path / "repo")], env, 2).stderr
        )
        Path(run["file"]).write_text("{not json")
        broken = _ckg(["ingest", str(out)], env2, 1).stderr
        assert broken.startswith(f"ckg: error: {run['file']}: not readable JSON")
    finally:
        stop_server(home2)


# --- whole graphs -------------------------------------------------------------------------


def test_a_graph_file_round_trip_keeps_parallel_dependencies(kg, tmp_path):
    kg.query(
        "CREATE (:Artifact {uid: 'a', tags: ['x', 'y'], n: 1.5})-[:DEPENDS_ON "
        "{entry: 'a#deps##0', position: 0}]->(:Artifact {uid: 'b', tags: []})"
    )
    kg.query(
        "MATCH (a:Artifact {uid: 'a'}), (b:Artifact {uid: 'b'}) "
        "CREATE (a)-[:DEPENDS_ON {entry: 'a#deps#v#1', position: 1}]->(b), "
        "(a)-[:IN_FRONT {front_rank: 1}]->(:Front {uid: 'f', points: 2})"
    )
    graph = _graph(kg.store)
    file = tmp_path / "graph.jsonl.gz"
    exported = kg.export_graph(file)
    assert exported.relationships == {"DEPENDS_ON": 2, "IN_FRONT": 1}
    kg.reset()
    imported = kg.import_graph(file)
    assert imported.nodes == {"Artifact": 2, "Front": 1} and not imported.warnings
    assert _graph(kg.store) == graph
    kg.import_graph(file)
    assert _graph(kg.store) == graph


def test_a_cut_short_or_foreign_graph_file_is_one_error_and_parallels_are_told(kg, tmp_path):
    kg.query("CREATE (a:Tag {name: 'a'})-[:NEXT]->(b:Tag {name: 'b'}), (a)-[:NEXT]->(b)")
    file = tmp_path / "graph.jsonl"
    assert kg.export_graph(file).warnings == [
        "1 parallel NEXT relationship(s) (one type between the same two nodes) merge into one "
        "when written"
    ]
    lines = file.read_text().splitlines()
    (tmp_path / "short.jsonl").write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(InvalidInput, match="cut short"):
        kg.import_graph(tmp_path / "short.jsonl")
    (tmp_path / "bad.jsonl").write_text(lines[0] + '\n{"label": "Tag`x", "key": "c"}\n')
    with pytest.raises(InvalidInput, match=r"bad.jsonl:2: not a valid label"):
        kg.import_graph(tmp_path / "bad.jsonl")
    (tmp_path / "list.jsonl").write_text("[]\n")
    with pytest.raises(InvalidInput, match="not a ckg graph file"):
        kg.import_graph(tmp_path / "list.jsonl")
    with pytest.raises(NotFound, match="no such file"):
        kg.import_graph(tmp_path / "none.jsonl")


def test_copy_refuses_a_graph_that_is_not_empty_unless_merging(kg, tmp_path):
    kg.query("CREATE (:Tag {name: 'a'})-[:NEXT {w: 1}]->(:Tag {name: 'b'})")
    home = tmp_path / "copy-home"
    try:
        first = kg.copy_graph("embedded", home=home)
        assert (first.nodes, first.relationships, first.warnings) == ({"Tag": 2}, {"NEXT": 1}, [])
        with pytest.raises(UsageError, match="already holds 2 node.*add --merge"):
            kg.copy_graph("embedded", home=home)
        again = kg.copy_graph("embedded", home=home, merge=True)
        assert again.nodes == {"Tag": 2}
        with open_store("embedded", home=home) as target:
            assert _graph(target) == _graph(kg.store)
        if kg.store.engine != "neo4j":
            with pytest.raises(UsageError, match="is the graph being copied"):
                kg.copy_graph("embedded")
    finally:
        stop_server(home)


#: Read commands whose --json must not change when the graph moves to the other engine.
READS = [
    ["find", "--tags", "get,python3"],
    ["show", "d0b5dd74373f4a62"],  # get-python3
    ["deps", "d775cac873ee4231", "--depth", "2"],  # app-mlperf-inference
    ["results", "list", "--dataset", "SQuAD1.1"],
    ["compare", "--task", "Question Answering", "--dataset", "SQuAD1.1", "--metric", "F1"],
    [
        "query",
        "MATCH (r:Run)-[x:IN_FRONT]->(f:Front) RETURN r.uid AS run, r.params AS params, "
        "x.front_rank AS rank, f AS front ORDER BY run",
    ],
]


@pytest.fixture(scope="module")
def full(corpora, tmp_path_factory):
    """An embedded home with real content: an MLC corpus, published results, the demo's runs
    and their Pareto front. Yields its environment, the experiment's uid and the whole graph
    (:func:`_graph`); no test changes it."""
    home = tmp_path_factory.mktemp("full-home")
    with open_kg("embedded", home=home) as kg:
        kg.ingest(str(corpora / "mlperf-automations"))
        kg.import_results([corpora / "pwc", corpora / "mlperf"])
        kg.ingest(str(EXAMPLE))
        report = kg.run(
            "sklearn-digits", grid=[{"model": "logreg", "C": [0.001]}, {"model": "knn", "k": 1}]
        )
        assert not report.failed
        kg.pareto("accuracy,latency", experiment=report.experiment)
        graph = _graph(kg.store)
    env = {**os.environ, "CKG_HOME": str(home), "CKG_DB": "embedded"}
    env.pop("NEO4J_URI", None)
    yield env, report.experiment, graph
    stop_server(home)


def test_a_graph_copied_into_neo4j_answers_every_read_the_same(full, neo4j_uri, tmp_path):
    env, experiment, graph = full
    with open_store(neo4j_uri) as target:
        target.reset()
    copied = json.loads(_ckg(["db", "copy", "--to", neo4j_uri, "--json"], env).stdout)
    assert copied["warnings"] == [] and copied["nodes"]["Front"] == 1
    neo4j_env = {**env, "CKG_DB": neo4j_uri, "CKG_HOME": str(tmp_path / "neo4j-home")}
    reads = [[*args, "--json"] for args in READS]
    reads.append(["pareto", "accuracy,latency", "--experiment", experiment, "--no-write", "--json"])
    # Each process mostly waits (a Neo4j connection, the server): run a few at once.
    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(
            pool.map(
                lambda job: json.loads(_ckg(*job).stdout),
                [(args, e) for args in reads for e in (env, neo4j_env)],
            )
        )
    for args, here, there in zip(reads, answers[::2], answers[1::2], strict=True):
        assert here, f"ckg {' '.join(args)} found nothing to compare"
        assert here == there, f"ckg {' '.join(args)} answers differently after the copy"
    with open_store(neo4j_uri) as target:
        assert _graph(target) == graph
    refused = _ckg(["db", "copy", "--to", neo4j_uri], env, 2).stderr
    assert refused.startswith(f"ckg: error: {neo4j_uri} already holds ") and "--merge" in refused
    assert "is the graph being copied" in _ckg(["db", "copy", "--to", "embedded"], env, 2).stderr


def test_a_graph_exported_and_imported_into_a_fresh_home_is_the_same(full, tmp_path):
    env, _, graph = full
    file = tmp_path / "graph.jsonl.gz"
    exported = json.loads(_ckg(["db", "export", str(file), "--json"], env).stdout)
    fresh = {**env, "CKG_HOME": str(tmp_path / "fresh")}
    try:
        imported = json.loads(_ckg(["db", "import", str(file), "--json"], fresh).stdout)
        assert imported["nodes"] == exported["nodes"]
        assert imported["relationships"] == exported["relationships"]
        with open_store("embedded", home=tmp_path / "fresh") as target:
            assert _graph(target) == graph
    finally:
        stop_server(tmp_path / "fresh")
