"""Pareto fronts: non-dominated sets, front ranks and hypervolume on NumPy arrays and DataFrames.

Everything here is pure: arrays and DataFrames in, arrays and DataFrames out, no I/O.
:mod:`ckg.frontier` selects points from the graph and writes front membership back;
:mod:`ckg.plot` draws them.

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
Two objectives: one sort and a running minimum, O(n log n); ranks by a patience-sort
assignment of each point to the first front whose best second objective it does not beat,
O(n log n). Three objectives: a divide and conquer over the points in lexicographic order,
bottom-up; every level is a few vectorised passes (a radix sort of the y-ordered points by
pair of halves, a running minimum of z per pair), O(n log n) per level, O(n log^2 n) in all
at worst. Four or more: points sorted by their scaled sum are accepted block by block, each
block checked against itself, and every new front point discards all later points it
dominates, vectorised; fast when the front is a small part of the data, quadratic when
nearly every point is on it. Before any of these, from 4096 points on, linear passes discard
rows known to be dominated: one against the best row (by scaled sum) of a sample, d
comparisons per row, and for two objectives one against the best second value of every
earlier slice of the first (65536 slices).

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

from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ckg.errors import InvalidInput, UsageError

DIRECTIONS = ("min", "max")

#: Elements of one boolean comparison matrix; bounds the memory of the vectorised checks.
_CHUNK = 1 << 21
#: Rows of one block of the sorted sweep for four or more objectives.
_BLOCK = 128
#: Fewest rows for which a linear prefilter pass runs before the exact algorithm.
_PREFILTER_MIN = 4096
#: Added to values to lift them above every other (see _nd3_sorted).
_LIFT = 1e300
#: Rows of the blocks that the three-objective divide and conquer checks pair by pair.
_BASE = 16


# --- input --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Objective:
    """One objective: a metric's ``name`` and whether it is minimised or maximised."""

    name: str
    direction: str

    def __str__(self) -> str:
        return f"{self.name}:{self.direction}"


def parse_objectives(spec: str | Sequence[str | Objective]) -> list[Objective]:
    """Objectives from ``"accuracy:max,latency"`` or a list of such items.

    A name without ``:min`` / ``:max`` takes its direction from the metric registry
    (:func:`ckg.metrics.get`); names are kept as written.

    Raises
    ------
    UsageError
        An empty list, a repeated objective, a suffix other than min or max, or a metric
        with no known direction and no suffix.

    Examples
    --------
    >>> [str(o) for o in parse_objectives("accuracy,latency:min,params:min")]
    ['accuracy:max', 'latency:min', 'params:min']
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
        direction = direction.strip().lower() or _registry_direction(name)
        if direction not in DIRECTIONS:
            raise UsageError(f"objective {item!r}: direction must be min or max")
        out.append(Objective(name, direction))
    if not out:
        raise UsageError("no objectives given: name two or more, e.g. accuracy:max,latency:min")
    names = [o.name for o in out]
    if len(set(names)) != len(names):
        raise UsageError(f"objective named twice in {', '.join(names)}")
    return out


def _registry_direction(name: str) -> str:
    from ckg import metrics

    metric = metrics.get(name)
    if metric is None or metric.direction is None:
        raise UsageError(f"no direction known for metric {name!r}: write {name}:min or {name}:max")
    return metric.direction


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
    from ckg import metrics

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
    elif x.shape[1] == 2:
        ranks = _ranks2(x[:, 0], x[:, 1])
    else:
        ranks = _peel(x)
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


# --- exact non-dominated set ----------------------------------------------------------------


def _nd(x: np.ndarray) -> np.ndarray:
    """Mask of the non-dominated rows of ``x`` (minimised, no NaN)."""
    n, d = x.shape
    if n == 0:
        return np.zeros(0, dtype=bool)
    if d == 1:
        return x[:, 0] == x[:, 0].min()
    if n < _PREFILTER_MIN:
        return _nd_exact(x)
    # Linear passes that discard rows known to be dominated. One that discards most rows
    # starts over on the rest; one that discards a good part narrows what the next sees.
    rows = None  # all of them
    for prefilter in (_pivot_survivors, _bucket_survivors):
        keep = prefilter(x if rows is None else x[rows])
        if keep is None:
            continue
        kept = np.flatnonzero(keep) if rows is None else rows[keep]
        seen = n if rows is None else len(rows)
        if 2 * len(kept) < seen:
            out = np.zeros(n, dtype=bool)
            out[kept] = _nd(x[kept])
            return out
        if 4 * len(kept) < 3 * seen:  # narrowing copies the rows: only for a quarter off
            rows = kept
    if rows is None:
        return _nd_exact(x)
    out = np.zeros(n, dtype=bool)
    out[rows] = _nd_exact(x[rows])
    return out


def _nd_exact(x: np.ndarray) -> np.ndarray:
    d = x.shape[1]
    if d == 2:
        return _nd2(x[:, 0], x[:, 1])
    if d == 3:
        return _nd3(x)
    return _ndk(x)


def _pivot_survivors(x: np.ndarray) -> np.ndarray | None:
    """Rows not beaten by the best row of a sample (by scaled sum), or None if none is finite.

    A row at least the pivot's next representable value in every objective is no better
    than the pivot anywhere and differs from it, so the pivot dominates it; copies of the
    pivot survive. d comparisons per row; on data whose front is small it discards nearly
    everything, so the exact algorithm only sorts what is left.
    """
    n, d = x.shape
    sample = x[:: max(1, n // 8192)]
    score = np.where(np.isfinite(sample).all(axis=1), _scaled_sum(sample), np.inf)
    best = int(np.argmin(score))
    if not np.isfinite(score[best]):
        return None
    above = np.nextafter(sample[best], np.inf)
    keep = x[:, 0] < above[0]
    for j in range(1, d):
        keep |= x[:, j] < above[j]
    return keep


def _bucket_survivors(x: np.ndarray, buckets: int = 1 << 16) -> np.ndarray | None:
    """Two objectives: rows not beaten by the best second value of an earlier bucket of the first.

    Buckets cut the range of the first objective into equal slices; any point of an earlier
    slice has a strictly smaller first value, so a point whose second value is no better than
    the best of all earlier slices is dominated. O(n), and on any data with a thin front it
    leaves little more than the front for the sort.
    """
    n, d = x.shape
    if d != 2:
        return None
    a, b = x[:, 0], x[:, 1]
    lo, hi = a.min(), a.max()
    scale = (buckets - 1) / (hi - lo) if hi > lo else 0.0
    usable = np.isfinite(lo) and np.isfinite(hi) and np.isfinite(scale) and scale > 0
    # +inf marks "no earlier slice" below, so a +inf second value would be misread.
    if not usable or b.max() == np.inf:
        return None
    work = np.subtract(a, lo)
    np.multiply(work, scale, out=work)
    slot = work.astype(np.int32)
    best = np.full(buckets, np.inf)
    np.minimum.at(best, slot, b)
    before = np.empty(buckets)
    before[0] = np.inf
    np.minimum.accumulate(best[:-1], out=before[1:])
    return np.less(b, before[slot])


def _nd2(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Two objectives: sort by the first, keep points that beat every earlier second value."""
    order = np.argsort(a)
    xs, ys = a[order], b[order]
    new = np.empty(len(xs), dtype=bool)
    new[0] = True
    np.not_equal(xs[1:], xs[:-1], out=new[1:])
    keep = np.empty(len(xs), dtype=bool)
    if new.all():
        best = np.minimum.accumulate(ys)
        keep[0] = True
        np.less(ys[1:], best[:-1], out=keep[1:])
    else:
        # Equal first values form one group: only the group's best second value can be
        # non-dominated (with its copies), and only if it beats every earlier group.
        starts = np.flatnonzero(new)
        group_best = np.minimum.reduceat(ys, starts)
        group = np.cumsum(new) - 1
        group_keep = np.ones(len(starts), dtype=bool)
        np.less(group_best[1:], np.minimum.accumulate(group_best)[:-1], out=group_keep[1:])
        keep = (ys == group_best[group]) & group_keep[group]
    out = np.empty(len(xs), dtype=bool)
    out[order] = keep
    return out


def _lex_order(x: np.ndarray) -> tuple[np.ndarray, bool]:
    """Row order by first objective, then second, ...; and whether the first one has ties.

    One plain sort when there are no ties.
    """
    order = np.argsort(x[:, 0])
    first = x[order, 0]
    if (first[1:] != first[:-1]).all():
        return order, False
    return np.lexsort(x.T[::-1]), True


def _nd3(x: np.ndarray) -> np.ndarray:
    """Three objectives: divide and conquer over the lexicographic order, level by level.

    After sorting by (x, y, z) and merging exact copies, q is dominated exactly when an
    earlier point has y <= y_q and z <= z_q. Every earlier/later pair is split by exactly
    one level of a bottom-up binary halving of the order; at each level the points are
    sorted by (pair of halves, y, left before right) and a running minimum of z over the
    left halves, reset per pair, tells each right-half point whether it is dominated.
    """
    n = len(x)
    order, ties = _lex_order(x)
    xs = x[order]
    copy = (xs[1:] == xs[:-1]).all(axis=1) if ties else None
    if copy is not None and copy.any():
        first = np.concatenate(([True], ~copy))
        unique_id = np.cumsum(first) - 1
        keep_unique = _nd3_sorted(xs[first])
        keep = keep_unique[unique_id]
    else:
        keep = _nd3_sorted(xs)
    out = np.empty(n, dtype=bool)
    out[order] = keep
    return out


def _nd3_sorted(xs: np.ndarray) -> np.ndarray:
    """Non-dominated mask of distinct rows already in lexicographic order."""
    n = len(xs)
    y = np.ascontiguousarray(xs[:, 1])
    z = np.ascontiguousarray(_finite_stand_in(xs[:, 2]))
    dominated = _dominated_in_blocks(y, z, _BASE)
    # Positions in order of (y, position); ties in y need the stable sort.
    by_y = np.argsort(y)
    y_sorted = y[by_y]
    if (y_sorted[1:] == y_sorted[:-1]).any():
        by_y = np.argsort(y, kind="stable")
    index = np.int32 if n < (1 << 31) else np.int64
    by_y = by_y.astype(index)
    # Gathers by the stable sort's steps below read these nearly in order.
    z_by_y = z[by_y]
    level = _BASE.bit_length() - 1
    while (1 << level) < n:
        # Group by pair of halves, keeping y order inside: a stable sort on the pair number,
        # a radix sort while it fits in 8 or 16 bits. Every pair but the last has `size`.
        size = 2 << level
        pairs = (n - 1) // size + 1
        key = by_y >> (level + 1)
        if pairs <= (1 << 8):
            key = key.astype(np.uint8)
        elif pairs <= (1 << 16):
            key = key.astype(np.uint16)
        step = np.argsort(key, kind="stable")
        perm = by_y[step]
        right = (perm & (1 << level)) != 0
        zp = z_by_y[step]
        # Running minimum of z over the left half, per pair: rows of a (pairs, size) array
        # (the last, shorter pair apart). Right-half points are lifted above every z (all
        # below _LIFT / 10) by an addition, much cheaper than a masked select.
        lifted = zp + right.astype(np.float64) * _LIFT
        best_left = np.empty(n)
        full = (n // size) * size
        np.minimum.accumulate(
            lifted[:full].reshape(-1, size), axis=1, out=best_left[:full].reshape(-1, size)
        )
        if full < n:
            np.minimum.accumulate(lifted[full:], out=best_left[full:])
        dominated[perm[right & (best_left <= zp)]] = True
        level += 1
    return ~dominated


def _finite_stand_in(v: np.ndarray) -> np.ndarray:
    """``v`` itself when finite and below ``_LIFT / 10`` in size, else its dense ranks.

    Same order either way; the divide and conquer lifts values by ``_LIFT``.
    """
    if np.isfinite(v).all() and np.abs(v).max() < _LIFT / 10:
        return v
    rank = np.unique(v, return_inverse=True)[1]
    return rank.astype(np.float64)


def _dominated_in_blocks(y: np.ndarray, z: np.ndarray, size: int) -> np.ndarray:
    """Within consecutive blocks of ``size`` rows: is a row beaten in (y, z) by an earlier one?"""
    n = len(y)
    pad = -(-n // size) * size - n
    yb = np.concatenate((y, np.zeros(pad))).reshape(-1, size)
    zb = np.concatenate((z, np.zeros(pad))).reshape(-1, size)
    earlier = np.tri(size, size, -1, dtype=bool).T  # earlier[i, j]: row i comes before row j
    hit = (yb[:, :, None] <= yb[:, None, :]) & (zb[:, :, None] <= zb[:, None, :]) & earlier
    return hit.any(axis=1).reshape(-1)[:n]


def _ndk(x: np.ndarray) -> np.ndarray:
    """Four or more objectives: sorted sweep in blocks, each new front point culls the rest."""
    n = len(x)
    key = _scaled_sum(x)
    order = np.argsort(key, kind="stable")
    xs, ks = x[order], key[order]
    rest = np.arange(n)
    keep = np.zeros(n, dtype=bool)
    while len(rest):
        # A point can only be dominated by one of no greater key: extend the block over
        # ties so that every such point is in it or was seen before.
        size = min(_BLOCK, len(rest))
        size = int(np.searchsorted(ks[rest], ks[rest[size - 1]], side="right"))
        block, rest = rest[:size], rest[size:]
        pts = xs[block]
        new = block[~_dominated_by(pts, pts)]
        keep[new] = True
        if len(rest):
            rest = rest[~_dominated_by(xs[new], xs[rest])]
    out = np.empty(n, dtype=bool)
    out[order] = keep
    return out


def _dominated_by(p: np.ndarray, q: np.ndarray, eps: np.ndarray | None = None) -> np.ndarray:
    """For each row of ``q``: does some row of ``p`` dominate it (within margins ``eps``)?"""
    out = np.zeros(len(q), dtype=bool)
    if not len(p) or not len(q):
        return out
    d = p.shape[1]
    step = max(1, _CHUNK // len(p))
    for s in range(0, len(q), step):
        qq = q[s : s + step]
        shift = qq if eps is None else qq + eps
        a, b, c = p[:, None, 0], qq[None, :, 0], shift[None, :, 0]
        no_worse = a <= c
        differs = a != b
        for j in range(1, d):
            a, b, c = p[:, None, j], qq[None, :, j], shift[None, :, j]
            no_worse &= a <= c
            differs |= a != b
        out[s : s + step] = (no_worse & differs).any(axis=0)
    return out


def _scaled_sum(x: np.ndarray) -> np.ndarray:
    """Sum of the objectives scaled to [0, 1] over their finite range, infinities clipped.

    Monotone in every objective, so a point that dominates another never has a larger sum.
    """
    total = np.zeros(len(x))
    for j in range(x.shape[1]):
        column = x[:, j]
        finite = column[np.isfinite(column)]
        if not len(finite):
            continue
        lo, hi = finite.min(), finite.max()
        scaled = (np.clip(column, lo, hi) - lo) / (hi - lo) if hi > lo else np.zeros(len(x))
        total += scaled
    return total


# --- ranks --------------------------------------------------------------------------------


def _ranks2(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Fronts of two objectives in O(n log n).

    In lexicographic order, ``tails[k]`` is the best second value on front k + 1 so far;
    tails never decrease with k, so a point goes to the first front whose tail it beats
    (found by bisection), one past every front holding a point that dominates it.
    """
    order, ties = _lex_order(np.column_stack((a, b)))
    xs, ys = a[order].tolist(), b[order].tolist()
    tails: list[float] = []
    if not ties:
        # No ties in the first objective: the plain patience-sort loop.
        ranks = []
        for y in ys:
            r = bisect_right(tails, y)
            if r == len(tails):
                tails.append(y)
            else:
                tails[r] = y
            ranks.append(r)
        out = np.empty(len(xs), dtype=np.int64)
        out[order] = np.asarray(ranks, dtype=np.int64) + 1
        return out
    ranks = [0] * len(xs)
    i = 0
    while i < len(xs):
        # Points of equal first value are ranked together against earlier fronts; inside
        # the group a larger second value is dominated by the smaller ones before it.
        j = i
        while j < len(xs) and xs[j] == xs[i]:
            j += 1
        prev_y, prev_rank = None, 0
        for k in range(i, j):
            r = bisect_right(tails, ys[k])
            if prev_y is not None:
                r = max(r, prev_rank if ys[k] == prev_y else prev_rank + 1)
            ranks[k], prev_y, prev_rank = r, ys[k], r
        for k in range(i, j):
            r = ranks[k]
            if r == len(tails):
                tails.append(ys[k])
            elif ys[k] < tails[r]:
                tails[r] = ys[k]
        i = j
    out = np.empty(len(xs), dtype=np.int64)
    out[order] = np.asarray(ranks, dtype=np.int64) + 1
    return out


def _peel(x: np.ndarray) -> np.ndarray:
    """Fronts by taking the non-dominated set away again and again."""
    ranks = np.zeros(len(x), dtype=np.int64)
    rest = np.arange(len(x))
    front = 0
    while len(rest):
        front += 1
        on = _nd(x[rest])
        ranks[rest[on]] = front
        rest = rest[~on]
    return ranks


# --- margins ------------------------------------------------------------------------------


def _visit_order(x: np.ndarray, eps: np.ndarray) -> np.ndarray:
    """Best first: fewest dominating, then covering points, scaled sum, the objectives.

    Dominated points come after their dominators, so no dominated point ever joins a front
    ahead of the point that dominates it: margins only take points away from front 1.
    """
    dominated = np.zeros(len(x), dtype=np.int64)
    covered = np.zeros(len(x), dtype=np.int64)
    zero = np.zeros_like(eps)
    for s in range(0, len(x), _BLOCK):
        dominated += _covers(x[s : s + _BLOCK], x, zero).sum(axis=0)
        covered += _covers(x[s : s + _BLOCK], x, eps).sum(axis=0)
    return np.lexsort((*x.T[::-1], _scaled_sum(x), covered, dominated))


def _covers(p: np.ndarray, q: np.ndarray, eps: np.ndarray) -> np.ndarray:
    """``out[i, j]``: row ``i`` of ``p`` differs from row ``j`` of ``q`` and is within margins."""
    return (p[:, None, :] <= q[None, :, :] + eps).all(axis=2) & (
        p[:, None, :] != q[None, :, :]
    ).any(axis=2)


def _greedy_front(x: np.ndarray, eps: np.ndarray, rows: np.ndarray):
    """The margin front of ``x[rows]``: (rows on it, mask over ``rows``)."""
    pts = x[rows]
    order = _visit_order(pts, eps)
    accepted: list[int] = []
    for s in range(0, len(order), _BLOCK):
        cand = order[s : s + _BLOCK]
        cand = cand[~_dominated_by(pts[accepted], pts[cand], eps)] if accepted else cand
        if not len(cand):
            continue
        c = pts[cand]
        within = _covers(c, c, eps)
        taken = np.zeros(len(cand), dtype=bool)
        for j in range(len(cand)):
            if not (within[:j, j] & taken[:j]).any():
                taken[j] = True
        accepted.extend(cand[taken].tolist())
    on = np.zeros(len(rows), dtype=bool)
    on[np.asarray(accepted, dtype=np.int64)] = True
    return rows[on], on


def _greedy_ranks(x: np.ndarray, eps: np.ndarray) -> np.ndarray:
    ranks = np.zeros(len(x), dtype=np.int64)
    rest = np.arange(len(x))
    front = 0
    while len(rest):
        front += 1
        taken, on = _greedy_front(x, eps, rest)
        ranks[taken] = front
        rest = rest[~on]
    return ranks


# --- hypervolume --------------------------------------------------------------------------


def _hv(x: np.ndarray, ref: np.ndarray) -> float:
    """Hypervolume of non-dominated, finite, minimised points strictly inside ``ref``."""
    if x.shape[1] == 1:
        return float(ref[0] - x[:, 0].min())
    if x.shape[1] == 2:
        order = np.lexsort((x[:, 1], x[:, 0]))
        a, b = x[order, 0], x[order, 1]
        right = np.append(a[1:], ref[0])
        return float(np.sum((right - a) * (ref[1] - b)))
    order = np.argsort(x[:, -1], kind="stable")
    xs = x[order]
    cuts = np.append(xs[1:, -1], ref[-1])
    total = 0.0
    for i in range(len(xs)):
        depth = cuts[i] - xs[i, -1]
        if depth > 0:
            prefix = xs[: i + 1, :-1]
            total += depth * _hv(prefix[_nd(prefix)], ref[:-1])
    return total
