"""``ckg export``: runs, with everything they link to and their logs, into a folder that
another ckg brings in with ``ckg ingest DIR``. (The whole graph: ``ckg db export``.)"""

import json
from pathlib import Path

import typer

from ckg.cli.app import app, open_graph


@app.command("export")
def export(
    runs: list[str] = typer.Argument(None, help="Run uids, or prefixes naming one run each."),
    to: Path = typer.Option(..., "--to", help="Folder to write (new, empty, or an export)."),
    experiment: str = typer.Option(
        None,
        "--experiment",
        help="Also every run of this experiment (its uid), or of every experiment with this name.",
    ),
    max_log_bytes: int = typer.Option(
        None, "--max-log-bytes", help="Bytes kept of each log file, its end (default 1 MiB)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print what was written as JSON."),
) -> None:
    """Export runs, with all they link to and their logs, for `ckg ingest DIR` elsewhere.

    Each run's record holds its measurements, platform, experiment, artifacts, steps and
    cache entries; its log files are copied beside it.

    Example: ckg export run-3f2a --experiment sklearn-digits --to exported/
    """
    with open_graph() as kg:
        summary = kg.export_runs(runs or [], to, experiment=experiment, max_log_bytes=max_log_bytes)
    if as_json:
        print(json.dumps(summary.as_dict(), indent=2, ensure_ascii=False))
        return
    for run in summary.runs:
        print(
            f"{run['run']}: {run['nodes']} nodes, {run['relationships']} relationships, "
            f"{len(run['logs'])} log file(s)"
        )
    print(
        f"exported {len(summary.runs)} run(s) to {summary.folder}; bring them in elsewhere "
        f"with: ckg ingest {summary.folder}"
    )
