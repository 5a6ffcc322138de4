"""``ckg run``, ``ckg platform``, ``ckg trust`` and ``ckg db recover`` as real processes."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ckg.run.demo import EXAMPLE

CKG = str(Path(sys.executable).with_name("ckg"))


def _ckg(*args, check_code=0):
    done = subprocess.run([CKG, *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == check_code, done.stdout + done.stderr
    return done


@pytest.fixture
def workflow(ckg_home, tmp_path):
    folder = tmp_path / "wf"
    folder.mkdir()
    (folder / "ckg.yaml").write_text(
        "alias: echoer\nuid: wf-echoer\nparams: {n: 1}\n"
        'run: "echo \\"{{\\\\\\"f1\\\\\\": {n}}}\\""\n'
    )
    _ckg("ingest", str(folder))
    return folder


def test_run_grid_json_and_pareto(workflow):
    done = _ckg("run", "echoer", "--grid", "n=1,2,3", "--json", "--pareto", "f1,runtime")
    report = json.loads(done.stdout)
    assert [r["metrics"]["f1"] for r in report["runs"]] == [1.0, 2.0, 3.0]
    assert report["front"][0]["f1"] == "3"


@pytest.mark.parametrize(
    "args, message",
    [
        (["run", "nothing-here"], "unknown target 'nothing-here'"),
        (["run", "echoer", "--env", "NOEQUALS"], "--env expects NAME=VALUE"),
        (["run", "echoer", "--grid", "m=1,2"], "--grid: m is not a parameter of echoer"),
        (["run", "echoer", "--grid", "n"], "--grid expects NAME=V1,V2"),
        (["run", "echoer", "--var", "fast"], "fast"),
        (["run", "echoer", "--pareto", "f1"], "--pareto expects at least two metrics"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(workflow, args, message):
    done = _ckg(*args, check_code=2)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], done.stderr


def test_dry_run_prints_the_command_and_runs_nothing(workflow, ckg_home):
    done = _ckg("run", "echoer", "--grid", "n=5", "--dry-run")
    assert "# echoer  [n=5]" in done.stdout
    assert "echo" in done.stdout and '\\"f1\\": 5' in done.stdout.replace("'", "")
    assert not (ckg_home / "runs").exists()


def test_platform_prints_its_uid(ckg_home):
    info = json.loads(_ckg("platform", "--json").stdout)
    assert info["uid"].startswith("platform-") and info["cores"] >= 1


def test_trust_an_archive_source_then_it_runs(ckg_home, workflow, tmp_path):
    archive = shutil.make_archive(str(tmp_path / "wf"), "zip", workflow)
    _ckg("ingest", archive)
    refused = _ckg("trust", str(tmp_path / "absent.zip"), check_code=2)
    assert "no ingested source" in refused.stderr
    done = _ckg("trust", archive)
    assert done.stdout.startswith(f"trusted {archive} (zip")


def test_db_recover_reports_nothing_to_do_on_a_complete_graph(workflow):
    _ckg("run", "echoer")
    done = _ckg("db", "recover", "--json")
    assert json.loads(done.stdout) == {"journalled": 1, "recovered": 0, "measurements": 0}


def test_the_missions_image_classifier_command_targets_the_example_by_tag(ckg_home):
    _ckg("ingest", str(EXAMPLE))
    done = _ckg("run", "image-classifier", "--grid", "model=knn,logreg", "--dry-run")
    assert "# sklearn-digits  [model=knn]" in done.stdout
    assert "# sklearn-digits  [model=logreg]" in done.stdout
    assert "train.py --model logreg" in done.stdout
