"""Store throughput on both engines: nodes/s and relationships/s for 100,000 of each written
in batches, and the median latency of a point look-up by key, in this process.

    .venv/bin/python bench/store_bench.py                 # both engines, default batch size
    .venv/bin/python bench/store_bench.py --sweep         # several batch sizes (tunes BATCH_SIZE)
    .venv/bin/python bench/store_bench.py --neo4j-uri bolt://127.0.0.1:7687   # a running Neo4j

Without ``--neo4j-uri`` a Neo4j 5.26 is started from the test launcher (Java and Maven needed).
Targets for the embedded store: >= 50,000 nodes/s, >= 40,000 relationships/s, look-ups <= 1 ms.
"""

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ckg.store import BATCH_SIZE, open_store  # noqa: E402
from ckg.store.server import stop_server  # noqa: E402

COUNT = 100_000


def best_of(store, count: int, batch_size: int, repeat: int) -> dict:
    """The best of ``repeat`` passes of :func:`measure`: this machine's cores are shared."""
    passes = [measure(store, count, batch_size) for _ in range(repeat)]
    return {
        "nodes_per_s": max(p["nodes_per_s"] for p in passes),
        "rels_per_s": max(p["rels_per_s"] for p in passes),
        "lookup_ms": min(p["lookup_ms"] for p in passes),
    }


def measure(store, count: int, batch_size: int) -> dict:
    """Write ``count`` nodes then ``count`` relationships, then time 1,000 look-ups."""
    store.reset()
    store.ensure_schema()
    nodes = (
        {"key": f"a{i}", "props": {"alias": f"alias-{i}", "tags": ["get", f"t{i % 50}"]}}
        for i in range(count)
    )
    start = time.perf_counter()
    store.upsert_nodes("Artifact", nodes, batch_size=batch_size)
    node_s = time.perf_counter() - start
    edges = (
        {"src": f"a{i}", "dst": f"a{(i * 7919 + 1) % count}", "props": {"kind": "deps"}}
        for i in range(count)
    )
    start = time.perf_counter()
    store.upsert_edges("DEPENDS_ON", "Artifact", "Artifact", edges, batch_size=batch_size)
    edge_s = time.perf_counter() - start
    rng = random.Random(1)
    lookups = []
    for _ in range(1000):
        key = f"a{rng.randrange(count)}"
        start = time.perf_counter()
        store.get_node("Artifact", key)
        lookups.append(time.perf_counter() - start)
    return {
        "nodes_per_s": count / node_s,
        "rels_per_s": count / edge_s,
        "lookup_ms": statistics.median(lookups) * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=COUNT)
    parser.add_argument("--sweep", action="store_true", help="try several batch sizes")
    parser.add_argument("--repeat", type=int, default=3, help="passes per case; best is shown")
    parser.add_argument("--neo4j-uri", help="use this Neo4j instead of starting one")
    parser.add_argument("--skip-neo4j", action="store_true")
    args = parser.parse_args()
    sizes = [1000, 2000, 5000, 10000, 20000] if args.sweep else [BATCH_SIZE]

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        with open_store("embedded", home=home) as store:
            for size in sizes:
                results.append(
                    ("embedded (FalkorDB)", size, best_of(store, args.count, size, args.repeat))
                )
        stop_server(home)

        if not args.skip_neo4j:
            server = None
            uri = args.neo4j_uri
            if uri is None:
                from tests.fixtures_neo4j import (
                    TEST_PASSWORD,
                    TEST_USER,
                    Neo4jServer,
                    launcher_classpath,
                )

                server = Neo4jServer(launcher_classpath(), Path(tmp))
                uri = server.start()
                os.environ["NEO4J_USERNAME"], os.environ["NEO4J_PASSWORD"] = (
                    TEST_USER,
                    TEST_PASSWORD,
                )
            try:
                with open_store(uri) as store:
                    for size in sizes:
                        results.append(
                            ("neo4j 5", size, best_of(store, args.count, size, args.repeat))
                        )
            finally:
                if server:
                    server.stop()

    print(
        f"{args.count:,} nodes and {args.count:,} relationships per engine and batch size, "
        f"best of {args.repeat} passes; load average {os.getloadavg()[0]:.2f}"
    )
    print(f"{'engine':22} {'batch':>6} {'nodes/s':>10} {'rels/s':>10} {'lookup ms':>10}")
    for engine, size, r in results:
        print(
            f"{engine:22} {size:>6} {r['nodes_per_s']:>10,.0f} {r['rels_per_s']:>10,.0f} "
            f"{r['lookup_ms']:>10.3f}"
        )
    embedded = [r for e, s, r in results if e.startswith("embedded") and s == BATCH_SIZE]
    neo4j = [r for e, s, r in results if e.startswith("neo4j") and s == BATCH_SIZE]
    if embedded and neo4j:
        e, n = embedded[0], neo4j[0]
        print(
            f"embedded / neo4j: nodes x{e['nodes_per_s'] / n['nodes_per_s']:.2f}, "
            f"rels x{e['rels_per_s'] / n['rels_per_s']:.2f}, "
            f"lookup x{n['lookup_ms'] / e['lookup_ms']:.2f} faster"
        )


if __name__ == "__main__":
    main()
