"""Cost of ``ckg run --cluster`` against a local ``ckg run`` grid, and the speed-up of 2 workers.

A Git repository holds a ``ckg.yaml`` whose command is ``sleep {pause}``; a real Neo4j
(started from the test launcher unless ``--neo4j-uri``), a ``dask scheduler`` and two
``ckg worker`` processes (labels ``a`` and ``b``, each with its own CKG_HOME that trusts the
repository) run on 127.0.0.1. For ``--points`` points (default 40), best of ``--tries``
whole ``ckg run`` processes each:

- local: ``ckg run noop --grid n=1..40`` on this host;
- 1 worker: the same with ``--cluster --platform a``;
- 2 workers: the same with ``--cluster``.

Overhead per point is (1 worker - local) / points, with trivial points (``pause`` 0); the
speed-up is local / 2 workers and 1 worker / 2 workers, with trivial points and with points
that sleep ``--pause`` seconds (work that does not compete for this host's 2 cores, as work
on two machines would not). The load average is printed beside the figures.

Every connection is TLS with the certificates of ``ckg cluster certs``, as the README says;
``--plain`` measures a ``tcp://`` scheduler with ``--insecure`` instead, to see what TLS costs.

``--slurm`` measures ``ckg run --slurm debug`` instead, on a real one-node Slurm started as
the tests start it (tests/slurm_cluster.py; root, Debian's slurmctld, slurmd and munge), with
the embedded graph, for ``--points`` trivial points in one job (``--job jobs=1``) and in 2:
the time from starting ``ckg run`` to the first point running in a job (the job submitted,
scheduled, its ``ckg worker`` started and joined), the whole run, and the overhead per point
against a local grid once the first point runs: (wall - first point - local) / points.

Usage: ``.venv/bin/python bench/cluster_bench.py [--points 40] [--tries 3] [--pause 0.2]
[--plain | --slurm]``
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

BIN = Path(sys.executable).parent
CKG = str(BIN / "ckg")


def git(repo: Path, *args: str) -> None:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "b",
        "GIT_AUTHOR_EMAIL": "b@example.org",
        "GIT_COMMITTER_NAME": "b",
        "GIT_COMMITTER_EMAIL": "b@example.org",
    }
    subprocess.run(["git", "-C", str(repo), *args], check=True, env=env, capture_output=True)


def noop_repo(repo: Path) -> Path:
    """A one-commit Git repository at ``repo`` holding the workflow ``noop`` the grids run."""
    repo.mkdir()
    (repo / "ckg.yaml").write_text(
        "alias: noop\nuid: wf-bench-noop\nparams: {n: 1, pause: 0}\nrun: 'sleep {pause}'\n"
    )
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "noop")
    return repo


def ckg(uri: str, home: Path, *args: str) -> float:
    """Wall seconds of one whole ``ckg`` process."""
    start = time.perf_counter()
    done = subprocess.run(
        [CKG, "--db", uri, *args],
        capture_output=True,
        text=True,
        env={**os.environ, "CKG_HOME": str(home)},
    )
    if done.returncode:
        raise SystemExit(f"ckg {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return time.perf_counter() - start


def start_worker(uri: str, home: Path, scheduler: str, label: str, *flags) -> subprocess.Popen:
    log = home / "worker.log"
    with open(log, "w") as err:
        process = subprocess.Popen(
            [CKG, "--db", uri, "worker", "--scheduler", scheduler, "--label", label, *flags],
            env={**os.environ, "CKG_HOME": str(home)},
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    deadline = time.monotonic() + 60
    while "ckg worker " not in log.read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"worker {label} did not start:\n{log.read_text()}")
        time.sleep(0.1)
    return process


def measure(uri, homes, scheduler, points, tries, pause, flags) -> dict[str, float]:
    grid = ["--grid", f"n={','.join(map(str, range(1, points + 1)))}", "--grid", f"pause={pause}"]
    ways = {
        "local": ["run", "noop", *grid],
        "1 worker": ["run", "noop", *grid, "--cluster", scheduler, "--platform", "a", *flags],
        "2 workers": ["run", "noop", *grid, "--cluster", scheduler, *flags],
    }
    return {
        name: min(ckg(uri, homes["submitter"], *args) for _ in range(tries))
        for name, args in ways.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=40)
    parser.add_argument("--tries", type=int, default=3)
    parser.add_argument("--pause", type=float, default=0.2)
    parser.add_argument("--neo4j-uri", help="use this Neo4j instead of starting one")
    parser.add_argument("--plain", action="store_true", help="tcp:// and --insecure, no TLS")
    parser.add_argument("--slurm", action="store_true", help="ckg run --slurm on a one-node Slurm")
    args = parser.parse_args()
    if args.slurm:
        slurm_bench(args.points, args.tries)
        return
    from tests.fixtures_neo4j import (
        TEST_PASSWORD,
        TEST_USER,
        Neo4jServer,
        free_port,
        launcher_classpath,
    )

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        server = None
        uri = args.neo4j_uri
        if uri is None:
            server = Neo4jServer(launcher_classpath(), root)
            uri = server.start()
            os.environ["NEO4J_USERNAME"], os.environ["NEO4J_PASSWORD"] = TEST_USER, TEST_PASSWORD
        processes = []
        try:
            repo = noop_repo(root / "repo")
            homes = {name: root / name for name in ("submitter", "a", "b")}
            for home in homes.values():
                home.mkdir()
            ckg(uri, homes["submitter"], "ingest", str(repo))
            ckg(uri, homes["submitter"], "trust", str(repo))
            port = free_port()
            flags, tls = ["--insecure"], []
            if not args.plain:  # the README's way: certificates in each home's cluster/
                ckg(uri, homes["submitter"], "cluster", "certs")
                certs = homes["submitter"] / "cluster"
                for label in ("a", "b"):
                    shutil.copytree(certs, homes[label] / "cluster")
                flags, tls = (
                    [],
                    [
                        "--tls-ca-file",
                        certs / "ca.pem",
                        "--tls-cert",
                        certs / "scheduler.pem",
                        "--tls-key",
                        certs / "scheduler.key",
                    ],
                )
            scheduler = f"{'tcp' if args.plain else 'tls'}://127.0.0.1:{port}"
            processes.append(
                subprocess.Popen(
                    [
                        str(BIN / "dask"),
                        "scheduler",
                        "--host",
                        "127.0.0.1",
                        "--port",
                        str(port),
                        "--no-dashboard",
                        *tls,
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
            for label in ("a", "b"):
                ckg(uri, homes[label], "trust", str(repo))
                processes.append(start_worker(uri, homes[label], scheduler, label, *flags))
            ckg(uri, homes["submitter"], "run", "noop", "--cluster", scheduler, *flags)  # warm
            for pause in (0.0, args.pause):
                walls = measure(uri, homes, scheduler, args.points, args.tries, pause, flags)
                load = os.getloadavg()
                shown = ", ".join(f"{name} {wall:.2f} s" for name, wall in walls.items())
                print(
                    f"{args.points} points of sleep {pause}: {shown} (best of {args.tries}; "
                    f"load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f})"
                )
                overhead = (walls["1 worker"] - walls["local"]) / args.points
                print(
                    f"  overhead per point, 1 worker against local: {overhead * 1e3:.0f} ms; "
                    f"speed-up of 2 workers: x{walls['local'] / walls['2 workers']:.2f} "
                    f"against local, x{walls['1 worker'] / walls['2 workers']:.2f} "
                    "against 1 worker"
                )
        finally:
            for process in reversed(processes):
                process.terminate()
                process.wait(timeout=30)
            if server:
                server.stop()


def slurm_bench(points: int, tries: int) -> None:
    from ckg.store import open_store
    from tests.slurm_cluster import PARTITION, Slurm, missing

    if missing():
        raise SystemExit(missing())
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "slurm").mkdir()
        slurm = Slurm(root / "slurm").start()
        home = root / "home"
        os.environ.update(SLURM_CONF=str(slurm.conf), CKG_HOME=str(home))
        try:
            repo = noop_repo(root / "repo")
            for args in (["ingest", str(repo)], ["trust", str(repo)], ["cluster", "certs"]):
                ckg("embedded", home, *args)
            grid = ["run", "noop", "--grid", f"n={','.join(map(str, range(1, points + 1)))}"]
            local = min(ckg("embedded", home, *grid) for _ in range(tries))
            claimed = (
                "MATCH (r:Run) WHERE r.slurm_job IS NOT NULL AND NOT r.uid IN $seen "
                "RETURN count(r) AS n"
            )
            for jobs in (1, 2):
                walls, firsts = [], []
                for _ in range(tries):
                    with open_store("embedded", home=home) as store:
                        seen = [r["uid"] for r in store.run("MATCH (r:Run) RETURN r.uid AS uid")]
                        start = time.perf_counter()
                        process = subprocess.Popen(
                            [CKG, *grid, "--slurm", PARTITION, "--job", f"jobs={jobs}"],
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE,
                            text=True,
                        )
                        while not store.run(claimed, {"seen": seen})[0]["n"]:
                            if process.poll() is not None:
                                break
                            time.sleep(0.01)
                        firsts.append(time.perf_counter() - start)
                        if process.wait():
                            raise SystemExit(f"ckg run --slurm failed:\n{process.stderr.read()}")
                        walls.append(time.perf_counter() - start)
                load = os.getloadavg()
                best = min(range(tries), key=walls.__getitem__)
                overhead = (walls[best] - firsts[best] - local) / points
                print(
                    f"{points} points, --slurm with {jobs} job(s): first point running after "
                    f"{min(firsts):.2f} s (median {sorted(firsts)[tries // 2]:.2f} s), whole "
                    f"run {walls[best]:.2f} s, local {local:.2f} s; overhead per point once "
                    f"running {overhead * 1e3:.0f} ms (best of {tries}; load {load[0]:.2f} "
                    f"{load[1]:.2f} {load[2]:.2f})"
                )
        finally:
            subprocess.run([CKG, "db", "stop"], capture_output=True)
            slurm.stop()


if __name__ == "__main__":
    main()
