"""The typer application, its global options, and the helpers every command shares.

Commands live in one module per group (``db.py``, ``query.py``, ...) and call the Python
API only; :func:`main` turns any :class:`ckg.errors.CkgError` into one line on stderr.
"""

import json
import sys
from dataclasses import dataclass

import typer

from ckg import __version__

app = typer.Typer(
    name="ckg",
    help="Collective Knowledge Graph: ingest research artifacts, run them, compare results.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@dataclass
class Settings:
    db: str | None = None
    debug: bool = False


settings = Settings()


def _version(value: bool) -> None:
    if value:
        print(f"ckg {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    db: str = typer.Option(
        None, "--db", envvar="CKG_DB", help="'embedded' (default) or a bolt:// / neo4j:// URI."
    ),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks."),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version."
    ),
) -> None:
    settings.db = db
    settings.debug = debug


def open_graph():
    """Open the graph the global options name (the one place the CLI opens it)."""
    from ckg.api import open as open_kg

    return open_kg(settings.db)


def parse_params(pairs: list[str] | None) -> dict:
    """``["k=v", ...]`` to a dict; values that read as JSON (numbers, lists) are decoded."""
    from ckg.errors import UsageError

    params = {}
    for pair in pairs or []:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise UsageError(f"--param expects NAME=VALUE, got {pair!r}")
        try:
            params[name] = json.loads(value)
        except ValueError:
            params[name] = value
    return params


def print_rows(rows: list[dict], *, as_json: bool = False, as_csv: bool = False, title=None):
    """Render rows as a rich table, JSON or CSV on stdout."""
    if as_json:
        print(json.dumps(rows, indent=2, default=str, ensure_ascii=False))
        return
    columns = list(rows[0]) if rows else []
    if as_csv:
        import csv

        writer = csv.writer(sys.stdout)
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_cell(row.get(c)) for c in columns])
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(_cell(row.get(c)) for c in columns))
    Console().print(table)
    if not rows:
        print("(no rows)")


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)
