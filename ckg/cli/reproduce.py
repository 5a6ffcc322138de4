"""``ckg link`` and ``ckg reproduce``: code that implements a paper, and runs that reproduce it."""

import json
import sys

import typer

from ckg.cli.app import app, open_graph, print_rows


@app.command("link")
def link(
    artifact: str = typer.Argument(..., help="Artifact uid or alias."),
    paper: str = typer.Argument(..., help="Paper uid, arXiv id, DOI or link."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Record that ARTIFACT implements PAPER (an IMPLEMENTS relationship).

    Example: ckg link sklearn-digits https://example.org/sklearn-digits
    """
    with open_graph() as kg:
        linked = kg.link(artifact, paper)
    if as_json:
        print(json.dumps(linked, indent=2, ensure_ascii=False))
        return
    again = "" if linked["added"] else " (already linked)"
    print(f"{linked['alias']} ({linked['artifact']}) implements {linked['paper']}{again}")


@app.command("reproduce")
def reproduce(
    paper: str = typer.Argument(..., help="Paper uid, arXiv id, DOI or link."),
    repeat: int = typer.Option(1, "--repeat", help="Measured executions per run."),
    timeout: float = typer.Option(None, "--timeout", help="Seconds per execution."),
    trust: bool = typer.Option(False, "--trust", help="Run an untrusted source this once."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Run what reproduces each result of PAPER, then print reported against reproduced.

    A result runs when an artifact linked to the paper (ckg link) can run and its
    reproduces: block names the result; the other results are listed with the reason.
    Exit 1 when a run failed or an artifact could not be run.

    Example: ckg reproduce https://example.org/sklearn-digits --repeat 3
    """
    from ckg.cli.run import _exit_on_trouble

    with open_graph() as kg:
        done = kg.reproduce(paper, repeat=repeat, trust=trust, timeout_s=timeout)
    if as_json:
        print(
            json.dumps(
                {
                    "paper": done.paper,
                    "title": done.title,
                    "rows": done.rows,
                    "errors": done.errors,
                },
                indent=2,
                default=str,
                ensure_ascii=False,
            )
        )
    else:
        _print_table(done)
    for alias, why in done.errors.items():
        print(f"ckg: error: {alias} not run: {why}", file=sys.stderr)
    trouble = bool(done.errors)
    for report in done.reports:  # each failed run named, then exit 1
        try:
            _exit_on_trouble(report, sys.stderr)
        except typer.Exit:
            trouble = True
    if trouble:
        raise typer.Exit(1)


def _print_table(done) -> None:
    """One row per reported result (and run); why a result was not reproduced, below."""
    rows = [
        {
            "result": f"{row['model'] or '?'} on {row['dataset'] or '?'} ({row['metric']})",
            "reported": row["reported"],
            "unit": row["unit"] or row["reproduced_unit"] or "",
            "reproduced": row["reproduced"],
            "±": row["stdev"],
            "ratio": row["ratio"],
        }
        for row in done.rows
    ]
    units = {"reported": "", "reproduced": "", "±": "", "ratio": ""}
    title = f"reported vs reproduced: {done.paper}"
    print_rows(rows, title=title, units=units, label="result")
    for row, shown in zip(done.rows, rows, strict=True):
        if row["status"] != "reproduced":
            print(f"  {shown['result']}: {row['status']}")
    platforms = sorted({row["platform"] for row in done.rows if row["platform"]})
    if platforms:
        print(f"reproduced on {', '.join(platforms)}")
