"""``ckg query``: raw Cypher with parameters."""

import typer

from ckg.cli.app import app, open_graph, parse_params, print_rows


@app.command("query")
def query(
    cypher: str = typer.Argument(..., help="A Cypher statement."),
    param: list[str] = typer.Option(None, "--param", "-p", help="NAME=VALUE, repeatable."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    as_csv: bool = typer.Option(False, "--csv", help="Print CSV."),
) -> None:
    """Run a Cypher query and print its rows.

    Example: ckg query "MATCH (a:Artifact) RETURN a.alias AS alias LIMIT 5" --json
    """
    params = parse_params(param)
    with open_graph() as kg:
        rows = kg.query(cypher, params)
    print_rows(rows, as_json=as_json, as_csv=as_csv)
