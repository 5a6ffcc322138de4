"""Overhead of ``ckg run`` against the same trivial command run bare.

Two ways, in a private ``CKG_HOME`` with the embedded engine:

1. Per run inside a grid of ``--points`` runs (default 100) of a ``ckg.yaml`` whose command
   is ``true``: (ckg's time - the bare commands' time) / points. Target: at most 0.05 s.
2. One whole ``ckg run`` process of that workflow (the embedded server already up), against
   one bare ``sh -c true`` process. Target: at most 0.5 s. Anchors (DESIGN.md, same machine
   kind): CM's cached run of one script 0.11 s, MLCFlow's 3.55 s.

Usage: ``.venv/bin/python bench/run_bench.py [--points 100] [--processes 5]``
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CM_ANCHOR_S = 0.11
MLC_ANCHOR_S = 3.55
CKG = str(Path(sys.executable).with_name("ckg"))


def bare(points: int) -> float:
    start = time.perf_counter()
    for _ in range(points):
        subprocess.run(["/bin/sh", "-c", "true"], check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=100)
    parser.add_argument("--processes", type=int, default=5)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        workflow = Path(tmp) / "noop"
        workflow.mkdir()
        (workflow / "ckg.yaml").write_text(
            "alias: noop\nuid: bench-noop\nparams: {n: 0}\nrun: \"true\"\n"
        )
        os.environ["CKG_HOME"] = str(home)
        import ckg.api
        from ckg.store.embedded import stop_server

        try:
            with ckg.api.open("embedded", home=home) as kg:
                kg.ingest(str(workflow))
                kg.run("noop")  # warm: server up, platform detected once, caches filled
                start = time.perf_counter()
                report = kg.run("noop", grid={"n": list(range(args.points))})
                in_grid = time.perf_counter() - start
            assert len(report.runs) == args.points and not report.failed
            bare_grid = bare(args.points)
            per_run = (in_grid - bare_grid) / args.points

            processes = []
            for _ in range(args.processes):
                start = time.perf_counter()
                subprocess.run([CKG, "run", "noop"], check=True, capture_output=True)
                processes.append(time.perf_counter() - start)
            whole = statistics.median(processes)
            one_bare = bare(args.processes) / args.processes
        finally:
            stop_server(home)

    print(f"grid of {args.points} runs: ckg {in_grid:.2f} s, bare {bare_grid:.2f} s")
    print(f"  overhead per run        {per_run:.4f} s  (target <= 0.05 s)")
    print(
        f"whole `ckg run` process: median of {args.processes} {whole:.3f} s, bare {one_bare:.4f} s"
    )
    print(f"  overhead per process    {whole - one_bare:.3f} s  (target <= 0.5 s)")
    print(f"  vs CM cached run 0.11 s:     {whole / CM_ANCHOR_S:.1f}x")
    print(f"  vs MLCFlow cached run 3.55 s: {whole / MLC_ANCHOR_S:.2f}x")


if __name__ == "__main__":
    main()
