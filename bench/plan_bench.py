"""Time planning the largest real CM script: the one subgraph query plus the pure planner.

Ingests ``cm4mlops`` from the shared corpora into a store (embedded FalkorDB in a temporary
home unless ``--db`` names a Neo4j URI), picks the script with the most artifacts reachable
by ``DEPENDS_ON`` (unless ``--target`` names one), and plans it ``--repeat`` times. Prints the
median and best of: finding the target, fetching its subgraph (the one query), the pure part
(:func:`ckg.plan.load_graph` plus :func:`ckg.plan.build_plan`), and their sum, against the
target of 50 ms.

Usage::

    .venv/bin/python bench/plan_bench.py
    .venv/bin/python bench/plan_bench.py --db bolt://127.0.0.1:7687 --target app-mlperf-inference
"""

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import networkx as nx

import ckg
from ckg.plan import build_plan, load_graph
from ckg.plan.fetch import fetch_subgraph, find_target

TARGET_MS = 50.0


def largest_script(kg) -> str:
    """The alias of the artifact with the most artifacts reachable by DEPENDS_ON."""
    rows = kg.query(
        "MATCH (a:Artifact)-[:DEPENDS_ON]->(b:Artifact) RETURN a.alias AS a, b.alias AS b"
    )
    graph = nx.DiGraph((r["a"], r["b"]) for r in rows)
    return max(graph, key=lambda n: (len(nx.descendants(graph, n)), n))


def plan_rows(rows, uid):
    """The pure part: the fetched rows to a graph, then to a plan."""
    return build_plan(load_graph(*rows), uid)


def timed(fn, *args):
    start = time.perf_counter()
    result = fn(*args)
    return result, 1000 * (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="embedded", help="'embedded' or a Neo4j URI")
    parser.add_argument("--corpora", default=os.environ.get("CKG_CORPORA", "../shared/corpora"))
    parser.add_argument("--target", help="alias to plan (default: the largest script)")
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as home, ckg.open(args.db, home=home) as kg:
        kg.ingest(Path(args.corpora) / "cm4mlops", name="cm4mlops")
        alias = args.target or largest_script(kg)
        times: dict[str, list[float]] = {"find target": [], "subgraph query": [], "pure plan": []}
        for _ in range(args.repeat):
            (uid, _variations), t_find = timed(find_target, kg.store, alias)
            rows, t_query = timed(fetch_subgraph, kg.store, uid)
            plan, t_pure = timed(plan_rows, rows, uid)
            for name, value in zip(times, (t_find, t_query, t_pure), strict=True):
                times[name].append(value)
        times["total"] = [sum(parts) for parts in zip(*times.values(), strict=True)]

    print(
        f"engine {args.db}; target {alias}: {len(rows[0])} artifacts fetched, "
        f"{len(plan.steps)} steps, {len(plan.skipped)} guarded entries left out"
    )
    for name, values in times.items():
        print(
            f"  {name:15} median {statistics.median(values):7.1f} ms   best {min(values):7.1f} ms"
        )
    median = statistics.median(times["total"])
    print(f"total median / target {TARGET_MS:.0f} ms = {median / TARGET_MS:.2f}")


if __name__ == "__main__":
    main()
