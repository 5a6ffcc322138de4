"""customize.py hooks, called the way MLCFlow calls them (inside the worker process only).

A script's ``customize.py`` is imported once per worker as its own module, with the
script's folder and an ``automation`` folder on ``sys.path``: the script repository's own
(``<repo>/automation``, holding the ``utils.py`` that ``from utils import is_true`` reads)
or, for a release without one such as the scripts' wheel, the copy the ``mlcflow`` package
ships; ``from mlc import utils`` is ``mlcflow``'s. Each hook gets MLCFlow's ``i``
(``input``, ``automation``, ``artifact``, ``customize``, ``os_info``,
``recursion_spaces``, ``script_tags``, ``variation_tags``, ``env``, ``state``, ``meta``,
``run_script_input``; ``const`` and ``const_state`` too in ``postprocess``) in the step's
working folder. Any exception, ``sys.exit`` included, fails the step with its traceback in
the log.
"""

import builtins
import copy
import importlib
import importlib.util
import os
import sys
import traceback
from pathlib import Path

from ckg.run.scripts.automation import ScriptAutomation
from ckg.run.scripts.engine import Frame, ScriptFailed


def automation_folder(repo_path: str) -> str:
    """The folder whose ``utils.py`` scripts import: the repository's, else mlcflow's."""
    own = Path(repo_path) / "automation"
    if (own / "utils.py").is_file():
        return str(own)
    spec = importlib.util.find_spec("mlc")
    if spec is None or not spec.origin:
        raise ScriptFailed("customize.py needs the mlcflow package (pip install mlcflow)")
    bundled = Path(spec.origin).parent.parent / "automation"
    return str(bundled)


def quiet_mlc(home: Path) -> None:
    """Let scripts import ``mlc`` without mlcflow writing outside ckg's home.

    mlcflow's package, on import, makes an ``Action`` that creates ``~/MLC/repos/repos.json``
    (or under ``MLC_REPOS``), a local repository with its cache folder, and a
    ``.mlc-log.txt`` in the current folder. Scripts want ``mlc.utils`` (``from mlc import
    utils``, in 350 of 370 customize.py): the package is registered without running its
    ``__init__``, its modules import as usual, and another name (``mlc.access``) runs the
    package then, with ``MLC_REPOS`` under ``home`` unless the user set one.
    """
    if "mlc" in sys.modules:
        return
    spec = importlib.util.find_spec("mlc")
    if spec is None or spec.loader is None:
        return
    package = importlib.util.module_from_spec(spec)

    def attribute(name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        if importlib.util.find_spec(f"mlc.{name}") is not None:
            return importlib.import_module(f"mlc.{name}")
        del package.__getattr__
        chosen = os.environ.get("MLC_REPOS")
        os.environ["MLC_REPOS"] = chosen or str(Path(home) / "mlc-repos")
        try:
            spec.loader.exec_module(package)
        finally:
            if chosen is None:
                del os.environ["MLC_REPOS"]
        return getattr(package, name)

    package.__getattr__ = attribute
    sys.modules["mlc"] = package


class Unanswered(EOFError):
    """A question a script asked (``input()``) that standard input did not answer."""


def answer_prompts() -> None:
    """``input()`` in customize.py as ``mlcr`` and ``cm`` answer it: from standard input (a
    terminal, where the question is shown, or a pipe; the question goes to the log too);
    when none is left, :class:`Unanswered` names the question."""
    terminal = os.isatty(0)

    def ask(prompt="") -> str:
        text = str(prompt)
        print(text, end="", flush=True)
        if terminal:
            try:
                os.write(0, text.encode())
            except OSError:
                pass
        line = sys.stdin.readline()
        if not line:
            raise Unanswered(text.strip())
        print(flush=True)
        return line[:-1] if line.endswith("\n") else line

    builtins.input = ask


class Artifact:
    """What ``i['artifact']`` offers: the script's ``path``, ``meta`` and repository."""

    def __init__(self, script):
        self.path = script.path
        self.meta = script.meta
        self.repo_path = script.repo_path
        self.repo = type("Repo", (), {"path": script.repo_path, "meta": {}})()


class Hooks:
    """Loaded customize.py modules, and the calls into them."""

    def __init__(self):
        self._modules: dict[str, object] = {}

    def module(self, script):
        path = os.path.join(script.path, "customize.py")
        if path in self._modules:
            return self._modules[path]
        module = None
        if os.path.isfile(path):
            # CM's customize.py import cmind's utils, a dependency of ckg, and nothing of
            # the repository's automation folder.
            folders = [script.path] if script.format == "cm" else [
                automation_folder(script.repo_path), script.path]
            for folder in folders:
                if folder not in sys.path:
                    sys.path.insert(0, folder)
            name = f"ckg_customize_{script.uid}"
            spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(spec)
            try:
                spec.loader.exec_module(module)
            except BaseException as exc:  # a hook file that cannot even load
                if isinstance(exc, KeyboardInterrupt):
                    raise
                print(traceback.format_exc(), flush=True)
                raise ScriptFailed(
                    f"{script.alias}: customize.py does not load: {type(exc).__name__}: {exc}",
                    script.alias,
                ) from None
        self._modules[path] = module
        return module

    def has(self, script, name: str) -> bool:
        module = self.module(script)
        return module is not None and callable(getattr(module, name, None))

    def call(self, engine, inv, name, frame, run_input, cwd: Path) -> dict:
        """Call hook ``name`` of ``inv``'s script with MLCFlow's ``i``, in ``cwd``; ``frame``
        (:class:`~ckg.run.scripts.engine.Frame`) holds the dicts it gets."""
        i, env, state, const, const_state = frame.dicts
        script = inv.script
        func = getattr(self.module(script), name)
        automation = (engine.automation_class or ScriptAutomation)(engine, inv, run_input)
        ii = {
            "input": _copy_input(i),
            "automation": automation,
            "artifact": Artifact(script),
            "customize": copy.deepcopy(inv.meta.get("customize") or {}),
            "os_info": copy.deepcopy(engine.os_info),
            "recursion_spaces": run_input.get("recursion_spaces", ""),
            "script_tags": list(inv.script_tags),
            "variation_tags": list(inv.variation_tags),
            "env": env,
            "state": state,
            "meta": inv.meta,
        }
        if name != "detect_version":
            ii["run_script_input"] = run_input
        if name == "postprocess":
            ii["const"] = const
            ii["const_state"] = const_state
        before = os.getcwd()
        Path(cwd).mkdir(parents=True, exist_ok=True)
        os.chdir(cwd)
        try:
            result = func(ii)
        except ScriptFailed:
            raise
        except Unanswered as exc:
            raise ScriptFailed(
                f"{script.alias}: customize.py {name} asks {str(exc)!r} and standard input "
                "has no answer: pipe one in, run from a terminal, or give the value it asks "
                "for (--input KEY=VALUE, --env KEY=VALUE)",
                script.alias,
            ) from None
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt):
                raise
            print(traceback.format_exc(), flush=True)
            where = _last_frame(exc)
            raise ScriptFailed(
                f"{script.alias}: customize.py {name} raised {type(exc).__name__}: {exc}{where}",
                script.alias,
            ) from None
        finally:
            os.chdir(before)
        return result if result is not None else {"return": 0}

    def validate_cache(self, engine, inv, entry, env, state):
        """Run the script's ``validate_cache.sh`` against a cache entry's saved env, as
        MLCFlow does before trusting it; the version it detects, None when it says
        nothing, False when the entry is no longer valid.

        MLCFlow's order (``run_validate_cache_if_present``): the entry's ``new_env`` and
        ``new_state``, then the ``dynamic`` dependencies run from the cache (the
        ``get,python3`` that gives ``get-generic-python-lib``'s check its
        ``MLC_PYTHON_BIN_WITH_PATH``), then the check, all on copies."""
        saved = engine.cache.load_state(entry)
        if not saved:
            return False
        env_copy, state_copy = copy.deepcopy(env), copy.deepcopy(state)
        env_copy.update(saved.get("new_env") or {})
        state_copy.update(saved.get("new_state") or {})
        frame = Frame({"add_deps_recursive": inv.adr}, env_copy, state_copy, {}, {})
        run_input = engine._run_script_input(inv, frame, entry.path)
        run_input["script_name"] = "validate_cache"
        hidden = [*engine.local_env_keys, *(inv.meta.get("local_env_keys") or [])]
        try:
            engine._run_deps(inv, frame, inv.deps["deps"], hidden, from_cache=True)
            r = engine.prepare_and_run(run_input, "detect_version")
        except ScriptFailed:
            return False
        if int(r.get("return", 0) or 0) > 0:
            return False
        return str(r.get("version") or "") or None


def _copy_input(i: dict) -> dict:
    try:
        return copy.deepcopy(i)
    except Exception:  # an input holding something that cannot be copied
        return dict(i)


def _last_frame(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    for frame in reversed(frames):
        if frame.filename.endswith("customize.py"):
            return f" (customize.py line {frame.lineno})"
    return ""
