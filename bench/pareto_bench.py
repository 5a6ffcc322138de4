"""Non-dominated sets: ckg against moocore and paretoset on the same inputs, in one process.

Cases (issue 6): 10^6 points in 2-D uniform and anti-correlated, 10^5 points in 3-D
anti-correlated (nearly all on the front), 10^5 points in 5-D uniform. *Anti-correlated*:
uniform on the simplex (Dirichlet(1, ..., 1)) shifted along the diagonal by one N(0, 1e-4)
offset per point, so that the points trade off and few dominate others.

Each time is the best of several repeats; paretoset compiles with numba first (not timed),
and where its O(n^2) scan would take minutes, it is timed on a tenth of the points and scaled
by 100 (marked ``~``). Extra memory is tracemalloc's peak during one ckg call (NumPy reports
its buffers to it). Every library's answer is checked against ckg's (duplicates kept: moocore
``keep_weakly=True``, paretoset ``distinct=False``).

Run: ``.venv/bin/python bench/pareto_bench.py [--quick] [--ranks]``
"""

import argparse
import time
import tracemalloc

import numpy as np

from ckg import pareto

#: paretoset is only run whole when the estimate from a tenth of the points is below this.
PARETOSET_LIMIT_S = 20.0


def uniform(rng, n, d):
    return rng.random((n, d))


def anti(rng, n, d, spread=1e-4):
    return rng.dirichlet(np.ones(d), n) + rng.normal(0.0, spread, (n, 1))


def best_time(fn, x, repeats):
    best, out = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn(x)
        best = min(best, time.perf_counter() - start)
    return best, np.asarray(out)


def peak_mb(fn, x) -> float:
    tracemalloc.start()
    fn(x)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="10x fewer points")
    ap.add_argument("--ranks", action="store_true", help="also time full ranking")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    import moocore
    import paretoset

    scale = 10 if args.quick else 1
    rng = np.random.default_rng(2024)
    cases = [
        ("2-D uniform", uniform(rng, 10**6 // scale, 2)),
        ("2-D anti-correlated", anti(rng, 10**6 // scale, 2)),
        ("3-D anti-correlated", anti(rng, 10**5 // scale, 3)),
        ("5-D uniform", uniform(rng, 10**5 // scale, 5)),
    ]
    paretoset.paretoset(rng.random((200, 3)))  # numba compiles here, untimed
    libs = {
        "ckg": pareto.nondominated,
        "moocore": lambda x: moocore.is_nondominated(x, keep_weakly=True),
        "paretoset": lambda x: paretoset.paretoset(x, distinct=False),
    }
    print(f"{'case':22} {'n':>8} {'front':>7} {'ckg s':>8} {'moocore s':>10} "
          f"{'paretoset s':>12} {'best lib / ckg':>15} {'ckg MB':>7}")  # fmt: skip
    for name, x in cases:
        times, answers = {}, {}
        for lib, fn in libs.items():
            if lib == "paretoset":
                tenth = x[: len(x) // 10]
                t_small, _ = best_time(fn, tenth, 1)
                if t_small * 100 > PARETOSET_LIMIT_S:
                    times[lib] = (t_small * 100, True)
                    continue
            t, out = best_time(fn, x, 1 if lib == "paretoset" else args.repeats)
            times[lib], answers[lib] = (t, False), out
        for lib, out in answers.items():
            if not np.array_equal(out, answers["ckg"]):
                raise SystemExit(f"{name}: {lib} disagrees with ckg")
        best_lib = min(times["moocore"][0], times["paretoset"][0])
        ps_t, estimated = times["paretoset"]
        ps = f"{'~' if estimated else ''}{ps_t:.4f}"
        print(
            f"{name:22} {len(x):>8} {int(answers['ckg'].sum()):>7} {times['ckg'][0]:>8.4f} "
            f"{times['moocore'][0]:>10.4f} {ps:>12} {best_lib / times['ckg'][0]:>14.1f}x "
            f"{peak_mb(pareto.nondominated, x):>7.1f}"
        )
    if args.ranks:
        print("\nfull ranking (all fronts)")
        for name, x in cases[:3]:
            t_ckg, r_ckg = best_time(pareto.pareto_ranks, x, 1)
            t_moo, r_moo = best_time(moocore.pareto_rank, x, 1)
            same = np.array_equal(r_ckg, r_moo + 1)
            print(f"{name:22} fronts {r_ckg.max():>6}  ckg {t_ckg:.3f} s  moocore {t_moo:.3f} s"
                  f"  ratio {t_moo / t_ckg:.2f}  same={same}")  # fmt: skip


if __name__ == "__main__":
    main()
