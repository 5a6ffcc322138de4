"""``ckg db``: status, stop, reset, export, import, copy and recover, of whichever store
``--db`` names."""

import json
import sys
from pathlib import Path

import typer

from ckg.cli.app import HelpGroup, app, open_graph

db_app = typer.Typer(
    cls=HelpGroup,
    help="Inspect and manage the graph database.",
    no_args_is_help=True,
    suggest_commands=False,
    rich_markup_mode=None,
)
app.add_typer(db_app, name="db")


@db_app.command("status")
def status(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Engine, location and node and relationship counts.

    Example: ckg db status --json
    """
    with open_graph() as kg:
        info = kg.status()
    if as_json:
        print(json.dumps(info, indent=2))
        return
    print(f"engine:   {info['engine']}")
    print(f"location: {info['location']}")
    for label, count in info["nodes"].items():
        print(f"  ({label}) {count}")
    for rel, count in info["relationships"].items():
        print(f"  [:{rel}] {count}")
    if not info["nodes"]:
        print("  (empty graph)")


@db_app.command("stop")
def stop() -> None:
    """Stop the embedded database server of CKG_HOME now (data saved first), and the home's
    resident process once the commands it runs have ended.

    Example: ckg db stop
    """
    from ckg.cli.resident import stop as stop_resident
    from ckg.core import config
    from ckg.store.embedded import stop_server

    resident = stop_resident(config.home())
    if resident:
        print(f"stopped resident process {resident}")
    pid = stop_server(config.home())
    print(f"stopped server {pid}" if pid else "no server running")


@db_app.command("reset")
def reset(yes: bool = typer.Option(False, "--yes", help="Confirm deleting everything.")) -> None:
    """Delete every node and relationship.

    Example: ckg db reset --yes
    """
    from ckg.core.errors import UsageError

    if not yes:
        raise UsageError("ckg db reset deletes the whole graph: add --yes to confirm")
    with open_graph() as kg:
        kg.reset()
    print("graph emptied")


@db_app.command("export")
def export(
    file: Path = typer.Argument(..., help="File to write: JSON lines, gzipped if .gz."),
    as_json: bool = typer.Option(False, "--json", help="Print the counts as JSON."),
) -> None:
    """Write every node and relationship to FILE (JSON lines), for `ckg db import`.

    Example: ckg db export graph.jsonl.gz
    """
    with open_graph() as kg, _bar(as_json) as bar:
        summary = kg.export_graph(file, progress=bar.update)
    _print_summary(summary, as_json)


@db_app.command("import")
def import_(
    file: Path = typer.Argument(..., help="A file written by ckg db export."),
    as_json: bool = typer.Option(False, "--json", help="Print the counts as JSON."),
) -> None:
    """Merge the nodes and relationships of FILE (from `ckg db export`) into the graph.

    Example: ckg --db bolt://localhost:7687 db import graph.jsonl.gz
    """
    with open_graph() as kg, _bar(as_json) as bar:
        summary = kg.import_graph(file, progress=bar.update)
    _print_summary(summary, as_json)


@db_app.command("copy")
def copy(
    to: str = typer.Option(..., "--to", help="'embedded' or a bolt:// / neo4j:// URI."),
    to_home: Path = typer.Option(
        None, "--to-home", help="CKG_HOME of an embedded target (default: this one)."
    ),
    merge: bool = typer.Option(False, "--merge", help="Copy into a graph that is not empty."),
    as_json: bool = typer.Option(False, "--json", help="Print the counts as JSON."),
) -> None:
    """Copy every node and relationship into another store, e.g. embedded to Neo4j.

    Example: ckg db copy --to bolt://localhost:7687
    """
    with open_graph() as kg, _bar(as_json) as bar:
        summary = kg.copy_graph(to, home=to_home, merge=merge, progress=bar.update)
    _print_summary(summary, as_json)


def _bar(as_json: bool):
    from ckg.cli.ingest import _Bar

    return _Bar(enabled=not as_json and sys.stderr.isatty())


def _print_summary(summary, as_json: bool) -> None:
    if as_json:
        print(json.dumps(summary.as_dict(), indent=2, ensure_ascii=False))
        return
    print("\n".join(summary.lines()))


@db_app.command("recover")
def recover(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Write the journalled runs and measurements the graph lacks.

    Example: ckg db recover
    """
    with open_graph() as kg:
        summary = kg.recover()
    if as_json:
        print(json.dumps(summary))
        return
    print(
        f"recovered {summary['recovered']} of {summary['journalled']} journalled runs "
        f"({summary['measurements']} measurements)"
    )
