"""Compiled workers (numba) for large inputs: sweeps over a k-d tree or over the fronts'
staircases, and 2-D ranks.

Imported only for inputs large enough to repay numba's import (about 0.2 s) and, in a fresh
environment, the one-time compilation (about 6 s on a shared 2-core machine, cached next to
this file or in the user's cache directory). Inputs are minimised float64 arrays without
NaN; infinities compare as ordinary values.

The sweeps visit distinct rows in lexicographic order, so every row comes after all rows
that dominate it, and each earlier row is no worse in the first objective and differs from
the row visited: it dominates that row exactly when it is no worse in every other objective.
They are therefore given the objectives after the first (``y``) and query, for each row,
the rows visited before it that are no worse in every column of ``y``.

Those rows sit in a static, implicit k-d tree over ``y``: node ``k`` has children ``2k + 1``
and ``2k + 2``, every internal node splits its rows at their median along its widest
column, and leaves hold ``_LEAF / 2`` to ``_LEAF`` rows. Each node keeps the greatest values
of its rows (``hi``), and the sweep keeps, per node, the least values of the rows it has
placed there so far; a query skips every node whose least values exceed the row's in some
column, and takes a node whole when its greatest values do not. In the spread-out fronts of
many objectives that prunes nearly the whole tree for every row.
"""

import numba
import numpy as np

#: Most rows in a leaf of the tree.
_LEAF = 16


@numba.njit(cache=True)
def _select(vals: np.ndarray, rows: np.ndarray, s: int, e: int, m: int) -> None:
    """Reorder ``vals[s:e]`` and ``rows[s:e]`` alike so that position ``m`` holds the value a
    sort would put there, with no greater value before it and no smaller one after."""
    lo, hi = s, e - 1
    while lo < hi:
        # Median of three as pivot: sorted and reversed runs stay linear.
        a, b, c = vals[lo], vals[(lo + hi) // 2], vals[hi]
        pivot = max(min(a, b), min(max(a, b), c))
        i, j = lo, hi
        while i <= j:
            while vals[i] < pivot:
                i += 1
            while vals[j] > pivot:
                j -= 1
            if i <= j:
                vals[i], vals[j] = vals[j], vals[i]
                rows[i], rows[j] = rows[j], rows[i]
                i += 1
                j -= 1
        if m <= j:
            hi = j
        elif m >= i:
            lo = i
        else:
            return


@numba.njit(cache=True)
def _bounds(y: np.ndarray, rows: np.ndarray, s: int, e: int, lo: np.ndarray, hi: np.ndarray):
    """Least and greatest value of every column over ``rows[s:e]``, into ``lo`` and ``hi``."""
    lo[:] = np.inf
    hi[:] = -np.inf
    for t in range(s, e):
        for j in range(y.shape[1]):
            v = y[rows[t], j]
            lo[j] = min(lo[j], v)
            hi[j] = max(hi[j], v)


@numba.njit(cache=True)
def _build(y: np.ndarray):
    """The tree: rows in leaf order, each node's first row and end, each node's greatest
    values, and the leaf of every row. Nodes from ``len(end) // 2`` on are leaves."""
    n, d = y.shape
    depth = 0
    while (n >> depth) > _LEAF:
        depth += 1
    nodes = (1 << (depth + 1)) - 1
    first_leaf = (1 << depth) - 1
    rows = np.arange(n)
    start = np.empty(nodes, np.int64)
    end = np.empty(nodes, np.int64)
    start[0], end[0] = 0, n
    lo = np.empty(d)
    hi = np.empty((nodes, d))
    vals = np.empty(n)
    for k in range(first_leaf):
        s, e = start[k], end[k]
        m = (s + e) // 2
        start[2 * k + 1], end[2 * k + 1] = s, m
        start[2 * k + 2], end[2 * k + 2] = m, e
        _bounds(y, rows, s, e, lo, hi[k])
        widest = 0
        for j in range(1, d):
            if hi[k, j] - lo[j] > hi[k, widest] - lo[widest]:
                widest = j
        for t in range(s, e):
            vals[t] = y[rows[t], widest]
        _select(vals, rows, s, e, m)
    leaf_of = np.empty(n, np.int64)
    for k in range(first_leaf, nodes):
        _bounds(y, rows, start[k], end[k], lo, hi[k])
        for t in range(start[k], end[k]):
            leaf_of[rows[t]] = k
    return rows, start, end, hi, leaf_of


@numba.njit(cache=True, inline="always")
def _no_worse(corner: np.ndarray, k: int, y: np.ndarray, q: int) -> bool:
    """``corner[k] <= y[q]`` in every column."""
    for j in range(y.shape[1]):
        if corner[k, j] > y[q, j]:
            return False
    return True


@numba.njit(cache=True, inline="always")
def _lower(low: np.ndarray, k: int, y: np.ndarray, q: int) -> None:
    """Lower ``low[k]`` to ``y[q]`` where that is less."""
    for j in range(y.shape[1]):
        low[k, j] = min(low[k, j], y[q, j])


@numba.njit(cache=True)
def sweep_nondominated(y: np.ndarray) -> np.ndarray:
    """Mask of the rows on the first front; rows and ``y`` as in the module notes.

    A row is on the front unless a front row visited before it dominates it (a dominated
    dominator is itself dominated by a front row), so only front rows enter the tree.
    """
    n = len(y)
    rows, start, end, hi, leaf_of = _build(y)
    first_leaf = len(end) // 2
    on = np.zeros(n, np.bool_)
    holds = np.zeros(len(end), np.bool_)
    low = np.full(hi.shape, np.inf)
    stack = np.empty(128, np.int64)
    for q in range(n):
        dominated = False
        stack[0], top = 0, 1
        while top and not dominated:
            top -= 1
            k = stack[top]
            # Children are pushed only if they hold a front row below q in every column.
            if k == 0 and not (holds[k] and _no_worse(low, k, y, q)):
                continue
            if _no_worse(hi, k, y, q):
                dominated = True  # by any front row of the node
            elif k < first_leaf:
                # The lower half along the split is likelier to dominate: visit it first.
                for c in (2 * k + 2, 2 * k + 1):
                    if holds[c] and _no_worse(low, c, y, q):
                        stack[top] = c
                        top += 1
            else:
                for t in range(start[k], end[k]):
                    p = rows[t]
                    if on[p] and _no_worse(y, p, y, q):
                        dominated = True
                        break
        if not dominated:
            on[q] = True
            k = leaf_of[q]
            while True:
                holds[k] = True
                _lower(low, k, y, q)
                if k == 0:
                    break
                k = (k - 1) // 2
    return on


@numba.njit(cache=True)
def sweep_ranks(y: np.ndarray) -> np.ndarray:
    """Front of every row (1 = non-dominated); rows and ``y`` as in the module notes.

    A row's front is one more than the highest front among the rows dominating it, all
    ranked by then. Every node keeps its highest front so far and the least values of the
    rows on it, and a query skips the nodes that cannot raise the best front found.
    """
    n = len(y)
    rows, start, end, hi, leaf_of = _build(y)
    first_leaf = len(end) // 2
    at = np.empty(n, np.int64)
    at[rows] = np.arange(n)
    top_rank = np.zeros(len(end), np.int64)
    low = np.full(hi.shape, np.inf)  # over the node's ranked rows
    top_low = np.full(hi.shape, np.inf)  # over its rows on front top_rank
    rank = np.zeros(n, np.int64)
    # Rows and their fronts in leaf order: a leaf's scan reads consecutive memory.
    y_at = np.empty_like(y)
    for t in range(n):
        y_at[t] = y[rows[t]]
    rank_at = np.zeros(n, np.int64)
    stack = np.empty(128, np.int64)
    for q in range(n):
        best = 0
        stack[0], top = 0, 1
        while top:
            top -= 1
            k = stack[top]
            # Children are pushed only if they hold a row below q on a front above best.
            if top_rank[k] <= best or (k == 0 and not _no_worse(low, k, y, q)):
                continue
            if top_rank[k] == best + 1 and not _no_worse(top_low, k, y, q):
                continue  # only rows on front top_rank could raise best, and none is below q
            if _no_worse(hi, k, y, q):
                best = top_rank[k]  # every ranked row of the node dominates q
            elif k < first_leaf:
                # The upper half along the split goes on top: nearer q, on higher fronts.
                for c in (2 * k + 1, 2 * k + 2):
                    if top_rank[c] > best and _no_worse(low, c, y, q):
                        stack[top] = c
                        top += 1
            else:
                for t in range(start[k], end[k]):
                    if rank_at[t] > best and _no_worse(y_at, t, y, q):
                        best = rank_at[t]
        r = rank[q] = best + 1
        k = leaf_of[q]
        rank_at[at[q]] = r
        while True:
            _lower(low, k, y, q)
            if top_rank[k] < r:
                top_rank[k] = r
                top_low[k] = y[q]
            elif top_rank[k] == r:
                _lower(top_low, k, y, q)
            if k == 0:
                break
            k = (k - 1) // 2
    return rank


@numba.njit(cache=True)
def ranks2_sorted(xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Fronts (1 = non-dominated) of two objectives in lexicographic order: a patience sort.

    ``tails[r]`` is the least second value on front ``r + 1`` so far; tails never decrease
    with ``r``, so a point goes one past the last front whose tail it does not beat. Points
    of equal first value are placed together against earlier groups' tails; inside the group
    a larger second value is dominated by the smaller ones before it, equal ones are copies.
    """
    n = len(xs)
    ranks = np.empty(n, np.int64)
    tails = np.empty(n)
    fronts = 0
    i = 0
    while i < n:
        j = i + 1
        while j < n and xs[j] == xs[i]:
            j += 1
        for k in range(i, j):
            a, b = 0, fronts  # first front whose tail is above ys[k]
            while a < b:
                mid = (a + b) // 2
                if tails[mid] <= ys[k]:
                    a = mid + 1
                else:
                    b = mid
            if k > i:
                a = max(a, ranks[k - 1] if ys[k] == ys[k - 1] else ranks[k - 1] + 1)
            ranks[k] = a
        for k in range(i, j):
            r = ranks[k]
            if r == fronts:
                tails[r] = ys[k]
                fronts += 1
            elif ys[k] < tails[r]:
                tails[r] = ys[k]
        i = j
    return ranks + 1


@numba.njit(cache=True)
def sweep_ranks3(yz: np.ndarray, most: int) -> np.ndarray:
    """Fronts (1 = non-dominated) of three objectives, up to ``most``: rows on later fronts
    get ``most + 1``. Rows as in the module notes, ``yz`` their second and third objectives
    (``y`` and ``z``).

    An earlier row dominates a later one exactly when it is no worse in ``y`` and ``z``.
    Every front keeps its staircase: the rows placed on it that no other row placed on it
    beats in ``(y, z)``, by increasing ``y`` and so decreasing ``z``. A front dominates a row
    when the staircase row of greatest ``y`` not above the row's is no worse in ``z``, found
    by bisection; the fronts that dominate a row are the first ones (a dominator's own
    dominators sit on every front before), so a bisection over fronts places it.

    The staircases live in one pool of at most 6 entries per row: each has a slice of it
    with room on both sides, and a row goes in by moving the shorter side of the staircase.
    A side without room is made some by centring the staircase in its slice, or, when more
    than three quarters full, by moving it to the middle of a slice twice as long at the end
    of the pool. Rows entering either end of a staircase cost O(1) amortised; entering the
    middle of a long one costs up to half its length.
    """
    n = len(yz)
    y, z = yz[:, 0], yz[:, 1]
    ranks = np.empty(n, np.int64)
    pool_y = np.empty(6 * n + 8)
    pool_z = np.empty(6 * n + 8)
    room = np.empty(n, np.int64)  # first pool entry of each front's slice
    cap = np.empty(n, np.int64)
    first = np.empty(n, np.int64)  # first pool entry of each front's staircase
    size = np.empty(n, np.int64)
    fronts, free = 0, 0
    for q in range(n):
        a, b = 0, fronts  # first front that does not dominate q
        while a < b:
            f = (a + b) // 2
            i = _last_at_most(pool_y, first[f], first[f] + size[f], y[q])
            if i >= first[f] and pool_z[i] <= z[q]:
                a = f + 1
            else:
                b = f
        ranks[q] = a + 1
        if a == most:
            continue
        if a == fronts:
            room[a], cap[a], first[a], size[a] = free, 2, free + 1, 0
            free += 2
            fronts += 1
        s, m = first[a], size[a]
        # q replaces the run of staircase rows it beats in (y, z), or goes in between.
        i = _last_at_most(pool_y, s, s + m, y[q]) + 1
        if i > s and pool_y[i - 1] == y[q]:
            i -= 1  # a row of equal y is beaten: q has a lower z, or they would be copies
        j = i
        while j < s + m and pool_z[j] >= z[q]:
            j += 1
        if i < j:
            for t in range(j, s + m):
                pool_y[t - (j - i) + 1], pool_z[t - (j - i) + 1] = pool_y[t], pool_z[t]
            m -= j - i - 1
        else:
            left = i - s <= s + m - i  # the shorter side moves
            if (left and s == room[a]) or (not left and s + m == room[a] + cap[a]):
                spare = cap[a] - m
                if spare >= 2 and 4 * spare >= cap[a]:
                    start = room[a] + spare // 2
                else:
                    room[a], cap[a] = free, 2 * cap[a]
                    start = free + (cap[a] - m) // 2
                    free += cap[a]
                tmp_y, tmp_z = pool_y[s : s + m].copy(), pool_z[s : s + m].copy()
                pool_y[start : start + m], pool_z[start : start + m] = tmp_y, tmp_z
                i += start - s
                s = start
            if left:
                for t in range(s, i):
                    pool_y[t - 1], pool_z[t - 1] = pool_y[t], pool_z[t]
                s -= 1
                i -= 1
            else:
                for t in range(s + m, i, -1):
                    pool_y[t], pool_z[t] = pool_y[t - 1], pool_z[t - 1]
            m += 1
        pool_y[i], pool_z[i] = y[q], z[q]
        first[a], size[a] = s, m
    return ranks


@numba.njit(cache=True, inline="always")
def _last_at_most(v: np.ndarray, s: int, e: int, value: float) -> int:
    """Last position in sorted ``v[s:e]`` holding at most ``value``; ``s - 1`` if none."""
    a, b = s, e
    while a < b:
        mid = (a + b) // 2
        if v[mid] <= value:
            a = mid + 1
        else:
            b = mid
    return a - 1
