"""``ckg tune`` against random sampling and the full grid, on the scikit-learn example.

The space (:data:`SPACE`, 61 grid points, conditional parameters) is that of the example
``ckg demo`` runs (``ckg/run/demo_example``), searched for the accuracy/latency front.

1. Every point of the space is run once through the real runner (``kg.run`` over the grid:
   each a recorded run, as ``ckg run --grid`` makes it), which gives the *full grid*'s front
   and hypervolume, and a table of what each point measured.
2. The searches then evaluate points by looking them up in that table, in process, instead
   of running them again: the same objectives for every method (a latency measured twice
   differs by a few percent, which would blur the comparison), and 5 x 2 x 61 trials in
   seconds. Each search is ckg tune's own loop (:class:`ckg.tune.search.Search` and
   :func:`ckg.tune.study.ask_untried`, a point tried already told again rather than run):
   ``tpe`` (ckg tune's default sampler) and ``random`` (Optuna's RandomSampler over the same
   space), with seeds 0 to 4 for both.
3. The hypervolume reached after each evaluation, of accuracy and the logarithm of latency
   (:func:`on_axes`), against one reference point (the worst accuracy and the worst latency
   over the grid), as a percentage of the full grid's, mean of the 5 seeds; the grid
   enumerated in its own order is shown beside them.

Done when ``ckg tune`` reaches 95% of the full grid's hypervolume within a third of the
grid's evaluations, and is ahead of random sampling at every budget past 10.

Run: ``.venv/bin/python bench/tune_bench.py [--plot tune_bench.png] [--table table.json]``
(about 3 minutes, the grid's runs; with ``--table`` of an earlier run, seconds).
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
OBJECTIVES = [("accuracy", "max"), ("latency", "min")]
SEEDS = range(5)
SAMPLERS = ("tpe", "random")


def measure_grid(points: list[dict]) -> tuple[dict, float]:
    """Run every point once in a fresh home; what each measured, by point, and the seconds."""
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
    table = {}
    for run in report.runs:
        ok = run.status == "ok" and all(n in run.metrics for n, _ in OBJECTIVES)
        table[point_key(run.params)] = [run.metrics[n] for n, _ in OBJECTIVES] if ok else None
    return table, seconds


def search(space, table: dict, sampler: str, seed: int) -> list[list[float] | None]:
    """ckg tune's loop over ``table``: what each new point measured, in the order tried."""
    study = Search(space, [d for _, d in OBJECTIVES], sampler, seed)
    seen: dict = {}
    tried = []
    while (asked := ask_untried(study, seen, len(table))) is not None:
        number, point = asked
        values = table[point_key(point)]
        study.tell(number, values)
        seen[point_key(point)] = values
        tried.append(values)
    return tried


def on_axes(values: list[float]) -> list[float]:
    """Accuracy as it is, latency as its logarithm: the example's latencies span three
    orders of magnitude (0.3 us for a tree, 240 us for an SVM), and on a linear axis every
    point under 10 us sits at the same place, so that any one fast and accurate point gives
    97% of the hypervolume and the curves say nothing."""
    return [values[0], float(np.log10(values[1]))]


def curve(tried: list, reference: list[float], n: int) -> np.ndarray:
    """The hypervolume after each of ``n`` evaluations; where a search stopped before (its
    sampler kept proposing points tried already), it stays where it stopped."""
    directions = [d for _, d in OBJECTIVES]
    out, done = [], []
    for values in tried:
        if values is not None:
            done.append(on_axes(values))
        out.append(hypervolume(done, reference, directions) if done else 0.0)
    return np.array(out + out[-1:] * (n - len(out)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plot", default="tune_bench.png", help="The figure's file.")
    parser.add_argument(
        "--table",
        help="JSON of the grid's measurements: read if it exists, "
        "else written after running the grid.",
    )
    args = parser.parse_args()
    space = parse_space(SPACE)
    points = grid(space)
    if args.table and Path(args.table).exists():
        table, seconds = json.loads(Path(args.table).read_text()), None
    else:
        table, seconds = measure_grid(points)
        if args.table:
            Path(args.table).write_text(json.dumps(table))
    n = len(points)
    values = np.array([on_axes(v) for v in table.values() if v is not None])
    reference = [float(values[:, 0].min()), float(values[:, 1].max())]
    full = hypervolume(values, reference, [d for _, d in OBJECTIVES])
    searches = {s: [search(space, table, s, seed) for seed in SEEDS] for s in SAMPLERS}
    curves = {
        s: np.mean([curve(tried, reference, n) for tried in runs], axis=0) / full * 100
        for s, runs in searches.items()
    }
    short = {s: sorted(len(t) for t in runs if len(t) < n) for s, runs in searches.items()}
    curves["grid order"] = curve([table[point_key(p)] for p in points], reference, n) / full * 100
    ran = f" ({seconds:.0f} s to run them)" if seconds else " (from --table)"
    print(
        f"space: {n} grid points{ran}; reference accuracy {reference[0]:.2f} %, latency "
        f"{10 ** reference[1] * 1e6:.2f} us; full grid hypervolume {full:.5g} (% x decades)"
    )
    print(
        f"{'evaluations':>11} | {'ckg tune':>8} | {'random':>8} | {'grid order':>10}   "
        "(% of the full grid's hypervolume, mean of 5 seeds)"
    )
    for budget in sorted({5, 10, 11, 12, 15, 20, n // 3, 22, 25, 28, 30, 40, 50, n}):
        row = [curves[k][budget - 1] for k in ("tpe", "random", "grid order")]
        print(f"{budget:>11} | {row[0]:>8.1f} | {row[1]:>8.1f} | {row[2]:>10.1f}")
    reached = next((i + 1 for i, v in enumerate(curves["tpe"]) if v >= 95), None)
    behind = [b + 1 for b in range(10, n) if curves["tpe"][b] <= curves["random"][b]]
    print(
        f"ckg tune reaches 95% after {reached} evaluations (a third of the grid: {n // 3}): "
        f"{'yes' if reached and reached <= n // 3 else 'NO'}"
    )
    print(
        f"ahead of random at every budget past 10: "
        f"{'yes' if not behind else 'NO, not at ' + str(behind)}"
    )
    print(f"searches that stopped before trying every point: {short}")
    _plot(curves, n, args.plot)
    print(f"plot: {args.plot}")


def _plot(curves: dict, n: int, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4.2))
    x = np.arange(1, n + 1)
    labels = {
        "tpe": "ckg tune (TPE)",
        "random": "random sampling",
        "grid order": "full grid, in its order",
    }
    for key, label in labels.items():
        axes.plot(x, curves[key], label=label, drawstyle="steps-post")
    axes.axhline(95, color="grey", linestyle=":", linewidth=1)
    axes.axvline(n / 3, color="grey", linestyle="--", linewidth=1)
    axes.set_xlabel("evaluations")
    axes.set_ylabel("% of the full grid's hypervolume (mean of 5)")
    axes.set_title("accuracy / latency front of the scikit-learn example")
    axes.set_ylim(50, 101)
    axes.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
