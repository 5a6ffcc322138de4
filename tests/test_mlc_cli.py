"""MLCFlow's command line, given to ``ckg run`` and ``ckg plan`` as a user gives it to ``mlcr``.

Each flag goes through a real ``ckg run`` of a real script of the corpus' mlperf-automations
(offline ones: ``detect,os``, ``get,python3``, ``run,python``), and what it did is compared
with what the flag means to MLCFlow: the same argv is also given to ``mlcr`` once and the
two ``new_env`` must agree. The command line is read by the CLI alone, so one engine (the
embedded one) serves.
"""

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_scripts_mlcflow import _logged_result, normalized

BIN = Path(sys.executable).parent
CKG = str(BIN / "ckg")


@pytest.fixture(scope="module")
def home(corpora, tmp_path_factory):
    """mlperf-automations ingested into a private home; the environment that reaches it."""
    path = tmp_path_factory.mktemp("mlc-cli")
    env = {**os.environ, "CKG_HOME": str(path), "CKG_DB": "embedded",
           "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}  # fmt: skip
    env.pop("NEO4J_URI", None)
    ckg(env, "ingest", str(corpora / "mlperf-automations"))
    yield env
    subprocess.run([CKG, "db", "stop"], env=env, capture_output=True, timeout=60)


@pytest.fixture
def python_dir(tmp_path) -> Path:
    """A folder whose ``python3`` is this interpreter under another name."""
    folder = tmp_path / "pybin"
    folder.mkdir()
    (folder / "python3").symlink_to(sys.executable)
    return folder


def ckg(env, *args, code=0, stdin=subprocess.DEVNULL):
    done = subprocess.run([CKG, *args], env=env, stdin=stdin, capture_output=True, text=True,
                          timeout=600)  # fmt: skip
    assert done.returncode == code, f"ckg {' '.join(args)}: {done.stdout}{done.stderr}"
    return done


def the_run(done) -> dict:
    [run] = json.loads(done.stdout)["runs"]
    assert run["status"] == "ok", run["error"]
    return run


def shown(env, run: dict) -> dict:
    return json.loads(ckg(env, "show", run["uid"], "--json").stdout)


def test_tags_flag_and_j_are_the_target_and_json(home):
    by_flag = the_run(ckg(home, "run", "--tags=detect,os", "-j"))
    by_word = the_run(ckg(home, "run", "detect,os", "--json"))
    assert shown(home, by_flag)["artifact"] == shown(home, by_word)["artifact"]
    assert by_flag["new_env"]["MLC_HOST_OS_TYPE"] == by_word["new_env"]["MLC_HOST_OS_TYPE"]
    assert json.loads(ckg(home, "plan", "--tags=detect,os", "-j").stdout)["steps"]


def test_env_dot_key_sets_the_env_as_env_does(home):
    dotted = ckg(home, "run", "detect,os", "--env.MLC_PROBE=a b", "--dry-run").stdout
    spaced = ckg(home, "run", "detect,os", "--env", "MLC_PROBE=a b", "--dry-run").stdout
    assert "export MLC_PROBE='a b'" in dotted and dotted == spaced
    # both forms at once, and a real run whose script prints what the env gave it
    ran = ckg(
        home,
        "run",
        "run,python",
        "--env.MLC_RUN_PYTHON_CMD=-c print(40+2)",
        "--env",
        "MLC_OTHER=1",
        "-v",
    )
    assert "\n42\n" in ran.stderr


def test_input_mapping_flags_and_adr_reach_the_script_and_its_dependency(home, python_dir):
    # --command is run-python's input_mapping; --adr.python.tags adds a variation to the
    # dependency named python (get-python3): _custom-path.PATH makes it that interpreter
    ran = ckg(
        home,
        "run",
        "run,python",
        "--command=-c print(__import__('sys').executable)",
        f"--adr.python.tags=_custom-path.{python_dir / 'python3'}",
        "-v",
        "-j",
    )
    run = the_run(ran)
    assert f"\n{python_dir / 'python3'}\n" in ran.stderr
    [python] = [s for s in run["steps"] if s["step"].startswith("get-python3")]
    assert python["step"] == f"get-python3 _custom-path.{python_dir / 'python3'}"
    custom = f"--adr.python.tags=_custom-path.{python_dir / 'python3'}"
    planned = ckg(home, "plan", "run,python", custom, "--adr.python.version_min=3.8", "-j")
    assert python["step"] in [s["id"] for s in json.loads(planned.stdout)["steps"]]
    assert "--adr.python.version_min: read by the script when it runs" in planned.stderr


def test_path_and_version_min_are_get_python3s_inputs(home, python_dir):
    run = the_run(
        ckg(home, "run", "get,python3", f"--path={python_dir}", "--version_min=3.8", "--new", "-j")
    )
    assert run["new_env"]["MLC_PYTHON_BIN_WITH_PATH"] == str(python_dir / "python3")
    assert shown(home, run)["run"]["env_full"]["MLC_VERSION_MIN"] == "3.8"
    too_new = ckg(
        home,
        "run",
        "get,python3",
        f"--path={python_dir}",
        "--version_max=3.1",
        "--new",
        "--env.MLC_REQUIRE_INSTALL=no",
        "--dry-run",
    )
    assert too_new.returncode == 0  # planned only: installing Python is not for a test


def test_new_runs_the_target_again_into_a_new_entry_and_keeps_its_dependencies(home):
    ckg(home, "run", "run,python", "--command=-c pass")
    cached = the_run(ckg(home, "run", "get,python3", "-j"))
    assert cached["steps"][0]["cached"]
    entries = set((Path(home["CKG_HOME"]) / "cache" / "scripts").glob("get-python3_*"))
    fresh = the_run(ckg(home, "run", "get,python3", "--new", "-j"))
    assert not fresh["steps"][0]["cached"]
    after = set((Path(home["CKG_HOME"]) / "cache" / "scripts").glob("get-python3_*"))
    assert entries < after and len(after - entries) == 1  # MLCFlow keeps the old one too
    again = the_run(ckg(home, "run", "run,python", "--command=-c pass", "--new", "-j"))
    assert [s["cached"] for s in again["steps"][1:]] == [True, True]  # detect-os, get-python3


def test_v_prints_the_log_and_quiet_is_accepted(home):
    quiet = ckg(home, "run", "run,python", "--command=-c print(7*6)", "--quiet")
    assert "ckg: log of run" not in quiet.stderr and "\n42\n" not in quiet.stderr
    verbose = ckg(home, "run", "run,python", "--command=-c print(7*6)", "-v")
    assert "ckg: log of run run-" in verbose.stderr and "\n42\n" in verbose.stderr


def test_quiet_takes_the_first_where_mlcflow_would_ask(home):
    leader, follower = pty.openpty()
    try:
        asked = ckg(home, "plan", "get,compiler", stdin=follower, code=2)
        assert "mlperf-automations); add --quiet to take the first (get-llvm)" in asked.stderr
        for flag in ("--quiet", "--quiet=yes", "--env.MLC_QUIET=yes"):
            done = ckg(home, "plan", "get,compiler", flag, "-j", stdin=follower)
            steps = json.loads(done.stdout)["steps"]
            assert [s["alias"] for s in steps if s["reason"] == "target"] == ["get-llvm"]
        ckg(home, "plan", "get,compiler", "--quiet=no", stdin=follower, code=2)
    finally:
        os.close(leader)
        os.close(follower)


@pytest.mark.parametrize("args, message", [
    (["run", "detect,os", "--path", "/tmp"], "unexpected argument '/tmp'"),
    (["run", "detect,os", "--env.MLC_X"], "'--env.MLC_X' expects a value"),
    (["run", "detect,os", "--tags=get,python3"], "unexpected argument 'detect,os'"),
    (["run", "-j"], "name the target"),
    (["plan", "detect,os", "-j=1"], "a short flag takes no value"),
])  # fmt: skip
def test_a_malformed_flag_is_one_line_and_exit_2(home, args, message):
    done = ckg(home, *args, code=2)
    [line] = done.stderr.strip().splitlines()
    assert message in line


def test_ckgs_own_options_work_beside_mlcflows(home):
    run = the_run(
        ckg(
            home,
            "run",
            "run,python",
            "--input",
            "command=-c pass",
            "--env.MLC_A=1",
            "--env",
            "MLC_B=2",
            "--json",
            "--repeat",
            "2",
        )
    )
    env = shown(home, run)["run"]["env_full"]
    assert (env["MLC_A"], env["MLC_B"], env["MLC_RUN_PYTHON_CMD"]) == ("1", "2", "-c pass")
    planned = ckg(home, "plan", "get,python3", "--version_min=3.8", "--json")
    assert "--version_min: read by the script when it runs" in planned.stderr


def test_the_same_argv_as_mlcr_gives_the_same_new_env(home, corpora, tmp_path, python_dir):
    if not (BIN / "mlcr").is_file():
        pytest.skip(f"mlcflow's mlcr is not installed beside {sys.executable}")
    argv = [
        "get,python3",
        f"--path={python_dir}",
        "--version_min=3.8",
        "--env.MLC_PROBE=1",
        "--adr.python.tags=_shared",
        "--new",
        "-j",
        "--quiet",
    ]
    repos = tmp_path / "mlc-repos"
    env = {**home, "MLC_REPOS": str(repos)}
    subprocess.run([BIN / "mlc", "add", "repo", str(corpora / "mlperf-automations")], env=env,
                   cwd=tmp_path, stdin=subprocess.DEVNULL, capture_output=True, check=True,
                   timeout=300)  # fmt: skip
    theirs = subprocess.run([BIN / "mlcr", *argv], env=env, cwd=tmp_path,
                            stdin=subprocess.DEVNULL, capture_output=True, text=True,
                            timeout=600)  # fmt: skip
    expected = _logged_result(theirs.stderr)
    assert theirs.returncode == 0 and expected, theirs.stderr[-3000:]
    ours = the_run(ckg(home, "run", *argv))
    roots = [str(repos / "local" / "cache"), str(Path(home["CKG_HOME"]) / "cache" / "scripts")]
    assert normalized(ours["new_env"], roots) == normalized(expected["new_env"], roots)
