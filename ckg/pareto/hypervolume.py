"""Exact hypervolume of a front against a reference point, for any number of objectives."""

import numpy as np

from ckg.pareto.sets import _nd

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
