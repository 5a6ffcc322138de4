"""Named queries: header parsing, parameter binding, and every shipped query run on both
engines over the same hand-made graph, with answers checked against values worked out here."""

import json

import pytest
from typer.testing import CliRunner

from ckg.cli import load_commands
from ckg.cli.app import app
from ckg.core.errors import InvalidInput, NotFound, UsageError
from ckg.core.records import Edge, Node, Records
from ckg.graph import named
from ckg.ingest.link import link_code

load_commands()  # every command on app, as `ckg --help` lists them

NAMES = sorted(p.stem for p in named.QUERIES_DIR.glob("*.cypher"))
REQUIRED = {
    "compare-papers",
    "paper-vs-reproduced",
    "platform-leaderboard",
    "artifacts-by-tag",
    "dependency-closure",
    "unresolved-deps",
    "unreproduced-results",
}


def test_every_required_query_exists_and_documents_itself():
    assert REQUIRED <= set(NAMES)
    for query in named.all_queries():
        assert query.description.endswith(".")
        assert query.example.startswith(f"ckg query {query.name}")
        assert all(p.description for p in query.params)
        # Portable Cypher only: none of the constructs FalkorDB lacks.
        for construct in ("EXISTS {", "COUNT {", "=~", "datetime(", "elementId(", "apoc."):
            assert construct not in query.cypher, (query.name, construct)


def test_missing_parameter_is_named():
    query = named.load("compare-papers")
    with pytest.raises(UsageError, match="query compare-papers needs parameter 'dataset'"):
        query.bind({"task": "Question Answering", "metric": "f1"})


def test_unknown_parameter_is_refused_with_the_known_ones():
    with pytest.raises(UsageError, match=r"has no parameter 'top' \(parameters: artifact\)"):
        named.load("unresolved-deps").bind({"top": 3})


def test_bind_fills_optional_splits_lists_and_maps_metric_aliases():
    assert named.load("unreproduced-results").bind({"metric": "Top 1 Accuracy"}) == {
        "task": None,
        "dataset": None,
        "metric": "top1_accuracy",
    }
    assert named.load("artifacts-by-tag").bind({"tags": "get, python"}) == {
        "tags": ["get", "python"]
    }


def test_query_file_by_path_with_default_parameter(tmp_path):
    path = tmp_path / "top.cypher"
    path.write_text(
        "// Top results.\n//\n// Parameters:\n"
        "//   n  (default 3) How many; '$x' in text is no param.\n"
        "MATCH (r:Result) RETURN r.uid AS uid, '$notaparam' AS s LIMIT $n\n"
    )
    query = named.load(str(path))
    assert (query.name, query.bind({})) == ("top", {"n": 3})
    assert named.find(str(path)) == query


def test_header_and_cypher_must_agree(tmp_path):
    path = tmp_path / "bad.cypher"
    path.write_text("// Bad.\n// Parameters:\n//   a  A.\nMATCH (n) WHERE n.x = $b RETURN n\n")
    with pytest.raises(InvalidInput, match=r"used but not declared: \['b'\].*not used: \['a'\]"):
        named.load(str(path))
    path.write_text("MATCH (n) RETURN n\n")
    with pytest.raises(InvalidInput, match="must start with a one-line description"):
        named.load(str(path))
    path.write_text("// Aliases.\n// Table: alias, kind\nMATCH (a) RETURN a.alias AS alias\n")
    with pytest.raises(InvalidInput, match="Table: names 'kind', which the query does not return"):
        named.load(str(path))
    assert all(set(q.table) for q in named.all_queries())  # every shipped query says


def test_unknown_names_and_raw_cypher():
    with pytest.raises(NotFound, match="no named query 'nope'; known: artifacts-by-tag"):
        named.load("nope")
    assert named.find("MATCH (n) RETURN n") is None
    assert named.find("compare-papers").name == "compare-papers"


def test_cli_lists_queries_and_names_a_missing_parameter():
    runner = CliRunner()
    listed = runner.invoke(app, ["queries", "--json"])
    assert listed.exit_code == 0
    assert {q["name"] for q in json.loads(listed.output)} == set(NAMES)
    missing = runner.invoke(app, ["query", "platform-leaderboard", "-p", "model=resnet50"])
    assert isinstance(missing.exception, UsageError)
    assert "needs parameter 'scenario'" in str(missing.exception)


# --- every query on both engines ----------------------------------------------------------

TABLE = """paper,task,dataset,model,metric,value,code
arXiv:1810.04805,Question Answering,SQuAD1.1,BERT-large,F1,90.9,https://github.com/Acme/bert-repro
arXiv:1810.04805,Question Answering,SQuAD1.1,BERT-large,EM,84.1,https://github.com/Acme/bert-repro
https://arxiv.org/pdf/1907.11692v1.pdf,Question Answering,SQuAD1.1,RoBERTa,F1,94.6,
,Question Answering,SQuAD1.1,Baseline,F1,88.0 ± 0.5,
"""

MLPERF = [
    {
        "Organization": "Acme", "Platform": "box1", "SystemName": "Acme Box", "Model": "resnet50",
        "Scenario": "Offline", "Division": "closed", "version": "v4.0", "Result": 1000.0,
        "Result_Units": "Samples/s", "Units": "Samples/s", "Accuracy": 76.0,
        "Result_Power": 100.0, "Result_Power_Units": "Watts", "Inference_per_Joule": 10.0,
        "host_processor_core_count": 8, "accelerators_per_node": 1,
        "accelerator_model_name": "W1",
    },
    {
        "Organization": "Bolt", "Platform": "b2", "SystemName": "Bolt Two", "Model": "resnet50",
        "Scenario": "Offline", "Division": "closed", "version": "v4.0", "Result": 3000.0,
        "Result_Units": "Samples/s", "Units": "Samples/s", "Accuracy": 75.9,
    },
    {
        "Organization": "Bolt", "Platform": "b2", "SystemName": "Bolt Two", "Model": "resnet50",
        "Scenario": "SingleStream", "Division": "closed", "version": "v4.0", "Result": 0.5,
        "Result_Units": "ms", "Units": "ms", "Accuracy": 75.9,
    },
]  # fmt: skip


def _artifact(uid, alias, tags, fmt="cm"):
    props = {"uid": uid, "alias": alias, "kind": "script", "format": fmt, "tags": tags}
    return Node("Artifact", uid, props)


@pytest.fixture
def graph(kg, tmp_path):
    """Results through the importers, artifacts, runs and measurements written directly."""
    (tmp_path / "papers.csv").write_text(TABLE)
    (tmp_path / "cm-result.json").write_text(json.dumps(MLPERF))
    report = kg.import_results([tmp_path / "papers.csv", tmp_path / "cm-result.json"])
    assert report.results == 4 + 8
    records = Records(
        nodes=[
            Node("Source", "s1", {"uid": "s1", "location": "https://github.com/acme/bert-repro"}),
            _artifact("a1", "bert-repro", ["bert", "nlp"], fmt="generic"),
            _artifact("app", "app", ["app", "demo"]),
            _artifact("lib1", "lib-one", ["lib"]),
            _artifact("lib2", "lib-two", ["lib", "bert"]),
            _artifact("lone", "lone", ["lib"]),
            Node("UnresolvedDependency", "app#deps##2", {"uid": "app#deps##2", "kind": "deps",
                 "tags": ["get", "cuda"], "status": "missing"}),
            Node("Platform", "pl1", {"uid": "pl1", "name": "laptop"}),
            # r1 names the paper's model, r2 declares the result, r3 runs another model
            Node("Run", "r1", {"uid": "r1", "status": "ok", "started_at": "2025-01-01T00:00:00",
                               "params": '{"model": "bert-large"}'}),
            Node("Run", "r2", {"uid": "r2", "status": "ok", "started_at": "2025-01-02T00:00:00",
                               "params": "{}"}),
            Node("Run", "r3", {"uid": "r3", "status": "ok", "started_at": "2025-01-03T00:00:00",
                               "params": '{"model": "RoBERTa"}'}),
            Node("Measurement", "m1", {"uid": "m1", "metric": "f1", "value": 90.0}),
            Node("Measurement", "m2", {"uid": "m2", "metric": "f1", "value": 91.8,
                                       "mean": 91.7, "stdev": 0.2, "n": 3}),
            Node("Measurement", "m3", {"uid": "m3", "metric": "latency", "value": 0.2}),
            Node("Measurement", "m4", {"uid": "m4", "metric": "f1", "value": 94.0}),
        ],
        edges=[
            Edge("CONTAINS", "Source", "s1", "Artifact", "a1"),
            Edge("DEPENDS_ON", "Artifact", "app", "Artifact", "lib1"),
            Edge("DEPENDS_ON", "Artifact", "lib1", "Artifact", "lib2"),
            Edge("DEPENDS_ON", "Artifact", "lib2", "Artifact", "lib1"),
            Edge("NEEDS", "Artifact", "app", "UnresolvedDependency", "app#deps##2"),
            Edge("OF", "Run", "r1", "Artifact", "a1"),
            Edge("OF", "Run", "r2", "Artifact", "a1"),
            Edge("OF", "Run", "r3", "Artifact", "a1"),
            Edge("ON", "Run", "r1", "Platform", "pl1"),
            Edge("MEASURED", "Run", "r1", "Measurement", "m1"),
            Edge("MEASURED", "Run", "r2", "Measurement", "m2"),
            Edge("MEASURED", "Run", "r2", "Measurement", "m3"),
            Edge("MEASURED", "Run", "r3", "Measurement", "m4"),
        ],
    )  # fmt: skip
    kg.store.write_records(records)
    bert_f1 = kg.query("MATCH (r:Result {model: 'BERT-large', metric: 'f1'}) RETURN r.uid AS u")
    kg.store.upsert_edges(
        "REPRODUCES", "Run", "Result", [{"src": "r2", "dst": bert_f1[0]["u"], "props": {}}]
    )
    assert link_code(kg.store) == 1  # the table's code link meets Source s1's location
    return kg


def _run(kg, name, **params):
    return named.run(kg.store, name, params)


def _cols(rows, *columns):
    return [tuple(row[c] for c in columns) for row in rows]


def test_compare_papers(graph):
    rows = _run(graph, "compare-papers", task="Question Answering", dataset="SQuAD1.1", metric="F1")
    assert _cols(rows, "model", "value", "stderr") == [
        ("RoBERTa", 94.6, None),
        ("BERT-large", 90.9, None),
        ("Baseline", 88.0, 0.5),
    ]
    bert = rows[1]
    assert bert["paper_url"] == "https://arxiv.org/abs/1810.04805"
    assert bert["code"] == ["https://github.com/acme/bert-repro"]
    assert bert["artifacts"] == ["a1"] and rows[0]["artifacts"] == []
    assert rows[2]["paper"] is None and rows[2]["raw"] == "88.0 ± 0.5"


def test_compare_papers_by_dataset_alone_lists_every_metric(graph):
    rows = _run(graph, "compare-papers", dataset="SQuAD1.1")
    f1 = [r for r in rows if r["metric"] == "f1"]
    assert [r["model"] for r in f1] == ["RoBERTa", "BERT-large", "Baseline"]
    metrics = [r["metric"] for r in rows]
    assert metrics == sorted(metrics) and len(rows) > len(f1)
    assert _run(graph, "compare-papers", dataset="no such dataset") == []


def test_paper_vs_reproduced(graph):
    rows = _run(graph, "paper-vs-reproduced", paper="arXiv:1810.04805v2", metric="F1")
    assert _cols(rows, "model", "reported", "reproduced", "stdev", "run", "platform", "how") == [
        ("BERT-large", 90.9, 90.0, None, "r1", "pl1", "implements"),
        ("BERT-large", 90.9, 91.7, 0.2, "r2", None, "declared"),  # the mean over repeats
    ]  # r3, a run of RoBERTa, is compared with no BERT result
    assert [round(r["ratio"], 6) for r in rows] == [round(90.0 / 90.9, 6), round(91.7 / 90.9, 6)]
    every = _run(graph, "paper-vs-reproduced", paper="arxiv:1810.04805")
    assert _cols(every[:1], "metric", "reported", "reproduced", "run", "ratio") == [
        ("exact_match", 84.1, None, None, None),  # reported, reproduced by no run yet
    ]
    assert every[1:] == rows


def test_platform_leaderboard(graph):
    rows = _run(graph, "platform-leaderboard", model="resnet50", scenario="Offline")
    assert _cols(rows, "system", "samples_per_s", "samples_per_j", "power_w", "accuracy") == [
        ("Bolt Two", 3000.0, None, None, 75.9),
        ("Acme Box", 1000.0, 10.0, 100.0, 76.0),
    ]
    single = _run(graph, "platform-leaderboard", model="resnet50", scenario="SingleStream")
    assert _cols(single, "system", "latency_s") == [("Bolt Two", 0.0005)]


def test_artifacts_by_tag(graph):
    assert _cols(_run(graph, "artifacts-by-tag", tags="bert"), "alias") == [
        ("bert-repro",),
        ("lib-two",),
    ]
    assert _cols(_run(graph, "artifacts-by-tag", tags=["lib", "bert"]), "uid") == [("lib2",)]


def test_dependency_closure_follows_cycles_once(graph):
    rows = _run(graph, "dependency-closure", artifact="app")
    assert _cols(rows, "alias") == [("lib-one",), ("lib-two",)]
    assert _run(graph, "dependency-closure", artifact="lone") == []


def test_unresolved_deps(graph):
    rows = _run(graph, "unresolved-deps")
    assert _cols(rows, "artifact", "tags", "status") == [("app", ["get", "cuda"], "missing")]
    assert _run(graph, "unresolved-deps", artifact="lib-one") == []


def test_unreproduced_results(graph):
    rows = _run(graph, "unreproduced-results", task="Question Answering")
    assert _cols(rows, "paper", "metric", "value", "artifacts") == [
        ("arxiv:1810.04805", "exact_match", 84.1, ["a1"]),
        ("arxiv:1907.11692", "f1", 94.6, []),
    ]


def test_results_frame_and_compare(graph):
    frame = graph.results(task="Question Answering", metric="F1")
    assert sorted(frame["model"]) == ["BERT-large", "Baseline", "RoBERTa"]
    assert list(frame.columns[:4]) == ["task", "dataset", "model", "metric"]
    ranked = graph.compare(task="Question Answering", dataset="SQuAD1.1", metric="f1")
    assert list(ranked["rank"]) == [1, 2, 3] and ranked["model"][0] == "RoBERTa"
    with pytest.raises(
        NotFound, match=r"no dataset 'squad1.1' in the graph \(did you mean 'SQuAD1.1'"
    ):
        graph.compare(task="Question Answering", dataset="squad1.1", metric="f1")


def test_import_is_idempotent(graph, tmp_path):
    before = graph.status()["nodes"]
    graph.import_results([tmp_path / "papers.csv"])
    assert graph.status()["nodes"] == before


def test_a_misspelt_query_name_lists_the_known_ones():
    with pytest.raises(
        NotFound,
        match=r"no named query 'compare-paper' \(did you mean "
        r"'compare-papers'\?\); known: .*compare-papers",
    ):
        named.find("compare-paper")
    assert named.find("MATCH (n) RETURN n") is None
