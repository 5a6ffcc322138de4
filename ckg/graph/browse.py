"""Reads for browsing the graph (``ckg serve``): runs with their measurements, experiments,
leaderboards, reproductions of published results, platforms and sources.

Each function takes a store and returns plain rows, so the web view and scripts read the
same thing; none of them writes.
"""

import json

from ckg.core.errors import NotFound
from ckg.core.schema import check_name

_RUNS = """
MATCH (r:Run)
WHERE $status IS NULL OR r.status = $status
OPTIONAL MATCH (r)-[:OF]->(a:Artifact)
WITH r, a WHERE $artifact IS NULL OR a.alias = $artifact OR a.uid = $artifact
OPTIONAL MATCH (caller:Run)-[:CALLED]->(r)
WITH r, a, caller WHERE caller IS NULL
OPTIONAL MATCH (r)-[:IN]->(e:Experiment)
WITH r, a, e WHERE $experiment IS NULL OR e.uid = $experiment
OPTIONAL MATCH (r)-[:ON]->(p:Platform)
WITH r, a, e, p WHERE $platform IS NULL OR p.uid = $platform
RETURN r.uid AS run, r.started_at AS started_at, a.uid AS artifact_uid, a.alias AS artifact,
       e.name AS experiment, e.uid AS experiment_uid, r.status AS status, r.params AS params,
       p.uid AS platform, p.name AS platform_name
ORDER BY started_at DESC, run
LIMIT $limit
"""
_MEASURED = """
MATCH (r:Run)-[:MEASURED]->(m:Measurement)
WHERE r.uid IN $uids AND m.device IS NULL
RETURN r.uid AS run, m.metric AS metric, m.value AS value, m.unit AS unit, m.method AS method,
       m.n AS n, m.stdev AS stdev
ORDER BY run, metric
"""
_EXPERIMENTS = """
MATCH (e:Experiment) WHERE $uid IS NULL OR e.uid = $uid
OPTIONAL MATCH (r:Run)-[:IN]->(e)
OPTIONAL MATCH (r)-[:MEASURED]->(m:Measurement) WHERE m.device IS NULL
RETURN e.uid AS uid, e.name AS name, e.target AS target, e.created_at AS created_at,
       count(DISTINCT r) AS runs, collect(DISTINCT m.metric) AS metrics
ORDER BY name, uid
"""
# Grouped by the names each result keeps (those of its FOR_TASK, ON_DATASET and OF_METRIC
# ends), then joined to the few metrics: walking three edges of each of 218,700 results
# (100x the corpora) took 6 s of the /results page, grouping their properties one.
_LEADERBOARDS = """
MATCH (r:Result)
WHERE r.value IS NOT NULL AND r.task <> '' AND r.dataset <> ''
WITH r.task AS task, r.dataset AS dataset, r.metric AS metric, count(r) AS results,
     count(DISTINCT r.source_uid) AS sources
MATCH (m:Metric {name: metric})
RETURN task, dataset, m.name AS metric, m.direction AS direction, results, sources
ORDER BY task, dataset, metric
"""
# The metrics of one task and dataset's leaderboards (those of _LEADERBOARDS): the results
# tested on the names they keep, where grouping all of them for every board took 0.34 s of
# a front's page at 100x the corpora (0.05 s so).
_BOARD_METRICS = """
MATCH (r:Result)
WHERE r.task = $task AND r.dataset = $dataset AND r.value IS NOT NULL
WITH DISTINCT r.metric AS metric
MATCH (m:Metric {name: metric})
RETURN m.name AS metric ORDER BY metric
"""
_REPRODUCED = """
MATCH (res:Result)<-[:REPRODUCES]-(run:Run)-[:MEASURED]->(x:Measurement)
WHERE res.uid IN $uids AND run.status = 'ok' AND x.metric = res.metric AND x.device IS NULL
RETURN res.uid AS result, run.uid AS run, coalesce(x.mean, x.value) AS reproduced,
       x.unit AS unit, x.stdev AS stdev, x.n AS n
ORDER BY result, run
"""
#: The rows of the named query compare-papers (ckg/graph/queries/compare-papers.cypher) from
#: $skip, $limit of them: ranked on the result and its paper alone, then the page's
#: implementing artifacts; and how many rows each dataset (a part, or the dataset) has.
#: A result keeps the names of its task and metric (those of its FOR_TASK and OF_METRIC
#: edges, ckg.formats.published.build): tested there, not walked to (two walks of each
#: result cost 0.12 s of a SQuAD1.1 page at 100x the corpora).
_COMPARED = """
MATCH (m:Metric {name: $metric})
MATCH (:Dataset {name: $dataset})<-[:PART_OF*0..]-(part:Dataset)
WITH m, part
MATCH (r:Result)-[:ON_DATASET]->(part)
WHERE r.value IS NOT NULL AND r.task = $task AND r.metric = $metric
OPTIONAL MATCH (p:Paper)-[:REPORTS]->(r)
WITH r, m, p, coalesce($direction, m.direction) AS direction
"""
_COMPARED_ORDER = """ORDER BY metric, dataset,
         CASE direction WHEN 'min' THEN r.value WHEN 'max' THEN -r.value END, model, result"""
_COMPARED_PAGE = _COMPARED + f"""WITH r, m, p, direction, m.name AS metric, r.dataset AS dataset,
     r.model AS model, r.uid AS result
{_COMPARED_ORDER} SKIP $skip LIMIT $limit
OPTIONAL MATCH (a:Artifact)-[:IMPLEMENTS]->(p)
WITH r, m, p, direction, collect(DISTINCT a.uid) AS artifacts
RETURN m.name AS metric, r.dataset AS dataset, direction, r.model AS model,
       r.value AS value, r.unit AS unit, r.stderr AS stderr, r.raw AS raw, p.title AS paper,
       p.url AS paper_url, coalesce(p.date, r.date) AS date, p.code_urls AS code, artifacts,
       r.uid AS result
{_COMPARED_ORDER}
"""
_COMPARED_COUNTS = _COMPARED + "RETURN r.dataset AS dataset, count(*) AS rows ORDER BY dataset"
#: What tells apart the results of a benchmark's submissions (MLPerf: one model, no paper).
SUBMISSION = ("submitter", "system", "division", "scenario", "version")
_SUBMISSIONS = (
    "UNWIND $uids AS u MATCH (r:Result {uid: u}) RETURN r.uid AS result, "
    + ", ".join(f"r.{field} AS {field}" for field in SUBMISSION)
)
_PLATFORMS = """
MATCH (p:Platform)
OPTIONAL MATCH (r:Run)-[:ON]->(p)
WITH p, count(r) AS runs
OPTIONAL MATCH (res:Result)-[:ON]->(p)
RETURN p.uid AS uid, p.name AS name, p.submitter AS submitter, p.origin AS origin,
       p.cpu_model AS cpu_model, p.accelerators AS accelerators, runs, count(res) AS results
ORDER BY name, uid
"""
_PLATFORM_RESULTS = """
MATCH (res:Result)-[:ON]->(:Platform {uid: $uid})
RETURN res.uid AS result, res.task AS task, res.dataset AS dataset, res.model AS model,
       res.scenario AS scenario, res.version AS version, res.metric AS metric,
       res.value AS value, res.unit AS unit
ORDER BY task, dataset, model, scenario, version, metric, result
"""
_SOURCES = """
MATCH (s:Source)
RETURN s.uid AS uid, s.location AS location, s.kind AS kind, s.commit AS commit,
       s.ingested_at AS ingested_at
ORDER BY location, uid
"""

#: Every Result, or those on a dataset and its parts: from the dataset's index (WITH keeps
#: FalkorDB from starting at every Result: 8 ms against 1 s for a path tested on each of
#: 30,000).
_ALL_RESULTS = "MATCH (r:Result)"
_RESULTS_ON_DATASET = """MATCH (:Dataset {name: $dataset})<-[:PART_OF*0..]-(part:Dataset)
WITH part
MATCH (part)<-[:ON_DATASET]-(r:Result)"""
_PUBLISHED = """
WHERE ($task IS NULL OR r.task = $task)
  AND ($metric IS NULL OR r.metric = $metric)
  AND ($model IS NULL OR r.model = $model)
OPTIONAL MATCH (p:Paper)-[:REPORTS]->(r)
OPTIONAL MATCH (r)-[:ON]->(pl:Platform)
RETURN r.task AS task, r.dataset AS dataset, r.model AS model, r.metric AS metric,
       r.value AS value, r.unit AS unit, r.stderr AS stderr, r.raw AS raw,
       p.uid AS paper, p.title AS paper_title, coalesce(p.date, r.date) AS date,
       pl.uid AS platform, r.scenario AS scenario, r.source_uid AS source_uid, r.uid AS result
ORDER BY task, dataset, metric, model, result
"""

#: A front's points (:mod:`ckg.pareto.frontier`): whole-run measurements of ok runs, and published
#: results; ``{where}`` is the user's Cypher condition on the variables named there.
_MEASURED_POINTS = """
MATCH (r:Run)-[:MEASURED]->(m:Measurement)
OPTIONAL MATCH (r)-[:IN]->(e:Experiment)
WITH r, m, e
WHERE coalesce(r.status, 'ok') = 'ok'
  AND ($experiment IS NULL OR e.uid = $experiment)
  AND ($metrics IS NULL OR m.metric IN $metrics)
  AND m.device IS NULL
  AND ({where})
RETURN r.uid AS uid, r.params AS params, e.name AS experiment,
       m.metric AS metric, m.value AS value, m.unit AS unit
"""
#: The published results a front or a comparison reads: ``where`` over ``res``, ``p``, ``pl``.
_PUBLISHED_MATCH = """
MATCH (res:Result)
WHERE ($task IS NULL OR res.task = $task) AND ($dataset IS NULL OR res.dataset = $dataset)
  AND ($metrics IS NULL OR res.metric IN $metrics)
OPTIONAL MATCH (p:Paper)-[:REPORTS]->(res)
OPTIONAL MATCH (res)-[:ON]->(pl:Platform)
WITH res, p, pl
WHERE ({where})
"""
_PUBLISHED_POINTS = _PUBLISHED_MATCH + """
RETURN res.uid AS uid, res.metric AS metric, res.value AS value, res.unit AS unit,
       res.task AS task, res.dataset AS dataset, res.model AS model,
       res.scenario AS scenario, res.system AS system, res.submitter AS submitter,
       res.version AS version, coalesce(res.result_set, res.record_uid) AS record,
       p.uid AS paper,
       p.title AS paper_title, pl.uid AS platform
"""
#: _PUBLISHED_POINTS grouped by what tells a point apart (and the metric): each group's
#: sum and count of values, its units, the descriptive fields of its first result by uid
#: and, where ``{uids}`` asks, its uids.
_PUBLISHED_GROUPS = _PUBLISHED_MATCH + """
WITH res, p, pl ORDER BY res.uid
RETURN res.task AS task, res.dataset AS dataset, res.model AS model, p.uid AS paper,
       pl.uid AS platform, res.scenario AS scenario,
       coalesce(res.result_set, res.record_uid) AS record, res.metric AS metric,
       sum(res.value) AS sum, count(res.value) AS n{uids},
       collect(DISTINCT res.unit) AS units,
       head(collect([res.uid, res.system, res.submitter, res.version, p.title])) AS first
"""


def run_table(store, *, experiment=None, artifact=None, status=None, platform=None,
              limit: int = 200) -> list[dict]:
    """Top-level runs, newest first, each with ``params`` decoded and ``measurements``:
    every whole-run measurement (a device's part left out) with its unit and method.

    Filters: an experiment (:func:`ckg.graph.runs.resolve_experiment`), an artifact's alias or
    uid, a status, a platform uid; ``None`` leaves a filter out.
    """
    from ckg.graph.runs import resolve_experiment

    experiment = resolve_experiment(store, experiment) if experiment else None
    rows = store.run(_RUNS, {"experiment": experiment, "artifact": artifact, "status": status,
                             "platform": platform, "limit": limit})
    measured = measurements(store, [r["run"] for r in rows])
    return [{**r, "params": decode(r["params"]), "measurements": measured.get(r["run"], [])}
            for r in rows]


def measurements(store, uids: list[str]) -> dict[str, list[dict]]:
    """Every whole-run measurement (a device's part left out) of the runs ``uids``, with its
    unit and method, by run uid, in metric order (:func:`run_table`, ``ckg runs``)."""
    measured: dict[str, list[dict]] = {}
    for m in store.run(_MEASURED, {"uids": uids}):
        measured.setdefault(m.pop("run"), []).append(m)
    return measured


def experiments(store, uid: str | None = None) -> list[dict]:
    """Every experiment (or the one of ``uid``) with its number of runs and the metrics they
    measured."""
    return [{**r, "metrics": sorted(m for m in r["metrics"] if m)}
            for r in store.run(_EXPERIMENTS, {"uid": uid})]


def experiment(store, name_or_uid: str) -> dict:
    """One experiment as :func:`experiments` lists it, named as
    :func:`ckg.graph.runs.resolve_experiment` takes it (NotFound names those there are)."""
    from ckg.graph.runs import resolve_experiment

    return experiments(store, resolve_experiment(store, name_or_uid))[0]


def leaderboards(store) -> list[dict]:
    """Each task, dataset and metric that published results have, with how many there are."""
    return store.run(_LEADERBOARDS)


def board_metrics(store, task: str | None, dataset: str | None) -> list[str]:
    """The metrics of the leaderboards (:func:`leaderboards`) of ``task`` and ``dataset``,
    sorted; none where either is None or empty."""
    if not (task and dataset):
        return []
    return [r["metric"] for r in store.run(_BOARD_METRICS, {"task": task, "dataset": dataset})]


def compared_page(store, params: dict, skip: int, limit: int) -> tuple[list[dict], dict]:
    """Rows ``skip`` to ``skip + limit`` of the named query ``compare-papers`` with
    ``params`` (``task``, ``dataset``, ``metric`` and ``direction`` given), in its order, and
    how many rows each dataset has in all (dataset -> rows, in order).

    Ranked in the store on the result and its paper alone: the implementing artifacts are
    read for the page's rows only (a leaderboard of 21,700 results at 100x the corpora
    read them all to show 100).
    """
    bound = {**params, "skip": skip, "limit": limit}
    rows = store.run(_COMPARED_PAGE, bound)
    counts = {r["dataset"]: r["rows"] for r in store.run(_COMPARED_COUNTS, bound)}
    return rows, counts


def submissions(store, result_uids: list[str]) -> dict[str, dict]:
    """Where each result of ``result_uids`` was measured, as a benchmark's submission says:
    result uid -> its :data:`SUBMISSION` fields (None where it has none)."""
    rows = store.run(_SUBMISSIONS, {"uids": list(result_uids)})
    return {row.pop("result"): row for row in rows}


def reproductions(store, result_uids: list[str]) -> dict[str, list[dict]]:
    """Runs recorded as reproducing each result (``REPRODUCES``) that measured its metric:
    result uid -> ``[{run, reproduced, unit, stdev, n}]``."""
    found: dict[str, list[dict]] = {}
    for row in store.run(_REPRODUCED, {"uids": list(result_uids)}):
        found.setdefault(row.pop("result"), []).append(row)
    return found


def platforms(store) -> list[dict]:
    """Every platform with the number of runs made and results published on it."""
    return store.run(_PLATFORMS)


def platform(store, uid: str) -> dict:
    """One platform's fingerprint, its runs and the published results measured on it."""
    node = store.get_node("Platform", uid)
    if not node:
        raise NotFound(f"no platform {uid!r} in the graph")
    return {
        "platform": dict(node),
        "runs": run_table(store, platform=uid),
        "results": store.run(_PLATFORM_RESULTS, {"uid": uid}),
    }


def sources(store) -> list[dict]:
    """Every ingested source: where it came from, its kind and commit."""
    return store.run(_SOURCES)


def published(store, *, task=None, dataset=None, metric=None, model=None) -> list[dict]:
    """Published results matching the filters given (None: any), with their paper and
    platform, ordered by task, dataset, metric, model and uid.

    ``metric`` is matched as stored (canonical names: :func:`ckg.core.metrics.canonical_name`);
    ``dataset`` takes its parts in too (``(:Dataset)-[:PART_OF*]->(:Dataset)``).
    """
    cypher = (_RESULTS_ON_DATASET if dataset else _ALL_RESULTS) + _PUBLISHED
    return store.run(cypher, {"task": task, "dataset": dataset, "metric": metric,
                              "model": model})


def measured_points(store, *, experiment: str | None = None, metrics: list[str] | None = None,
                    where: str | None = None) -> list[dict]:
    """One row per whole-run measurement (a device's part left out) of every ``ok`` run:
    ``uid``, ``params``, ``experiment`` (its name), ``metric``, ``value``, ``unit``.

    Parameters
    ----------
    experiment : str, optional
        An experiment's uid (:func:`ckg.graph.runs.resolve_experiment` finds it).
    metrics : list of str, optional
        Only these metrics (None: all).
    where : str, optional
        A Cypher condition on ``r`` (Run), ``m`` (Measurement) and ``e`` (Experiment),
        written by the user (``ckg pareto --where``) and run as written.
    """
    return store.run(_MEASURED_POINTS.format(where=f"({where})" if where else "true"),
                     {"experiment": experiment, "metrics": metrics})


def published_points(store, *, task: str | None = None, dataset: str | None = None,
                     metrics: list[str] | None = None, where: str | None = None) -> list[dict]:
    """One row per published result, with what tells its point apart (task, dataset, model,
    scenario, system, submitter, version, ``record``: its result set or source record) and
    its paper and platform.

    ``where`` is a Cypher condition on ``res`` (Result), ``p`` (Paper) and ``pl``
    (Platform), as in :func:`measured_points`.
    """
    return store.run(_PUBLISHED_POINTS.format(where=f"({where})" if where else "true"),
                     {"task": task, "dataset": dataset, "metrics": metrics})


def published_groups(store, *, task: str | None = None, dataset: str | None = None,
                     metrics: list[str] | None = None, where: str | None = None,
                     uids: bool = True) -> list[dict]:
    """The rows of :func:`published_points` grouped by task, dataset, model, paper,
    platform, scenario, record and metric (one group per point and metric, where a row per
    result was read: 14,200 rows of 15 columns for the front of all published results at
    100x the corpora): each group's ``sum`` and ``n`` (count) of values (summed in uid
    order; a null value left out), its ``units``, in ``first`` the uid, system, submitter,
    version and paper title of its first result by uid and, where ``uids`` is true, its
    ``uids`` in uid order.

    ``where`` is a Cypher condition on ``res`` (Result), ``p`` (Paper) and ``pl``
    (Platform), as in :func:`measured_points`. Without ``uids`` (a front that is not
    written back) each group is one row of a few values: at 100x the corpora the 14,200
    uids and values of ImageNet's throughput and power were most of its page's time.
    """
    cypher = _PUBLISHED_GROUPS.format(where=f"({where})" if where else "true",
                                      uids=", collect(res.uid) AS uids" if uids else "")
    return store.run(cypher, {"task": task, "dataset": dataset, "metrics": metrics})


def has_named(store, label: str, name: str) -> bool:
    """Whether a node of ``label`` (Task, Dataset, Metric, Model) has the ``name``."""
    rows = store.run(f"MATCH (n:{check_name(label)} {{name: $name}}) RETURN count(n) AS n",
                     {"name": name})
    return bool(rows and rows[0]["n"])


def names_of(store, label: str) -> list[str]:
    """The ``name`` of every node of ``label`` that has one."""
    return [r["name"] for r in store.run(f"MATCH (n:{check_name(label)}) RETURN n.name AS name")
            if r["name"] is not None]


def decode(text):
    """A property stored as JSON text, decoded; anything else as it is.

    >>> decode('{"model": "knn"}'), decode("not json"), decode(None)
    ({'model': 'knn'}, 'not json', None)
    """
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text
