"""Non-dominated sets and full rankings: ckg against moocore and paretoset, in one process.

Every row gives the three libraries the same points: 2 to 8 objectives, 10^4 and 10^5 points
(and 10^6 for two), three kinds of data:

- *uniform*: uniform in the unit cube; the front is a small part of the points.
- *anti* (anti-correlated): uniform on the simplex (Dirichlet(1, ..., 1)) shifted along the
  diagonal by one N(0, 1e-4) offset per point, so that the points trade off and few
  dominate others; from four objectives on, all of them are on the front.
- *front* (all on the front): uniform directions on the positive part of the unit sphere,
  where no point dominates another.

``set`` rows time the non-dominated set (moocore ``is_nondominated(keep_weakly=True)``,
paretoset ``paretoset(distinct=False)``), ``ranks`` rows every front (moocore
``pareto_rank``, paretoset ``paretorank``). Each time is the best of ``--repeats``; paretoset
runs once, and where its O(n^2)-per-front scan would take long it is timed on 10^4 points
and scaled by the square of the size ratio (marked ``~``). The last column is the faster
library's time over ckg's: above 1, ckg is faster. Every answer is checked against ckg's.

The first ckg call of a process imports numba and loads the compiled kernels (compiles
them, the first time in an environment); that one-time cost is printed first, not timed in
the rows.

Run: ``.venv/bin/python bench/pareto_bench.py [--quick] [--repeats 5]`` (about 5 minutes;
``--quick`` under one).
"""

import argparse
import os
import time

import numpy as np

from ckg import pareto

#: paretoset is run whole only up to this many points; beyond, on this many and scaled.
PARETOSET_MAX_N = 10**4


def uniform(rng, n, d):
    return rng.random((n, d))


def anti(rng, n, d, spread=1e-4):
    return rng.dirichlet(np.ones(d), n) + rng.normal(0.0, spread, (n, 1))


def front(rng, n, d):
    g = np.abs(rng.normal(size=(n, d)))
    return g / np.linalg.norm(g, axis=1, keepdims=True)


KINDS = {"uniform": uniform, "anti": anti, "front": front}


def cases(quick: bool):
    """(objectives, kind, points) of every row; ``quick``: only the rows of 10^4 points."""
    for d in range(2, 9):
        sizes = (10**4, 10**5, 10**6) if d == 2 else (10**4, 10**5)
        for n in sizes[:1] if quick else sizes:
            for kind in KINDS:
                yield d, kind, n


def best_time(fn, x, repeats):
    best, out = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn(x)
        best = min(best, time.perf_counter() - start)
    return best, np.asarray(out)


def paretoset_time(fn, x, limit_n):
    """paretoset's time on ``x``, or on its first ``limit_n`` rows scaled (estimated)."""
    if len(x) <= limit_n:
        t, out = best_time(fn, x, 1)
        return t, False, out
    t, _ = best_time(fn, x[:limit_n], 1)
    return t * (len(x) / limit_n) ** 2, True, None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="only the 10^4-point rows, best of 2")
    ap.add_argument("--repeats", type=int, default=None, help="best of this many (5; quick 2)")
    args = ap.parse_args()
    repeats = args.repeats or (2 if args.quick else 5)
    import moocore
    import paretoset

    rng = np.random.default_rng(2024)
    start = time.perf_counter()
    pareto.nondominated(front(rng, 4096, 4))
    pareto.pareto_ranks(uniform(rng, 4096, 2))
    pareto.pareto_ranks(uniform(rng, 4096, 4))
    first = time.perf_counter() - start
    paretoset.paretoset(rng.random((200, 3)))  # numba compiles here, untimed
    paretoset.paretorank(rng.random((200, 3)))
    print(f"load average {os.getloadavg()[0]:.2f}; best of {repeats}; ckg's first calls "
          f"(numba import and kernel load) {first:.2f} s")  # fmt: skip
    jobs = {
        "set": (
            pareto.nondominated,
            lambda x: moocore.is_nondominated(x, keep_weakly=True),
            lambda x: paretoset.paretoset(x, distinct=False),
        ),
        "ranks": (
            pareto.pareto_ranks,
            lambda x: moocore.pareto_rank(x) + 1,  # moocore counts fronts from 0
            lambda x: paretoset.paretorank(x, distinct=False),
        ),
    }
    print(f"{'job':6} {'d':>2} {'data':8} {'n':>8} {'front 1':>8} {'fronts':>6} {'ckg s':>8} "
          f"{'moocore s':>10} {'paretoset s':>12} {'faster lib / ckg':>17}")  # fmt: skip
    slower = []
    for job, (ckg_fn, moo_fn, ps_fn) in jobs.items():
        for d, kind, n in cases(args.quick):
            x = KINDS[kind](np.random.default_rng([d, n]), n, d)
            t_ckg, ours = best_time(ckg_fn, x, repeats)
            t_moo, theirs = best_time(moo_fn, x, repeats)
            t_ps, estimated, ps_out = paretoset_time(ps_fn, x, PARETOSET_MAX_N)
            for lib, out in (("moocore", theirs), ("paretoset", ps_out)):
                if out is not None and not np.array_equal(out, ours):
                    raise SystemExit(f"{job} {d}-D {kind} n={n}: {lib} disagrees with ckg")
            ratio = min(t_moo, t_ps) / t_ckg
            if ratio < 1:
                slower.append(f"{job} {d}-D {kind} n={n}")
            on_front = int((ours == 1).sum()) if job == "ranks" else int(ours.sum())
            fronts = str(int(ours.max())) if job == "ranks" else "-"
            ps = f"{'~' if estimated else ''}{t_ps:.4f}"
            print(f"{job:6} {d:>2} {kind:8} {n:>8} {on_front:>8} {fronts:>6} {t_ckg:>8.4f} "
                  f"{t_moo:>10.4f} {ps:>12} {ratio:>16.2f}x", flush=True)  # fmt: skip
    print(f"load average {os.getloadavg()[0]:.2f}; ckg slower than the faster library in "
          f"{len(slower)} rows" + (": " + "; ".join(slower) if slower else ""))  # fmt: skip


if __name__ == "__main__":
    main()
