"""``ckg run --cluster``: each grid point a Dask task, collected as the workers finish.

The grid is checked here as a local run checks it (target, parameters, what the runs
reproduce), without running anything; then each point becomes a task for
:func:`ckg.run.cluster.worker.run_task` that asks for the ``--platform`` resources. Run and
Experiment uids are fixed here, so a task that Dask re-executes after losing a worker writes
the same Run; a task whose worker was lost for good leaves its claimed Run marked ``lost``.
"""

import json
import uuid
from dataclasses import replace

from ckg.core.errors import RunFailed, UsageError
from ckg.formats.ckgyaml import expand_grid
from ckg.graph.execution import artifact_sources
from ckg.plan import plan as make_plan
from ckg.run.cluster import certs as cluster_certs
from ckg.run.cluster import resources
from ckg.run.provenance import folder_manifest
from ckg.run.runner import Options, Report, RunResult, experiment_node
from ckg.run.runner import run as run_here

#: With --cluster, the grid axis that names the workers' label or platform field, per point.
PLATFORM_AXIS = "platform"
#: Seconds to wait for the scheduler to answer before giving up.
CONNECT_TIMEOUT_S = 10


def task_specs(
    store,
    home,
    target: str,
    options: Options,
    scheduler: str,
    platform=(),
    folders: bool = False,
    flag: str = "--cluster",
) -> list[dict]:
    """One task per grid point: the target, the point, the resources it needs (``platform``
    and the point's own ``platform`` axis), the options a worker runs it with, its run uid,
    the Experiment they share, and each source by location and digest; with ``folders``
    (workers of this user on a shared filesystem, :mod:`~ckg.run.cluster.jobqueue`'s), a
    folder source by location and the manifest of its content
    (:func:`ckg.run.provenance.folder_manifest`), which each worker checks. ``flag`` is the
    option that sent the grid there, as the errors name it.

    Raises
    ------
    UsageError, NotFound, RunFailed
        As a local run would before running anything; ``--trust`` or ``--dry-run`` with
        ``flag``; without ``folders``, a target or dependency from a folder, which no
        other host has.
    """
    if options.trust:
        raise UsageError(
            f"--trust does not apply with {flag}: each worker runs only what "
            "its own trust list allows"
        )
    if options.dry_run:
        raise UsageError(f"--dry-run does not apply with {flag}: each worker plans for itself")
    points = list(expand_grid(options.grid)) if options.grid else [{}]
    # The grid axis `platform` picks workers; every other axis is the target's parameter.
    wanted = [point.pop(PLATFORM_AXIS, None) for point in points]
    distinct = [json.loads(p) for p in dict.fromkeys(json.dumps(p, sort_keys=True) for p in points)]
    checked = run_here(
        store,
        home,
        target,
        replace(
            options,
            grid=distinct if options.grid else {},
            dry_run=True,
            trust=True,
            folders_trusted=folders,
        ),
    )
    plan = make_plan(store, target, options.variations, options.env, home=home)
    rows = artifact_sources(store, [s.uid for s in plan.steps])
    sources = {
        r["source_uid"]: {
            "location": r["location"],
            "kind": r["source_kind"],
            "digest": r["source_digest"],
        }
        for r in rows
        if r["source_uid"]
    }
    for source in sources.values():
        if source["kind"] == "dir":  # only with ``folders``: the check above refused it
            source["manifest"] = folder_manifest(source["location"])
    # Fixed here, so that every task joins it: the one --experiment names, or a new one.
    node = experiment_node(
        store, options.experiment, checked.target, plan.target, options, len(points)
    )
    experiment = {"uid": node.key, "props": {**node.props, "cluster": scheduler}}
    carried = {
        "variations": list(options.variations),
        "env": options.env,
        "inputs": options.inputs,
        "repeat": options.repeat,
        "warmup": options.warmup,
        "timeout_s": options.timeout_s,
        "no_cache": options.no_cache,
        "renew": options.renew,
        "reproduces": list(options.reproduces),
        "in_container": options.in_container,
    }
    return [
        {
            "run_uid": "run-" + uuid.uuid4().hex,
            "target": target,
            "point": point,
            "shown": {PLATFORM_AXIS: where_to, **point} if where_to else point,
            "need": resources.required([*platform, *([str(where_to)] if where_to else [])]),
            "options": carried,
            "experiment": experiment,
            "sources": sources,
        }
        for point, where_to in zip(points, wanted, strict=True)
    ]


def run_on_cluster(
    store,
    home,
    target: str,
    options: Options,
    scheduler: str,
    *,
    platform=(),
    certs=None,
    insecure: bool = False,
    progress=None,
) -> Report:
    """Run the grid of ``options`` on the workers of the Dask ``scheduler``.

    Parameters
    ----------
    store : GraphStore
        The graph the workers record into (the same database, reached from here).
    home : Path
        ckg's home here: the plan's memory, and the certificates' default folder.
    scheduler : str
        ``tls://HOST:PORT``; ``tcp://`` only with ``insecure``, which warns
        (:func:`ckg.run.cluster.resources.check_address`).
    certs : path, optional
        The folder of ``ckg cluster certs`` (:func:`ckg.run.cluster.certs.folder` when None).
    platform : sequence of str
        Labels or ``FIELD=value`` (``gpu=H200``) every worker that runs a point must offer;
        a grid axis ``platform`` (``--grid platform=arm,h200``) adds one per point, so that
        one experiment compares the same points across kinds of hardware.
    progress : callable, optional
        Called as ``progress(done, total, result, where)`` as each task finishes, with its
        :class:`RunResult` and the worker it ran on (:func:`where`), as
        :func:`ckg.run.run` calls it (without ``where``).

    Returns
    -------
    Report
        One :class:`RunResult` per grid point, in grid order; a failure's ``error`` names
        the worker it happened on.

    Raises
    ------
    RunFailed
        No scheduler answers at ``scheduler``, or none of its workers offers what a point
        needs (checked when the grid is submitted; a worker lost later is waited for).
    UsageError
        A malformed address, ``tcp://`` without ``insecure``, certificates missing or
        readable by others (:func:`ckg.run.cluster.certs.files`).
    """
    address = resources.check_address(scheduler, "--cluster", insecure=insecure)
    resources.require_dask()
    resources.required(platform)  # a malformed --platform before anything else
    security = cluster_certs.security_for(address, "client", certs, home)
    specs = task_specs(store, home, target, options, address, platform)
    from distributed import Client

    try:
        client = Client(address, security=security, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise RunFailed(f"--cluster {address}: no Dask scheduler answered ({exc})") from None
    with client:
        check_offers(client, specs, f"--cluster {address}")
        results = collect(client, specs, progress)
    return report(store, specs, results)


def report(store, specs: list[dict], results: dict) -> Report:
    """The :class:`Report` of the grid of ``specs`` from the ``results`` of
    :func:`collect`; the Runs of points lost for good marked ``lost`` in ``store``."""
    lost = [uid for uid, done in results.items() if done["status"] == "lost"]
    if lost:
        store.update_nodes(
            "Run",
            lost,
            {"status": "lost", "error": "its worker was lost"},
            where={"status": "running"},
        )
    fixed = specs[0]["experiment"]
    made = Report(fixed["uid"], fixed["props"].get("name") or specs[0]["target"])
    for spec in specs:
        done = results[spec["run_uid"]]
        made.runs.append(_run_result(done))
        made.dependency_runs += done.get("dependency_runs", 0)
        made.cached_steps += done.get("cached_steps", 0)
        made.unrecorded += done.get("unrecorded", 0)
        made.store_error = made.store_error or done.get("store_error", "")
    return made


def check_offers(client, specs: list[dict], where_to: str) -> None:
    """Refuse a grid one of whose points no worker of ``client``'s scheduler offers.

    Raises
    ------
    RunFailed
        Naming what the point asks for and what the workers offer.
    """
    offers = [
        set(w.get("resources") or {})
        for w in client.scheduler_info(n_workers=-1)["workers"].values()
    ]
    for need in {tuple(sorted(spec["need"])) for spec in specs}:
        if not any(set(need) <= offer for offer in offers):
            shown = ", ".join(sorted(set().union(*offers) - {resources.SLOT})) or "nothing"
            raise RunFailed(
                f"{where_to}: no `ckg worker` there offers "
                f"{', '.join(n for n in need if n != resources.SLOT) or 'a ckg slot'} "
                f"(its workers offer: {shown})"
            )


def collect(client, specs: list[dict], progress=None) -> dict:
    """Send each of ``specs`` to ``client``'s workers as a task; what each gave, by run uid,
    as they finish (``progress`` as :func:`run_on_cluster` calls it)."""
    from distributed import as_completed

    from ckg.run.cluster.worker import run_task

    progress = progress or (lambda *finished: None)
    futures = {
        client.submit(
            run_task, spec, key=f"ckg-{spec['run_uid']}", resources=spec["need"], pure=False
        ): spec
        for spec in specs
    }
    results = {}
    for future in as_completed(futures, loop=client.loop):
        spec = futures[future]
        try:
            done = future.result()
        except Exception as exc:  # noqa: BLE001 - KilledWorker, cancelled: lost
            done = {
                "uid": spec["run_uid"],
                "status": "lost",
                "error": f"{type(exc).__name__}: {exc}",
            }
        done["params"] = spec["shown"]
        results[spec["run_uid"]] = done
        progress(len(results), len(specs), _run_result(done), where(done))
    return results


def where(done: dict) -> str:
    """The worker a result came from, for messages: address, labels, platform, and the
    Slurm job it runs in.

    >>> where({"worker": "tcp://10.0.0.5:4100", "labels": ["arm"], "platform": "platform-1"})
    'worker tcp://10.0.0.5:4100 [arm] on platform-1'
    >>> where({"worker": "tls://10.0.0.7:4100", "platform": "platform-2", "slurm_job": "41",
    ...        "slurm_node": "gpu07"})
    'worker tls://10.0.0.7:4100 on platform-2 (Slurm job 41 on gpu07)'
    """
    if not done.get("worker"):
        return "no worker"
    labels = f" [{','.join(done['labels'])}]" if done.get("labels") else ""
    job = (
        f" (Slurm job {done['slurm_job']} on {done.get('slurm_node') or '?'})"
        if done.get("slurm_job")
        else ""
    )
    return f"worker {done['worker']}{labels} on {done.get('platform', '?')}{job}"


def _run_result(done: dict) -> RunResult:
    error = done.get("error", "")
    if done["status"] != "ok":
        last = (done.get("log_tail") or "").strip().splitlines()[-1:] or ["no log"]
        error = f"on {where(done)}: {error or last[0]}"
    return RunResult(
        uid=done["uid"],
        params=done["params"],
        status=done["status"],
        exit_code=done.get("exit_code", 1 if done["status"] != "ok" else 0),
        metrics=done.get("metrics", {}),
        units=done.get("units", {}),
        workdir=done.get("workdir", ""),
        log_tail=done.get("log_tail", ""),
        error=error,
    )
