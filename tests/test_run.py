"""The runner end to end on a real graph: CM scripts and ckg.yaml workflows ingested from
folders made here, executed as real subprocesses, measured and recorded. (MLCFlow's script
semantics in detail: tests/test_scripts_engine.py.)"""

import json
import textwrap
from pathlib import Path

import pytest

from ckg.core.errors import RunFailed, UsageError
from ckg.run import journal


def _script(root: Path, alias: str, meta: str, run_sh: str | None) -> None:
    folder = root / "script" / alias
    folder.mkdir(parents=True)
    (folder / "_cm.yaml").write_text(textwrap.dedent(meta))
    if run_sh is not None:
        (folder / "run.sh").write_text("#!/bin/bash\n" + textwrap.dedent(run_sh))


@pytest.fixture
def scripts(tmp_path):
    """A CM repository: app depends on get-tool (``cache: true``), which exports CM_TOOL_*
    via run.sh."""
    root = tmp_path / "repo"
    (root).mkdir()
    (root / "cmr.yaml").write_text("alias: test-repo\nuid: 0000000000000001\n")
    counter = tmp_path / "tool-runs"
    _script(
        root,
        "get-tool",
        """
        alias: get-tool
        uid: 1000000000000001
        automation_alias: script
        tags: [get, tool]
        cache: true
        default_env: {CM_TOOL_FAIL: "no"}
        new_env_keys: [CM_TOOL_*]
        """,
        f"""
        echo x >> {counter}
        if [ "$CM_TOOL_FAIL" = "yes" ]; then echo broken >&2; exit 4; fi
        echo "CM_TOOL_BIN=$PWD/tool" > tmp-run-env.out
        """,
    )
    _script(
        root,
        "app",
        """
        alias: app
        uid: 1000000000000002
        automation_alias: script
        tags: [app, demo]
        default_env: {CM_APP_SIZE: "1"}
        deps:
          - tags: get,tool
        variations:
          fast: {env: {CM_APP_MODE: fast}}
        """,
        """
        printf '{"Accuracy": %s, "Result": 7, "Result_Units": "Samples/s"}' "$CM_APP_SIZE" \
          > cm-result.json
        echo "tool=$CM_TOOL_BIN mode=${CM_APP_MODE:-plain}"
        """,
    )
    return root, counter


def _runs(kg, alias):
    return kg.query(
        "MATCH (r:Run)-[:OF]->(a:Artifact {alias: $alias}) RETURN r ORDER BY r.started_at",
        {"alias": alias},
    )


def test_env_flows_from_dependency_run_sh_and_metrics_are_recorded(kg, scripts):
    root, _ = scripts
    kg.ingest(str(root))
    report = kg.run("app", variations=("fast",))
    [result] = report.runs
    assert result.status == "ok"
    assert f"tool={report_tool_dir(kg)}/tool mode=fast" in result.log_tail
    assert result.metrics["accuracy"] == 1.0 and result.metrics["throughput"] == 7.0
    rows = kg.query(
        "MATCH (r:Run {uid: $uid})-[:MEASURED]->(m:Measurement) RETURN m.metric AS metric, "
        "m.method AS method ORDER BY metric",
        {"uid": result.uid},
    )
    methods = {row["metric"]: row["method"] for row in rows}
    assert methods["runtime"] == "wallclock" and methods["accuracy"] == "reported"
    assert methods["energy"] in ("rapl", "estimate:tdp")
    linked = kg.query(
        "MATCH (r:Run {uid: $uid})-[:ON]->(p:Platform), (r)-[:IN]->(e:Experiment), "
        "(r)-[:USED]->(d:Artifact) RETURN p.cores AS cores, e.name AS name, d.alias AS dep",
        {"uid": result.uid},
    )
    assert linked and linked[0]["name"] == "app" and linked[0]["dep"] == "get-tool"


def report_tool_dir(kg):
    [row] = kg.query("MATCH (r:Run)-[:OF]->(:Artifact {alias: 'get-tool'}) RETURN r.workdir AS w")
    return row["w"]


def test_succeeded_dependency_is_cached_and_failed_one_is_not(kg, scripts):
    root, counter = scripts
    kg.ingest(str(root))
    for _ in range(2):
        [failed] = kg.run("app", env={"CM_TOOL_FAIL": "yes"}).runs
        assert failed.status == "failed"
        assert "run.sh failed inside script get-tool (return code = 4)" in failed.error
    assert len(counter.read_text().split()) == 2  # the failure was run again, not cached
    assert kg.cache_list() == []
    kg.run("app")
    second = kg.run("app")
    assert len(counter.read_text().split()) == 3  # the success ran once, then came from cache
    assert second.cached_steps == 1 and second.dependency_runs == 0
    assert [(s["step"], s["status"]) for s in second.runs[0].steps] == [
        ("app", "ok"),
        ("get-tool", "cached"),
    ]
    kg.run("app", renew=True)
    kg.run("app", no_cache=True)
    assert len(counter.read_text().split()) == 5
    assert len(kg.cache_list()) == 1  # --renew replaced the entry, --no-cache made none
    statuses = sorted((r["r"]["status"], r["r"]["cached"]) for r in _runs(kg, "get-tool"))
    assert statuses == [
        ("failed", False),
        ("failed", False),
        ("ok", False),
        ("ok", False),
        ("ok", False),
        ("ok", True),
    ]
    [entry] = kg.query(
        "MATCH (r:Run)-[:MADE]->(c:CacheEntry)-[:OF]->(a:Artifact) "
        "WHERE (r)-[:OF]->(a) RETURN c.uid AS uid, a.alias AS alias"
    )
    assert entry["alias"] == "get-tool" and entry["uid"] == kg.cache_list()[0]["entry"]


def test_grid_over_script_env_and_repeats(kg, scripts):
    root, _ = scripts
    kg.ingest(str(root))
    report = kg.run("app", grid={"CM_APP_SIZE": [2, 3]}, repeat=3)
    assert [r.params for r in report.runs] == [{"CM_APP_SIZE": 2}, {"CM_APP_SIZE": 3}]
    assert [r.metrics["accuracy"] for r in report.runs] == [2.0, 3.0]
    [row] = kg.query(
        "MATCH (r:Run {uid: $uid})-[:MEASURED]->(m:Measurement {metric: 'runtime'}) "
        "RETURN m.n AS n, m.min <= m.median AND m.median <= m.max AS ordered",
        {"uid": report.runs[0].uid},
    )
    assert row == {"n": 3, "ordered": True}


def test_bad_input_is_a_usage_error(kg, scripts):
    root, _ = scripts
    kg.ingest(str(root))
    with pytest.raises(UsageError, match="unknown target 'nope'"):
        kg.run("nope")
    with pytest.raises(UsageError, match="turbo"):
        kg.run("app", variations=("turbo",))
    with pytest.raises(UsageError, match="--grid: CM_NOPE is not a parameter of app"):
        kg.run("app", grid={"CM_NOPE": [1]})


def test_dry_run_prints_commands_and_runs_nothing(kg, scripts):
    root, counter = scripts
    kg.ingest(str(root))
    report = kg.run("app", dry_run=True, env={"CM_APP_SIZE": "9"})
    assert [s["step"] for s in report.dry_run] == ["get-tool", "app"]
    assert report.dry_run[1]["command"].endswith("script/app/run.sh")
    assert report.dry_run[1]["env"]["CM_APP_SIZE"] == "9"
    assert not counter.exists() and report.runs == []


def test_customize_py_hooks_run_around_run_sh(kg, scripts):
    root, counter = scripts
    (root / "script" / "app" / "customize.py").write_text(
        "def preprocess(i):\n"
        "    i['env']['CM_APP_MODE'] = 'from-preprocess'\n"
        "    return {'return': 0}\n"
        "def postprocess(i):\n"
        "    i['state']['seen_tool'] = i['env']['CM_TOOL_BIN']\n"
        "    return {'return': 0}\n"
    )
    (root / "script" / "app" / "_cm.yaml").write_text(
        (root / "script" / "app" / "_cm.yaml").read_text() + "new_state_keys: [seen_tool]\n"
    )
    kg.ingest(str(root))
    [result] = kg.run("app").runs
    assert result.status == "ok", result.error
    assert "mode=from-preprocess" in result.log_tail
    assert result.new_state == {"seen_tool": f"{report_tool_dir(kg)}/tool"}
    assert result.steps[0]["executed"] == ["preprocess", "run.sh", "postprocess"]


def test_ckg_yaml_workflow_grid_reads_its_result_file(kg, tmp_path):
    folder = tmp_path / "wf"
    folder.mkdir()
    (folder / "sq.py").write_text(
        "import json, sys\n"
        "n = float(sys.argv[1])\n"
        "json.dump({'f1': n * n}, open('ckg-result.json', 'w'))\n"
    )
    (folder / "ckg.yaml").write_text(
        'alias: square\nuid: wf-square\nparams: {n: 2}\nrun: "{python} {artifact_dir}/sq.py {n}"\n'
    )
    kg.ingest(str(folder))
    report = kg.run("square", grid={"n": [1, 3]})
    assert [r.metrics["f1"] for r in report.runs] == [1.0, 9.0]
    with pytest.raises(UsageError, match="--grid: m is not a parameter of square"):
        kg.run("square", grid={"m": [1]})


def test_untrusted_source_needs_trust(kg, scripts, tmp_path):
    import shutil

    root, _ = scripts
    archive = shutil.make_archive(str(tmp_path / "repo"), "zip", root)
    kg.ingest(archive)
    with pytest.raises(RunFailed, match="not trusted"):
        kg.run("app")
    report = kg.run("app", trust=True)
    assert report.runs[0].status == "ok"


def test_journal_is_written_before_the_graph(kg, scripts, ckg_home):
    root, _ = scripts
    kg.ingest(str(root))
    report = kg.run("app")
    lines = journal.journal_path(ckg_home).read_text().splitlines()
    runs = [n["key"] for line in lines for n in json.loads(line)["nodes"] if n["label"] == "Run"]
    assert report.runs[0].uid in runs
