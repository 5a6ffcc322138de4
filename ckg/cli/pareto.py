"""``ckg pareto``: the Pareto front of runs or published results, as a table, JSON or plot."""

import json
import shutil
import textwrap

import typer

from ckg.cli.app import app, open_graph, print_rows
from ckg.core.errors import UsageError
from ckg.core.values import format_number


@app.command("pareto")
def pareto(
    objectives: str = typer.Argument(..., help="OBJ[:max|:min],OBJ,... (two or more)."),
    experiment: str = typer.Option(
        None,
        "--experiment",
        help="Runs of this one experiment: its uid (or start), or a "
        "name no other experiment has (one several share is refused, their uids listed).",
    ),
    task: str = typer.Option(None, "--task", help="Published results for this task."),
    dataset: str = typer.Option(None, "--dataset", help="Published results on this dataset."),
    where: str = typer.Option(None, "--where", help="Cypher condition (r, m, e / res, p, pl)."),
    source: str = typer.Option("runs", "--from", help="runs, papers or all."),
    plot: str = typer.Option(None, "--plot", help="Draw to FILE.png, .svg, .pdf or .html."),
    margin: list[str] = typer.Option(None, "--margin", help="OBJ=VALUE, repeatable."),
    reference: str = typer.Option(None, "--reference", help="Hypervolume reference: v1,v2,..."),
    fronts: int = typer.Option(None, "--fronts", help="Print fronts 1..N only."),
    no_write: bool = typer.Option(False, "--no-write", help="Do not record front membership."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    as_csv: bool = typer.Option(False, "--csv", help="Print the points as CSV."),
) -> None:
    """Rank runs or published results into Pareto fronts and record front membership.

    Example: ckg pareto throughput,power --from papers --task "Image Classification" --plot f.png
    """
    with open_graph() as kg:
        front = kg.pareto(
            objectives,
            experiment=experiment,
            task=task,
            dataset=dataset,
            where=where,
            source=source,
            margins=_margins(margin),
            reference=_numbers(reference),
            write=not no_write,
        )
    if plot and not front.unranked:
        from ckg.pareto.plot import plot_front

        plot_front(front.table, front.objectives, plot, units=front.units, title="")
    rows = [r for r in front.rows() if fronts is None or r["front_rank"] <= fronts]
    if as_csv:
        print_rows(rows, as_csv=True)
        return
    if as_json:
        summary = {
            "front": front.uid,
            "objectives": [str(o) for o in front.objectives],
            "scope": front.scope,
            "units": front.units,
            "left_out": front.left_out,
            "reference": front.reference,
            "hypervolume": front.hypervolume,
            "unranked": front.unranked or None,
            "points": rows,
        }
        print(json.dumps(summary, indent=2, default=str, ensure_ascii=False))
        return
    units = {o.name: front.units.get(o.name) or "" for o in front.objectives}
    shown = [
        {"front": r["front_rank"], "point": r["label"]} | {n: r[n] for n in units} for r in rows
    ]
    title = f"{'Points' if front.unranked else 'Pareto front'} ({front.scope})"
    print_rows(shown, title=title, units=units, label="point")
    on_front = sum(1 for r in front.rows() if r["front_rank"] == 1)
    ranked = f"front left out: {front.unranked}" if front.unranked else f"{on_front} on front 1"
    summary = [
        f"{len(front.table)} points, {ranked}, {front.left_out} left out (missing an objective)"
    ]
    if front.hypervolume is not None:
        reference = ", ".join(map(format_number, front.reference))
        summary.append(f"hypervolume {front.hypervolume:.6g} against [{reference}]")
    summary += [] if no_write or front.unranked else [f"recorded as {front.uid}"]
    summary += [f"plot: {plot}"] if plot and not front.unranked else []
    width = shutil.get_terminal_size().columns
    for line in summary:
        print(textwrap.fill(line, width, subsequent_indent="  ", break_on_hyphens=False))


def _margins(pairs: list[str] | None) -> dict[str, float] | None:
    out = {}
    for pair in pairs or []:
        name, sep, value = pair.partition("=")
        try:
            out[name] = float(value)
        except ValueError:
            sep = ""
        if not sep or not name:
            raise UsageError(f"--margin expects OBJ=NUMBER, got {pair!r}")
    return out or None


def _numbers(text: str | None) -> list[float] | None:
    if not text:
        return None
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise UsageError(f"--reference expects numbers separated by commas, got {text!r}") from None
