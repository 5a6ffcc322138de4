"""Pareto fronts: non-dominated sets, front ranks and hypervolume on NumPy arrays and DataFrames.

Everything here is pure: arrays and DataFrames in, arrays and DataFrames out, no I/O.
:mod:`ckg.pareto.frontier` selects points from the graph and writes front membership back;
:mod:`ckg.pareto.plot` draws them.

Definitions
-----------
Each objective is minimised or maximised (``directions``: ``"min"`` / ``"max"``, one per
column or one for all). After turning every objective into one to minimise, point ``p``
*dominates* ``q`` when ``p`` is no worse in every objective and better in at least one
(``p <= q`` everywhere, ``p != q``).

- **Front 1** (the non-dominated set) holds every point no other point dominates; front
  ``k + 1`` is front 1 of what is left after fronts ``1 .. k`` are taken away.
- **Duplicates** do not dominate each other: exact copies of a point share its front.
- **NaN** in any objective leaves the row out: its rank is 0 and it is on no front.
  ``+inf`` and ``-inf`` are ordinary values (worst and best when minimising).
- **Margins** (CK's ``math.frontier``): with margins ``eps >= 0`` (objective units), a
  point within the margins of a better point counts as dominated. Precisely, ``p`` *covers*
  ``q`` when they differ and ``p`` is worse by at most ``eps_i`` in every objective ``i``
  (``p_i <= q_i + eps_i``, as minimised). Points are visited best first: fewest points
  dominating them, then fewest covering them, then smallest sum of the objectives scaled to
  [0, 1] over their range in the data (infinities clipped to it), then the objectives in
  order. A point joins the front
  unless a point already on it covers it. So every point left out lies within the margins of
  a point on the front, and with all margins 0 (covering is then dominating) this is exactly
  front 1. Later fronts repeat the same on what is left. Margins cost O(n^2) vectorised
  comparisons: meant for the up to ~10^4 points of experiments and leaderboards.

Algorithms
----------
Two objectives: one sort and a running minimum, O(n log n). Three objectives: a divide and
conquer over the points in lexicographic order, bottom-up; every level is a few vectorised
passes (a radix sort of the y-ordered points by pair of halves, a running minimum of z per
pair), O(n log n) per level, O(n log^2 n) in all at worst. Four or more: points sorted by
their scaled sum are accepted block by block, each block checked against itself, and every
new front point discards all later points it dominates, vectorised. Before any of these,
from 4096 points on, linear passes discard rows known to be dominated: one against the best
row (by scaled sum) of a sample, d comparisons per row, and for two objectives one against
the best second value of every earlier slice of the first (one slice per point, at most
65536). Ranks peel fronts with these.

From 2048 points on, the exact step for three or more objectives and every ranking run
compiled (numba, :mod:`ckg.pareto.kernels`) on the distinct points in lexicographic order:
a point can only be dominated by earlier ones, and the first objective being settled, only
the others are compared. Two objectives: a patience sort ranks each point on the first
front whose best second objective it does not beat, O(n log n). Three: each front keeps a
staircase of its points in the last two objectives; a bisection over the fronts, then one
within a staircase, places every point. Four or more: a static k-d tree over the objectives
after the first, in which every node records the least values of the points placed in it
so far (and, for ranks, their highest front); each point's query skips the nodes that
cannot hold a dominator (or one on a higher front than found) and takes whole the nodes
lying below it. Ranks peel fronts with the exact set while each front holds at least 1/32
of the points left, then sweep the rest with the tree. Memory is O(n d). The tree has no
worst-case bound better than O(n^2) comparisons, but on uniform, anti-correlated and
all-non-dominated data it visits tens of nodes per point.

Examples
--------
>>> import numpy as np
>>> points = np.array([[1.0, 5.0], [2.0, 3.0], [3.0, 4.0], [4.0, 1.0], [np.nan, 0.0]])
>>> nondominated(points).tolist()
[True, True, False, True, False]
>>> pareto_ranks(points).tolist()
[1, 1, 2, 1, 0]
>>> hypervolume(points, [5.0, 6.0])
12.0

Over a table (what ``ckg run --pareto`` prints), directions from the metric registry:

>>> import pandas as pd
>>> runs = pd.DataFrame({"batch": [1, 8, 32], "accuracy": [76.1, 76.1, 75.0],
...                      "latency": [0.020, 0.012, 0.015]})
>>> front_table(runs, "accuracy,latency")[["front_rank", "batch"]].values.tolist()
[[1, 8], [2, 1], [2, 32]]
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ckg.core.errors import InvalidInput, UsageError
from ckg.pareto.hypervolume import _hv
from ckg.pareto.margins import _greedy_front, _greedy_ranks
from ckg.pareto.sets import _nd, _ranks

DIRECTIONS = ("min", "max")


# --- input --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Objective:
    """One objective: a metric's ``name`` and whether it is minimised or maximised (None:
    unknown, which :func:`parse_objectives` gives only when asked to)."""

    name: str
    direction: str | None

    def __str__(self) -> str:
        return f"{self.name}:{self.direction}" if self.direction else self.name


def parse_objectives(
    spec: str | Sequence[str | Objective], *, undirected: bool = False
) -> list[Objective]:
    """Objectives from ``"accuracy:max,latency"`` or a list of such items.

    A name without ``:min`` / ``:max`` takes its direction from the metric registry
    (:func:`ckg.core.metrics.get`); names are kept as written. With ``undirected``, a metric the
    registry gives no direction is an objective whose direction is None (to list its
    values, unranked) instead of an error.

    Raises
    ------
    UsageError
        An empty list, a repeated objective, a suffix other than min or max, or (unless
        ``undirected``) a metric with no known direction and no suffix.

    Examples
    --------
    >>> [str(o) for o in parse_objectives("accuracy,latency:min,params:min")]
    ['accuracy:max', 'latency:min', 'params:min']
    >>> [o.direction for o in parse_objectives("accuracy,widgets", undirected=True)]
    ['max', None]
    """
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    out: list[Objective] = []
    for item in items:
        if isinstance(item, Objective):
            out.append(item)
            continue
        name, _, direction = str(item).strip().rpartition(":")
        if not name:
            name, direction = direction, ""
        name = name.strip()
        if not name:
            raise UsageError(f"empty objective in {spec!r}")
        direction = direction.strip().lower() or _registry_direction(name, undirected)
        if direction not in DIRECTIONS and not (undirected and direction is None):
            raise UsageError(f"objective {item!r}: direction must be min or max")
        out.append(Objective(name, direction))
    if not out:
        raise UsageError("no objectives given: name two or more, e.g. accuracy:max,latency:min")
    names = [o.name for o in out]
    if len(set(names)) != len(names):
        raise UsageError(f"objective named twice in {', '.join(names)}")
    return out


def _registry_direction(name: str, undirected: bool = False) -> str | None:
    from ckg.core import metrics

    metric = metrics.get(name)
    if metric is None or metric.direction is None:
        if undirected:
            return None
        raise UsageError(no_direction(name))
    return metric.direction


def no_direction(name: str) -> str:
    """Why there is no front over the metric ``name``, and what to write instead.

    >>> no_direction("widgets")
    "no direction known for metric 'widgets': write widgets:min or widgets:max"
    """
    return f"no direction known for metric {name!r}: write {name}:min or {name}:max"


def front_table(
    table,
    objectives: str | Sequence[str | Objective],
    *,
    margins: Mapping[str, float] | None = None,
    fronts: int | None = None,
):
    """Rank the rows of a table (one row per configuration) by Pareto front.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per point: any descriptive columns plus one numeric column per metric.
    objectives : str or sequence
        ``"accuracy:max,latency"`` or a list of names / :class:`Objective`; a name matches
        a column as written or by its canonical registry name.
    margins : mapping of objective name to float, optional
        Margins in the objectives' units (see the module notes).
    fronts : int, optional
        Keep only fronts ``1 .. fronts``.

    Returns
    -------
    pandas.DataFrame
        The rows having every objective (values coerced to numbers), with ``front_rank``
        as first column, sorted by front and then by the objectives, best first. ``attrs``
        holds ``objectives`` (``"name:dir"`` strings), ``columns`` (objective -> column)
        and ``left_out`` (rows without a value for some objective).

    Raises
    ------
    InvalidInput
        An objective that is no column of the table (the message names the numeric ones).
    UsageError
        See :func:`parse_objectives`.
    """
    import pandas as pd

    objs = parse_objectives(objectives)
    columns = [_column_for(table, o.name) for o in objs]
    values = table[columns].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
    eps = None
    if margins:
        unknown = set(margins) - {o.name for o in objs}
        if unknown:
            raise UsageError(f"margin for {sorted(unknown)[0]!r}, which is not an objective")
        eps = [float(margins.get(o.name, 0.0)) for o in objs]
    ranks = pareto_ranks(values, [o.direction for o in objs], margins=eps)
    out = table.copy()
    out[columns] = values
    out.insert(0, "front_rank", ranks)
    out = out[ranks > 0]
    if fronts is not None:
        out = out[out["front_rank"] <= fronts]
    keys = ["front_rank", *columns]
    ascending = [True, *(o.direction == "min" for o in objs)]
    out = out.sort_values(keys, ascending=ascending, kind="stable")
    out.attrs = {
        "objectives": [str(o) for o in objs],
        "columns": dict(zip([o.name for o in objs], columns, strict=True)),
        "left_out": int((ranks == 0).sum()),
    }
    return out


def _column_for(table, name: str) -> str:
    if name in table.columns:
        return name
    from ckg.core import metrics

    metric = metrics.get(name)
    if metric is not None:
        for column in table.columns:
            found = metrics.get(str(column))
            if found is not None and found.name == metric.name:
                return column
    numeric = [str(c) for c in table.columns if _is_numeric(table[c])]
    raise InvalidInput(
        f"objective {name!r} is not in the results; metrics present: "
        + (", ".join(numeric) or "none")
    )


def _is_numeric(column) -> bool:
    return column.dtype.kind in "fiu"


def _directions(directions, d: int) -> np.ndarray:
    """Signs that turn each column into one to minimise (+1 min, -1 max)."""
    if isinstance(directions, str):
        directions = [directions] * d
    directions = list(directions)
    if len(directions) != d:
        raise InvalidInput(f"{len(directions)} directions given for {d} objectives")
    bad = [x for x in directions if x not in DIRECTIONS]
    if bad:
        raise InvalidInput(f"direction must be 'min' or 'max', got {bad[0]!r}")
    return np.array([1.0 if x == "min" else -1.0 for x in directions])


def _prepare(values, directions) -> tuple[np.ndarray, np.ndarray]:
    """Rows without NaN, as objectives to minimise, and the mask of those rows."""
    x = np.asarray(values, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2 or x.shape[1] == 0:
        raise InvalidInput(f"expected an array of points x objectives, got shape {x.shape}")
    signs = _directions(directions, x.shape[1])
    # Column by column: reductions across a short row axis are slow in NumPy.
    valid = np.ones(len(x), dtype=bool)
    if np.isnan(x).any():
        for j in range(x.shape[1]):
            valid &= ~np.isnan(x[:, j])
        x = x[valid]
    if (signs < 0).any():
        x = x * signs
    return x, valid


def _margins(margins, d: int) -> np.ndarray | None:
    if margins is None:
        return None
    eps = np.broadcast_to(np.asarray(margins, dtype=np.float64), (d,)).copy()
    if not (np.isfinite(eps).all() and (eps >= 0).all()):
        raise InvalidInput(f"margins must be finite and >= 0, got {eps.tolist()}")
    return eps if eps.any() else None


# --- public API ---------------------------------------------------------------------------


def nondominated(values, directions="min", *, margins=None) -> np.ndarray:
    """Mask of the points on the first Pareto front.

    Parameters
    ----------
    values : array_like, shape (n, d) or (n,)
        One row per point, one column per objective.
    directions : "min", "max" or sequence of them
        Whether each objective is minimised or maximised (one value applies to all).
    margins : float or sequence of float, optional
        Per-objective margins >= 0 in the objectives' units; see the module notes.

    Returns
    -------
    numpy.ndarray of bool, shape (n,)
        True for points no other point dominates; False for the rest and for rows with NaN.

    Raises
    ------
    InvalidInput
        A direction that is not min or max, a negative or non-finite margin, a bad shape.

    Examples
    --------
    >>> nondominated([[1, 2], [2, 1], [2, 2], [1, 2]]).tolist()
    [True, True, False, True]
    >>> nondominated([[90, 5.0], [80, 1.0], [70, 2.0]], ["max", "min"]).tolist()
    [True, True, False]
    """
    x, valid = _prepare(values, directions)
    eps = _margins(margins, x.shape[1])
    mask = _greedy_front(x, eps, np.arange(len(x)))[1] if eps is not None else _nd(x)
    if valid.all():
        return mask
    out = np.zeros(len(valid), dtype=bool)
    out[valid] = mask
    return out


def pareto_ranks(values, directions="min", *, margins=None) -> np.ndarray:
    """Front number of every point: 1 for the non-dominated set, 2 for the next, ...

    Parameters are those of :func:`nondominated`.

    Returns
    -------
    numpy.ndarray of int64, shape (n,)
        The front of each point; 0 for rows left out because of NaN.

    Examples
    --------
    >>> pareto_ranks([[1, 1], [2, 2], [3, 3], [1, 3]]).tolist()
    [1, 2, 3, 2]
    """
    x, valid = _prepare(values, directions)
    eps = _margins(margins, x.shape[1])
    if eps is not None:
        ranks = _greedy_ranks(x, eps)
    elif x.shape[1] == 1:
        ranks = np.unique(x[:, 0], return_inverse=True)[1].astype(np.int64) + 1
    else:
        ranks = _ranks(x)
    out = np.zeros(len(valid), dtype=np.int64)
    out[valid] = ranks
    return out


def hypervolume(values, reference, directions="min") -> float:
    """Volume dominated by the points and bounded by the reference point.

    Only points strictly better than ``reference`` in every objective count. Exact for any
    number of objectives: two by one sweep in O(n log n), more by slicing along the last
    objective and recursing, O(n^(d-1) log n), meant for fronts of up to a few thousand points.

    Parameters
    ----------
    values : array_like, shape (n, d)
    reference : sequence of float, length d
        The worst acceptable value of each objective, in the objectives' own units.
    directions : "min", "max" or sequence of them

    Examples
    --------
    >>> hypervolume([[1, 3], [2, 2], [3, 1]], [4, 4])
    6.0
    >>> hypervolume([[0.9, 10.0]], [0.5, 20.0], ["max", "min"])
    4.0
    """
    x, _ = _prepare(values, directions)
    ref = np.asarray(reference, dtype=np.float64).reshape(-1)
    if ref.shape != (x.shape[1],) or np.isnan(ref).any():
        raise InvalidInput(f"reference point must have {x.shape[1]} numbers, got {reference!r}")
    ref = ref * _directions(directions, x.shape[1])
    x = x[(x < ref).all(axis=1)]
    if not len(x):
        return 0.0
    if not np.isfinite(x).all() or not np.isfinite(ref).all():
        raise InvalidInput("hypervolume needs finite points and reference")
    return float(_hv(x[_nd(x)], ref))
