"""Reads for browsing the graph (``ckg serve``): runs with their measurements, experiments,
leaderboards, reproductions of published results, platforms and sources.

Each function takes a store and returns plain rows, so the web view and scripts read the
same thing; none of them writes.
"""

import json

from ckg.errors import NotFound

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
_LEADERBOARDS = """
MATCH (t:Task)<-[:FOR_TASK]-(r:Result)-[:ON_DATASET]->(d:Dataset)
MATCH (r)-[:OF_METRIC]->(m:Metric)
WHERE r.value IS NOT NULL
RETURN t.name AS task, d.name AS dataset, m.name AS metric, m.direction AS direction,
       count(r) AS results, count(DISTINCT r.source_uid) AS sources
ORDER BY task, dataset, metric
"""
_REPRODUCED = """
MATCH (res:Result)<-[:REPRODUCES]-(run:Run)-[:MEASURED]->(x:Measurement)
WHERE res.uid IN $uids AND run.status = 'ok' AND x.metric = res.metric AND x.device IS NULL
RETURN res.uid AS result, run.uid AS run, coalesce(x.mean, x.value) AS reproduced,
       x.unit AS unit, x.stdev AS stdev, x.n AS n
ORDER BY result, run
"""
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


def run_table(store, *, experiment=None, artifact=None, status=None, platform=None,
              limit: int = 200) -> list[dict]:
    """Top-level runs, newest first, each with ``params`` decoded and ``measurements``:
    every whole-run measurement (a device's part left out) with its unit and method.

    Filters: an experiment (:func:`ckg.runs.resolve_experiment`), an artifact's alias or
    uid, a status, a platform uid; ``None`` leaves a filter out.
    """
    from ckg.runs import resolve_experiment

    experiment = resolve_experiment(store, experiment) if experiment else None
    rows = store.run(_RUNS, {"experiment": experiment, "artifact": artifact, "status": status,
                             "platform": platform, "limit": limit})
    measured: dict[str, list[dict]] = {}
    for m in store.run(_MEASURED, {"uids": [r["run"] for r in rows]}):
        measured.setdefault(m.pop("run"), []).append(m)
    return [{**r, "params": decode(r["params"]), "measurements": measured.get(r["run"], [])}
            for r in rows]


def experiments(store, uid: str | None = None) -> list[dict]:
    """Every experiment (or the one of ``uid``) with its number of runs and the metrics they
    measured."""
    return [{**r, "metrics": sorted(m for m in r["metrics"] if m)}
            for r in store.run(_EXPERIMENTS, {"uid": uid})]


def experiment(store, name_or_uid: str) -> dict:
    """One experiment as :func:`experiments` lists it, named as
    :func:`ckg.runs.resolve_experiment` takes it (NotFound names those there are)."""
    from ckg.runs import resolve_experiment

    return experiments(store, resolve_experiment(store, name_or_uid))[0]


def leaderboards(store) -> list[dict]:
    """Each task, dataset and metric that published results have, with how many there are."""
    return store.run(_LEADERBOARDS)


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
