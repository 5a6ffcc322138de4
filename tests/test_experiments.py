"""Experiments with an identity (``ckg run --experiment``, experiments addressed by uid or by
a name only one has), ``ckg rm`` of runs and experiments, and the metrics ckg measures itself,
each with a direction; on both engines through the ``kg`` fixture, and as real ``ckg``
processes and a real ``ckg serve``.

The runs are of small ``ckg.yaml`` workflows that print their figures (well under a second
each), not the demo's classifiers.
"""

import http.cookiejar
import json
import subprocess
import sys
import textwrap
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import quote

import pytest

from ckg.core import metrics
from ckg.core.errors import NotFound, UsageError
from tests.serving import start_serve, stop_serve

CKG = str(Path(sys.executable).with_name("ckg"))
#: Reports f1 (higher is better) and perplexity (lower is better) as its grid point says.
SCORER = """\
alias: scorer
uid: wf-scorer
params: {n: 1, p: 5}
run: |
  echo '{{"f1": {n}, "perplexity": {p}, "widgets": {n}}}'
"""


def _ckg(*args, code=0) -> subprocess.CompletedProcess:
    done = subprocess.run([CKG, *args], capture_output=True, text=True, timeout=300)
    assert done.returncode == code, done.stdout + done.stderr
    return done


def _scorer(folder: Path) -> Path:
    folder.mkdir()
    (folder / "ckg.yaml").write_text(SCORER)
    return folder


def _script(root: Path) -> Path:
    """A CM script repository: say-hi prints a line after its dependency get-name ran."""
    root.mkdir()
    (root / "cmr.yaml").write_text("alias: hi-repo\nuid: 0000000000000009\n")
    for alias, uid, tags, deps in (
        ("say-hi", "9000000000000001", "[say, hi]", "deps: [{tags: 'get,name'}]"),
        ("get-name", "9000000000000002", "[get, name]", ""),
    ):
        folder = root / "script" / alias
        folder.mkdir(parents=True)
        (folder / "_cm.yaml").write_text(
            textwrap.dedent(f"""\
            alias: {alias}
            uid: {uid}
            automation_alias: script
            tags: {tags}
            {deps}
            """)
        )
        (folder / "run.sh").write_text(f"#!/bin/bash\necho {alias}\n")
    return root


@pytest.fixture
def scorer(kg, tmp_path):
    kg.ingest(str(_scorer(tmp_path / "wf")))
    return kg


def _experiments(kg) -> dict[str, dict]:
    return {e["uid"]: e for e in kg.experiments()}


def test_two_runs_named_grid_a_make_one_experiment_whose_front_has_only_them(scorer):
    kg = scorer
    kg.run("scorer", grid={"n": [9]})  # another experiment of the same target, not grid-a
    _ckg("run", "scorer", "--grid", "n=1", "--experiment", "grid-a")
    _ckg("run", "scorer", "--grid", "n=2", "--experiment", "grid-a")
    named = [e for e in kg.experiments() if e["name"] == "grid-a"]
    assert len(named) == 1 and named[0]["runs"] == 2
    uid = named[0]["uid"]
    runs = kg.runs(experiment="grid-a")
    assert [json.loads(r["params"])["n"] for r in runs] == [2, 1]
    assert {r["experiment"] for r in runs} == {uid}
    front = kg.pareto("f1,perplexity", experiment="grid-a")
    assert sorted(u for uids in front.table["uids"] for u in uids) == sorted(r["run"] for r in runs)
    assert front.scope == f"runs experiment={uid}"
    # by its uid, and by the start of it, the same experiment
    assert kg.experiment(uid[:10])["uid"] == uid == kg.experiment("grid-a")["uid"]
    assert kg.pareto("f1,perplexity", experiment=uid[:10], write=False).uid == front.uid


def test_an_experiment_name_two_experiments_share_is_refused_naming_both(scorer):
    kg = scorer
    first = kg.run("scorer").experiment
    second = kg.run("scorer").experiment
    assert first != second  # a run without --experiment makes a new one, named as today
    # a listing selects both (tests/test_papercuts.py); what needs one refuses
    assert {r["experiment"] for r in kg.runs(experiment="scorer")} == {first, second}
    for call in (
        lambda: kg.pareto("f1,perplexity", experiment="scorer"),
        lambda: kg.experiment("scorer"),
        lambda: kg.run("scorer", experiment="scorer"),
        lambda: kg.rm(["scorer"]),
    ):
        with pytest.raises(
            UsageError,
            match=rf"2 experiments are named 'scorer': .*{first}.*; "
            "give one's uid",
        ):
            call()
    done = _ckg("pareto", "f1,perplexity", "--experiment", "scorer", code=2)
    [line] = done.stderr.strip().splitlines()
    assert first in line and second in line
    with pytest.raises(NotFound, match=r"no experiment 'scorr' \(did you mean 'scorer'\?\)"):
        kg.runs(experiment="scorr")
    # extending one of them by its uid
    assert kg.run("scorer", experiment=first).experiment == first
    assert _experiments(kg)[first]["runs"] == 2


def test_rm_of_a_run_keeps_the_other_and_marks_the_front_stale(scorer, ckg_home):
    kg = scorer
    report = kg.run("scorer", grid={"n": [1, 2]}, experiment="grid-a")
    gone, kept = (r.uid for r in report.runs)
    front = kg.pareto("f1,perplexity", experiment="grid-a")
    before = kg.status()["nodes"]
    done = json.loads(_ckg("rm", gone[:12], "--json").stdout)
    assert done["runs"] == [gone] and done["experiments"] == []
    assert done["stale_fronts"] == [front.uid] and done["measurements"] > 0
    assert [r["run"] for r in kg.runs(experiment="grid-a")] == [kept]
    [stale] = kg.query("MATCH (f:Front {uid: $uid}) RETURN f.stale AS why", {"uid": front.uid})
    assert stale["why"].startswith(f"{gone} removed at ")
    after = kg.status()["nodes"]
    assert after["Measurement"] == before["Measurement"] - done["measurements"]
    assert {k: after[k] for k in ("Platform", "Artifact", "Metric", "Experiment")} == {
        k: before[k] for k in ("Platform", "Artifact", "Metric", "Experiment")
    }
    assert kg.query(
        "MATCH (m:Measurement) WHERE NOT (m)<-[:MEASURED]-(:Run) RETURN count(m) AS n"
    ) == [{"n": 0}]
    assert not (ckg_home / "runs" / gone).exists() and (ckg_home / "runs" / kept).is_dir()
    # the journal still holds the run; recovering does not bring it back
    assert kg.recover()["recovered"] == 0 and kg.runs(experiment="grid-a")[0]["run"] == kept
    # ranking again, with a third run, makes the front current
    kg.run("scorer", grid={"n": [3]}, experiment="grid-a")
    again = kg.pareto("f1,perplexity", experiment="grid-a")
    assert kg.query("MATCH (f:Front {uid: $uid}) RETURN f.stale AS why", {"uid": again.uid}) == [
        {"why": None}
    ]


def test_rm_of_an_experiment_takes_its_runs_and_their_steps(kg, tmp_path):
    kg.ingest(str(_script(tmp_path / "repo")))
    report = kg.run("say,hi", experiment="scripts")
    kg.run("say,hi", experiment="scripts")
    [step] = kg.query(
        "MATCH (:Run {uid: $uid})-[:CALLED]->(s:Run) RETURN s.uid AS uid",
        {"uid": report.runs[0].uid},
    )
    with pytest.raises(
        UsageError,
        match=f"run {step['uid']} is a step of run {report.runs[0].uid}: remove that run",
    ):
        kg.rm(step["uid"])
    done = kg.rm("scripts")
    assert len(done["experiments"]) == 1 and len(done["runs"]) == 4  # two runs, two steps
    assert kg.query("MATCH (r:Run) RETURN count(r) AS n") == [{"n": 0}]
    assert kg.query("MATCH (m:Measurement) RETURN count(m) AS n") == [{"n": 0}]
    assert kg.experiments() == []
    assert kg.query("MATCH (a:Artifact {alias: 'say-hi'}) RETURN count(a) AS n") == [{"n": 1}]
    with pytest.raises(NotFound, match="no run or experiment 'scripts'"):
        kg.rm("scripts")


def test_rm_removes_no_folder_but_the_run_folder_a_uid_names(kg, ckg_home, tmp_path):
    """A run's uid comes from the graph, which others may write: ``../x`` or a link in the
    runs folder must not make ckg rm delete anything outside it."""
    from ckg.core.records import Edge, Node, Records

    outside = ckg_home / "keep"
    (outside / "data").mkdir(parents=True)
    target = tmp_path / "elsewhere"
    target.mkdir()
    (ckg_home / "runs").mkdir()
    (ckg_home / "runs" / "run-linked").symlink_to(target)
    records = Records(nodes=[Node("Experiment", "exp-x", {"name": "x"})])
    for uid in ("../keep", "run-linked"):
        records.nodes.append(Node("Run", uid, {"status": "ok"}))
        records.edges.append(Edge("IN", "Run", uid, "Experiment", "exp-x"))
    kg.store.write_records(records)
    assert sorted(kg.rm("x")["runs"]) == ["../keep", "run-linked"]
    assert (outside / "data").is_dir() and target.is_dir()
    assert not (ckg_home / "runs" / "run-linked").exists()


def test_every_metric_ckg_measures_has_a_direction_and_unit(scorer):
    kg = scorer
    kg.run("scorer", experiment="mine")
    measured = kg.query(
        "MATCH (m:Measurement) WHERE m.method <> 'reported' "
        "RETURN DISTINCT m.metric AS metric, m.unit AS unit"
    )
    assert {"runtime", "cpu_user_time", "cpu_system_time", "energy"} <= {
        m["metric"] for m in measured
    }
    for m in measured:
        known = metrics.get(m["metric"])
        assert known is not None and known.direction, m
        assert known.unit == m["unit"], m
    kg.run("scorer", grid={"n": [2]}, experiment="mine")
    front = kg.pareto("runtime,cpu_system_time", experiment="mine", write=False)
    assert [str(o) for o in front.objectives] == ["runtime:min", "cpu_system_time:min"]
    assert not front.unranked and len(front.table) == 2


def test_a_metric_without_a_direction_is_listed_unranked_with_the_reason(scorer):
    kg = scorer
    kg.run("scorer", grid={"n": [1, 2]}, experiment="w")
    front = kg.pareto("f1,widgets", experiment="w")
    assert front.unranked == (
        "no direction known for metric 'widgets': write widgets:min or widgets:max"
    )
    assert [r["front_rank"] for r in front.rows()] == [None, None]
    assert kg.query("MATCH (f:Front) RETURN count(f) AS n") == [{"n": 0}]  # nothing written
    done = _ckg("pareto", "f1,widgets", "--experiment", "w")
    assert "front left out: no direction known for metric 'widgets'" in done.stdout
    data = json.loads(_ckg("pareto", "f1,widgets", "--experiment", "w", "--json").stdout)
    assert data["unranked"].startswith("no direction known") and len(data["points"]) == 2
    _ckg("pareto", "runtime,cpu_system_time", "--experiment", "w", "--no-write")


# --- the web view ---------------------------------------------------------------------------


def _owner():
    return urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
    )


def _get(opener, url: str) -> tuple[int, str]:
    try:
        with opener.open(url, timeout=60) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_the_web_view_answers_every_experiment_page(ckg_home, tmp_path):
    _ckg("ingest", str(_scorer(tmp_path / "wf")))
    _ckg("ingest", str(_script(tmp_path / "repo")))
    _ckg("run", "scorer", "--grid", "n=1,2")  # like the demo: a grid with reported figures
    _ckg("run", "scorer", "--grid", "n=3", "--experiment", "grid-a")
    _ckg("run", "scorer", "--grid", "n=4", "--experiment", "grid-a")
    _ckg("run", "say,hi")  # a script run: measured figures only, one point
    _ckg("run", "say,hi")
    served = start_serve(ckg_home, tmp_path / "serve.log")
    try:
        owner = _owner()
        assert _get(owner, served.url)[0] == 200  # signs in
        status, body = _get(owner, served.base + "/api/experiments")
        listed = json.loads(body)["experiments"]
        assert status == 200 and len(listed) == 4
        for e in listed:
            status, page = _get(owner, served.base + "/experiments/" + quote(e["uid"]))
            assert status == 200, page
            data = json.loads(_get(owner, served.base + "/api/experiments/" + quote(e["uid"]))[1])
            assert {r["run"] for r in data["runs"]} and data["experiment"]["uid"] == e["uid"]
            if e["name"] == "say-hi":  # one run: nothing to rank, and the page says why
                assert "front left out: only 1 point" in page
                assert data["front"] is None and "cpu_user_time" in page
            else:
                assert data["front"]["objectives"][0] in ("f1:max", "cpu_system_time:min")
        grid_a = next(e for e in listed if e["name"] == "grid-a")
        _, page = _get(owner, served.base + "/experiments/grid-a")
        assert grid_a["uid"] in page and grid_a["runs"] == 2
        status, page = _get(owner, served.base + "/experiments/say-hi")
        assert status == 400 and "2 experiments are named" in page
        # a run's page links the experiment that holds it
        run = json.loads(_get(owner, served.base + "/api/runs?experiment=" + grid_a["uid"])[1])[
            "runs"
        ][0]
        _, page = _get(owner, served.base + "/runs/" + run["run"])
        assert f'href="/experiments/{grid_a["uid"]}"' in page
        status, page = _get(
            owner, served.base + "/experiments/" + grid_a["uid"] + "?x=f1&y=widgets"
        )
        assert status == 200 and "unranked: no direction known for metric" in page
    finally:
        stop_serve(served, tmp_path / "serve.log")
