"""The reads behind ``ckg serve`` (ckg.graph.browse through the API), on both engines."""

import pytest

from ckg.core.errors import NotFound
from ckg.graph import browse
from tests.recorded_runs import RUNS, write_runs


def test_runs_experiments_platforms_and_reproductions_read_alike_on_both_engines(kg, corpora):
    write_runs(kg, RUNS)
    write_runs(kg, RUNS[:1], status="failed", prefix="f")
    kg.import_results([str(corpora / "mlperf")])

    # write_runs records a first run, artifact-1, with no measurements
    runs = kg.run_table(experiment="digits", status="ok")
    assert sorted(r["run"] for r in runs) == ["artifact-1", *(f"r{i}" for i in range(len(RUNS)))]
    knn = next(r for r in runs if r["run"] == "r0")
    assert knn["params"] == {"model": "knn", "batch": 1}  # decoded from its JSON text
    assert {(m["metric"], m["value"], m["unit"]) for m in knn["measurements"]} >= {
        ("accuracy", 97.5, "%"), ("latency", 0.030, "s")}  # fmt: skip
    assert [r["run"] for r in kg.run_table(status="failed")] == ["f0"]
    assert len(kg.run_table(platform="host-1")) == len(RUNS) + 2
    assert len(kg.run_table(limit=2)) == 2

    [digits] = kg.experiments()
    assert (digits["name"], digits["runs"]) == ("digits", len(RUNS) + 2)
    assert {"accuracy", "latency"} <= set(digits["metrics"])
    assert kg.experiment("exp-digits")["name"] == "digits"
    with pytest.raises(
        NotFound,
        match=r"no experiment 'digit' \(did you mean 'digits'\?\); "
        r"experiments: digits",
    ):
        kg.experiment("digit")

    boards = {(b["task"], b["dataset"], b["metric"]): b for b in kg.leaderboards()}
    power = boards[("Image Classification", "ImageNet", "power")]
    assert power["direction"] == "min" and power["results"] > 10
    imagenet = sorted(m for t, d, m in boards if (t, d) == ("Image Classification", "ImageNet"))
    assert browse.board_metrics(kg.store, "Image Classification", "ImageNet") == imagenet
    assert browse.board_metrics(kg.store, None, "ImageNet") == []

    platforms = {p["uid"]: p for p in kg.platforms()}
    assert (platforms["host-1"]["runs"], platforms["host-1"]["results"]) == (len(RUNS) + 2, 0)
    mlperf = [p for p in platforms.values() if p["results"]]
    assert mlperf and all(p["origin"] == "mlperf" for p in mlperf)
    shown = kg.platform(mlperf[0]["uid"])
    assert len(shown["results"]) == mlperf[0]["results"] and not shown["runs"]
    with pytest.raises(NotFound, match="no platform 'nowhere'"):
        kg.platform("nowhere")

    accuracy = kg.results(metric="accuracy")["result"].iloc[0]
    kg.store.upsert_edges("REPRODUCES", "Run", "Result",
                          [{"src": "r0", "dst": accuracy, "props": {}}])  # fmt: skip
    found = kg.reproductions([accuracy, "result:none"])
    assert list(found) == [accuracy]
    assert [(x["run"], x["reproduced"], x["unit"]) for x in found[accuracy]] == [
        ("r0", 97.5, "%")]  # fmt: skip
    assert [s["location"] for s in kg.sources()] == [str((corpora / "mlperf").resolve())]


def test_find_page_pages_through_every_match_once_on_both_engines(kg):
    kg.store.upsert_nodes("Source", [{"key": s, "props": {"uid": s, "location": f"/src/{s}"}}
                                     for s in ("s1", "s2")])  # fmt: skip
    kg.store.upsert_nodes("Artifact", [
        {"key": f"u{i}", "props": {"uid": f"u{i}", "alias": f"get-{i % 4}", "kind": "script",
                                   "tags": ["get", "odd" if i % 2 else "even"],
                                   "variations": ["cuda"] if i < 3 else [],
                                   "source_uid": f"s{1 + i % 2}"}}
        for i in range(11)])  # fmt: skip
    pages = [kg.find_page("get", offset=k, limit=4) for k in (0, 4, 8)]
    assert [total for _, total in pages] == [11, 11, 11]
    listed = [(r["alias"], r["uid"]) for rows, _ in pages for r in rows]
    assert [len(rows) for rows, _ in pages] == [4, 4, 3]
    assert listed == sorted((f"get-{i % 4}", f"u{i}") for i in range(11))
    assert pages[0][0][0]["source"] == "/src/s1"
    rows, total = kg.find_page("get,-odd", source="s1", limit=2)
    assert total == 6 and [r["uid"] for r in rows] == ["u0", "u4"]
    rows, total = kg.find_page("get,_cuda", offset=1, limit=5)
    assert total == 3 and len(rows) == 2
