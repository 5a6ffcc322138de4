"""``ckg db``: status, stop, reset, of whichever store ``--db`` names."""

import json

import typer

from ckg.cli.app import app, open_graph

db_app = typer.Typer(help="Inspect and manage the graph database.", no_args_is_help=True)
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
    """Stop the embedded database server of CKG_HOME now (data saved first).

    Example: ckg db stop
    """
    from ckg import config
    from ckg.store.embedded import stop_server

    pid = stop_server(config.home())
    print(f"stopped server {pid}" if pid else "no server running")


@db_app.command("reset")
def reset(yes: bool = typer.Option(False, "--yes", help="Confirm deleting everything.")) -> None:
    """Delete every node and relationship.

    Example: ckg db reset --yes
    """
    from ckg.errors import UsageError

    if not yes:
        raise UsageError("ckg db reset deletes the whole graph: add --yes to confirm")
    with open_graph() as kg:
        kg.reset()
    print("graph emptied")
