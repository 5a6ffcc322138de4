"""Where a tune's trials run: here, one after another, or on the ``ckg worker`` processes of
a Dask scheduler, as many at once as there are workers, each collected as it finishes; those
workers either already serve a scheduler (``--cluster``) or run in batch jobs this process
submits (``--slurm``, ``--jobqueue``).

Either way a trial is a grid point of one point, run as ``ckg run`` (or ``ckg run
--cluster``, ``--slurm``) runs it, under the Run uid and in the Experiment the tune fixed,
and what it gave is ``{"status", "metrics", "units", "error"}``.
"""

from dataclasses import replace

from ckg.core.errors import RunFailed
from ckg.run.runner import Options
from ckg.run.runner import run as run_points


class Here:
    """Trials on this host, one at a time (as a local grid runs its points)."""

    slots = 1

    def __init__(self, store, home, target: str, options: Options):
        self.store, self.home, self.target, self.options = store, home, target, options
        self.waiting: list[tuple[int, dict, str]] = []

    def __enter__(self) -> "Here":
        return self

    def __exit__(self, *exc) -> None:
        pass

    def start(self, number: int, point: dict, run_uid: str) -> None:
        self.waiting.append((number, point, run_uid))

    def finished(self) -> tuple[int, dict]:
        """Run the waiting trial (there is one: ``slots`` is 1); its number and what it gave."""
        number, point, run_uid = self.waiting.pop(0)
        options = replace(self.options, grid=[point], run_uids=(run_uid,))
        result = run_points(self.store, self.home, self.target, options).runs[0]
        return number, {"status": result.status, "metrics": result.metrics,
                        "units": result.units, "error": result.error}  # fmt: skip


class OnCluster:
    """Trials as tasks of the Dask ``scheduler``'s ``ckg worker`` processes
    (:mod:`ckg.run.cluster`), one per worker at a time; as :func:`ckg.run.cluster.submit.
    run_on_cluster` takes ``platform``, ``certs`` and ``insecure``.

    Raises
    ------
    RunFailed
        No scheduler answers, or it has no worker.
    UsageError
        As :func:`ckg.run.cluster.submit.run_on_cluster` refuses an address or certificates.
    """

    def __init__(
        self,
        store,
        home,
        target: str,
        options: Options,
        scheduler: str,
        *,
        platform=(),
        certs=None,
        insecure: bool = False,
    ):
        from ckg.run.cluster import certs as cluster_certs
        from ckg.run.cluster import resources

        self.address = resources.check_address(scheduler, "--cluster", insecure=insecure)
        resources.require_dask()
        self.security = cluster_certs.security_for(self.address, "client", certs, home)
        self.store, self.home, self.target, self.options = store, home, target, options
        self.platform = tuple(platform)
        # Where the trials went, as task_specs and the Experiment name it.
        self.label, self.flag, self.folders = self.address, "--cluster", False
        self.where_to = f"--cluster {self.address}"
        self.client = self.done = None
        self.futures: dict = {}
        self.slots = 1

    def __enter__(self) -> "OnCluster":
        from distributed import Client, as_completed

        from ckg.run.cluster.resources import SLOT
        from ckg.run.cluster.submit import CONNECT_TIMEOUT_S

        try:
            self.client = Client(
                self.address,
                security=self.security,
                timeout=CONNECT_TIMEOUT_S,
                set_as_default=False,
            )
        except (OSError, TimeoutError) as exc:
            raise RunFailed(
                f"--cluster {self.address}: no Dask scheduler answered ({exc})"
            ) from None
        workers = self.client.scheduler_info(n_workers=-1)["workers"].values()
        self.slots = sum(int((w.get("resources") or {}).get(SLOT, 0)) for w in workers)
        if not self.slots:
            self.client.close()
            raise RunFailed(f"--cluster {self.address}: no `ckg worker` is connected there")
        self.done = as_completed(loop=self.client.loop)
        return self

    def __exit__(self, *exc) -> None:
        self.client.close()

    def start(self, number: int, point: dict, run_uid: str) -> None:
        from ckg.run.cluster.submit import check_offers, task_specs
        from ckg.run.cluster.worker import run_task

        # A spec of a one-point grid, checked as `ckg run --cluster` checks its grid, then
        # given the trial's Run uid and the tune's Experiment.
        options = replace(self.options, grid=[point], experiment=None)
        [spec] = task_specs(
            self.store,
            self.home,
            self.target,
            options,
            self.label,
            self.platform,
            folders=self.folders,
            flag=self.flag,
        )
        fixed = self.options.experiment
        spec |= {
            "run_uid": run_uid,
            "experiment": {
                "uid": fixed["uid"],
                "props": {**fixed["props"], "cluster": self.label},
            },
        }
        check_offers(self.client, [spec], self.where_to)  # rather than wait for no worker
        future = self.client.submit(
            run_task, spec, key=f"ckg-{run_uid}", resources=spec["need"], pure=False
        )
        self.futures[future] = (number, run_uid)
        self.done.add(future)

    def finished(self) -> tuple[int, dict]:
        """The first trial to finish: its number and what it gave; a trial whose worker was
        lost for good is ``lost``, and so is its Run where one was claimed."""
        future = next(self.done)
        number, run_uid = self.futures.pop(future)
        try:
            done = future.result()
        except Exception as exc:  # noqa: BLE001 - KilledWorker, cancelled: lost
            self.store.update_nodes(
                "Run", [run_uid], {"status": "lost", "error": str(exc)}, where={"status": "running"}
            )
            done = {"status": "lost", "error": f"{type(exc).__name__}: {exc}"}
        return number, {
            "status": done["status"],
            "metrics": done.get("metrics") or {},
            "units": done.get("units") or {},
            "error": done.get("error", ""),
        }


class OnJobqueue(OnCluster):
    """Trials as tasks of ``ckg worker`` processes in batch jobs of ``jobs``
    (:func:`ckg.run.cluster.jobqueue.jobqueue_client`), one per job at a time, at most
    ``trials`` jobs; the jobs cancelled when the tune ends, fails or is interrupted. ``db``,
    ``platform`` and ``certs`` as :func:`ckg.run.cluster.jobqueue.run_on_jobqueue` takes
    them.

    Raises
    ------
    RunFailed, UsageError
        As :func:`ckg.run.cluster.jobqueue.run_on_jobqueue` raises them before any point runs.
    """

    def __init__(self, store, home, target: str, options: Options, jobs, *, db: str,
                 trials: int, platform=(), certs=None):  # fmt: skip
        from ckg.run.cluster import jobqueue

        self.where, self.security = jobqueue.checked(jobs, platform, certs, home)
        self.store, self.home, self.target, self.options = store, home, target, options
        self.jobs, self.db, self.platform = jobs, db, tuple(platform)
        self.label = f"{jobs.kind}:{jobs.queue}"
        self.flag, self.folders = jobqueue.batch_flag(jobs), True
        self.where_to = self.flag
        self.slots = min(trials, jobs.jobs)
        self.futures: dict = {}
        self.client = self.done = self.session = None

    def __enter__(self) -> "OnJobqueue":
        from distributed import as_completed

        from ckg.run.cluster.jobqueue import jobqueue_client

        self.session = jobqueue_client(
            self.home, self.jobs, self.where, self.security, db=self.db, wanted=self.slots
        )
        self.client = self.session.__enter__()
        self.done = as_completed(loop=self.client.loop)
        return self

    def __exit__(self, *exc) -> None:
        if exc[0] is not None and issubclass(exc[0], KeyboardInterrupt):
            # The jobs are cancelled: the trials they had claimed will not be finished.
            self.store.update_nodes(
                "Run",
                [run_uid for _, run_uid in self.futures.values()],
                {"status": "lost", "error": "the tune was interrupted"},
                where={"status": "running"},
            )
        self.session.__exit__(*exc)
