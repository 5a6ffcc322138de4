"""How find, plan, a cached run, a front, a comparison and the web pages grow with the graph.

The graph holds the corpora ``--sizes`` times over (default 1, 10 and 100), on each engine
(embedded, and a Neo4j 5 from the tests' launcher, :mod:`tests.fixtures_neo4j`, run as a
server runs: ``SERVER_JAVA_OPTS``), each in a home of its own. Replica 0 is ingested for real
through the public API: CM's and MLCFlow's script repositories (``cm4mlops``,
``mlperf-automations``; hard-linked copies in a temporary folder, so that nothing writes to
the corpora) and the published results (``pwc``, ``mlperf``); ``ckg demo`` adds the runs and
experiment the web pages show. Replicas 1 to N-1 are replica 0's export
(:meth:`ckg.api.KnowledgeGraph.export_graph`, the documented format of ``ckg db export``)
with each script source, artifact, variation, paper and result keyed
``-r<k>`` (source locations too, so each replica is a source of its own and its Papers with
Code rows cite papers of their own), tasks, datasets, models, metrics and platforms shared,
written to a file and imported (:meth:`~ckg.api.KnowledgeGraph.import_graph`): ingesting 200
repositories one by one measures ingest, which ``bench/ingest_bench.py`` does.

At each size and on each engine, whole ``ckg`` processes as a user runs them (bytecode from a
private ``PYTHONPYCACHEPREFIX``; median of ``--repeat``): ``ckg find --tags get,python3``;
``ckg plan app-mlperf-inference`` (the largest target), the first plan after the graph grew
and one remembered; ``ckg run get,python3`` cached; ``ckg pareto throughput,power --from
papers``, the front of all published results; ``ckg compare`` of SQuAD1.1 F1 across papers.
Then ``ckg serve`` over real HTTP: every page of ``bench/serve_bench.py``, the best of
``--repeat`` round trips each, and the slowest page named. Each figure is printed with its
growth against the first size.

Bounds at 100x (issue 25): find and a cached run under 0.3 s, the front under 2 s, every page
under 500 ms; a figure over its bound is marked ``!``.

Usage::

    .venv/bin/python bench/scale_bench.py                       # 1x, 10x, 100x, both engines
    .venv/bin/python bench/scale_bench.py --sizes 1,10 --engines embedded --repeat 5
"""

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # tests.fixtures_neo4j starts Neo4j as the tests do

from serve_bench import pages, timed  # noqa: E402  (bench/ is sys.path[0])

CKG = str(Path(sys.executable).with_name("ckg"))
SCRIPTS = ("cm4mlops", "mlperf-automations")
RESULTS = ("pwc", "mlperf")
TARGET = "app-mlperf-inference"
#: name, ckg's arguments, bound in seconds at 100x (None: no bound)
COMMANDS = [
    ("find", ["find", "--tags", "get,python3"], 0.3),
    ("plan first", ["plan", TARGET], None),
    ("plan remembered", ["plan", TARGET], None),
    ("cached run", ["run", "get,python3"], 0.3),
    ("front", ["pareto", "throughput,power", "--from", "papers"], 2.0),
    ("compare", ["compare", "--task", "Question Answering", "--dataset", "SQuAD1.1",
                 "--metric", "F1"], None),
]  # fmt: skip
PAGE_BOUND_S = 0.5


def ingest_corpora(kg, corpora: Path, into: Path) -> None:
    """Replica 0: the script repositories ingested from hard-linked copies (their own
    locations, so that the corpora are never written to) and the published results."""
    for name in SCRIPTS:
        copy = into / name
        if not copy.exists():
            shutil.copytree(corpora / name, copy, symlinks=True, copy_function=os.link)
        kg.ingest(str(copy))
    kg.import_results([str(corpora / name) for name in RESULTS])


#: Labels each replica has nodes of its own of; the others (tasks, datasets, models,
#: metrics, platforms, tags) replicas share, as papers on one benchmark do.
REPLICATED = {"Source", "Artifact", "Variation", "Paper", "Result", "UnresolvedDependency"}


def write_replicas(export: Path, out: Path, start: int, stop: int) -> None:
    """A graph file (the format of ``ckg db export``) of replicas ``start`` to ``stop`` - 1
    of the graph in ``export``: each replicated node's key and every property equal to such
    a key get the suffix ``-r<k>``, each source's location too. Shared nodes are written once.
    """
    lines = export.read_text().splitlines()
    head, items = json.loads(lines[0]), [json.loads(line) for line in lines[1:-1]]
    keys = {i["key"] for i in items if i.get("label") in REPLICATED}

    def marked(value):  # NUL, escaped by json.dumps, then replaced by each replica's suffix
        return value + "\0" if isinstance(value, str) and value in keys else value

    shared, templates = [], []
    for item in items:
        if item.get("label") in REPLICATED:
            props = {name: marked(v) for name, v in item["props"].items()}
            if item["label"] == "Source":
                props["location"] += "\0"
            templates.append(json.dumps({**item, "key": item["key"] + "\0", "props": props}))
        elif "label" in item:
            shared.append(json.dumps(item))
        else:
            templates.append(json.dumps({**item, "src_key": marked(item["src_key"]),
                                         "dst_key": marked(item["dst_key"])}))  # fmt: skip
    block = "\n".join(templates) + "\n"
    copies = stop - start
    nodes = len(shared) + copies * (head["nodes"] - len(shared))
    relationships = copies * head["relationships"]
    with out.open("w") as file:
        file.write(json.dumps({**head, "nodes": nodes, "relationships": relationships}) + "\n")
        file.write("".join(line + "\n" for line in shared))
        for k in range(start, stop):
            file.write(block.replace("\\u0000", f"-r{k}"))
        file.write(json.dumps({"end": True, "nodes": nodes, "relationships": relationships})
                   + "\n")  # fmt: skip


def ckg(env: dict, *args: str) -> subprocess.CompletedProcess:
    done = subprocess.run([CKG, *args], env=env, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL)  # fmt: skip
    if done.returncode:
        raise SystemExit(f"ckg {' '.join(args)} failed: {done.stderr.strip()[-500:]}")
    return done


def wall(env: dict, args: list[str]) -> float:
    started = time.perf_counter()
    ckg(env, *args)
    return time.perf_counter() - started


def measure_commands(env: dict, repeat: int) -> dict[str, float]:
    """Median seconds of each command of COMMANDS as a whole process."""
    out = {}
    for name, args, _bound in COMMANDS:
        count = 1 if name == "plan first" else repeat
        out[name] = statistics.median(wall(env, args) for _ in range(count))
    return out


def measure_pages(env: dict, home: Path, repeat: int) -> tuple[str, float]:
    """The slowest page of ``ckg serve`` (best of ``repeat`` round trips) and its seconds."""
    import ckg as api

    with api.open(env["CKG_DB"], home=home) as kg:
        runs = kg.runs(limit=2)
    info = {"runs": [r["run"] for r in runs], "platform": runs[0]["platform"]}
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = home / "serve-bench.log"
    server = subprocess.Popen([CKG, "serve", "--port", str(port)], env=env,
                              stdout=subprocess.PIPE, stderr=log.open("w"),
                              text=True)  # fmt: skip
    try:
        line = server.stdout.readline()
        found = re.search(r"(http://[^/]+)/\?token=(\S+)", line)
        assert found, f"ckg serve printed {line!r}"
        base, token = found.groups()
        slowest = ("", 0.0)
        for name, path in pages(info).items():
            try:
                timed(base + path, token)  # the first read of a page imports what it needs
                best = min(timed(base + path, token)[1] for _ in range(repeat)) / 1000
            except urllib.error.HTTPError as error:
                name, best = f"{name} (HTTP {error.code})", float("inf")
                print(f"{path}: HTTP {error.code}; ckg serve's log ends:\n"
                      + "\n".join(log.read_text().splitlines()[-12:]), flush=True)  # fmt: skip
            slowest = max(slowest, (name, best), key=lambda item: item[1])
        return slowest
    finally:
        server.terminate()
        server.wait(timeout=30)


def settle(home: Path, limit_s: float = 120.0) -> float:
    """Wait while the embedded server of ``home`` rewrites its append-only file in a child
    process (Redis does so as the file doubles: during and right after an import of
    replicas, 10 s of a CPU at 100x), at most ``limit_s``; the seconds waited. Measured
    meanwhile, every figure shared the 2 CPUs with it."""
    started = time.perf_counter()
    pid = (home / "falkordb.pid").read_text().strip()
    children = Path(f"/proc/{pid}/task/{pid}/children")
    while children.exists() and children.read_text().strip():
        if time.perf_counter() - started > limit_s:
            break
        time.sleep(0.5)
    return time.perf_counter() - started


#: Neo4j as a server runs it (``CKG_NEO4J_JAVA_OPTS`` replaces it): the JVM's default JIT
#: (C1, then C2) and G1, with a heap and page cache for 800,000 nodes. The tests' launcher
#: trades peak speed for start-up (C1 only, 64 MiB of page cache), which suits a test session
#: and not minutes of imports: 1.5x slower to import replicas once the JIT has warmed up.
SERVER_JAVA_OPTS = "-XX:+UseG1GC -Xms1g -Xmx4g -Dckg.pagecache=2147483648"


def start_neo4j(tmp: Path):
    """A Neo4j 5 from the tests' launcher (:mod:`tests.fixtures_neo4j`) with SERVER_JAVA_OPTS,
    its credentials in the environment; None, saying why, without Java or Maven."""
    from tests import fixtures_neo4j as neo

    missing = neo.missing_tools()
    if missing:
        print(f"neo4j: skipped ({' and '.join(missing)} missing)")
        return None
    os.environ.setdefault("CKG_NEO4J_JAVA_OPTS", SERVER_JAVA_OPTS)
    server = neo.Neo4jServer(neo.launcher_classpath(), tmp)
    server.start()
    os.environ.update(NEO4J_USERNAME=neo.TEST_USER, NEO4J_PASSWORD=neo.TEST_PASSWORD)
    return server


def cpu_seconds(pid: int) -> float:
    """The user and system CPU seconds process ``pid`` has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def row(size: int, engine: str, figures: dict, first: dict, slowest: tuple) -> str:
    """One line of the table: each figure, its growth against the first size, ``!`` past
    its bound at 100x and more."""
    cells = []
    bounds = {name: bound for name, _args, bound in COMMANDS}
    for name, value in figures.items():
        growth = value / first[name] if first.get(name) else 1.0
        over = size >= 100 and bounds.get(name) is not None and value > bounds[name]
        cells.append(f"{value:7.3f} x{growth:<5.1f}{'!' if over else ' '}")
    page, seconds = slowest
    growth = seconds / first["page"] if first.get("page") else 1.0
    over = size >= 100 and seconds > PAGE_BOUND_S
    cells.append(f"{seconds:7.3f} x{growth:<5.1f}{'!' if over else ' '} {page}")
    return f"{size:>4}x {engine:9} " + " ".join(cells)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpora", type=Path,
                        default=Path(os.environ.get("CKG_CORPORA") or REPO.parent / "shared"
                                     / "corpora"))  # fmt: skip
    parser.add_argument("--sizes", default="1,10,100", help="replica counts, ascending")
    parser.add_argument("--engines", default="embedded,neo4j")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    engines = args.engines.split(",")
    import ckg as api

    began = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        homes = {e: tmp / f"home-{e}" for e in engines}
        replicas = tmp / "replicas"
        replicas.mkdir()
        base_env = {k: v for k, v in os.environ.items()
                    if k not in ("PYTHONDONTWRITEBYTECODE", "NEO4J_URI")}  # fmt: skip
        base_env["PYTHONPYCACHEPREFIX"] = str(tmp / "pycache")
        neo4j = start_neo4j(tmp) if "neo4j" in engines else None
        dbs = {"embedded": "embedded"}
        if neo4j:
            dbs["neo4j"] = neo4j.uri
            base_env.update(NEO4J_USERNAME=os.environ["NEO4J_USERNAME"],
                            NEO4J_PASSWORD=os.environ["NEO4J_PASSWORD"])  # fmt: skip
        engines = [e for e in engines if e in dbs]
        envs = {e: {**base_env, "CKG_HOME": str(homes[e]), "CKG_DB": dbs[e]} for e in engines}
        firsts: dict[str, dict] = {}
        lines = []
        export = tmp / "replica-0.jsonl"
        try:
            for engine in engines:  # replica 0 for real, then the demo's runs and experiment
                started = time.perf_counter()
                os.environ.update(CKG_HOME=str(homes[engine]), CKG_DB=dbs[engine])
                with api.open(dbs[engine], home=homes[engine]) as kg:
                    ingest_corpora(kg, args.corpora, replicas)
                    if not export.exists():
                        kg.export_graph(export)
                ckg(envs[engine], "demo")
                # The cache entry the cached runs hit, made before the replicas, whose script
                # folders do not exist: a run chooses the script with a cache entry first.
                ckg(envs[engine], "run", "get,python3")
                print(f"{engine}: corpora ingested, demo run: "
                      f"{time.perf_counter() - started:.1f} s", flush=True)  # fmt: skip
            done = 1
            for size in sizes:
                if size > done:
                    started = time.perf_counter()
                    grown = tmp / f"replicas-{done}-{size}.jsonl"
                    write_replicas(export, grown, done, size)
                    took = [f"replicas written {time.perf_counter() - started:.1f} s"]
                    for engine in engines:
                        # Where an import's time goes: the store's server or this process.
                        server = (neo4j.process.pid if engine == "neo4j" else
                                  int((homes[engine] / "falkordb.pid").read_text()))  # fmt: skip
                        cpu = (cpu_seconds(server), time.process_time())
                        started = time.perf_counter()
                        with api.open(dbs[engine], home=homes[engine]) as kg:
                            kg.import_graph(grown)
                            nodes = sum(kg.status()["nodes"].values())
                        took.append(f"{engine} import {time.perf_counter() - started:.1f} s "
                                    f"(CPU: server {cpu_seconds(server) - cpu[0]:.1f} s, "
                                    f"ckg {time.process_time() - cpu[1]:.1f} s)")  # fmt: skip
                        if engine == "embedded":
                            took.append(f"its rewrite waited {settle(homes[engine]):.1f} s")
                    grown.unlink()
                    load = os.getloadavg()[0]
                    print(f"{size}x ({nodes:,} nodes): {', '.join(took)}; load {load:.1f}",
                          flush=True)  # fmt: skip
                done = size
                for engine in engines:
                    figures = measure_commands(envs[engine], args.repeat)
                    slowest = measure_pages(envs[engine], homes[engine], args.repeat)
                    first = firsts.setdefault(engine, {**figures, "page": slowest[1]})
                    lines.append(row(size, engine, figures, first, slowest))
                    print(lines[-1], flush=True)
        finally:
            for engine in engines:
                subprocess.run([CKG, "db", "stop"], env=envs[engine], capture_output=True)
            if neo4j:
                neo4j.stop()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"\nseconds, median of {args.repeat} whole processes (pages: best of {args.repeat} "
        f"round trips), growth against {sizes[0]}x; ! over its bound at 100x; "
        f"load average {load}; {time.perf_counter() - began:.0f} s in all"
    )
    names = [name for name, _args, _bound in COMMANDS] + ["slowest page"]
    print(" size engine    " + " ".join(f"{n[:15]:>14}" for n in names))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
