"""``ckg rm``: remove runs and experiments from the graph."""

import json

import typer

from ckg.cli.app import app, open_graph


@app.command("rm")
def rm(
    names: list[str] = typer.Argument(
        ...,
        help="Runs and experiments: uids, their starts, or an experiment's name that no other has.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Remove runs (with the steps they called and their measurements) or whole experiments;
    Pareto fronts and reproductions that used them are marked stale.

    Example: ckg rm run-3f2a9c1e exp-4a587af6
    """
    with open_graph() as kg:
        done = kg.rm(names)
    if as_json:
        print(json.dumps(done, indent=2))
        return
    runs, experiments = len(done["runs"]), len(done["experiments"])
    print(
        f"removed {runs} run{'s' * (runs != 1)} ({done['measurements']} measurements)"
        + (f" and {experiments} experiment{'s' * (experiments != 1)}" if experiments else "")
    )
    for what, uids in (
        ("front", done["stale_fronts"]),
        ("reproduced result", done["stale_reproductions"]),
    ):
        if uids:
            print(
                f"marked stale: {len(uids)} {what}{'s' * (len(uids) != 1)} "
                f"({', '.join(uids[:4])}{', ...' if len(uids) > 4 else ''})"
            )
