"""Exact non-dominated sets and front ranks on minimised NumPy arrays without NaN.

The algorithms are described in :mod:`ckg.pareto`; these are its private workers, and
:mod:`ckg.pareto.kernels` holds the compiled ones they hand large inputs to.
"""

import numpy as np

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
#: Fewest rows handed to the compiled kernels, which cost numba's import (about 0.2 s) once.
_COMPILED_MIN = 2048
#: Ranking stops peeling fronts once one holds less than this fraction of the rows left.
_THIN_FRONT = 32

# --- exact non-dominated set ----------------------------------------------------------------


def _nd(x: np.ndarray, compiled: bool | None = None) -> np.ndarray:
    """Mask of the non-dominated rows of ``x`` (minimised, no NaN).

    ``compiled``: whether the exact step may use the compiled kernels; by default, when
    ``x`` has enough rows to repay their import (the rows left by prefilters may be few).
    """
    n, d = x.shape
    if compiled is None:
        compiled = n >= _COMPILED_MIN
    if n == 0:
        return np.zeros(0, dtype=bool)
    if d == 1:
        return x[:, 0] == x[:, 0].min()
    if n < _PREFILTER_MIN:
        return _nd_exact(x, compiled)
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
            out[kept] = _nd(x[kept], compiled)
            return out
        if 4 * len(kept) < 3 * seen:  # narrowing copies the rows: only for a quarter off
            rows = kept
    if rows is None:
        return _nd_exact(x, compiled)
    out = np.zeros(n, dtype=bool)
    out[rows] = _nd_exact(x[rows], compiled)
    return out


def _nd_exact(x: np.ndarray, compiled: bool) -> np.ndarray:
    d = x.shape[1]
    if d == 2:
        return _nd2(x[:, 0], x[:, 1])
    if not compiled:
        return _nd3(x) if d == 3 else _ndk(x)
    from ckg.pareto import kernels

    if d == 3:
        return _sweep(x, lambda yz: kernels.sweep_ranks3(yz, 1)) == 1
    return _sweep(x, kernels.sweep_nondominated)


def _sweep(x: np.ndarray, kernel) -> np.ndarray:
    """``kernel``, a sweep of :mod:`ckg.pareto.kernels`, over the distinct rows of ``x`` in
    lexicographic order, given the objectives after the first; copies share their result."""
    order, ties = _lex_order(x)
    xs = x[order]
    if ties:
        first = np.ones(len(xs), dtype=bool)
        first[1:] = (xs[1:] != xs[:-1]).any(axis=1)
        result = kernel(np.ascontiguousarray(xs[first, 1:]))[np.cumsum(first) - 1]
    else:
        result = kernel(np.ascontiguousarray(xs[:, 1:]))
    out = np.empty(len(x), dtype=result.dtype)
    out[order] = result
    return out


def _pivot_survivors(x: np.ndarray) -> np.ndarray | None:
    """Rows not beaten by the best row of a sample (by scaled sum), or None if none is finite.

    A row at least the pivot's next representable value in every objective is no better
    than the pivot anywhere and differs from it, so the pivot dominates it; copies of the
    pivot survive. d comparisons per row; on data whose front is small it discards nearly
    everything, so the exact algorithm only sorts what is left.
    """
    n, d = x.shape
    # One row in 16, between 1024 and 8192 of them: scoring them is a small part of the pass.
    sample = x[:: max(1, n // min(max(n // 16, 1024), 8192))]
    score = np.where(np.isfinite(sample).all(axis=1), _scaled_sum(sample), np.inf)
    best = int(np.argmin(score))
    if not np.isfinite(score[best]):
        return None
    above = np.nextafter(sample[best], np.inf)
    keep = x[:, 0] < above[0]
    for j in range(1, d):
        keep |= x[:, j] < above[j]
    return keep


def _bucket_survivors(x: np.ndarray) -> np.ndarray | None:
    """Two objectives: rows not beaten by the best second value of an earlier bucket of the first.

    Buckets cut the range of the first objective into equal slices (one per row, at most
    65536); any point of an earlier slice has a strictly smaller first value, so a point
    whose second value is no better than the best of all earlier slices is dominated. O(n),
    and on any data with a thin front it leaves little more than the front for the sort.
    """
    n, d = x.shape
    if d != 2:
        return None
    buckets = min(n, 1 << 16)  # more than n mostly stay empty and only cost their passes
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


def _ranks(x: np.ndarray) -> np.ndarray:
    """Front of every row of ``x`` (two or more objectives).

    Small inputs peel fronts with the NumPy paths. Large ones go to the compiled kernels,
    in lexicographic order: for two objectives a patience sort, for three a bisection over
    the fronts' staircases; for more, fronts are peeled with :func:`_nd` while each holds at
    least ``1 / _THIN_FRONT`` of the rows left, and a sweep of the k-d tree ranks the rest.
    """
    if len(x) < _COMPILED_MIN:
        return _peel(x)
    from ckg.pareto import kernels

    if x.shape[1] == 2:
        order, _ = _lex_order(x)
        ranks = np.empty(len(x), dtype=np.int64)
        ranks[order] = kernels.ranks2_sorted(x[order, 0], x[order, 1])
        return ranks
    if x.shape[1] == 3:
        return _sweep(x, lambda yz: kernels.sweep_ranks3(yz, len(yz)))
    # Peeling costs one exact set per front, the sweep a tree query per row: peel while
    # fronts are thick (many objectives, or few fronts), sweep once they thin out.
    ranks = np.zeros(len(x), dtype=np.int64)
    rest = np.arange(len(x))
    front = 0
    while len(rest):
        front += 1
        on = _nd(x[rest], compiled=True)
        ranks[rest[on]] = front
        rest = rest[~on]
        if _THIN_FRONT * on.sum() < len(on):
            break
    if len(rest):
        ranks[rest] = _sweep(x[rest], kernels.sweep_ranks) + front
    return ranks


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
