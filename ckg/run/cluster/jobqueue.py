"""``ckg run --slurm PARTITION``: the grid's workers as batch jobs of Slurm, through Dask's
`dask-jobqueue <https://jobqueue.dask.org>`_ (or of PBS, LSF, SGE or HTCondor: ``--jobqueue``).

The submitting ``ckg`` starts a Dask scheduler in its own process (dask-jobqueue's
``SLURMCluster``, TLS with the cluster's certificates, :mod:`~ckg.run.cluster.certs`) and
submits up to ``jobs`` batch jobs, each running ``ckg worker`` against it: the same worker
as on any other machine, which reads the certificates' folder and offers its host's
fingerprint and its job's partition (:mod:`~ckg.run.cluster.resources`). dask-jobqueue
writes each job's script from its own template (resources, ``#SBATCH`` lines, prologue);
ckg gives it only the command, ``ckg worker``, in place of ``dask worker``. The points then
travel as with ``--cluster`` (:mod:`~ckg.run.cluster.submit`), and every job is cancelled
when the grid ends, fails or is interrupted (Ctrl-C, SIGTERM). A job whose submitter was
killed ends when its point does (its worker lost the scheduler), or when it could not reach
the scheduler for :data:`DEATH_TIMEOUT_S` seconds.

A cluster's nodes share a filesystem: the jobs use the submitter's ckg home (its trust list,
caches and, for the embedded graph, its server, which only jobs on the submitter's own host
reach: give ``--db bolt://...`` elsewhere) and ckg itself from the submitter's environment;
they run as the submitter's user, so a folder source runs in them too, where the node sees
the folder with the content the submitter saw (``ckg worker --folders``).
Job settings come from ``--job KEY=VALUE`` over the section of the job queue's name
(``[slurm]``) of ``$CKG_HOME/config.toml`` over :class:`Jobs`' defaults.
"""

import inspect
import shlex
import signal
import sys
import time
import tomllib
from contextlib import contextmanager
from dataclasses import dataclass, fields, replace
from pathlib import Path

from ckg.core.errors import RunFailed, UsageError, require_extra
from ckg.run.cluster import certs as cluster_certs
from ckg.run.cluster import resources
from ckg.run.cluster.submit import check_offers, collect, report, task_specs

#: The job queues of dask-jobqueue that ``--jobqueue`` names, and their cluster classes.
KINDS = {
    "slurm": "SLURMCluster",
    "pbs": "PBSCluster",
    "lsf": "LSFCluster",
    "sge": "SGECluster",
    "htcondor": "HTCondorCluster",
}
#: In ckg's home: the job settings, one section per job queue.
CONFIG = "config.toml"
#: In ckg's home: each job's output and errors (``ckg-worker-JOBID.err`` with Slurm).
LOGS = "jobs"
JOB_NAME = "ckg-worker"
#: Seconds a job's worker waits for a scheduler that went away before it ends.
DEATH_TIMEOUT_S = 60
POLL_S = 0.2
#: Seconds between two checks that every job the grid asked for is queued or running.
RESCALE_S = 2
#: While no worker has joined, ``squeue`` is asked every this many polls whether the jobs
#: are still queued or running.
SQUEUE_EVERY = 10


@dataclass(frozen=True)
class Jobs:
    """What each batch job asks for, and how many are submitted.

    Attributes
    ----------
    kind : str
        The job queue, one of :data:`KINDS`.
    queue : str
        Slurm's partition (PBS', LSF's or SGE's queue); "" for the queue's default.
    account : str
        The account charged (``#SBATCH -A``); "" for the user's default.
    walltime : str
        Each job's time limit, ``HH:MM:SS``.
    cores, memory : int, str
        CPUs and memory per job (``--cpus-per-task``, ``--mem``; ``4GB``).
    disk : str
        Disk per job, for HTCondor (which requires it).
    gres : str
        Slurm's generic resources per job, ``gpu:1`` or ``gpu:a100:2``.
    directive : tuple of str
        More lines of the job's header, without the ``#SBATCH`` (``--constraint=a100``).
    prologue : tuple of str
        Shell lines run before the worker starts (``module load cuda``, ``source
        ~/venv/bin/activate``).
    jobs : int
        The most jobs at once; a grid of fewer points submits one job per point.
    interface : str
        The network interface the scheduler and workers listen on (``ib0``); "" for the
        one of the default route.
    """

    kind: str = "slurm"
    queue: str = ""
    account: str = ""
    walltime: str = "01:00:00"
    cores: int = 1
    memory: str = "4GB"
    disk: str = "1GB"
    gres: str = ""
    directive: tuple[str, ...] = ()
    prologue: tuple[str, ...] = ()
    jobs: int = 8
    interface: str = ""


def job_options(kind: str, queue: str | None = None, given=(), home: Path | None = None) -> Jobs:
    """The :class:`Jobs` of ``kind``: :class:`Jobs`' defaults, then the ``[kind]`` section
    of ``home``'s :data:`CONFIG`, then ``given`` (``KEY=VALUE`` of ``--job``; ``directive``
    and ``prologue`` add a line each time), then ``queue``.

    >>> job_options("slurm", "gpu", ["walltime=02:00:00", "prologue=module load cuda",
    ...                              "prologue=source ~/venv/bin/activate", "jobs=2"])
    ... # doctest: +NORMALIZE_WHITESPACE
    Jobs(kind='slurm', queue='gpu', account='', walltime='02:00:00', cores=1, memory='4GB',
         disk='1GB', gres='', directive=(),
         prologue=('module load cuda', 'source ~/venv/bin/activate'), jobs=2, interface='')

    Raises
    ------
    UsageError
        An unknown job queue or key, a count below 1, a config file that is not TOML;
        naming the file or flag.
    """
    if kind not in KINDS:
        raise UsageError(f"--jobqueue {kind!r}: expected one of {', '.join(KINDS)}")
    settings = Jobs(kind=kind)
    path = Path(home) / CONFIG if home else None
    if path and path.is_file():
        try:
            section = tomllib.loads(path.read_text()).get(kind, {})
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise UsageError(f"{path}: not TOML ({exc})") from None
        settings = _apply(settings, section.items(), f"{path} [{kind}]")
    pairs = []
    for text in given:
        key, sep, value = text.partition("=")
        if not sep:
            raise UsageError(f"--job {text!r}: expected KEY=VALUE")
        pairs.append((key.strip(), value))
    settings = _apply(settings, pairs, "--job", add=True)
    return replace(settings, queue=queue) if queue else settings


def _apply(settings: Jobs, pairs, where: str, add: bool = False) -> Jobs:
    known = {f.name: f.type for f in fields(Jobs) if f.name != "kind"}
    changed = {}
    for key, value in pairs:
        kind = known.get(key)
        if kind is None:
            raise UsageError(f"{where}: unknown key {key!r}; expected one of {', '.join(known)}")
        if kind == tuple[str, ...]:
            lines = [value] if isinstance(value, str) else list(value)
            before = changed.get(key, getattr(settings, key) if add else ())
            changed[key] = (*before, *map(str, lines))
        elif kind is int:
            try:
                changed[key] = int(value)
            except (TypeError, ValueError):
                changed[key] = 0
            if changed[key] < 1:
                raise UsageError(f"{where}: {key} = {value!r}: expected a whole number >= 1")
        else:
            changed[key] = str(value)
    return replace(settings, **changed)


def run_on_jobqueue(
    store,
    home,
    target: str,
    options,
    jobs: Jobs,
    *,
    db: str,
    platform=(),
    certs=None,
    progress=None,
):
    """Run the grid of ``options`` on ``ckg worker`` processes in batch jobs of ``jobs``.

    Parameters
    ----------
    store : GraphStore
        The graph the workers record into, named ``db`` for them (``embedded`` or a Neo4j
        URI).
    home : Path
        ckg's home, which the jobs use too (a cluster's nodes share a filesystem).
    options : ckg.run.Options
        As :func:`ckg.run.cluster.submit.run_on_cluster` takes them.
    jobs : Jobs
        The job queue, what each job asks for and how many (:func:`job_options`).
    certs : path, optional
        The folder of ``ckg cluster certs`` (:func:`ckg.run.cluster.certs.folder` when
        None), which the jobs read where the submitter does.
    platform, progress
        As :func:`ckg.run.cluster.submit.run_on_cluster` takes them; ``platform`` may ask
        for ``partition=NAME`` too.

    Returns
    -------
    Report
        One result per grid point, in grid order.

    Raises
    ------
    RunFailed
        A job's worker failed before it started (naming its log), or its workers do not
        offer what a point needs.
    UsageError
        As :func:`ckg.run.cluster.submit.run_on_cluster`; a key the job queue does not
        take.
    """
    where, security = checked(jobs, platform, certs, home)
    flag = batch_flag(jobs)
    specs = task_specs(
        store,
        home,
        target,
        options,
        f"{jobs.kind}:{jobs.queue}",
        platform,
        folders=True,
        flag=flag,
    )
    try:
        with jobqueue_client(home, jobs, where, security, db=db, wanted=len(specs)) as client:
            check_offers(client, specs, flag)
            results = collect(client, specs, progress)
    except KeyboardInterrupt:
        # The jobs are cancelled: the points they had claimed will not be finished.
        store.update_nodes(
            "Run",
            [spec["run_uid"] for spec in specs],
            {"status": "lost", "error": "the grid was interrupted"},
            where={"status": "running"},
        )
        raise
    return report(store, specs, results)


def checked(jobs: Jobs, platform=(), certs=None, home: Path | None = None):
    """What batch jobs of ``jobs`` need, checked before any is queued: Dask and
    dask-jobqueue installed, settings the job queue takes, a well-formed ``platform``, the
    certificates (:func:`ckg.run.cluster.certs.folder` of ``certs`` when None) of the
    scheduler, the client and the jobs. Returns the certificates' folder and the TLS of
    :func:`jobqueue_client`.

    Raises
    ------
    UsageError
        As :func:`run_on_jobqueue` raises it for these.
    """
    resources.require_dask()
    require_extra("slurm", "dask_jobqueue", what=f"--jobqueue {jobs.kind}")
    _cluster_class(jobs)  # settings the job queue does not take, before anything else
    resources.required(platform)
    where = cluster_certs.folder(certs, home).absolute()
    return where, _security(where)


def batch_flag(jobs: Jobs) -> str:
    """The option that sends work to ``jobs``' queue, as errors name it.

    >>> batch_flag(Jobs(queue="gpu")), batch_flag(Jobs(kind="pbs", queue="workq"))
    ('--slurm gpu', '--jobqueue pbs')
    """
    if jobs.kind == "slurm":
        return f"--slurm {jobs.queue}".rstrip()
    return f"--jobqueue {jobs.kind}"


@contextmanager
def jobqueue_client(home, jobs: Jobs, where: Path, security, *, db: str, wanted: int):
    """A Dask client of the scheduler whose ``ckg worker`` processes run in ``min(wanted,
    jobs.jobs)`` batch jobs of ``jobs``, once one has joined; each job that ends meanwhile
    submitted again, and every job cancelled when the block ends, by an error, Ctrl-C or
    SIGTERM. ``where`` and ``security`` are :func:`checked`'s; ``db`` the graph as the jobs
    name it (``embedded`` or a Neo4j URI).

    Raises
    ------
    RunFailed
        As :func:`run_on_jobqueue` raises it before any point runs.
    """
    worker = [
        _ckg(),
        "--db",
        db,
        "worker",
        "--certs",
        str(where),
        "--death-timeout",
        str(DEATH_TIMEOUT_S),
        "--folders",
    ]
    prologue = [*jobs.prologue, f"export CKG_HOME={shlex.quote(str(Path(home).absolute()))}"]
    from distributed import Client

    with (
        _cluster(jobs, worker, prologue, security, Path(home) / LOGS) as cluster,
        Client(cluster.scheduler_address, security=security, set_as_default=False) as client,
        _jobs_kept(cluster, min(wanted, jobs.jobs)),
    ):
        _first_worker(client, cluster, Path(home) / LOGS, batch_flag(jobs), jobs.kind)
        yield client


def _security(where: Path):
    """Dask's TLS for the scheduler this process runs and for its client, from ``where``."""
    from distributed.security import Security

    ca, scheduler_cert, scheduler_key = cluster_certs.files(where, "scheduler")
    _, client_cert, client_key = cluster_certs.files(where, "client")
    cluster_certs.files(where, "worker")  # the jobs' own, checked before any job is queued
    return Security(
        tls_ca_file=ca,
        require_encryption=True,
        tls_scheduler_cert=scheduler_cert,
        tls_scheduler_key=scheduler_key,
        tls_client_cert=client_cert,
        tls_client_key=client_key,
    )


def _ckg() -> str:
    """This ckg's command, which the jobs run too (the nodes share the filesystem)."""
    beside = Path(sys.executable).with_name("ckg")
    return str(beside) if beside.exists() else "ckg"


@contextmanager
def _cluster(jobs: Jobs, worker: list[str], prologue: list[str], security, logs: Path):
    """dask-jobqueue's cluster of ``jobs.kind``, whose jobs run ``worker``; its jobs cancelled
    when the block ends, by an error, Ctrl-C or SIGTERM."""
    base = _cluster_class(jobs)
    wanted = {
        "queue": jobs.queue,
        "account": jobs.account,
        "walltime": jobs.walltime,
        "cores": jobs.cores,
        "memory": jobs.memory,
        "disk": jobs.disk,
        "processes": 1,
        "job_extra_directives": [*jobs.directive, *([f"--gres={jobs.gres}"] if jobs.gres else [])],
        "job_script_prologue": prologue,
        "log_directory": str(logs),
        "job_name": JOB_NAME,
        "interface": jobs.interface or None,
    }
    takes = _parameters(base.job_cls)
    logs.mkdir(mode=0o700, parents=True, exist_ok=True)
    cluster = base(
        job_cls=_job_class(base.job_cls, worker),
        security=security,
        scheduler_options={"dashboard": False, "dashboard_address": ":0"},
        silence_logs="error",
        **{key: value for key, value in wanted.items() if key in takes and value not in ("", None)},
    )
    with cluster, _sigterm_interrupts():
        if jobs.kind == "slurm":
            _sbatch_test_only(cluster.job_script(), jobs)
        yield cluster


def _sbatch_test_only(script: str, jobs: Jobs) -> None:
    """Refuse, before any job is queued, a job script Slurm would not take (a partition,
    account or resources it does not have), with sbatch's own reason.

    Raises
    ------
    RunFailed
        sbatch's last error line, or that there is no sbatch here.
    """
    import subprocess

    flag = f"--slurm {jobs.queue}".rstrip()
    try:
        done = subprocess.run(
            ["sbatch", "--test-only"], input=script, capture_output=True, text=True, timeout=60
        )
    except FileNotFoundError:
        raise RunFailed(f"{flag}: no sbatch here: submit from a Slurm login node") from None
    if done.returncode:
        said = done.stderr.strip().splitlines() or ["no reason given"]
        errors = [line for line in said if "error" in line]
        raise RunFailed(f"{flag}: Slurm does not take its jobs: {(errors or said)[-1]}")


def _cluster_class(jobs: Jobs):
    """dask-jobqueue's cluster class of ``jobs.kind``.

    Raises
    ------
    UsageError
        ``jobs`` sets what that job queue takes no setting for (``gres`` outside Slurm).
    """
    base = getattr(_dask_jobqueue(), KINDS[jobs.kind])
    asked = {
        key
        for key in ("queue", "account", "walltime", "disk")
        if getattr(jobs, key) != getattr(Jobs(), key)
    }
    refused = sorted(asked - _parameters(base.job_cls))
    refused += ["gres"] if jobs.gres and jobs.kind != "slurm" else []
    if refused:
        raise UsageError(f"--jobqueue {jobs.kind} takes no {', '.join(refused)}")
    return base


def _dask_jobqueue():
    """dask-jobqueue, imported with this process' Ctrl-C as it was: its runner module, which
    it imports, makes SIGINT a silent exit with status 0, which skipped cancelling the jobs."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        import dask_jobqueue

        return dask_jobqueue
    before = signal.getsignal(signal.SIGINT)
    try:
        import dask_jobqueue
    finally:
        signal.signal(signal.SIGINT, before)
    return dask_jobqueue


def _parameters(job_cls) -> set[str]:
    """The keywords ``job_cls`` takes, its base classes' included."""
    return {
        name
        for cls in job_cls.__mro__
        if "__init__" in vars(cls)
        for name in inspect.signature(cls.__init__).parameters
    }


def _job_class(base, worker: list[str]):
    """``base`` (dask-jobqueue's job of a kind), whose job runs ``ckg worker`` with the name
    the cluster gives it, in place of ``dask worker`` (which knows no ckg task)."""

    from distributed.deploy.spec import ProcessInterface

    class CkgJob(base):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            # dask-jobqueue's template ends with its command line, kept here as a string.
            self._command_template = shlex.join(
                [*worker, "--scheduler", str(self.scheduler), "--name", str(self.name)]
            )

        async def start(self):
            try:
                await super().start()
            except Exception as exc:  # noqa: BLE001 - kept for the grid's message, re-raised
                said = str(exc).strip().splitlines() or [type(exc).__name__]
                self.refused = next((line for line in reversed(said) if "error" in line), said[-1])
                raise

        async def close(self):
            await super().close()  # cancels the job
            # dask-jobqueue's close leaves the job ``running``, which the cluster's own close
            # then asserts against when the job is still referenced (an interrupted grid).
            await ProcessInterface.close(self)

    return CkgJob


@contextmanager
def _sigterm_interrupts():
    """Inside the block SIGTERM interrupts as Ctrl-C does, so that the jobs are cancelled
    when the submitter is asked to end (``scancel`` of a submitting job, ``kill``)."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    before = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)


@contextmanager
def _jobs_kept(cluster, jobs: int):
    """``jobs`` jobs submitted, and each that ends while the block runs (cancelled,
    preempted, out of time) submitted again: Dask's cluster forgets a job whose worker was
    lost after ``distributed.deploy.lost-worker-timeout`` (15 s), and scaling it to the same
    number then submits one in its place."""
    import threading

    cluster.scale(jobs=jobs)
    done = threading.Event()

    def keep() -> None:
        while not done.wait(RESCALE_S):
            cluster.scale(jobs=jobs)

    keeper = threading.Thread(target=keep, name="ckg-jobs-kept", daemon=True)
    keeper.start()
    try:
        yield
    finally:
        done.set()
        keeper.join()


def _first_worker(client, cluster, logs: Path, flag: str, kind: str) -> None:
    """Wait, as long as the queue keeps the jobs, until one job's worker has joined.

    Raises
    ------
    RunFailed
        A job's worker said ``ckg: error:`` before any joined (its certificates, its
        graph), naming the job and its log; every job was refused by the job queue, with
        its reason; with Slurm, every job left the queue first (a prologue that failed, a
        node that failed), naming their logs.
    """
    polls = 0
    while not client.scheduler_info(n_workers=-1)["workers"]:
        submitted = list(cluster.workers.values())
        refused = [job.refused for job in submitted if getattr(job, "refused", "")]
        if refused and len(refused) == len(submitted):
            raise RunFailed(f"{flag}: every job was refused: {refused[-1]}")
        ids = [job.job_id for job in submitted if job.job_id]
        for job_id in ids:
            for log in logs.glob(f"*-{job_id}.err"):
                errors = [
                    line
                    for line in log.read_text(errors="replace").splitlines()
                    if line.startswith("ckg: error:")
                ]
                if errors:
                    raise RunFailed(
                        f"{flag}: job {job_id}'s worker did not start: "
                        f"{errors[-1][len('ckg: error: ') :]} ({log})"
                    )
        polls += 1
        if kind == "slurm" and ids and polls % SQUEUE_EVERY == 0 and not _queued(ids):
            raise RunFailed(
                f"{flag}: jobs {', '.join(ids)} ended before their worker "
                f"joined: see {logs}/{JOB_NAME}-JOBID.err"
            )
        time.sleep(POLL_S)


def _queued(ids: list[str]) -> bool:
    """Whether ``squeue`` still lists one of the Slurm jobs ``ids`` (True when it cannot
    tell: the grid then keeps waiting)."""
    import subprocess

    try:
        listed = subprocess.run(
            ["squeue", "-h", "-o", "%i", "-j", ",".join(ids)],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError):
        return True
    # squeue fails with "Invalid job id specified" once every job of the list is gone
    return (
        listed.returncode != 0
        and "Invalid job id" not in listed.stderr
        or bool(listed.stdout.split())
    )
