"""Pareto fronts over the graph (ckg.pareto.frontier) on both engines: runs, MLPerf results,
writing."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from ckg.core.errors import InvalidInput, NotFound, UsageError
from ckg.core.records import Node
from ckg.pareto import parse_objectives
from ckg.pareto.plot import plot_front
from ckg.run.measure import Figure, with_total
from ckg.run.record import run_records
from tests.recorded_runs import RUNS, write_runs

CKG = Path(sys.executable).with_name("ckg")

def test_runs_front_ranks_labels_and_units(kg):
    write_runs(kg, RUNS)
    front = kg.pareto("accuracy,latency", experiment="digits")
    rows = {r["label"]: r for r in front.rows()}
    assert {k for k, r in rows.items() if r["front_rank"] == 1} == {
        "model=knn batch=1",
        "model=logreg batch=1",
        "model=svc batch=1",
    }
    assert rows["model=forest batch=1"]["front_rank"] == 2
    assert front.units == {"accuracy": "%", "latency": "s"}
    assert front.left_out == 0
    assert front.hypervolume > 0


def test_runs_front_uses_the_total_energy_not_a_device_part(kg):
    exp = Node("Experiment", "exp-gpu", {"name": "gpu"})
    platform = Node("Platform", "host-1", {"cpu_model": "test"})
    # (label, accuracy, cpu J, gpu J): the GPU part decides which run costs less in all.
    for uid, acc, cpu_j, gpu_j in [
        ("cheap-cpu", 90.0, 5.0, 500.0),
        ("cheap-all", 89.0, 50.0, 100.0),
    ]:
        energy = with_total(
            [
                Figure("energy", [cpu_j], "J", "rapl", "cpu"),
                Figure("energy", [gpu_j], "J", "nvml", "gpu0"),
            ]
        )
        run = {"uid": uid, "status": "ok", "params": json.dumps({"run": uid})}
        figures = [Figure("accuracy", [acc], "%"), *energy]
        kg.store.write_records(
            run_records(run, artifact_uid="a", figures=figures, platform=platform, experiment=exp)
        )
    front = kg.pareto("accuracy:max,energy:min", experiment="gpu")
    rows = {r["label"]: r for r in front.rows()}
    assert rows["run=cheap-all"]["energy"] == 150.0
    assert rows["run=cheap-cpu"]["energy"] == 505.0
    assert {r["front_rank"] for r in rows.values()} == {1}  # neither beats the other in all


def test_front_membership_is_queryable_and_replaced_on_recompute(kg):
    write_runs(kg, RUNS)
    first = kg.pareto("accuracy:max,latency:min", experiment="digits")
    on_front = kg.query(
        "MATCH (r:Run)-[x:IN_FRONT]->(f:Front {uid: $uid}) WHERE x.front_rank = 1 "
        "RETURN r.uid AS uid ORDER BY uid",
        {"uid": first.uid},
    )
    assert [r["uid"] for r in on_front] == ["r0", "r1", "r2"]
    meta = kg.query("MATCH (f:Front {uid: $uid}) RETURN f", {"uid": first.uid})[0]["f"]
    assert meta["objectives"] == ["accuracy:max", "latency:min"]
    assert meta["scope"] == "runs experiment=exp-digits"  # its uid: a name is no identity
    # A run better than all: the old front drops to rank 2, and no edge is left twice.
    write_runs(kg, [("mlp", 4, 99.0, 0.001)], prefix="best")
    second = kg.pareto("accuracy:max,latency:min", experiment="digits")
    assert second.uid == first.uid
    ranks = kg.query(
        "MATCH (r:Run)-[x:IN_FRONT]->(:Front {uid: $uid}) RETURN r.uid AS uid, x.front_rank AS k",
        {"uid": first.uid},
    )
    assert len(ranks) == len(RUNS) + 1
    assert {r["uid"] for r in ranks if r["k"] == 1} == {"best0"}


def test_failed_runs_and_where_conditions_narrow_the_selection(kg):
    write_runs(kg, RUNS)
    write_runs(kg, [("broken", 1, 100.0, 0.0001)], status="failed", prefix="bad")
    front = kg.pareto("accuracy,latency", where="r.params CONTAINS 'batch'", write=False)
    assert "bad0" not in {u for uids in front.table["uids"] for u in uids}
    narrow = kg.pareto("accuracy,latency", where="m.value > 0 AND NOT r.uid IN ['r1']")
    assert "model=logreg batch=1" not in set(narrow.table["label"])


def test_unknown_objective_names_the_metrics_present(kg):
    write_runs(kg, RUNS)
    with pytest.raises(NotFound, match="'energy' is not in the selected results; metrics "
                       "present: accuracy, latency"):  # fmt: skip
        kg.pareto("accuracy,energy", experiment="digits")
    # a misspelt objective has no direction either: its absence is said first
    with pytest.raises(NotFound, match=r"'latncy' is not in the selected results \(did you "
                       r"mean 'latency'\?\); metrics present: accuracy, latency"):  # fmt: skip
        kg.pareto("accuracy,latncy")
    write_runs(kg, [("knn", 1, 90.0, 0.001)], prefix="w", extra={"wobble": 3.0})
    # a metric without a direction: its points are listed unranked, and the reason given
    unranked = kg.pareto("accuracy,wobble")
    assert unranked.unranked.startswith("no direction known for metric 'wobble'")
    assert [r["front_rank"] for r in unranked.rows()] == [None]


def test_fewer_than_two_points_says_so(kg):
    write_runs(kg, RUNS[:1])
    with pytest.raises(InvalidInput, match="only 1 point.*nothing to compare"):
        kg.pareto("accuracy,latency")


def test_filters_that_do_not_fit_the_source_are_usage_errors(kg):
    with pytest.raises(UsageError, match="--experiment selects runs"):
        kg.pareto("accuracy,latency", experiment="x", source="papers")
    with pytest.raises(UsageError, match="--task and --dataset select published results"):
        kg.pareto("accuracy,latency", task="Image Classification")
    with pytest.raises(UsageError, match="two or more objectives"):
        kg.pareto("accuracy")


def test_mlperf_throughput_against_power(kg, corpora):
    kg.import_results([str(corpora / "mlperf")])
    front = kg.pareto("throughput,power", source="papers", task="Image Classification")
    assert front.units == {"throughput": "1/s", "power": "W"}
    best = front.table[front.table["front_rank"] == 1]
    assert 2 <= len(best) < len(front.table)
    # The least power of all is on the front, and so is the most throughput.
    assert front.table["power"].min() in set(best["power"])
    assert front.table["throughput"].max() in set(best["throughput"])
    n = kg.query(
        "MATCH (r:Result)-[x:IN_FRONT]->(:Front {uid: $uid}) RETURN count(x) AS n",
        {"uid": front.uid},
    )[0]["n"]
    assert n == 2 * len(front.table)
    assert sum(len(uids) for uids in front.table["uids"]) == n
    # A front not written (a page's) reads no uids, and ranks and shows the same points
    page = kg.pareto("throughput,power", source="papers", task="Image Classification",
                     write=False)  # fmt: skip
    assert page.rows() == front.rows() and list(page.table["uids"]) == [None] * len(page.table)


# --- the command line and the plots ----------------------------------------------------------


def _ckg(*args, home):
    env = {**os.environ, "CKG_HOME": str(home)}
    return subprocess.run(
        [str(CKG), *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )


def test_cli_prints_json_and_draws_the_plot(kg, ckg_home, tmp_path):
    write_runs(kg, RUNS)
    png = tmp_path / "front.png"
    done = _ckg("pareto", "accuracy,latency:min", "--experiment", "digits", "--plot", str(png),
                "--json", home=ckg_home)  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["objectives"] == ["accuracy:max", "latency:min"]
    assert sorted(p["label"] for p in out["points"] if p["front_rank"] == 1)[0] == (
        "model=knn batch=1"
    )
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = _ckg("pareto", "accuracy,latency", "--fronts", "1", "--no-write", home=ckg_home)
    assert "latency (ms)" in table.stdout and "forest" not in table.stdout
    assert "5 points, 3 on front 1, 0 left out" in table.stdout


def test_cli_errors_are_one_line(kg, ckg_home):
    write_runs(kg, RUNS[:1])
    done = _ckg("pareto", "accuracy,latency", home=ckg_home)
    assert done.returncode == 1
    assert done.stderr.strip().startswith("ckg: error: only 1 point(s)")
    bad = _ckg("pareto", "accuracy,latency", "--margin", "accuracy", home=ckg_home)
    assert bad.returncode == 2 and "--margin expects OBJ=NUMBER" in bad.stderr


def _table():
    return pd.DataFrame(
        {
            "front_rank": [1, 1, 2, 3],
            "label": ["model=a", "model=b", "model=c", "model=d"],
            "accuracy": [97.0, 95.0, 94.0, 90.0],
            "latency": [0.03, 0.002, 0.01, 0.05],
            "energy": [2.0, 1.0, 3.0, 4.0],
        }
    )


def test_plots_in_every_format(tmp_path):
    objs = parse_objectives("accuracy,latency")
    png = plot_front(_table(), objs, tmp_path / "two.png", units={"latency": "s"})
    assert png.read_bytes()[:4] == b"\x89PNG" and png.stat().st_size > 10_000
    html = plot_front(_table(), objs, tmp_path / "two.html", units={"latency": "s"}).read_text()
    assert '"line":{"color":"#d1495b","shape":"hv"}' in html
    # the unit the tables show (ms here, not s) and plotly.js inside the file: it draws offline
    assert "latency (ms), lower is better" in html
    assert not re.search(r"<script[^>]+src=", html) and len(html) > 1_000_000
    three = parse_objectives("accuracy,latency,energy:min")
    assert plot_front(_table(), three, tmp_path / "three.png").stat().st_size > 10_000
    assert '"type":"scatter3d"' in plot_front(_table(), three, tmp_path / "3.html").read_text()


def test_plot_refuses_bad_suffix_and_single_point(tmp_path):
    objs = parse_objectives("accuracy,latency")
    with pytest.raises(UsageError, match="--plot writes .png, .svg, .pdf or .html, not 'f.gif'"):
        plot_front(_table(), objs, tmp_path / "f.gif")
    with pytest.raises(InvalidInput, match="1 point"):
        plot_front(_table().head(1), objs, tmp_path / "f.png")


def test_mlperf_records_split_by_generation_are_joined_into_one_point(kg, corpora):
    """v4.x publishes a submission's throughput and its power as two records: the front of
    throughput against power over the real file is the brute-force front of the systems
    once their records are joined (submitter, system, version, model, scenario, division)."""
    path = corpora / "mlperf" / "cm-result-edge-closed-power-image-classification.json"
    records = json.loads(path.read_text())
    joined: dict[tuple, dict] = {}
    for rec in records:
        key = tuple(rec.get(k) for k in ("Organization", "Platform", "version", "Model",
                                         "Scenario", "Division"))
        point = joined.setdefault(key, {})
        if rec.get("Result") is not None and rec.get("Result_Units") == "Samples/s":
            point["throughput"] = float(rec["Result"])
        if rec.get("Result_Power") is not None:
            point["power"] = float(rec["Result_Power"])
    points = {k[1:3]: p for k, p in joined.items() if {"throughput", "power"} <= set(p)}
    split = {k[1:3] for k in joined if k[2].startswith("v4")}
    assert split and split <= set(points)  # every v4 system has both once joined

    def dominated(p):
        return any(q["throughput"] >= p["throughput"] and q["power"] <= p["power"]
                   and q != p for q in points.values())

    expected = {k for k, p in points.items() if not dominated(p)}
    kg.import_results([path])
    front = kg.pareto("throughput,power", source="papers", task="Image Classification",
                      write=False)
    rows = front.table
    got = {(r["system"], r["version"]) for _, r in rows[rows["front_rank"] == 1].iterrows()}
    assert got == expected
    assert len(rows) == len(points)


def _run(uid, status="ok", **measured):
    from ckg.run.runner import RunResult

    return RunResult(uid, {"n": uid}, status, 0, measured, {}, "", "")


def test_the_front_of_one_run_s_results_comes_from_the_api_best_first():
    from ckg.api import KnowledgeGraph

    runs = [
        _run("slow-good", accuracy=0.9, latency=2.0),
        _run("fast-bad", accuracy=0.5, latency=0.5),
        _run("dominated", accuracy=0.4, latency=1.0),
        _run("failed", "failed", accuracy=1.0, latency=0.1),
        _run("unmeasured", accuracy=0.95),
    ]
    front = KnowledgeGraph.runs_front(runs, "accuracy, latency")
    assert [r.uid for r in front] == ["slow-good", "fast-bad"]
    assert KnowledgeGraph.runs_front(runs, ["latency", "accuracy"])[0].uid == "fast-bad"
    with pytest.raises(UsageError, match="'energy' is not a measured metric.*accuracy, latency"):
        KnowledgeGraph.runs_front(runs, "accuracy,energy")
    with pytest.raises(UsageError, match="'acuracy' is not a metric with a known direction"):
        KnowledgeGraph.runs_front(runs, "acuracy,latency")
