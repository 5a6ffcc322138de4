"""Run one MLC (or CM) script invocation and everything it needs, with MLCFlow's semantics.

:meth:`Engine.run` is MLCFlow's ``run`` of one script, step by step:

1. select the script for the tags (the planner's tag rules; among several, MLCFlow's quiet
   choice: scripts with cache entries first, then the ``sort`` value, then the path);
2. build env and state: ``default_env`` where unset, ``input_mapping``, the meta's ``env``,
   ``state``, ``const``, ``update_meta_if_env``, the requested version, the variations in
   MLCFlow's order, ``add_deps`` / ``add_deps_recursive``, ``<<<KEY>>>`` references;
3. ``cache: true``: look for a cache entry with the script's tags, variations, version and
   extra cache tags. A hit runs only ``dynamic`` dependencies and restores the entry's
   ``new_env`` / ``new_state``: no ``preprocess``, no ``run.sh``;
4. otherwise: ``deps``, ``preprocess``, ``prehook_deps``, the native script through
   ``tmp-run.sh`` (:mod:`~ckg.run.scripts.native`), ``posthook_deps``, ``postprocess``,
   ``post_deps``; a cache entry is created first and kept only when all of it succeeded;
5. the caller's env and state get back what they had plus ``new_env`` / ``new_state``: the
   keys that ``new_env_keys`` / ``new_state_keys`` select.

Env and state are shared dicts, as in MLCFlow: a dependency runs in its caller's env minus
the local keys (``MLC_VERSION*``, ``MLC_TMP_*``, ...), and its changes are undone except
for what it exports. Each invocation is reported to ``on_step`` (status, times, cached,
new env, log tail), from which the runner records one ``Run`` per step.

With ``execute=False`` the engine only serves what the cache holds, and raises
:class:`NeedsExecution` at the first hook or native script: the runner then runs the same
invocation in a worker process (:mod:`~ckg.run.scripts.worker`), where hooks may crash,
exit or hang without taking ckg with them.
"""

import copy
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from ckg import mlc as rules
from ckg.mlc import LOCAL_ENV_NAMES, MLCFLOW, compare_versions
from ckg.mlc import tags_from_env as _tags_from
from ckg.run.execute import read_tail
from ckg.run.scripts import native
from ckg.run.scripts.cache import ScriptCache
from ckg.run.scripts.index import Script, ScriptIndex

#: Host variables copied into the env when it lacks them.
HOST_ENV_KEYS = (
    "USER",
    "HOME",
    "GH_TOKEN",
    "ftp_proxy",
    "FTP_PROXY",
    "http_proxy",
    "HTTP_PROXY",
    "https_proxy",
    "HTTPS_PROXY",
    "no_proxy",
    "NO_PROXY",
    "socks_proxy",
    "SOCKS_PROXY",
)
#: Run inputs that become ``<PREFIX>TMP_<KEY>`` and ``<PREFIX><KEY>``.
TMP_INPUTS = ("path", "folder")
ENV_INPUTS = (
    "input",
    "output",
    "outdirname",
    "outbasename",
    "search_folder_path",
    "name",
    "extra_cache_tags",
    "skip_compile",
    "skip_run",
    "skip_sudo",
    "accept_license",
    "skip_system_deps",
    "git_ssh",
    "gh_token",
    "hf_token",
    "verify_ssl",
)
DEP_LISTS = ("deps", "prehook_deps", "posthook_deps", "post_deps")
#: Deeper than this, a chain of dependencies is taken for a cycle.
MAX_DEPTH = 64


class ScriptFailed(Exception):
    """A script invocation failed; ``alias`` names it, the message says why."""

    def __init__(self, message: str, alias: str = "", code: int = 1):
        super().__init__(message)
        self.alias = alias
        self.code = code


class NeedsExecution(Exception):
    """Raised in cache-only mode where a hook or a native script would have to run."""


@dataclass(slots=True)
class StepReport:
    """One script invocation, as :class:`Engine` reports it to ``on_step``."""

    id: int
    parent: int | None
    alias: str
    uid: str
    tags: str
    variations: list[str]
    status: str = "running"  # ok, failed, cached, skipped
    cached: bool = False
    executed: list[str] = field(default_factory=list)  # preprocess, run.sh, postprocess
    started_at: str = ""
    wall_s: float = 0.0
    version: str = ""
    new_env: dict = field(default_factory=dict)
    new_state: dict = field(default_factory=dict)
    error: str = ""
    cache_entry: str = ""
    removed_entries: list[str] = field(default_factory=list)  # expired or replaced
    env: dict = field(default_factory=dict)  # what its native script ran with
    workdir: str = ""
    log_tail: str = ""


@dataclass(slots=True)
class Frame:
    """The dicts one invocation shares with its caller, as one value: MLCFlow's ``env``,
    ``state``, ``const`` and ``const_state`` (a dependency changes the first two in place),
    the ``run`` input ``i``, and the caller's env and state as they were, to which only
    the outputs go back (:meth:`Engine._finish`)."""

    i: dict
    env: dict
    state: dict
    const: dict
    const_state: dict
    saved_env: dict = field(default_factory=dict)
    saved_state: dict = field(default_factory=dict)

    @classmethod
    def of(cls, i: dict) -> "Frame":
        """The frame of a ``run`` input, the caller's env and state saved."""
        env, state = i["env"], i["state"]
        return cls(i, env, state, i["const"], i["const_state"],
                   copy.deepcopy(env), copy.deepcopy(state))  # fmt: skip

    @property
    def dicts(self) -> tuple[dict, dict, dict, dict, dict]:
        """``i, env, state, const, const_state``, for the steps that take them apart."""
        return self.i, self.env, self.state, self.const, self.const_state


@dataclass
class _Invocation:
    """What one ``run`` call works with (MLCFlow's ``run_state`` and friends)."""

    script: Script
    meta: dict
    script_tags: list
    variation_tags: list
    explicit_variations: list
    report: StepReport
    frame: Frame
    deps: dict = field(default_factory=lambda: {k: [] for k in DEP_LISTS})
    new_env_keys: list = field(default_factory=list)
    new_state_keys: list = field(default_factory=list)
    update_meta_if_env: list = field(default_factory=list)
    cache: bool = False
    cache_expiration: str = ""
    version_meta: dict = field(default_factory=dict)
    variation_groups: dict = field(default_factory=dict)
    variation_string: str = ""
    default_env: dict = field(default_factory=dict)
    version: str = ""
    version_min: str = ""
    version_max: str = ""
    version_max_usable: str = ""
    cache_tags: list = field(default_factory=list)
    adr: dict = field(default_factory=dict)  # shared down the chain, as in MLCFlow


class Engine:
    """Runs MLC/CM scripts of ``index`` on this host.

    Parameters
    ----------
    index : ScriptIndex
        The scripts that tags resolve to.
    cache : ScriptCache
        Where ``cache: true`` results are kept.
    workdir : Path
        The working folder of scripts that are not cached (MLCFlow uses the current one).
    log_path : Path
        Every native script's and hook's output is appended here.
    execute : bool
        False: serve the cache only (see :class:`NeedsExecution`).
    use_cache : bool
        False: neither read nor write cache entries (``--no-cache``).
    renew : bool
        True: run cached scripts again; a success replaces their entries (``--renew``).
    on_step : callable
        Called with each :class:`StepReport` when it starts and when it ends.
    prefix : str
        ``MLC_`` for MLC scripts, ``CM_`` for CM ones.
    """

    #: What differs between MLCFlow's script automation and CM's (:mod:`~ckg.run.scripts.cm`
    #: overrides them): host variables copied into the env, the inputs that become env keys,
    #: the tag that names a cache entry's script, how versions compare, which ``run-*.sh``
    #: fits the host and how ``tmp-run.sh`` exports the env.
    HOST_ENV_KEYS = HOST_ENV_KEYS
    USER_RUN_DIR = True  # <P>USER_RUN_DIR: the user's folder, in env and const
    TMP_INPUTS = TMP_INPUTS
    ENV_INPUTS = ENV_INPUTS
    LOCAL_ENV_NAMES = LOCAL_ENV_NAMES
    CACHE_SCRIPT_TAG = "script-item-"
    dialect = MLCFLOW  # the rule book's answers where MLCFlow's and CM's differ
    compare_versions = staticmethod(compare_versions)
    merge = staticmethod(rules.merge)
    script_path = staticmethod(native.script_path)
    export_lines = staticmethod(native.export_lines)
    read_env_out = staticmethod(native.read_env_out)
    #: ``i['automation']`` of a hook (None: :class:`~ckg.run.scripts.automation.ScriptAutomation`)
    automation_class = None

    def __init__(
        self,
        index: ScriptIndex,
        cache: ScriptCache,
        *,
        workdir: Path,
        log_path: Path,
        execute: bool = True,
        use_cache: bool = True,
        renew: bool = False,
        on_step=None,
        prefix: str = "MLC_",
        timeout_s: float | None = None,
    ):
        self.index = index
        self.cache = cache
        self.workdir = Path(workdir)
        self.log_path = Path(log_path)
        self.execute = execute
        self.use_cache = use_cache
        self.renew = renew
        self.on_step = on_step or (lambda report: None)
        self.P = prefix
        self.timeout_s = timeout_s
        self.os_info = self._os_info()
        self.local_env_keys = [prefix + k for k in self.LOCAL_ENV_NAMES]
        self.steps: list[StepReport] = []
        self._stack: list[StepReport] = []
        self.cwd = self.workdir  # MLCFlow's current folder: a cached script's entry, else this
        self.hooks = None  # set in a worker: ckg.run.scripts.hooks.Hooks
        # Set in a worker: script -> why its code may not run here, or None.
        self.guard = None
        self.stdin = None  # set in a worker whose standard input answers questions

    def _os_info(self) -> dict:
        return native.os_info()

    # --- the public entry ------------------------------------------------------------

    def run(self, i: dict) -> dict:
        """Run the script that ``i['tags']`` selects; MLCFlow's input keys are understood
        (``env``, ``state``, ``const``, ``const_state``, ``add_deps_recursive`` / ``adr``,
        ``add_deps`` / ``ad``, ``version*``, input flags and ``input_mapping`` keys).

        Returns
        -------
        dict
            ``new_env``, ``new_state``, ``env``, ``state``, and ``skipped`` when preprocess
            skipped the script.

        Raises
        ------
        ScriptFailed
        NeedsExecution
        """
        i = dict(i)
        top = not i.get("recursion")
        if top:
            i.setdefault("env", {})
            i.setdefault("state", {})
            i.setdefault("const", {})
            i.setdefault("const_state", {})
            i.setdefault("add_deps_recursive", {})
            env = i["env"]
            if self.USER_RUN_DIR:
                env.setdefault(self.P + "USER_RUN_DIR", os.getcwd())
                i["const"].setdefault(self.P + "USER_RUN_DIR", env[self.P + "USER_RUN_DIR"])
            env[self.P + "QUIET"] = "yes"
        return self._run(i)

    # --- one invocation ----------------------------------------------------------------

    def _run(self, i: dict) -> dict:
        frame = Frame.of(i)
        self._enter(frame)
        script_tags, variation_tags = rules.split_tags(i.get("tags", ""))
        if i.get("artifact") in self.index.scripts:
            script = self.index.scripts[i["artifact"]]
        else:
            script = self._select(script_tags, variation_tags)
        with self._reported(script, str(i.get("tags", ""))) as report:
            if len(self._stack) > MAX_DEPTH:
                chain = " -> ".join(s.alias for s in self._stack[-6:])
                raise ScriptFailed(
                    f"{script.alias}: dependencies nest deeper than {MAX_DEPTH} scripts "
                    f"(a cycle? ... {chain})",
                    script.alias,
                )
            try:
                return self._run_script(frame, script, script_tags, variation_tags, report)
            except (AttributeError, KeyError, TypeError, ValueError) as exc:
                # A meta of the wrong shape (a list where MLCFlow expects a map, ...):
                # hooks' own exceptions arrive as ScriptFailed, never here.
                raise ScriptFailed(
                    f"{script.alias}: cannot use its meta ({script.path}): "
                    f"{type(exc).__name__}: {exc}",
                    script.alias,
                ) from None

    def _enter(self, frame: Frame) -> None:
        """The env an invocation starts from: its caller's, with the entry's own ``local_*``
        dicts, the current folder, the host's OS keys and variables, and the input flags."""
        i, env = frame.i, frame.env
        for key, target in (
            ("local_env", env),
            ("local_state", frame.state),
            ("local_const", frame.const),
            ("local_const_state", frame.const_state),
        ):
            if i.get(key):
                rules.merge(target, i[key])
        env[self.P + "TMP_CURRENT_PATH"] = str(self.cwd)
        rules.merge(env, self.os_info["env"])
        for key in self.HOST_ENV_KEYS:
            if os.environ.get(key) and not env.get(key):
                env[key] = os.environ[key]
        self._inputs_to_env(frame)

    @contextmanager
    def _reported(self, script: Script, tags: str):
        """The :class:`StepReport` of one invocation, on the stack of those running: told
        to ``on_step`` when it starts and when it ends with its status, time and log tail
        (a deferred one is not: its worker reports it)."""
        parent = self._stack[-1].id if self._stack else None
        report = StepReport(len(self.steps) + 1, parent, script.alias, script.uid, tags, [],
                            started_at=_now())  # fmt: skip
        report.workdir = str(self.cwd)
        self.steps.append(report)
        self._stack.append(report)
        started = time.perf_counter()
        log_start = _size(self.log_path)
        self.on_step(report)
        try:
            yield report
        except ScriptFailed as exc:
            report.status = "failed"
            report.error = str(exc)
            raise
        except NeedsExecution:
            report.status = "deferred"
            raise
        finally:
            report.wall_s = time.perf_counter() - started
            report.log_tail = (
                read_tail(self.log_path, start=log_start) if self.log_path.exists() else ""
            )
            self._stack.pop()
            if report.status != "deferred":
                self.on_step(report)

    def _inputs_to_env(self, frame: Frame) -> None:
        """The input flags that become env keys, and an absolute ``OUTDIRNAME``."""
        i, env = frame.i, frame.env
        for key in self.TMP_INPUTS:
            value = i.get(key, "")
            if isinstance(value, str) and value.strip():
                env[f"{self.P}TMP_{key.upper()}"] = value.strip()
        for key in self.ENV_INPUTS:
            value = i.get(key, "")
            value = value.strip() if isinstance(value, str) else value
            if value:
                env[f"{self.P}{key.upper()}"] = value
        rules.substitute(env)
        outdir = env.get(self.P + "OUTDIRNAME", "")
        if outdir and not os.path.isabs(outdir):
            env[self.P + "OUTDIRNAME"] = os.path.abspath(outdir)

    def _select(self, script_tags: list, variation_tags: list) -> Script:
        cached = self.cache.entries_of if self.use_cache else None  # MLCFlow's cache first
        found = self.index.find(script_tags, variation_tags, cached=cached)
        if not found:
            shown = ",".join(script_tags + ["_" + v for v in variation_tags])
            if self.index.find(script_tags, []):
                raise ScriptFailed(
                    f"no script with tags {shown}: the scripts with tags "
                    f"{','.join(script_tags)} declare none of those variations"
                )
            raise ScriptFailed(f"no script has the tags {shown}")
        return found[0]

    def _run_script(self, frame: Frame, script, script_tags, variation_tags, report) -> dict:
        P = self.P
        i, env, state, const, const_state = frame.dicts
        adr = i["add_deps_recursive"]
        meta = copy.deepcopy(script.meta)
        variations = list(variation_tags)
        inv = _Invocation(script, meta, script_tags, variations, list(variations), report, frame,
                          adr=adr)  # fmt: skip
        env[P + "TMP_CURRENT_SCRIPT_REPO_PATH"] = script.repo_path
        env[P + "TMP_CURRENT_SCRIPT_REPO_PATH_WITH_PREFIX"] = script.repo_path_with_prefix
        self._prepare(inv)
        report.variations = list(inv.variation_tags)
        rules.substitute(env)

        extra_cache_tags = _extra_cache_tags(env, i.get("extra_cache_tags", ""), P)
        cache = inv.cache and self.use_cache and not i.get("skip_cache")
        entry = None
        replaced: list = []
        if cache:
            tags, search = _cache_tags(
                [*inv.script_tags, *script.tags],
                inv.variation_tags,
                inv.explicit_variations,
                inv.version,
                [*extra_cache_tags, *_env_cache_tags(inv.meta, env)],
            )
            replaced = [
                e for e in self.cache.search(script.uid, search) if self.renew or e.expired()
            ]
            # MLCFlow's --new: this script (not its dependencies) runs into a new entry
            fresh = self.renew or i.get("new") is True
            entry = None if fresh else self._cached(inv, search)
            if entry is not None:
                report.status = "cached"
                report.cached = True
                report.cache_entry = str(entry.path)
                return self._finish(inv, frame)
            self._require_execution(script, "a cache miss")
            entry = self._new_entry(inv, tags)
        else:
            self._require_execution(script, "no cache")
        caller_cwd = self.cwd
        if entry is not None:
            self.cwd = entry.path  # this script and the uncached ones it calls work there
            report.workdir = str(entry.path)
        try:
            result = self._execute(inv, self.cwd)
        except BaseException:
            if entry is not None:
                self.cache.remove(entry)
            raise
        finally:
            self.cwd = caller_cwd
        if entry is not None and result is not None:
            self._keep(inv, entry, result, replaced)
        return result

    def _new_entry(self, inv: _Invocation, tags: list):
        """The cache entry this invocation runs into, named by its search tags, its
        script's id and tags; kept only if all of it succeeds (:meth:`_keep`)."""
        script = inv.script
        tags = [*tags, self.CACHE_SCRIPT_TAG + script.uid]
        tags += [t for t in script.tags if t not in tags]
        inv.cache_tags = tags
        return self.cache.create(
            script,
            [t for t in tags if not t.startswith("-")],
            [v for v in inv.variation_tags if not v.startswith("-")],
            inv.version,
        )

    def _keep(self, inv: _Invocation, entry, result: dict, replaced: list) -> None:
        """A successful run's outputs into its entry, which replaces the expired or
        renewed ones."""
        report = inv.report
        self.cache.finish(
            entry,
            inv.cache_tags,
            result["new_env"],
            result["new_state"],
            inv.deps["deps"],
            report.version,
            inv.script,
            env=result["env_all"],
            expiration=inv.cache_expiration,
            dependent=str(result.get("dependent_cached_path", "")),
        )
        report.cache_entry = str(entry.path)
        for old in replaced:
            self.cache.remove(old)
            report.removed_entries.append(old.path.name)

    def _prepare(self, inv: _Invocation) -> None:
        """Env, state, dependency lists, version and variations from the meta and the input,
        in MLCFlow's order: the script's meta (``update_state_from_meta``), the version and
        its meta, then the variations; ``add_deps`` of the input last."""
        meta = inv.meta
        i, env, state, const, const_state = inv.frame.dicts
        inv.cache = bool(meta.get("cache", False))
        inv.cache_expiration = i.get("cache_expiration", meta.get("cache_expiration", ""))
        for key, value in (meta.get("default_env") or {}).items():
            env.setdefault(key, value)
        self._input_mapping(env, i, meta)
        env.update(const)
        rules.merge(state, const_state)
        self._apply_meta(inv, meta)
        for kind in DEP_LISTS:
            inv.deps[kind] = meta.get(kind) or []
        self._version(inv, meta, i, env, inv.adr)
        variations = meta.get("variations") or {}
        version = inv.version
        if (
            version
            and f"version.{version}" not in inv.variation_tags
            and (f"version.{version}" in variations or "version.#" in variations)
        ):
            inv.variation_tags.append(f"version.{version}")
        self._variations(inv, meta, i, env, inv.adr)
        self._deps_from_input(inv, i, env)

    def _require_execution(self, script: Script, why: str) -> None:
        if not self.execute:
            raise NeedsExecution(f"{script.alias}: {why}")
        refused = self.guard(script) if self.guard else None
        if refused:
            raise ScriptFailed(refused, script.alias)

    def _input_mapping(self, env: dict, i: dict, meta: dict) -> None:
        source = i.get("input", i)
        described = meta.get("input_description") or {}
        for key, env_key in (meta.get("input_mapping") or {}).items():
            if key not in source:
                continue
            value = source[key]
            if rules.is_true(str((described.get(key) or {}).get("is_path", ""))):
                value = os.path.expanduser(str(value))
                base = env.get(self.P + "USER_RUN_DIR", "")
                if not os.path.isabs(value) and base:
                    value = os.path.abspath(os.path.join(base, value))
            env[env_key] = value

    def _apply_meta(self, inv: _Invocation, meta: dict) -> None:
        """MLCFlow's ``update_state_from_meta`` for the script's, a variation's or a
        version's meta, on the invocation's frame."""
        frame = inv.frame
        env = frame.env
        if meta.get("cache", "") != "":
            inv.cache = bool(meta["cache"])
        if meta.get("cache_expiration", "") != "":
            inv.cache_expiration = meta["cache_expiration"]
        default_env = meta.get("default_env") or {}
        for key, value in default_env.items():
            env.setdefault(key, value)
        rules.merge(env, meta.get("env") or {})
        inv.update_meta_if_env = inv.update_meta_if_env + list(meta.get("update_meta_if_env") or [])
        add_deps = _add_deps(meta)
        _apply_conditionals(frame, inv.update_meta_if_env, default_env, add_deps)
        for key, value in default_env.items():
            env.setdefault(key, value)
        _apply_consts(frame, meta)
        _add_meta_deps(inv.deps, meta, add_deps, env)
        if meta.get("input_mapping"):
            self._input_mapping(env, frame.i, meta)
        rules.substitute(env)
        inv.new_env_keys += list(meta.get("new_env_keys") or [])
        inv.new_state_keys += list(meta.get("new_state_keys") or [])

    def _version(self, inv: _Invocation, meta: dict, i: dict, env: dict, adr: dict) -> None:
        P = self.P
        values = {}
        for name, key in (
            ("version", "VERSION"),
            ("version_min", "VERSION_MIN"),
            ("version_max", "VERSION_MAX"),
            ("version_max_usable", "VERSION_MAX_USABLE"),
        ):
            value = (
                str(i.get(name, "")).strip() or str(env.get(P + key, "")) or str(meta.get(name, ""))
            )
            values[name] = value
            if value:
                env[P + key] = value
        inv.version = values["version"]
        inv.version_min = values["version_min"]
        inv.version_max = values["version_max"]
        inv.version_max_usable = values["version_max_usable"]
        versions = meta.get("versions") or {}
        if inv.version and inv.version in versions:
            inv.version_meta = versions[inv.version]
            self._apply_meta(inv, inv.version_meta)
            version_adr = _adr(inv.version_meta)
            if version_adr:
                rules.merge_tags_by_name(adr, version_adr)
                for kind in DEP_LISTS:
                    rules.update_deps(inv.deps[kind], adr, env)

    def _variations(self, inv: _Invocation, meta, i, env, adr) -> None:
        variations = meta.get("variations") or {}
        extra = [inv.version_meta] if inv.version_meta else []
        try:
            inv.variation_groups = rules.groups(variations)
            tags = rules.choose(meta, inv.variation_tags, extra)
        except rules.MetaError as exc:
            raise ScriptFailed(f"{inv.script.alias}: {exc}", inv.script.alias) from None
        inv.variation_tags = tags
        if not tags:
            return
        inv.variation_string = ",".join("_" + t for t in tags)
        for var_meta in rules.variation_metas(variations, tags):
            self._apply_meta(inv, var_meta)
            var_adr = _adr(var_meta)
            if var_adr:
                rules.merge_tags_by_name(adr, var_adr)
            for key in ("script_name", "default_version"):
                if key in var_meta:
                    meta[key] = var_meta[key]
        for kind in DEP_LISTS:
            rules.update_deps(inv.deps[kind], adr, env)

    def _deps_from_input(self, inv: _Invocation, i: dict, env: dict) -> None:
        add_deps = dict(i.get("ad") or i.get("add_deps") or {})
        for kind in DEP_LISTS:
            if add_deps:
                rules.update_deps(inv.deps[kind], add_deps, i.get("env", {}))
            if i.get("add_deps_recursive"):
                rules.update_deps(inv.deps[kind], i["add_deps_recursive"], i.get("env", {}))

    # --- cache -------------------------------------------------------------------------

    def _cached(self, inv: _Invocation, search: list):
        """The valid cache entry for this invocation after running its dynamic
        dependencies and restoring its env and state; None on a miss."""
        frame = inv.frame
        env, state, const, const_state = frame.env, frame.state, frame.const, frame.const_state
        script = inv.script
        candidates = [e for e in self.cache.search(script.uid, search) if self._entry_valid(inv, e)]
        if not candidates:
            return None
        entry = sorted(candidates, key=lambda e: sorted(e.tags))[0]
        hidden = [*self.local_env_keys, *(inv.meta.get("local_env_keys") or [])]
        for kind in ("deps", "prehook_deps"):
            self._run_deps(inv, frame, inv.deps[kind], hidden, from_cache=True)
            rules.substitute(env)
        saved = self.cache.load_state(entry)
        if saved is None:
            return None
        inv.report.version = str(saved.get("version") or "")
        rules.merge(env, saved.get("new_env") or {})
        rules.merge(state, saved.get("new_state") or {})
        rules.merge(env, const)
        rules.merge(state, const_state)
        hidden = [*self.local_env_keys, *(inv.meta.get("clean_env_keys_post_deps") or [])]
        for kind in ("posthook_deps", "post_deps"):
            self._run_deps(inv, frame, inv.deps[kind], hidden, from_cache=True)
        return entry

    def _entry_valid(self, inv: _Invocation, entry) -> bool:
        """Whether a cache entry serves this invocation: not expired, its dependent path
        there, ``validate_cache.sh`` content with it, its version in the asked range."""
        env, state = inv.frame.env, inv.frame.state
        if entry.expired():
            return False  # replaced once a new entry succeeds
        if entry.dependent and not os.path.exists(entry.dependent):
            return False
        detected = None
        check = self.script_path(env, Path(inv.script.path), "validate_cache")
        if check.name == "validate_cache.sh" and check.is_file():
            self._require_execution(inv.script, "its cache entry is checked by a script")
            detected = self.hooks.validate_cache(self, inv, entry, env, state)
            if detected is False:
                return False
        cached_version = entry.version
        if cached_version and detected and cached_version != detected:
            return False
        return not self._outside(cached_version, inv.version_min, inv.version_max)

    def _outside(self, version: str, vmin: str, vmax: str) -> bool:
        """Whether ``version`` lies below ``vmin`` or above ``vmax``."""
        return bool(version) and bool(
            (vmin and self.compare_versions(version, vmin) < 0)
            or (vmax and self.compare_versions(version, vmax) > 0)
        )

    # --- execution ---------------------------------------------------------------------

    def _execute(self, inv: _Invocation, cwd: Path) -> dict | None:
        P = self.P
        frame = inv.frame
        i, env, state, const, const_state = frame.dicts
        meta = inv.meta
        script = inv.script
        cwd = Path(cwd)
        cwd.mkdir(parents=True, exist_ok=True)
        local_keys = [*self.local_env_keys, *(meta.get("local_env_keys") or [])]
        if not inv.version and meta.get("default_version", ""):
            self._default_version(inv, meta["default_version"])
        env[P + "TMP_CURRENT_SCRIPT_PATH"] = script.path
        rules.substitute(env)
        run_input = self._run_script_input(inv, frame, cwd)
        if self.hooks.has(script, "predeps") and not rules.is_false(meta.get("predeps", True)):
            self._hook(inv, "predeps", frame, run_input, cwd)
        self._run_deps(inv, frame, inv.deps["deps"], local_keys)
        rules.substitute(env)
        for name in [*(meta.get("clean_files") or []), *native.TMP_FILES]:
            (cwd / name).unlink(missing_ok=True)
        spec = _pip_spec(
            *(str(env.get(P + k, "")) for k in ("VERSION", "VERSION_MIN", "VERSION_MAX"))
        )
        env.update(const)
        rules.merge(state, const_state)
        env[P + "TMP_PIP_VERSION_STRING"] = spec
        rules.substitute(env)
        step_dir = cwd
        outdir = self._outdir(frame)
        if outdir:
            step_dir = Path(outdir)
            step_dir.mkdir(parents=True, exist_ok=True)
        run_input["cwd"] = str(step_dir)
        if self.hooks.has(script, "preprocess"):
            r = self._hook(inv, "preprocess", frame, run_input, step_dir)
            if r.get("skip"):
                return self._skip(inv, r.get("script") or {})
            if inv.cache:  # MLCFlow reads preprocess's version for cached scripts only
                _take_result(inv, r)
        rules.substitute(env)
        self._run_deps(inv, frame, inv.deps["prehook_deps"], local_keys)
        _map_keys(env, meta.get("env_key_mappings") or {})
        # Hooks may have left copies in run_input (run_native_script restores one): the
        # native script and postprocess work on the live env and state, as in MLCFlow.
        run_input.update(env=env, state=state, const=const, const_state=const_state, meta=meta)
        _take_result(inv, self.prepare_and_run(run_input, "postprocess"))
        post_hidden = meta.get("clean_env_keys_post_deps") or []
        self._run_deps(inv, frame, inv.deps["post_deps"], post_hidden)
        for tag in _env_cache_tags(meta, env):  # again: the script may have set them
            if tag not in inv.cache_tags:
                inv.cache_tags.append(tag)
        if inv.report.status == "running":
            inv.report.status = "ok"
        dependent = env.get(P + "GET_DEPENDENT_CACHED_PATH", "")
        detected = env.get(P + "DETECTED_VERSION", env.get(P + "VERSION", ""))
        if detected and not inv.report.version:
            inv.report.version = str(detected)
        result = self._finish(inv, frame)
        result["dependent_cached_path"] = dependent
        return result

    def _default_version(self, inv: _Invocation, default: str) -> None:
        """No version asked: the meta's ``default_version``, brought within the asked
        range, with its cache tags and its ``versions`` meta (MLCFlow's order)."""
        i, env = inv.frame.i, inv.frame.env
        version = default
        if inv.version_min and self.compare_versions(version, inv.version_min) < 0:
            version = inv.version_min
        if inv.version_max and self.compare_versions(version, inv.version_max) > 0:
            version = inv.version_max_usable or inv.version_max
        inv.version = version
        env[self.P + "VERSION"] = version
        rules.substitute(env)
        inv.cache_tags += [t for t in _version_tags(version) if t not in inv.cache_tags]
        versions = inv.meta.get("versions") or {}
        if default in versions:
            inv.version_meta = versions[default]
            self._apply_meta(inv, inv.version_meta)
            if _adr(inv.version_meta):
                rules.merge_tags_by_name(i["add_deps_recursive"], _adr(inv.version_meta))

    def _skip(self, inv: _Invocation, other: dict) -> dict:
        """preprocess said ``skip``: nothing more of this script runs; with ``script``,
        that other script runs in its place, in the same env."""
        inv.report.status = "skipped"
        i, env, state, const, const_state = inv.frame.dicts
        if not other:
            return {"new_env": {}, "new_state": {}, "env": env, "state": state,
                    "skipped": True, "env_all": {}}  # fmt: skip
        nested = {
            "recursion": True,
            "env": env,
            "state": state,
            "const": const,
            "const_state": const_state,
            "add_deps_recursive": i["add_deps_recursive"],
            **other,
        }
        return self._run(nested)

    def _outdir(self, frame: Frame) -> str:
        """The folder a step works in when ``OUTDIRNAME`` is set (made absolute on input)."""
        return frame.env.get(self.P + "OUTDIRNAME", "")

    def _run_script_input(self, inv: _Invocation, frame: Frame, cwd) -> dict:
        """MLCFlow's ``run_script_input`` of ``frame``'s dicts: what hooks and
        :meth:`prepare_and_run` get."""
        i, env, state, const, const_state = frame.dicts
        return {
            "path": inv.script.path,
            "bat_ext": ".sh",
            "os_info": self.os_info,
            "const": const,
            "state": state,
            "const_state": const_state,
            "env": env,
            "meta": inv.meta,
            "recursion": bool(i.get("recursion")),
            "recursion_spaces": "  " * len(self._stack),
            "tmp_file_run_state": native.TMP_RUN_STATE,
            "tmp_file_run_env": native.TMP_RUN_ENV,
            "tmp_file_state": native.TMP_STATE,
            "tmp_file_run": "tmp-run",
            "local_env_keys": self.local_env_keys,
            "local_env_keys_from_meta": inv.meta.get("local_env_keys") or [],
            "posthook_deps": inv.deps["posthook_deps"],
            "add_deps_recursive": i["add_deps_recursive"],
            "found_script_tags": inv.script.tags,
            "variation_tags_string": inv.variation_string,
            "found_cached": False,
            "script_name": "",
            "run_state": {
                "deps": inv.deps["deps"],
                "post_deps": inv.deps["post_deps"],
                "prehook_deps": inv.deps["prehook_deps"],
                "posthook_deps": inv.deps["posthook_deps"],
                "variation_groups": inv.variation_groups,
                "new_env_keys": inv.new_env_keys,
                "new_state_keys": inv.new_state_keys,
                "script_id": f"{inv.script.alias},{inv.script.uid}",
                "script_variation_tags": inv.variation_tags,
                "version_info": [],
                "full_deps": [],
            },
            "cwd": str(cwd),
            "_invocation": inv,
            "_input": i,
        }

    def _hook(self, inv, name: str, frame: Frame, run_input: dict, cwd) -> dict:
        self._require_execution(inv.script, f"customize.py {name}")
        inv.report.executed.append(name)
        r = self.hooks.call(self, inv, name, frame, run_input, Path(cwd))
        if not isinstance(r, dict):
            raise ScriptFailed(
                f"{inv.script.alias}: customize.py {name} returned {r!r}, not a dict",
                inv.script.alias,
            )
        if int(r.get("return", 0) or 0) > 0:
            raise ScriptFailed(
                f"{inv.script.alias}: customize.py {name}: {r.get('error', 'failed')}",
                inv.script.alias,
                int(r["return"]),
            )
        return r

    def prepare_and_run(self, run_input: dict, postprocess: str = "postprocess") -> dict:
        """MLCFlow's ``prepare_and_run_script_with_postprocessing``: the native script,
        its outputs read back, then ``posthook_deps`` and ``postprocess`` (or
        ``detect_version``) of customize.py."""
        P = self.P
        inv: _Invocation = run_input["_invocation"]
        i = run_input["_input"]
        # the live dicts, or validate_cache's copies of them
        frame = Frame(i, *(run_input[k] for k in ("env", "state", "const", "const_state")))
        _, env, state, const, const_state = frame.dicts
        folder = Path(run_input.get("path") or inv.script.path)
        # a name asked by a hook or the meta must exist; the default run.sh may not
        name = str(run_input.get("script_name", "")).strip()
        name = name or str(inv.meta.get("script_name", "")).strip()
        script = self.script_path(env, folder, name or "run")
        if name and not script.is_file():
            raise ScriptFailed(
                f"{inv.script.alias}: script {script} not found", inv.script.alias, 16
            )
        env.update(const)
        rules.merge(state, const_state)
        cwd = Path(run_input.get("cwd") or self.workdir)
        env[P + "TMP_CURRENT_SCRIPT_PATH"] = str(folder)
        env[P + "TMP_CURRENT_SCRIPT_WORK_PATH"] = str(cwd)
        result: dict = {"return": 0}
        if script.is_file():
            self._native(inv, frame, script, cwd)
        if postprocess == "postprocess":
            self._run_deps(
                inv,
                frame,
                run_input.get("posthook_deps") or [],
                [*self.local_env_keys, *(run_input.get("local_env_keys_from_meta") or [])],
            )
        if postprocess and self.hooks.has(inv.script, postprocess):
            env.update(const)
            rules.merge(state, const_state)
            result = self._hook(inv, postprocess, frame, run_input, cwd)
        return result

    def _native(self, inv: _Invocation, frame: Frame, script: Path, cwd: Path) -> None:
        """Run the native script through ``tmp-run.sh`` and merge what it exports into the
        env and state; its failure fails the invocation unless ``ignore_script_error``."""
        i, env, state = frame.i, frame.env, frame.state
        self._require_execution(inv.script, script.name)
        inv.report.executed.append(script.name)
        if not inv.report.env:
            inv.report.env = copy.deepcopy(env)
        _flush()
        outcome, new_env, new_state = native.run_script(
            script,
            env=env,
            state=state,
            workdir=cwd,
            log_path=self.log_path,
            timeout_s=self.timeout_s,
            export=self.export_lines,
            read_env=self.read_env_out,
            stdin=self.stdin,
        )
        if outcome.status != "ok" and not rules.is_true(i.get("ignore_script_error", False)):
            why = (
                "timed out" if outcome.status == "timeout" else f"return code = {outcome.exit_code}"
            )
            raise ScriptFailed(
                f"native script {script.name} failed inside script {inv.script.alias} ({why})",
                inv.script.alias,
                2,
            )
        rules.merge(state, new_state)
        rules.merge(env, new_env)

    def _run_deps(
        self, inv: _Invocation, frame: Frame, deps: list, clean_keys: list, from_cache=False
    ) -> None:
        """Run the enabled entries of one dependency list in the caller's env minus
        ``clean_keys`` (and keys with unresolved ``<<<KEY>>>`` values), and put those back
        afterwards (MLCFlow's ``_run_deps``). Post-dependencies get only the meta's
        ``clean_env_keys_post_deps`` hidden, so they see ``MLC_TMP_*`` and version keys.
        What differs in CM's ``_run_deps`` is the dialect's (:class:`ckg.mlc.Dialect`:
        ``entry_extensions``, ``list_tags``, ``hides_per_entry``) and :meth:`_dep_input`'s."""
        dialect, env = self.dialect, frame.env
        hidden: dict = {}
        for d in deps:
            if not _used(d, env, from_cache, dialect):
                continue
            _update_from_env(d, env, frame.state, frame.const, dialect)
            d["tags"] += _tags_with_prefix(d, env, dialect)
            if dialect.hides_per_entry:
                hidden = {}
            _hide(env, clean_keys, d, self.P, hidden)
            d["tags"] = _completed_tags(inv, d, env, dialect)
            try:
                self._run(self._dep_input(inv, d, frame))
            except ScriptFailed:
                if not (dialect.entry_extensions and rules.is_true(d.get("continue_on_error"))):
                    raise
            env.update(hidden)
            rules.substitute(env)
            env.update(frame.const)
            self.merge(frame.state, frame.const_state)

    def _dep_input(self, inv: _Invocation, d: dict, frame: Frame) -> dict:
        """The nested ``run`` input of a dependency entry: the shared env and state, copies
        of const and const_state, the entry's own dicts as ``local_*``, the rest of it."""
        nested = {
            "recursion": True,
            "env": frame.env,
            "state": frame.state,
            "const": dict(frame.const),
            "const_state": dict(frame.const_state),
            "add_deps_recursive": inv.adr,
        }
        if (
            d.get("inherit_cache_expiration")
            and inv.cache_expiration
            and not d.get("cache_expiration")
        ):
            d["cache_expiration"] = inv.cache_expiration
        for key in ("env", "state", "const", "const_state"):
            nested["local_" + key] = d.get(key) or {}
        entry = {k: v for k, v in d.items() if k not in ("env", "state", "const", "const_state")}
        rules.merge(nested, copy.deepcopy(entry))
        return nested

    def _finish(self, inv: _Invocation, frame: Frame) -> dict:
        """The invocation's outputs (``new_env_keys`` / ``new_state_keys`` of its env and
        state), and the caller's env and state back as they were plus those."""
        i, env, state, const, const_state = frame.dicts
        saved_env, saved_state = frame.saved_env, frame.saved_state
        env.update(const)
        rules.merge(state, const_state)
        env_keys = i.get("force_new_env_keys") or inv.new_env_keys
        state_keys = i.get("force_new_state_keys") or inv.new_state_keys
        new_env = copy.deepcopy(rules.select_keys(env_keys, env))
        new_state = copy.deepcopy(rules.select_keys(state_keys, state))
        env_all = copy.deepcopy(env)
        rules.merge(saved_env, new_env)
        rules.merge(saved_state, new_state)
        env.clear()
        env.update(saved_env)
        state.clear()
        state.update(saved_state)
        inv.report.new_env = new_env
        inv.report.new_state = new_state
        return {
            "new_env": new_env,
            "new_state": new_state,
            "env": env,
            "state": state,
            "env_all": env_all,
        }


def _used(d, env: dict, from_cache: bool, dialect=MLCFLOW) -> bool:
    """Whether a dependency entry runs: it names tags, its guards let it, and on a cache
    hit only ``dynamic`` ones run again."""
    return (
        isinstance(d, dict)
        and bool(d.get("tags"))
        and not rules.skipped(d, env, dialect)
        and (not from_cache or bool(d.get("dynamic")))
    )


def _update_from_env(d: dict, env: dict, state: dict, const: dict, dialect=MLCFLOW) -> None:
    """The entry's own env with the caller's ``<<<KEY>>>`` filled in, and its
    ``update_meta_if_env`` merged into the caller's env, state and const."""
    if d.get("env"):
        rules.substitute(d["env"], env)
    if not dialect.entry_extensions:
        return
    for conditional in d.get("update_meta_if_env") or []:
        if not rules.skipped(conditional, env):
            rules.merge(env, conditional.get("env") or {})
            rules.merge(state, conditional.get("state") or {})
            rules.merge(const, conditional.get("const") or {})


def _tags_with_prefix(d: dict, env: dict, dialect=MLCFLOW) -> str:
    """``update_tags_from_env_with_prefix``: read before the caller's local keys are
    hidden, as MLCFlow does."""
    prefixed = d.get("update_tags_from_env_with_prefix") or {}
    return "".join(
        _tags_from(d, env, key, p, dialect) for p, keys in prefixed.items() for key in keys
    )


def _hide(env: dict, patterns: list, d: dict, prefix: str, moved: dict | None = None) -> dict:
    """Take out of ``env`` what a dependency must not see: keys matching ``patterns`` and
    keys whose value holds an unresolved ``<<<KEY>>>``; the entry's ``force_env_keys``
    (and with ``reuse_version`` the ``<prefix>VERSION*`` keys) of what was taken out, here
    or before into ``moved``, stay visible. Returns ``moved`` with what was taken out, for
    the caller to put back.

    >>> env = {"MLC_VERSION": "1", "MLC_TMP_X": "a", "B": "<<<C>>>", "D": "d"}
    >>> _hide(env, ["MLC_VERSION", "MLC_TMP_*"], {"reuse_version": True}, "MLC_"), env
    ({'MLC_VERSION': '1', 'MLC_TMP_X': 'a', 'B': '<<<C>>>'}, {'D': 'd', 'MLC_VERSION': '1'})
    """
    moved = {} if moved is None else moved
    for pattern in patterns:
        for key in [k for k in env if _matches(k, pattern)]:
            moved[key] = env.pop(key)
    for key in [k for k in env if rules.has_ref(env[k])]:
        moved[key] = env.pop(key)
    for pattern in d.get("force_env_keys") or []:
        for key in [k for k in moved if _matches(k, pattern)]:
            env[key] = moved[key]
    if d.get("reuse_version"):
        env.update({k: v for k, v in moved.items() if k.startswith(prefix + "VERSION")})
    return moved


def _completed_tags(inv: _Invocation, d: dict, env: dict, dialect=MLCFLOW) -> str:
    """The entry's tags with ``update_tags_from_env``, ``update_tags_if_env``, the
    caller's variations (``inherit_variation_tags``) and known ``<<<KEY>>>`` values (in
    CM's dialect: the first and the third, from the caller's env)."""
    extended = dialect.entry_extensions
    own = d if extended else {}
    tags = d["tags"] + "".join(
        _tags_from(own, env, key, "", dialect) for key in d.get("update_tags_from_env") or []
    )
    if extended:
        for tag, guard in (d.get("update_tags_if_env") or {}).items():
            if not rules.skipped(guard, env):
                tags += "," + tag
    if d.get("inherit_variation_tags"):
        tags += "," + _inherited(inv, {**d, "tags": tags})
    if extended:
        for ref in rules.REF.findall(tags):
            if ref in env:
                tags = tags.replace(f"<<<{ref}>>>", str(env[ref]))
    return tags


def _add_deps(meta: dict) -> dict:
    """A meta's ``add_deps``: ``ad``, with ``add_deps`` merged into it."""
    add_deps = dict(meta.get("ad") or meta.get("add_deps") or {})
    if meta.get("ad"):
        rules.merge(add_deps, meta.get("add_deps") or {})
    return add_deps


def _apply_conditionals(
    frame: Frame, conditionals: list, default_env: dict, add_deps: dict
) -> None:
    """``update_meta_if_env``: each entry whose guards ``frame``'s env lets merges its env,
    const, state and const_state into the frame's, its ``default_env`` and ``add_deps``
    into the meta's."""
    for conditional in conditionals:
        if rules.skipped(conditional, frame.env):
            continue
        rules.merge(default_env, conditional.get("default_env") or {})
        rules.merge(frame.env, conditional.get("env") or {})
        rules.merge(frame.const, conditional.get("const") or {})
        rules.merge(frame.state, conditional.get("state") or {})
        rules.merge(frame.const_state, conditional.get("const_state") or {})
        rules.merge(add_deps, conditional.get("ad") or conditional.get("add_deps") or {})


def _apply_consts(frame: Frame, meta: dict) -> None:
    """A meta's ``const`` (over the env too), ``state``, and ``const_state`` (over the
    state too, where the frame has one already, as MLCFlow does)."""
    if meta.get("const"):
        frame.const.update(meta["const"])
        frame.env.update(frame.const)
    rules.merge(frame.state, meta.get("state") or {})
    if frame.const_state:
        rules.merge(frame.const_state, meta.get("const_state") or {})
        rules.merge(frame.state, frame.const_state)


def _add_meta_deps(deps: dict, meta: dict, add_deps: dict, env: dict) -> None:
    """A meta's dependency lists appended to ``deps`` (copies), then ``add_deps`` applied
    to every list."""
    for kind in DEP_LISTS:
        if meta.get(kind):
            rules.append_deps(deps[kind], copy.deepcopy(meta[kind]))
    if add_deps:
        for kind in DEP_LISTS:
            rules.update_deps(deps[kind], add_deps, env)


def _matches(key: str, pattern: str) -> bool:
    return key == pattern or (("*" in pattern or "?" in pattern) and _fnmatch(key, pattern))


def _adr(meta: dict) -> dict:
    adr = dict(meta.get("adr") or meta.get("add_deps_recursive") or {})
    if meta.get("adr"):
        rules.merge(adr, meta.get("add_deps_recursive") or {})
    return adr


def _inherited(inv: _Invocation, d: dict) -> str:
    return rules.inherited_tags(inv.variation_string, inv.variation_groups, d)


def _take_result(inv: _Invocation, r: dict) -> None:
    """A hook's ``version`` and ``add_extra_cache_tags``: the step's version and the tags
    its cache entry gets (a new version replaces the ``version-`` tags)."""
    if r.get("version"):
        inv.report.version = str(r["version"])
        inv.cache_tags = [t for t in inv.cache_tags if not t.startswith("version-")]
        inv.cache_tags += _version_tags(str(r["version"]))
    for tag in r.get("add_extra_cache_tags") or []:
        if tag not in inv.cache_tags:
            inv.cache_tags.append(tag)


def _env_cache_tags(meta: dict, env: dict) -> list[str]:
    """``deps-<prefix><value>`` tags of a meta's ``extra_cache_tags_from_env``, from ``env``.

    >>> _env_cache_tags({"extra_cache_tags_from_env": [{"env": "V", "prefix": "python-"}]},
    ...                 {"V": "3.11,3.12"})
    ['deps-python-3.11', 'deps-python-3.12']
    """
    tags = []
    for item in meta.get("extra_cache_tags_from_env") or []:
        value = str(env.get(item.get("env", ""), "")).strip()
        tags += ["deps-" + item.get("prefix", "") + part for part in value.split(",") if value]
    return tags


def _cache_tags(
    script_tags: list, variations: list, explicit: list, version: str, extra: list
) -> tuple[list, list]:
    """The tags a new cache entry gets, and those a search for one needs (MLCFlow's
    ``prepare_cache_tags``): the script's tags, then its ``variations`` as ``_name`` (a
    search needs only the ``explicit`` ones, those asked), the ``version``'s tags, and
    ``extra`` (the input's and the meta's extra cache tags) on both.

    >>> _cache_tags(["get", "python3", "get", "python"], ["shared", "-static"], ["shared"],
    ...             "3.12", ["deps-v1"])  # doctest: +NORMALIZE_WHITESPACE
    (['get', 'python3', 'python', '_shared', '-_static', 'version-3.12', 'deps-v1'],
     ['get', 'python3', 'python', '-tmp', '_shared', 'version-3.12', 'deps-v1'])
    """
    tags: list[str] = []
    for tag in script_tags:
        if tag not in tags:
            tags.append(tag)
    search = [*tags, "-tmp"]
    for tag in explicit:
        name = "-_" + tag[1:] if tag.startswith("-") else "_" + tag
        if name not in search:
            search.append(name)
    for tag in variations:
        name = "-_" + tag[1:] if tag.startswith("-") else "_" + tag
        if name not in tags:
            tags.append(name)
    for version_tag in _version_tags(version):
        for target in (tags, search):
            if version_tag not in target:
                target.append(version_tag)
    for tag in extra:
        if tag not in tags:
            tags.append(tag)
            search.append(tag)
    return tags, search


def _extra_cache_tags(env: dict, asked: str, prefix: str) -> list[str]:
    """The tags a cache entry gets beyond the script's: ``<prefix>EXTRA_CACHE_TAGS``, the
    input's ``extra_cache_tags`` (``<<<KEY>>>`` filled from ``env``) and ``name-<NAME>``.

    >>> _extra_cache_tags({"MLC_EXTRA_CACHE_TAGS": "a", "V": "3", "MLC_NAME": "X"},
    ...                   "a,v-<<<V>>>", "MLC_")
    ['a', 'v-3', 'name-x']
    """
    tags = [t for t in str(env.get(prefix + "EXTRA_CACHE_TAGS", "")).strip().split(",") if t]
    for tag in str(asked).strip().split(","):
        if tag:
            for ref in rules.REF.findall(tag):
                tag = tag.replace(f"<<<{ref}>>>", str(env.get(ref, "")))
            if tag not in tags:
                tags.append(tag)
    if env.get(prefix + "NAME", ""):
        tags.append("name-" + str(env[prefix + "NAME"]).strip().lower())
    return tags


def _pip_spec(version: str, vmin: str, vmax: str) -> str:
    """pip's version specifier for the asked version or range (``TMP_PIP_VERSION_STRING``).

    >>> _pip_spec("1.2", "1.0", ""), _pip_spec("", "1.0", "2.0"), _pip_spec("", "", "2")
    ('==1.2', '>=1.0,<=2.0', '<=2')
    """
    if version:
        return "==" + version
    if vmin and vmax:
        return ">=" + vmin + ",<=" + vmax
    return ">=" + vmin if vmin else "<=" + vmax if vmax else ""


def _map_keys(env: dict, mappings: dict) -> None:
    """``env_key_mappings``: every key starting with ``old`` copied under ``new``.

    >>> env = {"A_X": "1"}; _map_keys(env, {"A_": "B_"}); env
    {'A_X': '1', 'B_X': '1'}
    """
    for old, new in mappings.items():
        for key in list(env):
            if key.startswith(old):
                env[key.replace(old, new)] = env[key]


def _version_tags(version: str) -> list[str]:
    if not version:
        return []
    tags = ["version-" + str(version)]
    if "-git-" in str(version):
        tags.append("version-" + str(version).split("-git-")[0])
    return tags


def _fnmatch(key: str, pattern: str) -> bool:
    import fnmatch

    return fnmatch.fnmatch(key, pattern)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _flush() -> None:
    import sys

    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")
