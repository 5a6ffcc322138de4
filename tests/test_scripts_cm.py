"""ckg runs Collective Mind's own scripts and gets what CM gets.

CM's script repository as released whole in the ``cmx4mlops`` 1.0.1 wheel (282 scripts with
``customize.py`` and ``run.sh``; fetched by ``pip download``, as the notebook tests fetch
nbclient, and skipped offline) runs here twice per target, offline: through the reference
``cm run script`` (cmind 4.2.0, a dependency of ckg) with ``CM_REPOS`` in a temporary folder
and the repository registered by ``cm add repo --path``, and through ``ckg run`` from the
same folder ingested into a temporary home, on the same PATH. Their ``new_env`` must agree
key for key; values that are paths inside either tool's own cache or work folders are
compared with those folders replaced by a placeholder.

The targets include CM scripts whose ``customize.py`` use ``automation.cmind``: its logger
(``detect-cpu``, and ``get-cmake`` and ``benchmark-program`` that depend on it), ``access``
of the utils automation's ``download_file`` (``download-file`` from a real HTTP server on this
host; ``get-sys-utils-min``) and ``system`` (``dump-pip-freeze``), and cmind's module-level
``access`` removing cache entries (``clean-nvidia-mlperf-inference-scratch-space``). Some run
again as a user runs them: the ``ckg`` console script as a process, with mlcr's command line.
"""

import functools
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import pytest

from ckg.api import KnowledgeGraph
from ckg.store import open_store
from ckg.store.server import stop_server

WHEEL = "cmx4mlops==1.0.1"
CM_TIMEOUT_S = 600

#: name, tags, --env, CM inputs (``cm run script --KEY=VALUE``); ``{url}`` is the HTTP server's
TARGETS = [
    ("detect-os", "detect,os", {}, {}),
    ("detect-cpu", "detect,cpu", {}, {}),
    ("get-python3", "get,python3", {}, {}),
    ("sys-utils-min", "get,sys-utils-min", {}, {}),
    ("numpy", "get,generic-python-lib,_package.numpy", {}, {}),
    ("get-cmake", "get,cmake", {}, {}),
    ("get-gcc", "get,gcc", {}, {}),
    ("benchmark-program", "benchmark,program", {"CM_RUN_CMD": "echo hello", "CM_RUN_DIR": "."}, {}),
    ("pip-freeze", "dump,pip,freeze", {}, {}),
    ("download-file", "download,file,_cmutil", {}, {"url": "{url}/data.txt"}),
]


@pytest.fixture(scope="module")
def cm_repo(tmp_path_factory) -> Path:
    """CM's script repository from the cmx4mlops wheel: one ``pip download`` away, or a skip
    when offline."""
    folder = tmp_path_factory.mktemp("wheel")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--disable-pip-version-check",
            WHEEL,
            "-d",
            str(folder),
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    found = sorted(folder.glob("cmx4mlops-*.whl"))
    if done.returncode != 0 or not found:
        pytest.skip(f"cannot download the {WHEEL} wheel (offline?): {done.stderr[-200:]}")
    with zipfile.ZipFile(found[0]) as wheel:
        wheel.extractall(folder / "unpacked")
    return folder / "unpacked" / "cmx4mlops"


@pytest.fixture(scope="module")
def files_server(tmp_path_factory):
    """A real HTTP server on this host serving one small file."""
    root = tmp_path_factory.mktemp("served")
    (root / "data.txt").write_text("served by the test\n")
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def world(cm_repo, files_server, tmp_path_factory):
    """The repository copied once, registered with CM, and ingested into a ckg home."""
    bin_dir = Path(sys.executable).parent
    if not (bin_dir / "cm").is_file():
        pytest.skip(f"cmind's cm is not installed beside {sys.executable}")
    if shutil.which("gcc") is None or shutil.which("cmake") is None:
        pytest.skip("the reference targets need gcc and cmake on PATH")
    base = tmp_path_factory.mktemp("cm")
    repo = base / "cmx4mlops"
    shutil.copytree(cm_repo, repo, symlinks=True)
    env = dict(os.environ)
    env.update(
        CM_REPOS=str(base / "cm-repos"),
        PYTHONDONTWRITEBYTECODE="1",
        PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}",
    )
    env.pop("CKG_DB", None)
    subprocess.run(
        [bin_dir / "cm", "add", "repo", f"--path={repo}"],
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
    yield {"kg": kg, "env": env, "base": base, "home": home, "bin": bin_dir, "url": files_server}
    kg.close()
    stop_server(home)
    for key, value in old.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def cm_run(world, name: str, tags: str, env: dict, inputs: dict) -> tuple[int, dict]:
    """Run ``cm run script --tags=TAGS -j --quiet`` in a fresh folder; its exit code and
    result dict."""
    cwd = world["base"] / "cm-work" / name
    cwd.mkdir(parents=True, exist_ok=True)
    args = [str(world["bin"] / "cm"), "run", "script", f"--tags={tags}", "-j", "--quiet"]
    args += [f"--env.{k}={v}" for k, v in env.items()]
    args += [f"--{k}={v}" for k, v in inputs.items()]
    done = subprocess.run(
        args,
        env=world["env"],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=CM_TIMEOUT_S,
    )
    return done.returncode, _logged_result(done.stdout + done.stderr)


def _logged_result(text: str) -> dict:
    """The last result dict that ``-j`` logs (``INFO:root:{...}``)."""
    decoder = json.JSONDecoder()
    found = {}
    for match in re.finditer(r"INFO:root:\{", text):
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


def roots(world) -> list[str]:
    return [
        str(world["base"] / "cm-repos" / "repos" / "local" / "cache"),
        str(world["base"] / "cm-work"),
        str(world["home"] / "cache" / "scripts"),
        str(world["home"] / "runs"),
    ]


def _filled(values: dict, world) -> dict:
    return {k: v.replace("{url}", world["url"]) for k, v in values.items()}


@pytest.mark.parametrize("name, tags, env, inputs", TARGETS, ids=[t[0] for t in TARGETS])
def test_ckg_run_gives_cms_new_env(world, name, tags, env, inputs):
    inputs = _filled(inputs, world)
    code, expected = cm_run(world, name, tags, env, inputs)
    assert code == 0 and expected, f"cm run script {tags} failed (exit {code})"
    [run] = world["kg"].run(tags, env=env, inputs=inputs).runs
    assert run.status == "ok", run.error
    assert normalized(run.new_env, roots(world)) == normalized(expected["new_env"], roots(world))
    assert sorted(run.new_state) == sorted(expected["new_state"])


def test_cmind_access_removes_cache_entries_as_cm_does(world):
    """``clean-nvidia-mlperf-inference-scratch-space`` calls cmind's module-level
    ``access({'action': 'rm', 'automation': 'cache', 'tags': ..., 'f': True})``: in ckg it
    removes ckg's own entries and leaves ``CM_REPOS`` and ``~/CM`` alone."""
    kg = world["kg"]
    made = "get,cache,dir,_name.ckg-clean-test"
    assert cm_run(world, "cache-dir", made, {}, {})[0] == 0
    [run] = kg.run(made).runs
    assert run.status == "ok", run.error
    assert [e for e in kg.cache_list() if e["script"] == "get-cache-dir"]
    cm_cache = world["base"] / "cm-repos" / "repos" / "local" / "cache"
    before = set(os.listdir(cm_cache))
    clean = ("clean,nvidia,scratch,space", {}, {"extra_cache_rm_tags": made})
    code, expected = cm_run(world, "clean", *clean)
    assert code == 0 and expected
    after = set(os.listdir(cm_cache))
    assert len(before - after) == 1  # CM removed its get-cache-dir entry
    [run] = kg.run(clean[0], inputs=clean[2]).runs
    assert run.status == "ok", run.error
    assert not [e for e in kg.cache_list() if e["script"] == "get-cache-dir"]
    assert set(os.listdir(cm_cache)) == after
    assert normalized(run.new_env, roots(world)) == normalized(expected["new_env"], roots(world))


def ckg_cli(world, args: list[str], cwd: Path, home_dir: Path, **options):
    """``ckg ARGS`` as a user runs it, in ``cwd``, with ``HOME`` at ``home_dir``."""
    env = dict(world["env"], HOME=str(home_dir), CKG_HOME=str(world["home"]), CKG_DB="embedded")
    env.pop("CM_REPOS")  # a user of ckg alone: CM's default is ~/CM
    return subprocess.run(
        [str(world["bin"] / "ckg"), *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=CM_TIMEOUT_S,
        **options,
    )


#: through the ``ckg`` console script: detect-os, and two whose customize.py call
#: ``automation.cmind`` (its logger; its ``access`` of the utils automation's ``system``)
CLI_TARGETS = [t for t in TARGETS if t[0] in ("detect-os", "detect-cpu", "pip-freeze")]


@pytest.mark.parametrize("name, tags, env, inputs", CLI_TARGETS, ids=[t[0] for t in CLI_TARGETS])
def test_the_ckg_command_gives_cms_new_env(world, tmp_path, name, tags, env, inputs):
    code, expected = cm_run(world, name, tags, env, inputs)
    assert code == 0 and expected, f"cm run script {tags} failed (exit {code})"
    home_dir = tmp_path / "home"
    home_dir.mkdir()
    args = ["run", f"--tags={tags}", "-j", "--quiet", "--no-cache"]
    args += [f"--env.{k}={v}" for k, v in env.items()] + [f"--{k}={v}" for k, v in inputs.items()]
    done = ckg_cli(world, args, tmp_path, home_dir, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr[-500:]
    [run] = json.loads(done.stdout)["runs"]
    assert run["status"] == "ok"
    assert normalized(run["new_env"], roots(world)) == normalized(expected["new_env"], roots(world))


def _entry_tags(home: Path, script: str) -> list[set]:
    from ckg.run.scripts.cache import ScriptCache

    return [
        set(e.tags)
        for e in ScriptCache(home / "cache" / "scripts").entries()
        if e.meta.get("script_alias") == script
    ]


def test_a_cm_run_writes_nothing_in_home(world, tmp_path):
    """CM's own ``access`` (``import cmind; cmind.access(...)``) would make ``~/CM``: in ckg
    it is the run's ``automation.cmind``, and the user's home stays as it was."""
    home_dir = tmp_path / "home"
    home_dir.mkdir()
    made = "get,cache,dir,_name.ckg-home-test"
    for args in (
        ["run", "detect,cpu"],
        ["run", made],
        ["run", "clean,nvidia,scratch,space", "--input", f"extra_cache_rm_tags={made}"],
    ):
        done = ckg_cli(world, args, tmp_path, home_dir, stdin=subprocess.DEVNULL)
        assert done.returncode == 0, done.stderr[-500:]
    assert list(home_dir.iterdir()) == []
    assert not [
        t for t in _entry_tags(world["home"], "get-cache-dir") if "_name.ckg-home-test" in t
    ]  # removed by cmind.access in ckg's cache


@pytest.fixture(scope="module")
def mlc_home(corpora, tmp_path_factory):
    """MLCFlow's script repository of the corpora, copied and ingested into its own home."""
    base = tmp_path_factory.mktemp("mlc")
    repo = base / "mlperf-automations"
    shutil.copytree(corpora / "mlperf-automations", repo, symlinks=True)
    home = base / "ckg-home"
    home.mkdir()
    kg = KnowledgeGraph(open_store("embedded", home=home), home)
    kg.store.ensure_schema()
    kg.ingest(str(repo))
    yield home
    kg.close()
    stop_server(home)


def test_an_mlc_run_writes_nothing_in_home(mlc_home, tmp_path):
    """mlcflow's package makes ``~/MLC/repos/repos.json``, its local repository and a
    ``.mlc-log.txt`` as it is imported: the scripts' ``from mlc import utils`` no longer
    runs that, and ``MLC_REPOS`` is left to the user."""
    home_dir = tmp_path / "home"
    home_dir.mkdir()
    env = dict(os.environ, HOME=str(home_dir), CKG_HOME=str(mlc_home), CKG_DB="embedded")
    env.pop("MLC_REPOS", None)
    ckg = Path(sys.executable).parent / "ckg"
    done = subprocess.run(
        [str(ckg), "run", "detect,cpu", "--no-cache"],
        env=env,
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=CM_TIMEOUT_S,
    )
    assert done.returncode == 0, done.stderr[-500:]
    assert list(home_dir.iterdir()) == []
    assert not list(mlc_home.rglob(".mlc-log.txt"))


def test_a_prompt_is_answered_from_a_pipe_as_cm_answers_it(world, tmp_path):
    """``create-custom-cache-entry`` asks for tags with ``input()``: CM reads the answer
    from a pipe, and so does ckg; with nothing to read the run fails naming the question,
    and the input that sets the value answers it instead."""
    target = "create,custom,cache,entry"
    cwd = world["base"] / "cm-work" / "prompt"
    cwd.mkdir(parents=True, exist_ok=True)
    cm = subprocess.run(
        [str(world["bin"] / "cm"), "run", "script", f"--tags={target}", "-j", "--quiet"],
        env=world["env"],
        cwd=cwd,
        input="piped-tag\n",
        capture_output=True,
        text=True,
        timeout=CM_TIMEOUT_S,
    )
    assert cm.returncode == 0, cm.stderr[-500:]
    cm_tags = [
        json.loads(p.read_text())["tags"]
        for p in (world["base"] / "cm-repos" / "repos" / "local" / "cache").glob("*/_cm.json")
        if "custom" in json.loads(p.read_text())["tags"]
    ]
    assert ["piped-tag" in tags for tags in cm_tags] == [True]

    home_dir = tmp_path / "home"
    home_dir.mkdir()
    piped = ckg_cli(world, ["run", target, "--json"], tmp_path, home_dir, input="piped-tag\n")
    assert piped.returncode == 0, piped.stderr[-500:]
    [run] = json.loads(piped.stdout)["runs"]
    expected = _logged_result(cm.stdout + cm.stderr)
    assert normalized(run["new_env"], roots(world)) == normalized(expected["new_env"], roots(world))
    assert [
        "piped-tag" in tags for tags in _entry_tags(world["home"], "create-custom-cache-entry")
    ] == [True]

    unanswered = ckg_cli(
        world, ["run", target, "--no-cache"], tmp_path, home_dir, stdin=subprocess.DEVNULL
    )
    assert unanswered.returncode != 0
    assert (
        "create-custom-cache-entry: customize.py preprocess asks 'Enter extra tags for "
        "the custom CACHE entry separated by comma:' and standard input has no answer"
        in unanswered.stderr
    )
    given = ckg_cli(
        world,
        ["run", target, "--no-cache", "--input", "extra_cache_tags=given"],
        tmp_path,
        home_dir,
        stdin=subprocess.DEVNULL,
    )
    assert given.returncode == 0, given.stderr[-500:]
    assert list(home_dir.iterdir()) == []
