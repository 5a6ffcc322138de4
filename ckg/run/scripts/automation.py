"""``i['automation']``: the methods customize.py hooks call, over ckg's own engine.

The methods are those scripts of the MLCFlow repository actually call (counted over its
``customize.py`` files): ``logger``, ``run_native_script``, ``action_object.access`` (a
nested script run, a shell command, a cache search), ``update_deps``, ``find_artifact``,
``find_file_in_paths``, ``detect_version_using_script``, ``parse_version``, ``cache_action``,
``get_default_path_list``, ``find_file_deep``, ``find_file_back``,
``clean_some_tmp_files`` and ``_available_variations``. Each behaves as MLCFlow's does
(return dicts with ``return`` and ``error``); any other attribute raises
:class:`NotSupported`, naming the method and the script.
"""

import copy
import glob
import importlib
import logging
import os
import re
import subprocess

from ckg import mlc as rules
from ckg.mlc import compare_versions
from ckg.run.scripts.engine import ScriptFailed

_logger = logging.getLogger("ckg.scripts")
if not _logger.handlers:
    _handler = logging.StreamHandler()
    _handler.setFormatter(logging.Formatter("[%(levelname)s] %(message)s"))
    _logger.addHandler(_handler)
    _logger.setLevel(logging.INFO)
    _logger.propagate = False


class NotSupported(AttributeError):
    """A method of MLCFlow's script automation that ckg does not provide."""


class ScriptAutomation:
    """The ``automation`` object of one hook call (and its ``action_object``)."""

    #: MLCFlow's additions to CM's methods (:class:`~ckg.run.scripts.cm.CMScriptAutomation`
    #: turns them off): ``find_artifact`` searches ``<P>SEARCH_FOLDER_PATH`` first and
    #: honours ``force_given_path``, ``find_file_in_paths`` skips folders, ``parse_version``
    #: joins ``group_number_extra``; the package whose ``utils`` it uses.
    SEARCH_FOLDER = True
    SKIP_FOLDERS = True
    EXTRA_GROUP = True
    UTILS = "mlc"

    def __init__(self, engine, inv, run_input: dict):
        self._engine = engine
        self._inv = inv
        self._run_input = run_input
        self.logger = _logger
        self.action_object = self
        self.cache_action = self
        self.recursion_spaces = run_input.get("recursion_spaces", "")
        self.tmp_file_ver = "tmp-ver.out"
        self.local_cache_path = str(engine.cache.root)
        self.os_info = engine.os_info

    def __getattr__(self, name):
        raise NotSupported(f"not supported by ckg: {name} (script {self._inv.script.alias})")

    # --- running things ----------------------------------------------------------------

    def access(self, i: dict) -> dict:
        """Nested actions: ``run`` of a script (by tags), ``system`` (a shell command),
        ``search`` and ``rm`` of cache entries by tags."""
        action = i.get("action", "")
        automation = str(i.get("automation") or i.get("target") or "script").split(",")[0]
        if action == "run" and automation == "script":
            nested = {k: v for k, v in i.items() if k not in ("action", "automation", "out")}
            nested["recursion"] = True
            for key in ("env", "state", "const", "const_state"):
                nested.setdefault(key, {})
            nested.setdefault("add_deps_recursive", {})
            try:
                r = self._engine._run(nested)
            except ScriptFailed as exc:
                return {"return": exc.code or 1, "error": str(exc)}
            return {"return": 0, **r}
        if action == "system":
            return self._system(i)
        if action in ("search", "find", "rm") and automation == "cache":
            script_tags, variations = rules.split_tags(i.get("tags", ""))
            wanted = [*script_tags, *("_" + v for v in variations)]
            need = {t for t in wanted if not t.startswith("-")}
            refuse = {t[1:] for t in wanted if t.startswith("-")} | {"tmp"}
            found = [
                e
                for e in self._engine.cache.entries()
                if need <= set(e.tags) and not refuse & set(e.tags)
            ]
            if action == "rm":
                for entry in found:
                    self._engine.cache.remove(entry)
                    self._inv.report.removed_entries.append(entry.path.name)
            return {"return": 0, "list": [_Found(e.path, e.meta) for e in found]}
        return {
            "return": 1,
            "error": f"not supported by ckg: access action {action!r} of "
            f"{automation!r} (script {self._inv.script.alias})",
        }

    def _system(self, i: dict) -> dict:
        cmd = i.get("cmd", "")
        stdout = i.get("stdout", "")
        try:
            if stdout:
                with open(stdout, "w") as out:
                    rc = subprocess.run(cmd, shell=True, stdout=out).returncode
            else:
                rc = subprocess.run(cmd, shell=True).returncode
        except OSError as exc:
            return {"return": 1, "error": str(exc)}
        return {"return": 0, "ret": rc}

    def run_native_script(self, i: dict) -> dict:
        """Run another native script of the same script folder (``script_name``) with
        ``env``; ``detect_version`` calls the hook of that name afterwards."""
        run_input = i["run_script_input"]
        saved = (
            copy.deepcopy(run_input.get("env", {})),
            copy.deepcopy(run_input.get("state", {})),
            run_input.get("script_name", ""),
        )
        run_input["script_name"] = i["script_name"]
        run_input["env"] = i.get("env", {})
        try:
            r = self._engine.prepare_and_run(
                run_input, "detect_version" if i.get("detect_version") else ""
            )
        except ScriptFailed as exc:
            r = {"return": exc.code or 1, "error": str(exc)}
        r["env_tmp"] = copy.deepcopy(run_input["env"])
        run_input["env"], run_input["state"], run_input["script_name"] = saved
        return r

    def detect_version_using_script(self, i: dict) -> dict:
        """Run the script's native part with ``detect_version`` and check the version
        against ``MLC_VERSION*`` of ``env``; ``return`` 16 when none fits."""
        env = i.get("env", {})
        run_input = i["run_script_input"]
        run_input["env"] = env
        try:
            r = self._engine.prepare_and_run(run_input, "detect_version")
        except ScriptFailed:
            r = {"return": 2}
        if r.get("return", 0) == 0:
            version = str(r.get("version", "") or "")
            if version and self._version_ok(version, env):
                return {"return": 0, "detected_version": version}
        return {"return": 16, "error": "version was not detected"}

    def _version_ok(self, detected: str, env: dict) -> bool:
        P = self._engine.P
        version = str(env.get(P + "VERSION", ""))
        vmin = str(env.get(P + "VERSION_MIN", ""))
        vmax = str(env.get(P + "VERSION_MAX", ""))
        if version and compare_versions(detected, version, minor_skip_okay=True) != 0:
            return False
        if vmin and compare_versions(detected, vmin) < 0:
            return False
        return not (vmax and compare_versions(detected, vmax) > 0)

    # --- finding files -----------------------------------------------------------------

    def get_default_path_list(self, i: dict) -> list:
        key = i.get("default_path_env_key", "")
        return os.environ.get(key, "").split(":") if key else []

    def find_file_in_paths(self, i: dict) -> dict:
        """Files named ``file_name`` (or numbered variants such as ``python3.11``), or
        matching ``file_name_re``, in ``paths``; with ``select`` and ``detect_version``,
        only those whose detected version fits, and the first of them."""
        name = i.get("file_name_re", "") or i.get("file_name", "")
        is_re = bool(i.get("file_name_re"))
        if not name:
            raise ScriptFailed(
                "file_name or file_name_re not given to find_artifact", self._inv.script.alias
            )
        hook = i.get("hook")
        found: list[str] = []

        def add(path: str) -> dict | None:
            if self.SKIP_FOLDERS and os.path.isdir(path):
                return None
            for old in found:
                try:
                    if os.path.samefile(old, path):
                        return None
                except OSError:
                    pass
            if hook is not None:
                r = hook({"file": path})
                if r["return"] > 0:
                    return r
                if r["skip"]:
                    return None
            found.append(path)
            return None

        suffixes = (
            "",
            ".[0-9]",
            ".[0-9][0-9]",
            "-[0-9]",
            "-[0-9][0-9]",
            "[0-9]",
            "[0-9][0-9]",
            "[0-9].[0-9]",
            "[0-9][0-9].[0-9]",
            "[0-9][0-9].[0-9][0-9]",
        )
        for folder in i["paths"]:
            if not os.path.isdir(folder):
                continue
            if is_re:
                candidates = [
                    os.path.join(folder, f) for f in os.listdir(folder) if re.match(name, f)
                ]
            else:
                candidates = [
                    f for s in suffixes for f in glob.glob(os.path.join(folder, name) + s)
                ]
            for path in candidates:
                error = add(path)
                if error:
                    return error
        if i.get("select"):
            if i.get("detect_version"):
                found = self._with_good_version(found, i)
                if isinstance(found, dict):
                    return found
            found = found[:1]
        return {"return": 0, "found_files": found}

    def _with_good_version(self, files: list[str], i: dict):
        env = i.get("env", {})
        run_input = i["run_script_input"]
        good = []
        for path in files:
            run_input["env"] = env
            env[i["env_path_key"]] = path
            try:
                r = self._engine.prepare_and_run(run_input, "detect_version")
            except ScriptFailed as exc:
                if exc.code != 2:
                    return {"return": exc.code or 1, "error": str(exc)}
                continue
            if int(r.get("return", 0) or 0) > 0:
                if r["return"] != 2:
                    return r
                continue
            version = r.get("version", "")
            if version and version != -1 and self._version_ok(str(version), env):
                good.append(path)
        return good

    def find_artifact(self, i: dict) -> dict:
        """Find an executable or file by name, MLCFlow's way: in ``MLC_TMP_PATH`` when set,
        else ``MLC_SEARCH_FOLDER_PATH`` and the ``default_path_env_key`` list (``PATH``);
        with ``detect_version`` only where the version fits. Sets ``env_path_key`` to the
        file and adds its folder to ``+<default_path_env_key>`` when not a default one."""
        P = self._engine.P
        name = i["file_name"]
        env = i["env"]
        env_path_key = i.get("env_path_key", "")
        run_input = i.get("run_script_input", {})
        state_copy = copy.deepcopy(run_input.get("state", {}))
        default_key = i.get("default_path_env_key", "")
        given = str(env.get(P + "TMP_PATH", ""))
        force_given = False
        if given and env.get(P + "TMP_PATH_IGNORE_NON_EXISTANT", "") != "yes":
            for part in given.split(":"):
                if part.strip() and not os.path.isdir(part):
                    return {"return": 1, "error": f"path {part} doesn't exist"}
        if given and self.SEARCH_FOLDER:
            force_given = bool(i.get("force_given_path", False))
        forced = str(env.get(P + "INPUT", "")).strip()
        if forced:
            if not os.path.isfile(forced):
                return {"return": 1, "error": f"file {forced} doesn't exist"}
            name = os.path.basename(forced)
            given = os.path.dirname(forced)
        defaults = [] if force_given else self.get_default_path_list(i)
        priority: list[str] = []
        folder = str(env.get(P + "SEARCH_FOLDER_PATH", "")).strip() if self.SEARCH_FOLDER else ""
        if folder and os.path.isdir(folder) and not force_given:
            depth_limit = int(env.get(P + "TMP_FOLDER_MAX_DEPTH", "4"))
            for root, dirs, _files in os.walk(folder):
                if root[len(folder) :].count(os.sep) >= depth_limit:
                    dirs[:] = []
                if root not in priority:
                    priority.append(root)
        folders = (given.split(":") + priority) if given else (priority + defaults)
        paths: list[str] = []
        for f in folders:
            joined = os.path.join(f, name)
            if os.path.dirname(joined) not in paths:
                paths.append(os.path.dirname(joined))
        r = self.find_file_in_paths(
            {
                "paths": paths,
                "file_name": name,
                "select": True,
                "select_default": env.get(P + "QUIET", "") == "yes",
                "detect_version": i.get("detect_version", False),
                "env_path_key": env_path_key,
                "env": copy.deepcopy(env),
                "hook": i.get("hook"),
                "run_script_input": run_input,
            }
        )
        run_input["state"] = state_copy
        if r["return"] > 0:
            return r
        if not r["found_files"]:
            return {"return": 16, "error": f"{name} not found"}
        file_path = r["found_files"][0]
        found_path = os.path.dirname(file_path)
        if found_path not in defaults:
            key = "+" + default_key
            paths_list = env.get(key, [])
            if found_path not in paths_list:
                paths_list.insert(0, found_path)
                env[key] = paths_list
            for extra, target in (i.get("extra_paths") or {}).items():
                path = os.path.normpath(os.path.join(found_path, "..", extra))
                if os.path.exists(path):
                    env.setdefault(target, []).append(path)
        if env_path_key:
            env[env_path_key] = file_path
        return {
            "return": 0,
            "found_path": found_path,
            "found_file_path": file_path,
            "found_file_name": os.path.basename(file_path),
            "default_path_list": defaults,
        }

    def find_file_deep(self, i: dict) -> dict:
        """Folders under ``paths`` holding ``file_name``, kept to ``restrict_paths``."""
        found: list[str] = []
        for folder in i["paths"]:
            if not os.path.isdir(folder):
                continue
            for entry in os.listdir(folder):
                path = os.path.join(folder, entry)
                if os.path.isdir(path):
                    found += self.find_file_deep({"paths": [path], "file_name": i["file_name"]})[
                        "found_paths"
                    ]
                elif entry == i["file_name"]:
                    found.append(folder)
                    break
        restrict = i.get("restrict_paths") or []
        if found and restrict:
            found = [p for p in found if any(r in p for r in restrict)]
        return {"return": 0, "found_paths": found}

    def find_file_back(self, i: dict) -> dict:
        """The nearest folder at or above ``path`` holding ``file_name`` ('' if none)."""
        path = i["path"]
        while path:
            if os.path.isfile(os.path.join(path, i["file_name"])):
                break
            parent = os.path.dirname(path)
            path = "" if parent == path else parent
        return {"return": 0, "found_path": path}

    def parse_version(self, i: dict) -> dict:
        """Read ``file_name`` (``tmp-ver.out``), match ``match_text`` and put group
        ``group_number`` (plus ``group_number_extra``) in ``which_env[env_key]`` and
        ``MLC_DETECTED_VERSION``."""
        utils = importlib.import_module(self.UTILS + ".utils")
        r = utils.load_txt(
            file_name=i.get("file_name") or self.tmp_file_ver,
            check_if_exists=True,
            split=True,
            match_text=i["match_text"],
            fail_if_no_match="version was not detected",
        )
        if r["return"] > 0:
            if r.get("string"):
                r["error"] += f" ({r['string']})"
            return r
        match = r["match"]
        group = i["group_number"]
        if not (match.lastindex and match.lastindex >= group):
            return {
                "return": 1,
                "error": "Invalid version detection group number. Version "
                f"was not detected. Last index of match = "
                f"{match.lastindex}. Given group number = {group}",
            }
        version = match.group(group)
        extra = i.get("group_number_extra") if self.EXTRA_GROUP else None
        if extra and match.lastindex >= extra:
            version += i.get("group_join_string", "-") + match.group(extra)
        i["which_env"][i["env_key"]] = version
        i["which_env"][self._engine.P + "DETECTED_VERSION"] = version
        return {"return": 0, "version": version, "string": r["string"]}

    def update_deps(self, i: dict) -> dict:
        rules.update_deps(i["deps"], i["update_deps"], i.get("env", {}))
        return {"return": 0}

    def clean_some_tmp_files(self, i: dict) -> dict:
        folder = i.get("env", {}).get(self._engine.P + "TMP_CURRENT_SCRIPT_WORK_PATH", "")
        if folder and os.path.isdir(folder):
            for name in ("tmp-run.bat", "tmp-state.json"):
                path = os.path.join(folder, name)
                if os.path.isfile(path):
                    os.remove(path)
        return {"return": 0}

    def _available_variations(self, i: dict) -> dict:
        meta = i["meta"]
        names = sorted("_" + v for v in (meta.get("variations") or {}))
        return {
            "return": 1,
            "error": f"python package variation is not defined in "
            f'"{meta["alias"]}". Available: {" ".join(names)}',
        }


class _Found:
    """A cache entry as ``access({'action': 'search', 'automation': 'cache'})`` lists it."""

    def __init__(self, path, meta):
        self.path = str(path)
        self.meta = meta
