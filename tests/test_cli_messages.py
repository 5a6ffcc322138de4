"""Messages that point the right way: a misspelt command suggested once, an empty folder
named, an unknown experiment called unknown (not 'no metrics')."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ckg.core.errors import NotFound

CKG = str(Path(sys.executable).with_name("ckg"))


def test_a_misspelt_command_is_suggested_once(ckg_home):
    for args, word in ((["ingst", "x"], "'ingest'"), (["db", "stauts"], "'status'")):
        done = subprocess.run([CKG, *args], capture_output=True, text=True)
        assert done.returncode == 2
        assert done.stderr.count(f"Did you mean {word}?") == 1, done.stderr


def test_an_empty_folder_ingests_with_a_warning_naming_it(kg, tmp_path):
    empty = tmp_path / "nothing-here"
    empty.mkdir()
    for _ in range(2):  # the unchanged re-ingest says it again
        summary = kg.ingest(empty)
        assert summary.artifacts == 0
        assert [w.message for w in summary.warnings] == [
            f"{empty} holds no files: nothing to ingest (the right folder?)"
        ]


def test_an_unknown_experiment_is_named_with_the_ones_there_are(kg):
    kg.store.upsert_nodes(
        "Experiment", [{"key": "exp-1", "props": {"uid": "exp-1", "name": "sklearn-digits"}}]
    )
    with pytest.raises(
        NotFound,
        match=r"no experiment 'sklearn-digitz' \(did you mean "
        r"'sklearn-digits'\?\); experiments: sklearn-digits",
    ):
        kg.pareto("accuracy,latency", experiment="sklearn-digitz")


def _ckg(*args, home, columns=80):
    env = {**os.environ, "CKG_HOME": str(home), "COLUMNS": str(columns)}
    env.pop("CKG_DB", None)
    return subprocess.run([CKG, *args], capture_output=True, text=True, env=env, timeout=120)


STEP = """\
import json, sys
print(json.dumps({"accuracy": {"value": 90 + float(sys.argv[1]), "unit": "%"},
                  "latency": {"value": 0.001, "unit": "s"}}))
"""


@pytest.fixture
def tiny_workflow(ckg_home, tmp_path):
    folder = tmp_path / "wf"
    folder.mkdir()
    (folder / "step.py").write_text(STEP)
    (folder / "ckg.yaml").write_text(
        'alias: tiny\nuid: wf-tiny\nparams: {x: 1}\nrun: "{python} {artifact_dir}/step.py {x}"\n'
    )
    assert _ckg("ingest", str(folder), home=ckg_home).returncode == 0
    return ckg_home


def test_unknown_names_exit_2_with_the_closest_ones(tiny_workflow):
    home = tiny_workflow
    show = _ckg("show", "tinny", home=home)
    assert show.returncode == 2
    assert show.stderr.strip() == "ckg: error: no artifact with alias or uid 'tinny' " \
                                  "(did you mean 'tiny'?)"  # fmt: skip
    query = _ckg("query", "compare-paper", "-p", "dataset=SNLI", home=home)
    assert query.returncode == 2 and "(did you mean 'compare-papers'?)" in query.stderr


def test_a_misspelt_pareto_objective_is_refused_before_any_run(tiny_workflow):
    home = tiny_workflow
    done = _ckg("run", "tiny", "--grid", "x=1,2", "--pareto", "accuracy,latncy", home=home)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "'latncy' is not a metric with a known direction (did you mean 'latency'?)" \
        in done.stderr  # fmt: skip
    assert not (home / "runs").exists() or not any((home / "runs").iterdir())
    assert _ckg("run", "tiny", "--grid", "x=1,2", home=home).returncode == 0
    pareto = _ckg("pareto", "accuracy,latncy", home=home)  # absent, and of no known direction
    assert pareto.returncode == 2
    assert "'latncy' is not in the selected results (did you mean 'latency'?)" in pareto.stderr
    # every listing also comes as CSV, values whole
    import csv

    runs = list(csv.DictReader(_ckg("runs", "--csv", home=home).stdout.splitlines()))
    assert sorted(json.loads(r["params"])["x"] for r in runs) == [1, 2]
    points = _ckg("pareto", "accuracy,latency", "--no-write", "--csv", home=home).stdout
    assert {r["accuracy"] for r in csv.DictReader(points.splitlines())} == {"91.0", "92.0"}
    found = _ckg("find", "--tags", "", "--csv", home=home).stdout
    assert [r["alias"] for r in csv.DictReader(found.splitlines())] == ["tiny"]


def test_an_empty_named_query_says_what_is_missing(tiny_workflow):
    home = tiny_workflow
    before = _ckg("query", "compare-papers", "-p", "dataset=SNLI", home=home)
    assert before.returncode == 0
    assert "(no rows: the graph holds no Result yet: ckg ingest a source of published " \
           "results" in before.stdout  # fmt: skip
    table = Path(home) / "table.yaml"
    table.write_text("paper: https://example.org/p\ntask: NLI\ndataset: SNLI\nresults:\n"
                     "  - {model: m, metric: accuracy, value: 90%}\n")  # fmt: skip
    assert _ckg("results", "import", str(table), home=home).returncode == 0
    typo = _ckg("query", "compare-papers", "-p", "dataset=snli", home=home)
    assert "(no rows: no Dataset 'snli' in the graph (did you mean 'SNLI'?))" in typo.stdout
    found = _ckg("query", "compare-papers", "-p", "dataset=SNLI", home=home)
    assert "│ accuracy" in found.stdout and "no rows" not in found.stdout


def test_a_grid_shows_progress_on_a_terminal_and_none_in_a_pipe(tiny_workflow):
    import pty

    home = tiny_workflow
    env = {**os.environ, "CKG_HOME": str(home), "COLUMNS": "80"}
    env.pop("CKG_DB", None)
    primary, secondary = pty.openpty()
    done = subprocess.run([CKG, "run", "tiny", "--grid", "x=1,2,3"], stdout=subprocess.PIPE,
                          stderr=secondary, env=env, timeout=120)  # fmt: skip
    os.close(secondary)
    shown = b""
    while True:
        try:
            chunk = os.read(primary, 65536)
        except OSError:  # the terminal closed
            break
        if not chunk:
            break
        shown += chunk
    os.close(primary)
    assert done.returncode == 0
    text = shown.decode(errors="replace")
    for i, x in enumerate((1, 2, 3), 1):
        assert f"[{i}/3] x={x}: ok" in text, text
    assert "left" in text  # the estimate of the time left
    piped = _ckg("run", "tiny", "--grid", "x=1,2", home=home)
    assert "1/2 x=1" not in piped.stderr and piped.stderr == ""


def test_an_empty_tag_is_refused_in_one_line_naming_the_tags(ckg_home):
    # CM and MLCFlow search for the tag '' there, and find nothing; ckg dropped it.
    for tags in ("get,python3,", "get,-,python3"):
        done = _ckg("find", "--tags", tags, home=ckg_home)
        assert done.returncode == 2
        assert done.stderr.splitlines() == [
            f"ckg: error: tags {tags!r} hold an empty tag: write names separated by single "
            "commas (a,b,-c,_variation: -c excludes c, _variation asks for a variation)"
        ]


def test_empty_listings_say_how_to_fill_the_graph(ckg_home, tiny_workflow):
    fresh = ckg_home / "fresh"
    find = _ckg("find", "--tags", "get,python3", home=fresh)
    assert "(no artifacts match: the graph holds none yet; ckg ingest" in find.stdout
    runs = _ckg("runs", home=fresh)
    assert "(no rows: no runs recorded yet: ckg demo, or ckg run TARGET)" in runs.stdout
    _ckg("db", "stop", home=fresh)
    held = _ckg("find", "--tags", "get,python3", home=tiny_workflow)  # holds the workflow
    assert held.stdout.strip() == "(no artifacts match 'get,python3')"
