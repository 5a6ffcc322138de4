"""``ckg tune`` against random sampling and the full grid, on the scikit-learn example.

The space (:data:`SPACE`, 61 grid points, conditional parameters) is that of the example
``ckg demo`` runs (``ckg/run/demo_example``), searched for two fronts (:data:`PAIRS`):
accuracy against latency (the issue's), and accuracy against peak memory.

1. Every point of the space is run once through the real runner (``kg.run`` over the grid:
   each a recorded run, as ``ckg run --grid`` makes it), which gives the *full grid*'s fronts
   and hypervolumes, and a table of what each point measured (every metric).
2. The searches then evaluate points by looking them up in that table, in process, instead
   of running them again: the same objectives for every method (a latency measured twice
   differs by a few percent, which would blur the comparison), and thousands of trials in
   a minute. The methods, each with seeds 0 to ``--seeds`` - 1:

   - ``ckg tune``: its own loop (:class:`ckg.tune.search.Search` and
     :func:`ckg.tune.study.ask_untried`: a point tried already is never evaluated again)
     with its default sampler, TPE;
   - random without replacement: the grid's points in a uniformly random order, the
     baseline the criterion names (the strong one on a finite space: no evaluation wasted);
   - random with replacement: uniform draws from the grid's points, a point drawn again
     spending an evaluation;
   - ``--sampler random``: Optuna's RandomSampler through ckg tune's loop (uniform over each
     parameter in turn, so a model with few points is drawn as often as one with many; no
     point evaluated twice).

3. The hypervolume reached after each evaluation, of accuracy and the second objective
   (latency on a log axis, :func:`on_axes`), against one reference point (the worst of each
   over the grid), as a percentage of the full grid's: the mean over seeds 0-4 (the issue's
   5 repetitions) and over all the seeds, with its standard error. The grid enumerated in
   its own order is shown beside them.

Done when ``ckg tune`` reaches 95% of the full grid's hypervolume within a third of the
grid's evaluations, and is ahead of random sampling (without replacement) at every budget
past 10 and short of the whole grid (at 61 every method that never repeats a point has it
all), or level with it at 100% of the grid's hypervolume.

Run: ``.venv/bin/python bench/tune_bench.py [--seeds 20] [--plot tune_bench.png]
[--table table.json]`` (the grid's runs take 3 to 8 minutes; with ``--table`` of an
earlier run, the searches alone, about a minute for 20 seeds).
"""

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

import ckg
from ckg.pareto import hypervolume
from ckg.run.demo import EXAMPLE
from ckg.tune.search import Search
from ckg.tune.space import grid, parse_space, point_key
from ckg.tune.study import ask_untried

SPACE = [
    "model=logreg,svm,knn,tree,forest,bayes",
    "C=0.001,0.01,0.1,1,10,100,1000 if model=logreg,svm",
    "k=int(1,25) if model=knn",
    "depth=int(1,16) if model=tree",
    "trees=5,10,20,40,80 if model=forest",
]
#: The fronts searched for, each a pair of objectives with their directions.
PAIRS = (
    (("accuracy", "max"), ("latency", "min")),
    (("accuracy", "max"), ("memory", "min")),
)
#: Objectives drawn on a log axis: the example's latencies span three orders of magnitude
#: (0.3 us for a tree, 240 us for an SVM), and on a linear axis every point under 10 us sits
#: at the same place, so that any one fast and accurate point gives 97% of the hypervolume
#: and the curves say nothing.
LOG_AXES = ("latency",)
METHODS = {
    "tpe": "ckg tune (TPE)",
    "without": "random, without replacement",
    "with": "random, with replacement",
    "optuna": "--sampler random",
}
#: The issue's repetitions: seeds 0 to 4.
ISSUE_SEEDS = 5
BUDGETS = (5, 10, 11, 12, 15, 20, 22, 25, 28, 30, 40, 50, 61)


def measure_grid(points: list[dict]) -> tuple[dict, float]:
    """Run every point once in a fresh home; what each measured (every metric, None where
    it failed), by point, and the seconds."""
    from ckg.store.server import stop_server

    with tempfile.TemporaryDirectory() as home:
        os.environ["CKG_HOME"] = home
        try:
            with ckg.open("embedded", home=home) as kg:
                kg.ingest(str(EXAMPLE))
                started = time.perf_counter()
                report = kg.run("sklearn-digits", grid=points)
                seconds = time.perf_counter() - started
        finally:
            stop_server(Path(home))  # before the folder goes: it writes there until it stops
    return {point_key(r.params): r.metrics if r.status == "ok" else None for r in report.runs}, (
        seconds
    )


def objectives(table: dict, pair) -> dict:
    """The pair's values of each point, by point; None where a run failed or lacks one."""
    names = [n for n, _ in pair]
    return {
        key: [m[n] for n in names] if m and all(n in m for n in names) else None
        for key, m in table.items()
    }


def search(space, listed: dict, values: dict, pair, sampler: str, seed: int) -> list:
    """ckg tune's loop over ``values``: what each new point measured, in the order tried."""
    study = Search(space, list(pair), sampler, seed)
    seen: dict = {}
    tried = []
    while (asked := ask_untried(study, seen, listed)) is not None:
        number, point = asked
        measured = values[point_key(point)]
        study.tell(number, measured)
        seen[point_key(point)] = measured
        tried.append(measured)
    return tried


def drawn(keys: list[str], values: dict, seed: int, replace: bool) -> list:
    """Uniform random sampling of the grid's points, ``len(keys)`` evaluations."""
    rng = np.random.default_rng(seed)
    order = rng.integers(len(keys), size=len(keys)) if replace else rng.permutation(len(keys))
    return [values[keys[i]] for i in order]


def on_axes(values: list[float], pair) -> list[float]:
    """A point's objectives as the hypervolume takes them (:data:`LOG_AXES` as logarithms)."""
    return [
        float(np.log10(v)) if n in LOG_AXES else v for v, (n, _) in zip(values, pair, strict=True)
    ]


def curve(tried: list, reference: list[float], pair, n: int) -> np.ndarray:
    """The hypervolume after each of ``n`` evaluations; where a search stopped before (its
    sampler kept proposing points tried already), it stays where it stopped."""
    directions = [d for _, d in pair]
    out, done = [], []
    for values in tried:
        if values is not None:
            done.append(on_axes(values, pair))
        out.append(hypervolume(done, reference, directions) if done else 0.0)
    return np.array(out + out[-1:] * (n - len(out)))


def compare(space, points: list[dict], table: dict, pair, seeds: int) -> dict:
    """Every method's curves (% of the full grid's hypervolume), one row per seed, and the
    grid's own order; with the pair's reference point and full hypervolume."""
    values = objectives(table, pair)
    keys = [point_key(p) for p in points]
    listed = dict(zip(keys, points, strict=True))
    measured = np.array([on_axes(v, pair) for v in values.values() if v is not None])
    directions = [d for _, d in pair]
    reference = [
        float(measured[:, i].min() if d == "max" else measured[:, i].max())
        for i, d in enumerate(directions)
    ]
    full = hypervolume(measured, reference, directions)
    n = len(points)

    def runs(seed: int) -> dict:
        return {
            "tpe": search(space, listed, values, pair, "tpe", seed),
            "without": drawn(keys, values, seed, replace=False),
            "with": drawn(keys, values, seed, replace=True),
            "optuna": search(space, listed, values, pair, "random", seed),
        }

    by_seed = [runs(seed) for seed in range(seeds)]
    curves = {
        m: np.array([curve(r[m], reference, pair, n) for r in by_seed]) / full * 100
        for m in METHODS
    }
    order = curve([values[k] for k in keys], reference, pair, n) / full * 100
    short = sorted(len(r["tpe"]) for r in by_seed if len(r["tpe"]) < n)
    return {"curves": curves, "order": order, "reference": reference, "full": full,
            "short": short}  # fmt: skip


def table_rows(result: dict, seeds: int) -> list[str]:
    """The table of the means over the first ``seeds`` seeds, with standard errors where
    there are more than the issue's 5."""
    n = len(result["order"])
    spread = seeds > ISSUE_SEEDS
    head = " | ".join(f"{METHODS[m]:>{26 if spread else 14}}" for m in METHODS)
    rows = [f"{'evaluations':>11} | {head} | {'grid order':>10}"]
    for budget in BUDGETS:
        cells = []
        for m in METHODS:
            at = result["curves"][m][:seeds, budget - 1]
            se = at.std(ddof=1) / np.sqrt(seeds)
            cells.append(f"{at.mean():>17.1f} +- {se:>4.1f}" if spread else f"{at.mean():>14.1f}")
        rows.append(f"{budget:>11} | {' | '.join(cells)} | {result['order'][budget - 1]:>10.1f}")
    tpe, without = (result["curves"][m][:seeds].mean(axis=0) for m in ("tpe", "without"))
    reached = next((i + 1 for i, v in enumerate(tpe) if v >= 95), None)
    # Where both have the full grid's hypervolume neither can be ahead: that counts as level.
    whole = 100 - 1e-9
    behind = [b + 1 for b in range(10, n - 1) if tpe[b] <= without[b] and tpe[b] < whole]
    rows.append(
        f"ckg tune reaches 95% after {reached} evaluations (a third of the grid: {n // 3}): "
        f"{'yes' if reached and reached <= n // 3 else 'NO'}; ahead of random without "
        f"replacement at every budget from 11 to {n - 1} (or both at 100%): "
        f"{'yes' if not behind else 'NO, not at ' + _ranges(behind)}"
    )
    return rows


def _ranges(numbers: list[int]) -> str:
    """``[22, 23, 24, 28]`` as ``22-24, 28``."""
    spans: list[list[int]] = []
    for x in numbers:
        if spans and x == spans[-1][1] + 1:
            spans[-1][1] = x
        else:
            spans.append([x, x])
    return ", ".join(f"{a}-{b}" if a != b else f"{a}" for a, b in spans)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plot", default="tune_bench.png", help="The figure's file.")
    parser.add_argument("--seeds", type=int, default=20, help="Repetitions, at least 5.")
    parser.add_argument(
        "--table",
        help="JSON of the grid's measurements: read if it exists, "
        "else written after running the grid.",
    )
    args = parser.parse_args()
    if args.seeds < ISSUE_SEEDS:
        parser.error(f"--seeds must be at least {ISSUE_SEEDS}, the issue's repetitions")
    space = parse_space(SPACE)
    points = grid(space)
    if args.table and Path(args.table).exists():
        table, seconds = json.loads(Path(args.table).read_text()), None
    else:
        table, seconds = measure_grid(points)
        if args.table:
            Path(args.table).write_text(json.dumps(table))
    ran = f" ({seconds:.0f} s to run them)" if seconds else " (from --table)"
    print(f"space: {len(points)} grid points{ran}")
    results = {}
    for pair in PAIRS:
        result = results[pair] = compare(space, points, table, pair, args.seeds)
        (first, _), (second, _) = pair
        reference = 10 ** result["reference"][1] if second in LOG_AXES else result["reference"][1]
        print(
            f"\n{first} / {second}: reference {result['reference'][0]:.2f}, {reference:.4g}; "
            f"full grid hypervolume {result['full']:.5g}; % of it, "
            f"mean of seeds 0-{ISSUE_SEEDS - 1}:"
        )
        print("\n".join(table_rows(result, ISSUE_SEEDS)))
        print(f"\nmean of seeds 0-{args.seeds - 1} +- its standard error:")
        print("\n".join(table_rows(result, args.seeds)))
        print(f"ckg tune searches that stopped before trying every point: {result['short']}")
    _plot(results, args.seeds, args.plot)
    print(f"\nplot: {args.plot}")


def _plot(results: dict, seeds: int, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, panes = plt.subplots(1, len(results), figsize=(12, 4.2), sharey=True)
    for axes, (pair, result) in zip(panes, results.items(), strict=True):
        n = len(result["order"])
        x = np.arange(1, n + 1)
        for method, label in METHODS.items():
            rows = result["curves"][method]
            mean, se = rows.mean(axis=0), rows.std(axis=0, ddof=1) / np.sqrt(seeds)
            axes.plot(x, mean, label=label, drawstyle="steps-post")
            axes.fill_between(x, mean - se, mean + se, step="post", alpha=0.2)
        axes.plot(x, result["order"], label="full grid, in its order", drawstyle="steps-post")
        axes.axhline(95, color="grey", linestyle=":", linewidth=1)
        axes.axvline(n / 3, color="grey", linestyle="--", linewidth=1)
        axes.set_xlabel("evaluations")
        (first, _), (second, _) = pair
        axes.set_title(f"{first} / {second}" + (" (log)" if second in LOG_AXES else ""))
        axes.set_ylim(50, 101)
    panes[0].set_ylabel(f"% of the full grid's hypervolume (mean of {seeds}, ± s.e.)")
    panes[0].legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
