"""The Python API: ``ckg.open()`` gives a :class:`KnowledgeGraph`, the CLI calls nothing else.

Each capability (ingest, find, plan, run, results, pareto) is a method here that delegates
to its own module, so this file stays a table of contents of what ckg can do.
"""

from pathlib import Path

from ckg.core import config
from ckg.store import GraphStore, open_store


class KnowledgeGraph:
    """A graph store plus ckg's home folder (caches, journal, trust list).

    Use as a context manager, or call :meth:`close`.
    """

    def __init__(self, store: GraphStore, home: Path):
        self.store = store
        self.home = home

    def __enter__(self) -> "KnowledgeGraph":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.store.close()

    def query(self, cypher: str, params: dict | None = None) -> list[dict]:
        """Run raw Cypher with parameters and return its rows as dicts."""
        return self.store.run(cypher, params or {})

    def status(self) -> dict:
        """Engine, location, and node and relationship counts per label and type."""
        return {"engine": self.store.engine, "location": self.store.location, **self.store.counts()}

    def reset(self) -> None:
        """Delete everything in the graph (the home folder's caches stay)."""
        self.store.reset()

    def run(self, target: str, *, progress=None, **options):
        """Plan, execute, measure and record ``target``; options as :class:`ckg.run.Options`
        (``reproduces``: Result uids or specs its runs reproduce, see :mod:`ckg.results.reproduce`;
        ``experiment``: the name or uid of the experiment the runs join, made if none has
        it); ``progress(done, total, result)`` is called as grid points finish."""
        from ckg.run import Options, run

        with config.private_files():
            return run(self.store, self.home, target, Options(**options), progress)

    def tune(self, target: str, space, objectives, *, budget: int, sampler: str = "tpe",
             seed: int | None = 0, experiment: str | None = None, resume: bool = False,
             reference=None, progress=None, cluster=None, platform=(), certs=None,
             insecure: bool = False, slurm: str | None = None, jobqueue: str | None = None,
             job=(), **options):
        """Search the parameters ``space`` (``--space`` values) of ``target`` for the front of
        ``objectives`` with Optuna, each of ``budget`` trials a recorded run of one
        Experiment; ``resume`` continues the one ``experiment`` names; ``cluster`` a Dask
        scheduler whose workers run the trials (``platform``, ``certs``, ``insecure`` as
        :meth:`run_on_cluster` takes them), or ``slurm`` a partition (``jobqueue`` another
        job queue) in whose batch jobs they run, ``job`` and ``certs`` as
        :meth:`run_on_jobqueue` takes them; options as :meth:`run` takes them
        (:func:`ckg.tune.study.tune`).

        Examples
        --------
        >>> report = kg.tune("sklearn-digits", ["model=knn,svm", "k=int(1,15) if model=knn"],
        ...                  "accuracy,latency", budget=10)  # doctest: +SKIP
        >>> len(report.trials), len(report.front) > 0  # doctest: +SKIP
        (10, True)
        """
        from ckg.run import Options
        from ckg.tune.study import tune

        jobs = None
        if slurm is not None or jobqueue is not None:
            from ckg.core.errors import UsageError
            from ckg.run.cluster.jobqueue import job_options

            if slurm is not None and jobqueue not in (None, "slurm"):
                raise UsageError("--slurm and --jobqueue each say where the trials run: give "
                                 "one (--jobqueue KIND with --job queue=Q)")
            jobs = job_options(jobqueue or "slurm", slurm, job, self.home)
        db = "embedded" if self.store.engine == "falkordb" else self.store.location
        with config.private_files():
            return tune(self.store, self.home, target, list(space), objectives, budget=budget,
                        sampler=sampler, seed=seed, experiment=experiment, resume=resume,
                        reference=reference, options=Options(**options), progress=progress,
                        cluster=cluster, platform=platform, certs=certs, insecure=insecure,
                        jobs=jobs, db=db)

    @staticmethod
    def runs_front(runs, objectives) -> list:
        """The runs of a :meth:`run` report on the Pareto front of ``objectives`` (two or
        more metric names the registry gives a direction), best first by the first; nothing
        is written (:func:`ckg.pareto.frontier.runs_front`; :meth:`pareto` ranks recorded runs).

        Examples
        --------
        >>> report = kg.run("sklearn-digits", grid={"model": ["knn", "svm"]})  # doctest: +SKIP
        >>> [r.params for r in kg.runs_front(report.runs, "accuracy,latency")]  # doctest: +SKIP
        [{'model': 'svm'}]
        """
        from ckg.pareto.frontier import runs_front

        return runs_front(runs, objectives)

    def run_on_cluster(self, target: str, scheduler: str, *, platform=(), certs=None,
                       insecure: bool = False, progress=None, **options):
        """:meth:`run` with each grid point a task of the Dask ``scheduler``
        (``tls://HOST:8786``, with the certificates of ``ckg cluster certs`` in the folder
        ``certs``), run by the ``ckg worker`` processes that offer ``platform``; see
        :func:`ckg.run.cluster.submit.run_on_cluster`."""
        from ckg.run import Options
        from ckg.run.cluster.submit import run_on_cluster

        return run_on_cluster(self.store, self.home, target, Options(**options), scheduler,
                              platform=platform, certs=certs, insecure=insecure,
                              progress=progress)

    def run_on_jobqueue(self, target: str, queue: str | None = None, *, kind: str = "slurm",
                        job=(), platform=(), certs=None, progress=None, **options):
        """:meth:`run` with each grid point run by a ``ckg worker`` in a batch job of Slurm's
        partition ``queue`` (``kind`` ``pbs``, ``lsf``, ``sge`` or ``htcondor``: of another
        job queue), submitted and cancelled here through dask-jobqueue; ``job`` the
        ``KEY=VALUE`` settings of each job over the ``[slurm]`` section of
        ``$CKG_HOME/config.toml`` (:func:`ckg.run.cluster.jobqueue.job_options`); see
        :func:`ckg.run.cluster.jobqueue.run_on_jobqueue`.

        Examples
        --------
        >>> report = kg.run_on_jobqueue("sklearn-digits", "debug", job=["walltime=00:20:00"],
        ...                             grid={"model": ["knn", "svm"]})  # doctest: +SKIP
        """
        from ckg.run import Options
        from ckg.run.cluster.jobqueue import job_options, run_on_jobqueue

        jobs = job_options(kind, queue, job, self.home)
        db = "embedded" if self.store.engine == "falkordb" else self.store.location
        with config.private_files():
            return run_on_jobqueue(self.store, self.home, target, Options(**options), jobs,
                                   db=db, platform=platform, certs=certs, progress=progress)

    def serve_worker(self, scheduler: str, **options) -> None:
        """Run a Dask worker of ``scheduler`` that runs grid points here and records them in
        this graph, until the scheduler or a signal ends it (:func:`ckg.run.cluster.worker.serve`;
        options ``labels``, ``nthreads``, ``name``, ``certs``, ``insecure``,
        ``death_timeout``, ``folders``, ``on_start``)."""
        from ckg.run.cluster.worker import serve

        with config.private_files():
            serve(self.store, self.home, scheduler, **options)

    def demo(self, path=None, *, progress=None):
        """Ingest the scikit-learn example (or the workflow folder ``path``) with its
        reference results, run its grid and return the :class:`ckg.run.Report`
        (:func:`ckg.run.demo.run_demo`)."""
        from ckg.run.demo import run_demo

        with config.private_files():
            return run_demo(self.store, self.home, path, progress)

    def trust(self, source: str) -> list[dict]:
        """Let the artifacts of an ingested source (uid, URL, archive or folder), as last
        ingested, run on this host; returns the sources trusted
        (:func:`ckg.run.trust.trust_source`)."""
        from ckg.run.trust import trust_source

        return trust_source(self.store, self.home, source)

    def container_commands(self, plan) -> dict[str, list[str]]:
        """What a container engine would run for each container step of ``plan`` (a
        :meth:`plan`), by step id (:func:`ckg.run.container.step_commands`)."""
        from ckg.run.container import step_commands

        return {s.id: step_commands(self.store, s) for s in plan.steps
                if s.format == "container"}

    def runs(self, experiment: str | None = None, artifact: str | None = None,
             limit: int = 50) -> list[dict]:
        """Recorded runs, newest first (the steps of a script run left out); ``experiment`` a
        uid (or its start) or a name, selecting every experiment so named
        (:func:`ckg.graph.runs.list_runs`)."""
        from ckg.graph.runs import list_runs

        return list_runs(self.store, experiment, artifact, limit)

    def rm(self, names) -> dict:
        """Remove runs (uids or their starts) and experiments (uids, their starts, or names
        only one has) with their measurements; fronts and reproductions that used them are
        marked stale (:func:`ckg.run.journal.remove`)."""
        from ckg.run.journal import remove

        with config.private_files():
            return remove(self.store, self.home, [names] if isinstance(names, str) else
                          list(names))

    def show_run(self, uid: str) -> dict:
        """One run with what produced it: code, env, packages, platform, every value."""
        from ckg.graph.runs import show_run

        return show_run(self.store, uid)

    def diff_runs(self, uid_a: str, uid_b: str) -> dict:
        """What differs between two runs: commit, files, env, packages, platform, params."""
        from ckg.graph.runs import diff_runs

        return diff_runs(self.store, uid_a, uid_b)

    def run_differences(self, uid_a: str, uid_b: str) -> list[dict]:
        """:meth:`diff_runs` with the values: one row per value that differs (field, key,
        a, b), as ``ckg diff`` prints them (:func:`ckg.graph.runs.differences`)."""
        from ckg.graph.runs import differences

        return differences(self.store, uid_a, uid_b)

    def cache_list(self, tags: str = "") -> list[dict]:
        """Cache entries of MLC/CM scripts under this home (``tags`` filter, ``-x`` excludes)."""
        from ckg.run.scripts.cache import list_entries

        return list_entries(self.home / "cache" / "scripts", tags)

    def cache_rm(self, names: list[str]) -> list[str]:
        """Delete cache entries (by entry name or script alias), and their graph nodes."""
        from ckg.run.scripts.cache import remove_entries

        removed = remove_entries(self.home / "cache" / "scripts", names)
        if removed:
            self.store.delete_nodes("CacheEntry", removed)
        return removed

    def recover(self) -> dict:
        """Write the journalled runs the graph lacks (see :func:`ckg.run.journal.recover`)."""
        from ckg.run.journal import recover

        return recover(self.store, self.home)

    def ingest(self, source, **options):
        """Bring a Git repository, archive, folder or results file into the graph
        (:func:`ckg.ingest.ingest`); a folder written by ``ckg export`` brings its runs in
        (:meth:`import_runs`). Returns a :class:`ckg.ingest.IngestSummary` either way: an
        export's has ``kind`` ``"runs"`` and the import in ``runs_imported``."""
        from ckg.core.records import Problem
        from ckg.ingest import IngestSummary, ingest
        from ckg.transfer import is_export

        if is_export(source):
            imported = self._ingest_export(source, **options)
            problems = [Problem(imported.folder, w) for w in imported.warnings]
            return IngestSummary("", imported.folder, "runs", runs_imported=imported,
                                 warnings=problems)
        with config.private_files():
            return ingest(self.store, self.home, source, **options)

    def _ingest_export(self, folder, *, strict=False, ref=None, name=None, fmt="auto",
                       progress=None, limits=None):
        """:meth:`import_runs`, refusing the options of :meth:`ingest` that name a source
        (``progress`` and archive ``limits`` have nothing to do here)."""
        from ckg.core.errors import UsageError

        given = [flag for flag, value in (("--ref", ref), ("--name", name)) if value]
        given += ["--format"] if fmt != "auto" else []
        if given:
            verb = "does" if len(given) == 1 else "do"
            raise UsageError(f"{folder} is a ckg export of runs: {', '.join(given)} {verb} "
                             "not apply to it")
        return self.import_runs(folder, strict=strict)

    def export_runs(self, runs, to, *, experiment=None, max_log_bytes=None):
        """Write each run with everything it links to, and its logs, into the folder ``to``
        (:func:`ckg.transfer.runs.export_runs`)."""
        from ckg.transfer.runs import MAX_LOG_BYTES, export_runs

        limit = MAX_LOG_BYTES if max_log_bytes is None else max_log_bytes
        with config.private_files():
            return export_runs(self.store, self.home, list(runs), to, experiment=experiment,
                               max_log_bytes=limit)

    def import_runs(self, folder, *, strict: bool = False):
        """Bring in the runs of a folder written by ``ckg export``, logs included
        (:func:`ckg.transfer.runs.import_runs`); :meth:`ingest` of the folder does the same."""
        from ckg.transfer.runs import import_runs

        with config.private_files():
            return import_runs(self.store, self.home, folder, strict=strict)

    def export_graph(self, path, *, progress=None):
        """Write the whole graph to a JSON lines file (:func:`ckg.transfer.graph.export_graph`)."""
        from ckg.transfer.graph import export_graph

        with config.private_files():
            return export_graph(self.store, path, progress=progress)

    def import_graph(self, path, *, progress=None):
        """Merge a file of :meth:`export_graph` into the graph
        (:func:`ckg.transfer.graph.import_graph`)."""
        from ckg.transfer.graph import import_graph

        return import_graph(self.store, path, progress=progress)

    def copy_graph(self, to: str, *, home=None, merge: bool = False, progress=None):
        """Copy every node and relationship into the store ``to`` (``embedded``, of ``home``,
        or a Neo4j URI); see :func:`ckg.transfer.graph.copy_graph`."""
        from ckg.transfer.graph import copy_graph

        with open(to, home=home or self.home) as target:  # ckg.api.open, not the built-in
            return copy_graph(self.store, target.store, merge=merge, progress=progress)

    def find(self, tags="", kind: str | None = None, *, source: str | None = None) -> list[dict]:
        """Artifacts matching CM-style ``tags`` (``a,b,-c,_variation``), of ``source`` only
        when given (a source's name, location, its last part, or a uid start; NotFound when
        it names no ingested source); see :func:`ckg.graph.lookup.find`. UsageError when a
        tag is empty (:func:`ckg.core.resolve.check_tags`)."""
        from ckg.core.resolve import check_tags
        from ckg.graph.lookup import find

        check_tags(tags)
        return find(self.store, tags, kind, source=source)

    def find_page(self, tags="", kind: str | None = None, *, source: str | None = None,
                  offset: int = 0, limit: int = 100) -> tuple[list[dict], int]:
        """``limit`` of :meth:`find`'s artifacts from ``offset`` on (of ``source``, a source
        uid, only when given) and how many match in all (:func:`ckg.graph.lookup.find_page`)."""
        from ckg.core.resolve import check_tags
        from ckg.graph.lookup import find_page

        check_tags(tags)
        return find_page(self.store, tags, kind, source=source, offset=offset, limit=limit)

    def holds_artifacts(self) -> bool:
        """Whether anything was ingested: an empty :meth:`find` then means no match
        (:func:`ckg.graph.lookup.holds_artifacts`)."""
        from ckg.graph.lookup import holds_artifacts

        return holds_artifacts(self.store)

    def select(self, target: str, *, source: str = "", quiet: bool = True,
               use_cache: bool = True):
        """The artifact ``target`` (uid, alias or tags) names, chosen as MLCFlow chooses
        among several: those of ``source`` only, the user's source order, MLCFlow's ``sort``
        and folder order, scripts with cache entries first unless not ``use_cache``; refused
        where MLCFlow would ask and not ``quiet`` (:func:`ckg.graph.lookup.select`)."""
        from ckg.graph.lookup import select

        cached = None
        if use_cache:
            from ckg.run.scripts.cache import ScriptCache

            cache = ScriptCache(Path(self.home) / "cache" / "scripts")
            cached = lambda uids: [u for u in uids if cache.entries_of(u)]  # noqa: E731
        return select(self.store, target, source=source, quiet=quiet, cached=cached)

    def show(self, alias_or_uid: str, *, source: str = "") -> dict:
        """One artifact with meta, dependencies, variations and source."""
        from ckg.graph.lookup import show

        return show(self.store, alias_or_uid, source=source)

    def deps(self, alias_or_uid: str, depth: int | None = None, reverse: bool = False, *,
             source: str = "", via: bool = True) -> dict:
        """The dependency tree of an artifact, or of its dependents when ``reverse``; its
        children without their edges where ``via`` is False (:func:`ckg.graph.lookup.deps`)."""
        from ckg.graph.lookup import deps

        return deps(self.store, alias_or_uid, depth, reverse, source=source, via=via)

    def import_results(self, paths):
        """Import result files or folders (PwC, MLPerf, tables); see
        :mod:`ckg.results.published`."""
        from ckg.results.published import import_results

        return import_results(self.store, self.home, paths)

    def results(self, task=None, dataset=None, metric=None, model=None):
        """Published results matching the filters, as a pandas DataFrame."""
        from ckg.results.published import results

        return results(self.store, task=task, dataset=dataset, metric=metric, model=model)

    def compare(self, task: str, dataset: str, metric: str, direction: str | None = None, *,
                start: int = 0, stop: int | None = None):
        """Every paper's result for a task, dataset and metric, best first, as a DataFrame
        (``direction`` ``min`` / ``max`` for a metric whose direction is not known); rows
        ``start`` to ``stop`` of it alone, read as a page
        (:func:`ckg.results.published.compare`)."""
        from ckg.results.published import compare

        return compare(self.store, task, dataset, metric, direction, start=start, stop=stop)

    def link(self, artifact: str, paper: str) -> dict:
        """Record that an artifact implements a paper (``IMPLEMENTS``); see
        :func:`ckg.results.published.link_artifact`."""
        from ckg.results.published import link_artifact

        return link_artifact(self.store, artifact, paper)

    def reproduce(self, paper: str, **options):
        """Run what reproduces each result of ``paper`` and compare reported with reproduced
        (:func:`ckg.results.reproduce.reproduce`; options ``repeat``, ``trust``, ``timeout_s``)."""
        from ckg.results.reproduce import reproduce

        return reproduce(self.store, self.home, paper, **options)

    def named_query(self, name, params: dict | None = None) -> list[dict]:
        """Run a named query (one ckg ships, or a ``.cypher`` path, or a loaded
        :class:`ckg.graph.named.NamedQuery`) with its parameters."""
        from ckg.graph import named

        return named.run(self.store, name, params)

    def why_empty(self, name, params: dict | None = None) -> str:
        """Why the named query found no rows: a kind of node the graph lacks, a value that
        names no node, or nothing matched (:func:`ckg.graph.named.why_empty`)."""
        from ckg.graph import named

        return named.why_empty(self.store, named.load(name) if isinstance(name, str)
                                 else name, params)

    def plan(self, target: str, variations=(), env: dict | None = None, adr=None):
        """The ordered steps that run ``target``, guards evaluated; ``adr`` the user's
        ``add_deps_recursive`` (:func:`ckg.plan.plan`)."""
        from ckg.plan import plan

        return plan(self.store, target, variations, env, adr, home=self.home)

    def pareto(self, objectives, **kw):
        """Pareto fronts of runs or published results, written back; see
        ckg.pareto.frontier.pareto."""
        from ckg.pareto.frontier import pareto

        return pareto(self.store, objectives, **kw)

    # Reads for browsing (ckg serve); see ckg.graph.browse.

    def run_table(self, **filters) -> list[dict]:
        """Runs with every measurement, filtered by experiment, artifact, status, platform."""
        from ckg.graph.browse import run_table

        return run_table(self.store, **filters)

    def experiments(self) -> list[dict]:
        """Every experiment with its number of runs and the metrics they measured."""
        from ckg.graph.browse import experiments

        return experiments(self.store)

    def experiment(self, name_or_uid: str) -> dict:
        """One experiment as :meth:`experiments` lists it, by its uid, the start of one or a
        name only it has (NotFound names the others; UsageError those that share a name)."""
        from ckg.graph.browse import experiment

        return experiment(self.store, name_or_uid)

    def leaderboards(self) -> list[dict]:
        """Each task, dataset and metric that published results have, with their count."""
        from ckg.graph.browse import leaderboards

        return leaderboards(self.store)

    def reproductions(self, result_uids) -> dict[str, list[dict]]:
        """Runs recorded as reproducing each of these results, with the value they measured."""
        from ckg.graph.browse import reproductions

        return reproductions(self.store, result_uids)

    def platforms(self) -> list[dict]:
        """Every platform with the number of runs and published results on it."""
        from ckg.graph.browse import platforms

        return platforms(self.store)

    def platform(self, uid: str) -> dict:
        """One platform's fingerprint, its runs and the published results measured on it."""
        from ckg.graph.browse import platform

        return platform(self.store, uid)

    def sources(self) -> list[dict]:
        """Every ingested source: location, kind, commit."""
        from ckg.graph.browse import sources

        return sources(self.store)


def open(db: str | None = None, *, home: str | Path | None = None) -> KnowledgeGraph:  # noqa: A001
    """Open ckg's graph: ``embedded`` (default) or a Neo4j URI, schema ensured.

    Examples
    --------
    >>> import ckg
    >>> with ckg.open() as kg:            # doctest: +SKIP
    ...     kg.query("MATCH (a:Artifact) RETURN count(a) AS n")
    [{'n': 0}]
    """
    home_path = Path(home) if home else config.home()
    store = open_store(db, home=home_path)
    store.ensure_schema()
    return KnowledgeGraph(store, home_path)
