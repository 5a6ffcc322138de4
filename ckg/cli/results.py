"""``ckg results``, ``ckg queries`` and ``ckg compare``: published results and named queries."""

import json
import sys
import textwrap

import typer

from ckg.cli.app import TABLE_ROWS, HelpGroup, app, open_graph, print_rows

results_app = typer.Typer(
    cls=HelpGroup,
    help="Import and list published results.",
    no_args_is_help=True,
    suggest_commands=False,
    rich_markup_mode=None,
)
app.add_typer(results_app, name="results")


@results_app.command("import")
def import_(
    paths: list[str] = typer.Argument(..., help="Result files, folders or archives."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    show: int = typer.Option(10, "--warnings", help="How many warnings to print."),
) -> None:
    """Import Papers with Code, MLPerf or table results into the graph.

    Example: ckg results import ../shared/corpora/pwc ../shared/corpora/mlperf
    """
    with open_graph() as kg:
        report = kg.import_results(paths)
    if as_json:
        print(json.dumps(report.as_dict(), indent=2, ensure_ascii=False))
        return
    print(
        f"{report.results} results ({report.unreadable} unreadable), "
        f"{report.missing} cells without value, {report.no_metric} rows without metric, "
        f"from {len(report.sources)} source(s); {report.linked} paper-code links"
    )
    # On stderr: stdout holds the counts, which a script may read.
    for warning in report.warnings[:show]:
        print(f"warning: {warning}", file=sys.stderr)
    if len(report.warnings) > show:
        print(f"... {len(report.warnings) - show} more warnings (--warnings N, or --json)",
              file=sys.stderr)  # fmt: skip


@results_app.command("list")
def list_(
    task: str = typer.Option(None, "--task", help="Task name."),
    dataset: str = typer.Option(None, "--dataset", help="Dataset name."),
    metric: str = typer.Option(None, "--metric", help="Metric name or alias."),
    model: str = typer.Option(None, "--model", help="Model name."),
    limit: int = typer.Option(None, "--limit", help="At most this many rows (0: all).", min=0),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    as_csv: bool = typer.Option(False, "--csv", help="Print CSV."),
) -> None:
    """List results matching the filters given (a table shows the first 50).

    Example: ckg results list --task "Question Answering" --metric F1 --csv
    """
    with open_graph() as kg:
        frame = kg.results(task=task, dataset=dataset, metric=metric, model=model)
    print_rows(
        _records(frame),
        as_json=as_json,
        as_csv=as_csv,
        important=("dataset", "metric", "model", "value", "unit", "paper_title"),
        empty_hint="no results match: ckg ingest a source of published results or "
        "ckg results import a table; ckg db status counts what the graph holds",
        limit=limit,
        limit_option=True,
    )


@app.command("queries")
def queries_(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List the named queries with their descriptions and parameters.

    Example: ckg queries
    """
    from ckg.graph import named

    rows = [
        {
            "name": q.name,
            "description": q.description,
            "parameters": " ".join(p.name + ("?" if p.optional else "") for p in q.params),
            "example": q.example,
        }
        for q in named.all_queries()
    ]
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    print_rows([{k: r[k] for k in ("name", "parameters", "description")} for r in rows])


@app.command("compare")
def compare(
    task: str = typer.Option(..., "--task", help="Task name."),
    dataset: str = typer.Option(..., "--dataset", help="Dataset name."),
    metric: str = typer.Option(..., "--metric", help="Metric name or alias."),
    higher: bool = typer.Option(False, "--higher-is-better", help="Rank higher values first."),
    lower: bool = typer.Option(False, "--lower-is-better", help="Rank lower values first."),
    plot: str = typer.Option(None, "--plot", help="Also draw FILE.png, .svg, .pdf or .html."),
    limit: int = typer.Option(None, "--limit", help="At most this many rows (0: all).", min=0),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    as_csv: bool = typer.Option(False, "--csv", help="Print CSV."),
) -> None:
    """Compare what every paper reported for a task, dataset and metric, best first.

    Example: ckg compare --task "Question Answering" --dataset SQuAD1.1 --metric F1

    A table shows the first 50 rows, JSON and CSV all of them (--limit N: the first N).

    A dataset with parts (Papers with Code sub-datasets, "SemEval 2018 / General") lists
    each part's results too, each part ranked on its own; --dataset may name a part.

    The direction comes from the metric registry, else from the metric's name (error, loss,
    perplexity, bits per character, latency ... rank lower first); a metric with neither
    needs --higher-is-better or --lower-is-better.

    Results of a benchmark's submissions (MLPerf) show their submitter, system, division,
    scenario and version where these differ between rows (those the same in every row are
    named under the table), and each result's uid where rows would still look alike.
    """
    from ckg.core.errors import UsageError

    if higher and lower:
        raise UsageError("give --higher-is-better or --lower-is-better, not both")
    direction = "max" if higher else "min" if lower else None
    if limit is None:
        limit = 0 if as_json or as_csv else TABLE_ROWS
    # The rows printed alone, ranked in the store, and a count of the others: a table of 50
    # read all 21,700 rows of SQuAD1.1 F1 at 100x the corpora. A plot draws them all.
    page = {"stop": limit} if limit and not plot else {}
    with open_graph() as kg:
        frame = kg.compare(task=task, dataset=dataset, metric=metric, direction=direction,
                           **page)  # fmt: skip
    if plot:
        from ckg.results.published import plot as draw

        draw(frame, plot)
    total = frame.attrs["total"]
    records = _records(frame)[: limit or None]
    if as_json or as_csv:
        print_rows(records, as_json=as_json, as_csv=as_csv)
        return
    from ckg.graph.browse import SUBMISSION

    told, same = _telling(records, SUBMISSION)
    columns = ["rank", "model", *told, "value", "unit", "stderr", "paper", "date", "code"]
    parts = frame.attrs.get("datasets") or []
    if len(parts) > 1:  # the dataset's parts, each ranked on its own
        columns.insert(1, "dataset")
    view = [{c: r.get(c) for c in columns} for r in records]
    for row in view:
        row["code"] = (row["code"] or [""])[0] if isinstance(row["code"], list) else row["code"]
        row["paper"] = textwrap.shorten(row["paper"] or "", 50, placeholder=" …")
    # Rows alike as a narrow terminal shows them (a kept column at least 16 wide: its first
    # 15 characters and an ellipsis) are told apart by their results' uids.
    alike = [tuple(str(v)[:15] for c, v in row.items() if c != "rank") for row in view]
    if len(set(alike)) < len(alike):
        for row, record in zip(view, records, strict=True):
            row["result"] = record["result"]
    title = f"{frame.attrs['metric']} on {dataset} ({task})"
    if len(parts) > 1:
        title += f": {len(parts)} datasets, each ranked on its own"
    kept = ("rank", "value", "unit", "dataset", "model", "result", *told) if told else ()
    print_rows(view, title=title, drop_empty=True, important=kept, limit=0, total=total,
               limit_option=True)  # fmt: skip
    if same:
        where = "in every row shown" if len(view) < total else "in every row"
        print(f"{where}: " + ", ".join(f"{c} {v}" for c, v in same.items()))
    better = "lower" if frame.attrs["direction"] == "min" else "higher"
    print(f"ranked {better} is better: {frame.attrs['why']}")
    if plot:
        print(f"plot written to {plot}")


def _telling(rows: list[dict], columns: tuple[str, ...]) -> tuple[list[str], dict]:
    """The ``columns`` whose values differ between ``rows``, and the value of each other one
    that every row has.

    >>> _telling([{"submitter": "A", "division": "closed", "system": None},
    ...           {"submitter": "B", "division": "closed", "system": None}],
    ...          ("submitter", "system", "division"))
    (['submitter'], {'division': 'closed'})
    """
    values = {c: {row.get(c) for row in rows} for c in columns}
    told = [c for c in columns if len(values[c]) > 1]
    return told, {c: v.pop() for c, v in values.items() if len(v) == 1 and None not in v}


def _records(frame) -> list[dict]:
    """DataFrame rows as dicts with NaN turned into None, for printing."""
    return [
        {k: (None if v != v else v) for k, v in row.items()} for row in frame.to_dict("records")
    ]
