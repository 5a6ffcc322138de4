"""Collective Mind's scripts, run with CM's semantics: what ``cm run script`` (cmind 4.2.0,
with the script automation of the cm4mlops release that the ``cmx4mlops`` 1.0.1 wheel
carries, ``automation/script/module.py``) does where MLCFlow does otherwise.

MLCFlow's script automation grew out of CM's, and :class:`~ckg.run.scripts.engine.Engine`
follows MLCFlow. :class:`CMEngine` keeps that engine and overrides, each after the CM
function named in its docstring (the pure ones in :mod:`~ckg.run.scripts.cm_rules`):

- the ``CM_`` prefix, CM's local keys, input flags and host variables (no ``USER``,
  ``HOME``, nor ``CM_USER_RUN_DIR``); CM's ``os_info`` (``get_host_os_info``: no host keys
  in its env);
- the order a meta is read (``_run``): ``default_env``, ``env``, ``state``, ``input_mapping``
  into env and const; then the variations, then the version and its meta: the script's own
  ``update_meta_if_env``, ``const``, ``add_deps`` and ``adr`` are not read, nor the meta's
  ``default_variations``;
- variations (``_update_state_from_variations``): base variations and defaults appended
  after the requested ones, combinations applied after each variation;
- dependency guards (``enable_or_skip_script``) compare letter by letter when a guard's
  value is a string, and never look at unresolved references; dependency entries know no
  ``update_tags_if_env``, ``update_meta_if_env``, ``continue_on_error`` nor references in
  tags (``_run_deps``);
- dicts are merged with cmind's ``utils.merge_dicts``, ``tmp-run-env.out`` read with its
  ``convert_env_to_dict`` (``A=x=y`` is ``A=x``), ``tmp-run.sh`` written by
  ``convert_env_to_script`` (lists as Python writes them, quotes as they are), the native
  script chosen by ``get_script_name``, versions compared by the utils automation's
  ``compare_versions``;
- a cache entry is checked by ``validate_cache.sh`` in the caller's env after its dynamic
  dependencies (``find_cached_script``).

``i['automation'].cmind`` (and cmind's module-level ``access``, which the worker points
here) is :class:`Cmind`: ``access`` runs scripts through this engine, finds scripts in ckg's
index and cache entries in ckg's cache, removes entries, and hands ``utils`` actions
(``download_file``, ``unzip_file``, ``system``, ...) to the utils automation of the
script's own repository, as CM does; ``logger`` is CM's. Anything else answers CM's way,
``return`` > 0, naming what ckg does not provide. Nothing here reads or writes CM's own
folders (``CM_REPOS``, ``~/CM``).
"""

import copy
import importlib.util
import logging
import os
from pathlib import Path

from ckg import mlc as rules
from ckg.mlc import CM
from ckg.run.scripts.automation import NotSupported, ScriptAutomation
from ckg.run.scripts.cm_rules import (
    choose_variations,
    compare_versions,
    dynamic_name,
    export_lines,
    fill_suffix,
    groups,
    merge,
    merge_tags_by_name,
    os_info,
    read_env_out,
    script_path,
    skipped,
    substitute,
    update_deps,
)
from ckg.run.scripts.engine import DEP_LISTS, Engine, Frame, ScriptFailed

#: The script automation's and the cache automation's ids, as scripts name them.
SCRIPT_AUTOMATION = ("script", "5b4e0237da074764")
CACHE_AUTOMATION = ("cache", "541d6f712a6b464e")
UTILS_AUTOMATION = ("utils", "dc2743f8450541e3")
#: cmind's ``action_substitutions``
ACTIONS = {"ls": "search", "list": "search", "find": "search", "rm": "delete"}


# --- the engine ------------------------------------------------------------------------


class CMEngine(Engine):
    """:class:`~ckg.run.scripts.engine.Engine` with CM's rules (see the module)."""

    HOST_ENV_KEYS = ("GH_TOKEN", "ftp_proxy", "FTP_PROXY", "http_proxy", "HTTP_PROXY",
                     "https_proxy", "HTTPS_PROXY", "no_proxy", "NO_PROXY", "socks_proxy",
                     "SOCKS_PROXY")
    TMP_INPUTS = ("path",)
    ENV_INPUTS = ("input", "output", "outdirname", "outbasename", "name", "extra_cache_tags",
                  "skip_compile", "skip_run", "accept_license", "skip_system_deps", "git_ssh",
                  "gh_token", "hf_token")
    LOCAL_ENV_NAMES = ("VERSION", "VERSION_MIN", "VERSION_MAX", "VERSION_MAX_USABLE",
                       "DETECTED_VERSION", "INPUT", "OUTPUT", "OUTBASENAME", "OUTDIRNAME",
                       "NAME", "EXTRA_CACHE_TAGS", "TMP_*", "GIT_*", "RENEW_CACHE_ENTRY")
    CACHE_SCRIPT_TAG = "script-artifact-"
    USER_RUN_DIR = False
    dialect = CM
    compare_versions = staticmethod(compare_versions)
    merge = staticmethod(merge)
    script_path = staticmethod(script_path)
    export_lines = staticmethod(export_lines)
    read_env_out = staticmethod(read_env_out)

    def __init__(self, *args, prefix: str = "CM_", **kwargs):
        super().__init__(*args, prefix=prefix, **kwargs)
        self.cmind = Cmind(self)
        self.automation_class = CMScriptAutomation

    def _os_info(self) -> dict:
        return os_info()

    def _inputs_to_env(self, frame) -> None:
        """CM's ``_update_env_from_input`` and the flags ``_run`` turns into env."""
        i, env = frame.i, frame.env
        if str(i.get("skip_sys_utils", "")).lower() in ("true", "yes"):
            env["CM_SKIP_SYS_UTILS"] = "yes"
        if str(i.get("skip_sudo", "")).lower() in ("true", "yes"):
            env["CM_TMP_SKIP_SUDO"] = "yes"
        if any(str(i.get(k, "")).lower() in ("true", "yes", "on") for k in ("silent", "s")):
            env["CM_TMP_SILENT"] = "yes"
        elif i.get("verbose", i.get("v")):
            env["CM_VERBOSE"] = "yes"
        if i.get("quiet", env.get("CM_QUIET", "").lower() == "yes"):
            env["CM_QUIET"] = "yes"
        for key in self.TMP_INPUTS:
            value = i.get(key, "")
            if isinstance(value, str) and value.strip():
                env["CM_TMP_" + key.upper()] = value.strip()
        for key in self.ENV_INPUTS:
            value = i.get(key, "")
            value = value.strip() if isinstance(value, str) else value
            if value:
                env["CM_" + key.upper()] = value
        substitute(env)

    def _outdir(self, frame) -> str:
        """CM: a relative ``CM_OUTDIRNAME`` of the top script is under ``CM_TMP_CURRENT_PATH``."""
        i, env = frame.i, frame.env
        outdir = env.get("CM_OUTDIRNAME", "")
        if outdir and not os.path.isabs(outdir) and not i.get("recursion"):
            outdir = os.path.join(env["CM_TMP_CURRENT_PATH"], outdir)
            env["CM_OUTDIRNAME"] = outdir
        return outdir

    def _prepare(self, inv) -> None:
        """CM's ``_run``, steps 600 to 1100: the script's ``default_env``, ``env`` and
        ``state``; ``input_mapping`` into env and const; the variations; the version from
        input, env or meta, and its meta; ``add_deps`` / ``add_deps_recursive`` of the
        input."""
        meta, adr = inv.meta, inv.adr
        i, env, state, const, const_state = inv.frame.dicts
        inv.cache = bool(meta.get("cache", False))
        inv.cache_expiration = ""
        for key, value in (meta.get("default_env") or {}).items():
            env.setdefault(key, value)
        env.update(meta.get("env") or {})
        merge(state, meta.get("state") or {})
        for key, env_key in (meta.get("input_mapping") or {}).items():
            if key in i:
                env[env_key] = i[key]
                const[env_key] = i[key]
        env.update(const)
        merge(state, const_state)
        state["docker"] = meta.get("docker", {})
        for kind in DEP_LISTS:
            inv.deps[kind] = meta.get(kind) or []
        inv.new_env_keys = list(meta.get("new_env_keys") or [])
        inv.new_state_keys = list(meta.get("new_state_keys") or [])
        self._cm_variations(inv, meta, adr)
        P = self.P
        for name, key in (("version", "VERSION"), ("version_min", "VERSION_MIN"),
                          ("version_max", "VERSION_MAX"),
                          ("version_max_usable", "VERSION_MAX_USABLE")):
            value = (str(i.get(name, "")).strip() or str(env.get(P + key, ""))
                     or str(meta.get(name, "")))
            setattr(inv, name, value)
            if value:
                env[P + key] = value
        versions = meta.get("versions") or {}
        if inv.version and inv.version in versions:
            inv.version_meta = versions[inv.version]
            self._apply_meta(inv, inv.version_meta)
            version_adr = _adr(inv.version_meta)
            if version_adr:
                merge_tags_by_name(adr, version_adr)
                for kind in DEP_LISTS:
                    update_deps(inv.deps[kind], adr, env)
        add_deps = dict(i.get("ad") or i.get("add_deps") or {})
        for kind in DEP_LISTS:
            if add_deps:
                update_deps(inv.deps[kind], add_deps, i.get("env", {}))
            if i.get("add_deps_recursive"):
                update_deps(inv.deps[kind], i["add_deps_recursive"], i.get("env", {}))
        substitute(env)

    def _cm_variations(self, inv, meta, adr) -> None:
        """CM's ``_update_state_from_variations``: each variation's meta, then after each
        the combinations whose parts are all on; ``add_deps_recursive`` of them all last."""
        variations = meta.get("variations") or {}
        try:
            inv.variation_groups = groups(variations)
            tags = choose_variations(meta, inv.variation_tags)
        except rules.MetaError as exc:
            raise ScriptFailed(f"{inv.script.alias}: {exc}", inv.script.alias) from None
        inv.variation_tags = tags
        if not tags:
            return
        inv.variation_string = ",".join("_" + t for t in tags)
        combos = sorted((k for k in variations if "," in k), key=lambda k: k.count(","))
        for tag in tags:
            if tag.startswith(("~", "-")):
                continue
            name, suffix = tag, None
            if tag not in variations:
                suffix = tag[tag.index(".") + 1:]
                name = dynamic_name(tag)
            var_meta = variations[name]
            if suffix:
                fill_suffix(var_meta, suffix)
            metas = [var_meta] + [variations[c] for c in combos
                                  if set(c.split(",")) <= set(tags)]
            for item in metas:
                self._apply_meta(inv, item)
                if item.get("script_name", ""):
                    meta["script_name"] = item["script_name"]
                if var_meta.get("default_version", ""):
                    meta["default_version"] = var_meta["default_version"]
                item_adr = _adr(item)
                if item_adr:
                    merge_tags_by_name(adr, item_adr)
        for kind in DEP_LISTS:
            update_deps(inv.deps[kind], adr, inv.frame.env)

    def _apply_meta(self, inv, meta) -> None:
        """CM's ``update_state_from_meta`` of a variation's or a version's meta."""
        i, env, state, const, const_state = inv.frame.dicts
        if meta.get("cache", "") != "":
            inv.cache = bool(meta["cache"])
        for key, value in (meta.get("default_env") or {}).items():
            env.setdefault(key, value)
        env.update(meta.get("env") or {})
        inv.update_meta_if_env = list(meta.get("update_meta_if_env") or []) + \
            inv.update_meta_if_env
        for conditional in inv.update_meta_if_env:
            if skipped(conditional, env):
                continue
            merge(env, conditional.get("env") or {})
            merge(state, conditional.get("state") or {})
            if conditional.get("docker"):
                merge(state.setdefault("docker", {}), conditional["docker"])
        if meta.get("const"):
            const.update(meta["const"])
            env.update(const)
        merge(state, meta.get("state") or {})
        if const_state:
            merge(const_state, meta.get("const_state") or {})
            merge(state, const_state)
        for kind in DEP_LISTS:
            if meta.get(kind):
                rules.append_deps(inv.deps[kind], meta[kind])
        add_deps = dict(meta.get("ad") or meta.get("add_deps") or {})
        if meta.get("ad"):
            merge(add_deps, meta.get("add_deps") or {})
        for kind in DEP_LISTS:
            update_deps(inv.deps[kind], add_deps, env)
        source = i.get("input", i)
        for key, env_key in (meta.get("input_mapping") or {}).items():
            if key in source:
                env[env_key] = source[key]
        substitute(env)
        inv.new_env_keys += list(meta.get("new_env_keys") or [])
        inv.new_state_keys += list(meta.get("new_state_keys") or [])

    def _dep_input(self, inv, d, frame) -> dict:
        """CM's nested input of a dependency entry: copies of const and const_state, the
        entry's own dicts handed down as ``local_*`` and emptied in the meta (as CM does),
        the rest of the entry merged in as it is (no ``inherit_cache_expiration``)."""
        nested = {
            "recursion": True,
            "env": frame.env,
            "state": frame.state,
            "const": copy.deepcopy(frame.const),
            "const_state": copy.deepcopy(frame.const_state),
            "add_deps_recursive": inv.adr,
        }
        for key in ("env", "state", "const", "const_state"):
            nested["local_" + key] = d.get(key) or {}
            if d.get(key):
                d[key] = {}
        merge(nested, d)
        return nested

    def _entry_valid(self, inv, entry) -> bool:
        """CM's ``find_cached_script``: an entry whose ``dependent_cached_path`` is gone is
        skipped; with a ``validate_cache.sh``, the script's dynamic dependencies run and
        the check runs in the caller's env; its version must be the entry's; the entry's
        version must fit the requested range."""
        if entry.dependent and not os.path.exists(entry.dependent):
            return False
        detected = None
        if (Path(inv.script.path) / "validate_cache.sh").exists():
            self._require_execution(inv.script, "its cache entry is checked by a script")
            hidden = [*self.local_env_keys, *(inv.meta.get("local_env_keys") or [])]
            # in the caller's env and state themselves, as CM checks it, without const
            frame = Frame({"add_deps_recursive": inv.adr}, inv.frame.env, inv.frame.state, {}, {})
            self._run_deps(inv, frame, inv.deps["deps"], hidden, from_cache=True)
            run_input = self._run_script_input(inv, frame, self.cwd)
            run_input["script_name"] = "validate_cache"
            try:
                r = self.prepare_and_run(run_input, "detect_version")
            except ScriptFailed:
                return False
            if int(r.get("return", 0) or 0) > 0:
                return False
            detected = str(r.get("version") or "") or None
        if entry.version and detected and entry.version != detected:
            return False
        return not self._outside(entry.version, inv.version_min, inv.version_max)


def _adr(meta: dict) -> dict:
    """CM's ``get_adr``."""
    adr = meta.get("adr") or {}
    if not adr:
        return meta.get("add_deps_recursive") or {}
    merge(adr, meta.get("add_deps_recursive") or {})
    return adr


# --- i['automation'] and automation.cmind --------------------------------------------------


class CMScriptAutomation(ScriptAutomation):
    """``i['automation']`` of a CM script: CM's script automation, whose ``find_artifact``
    knows no search folder nor forced path, whose ``find_file_in_paths`` lists folders too,
    whose ``parse_version`` knows one group, and which checks a version as CM's
    ``check_version_constraints`` does (the exact version, then min and max)."""

    SEARCH_FOLDER = False
    SKIP_FOLDERS = False
    EXTRA_GROUP = False
    UTILS = "cmind"

    def __init__(self, engine, inv, run_input: dict):
        super().__init__(engine, inv, run_input)
        self.cmind = engine.cmind

    def _version_ok(self, detected: str, env: dict) -> bool:
        version = str(env.get("CM_VERSION", ""))
        vmin = str(env.get("CM_VERSION_MIN", ""))
        vmax = str(env.get("CM_VERSION_MAX", ""))
        if version and version != detected:
            return False
        if detected and vmin and compare_versions(detected, vmin) < 0:
            return False
        return not (detected and vmax and compare_versions(detected, vmax) > 0)


class Cmind:
    """``automation.cmind`` of a CM script: CM's ``access`` over ckg's engine, index and
    cache, and CM's ``logger``.

    Actions: ``run`` a script; ``search`` (``find``) scripts by tags in the index, cache
    entries by tags in ckg's cache; ``delete`` (``rm``) cache entries by tags (forced only,
    as CM deletes without a console); ``utils`` actions through the utils automation of the
    script's repository. Every other one returns CM's ``{'return': 1, 'error': ...}``.
    """

    def __init__(self, engine: CMEngine):
        self._engine = engine
        self.logger = logging.getLogger("cm")
        self._utils = None

    def __getattr__(self, name):
        raise NotSupported(f"not supported by ckg: automation.cmind.{name}")

    def access(self, i) -> dict:
        if isinstance(i, str | list):
            from cmind import cli

            parsed = cli.parse(i)
            if parsed["return"] > 0:
                return parsed
            i = parsed["cm_input"]
        action = str(i.get("action", "")).replace("-", "_")
        action = ACTIONS.get(action, action)
        automation = str(i.get("automation", "")).split(",")
        kind = automation[0]
        if kind == SCRIPT_AUTOMATION[0] or (len(automation) > 1
                                            and automation[1] == SCRIPT_AUTOMATION[1]):
            if action == "run":
                return self._run(i)
            if action == "search":
                return self._scripts(i)
        if kind == CACHE_AUTOMATION[0] or (len(automation) > 1
                                           and automation[1] == CACHE_AUTOMATION[1]):
            if action == "search":
                return {"return": 0, "list": self._entries(i.get("tags", ""))}
            if action == "delete":
                return self._delete(i)
        if kind == UTILS_AUTOMATION[0] or (len(automation) > 1
                                           and automation[1] == UTILS_AUTOMATION[1]):
            return self._utils_action(action, i)
        return {"return": 1, "error": f"not supported by ckg: cm access action {action!r} "
                                      f"of automation {kind!r}"}

    def _run(self, i: dict) -> dict:
        for flag in ("fake_run", "prepare", "fake_deps", "docker"):
            if i.get(flag):
                return {"return": 1, "error": f"not supported by ckg: cm run script --{flag}"}
        nested = {k: v for k, v in i.items() if k not in ("action", "automation", "out")}
        nested["recursion"] = True
        for key in ("env", "state", "const", "const_state"):
            nested.setdefault(key, {})
        nested["add_deps_recursive"] = i.get("adr") or i.get("add_deps_recursive") or {}
        if nested.get("artifact") and not nested.get("tags"):
            named = [s for s in self._engine.index.scripts.values()
                     if nested["artifact"] in (s.alias, s.uid)]
            if not named:
                return {"return": 16, "error": f"script {nested['artifact']} not found"}
            nested["artifact"] = named[0].uid
        try:
            r = self._engine._run(nested)
        except ScriptFailed as exc:
            return {"return": exc.code or 1, "error": str(exc)}
        return {"return": 0, **r}

    def _scripts(self, i: dict) -> dict:
        script_tags, variations = rules.split_tags(i.get("tags", ""))
        found = self._engine.index.find(script_tags, variations)
        return {"return": 0, "list": [_Artifact(s.path, s.meta, s.repo_path) for s in found],
                "script_tags": script_tags, "variation_tags": variations,
                "found_scripts": bool(found)}

    def _entries(self, tags) -> list:
        words = tags if isinstance(tags, list) else str(tags).split(",")
        words = [w.strip() for w in words if w.strip()]
        need = {w for w in words if not w.startswith("-")}
        refuse = {w[1:] for w in words if w.startswith("-")} | {"tmp"}
        found = []
        for entry in self._engine.cache.entries():
            have = set(entry.tags)
            if need <= have and not refuse & have:
                meta = dict(entry.meta)
                meta["associated_script_artifact"] = meta.get("associated_script_item", "")
                meta["associated_script_artifact_uid"] = meta.get("script_uid", "")
                found.append(_Artifact(str(entry.path), meta, "", entry))
        return found

    def _delete(self, i: dict) -> dict:
        found = self._entries(i.get("tags", ""))
        if not found:
            return {"return": 16, "error": "artifact(s) not found"}
        if not (i.get("f") or i.get("force")):
            return {"return": 0, "deleted_list": []}
        for artifact in found:
            self._engine.cache.remove(artifact.entry)
            if self._engine._stack:
                self._engine._stack[-1].removed_entries.append(artifact.entry.path.name)
        return {"return": 0, "deleted_list": found}

    def _utils_action(self, action: str, i: dict) -> dict:
        utils = self._utils_automation()
        if utils is None:
            return {"return": 1, "error": "not supported by ckg: cm utils actions need the "
                                          "utils automation of the script's repository"}
        method = getattr(utils, action, None)
        if not callable(method):
            return {"return": 4, "error": f'action "{action}" not found in automation "utils"'}
        return method(dict(i))

    def _utils_automation(self):
        """The ``CAutomation`` of ``automation/utils/module.py`` in the running script's
        repository (else any CM repository of the index), made with this object as its
        ``cmind``, once."""
        if self._utils is not None:
            return self._utils
        engine = self._engine
        current = [engine.index.scripts.get(s.uid) for s in reversed(engine._stack)]
        repos = [s.repo_path_with_prefix for s in current if s is not None]
        repos += sorted({s.repo_path_with_prefix for s in engine.index.scripts.values()
                         if s.format == "cm"})
        for repo in repos:
            module_path = Path(repo) / "automation" / "utils" / "module.py"
            if module_path.is_file():
                spec = importlib.util.spec_from_file_location("ckg_cm_utils_automation",
                                                              module_path)
                module = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(module)
                self._utils = module.CAutomation(self, str(module_path))
                return self._utils
        return None


class _Artifact:
    """A CM artifact as ``access`` lists it: ``path``, ``meta``, ``repo_path``."""

    def __init__(self, path, meta, repo_path="", entry=None):
        self.path = str(path)
        self.meta = meta
        self.repo_path = repo_path
        self.entry = entry
