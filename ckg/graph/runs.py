"""Recorded runs, read back: a list, one run with everything that produced it, and two compared.

:func:`list_runs` is ``ckg runs``; :func:`show_run` is ``ckg show RUN``: the Run's
properties (JSON text decoded), its artifact, platform, package set, measurements with every
repeat's value, and the steps it called; :func:`provenance` flattens that into the fields
:func:`diff_runs` compares (``ckg diff RUN_A RUN_B``).

A run is named by its uid or the start of one (:func:`resolve_run`); an experiment by its
uid, the start of one, or a name no other experiment has (:func:`resolve_experiment`): a
name is a label, and ``ckg run`` of the same target makes a new experiment each time
unless ``--experiment`` names one. A listing takes a name as selecting every experiment so
named (:func:`select_experiments`, ``ckg runs --experiment NAME``).
"""

import json

from ckg.core.errors import NotFound, UsageError, did_you_mean
from ckg.core.redact import ambient, mask_props

_LIST = """
MATCH (r:Run)-[:OF]->(a:Artifact)
WHERE $artifact IS NULL OR a.alias = $artifact OR a.uid = $artifact
OPTIONAL MATCH (caller:Run)-[:CALLED]->(r)
WITH r, a, caller WHERE caller IS NULL
OPTIONAL MATCH (r)-[:IN]->(e:Experiment)
WITH r, a, e WHERE $experiments IS NULL OR e.uid IN $experiments
OPTIONAL MATCH (r)-[:ON]->(p:Platform)
RETURN r.uid AS run, r.started_at AS started_at, a.alias AS artifact, r.status AS status,
       r.params AS params, r.source_commit AS commit, r.artifact_digest AS digest,
       p.uid AS platform, e.uid AS experiment, e.name AS experiment_name
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
       e.uid AS experiment_uid, e.name AS experiment, k AS packages
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
#: Uids of a label (Run, Experiment) that start with a prefix: a few, to name in a message.
_BY_PREFIX = (
    "MATCH (n:{label}) WHERE n.uid STARTS WITH $prefix RETURN n.uid AS uid ORDER BY uid LIMIT 4"
)
_NAMED = """
MATCH (e:Experiment {name: $name})
OPTIONAL MATCH (r:Run)-[:IN]->(e)
RETURN e.uid AS uid, e.created_at AS created_at, count(r) AS runs
ORDER BY created_at, uid
"""
#: Run properties stored as JSON text, decoded when shown.
_JSON = ("params", "env", "env_full", "new_env", "new_state", "artifact_files")


def list_runs(
    store, experiment: str | None = None, artifact: str | None = None, limit: int = 50
) -> list[dict]:
    """Top-level runs (not the steps of a script run), newest first, each with its
    ``measurements`` (:func:`ckg.graph.browse.measurements`); ``experiment`` as
    :func:`select_experiments` takes it: a name, the runs of every experiment so named."""
    from ckg.graph.browse import measurements

    uids = select_experiments(store, experiment) if experiment else None
    rows = store.run(_LIST, {"experiments": uids, "artifact": artifact, "limit": limit})
    measured = measurements(store, [r["run"] for r in rows])
    return [{**r, "measurements": measured.get(r["run"], [])} for r in rows]


def called_by(store, uids: list[str]) -> list[str]:
    """The runs that the runs ``uids`` called (their steps), one level down."""
    rows = store.run(
        "UNWIND $uids AS u MATCH (:Run {uid: u})-[:CALLED]->(s:Run) RETURN DISTINCT s.uid AS uid",
        {"uids": uids},
    )
    return [row["uid"] for row in rows]


def runs_of_experiment(store, experiment: str) -> list[str]:
    """The top-level runs (no run called them) of the experiment whose uid or name is
    ``experiment``, oldest first."""
    rows = store.run(
        "MATCH (r:Run)-[:IN]->(e:Experiment) WHERE e.uid = $experiment OR e.name = $experiment "
        "OPTIONAL MATCH (caller:Run)-[:CALLED]->(r) WITH r, caller WHERE caller IS NULL "
        "RETURN DISTINCT r.uid AS uid, r.started_at AS started_at ORDER BY started_at, uid",
        {"experiment": experiment},
    )
    return [row["uid"] for row in rows]


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
    uids = _uids_from(store, "Run", text)
    if not uids:
        raise NotFound(f"no run {text!r} in the graph (see ckg runs)")
    return _one(uids, text, "runs")


def resolve_experiment(store, text: str, *, prefix: bool = True) -> str:
    """The uid of the experiment ``text`` names: a whole uid, a name no other experiment
    has, or (``prefix``) the start of a uid no other experiment shares.

    Raises
    ------
    NotFound
        Nothing is named so; the closest names and some of those there are are named.
    UsageError
        Several experiments have that name, or uids starting with ``text``: each is named
        (uid, runs, when created), so that one can be given by its uid.
    """
    named = _experiments(store, text, prefix)
    if len(named) > 1:
        listed = ", ".join(
            f"{r['uid']} ({r['runs']} runs, {(r['created_at'] or '?')[:16]})" for r in named[:8]
        )
        more = f" and {len(named) - 8} more" if len(named) > 8 else ""
        raise UsageError(
            f"{len(named)} experiments are named {text!r}: {listed}{more}; "
            "give one's uid (or its start)"
        )
    return named[0]["uid"]


def select_experiments(store, text: str) -> list[str]:
    """The uids of the experiments ``text`` selects: a whole uid, that one; a name, every
    experiment so named, oldest first (each ``ckg run`` of a target without ``--experiment``
    makes one named as the target); else the start of a uid no other experiment shares.

    Raises
    ------
    NotFound
        Nothing is named so; the closest names and some of those there are are named.
    UsageError
        Several experiments' uids start with ``text``; some are named.
    """
    return [row["uid"] for row in _experiments(store, text, prefix=True)]


def _experiments(store, text: str, prefix: bool) -> list[dict]:
    """The experiment whose uid is ``text``, else those named ``text`` (``uid``, ``runs``,
    ``created_at``, oldest first), else (``prefix``) the one whose uid alone starts so."""
    if store.get_node("Experiment", text) is not None:
        return [{"uid": text}]
    named = store.run(_NAMED, {"name": text}) if text else []
    if named:
        return named
    uids = _uids_from(store, "Experiment", text) if prefix else []
    if not uids:
        rows = store.run("MATCH (e:Experiment) RETURN e.name AS name, e.uid AS uid")
        raise no_experiment(text, rows)
    return [{"uid": _one(uids, text, "experiments")}]


def no_experiment(text: str, rows: list[dict]) -> NotFound:
    """NotFound for ``text``: the closest experiments, then up to eight of them (a name once
    however many experiments have it)."""
    names = sorted({r["name"] or r["uid"] for r in rows})
    listed = ", ".join(names[:8]) or "none yet: ckg run records one"
    return NotFound(f"no experiment {text!r}{did_you_mean(text, names)}; experiments: {listed}")


def resolve_run_or_experiment(store, text: str) -> tuple[str, str]:
    """``("Run", uid)`` or ``("Experiment", uid)`` for what ``text`` names: a run as
    :func:`resolve_run` takes it, an experiment as :func:`resolve_experiment` does.

    Raises
    ------
    NotFound
        ``text`` names no run and no experiment.
    UsageError
        ``text`` is empty, names a run and an experiment, or several runs.
    """
    if not text:
        raise UsageError("name a run or an experiment to remove")
    runs = _uids_from(store, "Run", text)
    try:
        experiment = resolve_experiment(store, text)
    except NotFound:
        experiment = None
    if runs and experiment:
        raise UsageError(
            f"{text!r} names a run ({runs[0]}) and an experiment ({experiment}): "
            "give more of the uid"
        )
    if experiment:
        return "Experiment", experiment
    if not runs:
        raise NotFound(f"no run or experiment {text!r} in the graph (see ckg runs)")
    return "Run", _one(runs, text, "runs")


def _uids_from(store, label: str, text: str) -> list[str]:
    """``[text]`` when it is a whole uid of ``label``, else up to four uids starting with it."""
    if store.get_node(label, text) is not None:
        return [text]
    if not text:
        return []
    return [row["uid"] for row in store.run(_BY_PREFIX.format(label=label), {"prefix": text})]


def _one(uids: list[str], text: str, what: str) -> str:
    if len(uids) > 1:
        shown = ", ".join(uids[:3]) + (", ..." if len(uids) > 3 else "")
        raise UsageError(f"{text!r} names several {what} ({shown}): give more of the uid")
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
        "experiment_uid": row["experiment_uid"],
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
        "files": run.get("artifact_files") if isinstance(run.get("artifact_files"), dict) else None,
        "env": run.get("env_full") if isinstance(run.get("env_full"), dict) else run.get("env"),
        "packages": as_map(info["packages"]) if info["packages"] else None,
        "platform": platform or None,
        "params": run.get("params") if isinstance(run.get("params"), dict) else None,
        "command": run.get("command"),
    }


def diff_runs(store, uid_a: str, uid_b: str) -> dict:
    """What differs between two runs' provenance (``{}``: nothing)."""
    return diff(provenance(show_run(store, uid_a)), provenance(show_run(store, uid_b)))


def differences(store, uid_a: str, uid_b: str) -> list[dict]:
    """What differs between two runs' provenance with the values, one row per value
    (:func:`diff_rows`), as ``ckg diff`` prints it."""
    a, b = provenance(show_run(store, uid_a)), provenance(show_run(store, uid_b))
    return diff_rows(a, b, diff(a, b))


def diff_rows(a: dict, b: dict, found: dict) -> list[dict]:
    """What :func:`diff` ``found`` between the provenances ``a`` and ``b``, one row per value
    that differs: ``field``, ``key`` (a map's entry, else None), the value in ``a`` and in
    ``b`` (None where one lacks it); in a map, changed keys first, then those only in ``a``,
    then those only in ``b``.

    >>> a, b = {"params": {"model": "knn"}, "env": {"PATH": "/bin"}}, {"params": {"model": "svm"}}
    >>> diff_rows(a, b, diff(a, b))
    [{'field': 'env', 'key': 'PATH', 'a': '/bin', 'b': None}, \
{'field': 'params', 'key': 'model', 'a': 'knn', 'b': 'svm'}]
    """
    rows = []
    for field, change in found.items():
        if set(change) <= {"a", "b"}:
            rows.append({"field": field, "key": None, "a": change.get("a"), "b": change.get("b")})
            continue
        x, y = a.get(field) or {}, b.get(field) or {}
        for part in ("changed", "only_a", "only_b"):
            rows += [{"field": field, "key": key, "a": x.get(key), "b": y.get(key)}
                     for key in change.get(part, [])]  # fmt: skip
    return rows


def _props(value) -> dict:
    """A node as both stores return it: a dict of its properties (None: empty)."""
    return dict(value or {})


def diff(a: dict, b: dict) -> dict:
    """What differs between two runs' provenance (as :func:`provenance` gives it):
    ``{field: {"a": ..., "b": ...}}`` for scalars, and for maps (env, packages, files,
    params, platform) the keys only in one and the keys whose values differ.

    >>> diff({"source_commit": "1", "files": {"x": "1"}}, {"source_commit": "2",
    ...       "files": {"x": "2", "y": "3"}})
    {'files': {'only_b': ['y'], 'changed': ['x']}, 'source_commit': {'a': '1', 'b': '2'}}
    """
    out: dict = {}
    for key in sorted(set(a) | set(b)):
        x, y = a.get(key), b.get(key)
        if x == y:
            continue
        if (
            isinstance(x, dict | None)
            and isinstance(y, dict | None)
            and (x or y) is not None
            and (isinstance(x, dict) or isinstance(y, dict))
        ):
            x, y = x or {}, y or {}
            part = {
                "only_a": sorted(set(x) - set(y)),
                "only_b": sorted(set(y) - set(x)),
                "changed": sorted(k for k in set(x) & set(y) if x[k] != y[k]),
            }
            out[key] = {k: v for k, v in part.items() if v}
        else:
            out[key] = {"a": x, "b": y}
    return out


def as_map(packages: list[str]) -> dict[str, str]:
    """``["numpy==2.0"]`` as ``{"numpy": "2.0"}`` (names compared case-insensitively).

    >>> as_map(["NumPy==2.0", "odd"])
    {'numpy': '2.0', 'odd': ''}
    """
    out = {}
    for item in packages or []:
        name, _, version = str(item).partition("==")
        out[name.casefold()] = version
    return out
