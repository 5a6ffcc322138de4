"""Overhead of ``ckg run`` against the same trivial command run bare.

Two ways, in a private ``CKG_HOME`` with the embedded engine:

1. Per run inside a grid of ``--points`` runs (default 100) of a ``ckg.yaml`` whose command
   is ``true``: (ckg's time - the bare commands' time) / points. Target: at most 0.05 s.
2. One whole ``ckg run`` process of that workflow (the embedded server already up), against
   one bare ``sh -c true`` process, best and median of ``--processes``: with the plan
   remembered (the usual case, :mod:`ckg.plan.memo`) and with it forgotten before each
   process (the first run after an ingest or a change). Target: at most 0.15 s with the plan
   remembered. Anchors (DESIGN.md, same machine kind): CM's cached run of one script 0.11 s,
   MLCFlow's 3.55 s. The processes get a private ``PYTHONPYCACHEPREFIX`` (and no
   ``PYTHONDONTWRITEBYTECODE``), so modules load from bytecode as after ``pip install``.

   Where the time goes (2 vCPUs, load 2-3, best 0.17 s): the interpreter and typer 0.065 s
   (``python -c "import typer"``), ckg's CLI and store client 0.035 s, the runner's modules
   0.02 s, rich (the table of the run, 0.025 s to import), and the run itself (the plan
   fetched and found remembered, ``true`` executed, the run written) 0.02-0.03 s. Reading
   each step's meta file again before it runs (:func:`ckg.run.trust.meta_mismatch`) adds
   0.024 s: it imports the ingest pipeline (for ``IMPORTERS``) and YAML; measured beside a
   copy without it, same minute, load 1.7: best 0.161 s against 0.137 s. The
   platform fingerprint and the list of installed packages are kept in ``CKG_HOME`` while
   ``sys.path`` is unchanged; a profiler run from another script (another ``sys.path[0]``)
   lists the 350 distributions again (0.06 s), which a ``ckg`` process does not.

3. Real MLCFlow scripts, ``ckg run`` beside ``mlcr`` (mlcflow 1.3.8) in the same run, both
   offline on a copy of ``../shared/corpora/mlperf-automations`` (``mlc add repo``,
   ``MLC_REPOS`` in the temporary folder) and the same PATH: a first ``detect,os`` (each
   tool's cache emptied before every try) and a cached ``get,python3``, best and median of
   ``--processes`` whole processes each. Targets: first ``detect,os`` at least 5x faster
   than mlcr's; cached ``get,python3`` at most 0.3 s and at least 20x faster than mlcr's.
   Skipped, saying why, without the corpus or ``mlcr``.
4. Real CM scripts, ckg beside cmind 4.2.0, both offline on CM's script repository from the
   ``cmx4mlops`` 1.0.1 wheel (``pip download``) made a Git repository (one commit), which
   ckg ingests as a Git source and ``cm add repo --path`` adds (``CM_REPOS`` in the
   temporary folder): ``ckg find`` beside ``cm find script`` by tags ``get,python3``, a
   first ``detect,os`` (its script runs each time) and a cached ``get,python3`` (``ckg run``
   beside ``cm run script``), best and median of ``--processes`` whole processes each.
   Target: ckg at least 1.5x faster than cm on each. ckg's row goes through the home's
   resident (:mod:`ckg.cli.resident`, started by the first command and waited for), every
   process started without a terminal as under CI; "ckg alone" is ckg in a process of its
   own (``CKG_RESIDENT=0``: a home's first command, and ``ckg run`` at a terminal).
   Skipped, saying why, without the wheel (offline) or ``cm``. In sections 3 and 4 the two
   tools run in turns (:func:`timed`), so that both see the same load.

Usage: ``.venv/bin/python bench/run_bench.py [--points 100] [--processes 5] [--only cm]``
(``--only mlc`` or ``--only cm``: that section alone).
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CM_ANCHOR_S = 0.11
MLC_ANCHOR_S = 3.55
CKG = str(Path(sys.executable).with_name("ckg"))
#: ckg in a process of its own, without the home's resident (what a command gets when none
#: serves, and ckg run at a terminal): `env` adds about a millisecond.
ALONE = ["env", "CKG_RESIDENT=0"]
MLCR = str(Path(sys.executable).with_name("mlcr"))
CM = str(Path(sys.executable).with_name("cm"))
CM_WHEEL = "cmx4mlops==1.0.1"
CORPUS = Path(
    os.environ.get("CKG_CORPORA") or Path(__file__).resolve().parents[2] / "shared" / "corpora"
) / "mlperf-automations"


def bare(points: int) -> float:
    start = time.perf_counter()
    for _ in range(points):
        subprocess.run(["/bin/sh", "-c", "true"], check=True)
    return time.perf_counter() - start


def processes(env: dict, count: int, before=None) -> list[float]:
    """Wall seconds of ``count`` whole ``ckg run noop`` processes; ``before`` runs first."""
    walls = []
    for _ in range(count):
        if before:
            before()
        start = time.perf_counter()
        subprocess.run([CKG, "run", "noop"], check=True, capture_output=True, env=env)
        walls.append(time.perf_counter() - start)
    return walls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=100)
    parser.add_argument("--processes", type=int, default=5)
    parser.add_argument("--only", choices=("mlc", "cm"), help="Section 3 or 4 alone.")
    args = parser.parse_args()
    if args.only:
        {"mlc": mlc_scripts, "cm": cm_scripts}[args.only](args.processes)
        return

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        workflow = Path(tmp) / "noop"
        workflow.mkdir()
        (workflow / "ckg.yaml").write_text(
            'alias: noop\nuid: bench-noop\nparams: {n: 0}\nrun: "true"\n'
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

            env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
            env["PYTHONPYCACHEPREFIX"] = str(Path(tmp) / "pycache")
            processes(env, 1)  # bytecode written
            remembered = processes(env, args.processes)
            plans = home / "plans"
            replanned = processes(env, args.processes, lambda: shutil.rmtree(plans))
            one_bare = bare(args.processes) / args.processes
        finally:
            stop_server(home)

    print(f"grid of {args.points} runs: ckg {in_grid:.2f} s, bare {bare_grid:.2f} s")
    print(f"  overhead per run        {per_run:.4f} s  (target <= 0.05 s)")
    whole = statistics.median(remembered)
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"whole `ckg run` process ({args.processes} each, load average {load}):")
    for label, walls in (("plan remembered", remembered), ("plan rebuilt", replanned)):
        print(
            f"  {label:<16} best {min(walls):.3f} s, median {statistics.median(walls):.3f} s"
            f"  (bare {one_bare:.4f} s)"
        )
    print(f"  overhead per process    {whole - one_bare:.3f} s  (median; target <= 0.15 s)")
    print(f"  vs CM cached run 0.11 s:     {whole / CM_ANCHOR_S:.1f}x")
    print(f"  vs MLCFlow cached run 3.55 s: {whole / MLC_ANCHOR_S:.2f}x")
    mlc_scripts(args.processes)
    cm_scripts(args.processes)


def timed(commands: dict[str, list[str]], env: dict, cwd: Path, before=None,
          count: int = 5) -> dict[str, list[float]]:
    """Wall seconds of ``count`` runs of each of ``commands`` (label -> command; each must
    succeed), taken in turns, the order reversed each round: on a shared host the load
    drifts, and runs of one tool after all of the other's would each see another load."""
    walls = {label: [] for label in commands}
    order = list(commands)
    for round_ in range(count):
        for label in order if round_ % 2 == 0 else order[::-1]:
            if before:
                before()
            start = time.perf_counter()
            # Without a terminal, as under CI or a script: ckg run then goes through the
            # home's resident (ckg.entry), which a terminal keeps it from.
            done = subprocess.run(commands[label], capture_output=True, text=True, env=env,
                                  cwd=cwd, stdin=subprocess.DEVNULL, start_new_session=True)
            walls[label].append(time.perf_counter() - start)
            if done.returncode:
                raise SystemExit(f"{' '.join(commands[label])} failed: "
                                 f"{done.stderr.strip()[-800:]}")
    return walls


def wait_for_resident(home: Path) -> None:
    """Wait until the home's resident, started by the first ckg command, serves."""
    deadline = time.monotonic() + 60
    while not (home / "resident.sock").exists():
        if time.monotonic() > deadline:
            raise SystemExit(f"no resident started in {home}: see {home / 'resident.log'}")
        time.sleep(0.05)


def tools_env(tmp: Path, home: Path, **repos: str) -> dict:
    """The environment both tools and ckg run in: ckg's home and the tool's repositories in
    ``tmp``, bytecode written (into ``tmp``) as after an install, the embedded store, and this
    interpreter's scripts first on PATH."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONDONTWRITEBYTECODE", "CKG_DB", "NEO4J_URI")}
    env.update(repos, CKG_HOME=str(home), PYTHONPYCACHEPREFIX=str(tmp / "pycache"),
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}")
    return env


def mlc_scripts(count: int) -> None:
    """Section 3: the same real scripts through ``mlcr`` and ``ckg run``."""
    if not CORPUS.is_dir() or not Path(MLCR).is_file():
        print(f"real MLCFlow scripts: skipped (needs {CORPUS} and {MLCR})")
        return
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        repo = tmp / "mlperf-automations"
        shutil.copytree(CORPUS, repo, symlinks=True)
        home, work = tmp / "ckg-home", tmp / "work"
        work.mkdir()
        env = tools_env(tmp, home, MLC_REPOS=str(tmp / "mlc-repos"))
        subprocess.run([str(Path(MLCR).with_name("mlc")), "add", "repo", str(repo)], env=env,
                       cwd=work, check=True, capture_output=True, stdin=subprocess.DEVNULL)
        mlc_cache = tmp / "mlc-repos" / "local" / "cache"
        ckg_cache = home / "cache" / "scripts"
        try:
            subprocess.run([CKG, "ingest", str(repo)], env=env, check=True, capture_output=True)

            def empty_caches():
                for folder in (mlc_cache, ckg_cache):
                    shutil.rmtree(folder, ignore_errors=True)

            first = timed({"mlcr": [MLCR, "detect,os", "-j", "--quiet"],
                           "ckg": [CKG, "run", "detect,os"]}, env, work, empty_caches, count)
            cached = {"mlcr": [MLCR, "get,python3", "-j", "--quiet"],
                      "ckg": [CKG, "run", "get,python3"]}
            for command in cached.values():
                subprocess.run(command, check=True, capture_output=True, env=env, cwd=work)
            cached = timed(cached, env, work, count=count)
        finally:
            subprocess.run([CKG, "db", "stop"], env=env, capture_output=True)
    report("real MLCFlow scripts", "mlcr", {"first detect,os": (first, 5),
                                            "cached get,python3": (cached, 20)}, count)
    print(f"  cached get,python3 target <= 0.3 s: median {statistics.median(cached['ckg']):.3f} s")


def report(title: str, tool: str, rows: dict, count: int) -> None:
    """Print, for each row ``label: (walls, target)``, ckg's and ``tool``'s walls, their
    ratio and the target (how many times faster than ``tool`` ckg should be)."""
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"{title}, whole processes ({count} each, load average {load}):")
    for label, (walls, target) in rows.items():
        other, ckg = (statistics.median(walls[k]) for k in (tool, "ckg"))
        ratio = f"{other / ckg:.1f}x faster" if other >= ckg else f"{ckg / other:.1f}x slower"
        print(f"  {label:<19} ckg best {min(walls['ckg']):.3f} s, median {ckg:.3f} s; "
              f"{tool} best {min(walls[tool]):.3f} s, median {other:.3f} s; {ratio}"
              f" (target >= {target}x faster)")
        if "ckg alone" in walls:
            alone = statistics.median(walls["ckg alone"])
            print(f"  {'':<19} ckg alone (CKG_RESIDENT=0) best {min(walls['ckg alone']):.3f} s,"
                  f" median {alone:.3f} s; {other / alone:.1f}x of {tool}'s speed")


def cm_scripts(count: int) -> None:
    """Section 4: the same real scripts of CM's repository through ``cm run script`` and
    ``ckg run``."""
    import zipfile

    if not Path(CM).is_file():
        print(f"real CM scripts: skipped (needs {CM})")
        return
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        done = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps",
                               "--disable-pip-version-check", CM_WHEEL, "-d", str(tmp)],
                              capture_output=True, text=True)
        wheels = sorted(tmp.glob("cmx4mlops-*.whl"))
        if done.returncode != 0 or not wheels:
            print(f"real CM scripts: skipped (cannot download {CM_WHEEL}: offline?)")
            return
        with zipfile.ZipFile(wheels[0]) as wheel:
            wheel.extractall(tmp / "wheel")
        repo = tmp / "wheel" / "cmx4mlops"
        for git in (["init", "-q"], ["add", "-A"], ["-c", "user.name=bench", "-c",
                    "user.email=bench@localhost", "commit", "-q", "-m", "cmx4mlops 1.0.1"]):
            subprocess.run(["git", *git], cwd=repo, check=True, capture_output=True)
        home, work = tmp / "ckg-home", tmp / "work"
        work.mkdir()
        env = tools_env(tmp, home, CM_REPOS=str(tmp / "cm-repos"))
        subprocess.run([CM, "add", "repo", f"--path={repo}"], env=env, cwd=work, check=True,
                       capture_output=True, stdin=subprocess.DEVNULL)
        cm_cache = tmp / "cm-repos" / "repos" / "local" / "cache"
        ckg_cache = home / "cache" / "scripts"
        cm_run = [CM, "run", "script", "-j", "--quiet"]
        try:
            for command in (["ingest", str(repo)], ["trust", str(repo)]):
                subprocess.run([CKG, *command], env=env, check=True, capture_output=True)

            def empty_caches():
                for folder in (cm_cache, ckg_cache):
                    shutil.rmtree(folder, ignore_errors=True)

            found = {"cm": [CM, "find", "script", "--tags=get,python3"],
                     "ckg": [CKG, "find", "--tags", "get,python3"],
                     "ckg alone": [*ALONE, CKG, "find", "--tags", "get,python3"]}
            for command in found.values():  # bytecode written, server up
                subprocess.run(command, check=True, capture_output=True, env=env, cwd=work)
            wait_for_resident(home)
            found = timed(found, env, work, count=count)
            first = timed({"cm": [*cm_run, "--tags=detect,os"], "ckg": [CKG, "run", "detect,os"],
                           "ckg alone": [*ALONE, CKG, "run", "detect,os"]},
                          env, work, empty_caches, count)
            cached = {"cm": [*cm_run, "--tags=get,python3"], "ckg": [CKG, "run", "get,python3"],
                      "ckg alone": [*ALONE, CKG, "run", "get,python3"]}
            for command in cached.values():
                subprocess.run(command, check=True, capture_output=True, env=env, cwd=work)
            cached = timed(cached, env, work, count=count)
        finally:
            subprocess.run([CKG, "db", "stop"], env=env, capture_output=True)
    report("real CM scripts", "cm", {"find get,python3": (found, 1.5),
                                     "first detect,os": (first, 1.5),
                                     "cached get,python3": (cached, 1.5)}, count)


if __name__ == "__main__":
    main()
