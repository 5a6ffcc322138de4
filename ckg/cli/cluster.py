"""``ckg worker``: run the grid points a Dask scheduler sends, here, into the shared graph."""

import sys

import typer

from ckg.cli.app import app, open_graph


@app.command("worker")
def worker(
    scheduler: str = typer.Option(..., "--scheduler", help="tcp://HOST:8786 of `dask scheduler`."),
    label: list[str] = typer.Option(
        None, "--label", help="A label `ckg run --platform` can ask for, repeatable."
    ),
    nthreads: int = typer.Option(
        1, "--nthreads", help="Dask threads; ckg's measured tasks still run one at a time."
    ),
    name: str = typer.Option(None, "--name", help="Worker name (default: its address)."),
    tls_ca: str = typer.Option(None, "--tls-ca", help="Dask TLS CA file."),
    tls_cert: str = typer.Option(None, "--tls-cert", help="This worker's TLS certificate."),
    tls_key: str = typer.Option(None, "--tls-key", help="This worker's TLS key file."),
    insecure: bool = typer.Option(
        False, "--insecure", help="Allow a non-loopback scheduler without TLS."
    ),
) -> None:
    """Serve as a Dask worker that runs `ckg run --cluster` grid points on this host.

    It offers this host's platform fingerprint and its labels as Dask resources, runs only
    sources this host trusts (`ckg trust`), and records each run into the graph of --db /
    CKG_DB, which should be the Neo4j the submitter uses.

    Example: ckg --db bolt://graph:7687 worker --scheduler tcp://10.0.0.5:8786 --label h200
    --tls-ca ca.pem --tls-cert worker.pem --tls-key worker.key
    """

    def started(address: str, offered: dict) -> None:
        shown = ", ".join(sorted(offered))
        print(f"ckg worker {address} offers {shown}", file=sys.stderr, flush=True)

    with open_graph() as kg:
        kg.serve_worker(scheduler, labels=tuple(label or ()), nthreads=nthreads, name=name,
                        tls=(tls_ca, tls_cert, tls_key), insecure=insecure, on_start=started)
