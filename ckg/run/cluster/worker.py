"""``ckg worker``: a Dask worker that runs ckg's grid points on this host and records them.

:func:`serve` starts a :class:`distributed.Worker` (Dask's own worker, in this process) that
offers this host's platform and labels as resources (:mod:`ckg.run.cluster.resources`).
:func:`run_task` is what the submitter sends: it runs in that worker, with the graph and the
home (trust list, caches, journal) :func:`serve` was given.
"""

import asyncio
import os
import socket
import traceback
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from ckg.core import config
from ckg.core.errors import CkgError, RunFailed
from ckg.graph.execution import recorded_run, source_digests
from ckg.run import trust
from ckg.run.cluster import certs as cluster_certs
from ckg.run.cluster import resources
from ckg.run.platform import detect_cached, platform_uid
from ckg.run.provenance import folder_manifest
from ckg.run.runner import Options
from ckg.run.runner import run as run_here

LOG_TAIL_LINES = 20
#: The worker's Dask scratch space, in its (private) home.
SCRATCH = "dask-scratch-space"


@dataclass(slots=True)
class _Host:
    """What the tasks of this worker process run with."""

    store: object
    home: Path
    labels: list[str]
    platform: str  # the uid of this host's Platform node
    roots: dict  # the sources fetched here, by location, ref and digest (runner.Options)
    job: dict  # the Slurm job this worker runs in (resources.slurm_job), or {}
    folders: bool  # runs folder sources it sees with the submitter's content


_HOST: _Host | None = None  # set by serve(), in the process whose Dask worker runs the tasks


def serve(
    store,
    home,
    scheduler: str,
    *,
    labels=(),
    nthreads: int = 1,
    name: str | None = None,
    certs=None,
    insecure: bool = False,
    death_timeout: float | None = None,
    folders: bool = False,
    on_start=None,
) -> None:
    """Run a Dask worker of ``scheduler`` until the scheduler or a signal ends it.

    Parameters
    ----------
    store : GraphStore
        The shared graph the tasks record into.
    home : Path
        This worker's ckg home: its trust list, caches, certificates and scratch space.
    scheduler : str
        ``tls://HOST:PORT``; ``tcp://`` only with ``insecure``
        (:func:`ckg.run.cluster.resources.check_address`).
    labels : sequence of str
        Offered as ``label=L`` resources, and recorded on each Run as ``worker_labels``.
    nthreads : int
        Tasks at once; each takes the worker's single ``ckg`` slot, so measured tasks never
        overlap on one worker whatever this is.
    certs : path, optional
        The folder of ``ckg cluster certs`` (:func:`ckg.run.cluster.certs.folder` when None):
        this worker talks only to members of that cluster, in TLS.
    insecure : bool
        Allow a ``tcp://`` scheduler, with a warning (:class:`~ckg.run.cluster.resources.Insecure`):
        any local user, and anyone who reaches it, can then run code here as this user.
    death_timeout : float, optional
        Seconds without the scheduler after which the worker ends (default: it waits for
        it for ever): a batch job whose submitter is gone then frees its node.
    folders : bool
        Run points from folder sources too, where this host sees the folder with the
        content the submitter saw (:func:`check_sources`), under a local run's rules for
        folders (this user's alone): for a worker of the submitter's own user on a shared
        filesystem, as ``ckg run --slurm`` starts them. Without it a folder is refused, as
        the submitter's code and not this host's owner's.
    on_start : callable, optional
        Called with the address and the offered resources once the worker is registered.

    Raises
    ------
    UsageError
        A malformed address, ``tcp://`` without ``insecure``, certificates missing or
        readable by others (:func:`ckg.run.cluster.certs.files`).
    """
    address = resources.check_address(scheduler, "--scheduler", insecure=insecure)
    resources.require_dask()
    home = Path(home)
    security = cluster_certs.security_for(address, "worker", certs, home)
    fingerprint = detect_cached(home)
    uid = platform_uid(fingerprint)
    job = resources.slurm_job(os.environ)
    offered = resources.offered(fingerprint, list(labels), uid, job.get("partition", ""))
    global _HOST
    _HOST = _Host(store, home, [label.lower() for label in labels], uid, {}, job, folders)
    host = urlsplit(address).hostname
    listen = host if resources.is_loopback(host) else None  # else the route to the scheduler
    # Not Dask's default /tmp/dask-scratch-space, which another local user can create first
    # and then swap the data this worker spills and reads back (pickles) for their own.
    scratch = str(home / SCRATCH)
    asyncio.run(
        _serve(
            address,
            offered,
            on_start,
            nthreads=nthreads,
            name=name,
            security=security,
            host=listen,
            local_directory=scratch,
            death_timeout=death_timeout,
        )
    )


async def _serve(address, offered, on_start, **options) -> None:
    from distributed import Worker

    async with Worker(address, resources=offered, **options) as worker:
        if on_start:
            on_start(worker.address, offered)
        await worker.finished()


def run_task(spec: dict) -> dict:
    """Run one grid point named by ``spec`` (made by :func:`ckg.run.cluster.submit.task_specs`)
    on this worker and record it under ``spec["run_uid"]``; what happened, as a dict.

    A run the graph holds complete already is returned as it is, not run again. The
    sources are checked before anything runs: the digest the submitter saw must still be
    the graph's, and this worker's own trust list must allow it. Errors come back as a
    ``refused`` or ``failed`` result with this worker's address, labels and platform.
    """
    from distributed import get_worker

    if _HOST is None:
        raise RuntimeError("ckg tasks run on `ckg worker`, not on a plain Dask worker")
    who = {
        "worker": get_worker().address,
        "labels": _HOST.labels,
        "platform": _HOST.platform,
        **{f"slurm_{key}": value for key, value in _HOST.job.items() if key != "partition"},
    }
    base = {**who, "uid": spec["run_uid"], "params": spec["point"]}
    store = _HOST.store
    try:
        done = _recorded(store, spec["run_uid"])
        if done:
            return {**base, **done}
        check_sources(store, _HOST.home, spec["sources"], _HOST.folders)
        check_env(spec["options"].get("env") or {})
    except CkgError as exc:
        return {**base, "status": "refused", "error": str(exc)}
    point = spec["point"]
    try:
        # Claimed before running: a Run a lost worker leaves ``running`` is completed by the
        # task's re-execution, or marked ``lost`` by the submitter.
        store.upsert_nodes(
            "Run",
            [
                {
                    "key": spec["run_uid"],
                    "props": {
                        "status": "running",
                        "worker": who["worker"],
                        "worker_labels": _HOST.labels,
                        **{key: value for key, value in who.items() if key.startswith("slurm_")},
                        "claimed_at": datetime.now(UTC).isoformat(),
                    },
                }
            ],
        )
        options = Options(
            grid=[point] if point else {},
            run_uids=(spec["run_uid"],),
            experiment=spec["experiment"],
            folders_trusted=_HOST.folders,
            source_roots=_HOST.roots,
            **spec["options"],
        )
        with config.private_files():
            report = run_here(store, _HOST.home, spec["target"], options)
    except Exception as exc:  # noqa: BLE001 - every failure goes back to the submitter
        error = str(exc) if isinstance(exc, CkgError) else f"{type(exc).__name__}: {exc}"
        tail = "" if isinstance(exc, CkgError) else traceback.format_exc()
        try:
            store.update_nodes("Run", [spec["run_uid"]], {"status": "failed", "error": error})
        except CkgError:
            pass  # the graph is out of reach: the submitter marks the claim, if any, lost
        return {**base, "status": "failed", "error": error, "log_tail": _tail(tail)}
    run = report.runs[0]
    return {
        **base,
        "status": run.status,
        "exit_code": run.exit_code,
        "metrics": run.metrics,
        "units": run.units,
        "workdir": run.workdir,
        "log_tail": _tail(run.log_tail),
        "error": run.error,
        "dependency_runs": report.dependency_runs,
        "cached_steps": report.cached_steps,
        "unrecorded": report.unrecorded,
        "store_error": report.store_error,
    }


#: Variables that decide which programs and libraries a process loads, rather than what a
#: trusted script is asked to do: a submitter's ``--env`` may not set them on a worker.
LOADER_VARIABLES = frozenset(
    {
        "PATH",
        "PYTHONPATH",
        "PYTHONHOME",
        "PYTHONSTARTUP",
        "PYTHONUSERBASE",
        "BASH_ENV",
        "ENV",
        "PERL5LIB",
        "PERL5OPT",
        "RUBYLIB",
        "RUBYOPT",
        "NODE_OPTIONS",
        "JAVA_TOOL_OPTIONS",
        "IFS",
        "SHELLOPTS",
        "PROMPT_COMMAND",
    }
)


def check_env(env: dict) -> None:
    """Refuse a submitter's ``--env`` (``KEY`` or ``ALIAS:KEY``) that would change what runs
    here instead of how: a trusted source run with ``LD_PRELOAD`` or another ``PATH`` runs
    code this worker's operator never trusted.

    >>> check_env({"CM_MODEL": "resnet50", "get-x:CM_TMP": "1"})
    >>> check_env({"get-x:LD_PRELOAD": "/tmp/evil.so"})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ckg.core.errors.RunFailed: --env LD_PRELOAD is not accepted from a submitter on a worker: ...
    """
    for name in env:
        key = name.rpartition(":")[2]
        if key in LOADER_VARIABLES or key.startswith(("LD_", "DYLD_")):
            raise RunFailed(
                f"--env {key} is not accepted from a submitter on a worker: it changes which "
                "programs or libraries run here"
            )


def check_sources(store, home, sources: dict[str, dict], folders: bool = False) -> None:
    """Refuse to run unless each source still has, in the graph, the digest the submitter
    saw, and this host's trust list (``ckg trust`` here) allows that content; with
    ``folders``, unless each folder source is here with the content the submitter saw.

    Raises
    ------
    RunFailed
        Naming the source and what its operator can do; for a folder, this node and the
        files that differ.
    """
    allowed = trust.trusted(home)
    now = source_digests(store, list(sources))
    for uid, source in sources.items():
        location, digest = source["location"], source["digest"] or ""
        if folders and source["kind"] == "dir":
            differs = folder_differences(source["manifest"], location)
            if differs:
                node = _HOST.job.get("node") if _HOST else ""
                raise RunFailed(
                    f"{location} (folder) differs on node {node or socket.gethostname()} "
                    f"from where the grid was submitted: {differs}; a cluster runs a folder "
                    "only where every node sees it alike"
                )
            continue  # runs under a local run's rules for folders (ckg.run.preflight)
        if now.get(uid) != source["digest"]:
            raise RunFailed(
                f"{location} was ingested again since the grid was submitted (content "
                f"{digest[:12]} then, {(now.get(uid) or 'none')[:12]} now): submit it again"
            )
        why = trust.distrust(allowed.get(uid), digest)
        if why:
            raise RunFailed(
                f"{location} ({source['kind']}), {why} on this worker: its operator may "
                f"review it and run `ckg trust {location}` there"
            )


def folder_differences(manifest: dict[str, str], folder) -> str:
    """What differs between the folder ``manifest`` (:func:`ckg.run.provenance.folder_manifest`)
    and ``folder`` here, in words; "" when nothing does.

    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp()); _ = (d / "a.py").write_text("x = 1\\n")
    >>> folder_differences({"a.py": "9e26bf369911c45c"}, d)
    ''
    >>> folder_differences({"a.py": "0", "b.py": "1"}, d)
    'other content in a.py, no b.py'
    >>> folder_differences({}, d / "gone")
    'no such folder'
    """
    if not Path(folder).is_dir():
        return "no such folder"
    here = folder_manifest(folder)
    if here == manifest:
        return ""
    changed = [
        f"other content in {name}"
        for name in sorted(set(here) & set(manifest))
        if here[name] != manifest[name]
    ]
    changed += [f"no {name}" for name in sorted(set(manifest) - set(here))]
    changed += [f"a new {name}" for name in sorted(set(here) - set(manifest))]
    shown = ", ".join(changed[:3])
    return shown + (f" and {len(changed) - 3} more" if len(changed) > 3 else "")


def _recorded(store, uid: str) -> dict | None:
    """A run already complete in the graph: a re-executed task returns it instead of
    running again."""
    row = recorded_run(store, uid)
    if row is None:
        return None
    figures = [f for f in row["figures"] if f.get("metric") and not f.get("device")]
    return {
        "status": row["status"],
        "exit_code": row["exit_code"] or 0,
        "workdir": row["workdir"] or "",
        "log_tail": _tail(row["log_tail"] or ""),
        "error": row["error"] or "",
        "metrics": {f["metric"]: f["value"] for f in figures},
        "units": {f["metric"]: f["unit"] or "" for f in figures},
    }


def _tail(text: str) -> str:
    return "\n".join(text.strip().splitlines()[-LOG_TAIL_LINES:])
