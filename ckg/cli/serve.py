"""``ckg serve``: the read-only web view of the graph."""

import typer

from ckg.cli.app import app, open_graph
from ckg.core.errors import require_extra
from ckg.serve import HOST, PORT, listen


@app.command("serve")
def serve(
    host: str = typer.Option(
        HOST, "--host", help="Address to listen on; the default lets no other machine in."
    ),
    port: int = typer.Option(PORT, "--port", help="Port to listen on."),
    allow_host: list[str] = typer.Option(
        [],
        "--allow-host",
        help="Another name of this machine the browser may use (repeat "
        "for more); loopback's names and --host are always allowed.",
        metavar="NAME",
    ),
) -> None:
    """Browse the graph in a web browser: artifacts, runs, experiments' fronts, leaderboards,
    platforms; every page also as JSON (?format=json). Read-only: it never writes the graph.
    Yours alone: open the URL it prints, whose token the browser then keeps in a cookie;
    scripts send it as the header "Authorization: token ...".

    Example: ckg serve --port 8765, then open the http://127.0.0.1:8765/?token=... it prints
    """
    require_extra("serve", "starlette", "jinja2", "uvicorn", "plotly", what="ckg serve")
    from ckg.serve import serve as run_server
    from ckg.serve.access import allowed_hosts, host_name, new_token

    sock = listen(host, port)
    token = new_token()
    with open_graph() as kg:
        # Only now, the socket listening and the graph open: the URL answers once shown, on
        # the port the socket holds. The one place the token is shown: this terminal is its
        # owner's.
        url = f"http://{host_name(host)}:{sock.getsockname()[1]}/?token={token}"
        print(f"ckg serve: {url} (Ctrl-C stops)", flush=True)
        run_server(kg, sock, token=token, hosts=allowed_hosts(host, allow_host))
