"""MLCFlow's semantics in ckg's script engine, on MLC scripts made here and run for real:
tmp-run.sh, env hand-over, customize.py hooks, the cache, and hooks that misbehave."""

import json
import os
import re
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from ckg.run.execute import can_fork
from ckg.run.scripts import native
from ckg.run.scripts.automation import ScriptAutomation
from ckg.run.scripts.index import Script, save_index
from ckg.run.scripts.invoke import invoke


class Repo:
    """An MLC script repository in a temporary folder, and a home to run it from."""

    def __init__(self, root: Path):
        self.root = root
        self.home = root.parent / "home"
        self.order = root.parent / "order.txt"
        (root / "script").mkdir(parents=True)
        self.scripts: list[Script] = []

    def script(self, alias, meta, run_sh=None, customize=None, files=None) -> Path:
        folder = self.root / "script" / alias
        folder.mkdir()
        meta = {
            "alias": alias,
            "uid": f"{len(self.scripts) + 1:016x}",
            "automation_alias": "script",
            **meta,
        }
        (folder / "meta.yaml").write_text(yaml.safe_dump(meta))
        if run_sh is not None:
            (folder / "run.sh").write_text("#!/bin/bash\n" + textwrap.dedent(run_sh))
        if customize is not None:
            (folder / "customize.py").write_text(textwrap.dedent(customize))
        for name, text in (files or {}).items():
            (folder / name).write_text(textwrap.dedent(text))
        self.scripts.append(
            Script.from_dict(
                {
                    "uid": meta["uid"],
                    "alias": alias,
                    "tags": meta.get("tags", []),
                    "meta": meta,
                    "path": str(folder),
                    "repo_path": str(self.root),
                }
            )
        )
        return folder

    def run(self, tags, env=None, **kw):
        index = self.root.parent / "index.json"
        save_index(index, self.scripts)
        workdir = (
            self.home / "runs" / f"r{len(list((self.home / 'runs').glob('*')))}"
            if (self.home / "runs").exists()
            else self.home / "runs" / "r0"
        )
        job = {"tags": tags, "env": dict(env or {}), **kw.pop("inputs", {})}
        return invoke(
            index, job, home=self.home, workdir=workdir, log_path=workdir / "ckg-run.log", **kw
        )

    def order_lines(self) -> list[str]:
        return self.order.read_text().split() if self.order.exists() else []


@pytest.fixture
def repo(tmp_path):
    return Repo(tmp_path / "repo")


def _mark(repo, name):
    return f'echo {name} >> "{repo.order}"\n'


def test_tmp_run_sh_exports_sorted_env_and_the_flavor_variant_wins(repo):
    folder = repo.script(
        "hello",
        {
            "tags": ["hello"],
            "env": {"MLC_B": 'say "hi"', "MLC_A": "1"},
            "new_env_keys": ["MLC_SAID"],
        },
        run_sh='echo "MLC_SAID=generic" > tmp-run-env.out\n',
        files={
            "run-debian.sh": 'echo "MLC_SAID=$MLC_B" > tmp-run-env.out\n',
            "run-linux.sh": "exit 1\n",
        },
    )
    # MLCFlow's order: with no flavor, "run-<flavor>-<version>.sh" is run.sh, found first
    assert native.script_path({"MLC_HOST_OS_TYPE": "linux"}, folder) == folder / "run.sh"
    result = repo.run("hello", {"MLC_HOST_OS_FLAVOR": "debian"})
    assert result.status == "ok", result.error
    assert result.new_env == {"MLC_SAID": 'say "hi"'}
    text = (Path(result.steps[0]["workdir"]) / "tmp-run.sh").read_text()
    exports = [line for line in text.splitlines() if line.startswith("export ")]
    assert exports == sorted(exports)
    assert 'export MLC_B="say \\"hi\\""' in exports
    assert text.splitlines()[0] == "#!/bin/bash"
    assert text.rstrip().endswith(f'. "{folder}/run-debian.sh"')


def test_caller_gets_only_new_env_keys_and_local_keys_stay_local(repo):
    repo.script(
        "get-dep",
        {"tags": ["get", "dep"], "new_env_keys": ["MLC_DEP_*"]},
        run_sh='echo "MLC_DEP_PATH=/opt/dep" > tmp-run-env.out\n'
        'echo "MLC_OTHER=x" >> tmp-run-env.out\n'
        'echo "dep sees version=${MLC_VERSION:-unset} user=$MLC_USER_KEY"\n',
    )
    repo.script(
        "app",
        {
            "tags": ["app"],
            "version": "2.0",
            "deps": [{"tags": "get,dep"}],
            "new_env_keys": ["MLC_APP_*", "MLC_DEP_PATH"],
        },
        run_sh='echo "MLC_APP_OUT=$MLC_DEP_PATH/out:${MLC_OTHER:-no}" > tmp-run-env.out\n',
    )
    result = repo.run("app", {"MLC_USER_KEY": "u"})
    assert result.status == "ok", result.error
    assert result.new_env == {"MLC_APP_OUT": "/opt/dep/out:no", "MLC_DEP_PATH": "/opt/dep"}
    log = (Path(result.steps[0]["workdir"]) / "ckg-run.log").read_text()
    assert "dep sees version=unset user=u" in log  # MLC_VERSION is local to app
    assert [s["alias"] for s in result.steps] == ["app", "get-dep"]
    assert result.steps[1]["parent"] == result.steps[0]["id"]


def test_hooks_and_dependency_kinds_run_in_mlcflows_order(repo):
    for name in ("dep", "pre", "post", "after"):
        repo.script(f"get-{name}", {"tags": ["get", name]}, run_sh=_mark(repo, name))
    hooks = f"""
        from mlc import utils
        from utils import is_true

        def preprocess(i):
            open({str(repo.order)!r}, "a").write("preprocess\\n")
            assert is_true("yes") and utils.merge_dicts
            return {{"return": 0}}

        def postprocess(i):
            open({str(repo.order)!r}, "a").write("postprocess\\n")
            return {{"return": 0}}
        """
    repo.script(
        "app",
        {
            "tags": ["app"],
            "deps": [{"tags": "get,dep"}],
            "prehook_deps": [{"tags": "get,pre"}],
            "posthook_deps": [{"tags": "get,post"}],
            "post_deps": [{"tags": "get,after"}],
        },
        run_sh=_mark(repo, "run.sh"),
        customize=hooks,
    )
    result = repo.run("app")
    assert result.status == "ok", result.error
    assert repo.order_lines() == [
        "dep",
        "preprocess",
        "pre",
        "run.sh",
        "post",
        "postprocess",
        "after",
    ]


def test_guards_see_what_preprocess_set(repo):
    repo.script("get-gpu", {"tags": ["get", "gpu"]}, run_sh=_mark(repo, "gpu"))
    repo.script(
        "app",
        {
            "tags": ["app"],
            "prehook_deps": [{"tags": "get,gpu", "enable_if_env": {"MLC_USE_GPU": ["yes"]}}],
        },
        run_sh=_mark(repo, "app"),
        customize="""
                    def preprocess(i):
                        i['env']['MLC_USE_GPU'] = i['env'].get('MLC_WANT', 'no')
                        return {'return': 0}
                    """,
    )
    assert repo.run("app").status == "ok"
    assert repo.order_lines() == ["app"]
    assert repo.run("app", {"MLC_WANT": "yes"}).status == "ok"
    assert repo.order_lines() == ["app", "gpu", "app"]


def test_variations_env_version_and_input_mapping(repo):
    repo.script(
        "tool",
        {
            "tags": ["tool"],
            "default_env": {"MLC_LEVEL": "low", "MLC_KEEP": "d"},
            "env": {"MLC_KIND": "meta"},
            "input_mapping": {"level": "MLC_LEVEL"},
            "default_version": "1.5",
            "new_env_keys": ["MLC_*"],
            "variations": {
                "cpu": {"group": "device", "default": True, "env": {"MLC_DEV": "cpu"}},
                "cuda": {"group": "device", "env": {"MLC_DEV": "cuda"}},
                "fast": {"base": ["cuda"], "env": {"MLC_KIND": "fast"}},
                "cuda,fast": {"env": {"MLC_COMBO": "yes"}},
                "pkg.#": {"env": {"MLC_PKG": "#"}},
            },
        },
        run_sh='echo "MLC_SEEN=$MLC_DEV/$MLC_KIND/$MLC_LEVEL/$MLC_VERSION" > tmp-run-env.out\n',
    )
    plain = repo.run("tool", inputs={"level": "high"})
    assert plain.status == "ok", plain.error
    assert plain.new_env["MLC_SEEN"] == "cpu/meta/high/1.5"
    assert plain.steps[0]["variations"] == ["cpu"]
    fast = repo.run("tool,_fast,_pkg.numpy")
    assert fast.new_env["MLC_SEEN"] == "cuda/fast/low/1.5"
    assert fast.new_env["MLC_COMBO"] == "yes" and fast.new_env["MLC_PKG"] == "numpy"
    assert fast.steps[0]["variations"] == ["cuda", "fast", "pkg.numpy"]
    clash = repo.run("tool,_cpu,_fast")
    assert clash.status == "failed" and "group 'device'" in clash.error


def test_preprocess_skip_runs_nothing_else(repo):
    repo.script(
        "maybe",
        {"tags": ["maybe"]},
        run_sh=_mark(repo, "ran"),
        customize="def preprocess(i):\n    return {'return': 0, 'skip': True}\n",
    )
    result = repo.run("maybe")
    assert result.status == "ok" and repo.order_lines() == []
    assert result.steps[0]["status"] == "skipped"


def test_cache_hit_skips_preprocess_and_run_sh_and_failures_are_never_cached(repo):
    repo.script(
        "get-lib",
        {"tags": ["get", "lib"], "cache": True, "new_env_keys": ["MLC_LIB_*"]},
        run_sh=_mark(repo, "run") + 'test "$MLC_FAIL" != yes || exit 3\n'
        'echo "MLC_LIB_PATH=$PWD/lib" > tmp-run-env.out\n',
        customize=f"""
                    def preprocess(i):
                        open({str(repo.order)!r}, "a").write("preprocess\\n")
                        return {{'return': 0}}
                    """,
    )
    failed = repo.run("get,lib", {"MLC_FAIL": "yes"})
    assert failed.status == "failed" and "return code = 3" in failed.error
    assert not any(repo.home.glob("cache/scripts/*"))  # nothing half-made is kept
    first = repo.run("get,lib")
    second = repo.run("get,lib")
    assert repo.order_lines() == ["preprocess", "run", "preprocess", "run"]
    assert second.steps[0]["status"] == "cached" and not second.in_worker
    assert second.new_env == first.new_env
    [entry] = repo.home.glob("cache/scripts/get-lib_*")
    assert first.new_env["MLC_LIB_PATH"] == f"{entry}/lib"  # it ran in its entry's folder
    state = json.loads((entry / "mlc-cached-state.json").read_text())
    assert state["new_env"] == first.new_env
    assert repo.run("get,lib", use_cache=False).status == "ok"
    assert repo.order_lines()[-2:] == ["preprocess", "run"]


def test_expired_entries_run_again(repo):
    repo.script(
        "get-data",
        {"tags": ["get", "data"], "cache": True, "cache_expiration": "1s"},
        run_sh=_mark(repo, "run"),
    )
    repo.run("get,data")
    for meta_file in repo.home.glob("cache/scripts/*/ckg-cache.json"):
        meta = json.loads(meta_file.read_text())
        meta["created"] -= 60
        meta_file.write_text(json.dumps(meta))
    result = repo.run("get,data")
    assert repo.order_lines() == ["run", "run"]
    assert result.steps[0]["removed_entries"]


@pytest.mark.parametrize(
    "body, expected",
    [
        ("raise ValueError('bad input')", "customize.py preprocess raised ValueError: bad input"),
        ("import sys\n    sys.exit(3)", "customize.py preprocess raised SystemExit: 3"),
        ("import os\n    os._exit(9)", "exited with code 9"),
        ("import os, signal\n    os.kill(os.getpid(), signal.SIGSEGV)", "killed by signal 11"),
        ("while True:\n        pass", "timed out"),
    ],
)
def test_a_misbehaving_hook_is_one_failed_step(repo, body, expected):
    repo.script("get-ok", {"tags": ["get", "ok"], "cache": True}, run_sh=_mark(repo, "ok"))
    repo.script(
        "bad",
        {"tags": ["bad"], "deps": [{"tags": "get,ok"}]},
        run_sh=_mark(repo, "bad"),
        customize=f"def preprocess(i):\n    {body}\n    return {{'return': 0}}\n",
    )
    result = repo.run("bad", timeout_s=3)
    assert result.status in ("failed", "timeout")
    assert expected in result.error
    assert [(s["alias"], s["status"]) for s in result.steps] == [
        ("bad", result.status),
        ("get-ok", "ok"),
    ]
    assert repo.order_lines() == ["ok"]
    if "raised" in expected:
        assert "Traceback" in result.steps[0]["log_tail"]


def test_an_automation_method_ckg_lacks_is_named(repo):
    repo.script(
        "dock",
        {"tags": ["dock"]},
        customize="def preprocess(i):\n    return i['automation'].docker({})\n",
    )
    result = repo.run("dock")
    assert result.status == "failed"
    assert "not supported by ckg: docker (script dock)" in result.error


def test_a_hook_can_run_another_script_and_find_files(repo, tmp_path):
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "mytool").write_text("#!/bin/sh\necho mytool 4.2.1\n")
    (tmp_path / "bin" / "mytool").chmod(0o755)
    repo.script(
        "get-helper",
        {"tags": ["get", "helper"], "new_env_keys": ["MLC_HELPER"]},
        run_sh='echo "MLC_HELPER=$MLC_ASKED" > tmp-run-env.out\n',
    )
    repo.script(
        "get-mytool",
        {"tags": ["get", "mytool"], "new_env_keys": ["MLC_MYTOOL_*"]},
        run_sh='"$MLC_MYTOOL_BIN_WITH_PATH" > tmp-ver.out\n',
        customize=f"""
                    def preprocess(i):
                        a = i['automation']
                        r = a.action_object.access({{'action': 'run', 'automation': 'script',
                                                    'tags': 'get,helper',
                                                    'env': {{'MLC_ASKED': 'yes'}}}})
                        assert r['return'] == 0, r
                        i['env']['MLC_MYTOOL_HELPER'] = r['new_env']['MLC_HELPER']
                        i['env']['MLC_TMP_PATH'] = {str(tmp_path / "bin")!r}
                        r = a.find_artifact({{'file_name': 'mytool', 'env': i['env'],
                                             'os_info': i['os_info'],
                                             'default_path_env_key': 'PATH',
                                             'detect_version': True,
                                             'env_path_key': 'MLC_MYTOOL_BIN_WITH_PATH',
                                             'run_script_input': i['run_script_input']}})
                        return r if r['return'] else {{'return': 0}}

                    def detect_version(i):
                        r = i['automation'].parse_version({{'match_text': r'mytool ([\\d.]+)',
                                                           'group_number': 1,
                                                           'env_key': 'MLC_MYTOOL_VERSION',
                                                           'which_env': i['env']}})
                        return r if r['return'] else {{'return': 0, 'version': r['version']}}

                    def postprocess(i):
                        return detect_version(i)
                    """,
    )
    result = repo.run("get,mytool")
    assert result.status == "ok", result.error
    assert result.new_env["MLC_MYTOOL_HELPER"] == "yes"
    assert result.new_env["MLC_MYTOOL_BIN_WITH_PATH"] == str(tmp_path / "bin" / "mytool")
    assert result.new_env["MLC_MYTOOL_VERSION"] == "4.2.1"


def test_every_automation_method_the_corpus_calls_often_is_provided(corpora):
    """Count the ``automation.NAME`` calls in the MLCFlow repository's customize.py files;
    each one used by more than one script is a method of ckg's automation object."""
    calls: dict[str, set[str]] = {}
    pattern = re.compile(r"automation(?:'\])?\.(?:action_object\.)?([A-Za-z_]+)")
    for path in (corpora / "mlperf-automations" / "script").glob("*/customize.py"):
        for name in set(pattern.findall(path.read_text(errors="replace"))):
            calls.setdefault(name, set()).add(path.parent.name)
    common = sorted(n for n, scripts in calls.items() if len(scripts) > 1)
    assert {"logger", "run_native_script", "find_artifact", "parse_version"} <= set(common)
    automation = ScriptAutomation(
        SimpleNamespace(cache=SimpleNamespace(root="/c"), os_info={}),
        SimpleNamespace(script=SimpleNamespace(alias="x")),
        {},
    )
    assert [n for n in common if not hasattr(automation, n)] == []
    assert not hasattr(automation, "docker")


def test_a_malformed_meta_or_a_cycle_fails_that_run_with_one_line(repo):
    repo.script("odd", {"tags": ["odd"], "variations": ["not", "a", "map"]}, run_sh="true\n")
    repo.script("loop-a", {"tags": ["loop", "a"], "deps": [{"tags": "loop,b"}]}, run_sh="true\n")
    repo.script("loop-b", {"tags": ["loop", "b"], "deps": [{"tags": "loop,a"}]}, run_sh="true\n")
    odd = repo.run("odd")
    assert odd.status == "failed"
    assert odd.error.startswith("odd: cannot use its meta (") and "\n" not in odd.error
    loop = repo.run("loop,a")
    assert loop.status == "failed" and "nest deeper than 64 scripts (a cycle?" in loop.error
    missing = repo.run("no,such,script")
    assert missing.status == "failed" and missing.error == "no script has the tags no,such,script"


def _invoke(job: dict):
    return invoke(
        Path(job["index"]),
        {"tags": "look"},
        home=Path(job["home"]),
        workdir=Path(job["workdir"]),
        log_path=Path(job["workdir"]) / "ckg-run.log",
        env=job["env"],
    )


_INVOKE_ALONE = (
    "import json, os, sys\n"
    "from ckg.run.execute import can_fork\n"
    "from tests.test_scripts_engine import _invoke\n"
    "assert can_fork()\n"
    "result = _invoke(json.loads(sys.argv[1]))\n"
    "print(json.dumps({'status': result.status, 'error': result.error, 'caller': os.getpid()}))\n"
)


@pytest.mark.parametrize("forked", [True, False], ids=["forked", "spawned"])
def test_a_worker_is_what_a_new_interpreter_would_be(repo, forked):
    """The worker runs in a fork of this process when nothing else runs in it, else in a new
    interpreter (a thread could hold a lock across a fork): either way the hooks see the
    worker's argv, its folder on sys.path, exactly the job's environment and not this
    process's standard input, and what they print is in the log."""
    seen = repo.root.parent / "seen.json"
    repo.script(
        "look",
        {"tags": ["look"]},
        customize=f"""\
        import json, os, sys
        def preprocess(i):
            open({str(seen)!r}, "w").write(json.dumps({{
                "argv": sys.argv, "path": sys.path,
                "ours": os.environ.get("CKG_ONLY_HERE"), "parent": os.getppid(),
                "stdin_null": os.path.samestat(os.fstat(0), os.stat(os.devnull))}}))
            print("the hook speaks")
            return {{"return": 0}}
        """,
    )
    index, workdir = repo.root.parent / "index.json", repo.home / "runs" / "r0"
    save_index(index, repo.scripts)
    env = dict(os.environ)  # the worker's
    job = {"index": str(index), "home": str(repo.home), "workdir": str(workdir), "env": env}
    if forked:
        # From a new interpreter, a process of one thread as a ckg command is: this pytest
        # worker holds threads Python does not list (xdist's execnet), so it never forks.
        done = subprocess.run(
            [sys.executable, "-c", _INVOKE_ALONE, json.dumps(job)],
            env={**env, "CKG_ONLY_HERE": "1"},  # in the caller only
            cwd=Path(__file__).parents[1],  # where tests.test_scripts_engine imports from
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        result = SimpleNamespace(**json.loads(done.stdout.splitlines()[-1]))
    else:
        os.environ["CKG_ONLY_HERE"] = "1"  # in this process only
        busy = threading.Event()
        other = threading.Thread(target=busy.wait)
        try:
            other.start()
            assert not can_fork()
            ran = _invoke(job)
            result = SimpleNamespace(status=ran.status, error=ran.error, caller=os.getpid())
        finally:
            del os.environ["CKG_ONLY_HERE"]
            busy.set()
            other.join()
    assert result.status == "ok", result.error
    looked = json.loads(seen.read_text())
    assert Path(looked["argv"][0]).name == "worker.py" and looked["argv"][1].endswith("job.json")
    assert str(workdir) in looked["path"]  # python -m puts its folder on sys.path
    assert looked["ours"] is None and looked["parent"] == result.caller and looked["stdin_null"]
    assert "the hook speaks" in (workdir / "ckg-run.log").read_text()


def test_a_hooks_bytecode_is_kept_in_the_home_and_loaded_from_there(repo, monkeypatch):
    """customize.py is compiled once, into ckg's home, and loaded from that bytecode after:
    a __pycache__ beside it would change the source's copy."""
    monkeypatch.setattr(sys, "pycache_prefix", None)  # as a worker forked from here sees them
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    monkeypatch.delenv("PYTHONPYCACHEPREFIX", raising=False)  # and a new interpreter
    monkeypatch.delenv("PYTHONDONTWRITEBYTECODE", raising=False)
    repo.script(
        "hooked",
        {"tags": ["hooked"]},
        run_sh="true\n",
        customize="def preprocess(i):\n    return {'return': 0}\n",
    )
    assert repo.run("hooked").status == "ok"
    [compiled] = (repo.home / "pycache").rglob("customize.*.pyc")
    written = compiled.stat().st_mtime_ns
    assert repo.run("hooked").status == "ok"
    assert compiled.stat().st_mtime_ns == written  # loaded, not compiled again
    assert not list(repo.root.rglob("__pycache__"))


def test_the_long_bits_are_what_getconf_prints(tmp_path, monkeypatch):
    """Read from the getconf program's ELF class rather than spawned each command; a getconf
    that is not an ELF program is asked."""
    printed = subprocess.run(["getconf", "LONG_BIT"], capture_output=True, text=True)
    assert native._long_bits() == printed.stdout.strip()
    script = tmp_path / "getconf"
    script.write_text("#!/bin/sh\necho 32\n")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    assert native._long_bits() == "32"


def test_os_info_is_the_one_of_the_getconf_on_path(tmp_path, monkeypatch):
    """Taken once per PATH, ahead in a resident process, whose children each run under the
    PATH of the command they took on."""
    host = native.os_info()["bits"]
    script = tmp_path / "getconf"
    script.write_text("#!/bin/sh\necho 32\n")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    assert native.os_info()["bits"] == "32"
    monkeypatch.undo()
    assert native.os_info()["bits"] == host
