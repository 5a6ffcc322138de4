"""``ckg run``, ``ckg platform``, ``ckg trust`` and ``ckg demo``."""

import json
import shlex
from pathlib import Path

import typer

from ckg.cli.app import app, metric_columns, open_graph, params_text, print_rows
from ckg.cli.mlc import MLC_FLAGS, choose_target, mlc_call, print_logs, quiet_mode


@app.command("run", context_settings=MLC_FLAGS)
def run(
    ctx: typer.Context,
    target: str = typer.Argument(None, help="Artifact uid, alias or tags (or --tags=...)."),
    var: list[str] = typer.Option(None, "--var", help="Variation of the target, repeatable."),
    env: list[str] = typer.Option(None, "--env", help="K=V (or ALIAS:K=V), repeatable."),
    inputs: list[str] = typer.Option(
        None, "--input", help="K=V input of an MLC/CM script (as mlcr --K=V), repeatable."
    ),
    grid: list[str] = typer.Option(None, "--grid", help="NAME=V1,V2: one axis, repeatable."),
    repeat: int = typer.Option(1, "--repeat", help="Measured executions per grid point."),
    warmup: int = typer.Option(None, "--warmup", help="Unmeasured first runs (1 if repeating)."),
    timeout: float = typer.Option(None, "--timeout", help="Seconds per execution."),
    pareto: str = typer.Option(None, "--pareto", help="Print the front of OBJ1,OBJ2."),
    experiment: str = typer.Option(
        None,
        "--experiment",
        help="Add the runs to this experiment (its name or uid), made "
        "if none has it (a name several share is refused, their uids listed); default: a new "
        "one, named as the target.",
    ),
    no_cache: bool = typer.Option(False, "--no-cache", help="Neither use nor fill the cache."),
    renew: bool = typer.Option(False, "--renew", help="Re-run cached dependency steps."),
    trust: bool = typer.Option(False, "--trust", help="Run an untrusted source this once."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print commands and env only."),
    reproduces: list[str] = typer.Option(
        None,
        "--reproduces",
        help="A Result uid or paper=...,task=...,dataset=...,metric=...,model=... the runs "
        "reproduce, repeatable.",
    ),
    in_container: str = typer.Option(
        None,
        "--in-container",
        help="Run each workflow or notebook step inside IMAGE "
        "(docker run; needs docker or podman on PATH).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    source: str = typer.Option(
        None,
        "--source",
        help="Where several artifacts match: the one of this source (its "
        "name, location, last part of it, or uid start).",
    ),
    cluster: str = typer.Option(
        None, "--cluster", help="tls://HOST:8786: run each grid point on a `ckg worker` there."
    ),
    platform: list[str] = typer.Option(
        None,
        "--platform",
        help="With --cluster or --slurm: a worker label, or FIELD=VALUE "
        "such as gpu=H200, that the workers must offer; repeatable.",
    ),
    certs: Path = typer.Option(
        None,
        "--certs",
        help="With --cluster or --slurm: the folder of `ckg cluster certs` "
        "(default: $CKG_CLUSTER_CERTS, else $CKG_HOME/cluster).",
    ),
    insecure: bool = typer.Option(
        False,
        "--insecure",
        help="With --cluster: accept a tcp:// scheduler, unauthenticated: "
        "any local user, and anyone who reaches it, can run code on its workers.",
    ),
    slurm: str = typer.Option(
        None,
        "--slurm",
        help="PARTITION: run the grid points in Slurm jobs of it, each a "
        "`ckg worker`, cancelled when the grid ends.",
    ),
    jobqueue: str = typer.Option(
        None,
        "--jobqueue",
        help="pbs, lsf, sge or htcondor: batch jobs of that queue instead "
        "of Slurm's (its queue: --job queue=Q).",
    ),
    job: list[str] = typer.Option(
        None,
        "--job",
        help="With --slurm or --jobqueue: KEY=VALUE of each job (account, "
        "walltime, cores, memory, disk, gres, directive, prologue, jobs, queue, interface), over "
        "$CKG_HOME/config.toml's [slurm]; repeatable.",
    ),
) -> None:
    """Plan, execute, measure and record TARGET, over a grid of parameters.

    mlcr's flags work as mlcr reads them: --tags=A,B, -j, --env.KEY=V, --adr.NAME.KEY=V,
    --quiet (where several scripts match, the first instead of the list), -v (the log),
    --new (the target into a new cache entry), and any script input as --NAME=V.

    Example: ckg run sklearn-digits --grid model=knn,logreg --repeat 3 --pareto accuracy,latency

    Example: ckg run get,generic-python-lib,_numpy --json

    Example: ckg run --tags=get,python3 --version_min=3.8 --env.MLC_X=1 -j --quiet

    Example: ckg run sklearn-digits --grid model=knn --reproduces dataset=digits,model=knn

    Example: ckg run sklearn-digits --grid model=svm --experiment grid-a

    Example: ckg run sklearn-digits --grid model=knn,logreg --cluster tls://10.0.0.5:8786
    --platform gpu=H200

    Example: ckg --db bolt://graph:7687 run sklearn-digits --grid model=knn,svm --slurm gpu
    --job gres=gpu:1 --job walltime=00:30:00
    """
    from ckg.run.workflow import parse_env, parse_grid

    call = mlc_call([*([target] if target else []), *ctx.args], parse_env(env), parse_env(inputs))
    as_json = as_json or call.json
    objectives = ()
    if pareto is not None:
        # Only here: the fronts' module loads numpy (about 0.1 s), which a run does not need.
        from ckg.pareto.frontier import run_objectives

        objectives = run_objectives(pareto)
    options = {
        "variations": tuple(var or ()),
        "env": call.env,
        "inputs": call.inputs,
        "grid": parse_grid(grid),
        "repeat": repeat,
        "warmup": warmup,
        "timeout_s": timeout,
        "no_cache": no_cache,
        "renew": renew,
        "trust": trust,
        "dry_run": dry_run,
        "reproduces": tuple(reproduces or ()),
        **({"in_container": in_container} if in_container else {}),
        **({"experiment": experiment} if experiment else {}),
    }
    # A grid spread over machines says on stderr where each point ran, terminal or not.
    batch = slurm is not None or jobqueue is not None
    if batch and (cluster or (slurm is not None and jobqueue not in (None, "slurm"))):
        from ckg.core.errors import UsageError

        raise UsageError(
            "--slurm, --jobqueue and --cluster each say where the grid runs: "
            "give one (--jobqueue KIND with --job queue=Q for another job queue)"
        )
    distributed = bool(cluster) or batch
    with open_graph() as kg, RunProgress(not (as_json or dry_run), lines=distributed) as shown:
        target = choose_target(
            kg,
            call.target,
            source=source,
            quiet=quiet_mode(call),
            use_cache=not (no_cache or call.new),
        )
        if batch:
            try:
                report = kg.run_on_jobqueue(
                    target,
                    slurm,
                    kind=jobqueue or "slurm",
                    job=tuple(job or ()),
                    platform=tuple(platform or ()),
                    certs=certs,
                    progress=shown.update,
                    **options,
                )
            except KeyboardInterrupt:
                import sys

                print("ckg: interrupted: the grid's jobs are cancelled", file=sys.stderr)
                raise typer.Exit(130) from None
        elif cluster:
            from ckg.cli.cluster import warning_lines

            with warning_lines():
                report = kg.run_on_cluster(
                    target,
                    cluster,
                    platform=tuple(platform or ()),
                    certs=certs,
                    insecure=insecure,
                    progress=shown.update,
                    **options,
                )
        else:
            report = kg.run(target, progress=shown.update, **options)
    if dry_run:
        _print_dry_run(report, as_json)
        return
    front = kg.runs_front(report.runs, objectives) if objectives else None
    if call.verbose:
        print_logs(report)
    _print_report(report, as_json, objectives, front)


@app.command("platform")
def platform(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Print this host's fingerprint: CPU, cores, memory, GPUs, OS, Python, packages.

    Example: ckg platform --json
    """
    from ckg.run.platform import detect, platform_uid

    fingerprint = detect()
    info = {"uid": platform_uid(fingerprint), **fingerprint}
    if as_json:
        print(json.dumps(info, indent=2))
        return
    for key, value in info.items():
        shown = ", ".join(value) if isinstance(value, list) else value
        print(f"{key + ':':15} {shown if shown != '' else '-'}")


@app.command("trust")
def trust(source: str = typer.Argument(..., help="Source uid, URL, archive or folder.")) -> None:
    """Allow the artifacts of an ingested source, as last ingested, to run on this host.

    Example: ckg trust https://github.com/mlcommons/mlperf-automations
    """
    with open_graph() as kg:
        rows = kg.trust(source)
    for row in rows:
        content = (row["digest"] or "unknown")[:12]
        print(f"trusted {row['location']} ({row['kind']}, {row['uid']}) at content {content}")


@app.command("demo")
def demo(
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    path: str = typer.Option(None, "--path", help="Workflow folder (default: the example)."),
) -> None:
    """Ingest the scikit-learn example and its reference results, run its grid, print the front.

    Its reference table (reported-results.yaml) is imported first, so that the runs its
    reproduces: block names are recorded as reproducing it (ckg query paper-vs-reproduced).

    Example: ckg demo
    """
    import sys

    objectives = ("accuracy", "latency")
    try:
        with open_graph() as kg, RunProgress(not as_json) as progress:
            report = kg.demo(path, progress=progress.update)
    except KeyboardInterrupt:  # while no run was running (one that was ends recorded)
        print("ckg: interrupted before or between runs: each run that finished is recorded "
              "(ckg runs), the rest of the grid was not run", file=sys.stderr)  # fmt: skip
        raise typer.Exit(130) from None
    done = [run for run in report.runs if run.status == "ok"]  # an interrupted one measured none
    front = kg.runs_front(done, objectives) if done else None
    _print_report(report, as_json, objectives, front)


# On a narrow terminal the CPU times, then memory, then the whole process's runtime are left
# out first.
_OPTIONAL = (("cpu_user_time", "cpu_system_time"), ("memory",), ("runtime",))


class RunProgress:
    """Progress of a grid on stderr: when it is a terminal, a bar with an estimate of the time
    left and a line per run as it finishes, with its status, time and the worker it ran on;
    with ``lines``, those lines also when it is not."""

    def __init__(self, enabled: bool, lines: bool = False):
        import sys
        from collections import Counter

        self.enabled = enabled and sys.stderr.isatty()
        self.lines = lines
        self.bar = None
        self.task = None
        self.started = 0.0
        self.per_worker = Counter()

    def __enter__(self) -> "RunProgress":
        if self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

            self.bar = Progress(
                TextColumn("runs"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[left]}"),
                console=Console(stderr=True), transient=True,
            )  # fmt: skip
            self.bar.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.stop()

    def update(self, done: int, total: int, result, where: str = "") -> None:
        import sys
        import time

        line = ""
        if result is not None:
            seconds = result.metrics.get("runtime")
            line = f"[{done}/{total}] {_params(result)}: {result.status}"
            line += f"  {seconds:.1f} s" if seconds is not None else ""
            if where:
                self.per_worker[where] += 1
                line += f"  {where} ({self.per_worker[where]} there)"
        if self.bar is None:
            if line and self.lines:
                print(line, file=sys.stderr, flush=True)
            return
        if self.task is None:
            self.started = time.monotonic()
            self.task = self.bar.add_task("runs", total=total, left="")
        # The runs so far say how long the rest will take; the first says nothing yet.
        rest = (time.monotonic() - self.started) / done * (total - done) if done else None
        left = f"about {_duration(rest)} left" if rest else ""
        # Drawn now, not at rich's next tick: a run that ends within a tenth of a second
        # would otherwise never show its estimate.
        self.bar.update(self.task, completed=done, total=total, left=left, refresh=True)
        if line:
            self.bar.console.print(line, markup=False, highlight=False)


def _duration(seconds: float) -> str:
    """``seconds`` as a person reads a wait: ``40 s``, ``3 min``, ``1.5 h``.

    >>> [_duration(s) for s in (4.2, 95, 5400)]
    ['4 s', '2 min', '1.5 h']
    """
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _params(run) -> str:
    return params_text(run.params)


def _print_runs(report) -> None:
    """The run table: parameters, status if any run failed, then each metric."""
    names = metric_columns(m for r in report.runs for m in r.metrics)
    with_status = any(r.status != "ok" for r in report.runs)
    rows = [
        {"params": _params(run)}
        | ({"status": run.status} if with_status else {})
        | {m: run.metrics.get(m) for m in names}
        for run in report.runs
    ]
    units = {m: next((r.units[m] for r in report.runs if m in r.units), "") for m in names}
    title = f"{report.target}: experiment {report.experiment}"
    print_rows(rows, title=title, units=units, label="params", optional=_OPTIONAL)


def _print_steps(run) -> None:
    """The steps of one MLC/CM script run: what each executed, or that it was cached."""
    rows = []
    for step in run.steps:
        done = step["executed"]
        counted = [f"{n} x{done.count(n)}" if done.count(n) > 1 else n for n in dict.fromkeys(done)]
        what = "cached" if step["cached"] else ", ".join(counted) or "nothing to execute"
        rows.append(
            {
                "step": step["step"],
                "status": step["status"],
                "executed": what,
                "time": step["duration_s"],
            }
        )
    print_rows(rows, title="steps", units={"time": "s"}, label="executed")


def _front_json(front: list, objectives: tuple[str, ...]) -> list[dict]:
    """The front as ``--json`` has always given it: units in the keys, values as text."""
    rows = []
    for run in front:
        row = {"params": _params(run)}
        for name in objectives:
            unit = run.units.get(name, "")
            row[f"{name} ({unit})" if unit else name] = f"{run.metrics[name]:.4g}"
        row["run"] = run.uid[:12]
        rows.append(row)
    return rows


def _print_front(front: list, objectives: tuple[str, ...]) -> None:
    rows = [
        {"params": _params(r), **{n: r.metrics[n] for n in objectives}, "run": r.uid[:12]}
        for r in front
    ]
    units = {n: next((r.units.get(n, "") for r in front), "") for n in objectives}
    title = f"Pareto front of {', '.join(objectives)}"
    print_rows(rows, title=title, units=units, label="params")


def _print_report(report, as_json: bool, objectives: tuple[str, ...], front: list | None) -> None:
    import sys
    from dataclasses import asdict

    if as_json:
        data = asdict(report)
        if front is not None:
            data["front"] = _front_json(front, objectives)
        print(json.dumps(data, indent=2, default=str))
    else:
        _print_runs(report)
        if len(report.runs) == 1 and len(report.runs[0].steps) > 1:
            _print_steps(report.runs[0])
        print(
            f"{len(report.runs)} runs, {report.dependency_runs} dependency steps run, "
            f"{report.cached_steps} cached"
        )
        if front is not None:
            _print_front(front, objectives)
    _exit_on_trouble(report, sys.stderr)


def _exit_on_trouble(report, err) -> None:
    if report.unrecorded:
        print(
            f"ckg: error: {report.unrecorded} runs are only in the journal "
            f"({report.store_error}); run `ckg db recover` when the graph is back",
            file=err,
        )
    interrupted = [run for run in report.failed if run.status == "interrupted"]
    for run in report.failed:
        if run.status == "interrupted":
            continue
        tail = run.log_tail.strip().splitlines()[-1:] or [""]
        why = run.error or tail[0]
        print(f"ckg: run {run.uid} {run.status} (exit {run.exit_code}): {why}", file=err)
    for run in interrupted:  # Ctrl-C: the runner stopped the grid after recording this one
        print(f"ckg: interrupted: run {run.uid} ({_params(run)}) is recorded with status "
              f"interrupted; {len(report.runs) - 1} runs finished before it, the rest of the "
              "grid was not run", file=err)  # fmt: skip
    if interrupted:
        raise typer.Exit(130)
    if report.unrecorded or report.failed:
        raise typer.Exit(1)


def _print_dry_run(report, as_json: bool) -> None:
    if as_json:
        print(json.dumps(report.dry_run, indent=2))
        return
    for step in report.dry_run:
        params = " ".join(f"{k}={v}" for k, v in step["params"].items())
        print(f"# {step['step']}" + (f"  [{params}]" if params else ""))
        if step.get("at_run_time"):
            print(f"# decided at run time: {step['at_run_time']}")
        print(f"cd {step['cwd']}")
        for key, value in sorted(step["env"].items()):
            if isinstance(value, list):  # a planner path list
                value = ":".join(str(v) for v in value)
            if key.startswith("+"):  # a path list ckg prepends to
                print(f'export {key[1:]}={shlex.quote(str(value))}:"${key[1:]}"')
            else:
                print(f"export {key}={shlex.quote(str(value))}")
        if step.get("hooks"):
            print("# customize.py runs around it and may change this env")
        print(step["command"] or "# (no native script)")
        print()
