"""``ckg serve``: the read-only web view of the graph."""

import typer

from ckg.cli.app import app, open_graph
from ckg.serve import HOST, PORT, listen


@app.command("serve")
def serve(
    host: str = typer.Option(
        HOST, "--host", help="Address to listen on; the default lets no other machine in."
    ),
    port: int = typer.Option(PORT, "--port", help="Port to listen on."),
) -> None:
    """Browse the graph in a web browser: artifacts, runs, experiments' fronts, leaderboards,
    platforms; every page also as JSON (?format=json). Read-only: it never writes the graph.

    Example: ckg serve --port 8765, then open http://127.0.0.1:8765/
    """
    from ckg.serve import serve as run_server

    sock = listen(host, port)
    with open_graph() as kg:
        print(f"ckg serve: http://{host}:{port}/ (Ctrl-C stops)", flush=True)
        run_server(kg, sock)
