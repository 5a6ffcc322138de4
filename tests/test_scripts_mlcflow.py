"""ckg runs the real MLCFlow scripts and gets what MLCFlow gets.

Each target of :data:`TARGETS` runs here offline twice: through the reference MLCFlow
(``mlcr``, mlcflow 1.3.8, a test dependency) with the corpus registered by ``mlc add repo``
and ``MLC_REPOS`` in a temporary folder, and through ``ckg run`` from the same folder
ingested into a temporary home, on the same PATH. Their ``new_env`` must agree key for key;
values that are paths inside either tool's own cache or work folders are compared with
those folders replaced by a placeholder.
"""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ckg.api import KnowledgeGraph
from ckg.store import open_store
from ckg.store.server import stop_server

#: name, tags, --env, MLC inputs (``mlcr --KEY=VALUE``)
TARGETS = [
    ("detect-os", "detect,os", {}, {}),
    ("detect-cpu", "detect,cpu", {}, {}),
    ("get-python3", "get,python3", {}, {}),
    ("numpy", "get,generic-python-lib,_numpy", {}, {}),
    ("get-gcc", "get,gcc", {}, {}),
    ("get-cmake", "get,cmake", {}, {}),
    ("cache-dir", "get,cache,dir,_name.example", {}, {}),
    ("benchmark-program", "benchmark,program", {"MLC_RUN_CMD": "echo hello"}, {}),
    ("run-python", "run,python", {}, {"command": "-c print(1)"}),
    ("pip-freeze", "dump,pip,freeze", {}, {}),
]
MLCFLOW_TIMEOUT_S = 600


@pytest.fixture(scope="module")
def world(corpora, tmp_path_factory):
    """The corpus copied once, registered with MLCFlow, and ingested into a ckg home."""
    bin_dir = Path(sys.executable).parent
    if not (bin_dir / "mlcr").is_file():
        pytest.skip(f"mlcflow's mlcr is not installed beside {sys.executable}")
    if shutil.which("gcc") is None or shutil.which("cmake") is None:
        pytest.skip("the reference targets need gcc and cmake on PATH")
    base = tmp_path_factory.mktemp("mlcflow")
    repo = base / "mlperf-automations"
    shutil.copytree(corpora / "mlperf-automations", repo, symlinks=True)
    env = dict(os.environ)
    env.update(
        MLC_REPOS=str(base / "mlc-repos"),
        PYTHONDONTWRITEBYTECODE="1",
        PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}",
    )
    env.pop("CKG_DB", None)
    subprocess.run(
        [bin_dir / "mlc", "add", "repo", str(repo)],
        env=env,
        cwd=base,
        check=True,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=120,
    )
    home = base / "ckg-home"
    home.mkdir()
    old = {k: os.environ.get(k) for k in ("PATH", "CKG_HOME", "CKG_DB")}
    os.environ.update(PATH=env["PATH"], CKG_HOME=str(home), CKG_DB="embedded")
    kg = KnowledgeGraph(open_store("embedded", home=home), home)
    kg.store.ensure_schema()
    kg.ingest(str(repo))
    yield {"kg": kg, "env": env, "base": base, "home": home, "bin": bin_dir}
    kg.close()
    stop_server(home)
    for key, value in old.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def mlcr(world, name: str, tags: str, env: dict, inputs: dict) -> tuple[int, dict]:
    """Run ``mlcr TAGS -j --quiet`` in a fresh folder; its exit code and result dict."""
    cwd = world["base"] / "mlc-work" / name
    cwd.mkdir(parents=True, exist_ok=True)
    args = [str(world["bin"] / "mlcr"), tags, "-j", "--quiet"]
    args += [f"--env.{k}={v}" for k, v in env.items()]
    args += [f"--{k}={v}" for k, v in inputs.items()]
    done = subprocess.run(
        args,
        env=world["env"],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=MLCFLOW_TIMEOUT_S,
    )
    return done.returncode, _logged_result(done.stderr)


def _logged_result(text: str) -> dict:
    """The last result dict that ``-j`` logs (``... INFO ] - {...}``)."""
    decoder = json.JSONDecoder()
    found = {}
    for match in re.finditer(r"\] - \{", text):
        try:
            obj, _ = decoder.raw_decode(text, match.end() - 1)
        except ValueError:
            continue
        if isinstance(obj, dict) and "new_env" in obj:
            found = obj
    return found


def normalized(env: dict, roots: list[str]) -> dict:
    """``env`` with paths inside the tools' own cache and work folders made comparable."""
    pattern = re.compile("|".join(re.escape(r.rstrip("/")) + r"/[^/\s'\"]+" for r in roots))

    def fix(value):
        if isinstance(value, str):
            return pattern.sub("<tool-folder>", value)
        if isinstance(value, list):
            return [fix(v) for v in value]
        return value

    return {k: fix(v) for k, v in env.items()}


def test_a_cycle_that_a_guard_breaks_at_run_time_runs_as_in_mlcflow(world):
    # get-compiler-flags -> get,compiler (get-gcc) -> post_deps get-compiler-flags, whose
    # get,compiler is skipped there because get-gcc has set MLC_C_COMPILER_BIN. Run before
    # the get-gcc target below, so that no cache entry of get-gcc cuts the chain short.
    code, expected = mlcr(world, "compiler-flags", "get,compiler-flags", {},
                          {"adr.compiler.tags": "gcc"})  # fmt: skip
    assert code == 0 and "+ CFLAGS" in expected["new_env"], f"mlcr failed (exit {code})"
    adr = {"compiler": {"tags": "gcc"}}
    plan = world["kg"].plan("get,compiler-flags", adr=adr)
    [again] = [a for a in plan.again if a["again"] == "get-compiler-flags"]
    assert again["step"] == "get-gcc"
    assert again["why"] == "skip_if_env {'MLC_C_COMPILER_BIN': ['on']}"
    [run] = world["kg"].run("get,compiler-flags", inputs={"add_deps_recursive": adr}).runs
    assert run.status == "ok", run.error
    assert [s["step"] for s in run.steps].count("get-compiler-flags") == 2
    assert run.new_env == expected["new_env"]


def test_a_python_package_as_the_target_is_served_from_its_cache_entry(world):
    # validate_cache.sh runs ${MLC_PYTHON_BIN_WITH_PATH}, which only the entry's dynamic
    # get,python3 dependency sets when get-generic-python-lib is the target
    kg = world["kg"]
    tags = "get,generic-python-lib,_package.networkx"
    first, second = (kg.run(tags).runs[0] for _ in range(2))
    assert first.status == second.status == "ok", first.error or second.error
    assert second.steps[0]["status"] == "cached"
    assert len(kg.cache_list(tags)) == 1


@pytest.mark.parametrize("name, tags, env, inputs", TARGETS, ids=[t[0] for t in TARGETS])
def test_ckg_run_gives_mlcflows_new_env(world, name, tags, env, inputs):
    code, expected = mlcr(world, name, tags, env, inputs)
    assert code == 0 and expected, f"mlcr {tags} failed (exit {code})"
    [run] = world["kg"].run(tags, env=env, inputs=inputs).runs
    assert run.status == "ok", run.error
    roots = [
        str(world["base"] / "mlc-repos" / "local" / "cache"),
        str(world["base"] / "mlc-work"),
        str(world["home"] / "cache" / "scripts"),
        str(world["home"] / "runs"),
    ]
    assert normalized(run.new_env, roots) == normalized(expected["new_env"], roots)
    assert sorted(run.new_state) == sorted(expected["new_state"])


def test_a_script_that_needs_the_network_fails_with_its_own_error_and_is_retried(world):
    kg = world["kg"]
    code, _ = mlcr(world, "get-git", "get,git", {}, {})
    assert code != 0
    for _ in (1, 2):
        [run] = kg.run("get,git").runs
        assert run.status == "failed"
        assert "native script run.sh failed inside script get-git-repo" in run.error
        assert run.steps[0]["executed"] == ["preprocess", "run.sh"]  # run again each time
        assert not [e for e in kg.cache_list() if e["script"] == "get-git-repo"]
