"""Concurrent ingests into one store, twenty times: do they leave the sequential graph?

    .venv/bin/python bench/ingest_race_bench.py                  # embedded, then a Neo4j
    .venv/bin/python bench/ingest_race_bench.py --skip-neo4j --runs 20
    .venv/bin/python bench/ingest_race_bench.py --neo4j-uri bolt://127.0.0.1:7687
    .venv/bin/python bench/ingest_race_bench.py --without-lock   # what ingest did before

Two folders of 300 MLC scripts whose dependencies cross (``tests/test_security_concurrency``
writes them) are ingested one after the other, in both orders (which must agree), for the
reference graph, then ``--runs`` times by two processes at once, each from an empty graph
and no manifests. A run passes
when its ``DEPENDS_ON`` edges (with ``entry`` and ``matches``), ``UnresolvedDependency``
uids, ``NEEDS`` pairs, artifacts and ``Source.complete`` flags equal the reference's.
Printed per engine: runs that passed, runs in which one process waited for the other's lock
(its stderr says so), and the median seconds of one sequential ingest of both folders and
of the two concurrent ones (the ``seconds`` of the slower summary, waiting included).
Without Neo4j URI, a Neo4j 5 is started from the test launcher (Java and Maven needed).
``--without-lock`` replaces the lock by nothing in the ingesting processes, to show the bug.
"""

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ckg.store import open_store  # noqa: E402
from ckg.store.server import stop_server  # noqa: E402
from tests.test_security_concurrency import (  # noqa: E402
    INGEST_AT,
    crossing_folders,
    graph_state,
    ingest_processes,
)

#: INGEST_AT with the lock replaced by a no-op: ingest as it was before the lock.
WITHOUT_LOCK = INGEST_AT.replace(
    "import ckg\n",
    "import ckg, contextlib, ckg.ingest.core, ckg.ingest.write as w\n"
    "ckg.ingest.core.write_lock = lambda *a, **k: contextlib.nullcontext(w.Held())\n",
)


class Home:
    """A store and the environment that sends ``ckg`` processes to it."""

    def __init__(self, home: Path, uri: str):
        self.home, self.uri = home, uri
        home.mkdir(parents=True, exist_ok=True)
        self.env = {**os.environ, "CKG_HOME": str(home), "CKG_DB": uri}
        self.env.pop("NEO4J_URI", None)

    def state(self) -> dict:
        with open_store(self.uri, home=self.home) as store:
            return graph_state(store)

    def empty(self) -> None:
        with open_store(self.uri, home=self.home) as store:
            store.reset()
            store.ensure_schema()
        for manifest in (self.home / "manifests").rglob("*.json"):
            manifest.unlink()


def bench(home: Home, folders, runs: int, script: str) -> dict:
    sequential, orders = [], []
    for order in (folders, folders[::-1], folders):
        home.empty()
        sequential.append(sum(ingest_processes([f], home.env, 0)[0][0]["seconds"] for f in order))
        orders.append(home.state())
    expected = orders[0]
    assert orders[1] == expected, "the two sequential orders give different graphs"
    passed, waited, concurrent, diffs = 0, 0, [], []
    for run in range(runs):
        home.empty()
        done = ingest_processes(list(folders), home.env, script=script)
        got = home.state()
        same = got == expected
        passed += same
        waited += any("waiting for another ingest" in err for _, err in done)
        concurrent.append(max(s["seconds"] for s, _ in done))
        if not same:
            diffs.append({k: len(expected[k] ^ got[k]) for k in expected if expected[k] != got[k]})
        print(f"  run {run + 1:2}: {'same' if same else 'DIFFERENT ' + str(diffs[-1])}", flush=True)
    return {
        "runs": runs,
        "passed": passed,
        "waited": waited,
        "sequential s": statistics.median(sequential),
        "concurrent s": statistics.median(concurrent),
        "reference": {k: len(v) for k, v in expected.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--count", type=int, default=300, help="scripts per folder")
    parser.add_argument("--neo4j-uri", help="use this Neo4j instead of starting one")
    parser.add_argument("--skip-neo4j", action="store_true")
    parser.add_argument("--without-lock", action="store_true", help="ingest without the lock")
    args = parser.parse_args()
    script = WITHOUT_LOCK if args.without_lock else INGEST_AT
    results = {}
    with tempfile.TemporaryDirectory(prefix="ckg-race-bench-") as tmp:
        folders = crossing_folders(Path(tmp) / "folders", args.count)
        print(f"embedded, {args.runs} runs of two processes at once", flush=True)
        home = Home(Path(tmp) / "embedded", "embedded")
        try:
            results["embedded"] = bench(home, folders, args.runs, script)
        finally:
            stop_server(home.home)
        if not args.skip_neo4j:
            server, uri = None, args.neo4j_uri
            if uri is None:
                from tests.fixtures_neo4j import (
                    TEST_PASSWORD,
                    TEST_USER,
                    Neo4jServer,
                    launcher_classpath,
                )

                (Path(tmp) / "neo4j-data").mkdir()
                server = Neo4jServer(launcher_classpath(), Path(tmp) / "neo4j-data")
                uri = server.start()
                os.environ["NEO4J_USERNAME"], os.environ["NEO4J_PASSWORD"] = (
                    TEST_USER,
                    TEST_PASSWORD,
                )
            try:
                print(f"neo4j, {args.runs} runs of two processes at once", flush=True)
                results["neo4j"] = bench(Home(Path(tmp) / "neo4j", uri), folders, args.runs, script)
            finally:
                if server:
                    server.stop()
    print(f"\n{args.count} scripts per folder; load average {os.getloadavg()[0]:.2f}")
    for engine, r in results.items():
        print(
            f"{engine:9} {r['passed']:2} of {r['runs']} runs give the sequential graph; "
            f"{r['waited']} waited for the lock; one sequential ingest of both "
            f"{r['sequential s']:.2f} s, concurrent {r['concurrent s']:.2f} s (medians)"
        )
        print(f"          reference graph: {r['reference']}")


if __name__ == "__main__":
    main()
