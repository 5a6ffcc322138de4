"""Pareto fronts over the graph: select points, rank them, write front membership back.

A *point* is either a run, ``(Run)-[:MEASURED]->(Measurement {metric, value, unit})``, whose
``status`` is ``ok``; or a group of published results,
``(Paper)-[:REPORTS]->(Result {metric, value, unit})``, that share task, dataset, model,
paper, platform, scenario and source record (one MLPerf submission, its records joined into a
result set when a generation splits them; one leaderboard row).
A point counts when it has a value for every objective; the rest are counted as left out.

Membership is written back as ``(Run|Result)-[:IN_FRONT {front_rank}]->(Front)``, where the
``Front`` node (uid: a digest of objectives and scope) holds ``objectives`` (list of
``"name:min|max"``), ``scope`` (the selection, as text: an experiment by its uid),
``source``, ``points``, ``left_out``, ``reference`` and ``hypervolume`` and ``computed_at``.
Every result of a group gets the edge. Computing the same front again replaces its edges and
clears ``stale``, which ``ckg rm`` sets on a front one of whose runs it removed. So, for
example::

    MATCH (r:Run)-[x:IN_FRONT]->(f:Front) WHERE x.front_rank = 1 RETURN f.scope, r.params

``--where`` conditions are Cypher, written against the variables ``r`` (Run), ``m``
(Measurement), ``e`` (Experiment) for runs and ``res`` (Result), ``p`` (Paper), ``pl``
(Platform) for published results.

An objective whose metric has no known direction (neither the registry nor a ``:min`` /
``:max`` suffix says) leaves the front out, not the points: they are listed unranked, and
``Front.unranked`` says why.
"""

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import chain

import numpy as np

from ckg.core import metrics
from ckg.core.errors import InvalidInput, NotFound, UsageError, did_you_mean
from ckg.core.records import Edge, Node, Records
from ckg.graph.browse import measured_points, published_groups, published_points
from ckg.pareto import (
    Objective,
    front_table,
    hypervolume,
    no_direction,
    pareto_ranks,
    parse_objectives,
)

SOURCES = ("runs", "papers", "all")

#: Columns that identify a group of published results as one point.
_GROUP = ["task", "dataset", "model", "paper", "platform", "scenario", "record"]


@dataclass
class Front:
    """A ranked selection: what :func:`pareto` returns.

    ``table`` has one row per point: ``front_rank``, ``label``, ``kind`` (run or result),
    ``uids`` (the nodes behind the point; None for published results' points of a front
    not written, which reads none), descriptive columns, and one column per objective
    named as the objective is: the mean of the point's values. ``units`` maps each
    objective to its unit ("" if none).
    ``unranked`` says why the points are not ranked (an objective of unknown direction):
    then ``front_rank`` is None, nothing is written and there is no hypervolume.
    """

    objectives: list[Objective]
    table: object
    units: dict[str, str]
    scope: str
    uid: str
    left_out: int
    reference: list[float] = field(default_factory=list)
    hypervolume: float | None = None
    unranked: str = ""

    def rows(self) -> list[dict]:
        """The table as plain dicts (``uids`` left out), for printing or JSON."""
        frame = self.table.drop(columns=["uids"])
        return [{k: _plain(v) for k, v in row.items()} for row in frame.to_dict("records")]


def run_objectives(spec: str | list[str]) -> tuple[str, ...]:
    """The metrics of a front over one run's results, checked before anything runs.

    Parameters
    ----------
    spec : str or list of str
        ``"accuracy,latency"`` or a list of metric names, each one the metric registry
        gives a direction (:func:`ckg.core.metrics.get`): a misspelt one would otherwise be
        refused only after the whole grid ran.

    Returns
    -------
    tuple of str
        The names, stripped, in order.

    Raises
    ------
    UsageError
        Fewer than two names, or a name with no known direction (the message names the
        known ones that come close).

    Examples
    --------
    >>> run_objectives("accuracy, latency")
    ('accuracy', 'latency')
    """
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    names = tuple(n.strip() for n in items if n.strip())
    if len(names) < 2:
        raise UsageError(f"--pareto expects at least two metrics, OBJ1,OBJ2; got {spec!r}")
    for name in names:
        metrics.directed(
            name, "--pareto", f"add it to a metrics.yaml, or rank the runs afterwards with "
            f"ckg pareto {name}:min or {name}:max"
        )
    return names


def runs_front(runs: list, objectives: str | list[str]) -> list:
    """The runs of one ``ckg run`` on the Pareto front of ``objectives``, best first.

    Pure: nothing is read from or written to the graph (:func:`pareto` ranks recorded
    runs and writes the front back).

    Parameters
    ----------
    runs : list of ckg.run.RunResult
        A report's runs; those whose ``status`` is not ``ok`` are left out.
    objectives : str or list of str
        As :func:`run_objectives` takes them; directions come from the metric registry.

    Returns
    -------
    list of ckg.run.RunResult
        The runs on front 1, sorted by the first objective, best first. A run without a
        value for some objective is on no front.

    Raises
    ------
    UsageError
        See :func:`run_objectives`; also an objective none of the ``ok`` runs measured
        (the message names those they have).
    """
    names = run_objectives(objectives)
    ok = [r for r in runs if r.status == "ok"]
    present = sorted({m for r in ok for m in r.metrics})
    directions = []
    for name in names:
        if name not in present:
            raise UsageError(
                f"--pareto: {name!r} is not a measured metric with a known direction; "
                f"these runs have: {', '.join(present) or 'none'}"
            )
        directions.append(metrics.get(name).direction)
    values = np.array([[r.metrics.get(n, np.nan) for n in names] for r in ok], dtype=float)
    ranks = pareto_ranks(values, directions) if ok else np.array([], dtype=int)
    return sorted(
        (r for r, rank in zip(ok, ranks, strict=True) if rank == 1),
        key=lambda r: r.metrics[names[0]] * (-1 if directions[0] == "max" else 1),
    )


def pareto(
    store,
    objectives,
    *,
    experiment: str | None = None,
    task: str | None = None,
    dataset: str | None = None,
    where: str | None = None,
    source: str = "runs",
    margins: dict[str, float] | None = None,
    reference: list[float] | None = None,
    write: bool = True,
) -> Front:
    """Rank the runs or published results the filters select, and record front membership.

    Parameters
    ----------
    store : GraphStore
        Read, and written unless not ``write``.
    objectives : str or list
        ``"accuracy:max,latency"``; directions default to the metric registry's.
    experiment, task, dataset, where : str, optional
        Filters: an experiment (runs; its uid, the start of one, or a name only it has), a
        task and dataset (published results), or a Cypher condition on the variables named
        in the module notes.
    source : "runs", "papers" or "all"
    margins : mapping, optional
        Per-objective margins (see :mod:`ckg.pareto`).
    reference : list of float, optional
        Reference point of the hypervolume; default the worst value of each objective over
        the points selected (so compare experiments with an explicit one).
    write : bool
        Write ``IN_FRONT`` edges and the ``Front`` node (default True). A front not written
        does not read the uids of published results (``uids`` None in their rows): at 100x
        the corpora they were most of the time of ImageNet's front page.

    Returns
    -------
    Front
        Ranked; or, where an objective's metric has no known direction, its points unranked
        with ``unranked`` saying why (nothing written).

    Raises
    ------
    UsageError
        Filters that do not fit ``source``, fewer than two objectives, bad directions, an
        experiment name that several experiments have.
    NotFound
        An unknown experiment; an objective no selected point has (the message names the
        metrics present and the closest).
    InvalidInput
        Fewer than two points having every objective, to rank.
    """
    if source not in SOURCES:
        raise UsageError(f"--from must be one of {', '.join(SOURCES)}, got {source!r}")
    if experiment and source == "papers":
        raise UsageError("--experiment selects runs; use --from runs or all")
    if (task or dataset) and source == "runs":
        raise UsageError("--task and --dataset select published results; use --from papers")
    if experiment:
        from ckg.graph.runs import resolve_experiment

        experiment = resolve_experiment(store, experiment)
    filters = {"experiment": experiment, "task": task, "dataset": dataset, "where": where}
    objs = parse_objectives(objectives, undirected=True)
    if len(objs) < 2:
        raise UsageError("a Pareto front needs two or more objectives, e.g. accuracy,latency")
    points, units = select(store, objs, source=source, uids=write, **filters)
    scope = _scope(source, filters)
    undirected = [o.name for o in objs if o.direction is None]
    if undirected:
        table = _unranked(points, objs)
        return Front(objs, table, units, scope, _front_uid(objs, scope),
                     len(points) - len(table), unranked=no_direction(undirected[0]))
    table = front_table(points, objs, margins=margins)
    left_out = table.attrs["left_out"]
    if len(table) < 2:
        raise InvalidInput(
            f"only {len(table)} point(s) of the selection have every objective "
            f"({', '.join(o.name for o in objs)}); {left_out} lack one: nothing to compare"
        )
    front = Front(objs, table, units, scope, _front_uid(objs, scope), left_out)
    _add_hypervolume(front, reference)
    if write:
        write_front(store, front, source)
    return front


def select(store, objectives: list[Objective], *, source="runs", uids=True, **filters):
    """One row per point with a column per objective (the mean of its values), and each
    objective's unit; the uids behind published results' points only where ``uids``.

    Raises InvalidInput naming the metrics present when no point has some objective.
    """
    import pandas as pd

    names = _metric_names(objectives)
    frames = []
    if source in ("runs", "all"):
        frames.append(_runs(store, names, filters))
    if source in ("papers", "all"):
        frames.append(_results(store, names, filters, uids))
    # A row per point and metric (published results come grouped by the store), with the
    # ``sum`` and count ``n`` of its values, its ``uids`` and the ``first`` uid, whose row
    # describes it.
    long = pd.concat(frames, ignore_index=True)
    long["objective"] = long["metric"].map(_objective_of(objectives))
    units: dict[str, str] = {}
    for obj in objectives:
        rows = long[long["objective"] == obj.name] if len(long) else long
        if not len(rows):
            raise _absent(obj.name, _metrics_present(store, source, filters))
        units[obj.name] = next((u for u in rows["unit"] if isinstance(u, str) and u), "")
    totals = long.pivot_table(
        index="point", columns="objective", values=["sum", "n"], aggfunc="sum", sort=True
    )
    wide = totals["sum"] / totals["n"]  # a point without a value: 0 / 0, NaN
    # Rows in a stable order, not the engine's: ties on a front, and the row that describes
    # a point, are then the same on both stores.
    long = long.sort_values(["point", "first"], kind="stable")
    info = long.drop_duplicates("point").set_index("point")
    uids = long.groupby("point", sort=True)["uids"].agg(
        lambda s: None if s.isna().any() else sorted(set(chain(*s)))
    )
    table = info[["label", "kind", *_descriptive(info)]].join(wide).join(uids.rename("uids"))
    return table.reset_index(drop=True), units


def write_front(store, front: Front, source: str) -> None:
    """Replace the ``IN_FRONT`` edges of ``front`` by its current ranks."""
    props = {
        "objectives": [str(o) for o in front.objectives],
        "scope": front.scope,
        "source": source,
        "points": len(front.table),
        "left_out": front.left_out,
        "reference": front.reference,
        "hypervolume": front.hypervolume,
        "computed_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    records = Records([Node("Front", front.uid, {**props, "stale": None})])
    for kind, ids, rank in zip(
        front.table["kind"], front.table["uids"], front.table["front_rank"], strict=True
    ):
        label = "Run" if kind == "run" else "Result"
        records.edges += [Edge("IN_FRONT", label, uid, "Front", front.uid,
                               {"front_rank": int(rank)}) for uid in ids]
    store.replace_incoming("IN_FRONT", "Front", front.uid, records)


def _unranked(points, objectives: list[Objective]):
    """The points having every objective, in label order, with ``front_rank`` None: what
    is listed when there is no direction to rank by."""
    columns = [o.name for o in objectives]
    table = points.dropna(subset=columns).sort_values(["label"], kind="stable")
    table.insert(0, "front_rank", None)
    return table.reset_index(drop=True)


# --- selection ----------------------------------------------------------------------------


def _metric_names(objectives: list[Objective]) -> list[str]:
    """Every name an objective may be stored under: as written and canonical."""
    names = set()
    for obj in objectives:
        names.add(obj.name)
        names.add(metrics.resolve(obj.name).name)
    return sorted(names)


def _objective_of(objectives: list[Objective]):
    by_name = {}
    for obj in objectives:
        by_name[obj.name] = obj.name
        by_name.setdefault(metrics.resolve(obj.name).name, obj.name)
    return by_name


def _runs(store, names: list[str], filters: dict):
    import pandas as pd

    rows = measured_points(store, experiment=filters.get("experiment"), metrics=names,
                           where=filters.get("where"))
    frame = pd.DataFrame(rows, columns=["uid", "params", "experiment", "metric", "value", "unit"])
    frame["point"] = "run:" + frame["uid"].astype(str)
    frame["sum"] = pd.to_numeric(frame["value"])
    frame["n"] = frame["sum"].notna().astype(int)
    frame["uids"] = [[uid] for uid in frame["uid"]]
    frame["first"] = frame["uid"]
    frame["kind"] = "run"
    frame["label"] = [
        _params_label(p, u) for p, u in zip(frame["params"], frame["uid"], strict=True)
    ]
    frame["config"] = frame["label"]
    return frame


def _results(store, names: list[str], filters: dict, uids: bool):
    import pandas as pd

    rows = published_groups(store, task=filters.get("task"), dataset=filters.get("dataset"),
                            metrics=names, where=filters.get("where"), uids=uids)
    columns = ["task", "dataset", "model", "paper", "platform", "scenario", "record", "metric",
               "sum", "n", "uids", "units", "first"]  # fmt: skip
    frame = pd.DataFrame(rows, columns=columns)  # uids None where not read
    fields = ["first", "system", "submitter", "version", "paper_title"]
    firsts = [first or [None] * len(fields) for first in frame.pop("first")]
    frame[fields] = pd.DataFrame(firsts, columns=fields, index=frame.index)
    frame["unit"] = [next((u for u in units if isinstance(u, str) and u), None)
                     for units in frame.pop("units")]  # fmt: skip
    # Column by column, not a join per row: 14,200 rows at 100x the corpora took 0.25 s so.
    keys = frame[_GROUP].astype("string").fillna("")
    point = "result:" + keys[_GROUP[0]]
    for column in _GROUP[1:]:
        point = point + "|" + keys[column]
    frame["point"] = point.astype(object)
    frame["kind"] = "result"
    described = ["model", "system", "submitter", "paper_title"]
    frame["label"] = [_result_label(dict(zip(described, row, strict=True)))
                      for row in frame[described].itertuples(index=False, name=None)]  # fmt: skip
    return frame


def _params_label(params, uid) -> str:
    """``model=knn batch=8`` from a run's params JSON, or its uid when it has none."""
    try:
        data = json.loads(params) if isinstance(params, str) else params
    except ValueError:
        data = None
    if isinstance(data, dict) and data:
        return " ".join(f"{k}={_short(v)}" for k, v in data.items())
    return str(uid)[:12]


def _short(value) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= 24 else text[:21] + "..."


def _result_label(row: dict) -> str:
    model = row.get("model") or "?"
    where = row.get("system") or row.get("submitter") or (row.get("paper_title") or "")[:30]
    return f"{model} @ {where}" if where else str(model)


def _descriptive(info) -> list[str]:
    wanted = ["config", "experiment", "model", "system", "submitter", "version", "task",
              "dataset", "scenario", "paper", "paper_title"]  # fmt: skip
    return [c for c in wanted if c in info.columns and info[c].notna().any()]


def _absent(name: str, present: set[str]) -> NotFound:
    listed = ", ".join(sorted(present)) or "none"
    hint = did_you_mean(name, present)
    return NotFound(
        f"objective {name!r} is not in the selected results{hint}; metrics present: {listed}"
    )


def _metrics_present(store, source, filters) -> set[str]:
    found = set()
    if source in ("runs", "all"):
        found |= set(_runs_raw(store, filters)["metric"].dropna())
    if source in ("papers", "all"):
        rows = published_points(store, task=filters.get("task"),
                                dataset=filters.get("dataset"), where=filters.get("where"))
        found |= {r["metric"] for r in rows if r["metric"]}
    return found


def _runs_raw(store, filters):
    import pandas as pd

    rows = measured_points(store, experiment=filters.get("experiment"),
                           where=filters.get("where"))
    return pd.DataFrame(rows, columns=["uid", "params", "experiment", "metric", "value", "unit"])


# --- scope, uid, hypervolume ----------------------------------------------------------------


def _scope(source: str, filters: dict) -> str:
    parts = [source] + [f"{k}={v}" for k, v in filters.items() if v]
    return " ".join(parts)


def _front_uid(objectives: list[Objective], scope: str) -> str:
    text = json.dumps([[str(o) for o in objectives], scope])
    return "front:" + hashlib.sha256(text.encode()).hexdigest()[:16]


def _add_hypervolume(front: Front, reference) -> None:
    cols = [o.name for o in front.objectives]
    values = front.table[cols].to_numpy(dtype=np.float64)
    values = values[np.isfinite(values).all(axis=1)]
    dirs = [o.direction for o in front.objectives]
    if reference is None:
        if not len(values):
            return
        worst = [
            values[:, i].max() if d == "min" else values[:, i].min() for i, d in enumerate(dirs)
        ]
        reference = [float(v) for v in worst]
    if len(reference) != len(cols):
        raise UsageError(f"--reference needs {len(cols)} numbers, one per objective")
    front.reference = [float(v) for v in reference]
    # Exact hypervolume costs O(n^(d-1)): skip it for large fronts of many objectives.
    on_front = int((front.table["front_rank"] == 1).sum())
    if len(cols) == 2 or on_front ** (len(cols) - 1) <= 10**7:
        front.hypervolume = hypervolume(values, front.reference, dirs)


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and np.isnan(value):
        return None
    return value
