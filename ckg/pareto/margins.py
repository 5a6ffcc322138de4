"""Fronts with per-objective margins (CK's ``math.frontier``), as :mod:`ckg.pareto` defines them."""

import numpy as np

from ckg.pareto.sets import _BLOCK, _dominated_by, _scaled_sum

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
