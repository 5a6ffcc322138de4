"""``ckg query``: raw Cypher with parameters."""

import typer

from ckg.cli.app import app, open_graph, parse_params, print_rows


@app.command("query")
def query(
    cypher: str = typer.Argument(..., help="A Cypher statement, a named query or a .cypher file."),
    param: list[str] = typer.Option(None, "--param", "-p", help="NAME=VALUE, repeatable."),
    limit: int = typer.Option(None, "--limit", help="At most this many rows (0: all).", min=0),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    as_csv: bool = typer.Option(False, "--csv", help="Print CSV."),
) -> None:
    """Run a Cypher query, a named query (see ckg queries) or a .cypher file; print its rows
    (a table shows the first 50).

    Example: ckg query compare-papers -p task="Question Answering" -p dataset=SQuAD1.1 -p metric=F1
    """
    from ckg.graph import named as queries

    params = parse_params(param)
    named = queries.find(cypher)
    if named:
        named.bind(params)  # a missing parameter is named before the store is opened
    with open_graph() as kg:
        rows = kg.named_query(named, params) if named else kg.query(cypher, params)
        hint = kg.why_empty(named, params) if named and not rows else None
    important = named.table if named else ()
    print_rows(rows, as_json=as_json, as_csv=as_csv, important=important, empty_hint=hint,
               limit=limit, limit_option=True, drop_empty=True)  # fmt: skip
