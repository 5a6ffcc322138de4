"""Recorded runs, read back: a list, one run with everything that produced it, two compared.

:func:`list_runs` is ``ckg runs``; :func:`show_run` is ``ckg show RUN``: the Run's
properties (JSON text decoded), its artifact, platform, package set, measurements with every
repeat's value, and the steps it called; :func:`provenance` flattens that into the fields
:func:`diff_runs` compares (``ckg diff RUN_A RUN_B``).
"""

import json

from ckg.errors import NotFound, UsageError
from ckg.redact import ambient, mask_props
from ckg.run.provenance import as_map, diff

_LIST = """
MATCH (r:Run)-[:OF]->(a:Artifact)
WHERE $artifact IS NULL OR a.alias = $artifact OR a.uid = $artifact
OPTIONAL MATCH (caller:Run)-[:CALLED]->(r)
WITH r, a, caller WHERE caller IS NULL
OPTIONAL MATCH (r)-[:IN]->(e:Experiment)
WITH r, a, e WHERE $experiment IS NULL OR e.name = $experiment OR e.uid = $experiment
OPTIONAL MATCH (r)-[:ON]->(p:Platform)
RETURN r.uid AS run, r.started_at AS started_at, a.alias AS artifact, r.status AS status,
       r.params AS params, r.source_commit AS commit, r.artifact_digest AS digest,
       p.uid AS platform
ORDER BY started_at DESC, run
LIMIT $limit
"""
_ONE = """
MATCH (r:Run {uid: $uid})
OPTIONAL MATCH (r)-[:OF]->(a:Artifact)
OPTIONAL MATCH (r)-[:ON]->(p:Platform)
OPTIONAL MATCH (r)-[:IN]->(e:Experiment)
OPTIONAL MATCH (r)-[:WITH_PACKAGES]->(k:PackageSet)
RETURN r AS run, a.uid AS artifact_uid, a.alias AS artifact_alias, p AS platform,
       e.name AS experiment, k AS packages
"""
_MEASURED = """
MATCH (r:Run {uid: $uid})-[:MEASURED]->(m:Measurement)
RETURN m.metric AS metric, m.value AS value, m.unit AS unit, m.method AS method, m.n AS n,
       m.values AS values, m.stdev AS stdev, m.device AS device
ORDER BY metric, device
"""
_CALLED = """
MATCH (r:Run {uid: $uid})-[:CALLED]->(c:Run)
RETURN c.uid AS run, c.step AS step, c.status AS status, c.cached AS cached,
       c.version AS version
ORDER BY c.started_at, run
"""
_BY_PREFIX = (
    "MATCH (r:Run) WHERE r.uid STARTS WITH $prefix RETURN r.uid AS uid ORDER BY uid LIMIT 4"
)
#: Run properties stored as JSON text, decoded when shown.
_JSON = ("params", "env", "env_full", "new_env", "new_state", "artifact_files")


def list_runs(store, experiment: str | None = None, artifact: str | None = None,
              limit: int = 50) -> list[dict]:
    """Top-level runs (not the steps of a script run), newest first."""
    return store.run(_LIST, {"experiment": experiment, "artifact": artifact, "limit": limit})


def resolve_run(store, text: str) -> str:
    """The uid of the run ``text`` names: a whole uid, or the start of one (``run-b51a4d0b``,
    as ``ckg runs`` shows them) that no other run shares.

    Raises
    ------
    NotFound
        No run's uid is or starts with ``text``.
    UsageError
        Several runs' uids start with ``text``; some are named.
    """
    if store.get_node("Run", text) is not None:
        return text
    uids = [row["uid"] for row in store.run(_BY_PREFIX, {"prefix": text})] if text else []
    if not uids:
        raise NotFound(f"no run {text!r} in the graph (see ckg runs)")
    if len(uids) > 1:
        shown = ", ".join(uids[:3]) + (", ..." if len(uids) > 3 else "")
        raise UsageError(f"{text!r} names several runs ({shown}): give more of the uid")
    return uids[0]


def show_run(store, uid: str) -> dict:
    """One run (a uid or its start, :func:`resolve_run`) and everything recorded about what
    produced it."""
    uid = resolve_run(store, uid)
    rows = store.run(_ONE, {"uid": uid})
    row = rows[0]
    # Masked again: a run recorded by an older ckg holds its secrets in clear.
    run = mask_props(_props(row["run"]), ambient())
    for key in _JSON:
        if isinstance(run.get(key), str):
            try:
                run[key] = json.loads(run[key])
            except ValueError:
                pass
    packages = _props(row["packages"]) if row["packages"] is not None else {}
    return {
        "run": run,
        "artifact": {"uid": row["artifact_uid"], "alias": row["artifact_alias"]},
        "experiment": row["experiment"],
        "platform": _props(row["platform"]) if row["platform"] is not None else {},
        "packages": packages.get("packages") or [],
        "package_set": packages.get("uid"),
        "measurements": store.run(_MEASURED, {"uid": uid}),
        "steps": store.run(_CALLED, {"uid": uid}),
    }


def provenance(info: dict) -> dict:
    """The fields of a shown run that say what produced it, as :func:`diff_runs` compares."""
    run = info["run"]
    platform = {k: v for k, v in info["platform"].items() if k != "uid"}
    return {
        "artifact": info["artifact"]["uid"],
        "source_commit": run.get("source_commit"),
        "source_dirty": run.get("source_dirty"),
        "source_digest": run.get("source_digest"),
        "artifact_digest": run.get("artifact_digest"),
        "files": run.get("artifact_files") if isinstance(run.get("artifact_files"), dict)
        else None,
        "env": run.get("env_full") if isinstance(run.get("env_full"), dict) else run.get("env"),
        "packages": as_map(info["packages"]) if info["packages"] else None,
        "platform": platform or None,
        "params": run.get("params") if isinstance(run.get("params"), dict) else None,
        "command": run.get("command"),
    }


def diff_runs(store, uid_a: str, uid_b: str) -> dict:
    """What differs between two runs' provenance (``{}``: nothing)."""
    return diff(provenance(show_run(store, uid_a)), provenance(show_run(store, uid_b)))


def _props(value) -> dict:
    """A node as both stores return it: a dict of its properties (None: empty)."""
    return dict(value or {})
