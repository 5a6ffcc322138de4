"""``ckg tune``."""

import json
from pathlib import Path

import typer

from ckg.cli.app import app, open_graph, params_text, print_rows


@app.command("tune")
def tune(
    target: str = typer.Argument(..., help="Artifact uid, alias or tags."),
    space: list[str] = typer.Option(
        ...,
        "--space",
        help="One parameter: NAME=V1,V2 | NAME=int(LOW,HIGH[,STEP]) | "
        "NAME=float(LOW,HIGH) | NAME=log(LOW,HIGH), optionally ' if OTHER=V1,V2'; repeatable.",
    ),
    objectives: str = typer.Option(
        ..., "--objectives", help="METRIC1,METRIC2: metrics the registry gives a direction."
    ),
    budget: int = typer.Option(..., "--budget", help="Trials in all, a resumed tune's included."),
    sampler: str = typer.Option("tpe", "--sampler", help="tpe, nsga2, gp or random."),
    seed: int = typer.Option(0, "--seed", help="The sampler's seed."),
    experiment: str = typer.Option(
        None,
        "--experiment",
        help="The tune's experiment name (default tune-ALIAS); with --resume, its name or uid.",
    ),
    resume: bool = typer.Option(False, "--resume", help="Continue the tune --experiment names."),
    reference: str = typer.Option(
        None,
        "--reference",
        help="V1,V2: the hypervolume's reference point (default: the "
        "worst value of each objective so far).",
    ),
    var: list[str] = typer.Option(None, "--var", help="Variation of the target, repeatable."),
    env: list[str] = typer.Option(None, "--env", help="K=V, repeatable."),
    repeat: int = typer.Option(1, "--repeat", help="Measured executions per trial."),
    warmup: int = typer.Option(None, "--warmup", help="Unmeasured first runs (1 if repeating)."),
    timeout: float = typer.Option(None, "--timeout", help="Seconds per execution."),
    trust: bool = typer.Option(False, "--trust", help="Run an untrusted source this once."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    cluster: str = typer.Option(
        None,
        "--cluster",
        help="tls://HOST:8786: run the trials on the `ckg worker`s there, "
        "one per worker at a time.",
    ),
    slurm: str = typer.Option(
        None,
        "--slurm",
        help="PARTITION: run the trials in Slurm jobs of it, each a `ckg worker`, "
        "one trial per job at a time; the jobs are cancelled when the tune ends.",
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
        help="With --slurm or --jobqueue: KEY=VALUE of each job (jobs, walltime, cores, "
        "memory, gres, prologue...) over $CKG_HOME/config.toml's [slurm]; repeatable.",
    ),
    platform: list[str] = typer.Option(
        None,
        "--platform",
        help="With --cluster or --slurm: a worker label, or FIELD=VALUE, that the "
        "workers must offer; repeatable.",
    ),
    certs: Path = typer.Option(
        None,
        "--certs",
        help="With --cluster or --slurm: the folder of `ckg cluster certs`.",
    ),
    insecure: bool = typer.Option(
        False, "--insecure", help="With --cluster: accept a tcp:// scheduler, unauthenticated."
    ),
) -> None:
    """Search TARGET's parameters for the Pareto front of the objectives, with Optuna.

    Each trial is a run of TARGET recorded as `ckg run` records it, all of them in one
    experiment; a line per trial on stderr gives the front's size and hypervolume so far.

    Example: ckg tune sklearn-digits --space model=knn,svm,forest --space 'C=log(1e-3,1e3) if
    model=svm' --space 'k=int(1,15) if model=knn' --objectives accuracy,latency --budget 40

    Example: ckg tune sklearn-digits --space model=knn,svm --objectives accuracy,latency
    --budget 60 --resume

    Example: ckg tune sklearn-digits --space model=knn,svm --objectives accuracy,latency
    --budget 40 --slurm gpu --job jobs=4 --job walltime=00:30:00
    """
    from ckg.run.workflow import parse_env, parse_grid

    point = parse_grid([f"reference={reference}"])["reference"] if reference else None
    with open_graph() as kg:
        try:
            report = kg.tune(
                target,
                space,
                objectives,
                budget=budget,
                sampler=sampler,
                seed=seed,
                experiment=experiment,
                resume=resume,
                reference=point,
                progress=_progress,
                variations=tuple(var or ()),
                env=parse_env(env),
                repeat=repeat,
                warmup=warmup,
                timeout_s=timeout,
                trust=trust,
                cluster=cluster,
                slurm=slurm,
                jobqueue=jobqueue,
                job=tuple(job or ()),
                platform=tuple(platform or ()),
                certs=certs,
                insecure=insecure,
            )
        except KeyboardInterrupt:
            if slurm is None and jobqueue is None:
                raise
            import sys

            print("ckg: interrupted: the tune's jobs are cancelled", file=sys.stderr)
            raise typer.Exit(130) from None
    _print(report, as_json)
    if report.stopped:
        import sys

        print(f"ckg: stopped at {len(report.trials)} trials: {report.stopped}", file=sys.stderr)


def _progress(report, trial) -> None:
    """One line per trial on stderr: what ran, how it went, the front so far."""
    import sys

    shown = (
        trial.status
        if trial.values is not None or trial.status != "ok"
        else "ok, without every objective"
    )
    front = (
        f"front {len(report.front)}, hypervolume {report.hypervolume:.4g}"
        if report.hypervolume is not None
        else f"front {len(report.front)}"
    )
    print(
        f"[{len(report.trials)}/{report.budget}] {params_text(trial.params)}: {shown}  {front}",
        file=sys.stderr,
        flush=True,
    )


def _print(report, as_json: bool) -> None:
    names = [n for n, _ in report.objectives]
    if as_json:
        from dataclasses import asdict, replace

        # The Optuna study is the API's, not JSON.
        print(json.dumps(asdict(replace(report, study=None)), indent=2, default=str))
        return
    rows = [
        {
            "params": params_text(t.params),
            **dict(zip(names, t.values, strict=True)),
            "trial": t.number,
            "run": t.run[:12],
        }
        for t in report.front
    ]
    print_rows(
        rows,
        title=f"{report.name}: front of {', '.join(names)}",
        label="params",
        units=report.units,
    )
    failed = f", {len(report.failed)} failed" if report.failed else ""
    resumed = f" ({report.resumed} recorded before)" if report.resumed else ""
    volume = f", hypervolume {report.hypervolume:.4g}" if report.hypervolume is not None else ""
    print(
        f"{len(report.trials)} trials{resumed}{failed} in experiment {report.experiment}: "
        f"front of {len(report.front)}{volume}"
    )
