"""What removing runs and experiments reaches (``ckg rm``): the reads, before the writes.

:func:`runs_to_remove` closes the named runs over the steps they called;
:func:`reached_by` is what else the removal touches (fronts, reproduced results,
experiments, measurements); :func:`empty_experiments` is which experiments are left
without runs once the runs are gone. The writes are the store's
(:meth:`~ckg.store.base.GraphStore.update_nodes`, ``delete_reached``, ``delete_nodes``),
driven by :func:`ckg.run.journal.remove`.
"""

from ckg.core.errors import UsageError

_CALLERS = """
UNWIND $uids AS u MATCH (c:Run)-[:CALLED]->(r:Run {uid: u})
RETURN r.uid AS run, c.uid AS caller ORDER BY run LIMIT 1
"""
_IN_EXPERIMENTS = """
UNWIND $uids AS u MATCH (r:Run)-[:IN]->(:Experiment {uid: u}) RETURN r.uid AS uid ORDER BY uid
"""
_CALLED_BY = """
UNWIND $uids AS u MATCH (:Run {uid: u})-[:CALLED]->(s:Run) RETURN DISTINCT s.uid AS uid
ORDER BY uid
"""
_FRONTS_OF = """
UNWIND $uids AS u MATCH (:Run {uid: u})-[:IN_FRONT]->(f:Front)
RETURN f.uid AS uid, collect(u) AS runs ORDER BY uid
"""
_REPRODUCED_BY = """
UNWIND $uids AS u MATCH (:Run {uid: u})-[:REPRODUCES]->(res:Result)
RETURN res.uid AS uid, collect(u) AS runs ORDER BY uid
"""
_EXPERIMENTS_OF = """
UNWIND $uids AS u MATCH (:Run {uid: u})-[:IN]->(e:Experiment) RETURN DISTINCT e.uid AS uid
ORDER BY uid
"""
_MEASUREMENTS_OF = """
UNWIND $uids AS u MATCH (:Run {uid: u})-[:MEASURED]->(m:Measurement) RETURN count(m) AS n
"""
_EMPTY = """
UNWIND $uids AS u MATCH (e:Experiment {uid: u})
OPTIONAL MATCH (e)<-[:IN]-(r:Run) WITH e, count(r) AS n WHERE n = 0 RETURN e.uid AS uid
"""


def runs_to_remove(store, runs: list[str], experiments: list[str]) -> list[str]:
    """The ``runs`` named, the runs in the ``experiments``, and every step they called, in
    that order.

    Raises
    ------
    UsageError
        One of ``runs`` is a step of a script run (its run is removed whole).
    """
    for row in store.run(_CALLERS, {"uids": runs}):
        raise UsageError(
            f"run {row['run']} is a step of run {row['caller']}: remove that run, or its experiment"
        )
    found = list(
        dict.fromkeys(runs + [r["uid"] for r in store.run(_IN_EXPERIMENTS, {"uids": experiments})])
    )
    level = found
    while level:  # the steps of script runs, level by level (CALLED makes a tree)
        level = [r["uid"] for r in store.run(_CALLED_BY, {"uids": level}) if r["uid"] not in found]
        found += level
    return found


def reached_by(store, runs: list[str]) -> dict:
    """What the ``runs`` reach that their removal changes.

    Returns
    -------
    dict
        ``fronts`` and ``results`` (rows of ``uid`` and the ``runs`` among ``runs`` that it
        ranked or that reproduced it), ``experiments`` (uids the runs are in) and
        ``measurements`` (how many the runs hold).
    """
    params = {"uids": runs}
    return {
        "fronts": store.run(_FRONTS_OF, params),
        "results": store.run(_REPRODUCED_BY, params),
        "experiments": [r["uid"] for r in store.run(_EXPERIMENTS_OF, params)],
        "measurements": store.run(_MEASUREMENTS_OF, params)[0]["n"],
    }


def empty_experiments(store, uids: list[str]) -> list[str]:
    """The experiments among ``uids`` that no run is in."""
    return [r["uid"] for r in store.run(_EMPTY, {"uids": uids})]
