"""``ckg tune``: a search over a target's parameters whose trials are runs of one Experiment.

Each trial is one grid point of ``ckg run``, recorded as every run is (platform, provenance,
repeats, energy) in the tune's Experiment. Trial ``n`` (0 to ``budget - 1``) always has the
Run uid :func:`trial_run_uid` gives it, so the graph is the study's state: ``--resume``
reads the Runs of the Experiment back into a new Optuna study (:meth:`Search.add`) and runs
only the numbers that have no finished Run; a trial cut off by a kill runs again under the
same uid, which overwrites what it left instead of adding a second Run.

The Experiment keeps what defines the study (``tune_space``, ``tune_objectives``,
``tune_sampler``, ``tune_seed``, ``tune_budget``), so that a resume with another space or
objectives is refused rather than mixed in.
"""

import hashlib
from dataclasses import dataclass, field, replace

from ckg.core import metrics
from ckg.core.errors import NotFound, UsageError, did_you_mean
from ckg.run.runner import Options, experiment_props, parameters
from ckg.tune.search import Search, check_sampler
from ckg.tune.space import Param, grid, nearest, parse_space, point_key
from ckg.tune.trials import Here, OnCluster, OnJobqueue

#: Run statuses that say a trial is over; a ``running`` (claimed) or ``lost`` one runs again.
FINISHED = ("ok", "failed", "timeout", "refused")
#: Points in a row the sampler may propose that were tried already before the search stops,
#: on a space not listed (:data:`GRID_LIMIT`): past that, it is as good as exhausted.
MAX_REPEATS = 200
#: Points tried already the sampler may propose in a row, on a space whose points are listed,
#: before the last gives way to the nearest untried one. Each is told its values again and the
#: sampler draws its candidates anew, often reaching an untried point of the region it models
#: as good, where the nearest point is only next to the one proposed: on bench/tune_bench.py's
#: accuracy/latency front (seeds 100-129, not those its tables show), 3 asks rather than 1
#: took the hypervolume after 11 and 15 trials from 91.6 and 95.5% of the grid's to 94.8 and
#: 97.2%, for at most 3 asks of the sampler per trial.
ASKS = 3
#: The most points a space of choices and integers has for its points to be listed, so that
#: a point tried already gives way to the nearest untried one: past that, listing them and
#: measuring distances would cost more per trial than the rare repeats a space that large
#: makes.
GRID_LIMIT = 100_000


@dataclass(slots=True)
class Trial:
    """One trial: its number, its Run's uid, its point, the Run's status and the objectives'
    values (None when it failed or did not measure one of them)."""

    number: int
    run: str
    params: dict
    status: str
    values: list[float] | None
    error: str = ""


@dataclass(slots=True)
class TuneReport:
    """What :func:`tune` did: the Experiment, every trial by number, how many were recorded
    before this call (``resumed``), each objective's unit, the front's trials, its reference
    point and hypervolume, ``stopped`` saying why fewer than ``budget`` trials ran, and
    ``study``, the Optuna study the trials were told to (those recorded before as
    :meth:`ckg.tune.search.Search.add` rebuilt them), their values as
    :func:`ckg.tune.search.as_told` gives them: a failed trial's state is ``FAIL``."""

    experiment: str
    name: str
    target: str
    objectives: list[tuple[str, str]]
    budget: int
    units: dict[str, str] = field(default_factory=dict)
    trials: list[Trial] = field(default_factory=list)
    resumed: int = 0
    front: list[Trial] = field(default_factory=list)
    reference: list[float] = field(default_factory=list)
    hypervolume: float | None = None
    stopped: str = ""
    study: object = field(default=None, repr=False, compare=False)

    @property
    def failed(self) -> list[Trial]:
        return [t for t in self.trials if t.values is None]


def tune_objectives(spec: str | list[str]) -> list[tuple[str, str]]:
    """The objectives ``--objectives`` names, each with the direction the metric registry
    gives it, canonical names.

    Raises
    ------
    UsageError
        No name, a name twice, or a metric with no known direction.

    Examples
    --------
    >>> tune_objectives("accuracy, latency")
    [('accuracy', 'max'), ('latency', 'min')]
    """
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    names = [n.strip() for n in items if n.strip()]
    if not names:
        raise UsageError("--objectives expects METRIC[,METRIC...], e.g. accuracy,latency")
    found = []
    for name in names:
        metric = metrics.directed(name, "--objectives")
        found.append((metric.name, metric.direction))
    if len({n for n, _ in found}) != len(found):
        raise UsageError(f"--objectives names a metric twice: {spec!r}")
    return found


def trial_run_uid(experiment: str, number: int) -> str:
    """The uid of the Run of trial ``number`` of the tune ``experiment``.

    >>> trial_run_uid("exp-1", 0) == trial_run_uid("exp-1", 0) != trial_run_uid("exp-1", 1)
    True
    """
    return "run-" + hashlib.sha256(f"{experiment}/trial/{number}".encode()).hexdigest()[:32]


def tune(
    store,
    home,
    target: str,
    space: list[str],
    objectives,
    *,
    budget: int,
    sampler: str = "tpe",
    seed: int | None = 0,
    experiment: str | None = None,
    resume: bool = False,
    reference: list[float] | None = None,
    options: Options | None = None,
    progress=None,
    cluster: str | None = None,
    platform=(),
    certs=None,
    insecure: bool = False,
    jobs=None,
    db: str = "embedded",
) -> TuneReport:
    """Search ``space`` for the front of ``objectives``, one recorded run per trial.

    Parameters
    ----------
    store : GraphStore
        Where the target is found and every trial recorded.
    home : Path
        ckg's home, as :func:`ckg.run.run` takes it.
    target : str
        Uid, alias or tags of the artifact whose parameters are searched.
    space : list of str
        ``--space`` values (:mod:`ckg.tune.space`); each names a parameter of the target.
    objectives : str or list of str
        Metrics the registry gives a direction (:func:`tune_objectives`).
    budget : int
        Trials in all, those of a resumed study included.
    sampler, seed
        The Optuna sampler (:data:`ckg.tune.search.SAMPLERS`) and its seed.
    experiment : str, optional
        The tune's Experiment name (default ``tune-ALIAS``), or, with ``resume``, its name or uid.
    resume : bool
        Continue the Experiment ``experiment`` names: its finished trials are told to the
        sampler, and the rest of the budget runs.
    reference : list of float, optional
        The hypervolume's reference point, one value per objective; default the worst value
        of each objective over the trials so far (as ``ckg pareto`` takes it).
    options : Options, optional
        How each trial runs (``repeat``, ``warmup``, ``timeout_s``, ``env``...); its grid
        and experiment are the tune's.
    progress : callable, optional
        Called as ``progress(report, trial)`` after each trial is recorded, the report's
        ``front`` and ``hypervolume`` those of the trials so far.
    cluster : str, optional
        A Dask scheduler (``tls://HOST:8786``): the trials run on its ``ckg worker``
        processes, one per worker at a time, the sampler told of each as it finishes and
        asked for the next (:class:`ckg.tune.trials.OnCluster`; ``platform``, ``certs`` and
        ``insecure`` as :meth:`ckg.api.KnowledgeGraph.run_on_cluster` takes them). Default:
        one after another on this host.
    jobs : ckg.run.cluster.jobqueue.Jobs, optional
        Instead of ``cluster``: the trials run on ``ckg worker`` processes in batch jobs of
        Slurm (or another job queue), submitted here and cancelled when the tune ends, fails
        or is interrupted, one trial per job at a time (:class:`ckg.tune.trials.OnJobqueue`;
        ``db`` the graph as the jobs name it, ``platform`` and ``certs`` as
        :func:`ckg.run.cluster.jobqueue.run_on_jobqueue` takes them).

    Returns
    -------
    TuneReport
        The front is written back (:func:`ckg.pareto.frontier.pareto`) when there are two
        objectives or more and two trials measured them.

    Raises
    ------
    UsageError
        A bad space, objective, sampler or budget; a space parameter that is not one of the
        target's; a new tune whose name an experiment has, or a resumed one whose space or
        objectives differ from those recorded.
    NotFound
        ``resume`` with no experiment of that name.
    """
    params = parse_space(space)
    goals = tune_objectives(objectives)
    if budget < 1:
        raise UsageError(f"--budget must be at least 1, got {budget}")
    if cluster is not None and jobs is not None:
        raise UsageError(
            "--slurm, --jobqueue and --cluster each say where the trials run: give one"
        )
    if reference is not None and len(reference) != len(goals):
        raise UsageError(f"--reference needs {len(goals)} numbers, one per objective")
    options = options or Options()
    step = _target_step(store, home, target, options)
    _check_names(params, step)
    check_sampler(sampler)
    fixed = _experiment(
        store,
        experiment or f"tune-{step.alias}",
        resume,
        step,
        options,
        {
            "tune_space": [p.spec() for p in params],
            "tune_objectives": [f"{n}:{d}" for n, d in goals],
            "tune_sampler": sampler,
            "tune_seed": seed,
            "tune_budget": budget,
        },
    )
    report = TuneReport(fixed["uid"], fixed["props"]["name"], step.alias, goals, budget)
    recorded = _recorded(store, fixed["uid"], budget, goals, report.units) if resume else {}
    # Seeded past the trials recorded: the seed alone would replay the first trials' points.
    later = None if seed is None else seed + len(recorded)
    search = Search(params, goals, sampler, later)
    seen: dict[str, list[float] | None] = {}
    for trial in recorded.values():
        search.add(trial.params, trial.values)
        seen[point_key(trial.params)] = trial.values
    report.trials = sorted(recorded.values(), key=lambda t: t.number)
    report.resumed = len(recorded)
    report.study = search.study
    points = grid(params, GRID_LIMIT)
    listed = None if points is None else {point_key(p): p for p in points}
    each = replace(options, experiment=fixed, dry_run=False)
    todo = [n for n in range(budget) if n not in recorded]
    if cluster is not None:
        trials = OnCluster(
            store, home, step.uid, each, cluster, platform=platform, certs=certs, insecure=insecure
        )
    elif jobs is not None and todo:  # no job submitted for a resumed tune that is over
        trials = OnJobqueue(
            store, home, step.uid, each, jobs, db=db, trials=len(todo), platform=platform,
            certs=certs,
        )  # fmt: skip
    else:
        trials = Here(store, home, step.uid, each)
    running: dict[int, tuple[int, dict]] = {}
    with trials:
        while running or (todo and not report.stopped):
            while todo and len(running) < trials.slots:
                asked = ask_untried(search, seen, listed)
                if asked is None:
                    report.stopped = _why_stopped(listed)
                    break
                number = todo.pop(0)
                running[number] = asked
                # Running: proposed again meanwhile, it is told failed rather than run twice.
                seen[point_key(asked[1])] = None
                trials.start(number, asked[1], trial_run_uid(fixed["uid"], number))
            if not running:
                break
            number, outcome = trials.finished()
            told, point = running.pop(number)
            trial = Trial(
                number,
                trial_run_uid(fixed["uid"], number),
                point,
                outcome["status"],
                _values(outcome["metrics"], goals),
                outcome["error"],
            )
            report.units |= {n: outcome["units"][n] for n, _ in goals if n in outcome["units"]}
            search.tell(told, trial.values)
            seen[point_key(point)] = trial.values
            report.trials.append(trial)
            _rank(report, reference)
            if progress:
                progress(report, trial)
    report.trials.sort(key=lambda t: t.number)
    _rank(report, reference)
    _write_front(store, report, reference)
    return report


def _why_stopped(listed: dict | None) -> str:
    if listed is not None:
        return f"the space has {len(listed)} points, every one tried"
    return f"the sampler proposed only points tried already, {MAX_REPEATS} times in a row"


def _target_step(store, home, target: str, options: Options):
    from ckg.plan import plan as make_plan

    plan = make_plan(store, target, options.variations, options.env, home=home)
    return next(s for s in plan.steps if s.uid == plan.target and s.reason == "target")


def _check_names(space: tuple[Param, ...], step) -> None:
    known = parameters(step)
    for param in space:
        if param.name not in known:
            raise UsageError(
                f"--space {param.spec()!r}: {param.name} is not a parameter of {step.alias}"
                f"{did_you_mean(param.name, known)} (its parameters: "
                f"{', '.join(sorted(known)) or 'none'})"
            )


def _experiment(store, name: str, resume: bool, step, options: Options, study: dict) -> dict:
    """The tune's Experiment as a cluster task fixes it, ``{"uid", "props"}``: the one
    ``name`` names when resuming (its study checked), else a new one."""
    import uuid

    from ckg.graph.runs import resolve_experiment

    if resume:
        uid = resolve_experiment(store, name)
        props = {k: v for k, v in store.get_node("Experiment", uid).items() if k != "uid"}
        for key, flag in (("tune_space", "--space"), ("tune_objectives", "--objectives")):
            if list(props.get(key) or []) != study[key]:
                was = " ".join(props.get(key) or []) or "not a tune"
                raise UsageError(
                    f"--resume: experiment {props.get('name')} ({uid}) was tuned "
                    f"with {flag} {was}, not {' '.join(study[key])}"
                )
        return {"uid": uid, "props": {**props, "tune_budget": study["tune_budget"]}}
    try:
        uid = resolve_experiment(store, name, prefix=False)
    except NotFound:
        props = experiment_props(name, step.uid, options, study["tune_budget"])
        return {"uid": "exp-" + uuid.uuid4().hex[:16], "props": {**props, **study}}
    raise UsageError(
        f"experiment {name!r} exists ({uid}): --resume continues it, "
        "--experiment NAME starts another"
    )


def _recorded(store, experiment: str, budget: int, goals, units: dict) -> dict[int, Trial]:
    """The finished trials of ``experiment`` among the first ``budget``, by number; the
    units they measured added to ``units``."""
    from ckg.graph.browse import run_table

    numbers = {trial_run_uid(experiment, n): n for n in range(budget)}
    found = {}
    for row in run_table(store, experiment=experiment, limit=10 * budget + 100):
        number = numbers.get(row["run"])
        if number is None or row["status"] not in FINISHED:
            continue
        measured = {m["metric"]: m["value"] for m in row["measurements"]}
        units.update(
            {
                m["metric"]: m["unit"] or ""
                for m in row["measurements"]
                if m["metric"] in dict(goals)
            }
        )
        values = _values(measured, goals) if row["status"] == "ok" else None
        found[number] = Trial(number, row["run"], row["params"], row["status"], values)
    return found


def _values(measured: dict, goals) -> list[float] | None:
    """The objectives' values of a run, None where it lacks one (then it counts as failed)."""
    values = [measured.get(name) for name, _ in goals]
    return None if any(v is None for v in values) else [float(v) for v in values]


def ask_untried(search: Search, seen: dict, listed: dict | None):
    """A trial of a point not tried yet, ``(optuna number, point)``.

    A point tried already (a key of ``seen``, :func:`ckg.tune.space.point_key`, whose value is
    what it measured, None for a failure or a trial still running) is told those values
    again, so that the sampler learns from it without a second run, and the sampler is asked
    again. On a space whose points are ``listed`` (by key; :func:`ckg.tune.space.grid`), the
    :data:`ASKS`-th tried point in a row gives way to the untried point nearest to it
    (:func:`ckg.tune.space.nearest`), so that the search goes on until every point is tried,
    each once; on another, the sampler is asked up to :data:`MAX_REPEATS` times in a row.
    None when every listed point is tried, or the sampler keeps proposing tried ones.
    ``bench/tune_bench.py`` drives its searches with it too.
    """
    untried = None if listed is None else [p for k, p in listed.items() if k not in seen]
    if untried == []:
        return None
    for asks in range(1, MAX_REPEATS + 1):
        number, point = search.ask()
        key = point_key(point)
        if key not in seen:
            return number, point
        search.tell(number, seen[key])
        if untried is not None and asks == ASKS:
            return search.ask_for(nearest(point, untried, search.space, search.rng))
    return None


def _rank(report: TuneReport, reference) -> None:
    """The report's front, reference point and hypervolume over its trials so far."""
    import numpy as np

    from ckg.pareto import hypervolume, nondominated

    done = [t for t in report.trials if t.values is not None]
    if not done:
        return
    values = np.array([t.values for t in done], dtype=float)
    directions = [d for _, d in report.objectives]
    on_front = nondominated(values, directions)
    best_first = -1 if directions[0] == "max" else 1
    report.front = sorted(
        (t for t, keep in zip(done, on_front, strict=True) if keep),
        key=lambda t: t.values[0] * best_first,
    )
    report.reference = (
        list(reference)
        if reference is not None
        else [
            float(values[:, i].max() if d == "min" else values[:, i].min())
            for i, d in enumerate(directions)
        ]
    )
    report.hypervolume = hypervolume(values, report.reference, directions)


def _write_front(store, report: TuneReport, reference) -> None:
    """Write the front back as ``ckg pareto --experiment`` does, where there is one."""
    from ckg.pareto.frontier import pareto

    if len(report.objectives) < 2 or len([t for t in report.trials if t.values]) < 2:
        return
    pareto(
        store,
        [f"{n}:{d}" for n, d in report.objectives],
        experiment=report.experiment,
        reference=reference,
    )
