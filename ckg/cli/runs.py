"""``ckg runs`` and ``ckg diff``: recorded runs, and what differs between two of them."""

import json

import typer

from ckg.cli.app import app, open_graph, params_text, print_rows
from ckg.core.values import format_number, human_unit


@app.command("runs")
def runs(
    experiment: str = typer.Option(
        None, "--experiment", help="Runs of one experiment: its uid (or start), or a name no "
        "other experiment has.",
    ),
    artifact: str = typer.Option(None, "--artifact", help="Runs of one artifact."),
    limit: int = typer.Option(50, "--limit", help="At most this many, newest first."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    as_csv: bool = typer.Option(False, "--csv", help="Print CSV (every field, uncut)."),
) -> None:
    """Recorded runs, newest first, with the commit and artifact digest they ran, and the
    experiment that holds each.

    Example: ckg runs --experiment sklearn-digits --limit 10
    """
    with open_graph() as kg:
        rows = kg.runs(experiment, artifact, limit)
    if as_json or as_csv:
        print_rows(rows, as_json=as_json, as_csv=as_csv)
        return
    # Short forms a person reads; ckg show and ckg diff take a run by the start of its uid.
    for row in rows:
        row["params"] = params_text(row["params"])
        row["run"] = row["run"][:16]
        row["started_at"] = (row["started_at"] or "")[:16].replace("T", " ")
        row["commit"] = (row["commit"] or "")[:12]
        row["digest"] = (row["digest"] or "")[:12]
        row["platform"] = (row["platform"] or "")[:20]
        row["experiment"] = (row["experiment"] or "")[:16]
    filtered = experiment or artifact
    hint = "no runs match" if filtered else "no runs recorded yet: ckg demo, or ckg run TARGET"
    print_rows(rows, title="runs", label="params",
               optional=(("platform",), ("digest",), ("commit",), ("experiment",),
                         ("started_at",), ("experiment_name",)),
               empty_hint=hint)  # fmt: skip



@app.command("diff")
def diff(
    run_a: str = typer.Argument(..., help="A run uid."),
    run_b: str = typer.Argument(..., help="Another run uid."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """What differs between two runs: commit, files, env, packages, platform, parameters.

    Example: ckg diff run-1f2e... run-9c3d...
    """
    with open_graph() as kg:
        found = kg.diff_runs(run_a, run_b)
    if as_json:
        print(json.dumps(found, indent=2, default=str))
        return
    if not found:
        print("no difference in what produced them")
        return
    for field, change in found.items():
        if "a" in change or "b" in change:
            print(f"{field}: {change.get('a')!r} -> {change.get('b')!r}")
            continue
        parts = [f"{what.replace('_', ' ')}: {', '.join(map(str, keys[:8]))}"
                 + (f" (+{len(keys) - 8})" if len(keys) > 8 else "")
                 for what, keys in change.items()]
        print(f"{field}: " + "; ".join(parts))


def print_run(uid: str, as_json: bool) -> None:
    """``ckg show RUN``."""
    with open_graph() as kg:
        info = kg.show_run(uid)
    if as_json:
        print(json.dumps(info, indent=2, default=str, ensure_ascii=False))
        return
    run = info["run"]
    print(f"run {run.get('uid')}  {run.get('status')}  {run.get('started_at')}  "
          f"{info['artifact']['alias']} ({info['artifact']['uid']})")
    for label, value in (
        ("experiment", info["experiment_uid"] and f"{info['experiment'] or ''} "
                       f"({info['experiment_uid']})".lstrip()),
        ("step", run.get("step")),
        ("command", run.get("command")),
        ("params", run.get("params")),
        ("commit", _commit(run)),
        ("artifact", f"digest {run.get('artifact_digest')}, "
                     f"{len(run.get('artifact_files') or {})} files"),
        ("platform", info["platform"].get("uid")),
        ("packages", f"{len(info['packages'])} ({info['package_set']})"),
    ):
        if value:
            print(f"{label + ':':<12}{value}")
    if info["measurements"]:
        print_rows([_measured(m) for m in info["measurements"]], title="measurements",
                   label="values", limit=0)  # fmt: skip
    if info["steps"]:
        print_rows(info["steps"], title="steps", label="step")


def _measured(m: dict) -> dict:
    """A measurement as a table row, in the prefixed unit that suits its size (µs, MB); the
    raw figures are in ``--json``."""
    values = [v for v in m["values"] or [] if v is not None]
    factor, unit = human_unit(values or [m["value"]], m["unit"] or "")
    return {
        "metric": m["metric"],
        "value": format_number(m["value"] / factor if m["value"] is not None else None),
        "unit": unit,
        "n": m["n"],
        "values": ", ".join(format_number(v / factor) for v in values),
    }


def _commit(run: dict) -> str:
    if not run.get("source_commit"):
        return ""
    return run["source_commit"] + (" (with uncommitted changes)" if run.get("source_dirty")
                                   else "")
