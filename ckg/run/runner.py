"""Run a target on this host: plan, execute each step, measure, journal, record.

For each point of the parameter grid the target's plan is executed in order. Dependency
steps (and post-dependencies) run once and are cached by a key of the artifact's digest,
variations, environment, parameters, platform and their own dependencies' keys; the target
runs ``warmup`` unmeasured times and then ``repeat`` measured times. Every executed step
becomes a ``Run`` with its ``Measurement`` nodes, journalled to disk first (see
:mod:`ckg.run.journal`) and then written to the graph. If the graph cannot be written, the
run goes on and its records wait in the journal for ``ckg db recover``.
"""

import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from ckg.core import redact
from ckg.core.errors import RunFailed, UsageError
from ckg.core.records import Node
from ckg.run import reproduces, steps
from ckg.run.checkouts import Checkouts, Provenance
from ckg.run.measure import EnergyMeter
from ckg.run.platform import detect_cached, platform_node
from ckg.run.points import (
    LOG_NAME,
    Command,
    Report,
    RunResult,
    StepCache,
    WorkflowPoint,
    now,
)
from ckg.run.preflight import Preflight
from ckg.run.record import Recorder
from ckg.run.script_point import ScriptPoint

__all__ = ["LOG_NAME", "Options", "Report", "RunResult", "experiment_node", "experiment_props",
           "grid_points", "run"]

#: Formats of artifacts a step needs without executing them: Python packages, images.
REQUIREMENTS = ("generic", "container")


@dataclass(slots=True)
class Options:
    """How to run: see :func:`run` for each field."""

    variations: tuple[str, ...] = ()
    env: dict = field(default_factory=dict)
    grid: dict | list = field(default_factory=dict)
    repeat: int = 1
    warmup: int | None = None
    no_cache: bool = False
    renew: bool = False
    trust: bool = False
    dry_run: bool = False
    timeout_s: float | None = None
    inputs: dict = field(default_factory=dict)
    reproduces: tuple[str, ...] = ()
    in_container: str = ""
    run_uids: tuple[str, ...] = ()
    experiment: str | dict | None = None
    folders_trusted: bool = True
    source_roots: dict | None = None


def run(store, home, target: str, options: Options | None = None, progress=None) -> Report:
    """Run ``target`` over the grid of ``options`` and record every run in ``store``.

    Parameters
    ----------
    store : GraphStore
        Where the target's plan comes from and every run is recorded.
    home : Path
        ckg's home: runs' working folders, the step cache, the journal, the trust list.
    target : str
        Uid, alias or tags of the artifact (as :func:`ckg.plan.plan` takes them).
    options : Options
        ``variations`` and ``env`` go to the planner; ``grid`` maps parameter names to value
        lists (a ``ckg.yaml`` parameter, or an env key of a CM/MLC script); ``repeat``
        measured executions after ``warmup`` unmeasured ones (default 1 when repeating);
        ``no_cache`` neither reads nor writes the step cache; ``renew`` re-runs cached steps
        and refreshes the cache; ``trust`` runs artifacts of untrusted sources this once;
        ``dry_run`` returns the commands and environments instead of running them;
        ``reproduces`` Result uids or specs every target run reproduces, beside the meta's
        ``reproduces:`` block (:mod:`ckg.results.reproduce`); ``in_container`` an image reference in
        which each workflow or notebook step runs, through docker or podman
        (:func:`ckg.run.container.wrap`); ``experiment`` the Experiment the runs join: the
        one with that uid or (only it) that name, else a new one of that name (default: a
        new one named as the target; see :func:`experiment_node`). A cluster worker
        (:mod:`ckg.run.cluster`) sets ``run_uids``, the uids of the target runs in grid order,
        and ``experiment`` to the ``uid`` and ``props`` of their Experiment, both fixed when
        the grid was submitted so that a re-executed task writes the same nodes; and
        ``folders_trusted`` False, since a folder named by a submitter is not this host's
        owner's code; and ``source_roots``, one dict for all its runs, so that a Git commit or
        an archive is fetched once per worker rather than once per grid point.
    progress : callable, optional
        Called as ``progress(done, total, result)``: once with ``(0, points, None)`` before
        the first grid point runs, then after each with the :class:`RunResult` it gave.

    Returns
    -------
    Report

    Raises
    ------
    UsageError
        Unknown target, undeclared variation, grid over an unknown parameter, repeat < 1,
        a ``reproduces`` uid or spec that names no result (before anything runs).
    RunFailed
        An untrusted source, a script that needs CM's engine, a failed dependency.
    InvalidInput
        An ``in_container`` image that a container engine would read as an option.
    """
    options = options or Options()
    if options.repeat < 1:
        raise UsageError(f"--repeat must be at least 1, got {options.repeat}")
    if options.in_container:
        from ckg.run.container import check_image, find_engine

        # Before anything is planned or runs: one clear line for a bad image or no engine.
        check_image(options.in_container)
        if not options.dry_run:
            find_engine()
    return _Runner(store, Path(home), target, options, progress).go()


def grid_points(grid: dict | list, step) -> list[dict]:
    """The points of ``grid`` (see :func:`ckg.formats.ckgyaml.expand_grid`) for the target
    ``step``; one empty point when there is no grid.

    Raises
    ------
    UsageError
        A point names what is not a parameter of ``step`` (:func:`parameters`).
    """
    if not grid:
        return [{}]
    # Here: ckg.yaml's reader loads the YAML and TOML parsers, which a run without a grid
    # (a cached script's) never uses.
    from ckg.formats.ckgyaml import expand_grid

    known = parameters(step)
    points = list(expand_grid(grid))
    for point in points:
        unknown = sorted(set(point) - set(known))
        if unknown:
            names = ", ".join(sorted(known)) or "none"
            raise UsageError(
                f"--grid: {', '.join(unknown)} is not a parameter of {step.alias} "
                f"(its parameters: {names})"
            )
    return points


class _Runner:
    """One ``ckg run`` command: plans the target (once per distinct environment), checks
    each plan (:class:`~ckg.run.preflight.Preflight`), and hands each grid point to the
    executor of the target's format (:mod:`ckg.run.points`)."""

    def __init__(self, store, home: Path, target: str, options: Options, progress=None):
        self.store = store
        self.home = home
        self.target = target
        self.options = options
        self.progress = progress or (lambda done, total, result: None)
        self.user_env = dict(options.env)
        self.plans: dict[str, object] = {}
        self.checkouts = Checkouts(store, home, options.source_roots)
        self.preflight = Preflight(store, home, self.checkouts, trusted=options.trust,
                                   folders_trusted=options.folders_trusted,
                                   in_container=options.in_container)

    def go(self) -> Report:
        options = self.options
        first = self._plan_for(self.user_env)
        target_step = _target_step(first)
        fmt = target_step.format
        points = grid_points(options.grid, target_step)
        # What each target run reproduces, resolved before anything runs.
        claims = reproduces.for_target(self.store, target_step, options.reproduces)
        platform = platform_node(detect_cached(self.home))
        experiment = self._experiment_node(target_step, points)
        report = Report(experiment.key, target_step.alias)
        command = Command(
            home=self.home, options=options,
            global_env={k: v for k, v in options.env.items() if ":" not in k},
            ambient=redact.ambient(),  # once: the same in every step's environment
            platform=platform, experiment=experiment, reproduces=claims,
            meter=None if options.dry_run else EnergyMeter(),
            checkouts=self.checkouts, provenance=Provenance(self.checkouts, self.home),
            recorder=Recorder(self.store, self.home), run_uids=list(options.run_uids))
        workflow = WorkflowPoint(command, StepCache(self.home, options, command.global_env,
                                                    platform.key))
        if not options.dry_run:
            self.progress(0, len(points), None)
        for point in points:
            plan = first if fmt == "ckg" else self._plan_for({**self.user_env, **point})
            executed = _executed(plan)
            self.preflight.check(executed)
            if options.dry_run:
                report.dry_run.extend(workflow.dry(executed, _target_step(plan), point))
                continue
            if fmt in steps.SCRIPT_FORMATS:
                script = ScriptPoint(command, self.store, plan, _target_step(plan), self.target)
                report.runs.append(script.run(point, report))
            else:
                report.runs.append(workflow.run(executed, _target_step(plan), point, report))
            self.progress(len(report.runs), len(points), report.runs[-1])
            if report.runs[-1].status == "interrupted":
                break  # Ctrl-C: that run is recorded as interrupted, the rest not run
        return report

    def _plan_for(self, env: dict):
        from ckg.plan import plan as make_plan

        key = json.dumps(env, sort_keys=True)
        if key not in self.plans:
            self.plans[key] = make_plan(self.store, self.target, self.options.variations, env,
                                        home=self.home)
            self.checkouts.load(self.plans[key].steps)
        return self.plans[key]

    def _experiment_node(self, step, points: list[dict]) -> Node:
        fixed = self.options.experiment
        if isinstance(fixed, dict):  # a cluster submission's, the same in every task
            return Node("Experiment", fixed["uid"], dict(fixed["props"]))
        return experiment_node(self.store, fixed, step.alias, step.uid, self.options,
                               len(points))


def experiment_node(store, name: str | None, alias: str, target_uid: str, options: Options,
                    points: int) -> Node:
    """The Experiment a grid of ``points`` runs of ``target_uid`` joins: the one ``name``
    names (its uid, or a name no other experiment has), whose properties stay as they are;
    else a new one with a new uid, named ``name`` or, without one, the target's ``alias``.

    Raises
    ------
    UsageError
        Several experiments are named ``name`` (each is named, to give one's uid).
    """
    from ckg.core.errors import NotFound
    from ckg.graph.runs import resolve_experiment

    if name:
        try:
            return Node("Experiment", resolve_experiment(store, name, prefix=False), {})
        except NotFound:
            pass
    return Node("Experiment", "exp-" + uuid.uuid4().hex[:16],
                experiment_props(name or alias, target_uid, options, points))


def experiment_props(name: str, target_uid: str, options: Options, points: int) -> dict:
    """The properties of a new Experiment ``name`` of a grid of ``points`` runs of
    ``target_uid``."""
    return {
        "name": name,
        "target": target_uid,
        "params_grid": json.dumps(redact.mask_value(options.grid), sort_keys=True),
        "points": points,
        "variations": list(options.variations),
        "repeat": options.repeat,
        "created_at": now(),
    }


def _executed(plan) -> list:
    """The plan's steps but the packages and images its target needs (a notebook's imports,
    an image's base): requirements of the environment, not steps ckg executes."""
    return [s for s in plan.steps if s.reason == "target" or s.format not in REQUIREMENTS]


def _target_step(plan):
    for step in plan.steps:
        if step.uid == plan.target and step.reason == "target":
            return step
    raise RunFailed(f"the plan for {plan.target} has no target step")


def parameters(step) -> set[str]:
    """What a grid may vary: a workflow's params, a notebook's parameters, or a script's env
    keys and inputs."""
    meta = step.meta
    if step.format == "ckg":
        return set(meta.get("params") or {})
    if step.format == "notebook":  # the cell tagged "parameters"
        return set(meta.get("parameters") or {})
    names = set(meta.get("default_env") or {}) | set(meta.get("env") or {})
    names |= set((meta.get("input_mapping") or {}).values())
    return names
