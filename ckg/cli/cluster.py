"""``ckg worker``: run the grid points a Dask scheduler sends, here, into the shared graph;
``ckg cluster certs``: the certificates that make a machine a member of the cluster."""

import shlex
import sys
import warnings
from contextlib import contextmanager
from pathlib import Path

import typer

from ckg.cli.app import HelpGroup, app, open_graph

cluster_app = typer.Typer(
    cls=HelpGroup,
    help="A cluster of `ckg worker` machines: its certificates.",
    no_args_is_help=True,
    suggest_commands=False,
    rich_markup_mode=None,
)
app.add_typer(cluster_app, name="cluster")


@app.command("worker")
def worker(
    scheduler: str = typer.Option(
        ..., "--scheduler", help="tls://HOST:8786 of `dask scheduler` (see `ckg cluster certs`)."
    ),
    label: list[str] = typer.Option(
        None, "--label", help="A label `ckg run --platform` can ask for, repeatable."
    ),
    nthreads: int = typer.Option(
        1, "--nthreads", help="Dask threads; ckg's measured tasks still run one at a time."
    ),
    name: str = typer.Option(None, "--name", help="Worker name (default: its address)."),
    certs: Path = typer.Option(
        None,
        "--certs",
        help="The folder of `ckg cluster certs` (default: "
        "$CKG_CLUSTER_CERTS, else $CKG_HOME/cluster).",
    ),
    insecure: bool = typer.Option(
        False,
        "--insecure",
        help="Accept a tcp:// scheduler, unauthenticated: any local user, "
        "and anyone who reaches it, can run code as you on this worker.",
    ),
    death_timeout: float = typer.Option(
        None,
        "--death-timeout",
        help="End after this many seconds without the scheduler "
        "(default: wait for it); what `ckg run --slurm` gives its jobs.",
    ),
    folders: bool = typer.Option(
        False,
        "--folders",
        help="Run folder sources too where this host sees the submitter's "
        "content: for a worker of the submitter's own user on a shared filesystem.",
    ),
) -> None:
    """Serve as a Dask worker that runs `ckg run --cluster` grid points on this host.

    It offers this host's platform fingerprint and its labels as Dask resources, runs only
    sources this host trusts (`ckg trust`), and records each run into the graph of --db /
    CKG_DB, which should be the Neo4j the submitter uses. It speaks to the scheduler and the
    other members in TLS, with the certificates of `ckg cluster certs`.

    Example: ckg --db bolt://graph:7687 worker --scheduler tls://10.0.0.5:8786 --label h200
    """

    def started(address: str, offered: dict) -> None:
        shown = ", ".join(sorted(offered))
        print(f"ckg worker {address} offers {shown}", file=sys.stderr, flush=True)

    with open_graph() as kg, warning_lines():
        kg.serve_worker(
            scheduler,
            labels=tuple(label or ()),
            nthreads=nthreads,
            name=name,
            certs=certs,
            insecure=insecure,
            death_timeout=death_timeout,
            folders=folders,
            on_start=started,
        )


@cluster_app.command("certs")
def make_certs(
    folder: Path = typer.Argument(
        None, help="A new or empty folder (default: $CKG_CLUSTER_CERTS, else $CKG_HOME/cluster)."
    ),
    days: int = typer.Option(730, "--days", help="Days the certificates are valid."),
) -> None:
    """Make a new cluster: its CA, and a key and certificate for the Dask scheduler, the
    workers and the clients, in FOLDER (0700, each file 0600), a new or empty folder:
    $CKG_CLUSTER_CERTS, else $CKG_HOME/cluster, where ckg worker and ckg run --cluster look.

    Every connection of the cluster is then Dask's TLS, and only the holders of a copy of
    FOLDER can send work to its workers. The command prints how to start the scheduler and
    the workers with it.

    Example: ckg cluster certs ~/cluster-certs
    """
    from ckg.run.cluster import certs

    where = certs.folder(folder)
    until = certs.make(where, days)
    here = shlex.quote(str(where.absolute()))
    print(
        f"made a new cluster's certificates in {here}, valid until {until:%Y-%m-%d}.\n"
        "Copy that folder to each machine of the cluster, keeping it private (scp -rp), as\n"
        f"$CKG_HOME/{certs.HOME_FOLDER} there, or name it with --certs or {certs.ENV}; then\n"
        "on the scheduler's machine (HOST):\n"
        f"  dask scheduler --host HOST --no-dashboard --tls-ca-file {here}/{certs.CA} "
        f"--tls-cert {here}/scheduler.pem --tls-key {here}/scheduler.key\n"
        "on each worker:      ckg --db bolt://GRAPH:7687 worker --scheduler tls://HOST:8786\n"
        "to submit:           ckg --db bolt://GRAPH:7687 run TARGET --grid ... "
        "--cluster tls://HOST:8786\n"
        "Whoever holds a copy can run code on every worker: keep it as you keep an SSH key."
    )


@contextmanager
def warning_lines():
    """Inside the block, ckg's ``--insecure`` warning is one line on stderr, as the CLI says
    errors; other warnings show as Python shows them."""
    from ckg.run.cluster.resources import Insecure

    python_shows = warnings.showwarning

    def show(message, category, *args, **kwargs):
        if issubclass(category, Insecure):
            print(f"ckg: warning: {message}", file=sys.stderr, flush=True)
        else:
            python_shows(message, category, *args, **kwargs)

    with warnings.catch_warnings():
        warnings.simplefilter("always", Insecure)
        warnings.showwarning = show
        yield
