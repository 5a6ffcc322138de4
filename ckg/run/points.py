"""One grid point of ``ckg run``: its steps executed, measured and recorded.

:class:`WorkflowPoint` runs a ``ckg.yaml`` workflow or a notebook target: each dependency
step once (reused through :class:`StepCache`), then the target ``warmup`` unmeasured and
``repeat`` measured times (:func:`measure_command`). :class:`~ckg.run.script_point.ScriptPoint`
runs an MLC or CM script target through :mod:`ckg.run.scripts`, which runs its dependencies
itself, and
records each step it ran as a ``Run`` (:mod:`ckg.run.script_point`). Both share a
:class:`Command`: what is fixed for every point of one command.
"""

import hashlib
import json
import os
import shutil
import statistics
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from ckg.core import redact
from ckg.core.errors import RunFailed
from ckg.core.records import Node, Records
from ckg.run import record, steps, trust
from ckg.run.execute import Outcome, execute
from ckg.run.measure import EnergyMeter, Figure, canonical_metrics, result_metrics

LOG_NAME = "ckg-run.log"
#: Step outputs removed before each repeat, so that a stale file never counts twice.
_OUTPUTS = (*("cm-output.json", "cm-result.json", "ckg-result.json"), steps.ENV_OUT)


@dataclass(slots=True)
class RunResult:
    """One executed target run: its grid point and what was measured."""

    uid: str
    params: dict
    status: str
    exit_code: int
    metrics: dict[str, float]
    units: dict[str, str]
    workdir: str
    log_tail: str
    new_env: dict = field(default_factory=dict)
    new_state: dict = field(default_factory=dict)
    steps: list[dict] = field(default_factory=list)
    error: str = ""


@dataclass(slots=True)
class Report:
    """What ``ckg run`` did: the experiment, each target run, cached and unrecorded steps."""

    experiment: str
    target: str
    runs: list[RunResult] = field(default_factory=list)
    dependency_runs: int = 0
    cached_steps: int = 0
    unrecorded: int = 0
    store_error: str = ""
    dry_run: list[dict] = field(default_factory=list)

    @property
    def failed(self) -> list[RunResult]:
        return [r for r in self.runs if r.status != "ok"]


@dataclass(slots=True)
class Command:
    """What every grid point of one ``ckg run`` command shares.

    ``options`` are the command's :class:`~ckg.run.runner.Options`; ``global_env`` its
    ``--env`` values that name no step (``ALIAS:KEY`` ones are the planner's); ``ambient``
    the secrets of this process's environment (:func:`ckg.core.redact.ambient`); ``platform``,
    ``experiment`` the nodes every Run links to; ``reproduces`` what target runs reproduce
    (:class:`ckg.run.reproduces.Reproduces`); ``checkouts``, ``provenance``, ``recorder``
    where code lies, what it was, where records go; ``run_uids`` the uids the next target
    runs take (a cluster task's, fixed when it was submitted).
    """

    home: Path
    options: object
    global_env: dict
    ambient: tuple[str, ...]
    platform: Node
    experiment: Node
    reproduces: object
    meter: EnergyMeter
    checkouts: object
    provenance: object
    recorder: record.Recorder
    run_uids: list[str] = field(default_factory=list)

    def target_uid(self) -> str:
        """The uid of the next target run: the next of ``run_uids``, or a new one."""
        return self.run_uids.pop(0) if self.run_uids else "run-" + uuid.uuid4().hex

    def warmup(self) -> int:
        """Unmeasured executions before the measured ones: ``--warmup``, else one when
        repeating."""
        options = self.options
        return options.warmup if options.warmup is not None else int(options.repeat > 1)

    def write(self, records: Records, report: Report, secrets: tuple[str, ...]) -> None:
        """Record ``records`` (:class:`~ckg.run.record.Recorder`), keeping ``report``'s
        count of unrecorded batches and the store's error up to date."""
        self.recorder.write(records, secrets)
        report.unrecorded = self.recorder.unrecorded
        report.store_error = self.recorder.error


@dataclass(slots=True)
class Measured:
    """The executions of one step: each measured (or failing) execution's outcome, its
    energy figures and the metrics its result files reported; the first failure's status
    and exit code ("ok" and 0 when none failed)."""

    status: str = "ok"
    exit_code: int = 0
    outcomes: list[Outcome] = field(default_factory=list)
    energies: list[list[Figure]] = field(default_factory=list)
    reported: list[dict] = field(default_factory=list)

    def figures(self) -> list[Figure]:
        """What the Run's Measurements hold (:func:`figures`)."""
        return figures(self.outcomes, self.energies, self.reported)


def measure_command(
    command: str,
    *,
    workdir: Path,
    env: dict,
    log_path: Path,
    timeout_s: float | None,
    secrets: tuple[str, ...],
    meter: EnergyMeter,
    repeat: int,
    warmup: int,
) -> Measured:
    """Execute ``command`` ``warmup`` unmeasured then ``repeat`` measured times in
    ``workdir``, stopping at the first failure (which is kept, measured or not); the
    outputs of the previous execution are removed before each."""
    measured = Measured()
    for index in range(warmup + repeat):
        clear_outputs(workdir)
        mark = meter.start()
        outcome = execute(
            command, cwd=workdir, env=env, log_path=log_path, timeout_s=timeout_s, secrets=secrets
        )
        energy = meter.stop(mark, cpu_s=outcome.user_s + outcome.system_s)
        if outcome.status != "ok":
            measured.status, measured.exit_code = outcome.status, outcome.exit_code
            measured.outcomes.append(outcome)
            measured.energies.append(energy)
            break
        if index >= warmup:
            measured.outcomes.append(outcome)
            measured.energies.append(energy)
            measured.reported.append(canonical_metrics(result_metrics(workdir, outcome.log_tail)))
    return measured


def result_of(uid: str, params: dict, figures_: list[Figure], **fields) -> RunResult:
    """The :class:`RunResult` of target run ``uid``: the median of each of its figures
    (per-device parts left out) and their units, with ``fields`` as given."""
    values = {f.metric: f for f in figures_ if not f.device}
    return RunResult(
        uid=uid,
        params=params,
        metrics={m: statistics.median(f.values) for m, f in values.items()},
        units={m: f.unit for m, f in values.items()},
        **fields,
    )


class StepCache:
    """Which dependency steps need not run again, and what they exported.

    A step's key digests its artifact's content and uid, variations, the env keys it
    declares, its parameters, the user's ``--env``, the platform and its own dependencies'
    keys. A step run earlier in this command with the same key is reused from memory; one of
    an earlier command from the cache on disk (:func:`ckg.run.trust.cache_get`), unless
    ``no_cache`` or ``renew``; a step run now is written there unless ``no_cache``.
    """

    def __init__(self, home: Path, options, global_env: dict, platform_key: str):
        self.home = home
        self.options = options
        self.global_env = global_env
        self.platform_key = platform_key
        self.keys: dict[str, str] = {}  # step id -> key of its last run in this command
        self.exports: dict[str, dict] = {}

    def key(self, step, params: dict, digest: str) -> str:
        """The cache key of ``step`` run with ``params``, its artifact's ``digest``."""
        # The env a caller hands down changes with every caller; only the keys the step
        # itself declares (and the user's --env) decide what it produces, as in CM's cache.
        declared = declared_env(step.meta)
        parts = [
            digest,
            step.uid,
            sorted(step.variations),
            {k: v for k, v in step.env.items() if k in declared or k in self.global_env},
            params,
            self.global_env,
            self.platform_key,
            sorted(self.keys.get(a, a) for a in step.after),
        ]
        text = json.dumps(parts, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def seen(self, step, key: str) -> dict | None:
        """What ``step`` exported when it ran with ``key`` earlier in this command."""
        if step.id in self.exports and self.keys.get(step.id) == key:
            return self.exports[step.id]
        return None

    def stored(self, key: str) -> dict | None:
        """What a step with ``key`` exported in an earlier command, if it succeeded then."""
        if self.options.no_cache or self.options.renew:
            return None
        cached = trust.cache_get(self.home, key)
        return cached["env"] if cached and cached.get("status") == "ok" else None

    def store(self, step, key: str, exported: dict, run_uid: str) -> None:
        """Keep what ``step`` exported when it ran now, as ``run_uid``, on disk."""
        if not self.options.no_cache:
            trust.cache_put(
                self.home, key, {"status": "ok", "env": exported, "run": run_uid, "step": step.id}
            )

    def remember(self, step, key: str, exported: dict) -> None:
        """Reuse ``exported`` for ``step`` with ``key`` for the rest of this command."""
        self.keys[step.id] = key
        self.exports[step.id] = exported


class WorkflowPoint:
    """Runs grid points of a ``ckg.yaml`` workflow or notebook target and records each step.

    Parameters
    ----------
    command : Command
    cache : StepCache
        Shared by every point, so that a dependency runs once per command.
    """

    def __init__(self, command: Command, cache: StepCache):
        self.command = command
        self.cache = cache

    def run(self, executed: list, target, point: dict, report: Report) -> RunResult:
        """Run the ``executed`` steps in order, each dependency's exports handed to the
        steps after it, and the ``target`` step with the parameters of ``point``.

        Raises
        ------
        RunFailed
            A dependency did not succeed.
        """
        dep_env: dict = {}
        used: list[str] = []
        result = None
        for step in executed:
            if step is target:
                result = self._target(step, point, dep_env, used, report)
                used.append(step.uid)
                continue
            exported = self._dependency(step, dep_env, used, report)
            dep_env = {**dep_env, **exported}
            used.append(step.uid)
        return result

    def dry(self, executed: list, target, point: dict) -> list[dict]:
        """What running the ``executed`` steps would execute: each one's command, working
        folder and environment (a script's as :func:`script_dry` shows it)."""
        command = self.command
        shown = []
        for step in executed:
            params = point if step is target else {}
            workdir = command.home / "runs" / "<run-uid>"
            folder = command.checkouts.folder(step)
            if step.format in steps.SCRIPT_FORMATS:
                shown.append(script_dry(step, params, workdir, folder))
                continue
            prepared = self.prepare(step, params, {}, workdir)
            shown.append(
                {
                    "step": step.id,
                    "params": params,
                    "cwd": str(workdir),
                    "command": prepared.command,
                    "env": prepared.set_env,
                }
            )
        return shown

    def prepare(self, step, params: dict, dep_env: dict, workdir: Path) -> steps.Prepared:
        """The command and environment of ``step`` (:func:`ckg.run.steps.prepare`), wrapped
        to run in the ``--in-container`` image when there is one."""
        command = self.command
        folder = command.checkouts.folder(step)
        prepared = steps.prepare(
            step.format,
            step.meta,
            step_env=step.env,
            params=params,
            dep_env=dep_env,
            user_env=command.global_env,
            artifact_dir=folder,
            workdir=workdir,
        )
        image = command.options.in_container
        if image and prepared.command is not None:
            from ckg.run.container import find_engine, wrap

            engine = "docker" if command.options.dry_run else find_engine()
            prepared.command = wrap(
                prepared.command,
                image,
                engine=engine,
                workdir=workdir,
                artifact_dir=folder,
                env=prepared.set_env,
            )
        return prepared

    def _dependency(self, step, dep_env: dict, used: list[str], report: Report) -> dict:
        cache = self.cache
        key = cache.key(step, {}, self.command.checkouts.info(step.uid).get("digest") or "")
        exported = cache.seen(step, key)
        if exported is not None:
            report.cached_steps += 1
            return exported
        exported = cache.stored(key)
        if exported is not None:
            report.cached_steps += 1
        else:
            status, exported, result = self._execute(
                step, {}, dep_env, list(used), key, repeat=1, warmup=0, report=report
            )
            report.dependency_runs += 1
            if status != "ok":
                raise RunFailed(
                    f"dependency {step.id} {status} (exit {result.exit_code}); "
                    f"log: {Path(result.workdir) / LOG_NAME}"
                )
            cache.store(step, key, exported, result.uid)
        cache.remember(step, key, exported)
        return exported

    def _target(
        self, step, point: dict, dep_env: dict, used: list[str], report: Report
    ) -> RunResult:
        key = self.cache.key(step, point, self.command.checkouts.info(step.uid).get("digest") or "")
        _, _, result = self._execute(
            step,
            point,
            dep_env,
            list(used),
            key,
            repeat=self.command.options.repeat,
            warmup=self.command.warmup(),
            report=report,
        )
        return result

    def _execute(self, step, params, dep_env, used, key, *, repeat, warmup, report):
        """Execute ``step`` (measured ``repeat`` times after ``warmup``), record its Run,
        and return its status, what it exports, and its :class:`RunResult`."""
        command = self.command
        target = step.reason == "target"
        run_uid = command.target_uid() if target else "run-" + uuid.uuid4().hex
        workdir = command.home / "runs" / run_uid
        prepared = self.prepare(step, params, dep_env, workdir)
        env = prepared.environment(dict(os.environ))
        secrets = redact.combine(command.ambient, redact.secret_values(prepared.set_env, params))
        started = now()
        if prepared.command is not None:
            measured = measure_command(
                prepared.command,
                workdir=workdir,
                env=env,
                log_path=workdir / LOG_NAME,
                timeout_s=command.options.timeout_s or prepared.timeout_s,
                secrets=secrets,
                meter=command.meter,
                repeat=repeat,
                warmup=warmup,
            )
        else:
            workdir.mkdir(parents=True, exist_ok=True)
            measured = Measured()
        exported = {}
        if measured.status == "ok":
            exported = steps.exported_env(prepared.set_env, workdir, step.new_env_keys)
        figures_ = measured.figures()
        outcomes = measured.outcomes
        root, folder = command.checkouts.root(step), command.checkouts.folder(step)
        run_props = {
            "uid": run_uid,
            "status": measured.status,
            "started_at": started,
            "duration_s": sum(o.wall_s for o in outcomes),
            "exit_code": measured.exit_code,
            "command": prepared.command or "",
            "params": json.dumps(redact.mask_env(params, secrets), sort_keys=True),
            "variations": list(step.variations),
            "env": redact.env_text(prepared.set_env, secrets),
            "step": step.id,
            "cache_key": key,
            "repeat": len(outcomes),
            "warmup": warmup,
            "workdir": str(workdir),
            "log_tail": outcomes[-1].log_tail if outcomes else "",
            "env_full": redact.env_text(env, secrets),
            **prepared.run_props,
            **command.provenance.of(step.uid, root, folder),
        }
        records = record.run_records(
            run_props,
            artifact_uid=step.uid,
            figures=figures_,
            platform=command.platform,
            experiment=command.experiment,
            used=used,
        )
        if target:  # what it reproduces, written before MEASURED
            records.edges[:0] = command.reproduces.edges(run_uid, params)
        command.provenance.link_packages(records, run_uid)
        command.write(records, report, secrets)
        result = result_of(
            run_uid,
            params,
            figures_,
            status=measured.status,
            exit_code=measured.exit_code,
            workdir=str(workdir),
            log_tail=run_props["log_tail"],
        )
        return measured.status, exported, result


def script_dry(step, params: dict, workdir: Path, folder: Path) -> dict:
    """What a dry run shows of a script step: its hooks and native script, and the env the
    planner worked out (customize.py may change it when it runs)."""
    script = folder / "run.sh"
    return {
        "step": step.id,
        "params": params,
        "cwd": str(workdir),
        "command": str(script) if script.is_file() else None,
        "hooks": ["customize.py"] if (folder / "customize.py").is_file() else [],
        "env": step.env,
        "at_run_time": step.at_run_time,  # as the plan shows it: the guard the run decides
    }


def declared_env(meta: dict) -> set[str]:
    """Env keys a script's meta sets or maps inputs to, its variations' included.

    >>> sorted(declared_env({"env": {"A": 1}, "variations": {"v": {"default_env": {"B": 2}}},
    ...                      "input_mapping": {"in": "C"}}))
    ['A', 'B', 'C']
    """
    sections = [meta, *((meta.get("variations") or {}).values())]
    keys: set[str] = set()
    for section in sections:
        if isinstance(section, dict):
            for name in ("default_env", "env"):
                keys |= set(section.get(name) or {})
    keys |= set((meta.get("input_mapping") or {}).values())
    return keys


def figures(outcomes: list[Outcome], energies, reported: list[dict]) -> list[Figure]:
    """The figures of a step's executions: runtime, CPU times and peak memory of each
    outcome, energy per device and method, and the metrics its result files reported (one
    named as a measured figure is kept apart as ``reported_NAME``)."""
    if not outcomes:
        return []
    found = [
        Figure("runtime", [o.wall_s for o in outcomes], "s", "wallclock"),
        Figure("cpu_user_time", [o.user_s for o in outcomes], "s", "rusage"),
        Figure("cpu_system_time", [o.system_s for o in outcomes], "s", "rusage"),
    ]
    if all(o.peak_rss_bytes for o in outcomes):  # 0: nothing was spawned to measure
        found.append(
            Figure("memory", [float(o.peak_rss_bytes) for o in outcomes], "B", "psutil+rusage")
        )
    by_device: dict[tuple, Figure] = {}
    for per_run in energies:
        for fig in per_run:
            slot = (fig.metric, fig.device, fig.method)
            if slot in by_device:
                by_device[slot].values.extend(fig.values)
            else:
                by_device[slot] = Figure(
                    fig.metric, list(fig.values), fig.unit, fig.method, fig.device, dict(fig.extra)
                )
    found += by_device.values()
    names: dict[str, Figure] = {}
    for metrics in reported:
        for name, (value, unit) in metrics.items():
            if name in names:
                names[name].values.append(value)
            else:
                names[name] = Figure(name, [value], unit, "reported")
    # A reported figure with the name of a measured one (runtime, memory) is kept apart.
    taken = {f.metric for f in found}
    for name, fig in names.items():
        if name in taken:
            fig.metric = f"reported_{name}"
        found.append(fig)
    return found


def clear_outputs(workdir: Path) -> None:
    """Remove the result files a previous execution left in ``workdir``."""
    for name in _OUTPUTS:
        path = workdir / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def now() -> str:
    """This instant in UTC, to the millisecond, as ISO 8601 text."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")
