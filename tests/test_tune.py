"""``ckg tune`` end to end on both engines: trials recorded as runs of one Experiment, a
conditional parameter respected, a front written back, a real ``ckg tune`` killed and resumed
without a duplicate trial, a failing trial recorded and the study going on."""

import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from ckg.core.errors import UsageError
from ckg.run.demo import EXAMPLE
from ckg.tune.search import Search
from ckg.tune.space import grid, parse_space, point_key
from ckg.tune.study import ASKS, ask_untried, trial_run_uid

CKG = str(Path(sys.executable).with_name("ckg"))

#: A workflow that takes a tenth of a second: accuracy grows with x, latency with x and y; a
#: run with ``x`` of 7 or more fails.
SCRIPT = """\
import json, sys
mode, x, y = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
if x >= 7:
    sys.exit("x too large")
accuracy = 50 + 5 * x - (y if mode == "b" else 0)
json.dump({"accuracy": {"value": accuracy, "unit": "%"},
           "latency": {"value": 1 + x * x + (y * 0.5 if mode == "b" else 2), "unit": "s"}},
          open("ckg-result.json", "w"))
"""
SPACE = ["mode=a,b", "x=int(0,9)", "y=int(0,30) if mode=b"]


@pytest.fixture
def workflow(kg, tmp_path):
    folder = tmp_path / "wf"
    folder.mkdir()
    (folder / "f.py").write_text(SCRIPT)
    (folder / "ckg.yaml").write_text(
        "alias: toy\nuid: wf-toy\nparams: {mode: a, x: 0, y: -1}\n"
        'run: "{python} {artifact_dir}/f.py {mode} {x} {y}"\n'
    )
    kg.ingest(str(folder))
    return "toy"


def _runs(kg, experiment):
    return kg.run_table(experiment=experiment, limit=1000)


def test_a_bad_space_names_the_value_and_the_forms():
    with pytest.raises(UsageError, match=r"--space 'C=logx\(1,2\)'.*NAME=int\(LOW,HIGH"):
        parse_space(["C=logx(1,2)"])
    with pytest.raises(UsageError, match=r"--space 'k=int\(1,5\) if model=svm': model never"):
        parse_space(["model=knn,logreg", "k=int(1,5) if model=svm"])


#: A space shaped as bench/tune_bench.py's: 61 points, four of its six models with a
#: parameter of their own.
FINITE = [
    "model=logreg,svm,knn,tree,forest,bayes",
    "C=0.001,0.01,0.1,1,10,100,1000 if model=logreg,svm",
    "k=int(1,25) if model=knn",
    "depth=int(1,16) if model=tree",
    "trees=5,10,20,40,80 if model=forest",
]


def _measure(point):
    """An accuracy and a latency for each point of FINITE: a good region (knn of few
    neighbours, deep trees) that TPE keeps proposing once it has found it."""
    model = point["model"]
    setting = point.get("k") or point.get("depth") or point.get("trees") or point.get("C") or 1
    accuracy = {"knn": 99 - setting / 5, "tree": 60 + 2 * setting}.get(model, 80 + len(model))
    return [accuracy, (setting if model != "tree" else 0.1) * (1 + len(model))]


@pytest.mark.parametrize("sampler", ["tpe", "random"])
def test_every_point_of_a_finite_space_is_tried_once_before_the_search_ends(sampler):
    # The sampler proposes points tried already ever more often as the space runs out; each
    # gives way to the nearest untried one. Before, the search asked again until 200
    # repeats in a row: TPE stopped after 55 of these 61 points (53-56 over seeds 0-4),
    # random sampling after all 61 with seed 0 (59 with seed 2).
    space = parse_space(FINITE)
    listed = {point_key(p): p for p in grid(space)}
    search = Search(space, [("accuracy", "max"), ("latency", "min")], sampler, seed=0)
    seen, tried = {}, []
    while (asked := ask_untried(search, seen, listed)) is not None:
        number, point = asked
        tried.append(point_key(point))
        seen[point_key(point)] = _measure(point)
        search.tell(number, seen[point_key(point)])
    assert sorted(tried) == sorted(listed)  # every point, none twice


def test_the_sampler_is_asked_again_before_a_tried_point_gives_way_to_the_nearest():
    space = parse_space(["x=int(1,100)"])
    listed = {point_key(p): p for p in grid(space)}
    seen = {point_key({"x": x}): [float(x), 1.0] for x in range(1, 100)}  # all but x=100
    search = Search(space, [("accuracy", "max"), ("latency", "min")], "random", seed=0)
    _, point = ask_untried(search, seen, listed)
    assert point == {"x": 100}
    # Before, the first tried point proposed gave way: one repeat. Now ASKS, each told its
    # values again (the latency, in s, as its logarithm), then the nearest untried point.
    repeats = search.study.trials[:-1]
    assert [t.values for t in repeats] == [[t.params["x"], 0.0] for t in repeats]
    assert len(repeats) == ASKS


def test_tune_of_the_example_records_budget_runs_and_a_front(kg):
    kg.ingest(str(EXAMPLE))
    space = ["model=knn,logreg", "k=int(1,15) if model=knn", "C=log(1e-3,1e3) if model=logreg"]
    report = kg.tune("sklearn-digits", space, "accuracy,latency", budget=4, seed=1)
    runs = _runs(kg, report.experiment)
    assert len(runs) == len(report.trials) == 4
    assert {r["experiment_uid"] for r in runs} == {report.experiment}
    for run in runs:  # a parameter is passed only where its condition holds
        params = run["params"]
        assert ("k" in params) == (params["model"] == "knn")
        assert ("C" in params) == (params["model"] == "logreg")
        assert {m["metric"] for m in run["measurements"]} >= {"accuracy", "latency", "energy"}
    fronts = kg.query(
        "MATCH (r:Run)-[x:IN_FRONT]->(f:Front) WHERE f.scope CONTAINS $uid "
        "AND x.front_rank = 1 RETURN r.uid AS run, f.hypervolume AS hv",
        {"uid": report.experiment},
    )
    assert {row["run"] for row in fronts} == {t.run for t in report.front}
    assert fronts[0]["hv"] == pytest.approx(report.hypervolume)


def test_a_failing_trial_is_recorded_and_the_study_goes_on(kg, workflow):
    told = []
    report = kg.tune(
        workflow,
        ["x=int(0,9)"],
        "accuracy,latency",
        budget=8,
        seed=0,
        progress=lambda r, trial: told.append(trial.status),
    )
    statuses = {r["run"]: r["status"] for r in _runs(kg, report.experiment)}
    failed = [t for t in report.trials if t.params["x"] >= 7]
    assert failed and len(told) == len(statuses) == 8
    assert all(statuses[t.run] == "failed" and t.values is None for t in failed)
    assert any(t.values for t in report.trials)
    # Optuna was told each failure as failed, and each success with its values: every trial
    # of the study (proposals of a point tried already included) is over, FAIL where x >= 7.
    _told_as_run(report.study)
    # The latency (in s) is told as its logarithm, the accuracy (in %) as measured.
    measured = {t.params["x"]: t.values for t in report.trials if t.values}
    assert [t.values for t in report.study.trials if t.values] == [
        pytest.approx([measured[t.params["x"]][0], math.log10(measured[t.params["x"]][1])])
        for t in report.study.trials
        if t.values
    ]
    # A new tune under a name a tune has is refused: only --resume continues it.
    with pytest.raises(UsageError, match="exists"):
        kg.tune(workflow, ["x=int(0,9)"], "accuracy,latency", budget=8)
    # Resumed, the recorded failures are rebuilt as failed trials of the new study.
    again = kg.tune(workflow, ["x=int(0,9)"], "accuracy,latency", budget=9, resume=True,
                    experiment=report.experiment)  # fmt: skip
    assert again.resumed == 8 and len(again.study.trials) > 8
    _told_as_run(again.study)


def test_a_budget_over_a_finite_space_tries_each_point_once_and_stops(kg, workflow):
    space = ["mode=a,b", "x=int(0,2)", "y=int(0,1) if mode=b"]  # 3 + 3 x 2 points
    report = kg.tune(workflow, space, "accuracy,latency", budget=11, seed=0)
    runs = _runs(kg, report.experiment)
    points = sorted(point_key(r["params"]) for r in runs)
    assert points == sorted(point_key(p) for p in grid(parse_space(space)))
    assert len(report.trials) == 9 and report.stopped == "the space has 9 points, every one tried"


def _told_as_run(study):
    from optuna.trial import TrialState

    states = {(t.params["x"], t.state) for t in study.trials}
    assert {s for x, s in states if x >= 7} == {TrialState.FAIL}, states
    assert {s for x, s in states if x < 7} == {TrialState.COMPLETE}, states


def test_a_killed_tune_resumes_to_its_budget_without_a_duplicate(kg, workflow):
    args = [
        CKG,
        "tune",
        workflow,
        *[a for s in SPACE for a in ("--space", s)],
        "--objectives",
        "accuracy,latency",
        "--budget",
        "10",
        "--experiment",
        "toy-tune",
    ]
    tune = subprocess.Popen(
        args, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=os.environ
    )
    lines = []
    for line in tune.stderr:
        lines.append(line)
        if line.startswith("[5/10]"):
            tune.send_signal(signal.SIGKILL)
            break
    tune.wait(timeout=60)
    assert tune.returncode == -signal.SIGKILL, "".join(lines)
    experiment = kg.experiment("toy-tune")["uid"]
    assert 5 <= len(_runs(kg, experiment)) < 10
    done = subprocess.run([*args, "--resume"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "recorded before" in done.stdout
    runs = _runs(kg, experiment)
    assert sorted(r["run"] for r in runs) == sorted(trial_run_uid(experiment, n) for n in range(10))
    points = [tuple(sorted(r["params"].items())) for r in runs]
    assert len(set(points)) == 10
    assert all(("y" in r["params"]) == (r["params"]["mode"] == "b") for r in runs)
