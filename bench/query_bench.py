"""Load generated published results into a store and time the comparison queries.

Generates ``--results`` results (default 200,000) over ``--papers`` papers, ``--tasks`` tasks
and ``--datasets`` datasets, in the node and edge shapes the importers write
(:func:`ckg.formats.published.build`), plus one implementing artifact with two measured runs for
every tenth paper. Prints the load rate (results written per second, edges included) and the
median latency of ``compare-papers`` and ``paper-vs-reproduced``.

Usage::

    .venv/bin/python bench/query_bench.py                      # embedded store, temporary home
    .venv/bin/python bench/query_bench.py --db bolt://127.0.0.1:7687 --results 50000
    .venv/bin/python bench/query_bench.py --db neo4j           # a Neo4j 5 started as the tests do

Targets on the embedded store (2 vCPU): load at least 20,000 results/s, ``compare-papers`` at
most 200 ms median.
"""

import argparse
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

from ckg.core.records import Edge, Node, Records
from ckg.formats.published import Row, build
from ckg.graph import named as queries
from ckg.store import open_store

METRICS = ["f1", "exact_match", "accuracy", "bleu", "latency"]


def generate(n_results: int, n_papers: int, n_tasks: int, n_datasets: int, seed: int = 7):
    """Records for the results, and for artifacts, runs and measurements of some papers."""
    rng = random.Random(seed)
    datasets_of = {t: [d for d in range(n_datasets) if d % n_tasks == t] for t in range(n_tasks)}
    rows = []
    for i in range(n_results):
        paper = i % n_papers
        task = paper % n_tasks
        dataset = rng.choice(datasets_of[task] or [task])
        rows.append(
            Row(
                "bench.csv",
                f"row {i}",
                rng.choice(METRICS),
                f"{rng.uniform(10, 99):.2f}",
                task=f"Task {task}",
                dataset=f"Dataset {dataset}",
                model=f"Model {i % (n_papers * 2)}",
                paper=f"arXiv:{2000 + paper // 10000:04d}.{paper % 10000:05d}",
                paper_date=f"20{10 + paper % 15}-01-01",
            )
        )
    records = build(rows, "bench-source")
    runs = Records()
    for paper in range(0, n_papers, 10):
        uid = f"arxiv:{2000 + paper // 10000:04d}.{paper % 10000:05d}"
        artifact = f"artifact-{paper}"
        runs.nodes.append(Node("Artifact", artifact, {"uid": artifact, "alias": artifact}))
        runs.edges.append(Edge("IMPLEMENTS", "Artifact", artifact, "Paper", uid))
        for k in range(2):
            run, meas = f"run-{paper}-{k}", f"m-{paper}-{k}"
            runs.nodes.append(Node("Run", run, {"uid": run, "status": "ok"}))
            runs.nodes.append(
                Node("Measurement", meas, {"uid": meas, "metric": "f1", "value": 50.0 + k})
            )
            runs.edges.append(Edge("OF", "Run", run, "Artifact", artifact))
            runs.edges.append(Edge("MEASURED", "Run", run, "Measurement", meas))
    return records, runs


def median_ms(store, name: str, params: list[dict]) -> float:
    query = queries.load(name)
    times = []
    for p in params:
        bound = query.bind(p)
        start = time.perf_counter()
        store.run(query.cypher, bound)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="embedded")
    parser.add_argument("--results", type=int, default=200_000)
    parser.add_argument("--papers", type=int, default=5_000)
    parser.add_argument("--tasks", type=int, default=50)
    parser.add_argument("--datasets", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=25)
    args = parser.parse_args()

    start = time.perf_counter()
    records, runs = generate(args.results, args.papers, args.tasks, args.datasets)
    print(f"generated {args.results} results in {time.perf_counter() - start:.1f} s")
    with tempfile.TemporaryDirectory() as home:
        neo4j = None
        if args.db == "neo4j":
            from scale_bench import start_neo4j  # bench/ is sys.path[0]

            neo4j = start_neo4j(Path(home))
            if neo4j is None:
                return
            args.db = neo4j.uri
        store = open_store(args.db, home=Path(home))
        try:
            store.reset()
            store.ensure_schema()
            start, cpu = time.perf_counter(), time.process_time()
            store.write_records(records)
            load_s, cpu = time.perf_counter() - start, time.process_time() - cpu
            store.write_records(runs)
            print(
                f"{store.engine}: loaded {args.results} results "
                f"({len(records.nodes)} nodes, {len(records.edges)} edges) in {load_s:.1f} s: "
                f"{args.results / load_s:,.0f} results/s (target >= 20,000 embedded); "
                f"this process's CPU {cpu:.1f} s, load {os.getloadavg()[0]:.1f}"
            )
            rng = random.Random(1)
            per_task = args.datasets // args.tasks
            compare = [
                {
                    "task": f"Task {t}",
                    "dataset": f"Dataset {t + args.tasks * rng.randrange(per_task)}",
                    "metric": rng.choice(METRICS),
                }
                for t in (rng.randrange(args.tasks) for _ in range(args.repeat))
            ]
            vs = [
                {"paper": f"arxiv:2000.{p:05d}", "metric": "f1"}
                for p in (10 * rng.randrange(args.papers // 10) for _ in range(args.repeat))
            ]
            median_ms(store, "compare-papers", compare[:3])  # warm caches
            print(
                f"{store.engine}: compare-papers median "
                f"{median_ms(store, 'compare-papers', compare):.1f} ms (target <= 200 ms), "
                f"paper-vs-reproduced median {median_ms(store, 'paper-vs-reproduced', vs):.1f} ms"
            )
            named = queries.load("compare-papers")
            rows = store.run(named.cypher, named.bind(compare[0]))
            print(f"  (a compare-papers answer has {len(rows)} rows)")
            store.reset()
        finally:
            store.close()
            if neo4j:
                neo4j.stop()


if __name__ == "__main__":
    main()
