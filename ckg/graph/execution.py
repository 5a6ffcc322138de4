"""Reads of the graph that running, reproducing and the cluster need: where artifacts come
from, sources' digests, runs already recorded, and the published results a claim names.

Each function takes the store and returns rows (dicts) or values; none writes.
"""

_ARTIFACT_SOURCES = """
UNWIND $uids AS u
MATCH (a:Artifact {uid: u})
OPTIONAL MATCH (s:Source)-[:CONTAINS]->(a)
RETURN a.uid AS uid, a.digest AS digest, a.format AS format, a.path AS path,
       s.uid AS source_uid, s.kind AS source_kind, s.location AS location,
       s.ref AS ref, s.digest AS source_digest
"""
_SOURCES_NAMED = """
MATCH (s:Source) WHERE s.uid IN $names OR s.location IN $names
RETURN s.uid AS uid, s.location AS location, s.kind AS kind, s.digest AS digest
"""
_SOURCE_DIGESTS = "MATCH (s:Source) WHERE s.uid IN $uids RETURN s.uid AS uid, s.digest AS digest"
_RECORDED = """
MATCH (r:Run {uid: $uid}) WHERE r.status <> 'running'
OPTIONAL MATCH (r)-[:MEASURED]->(m:Measurement)
RETURN r.status AS status, r.exit_code AS exit_code, r.workdir AS workdir,
       r.log_tail AS log_tail, r.error AS error,
       collect({metric: m.metric, value: m.value, unit: m.unit, device: m.device}) AS figures
"""
_MEASURED_COUNTS = """
UNWIND $uids AS u MATCH (r:Run {uid: u})-[:MEASURED]->(m:Measurement)
RETURN u AS uid, count(m) AS n
"""
_RESULTS_BY_UID = """
UNWIND $uids AS u
MATCH (r:Result {uid: u})
OPTIONAL MATCH (p:Paper)-[:REPORTS]->(r)
RETURN r.uid AS uid, p.uid AS paper, r.task AS task, r.dataset AS dataset,
       r.metric AS metric, r.model AS model
"""
_RESULTS_MATCHING = """
MATCH (r:Result)
WHERE ($task IS NULL OR toLower(r.task) = toLower($task))
  AND ($dataset IS NULL OR toLower(r.dataset) = toLower($dataset))
  AND ($metric IS NULL OR r.metric = $metric)
  AND ($model IS NULL OR toLower(r.model) = toLower($model))
OPTIONAL MATCH (p:Paper)-[:REPORTS]->(r)
WITH r, p
WHERE $paper IS NULL OR p.uid = $paper
RETURN r.uid AS uid, p.uid AS paper, r.task AS task, r.dataset AS dataset,
       r.metric AS metric, r.model AS model
ORDER BY uid
"""
_PAPER = "MATCH (p:Paper {uid: $paper}) RETURN p.uid AS uid, p.title AS title"
_PAPER_UIDS = "MATCH (p:Paper) RETURN p.uid AS uid"
_PAPER_RESULTS = """
MATCH (p:Paper {uid: $paper})-[:REPORTS]->(r:Result)
RETURN r.uid AS uid, r.task AS task, r.dataset AS dataset, r.model AS model,
       r.metric AS metric, r.value AS value, r.unit AS unit
ORDER BY task, dataset, model, metric, uid
"""
_IMPLEMENTING = """
MATCH (a:Artifact)-[:IMPLEMENTS]->(:Paper {uid: $paper})
RETURN a.uid AS uid, a.alias AS alias, a.format AS format, a.meta AS meta
ORDER BY a.alias, a.uid
"""


def artifact_sources(store, uids: list[str]) -> list[dict]:
    """The ``uid``, ``digest``, ``format`` and ``path`` of each artifact of ``uids`` in the
    graph, with its source's ``source_uid``, ``source_kind``, ``location``, ``ref`` and
    ``source_digest`` (None where the artifact has no source)."""
    return store.run(_ARTIFACT_SOURCES, {"uids": list(uids)})


def sources_named(store, names: list[str]) -> list[dict]:
    """The ``uid``, ``location``, ``kind`` and ``digest`` of the sources whose uid or
    location is one of ``names``."""
    return store.run(_SOURCES_NAMED, {"names": list(names)})


def source_digests(store, uids: list[str]) -> dict[str, str]:
    """The digest of each source of ``uids`` in the graph, by uid."""
    return {r["uid"]: r["digest"] for r in store.run(_SOURCE_DIGESTS, {"uids": list(uids)})}


def recorded_run(store, uid: str) -> dict | None:
    """The ``status``, ``exit_code``, ``workdir``, ``log_tail``, ``error`` and ``figures``
    (``metric``, ``value``, ``unit``, ``device`` of each Measurement) of Run ``uid``, or None
    while it is not in the graph or still ``running``."""
    rows = store.run(_RECORDED, {"uid": uid})
    return rows[0] if rows else None


def measured_counts(store, run_uids: list[str]) -> dict[str, int]:
    """How many ``MEASURED`` relationships each Run of ``run_uids`` has (those with none
    left out)."""
    return {row["uid"]: row["n"] for row in store.run(_MEASURED_COUNTS, {"uids": run_uids})}


def results_by_uid(store, uids: list[str]) -> list[dict]:
    """The ``uid``, ``paper``, ``task``, ``dataset``, ``metric`` and ``model`` of each Result
    of ``uids`` in the graph."""
    return store.run(_RESULTS_BY_UID, {"uids": list(uids)})


def results_matching(store, *, paper, task, dataset, metric, model) -> list[dict]:
    """Results (as :func:`results_by_uid` gives them, by uid) whose fields agree with every
    one given (None: any): task, dataset and model ignoring case, ``paper`` a Paper uid,
    ``metric`` a registry name."""
    return store.run(
        _RESULTS_MATCHING,
        {"paper": paper, "task": task, "dataset": dataset, "metric": metric, "model": model},
    )


def paper(store, uid: str) -> dict | None:
    """The ``uid`` and ``title`` of Paper ``uid``, or None."""
    rows = store.run(_PAPER, {"paper": uid})
    return rows[0] if rows else None


def paper_uids(store) -> list[str]:
    """The uid of every Paper in the graph."""
    return [r["uid"] for r in store.run(_PAPER_UIDS)]


def paper_results(store, uid: str) -> list[dict]:
    """The Results Paper ``uid`` reports (``uid``, ``task``, ``dataset``, ``model``,
    ``metric``, ``value``, ``unit``), by task, dataset, model and metric."""
    return store.run(_PAPER_RESULTS, {"paper": uid})


def implementing(store, uid: str) -> list[dict]:
    """The ``uid``, ``alias``, ``format`` and ``meta`` of the artifacts that implement
    Paper ``uid``, by alias."""
    return store.run(_IMPLEMENTING, {"paper": uid})
