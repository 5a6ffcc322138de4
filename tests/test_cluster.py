"""``ckg run --cluster`` and ``ckg worker``: a real Neo4j, a real ``dask scheduler`` and two
``ckg worker`` processes on 127.0.0.1, labelled ``cpu-a`` and ``cpu-b``, in TLS with the
certificates of ``ckg cluster certs`` (tests/dask_cluster.py)."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ckg.store import open_store
from tests.dask_cluster import CKG, STARTUP_S, Worker, copy_certs, make_certs, scheduler
from tests.gitrepo import git

LABELS = ("cpu-a", "cpu-b")
#: Long enough that a worker can be killed while it still has points to run.
PAUSE_S = 0.4

RUNS = """
MATCH (r:Run)-[:IN]->(e:Experiment {uid: $exp})
OPTIONAL MATCH (r)-[:ON]->(p:Platform)
OPTIONAL MATCH (r)-[:MEASURED]->(m:Measurement {metric: 'f1'})
RETURN r.uid AS uid, r.status AS status, r.worker AS worker, r.worker_labels AS labels,
       r.params AS params, p.uid AS platform, collect(m.value) AS f1
"""


def _ckg(*args, home: Path, check_code=0, timeout=120):
    done = subprocess.run(
        [CKG, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "CKG_HOME": str(home)},
    )
    assert done.returncode == check_code, done.stdout + done.stderr
    return done


@pytest.fixture(scope="module")
def cluster(neo4j_uri, tmp_path_factory):
    """A scheduler, two labelled workers, and a Git repository of a trivial workflow that the
    submitter ingested and each worker's operator trusted."""
    pytest.importorskip("distributed", reason="the cluster tests need `pip install 'ckg[cluster]'`")
    if shutil.which("git") is None:
        pytest.skip("the cluster tests ship their workflow as a Git repository: git missing")
    root = tmp_path_factory.mktemp("cluster")
    open_store(neo4j_uri, home=root).reset()
    repo = root / "repo"
    repo.mkdir()
    (repo / "ckg.yaml").write_text(
        "alias: pauser\nuid: wf-pauser\nparams: {n: 1, pause: 0, tally: /dev/null}\n"
        'run: \'sleep {pause}; echo x >> {tally}; echo "{{\\"f1\\": {n}}}"\'\n'
    )
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "pauser")
    submitter = root / "submitter"
    submitter.mkdir()
    _ckg("--db", neo4j_uri, "ingest", str(repo), home=submitter)
    # As the README says: the submitter makes the certificates, each worker gets a copy.
    certs = make_certs(submitter)
    workers = {}
    with scheduler(certs, root / "scheduler.log") as address:
        try:
            for label in LABELS:
                home = root / label
                copy_certs(certs, home)
                _ckg("--db", neo4j_uri, "trust", str(repo), home=home)
                workers[label] = Worker(label, home, neo4j_uri, address).start()
            yield {
                "uri": neo4j_uri,
                "scheduler": address,
                "workers": workers,
                "root": root,
                "submitter": submitter,
                "certs": certs,
            }
        finally:
            for worker in workers.values():
                worker.stop()


def _submit(cluster, *args):
    return [
        CKG,
        "--db",
        cluster["uri"],
        "run",
        "pauser",
        "--grid",
        "platform=cpu-a,cpu-b",
        "--grid",
        "n=1,2,3,4",
        "--cluster",
        cluster["scheduler"],
        "--json",
        *args,
    ]


def _runs(cluster, experiment: str) -> list[dict]:
    with open_store(cluster["uri"], home=cluster["root"]) as store:
        return store.run(RUNS, {"exp": experiment})


def _check_placement(cluster, report: dict, runs: list[dict]) -> None:
    """Exactly one Run per grid point, each on a worker of the label the point asked for."""
    assert len(runs) == 8 and len({r["uid"] for r in runs}) == 8
    wanted = {r["uid"]: r["params"] for r in report["runs"]}
    assert set(wanted) == {r["uid"] for r in runs}
    for run in runs:
        label = wanted[run["uid"]]["platform"]
        assert run["status"] == "ok" and run["labels"] == [label], run
        assert json.loads(run["params"]) == {"n": wanted[run["uid"]]["n"], "pause": PAUSE_S}
        assert run["f1"] == [float(wanted[run["uid"]]["n"])]  # one measurement, not two
        assert f"platform={run['platform']}" in cluster["workers"][label].offers


def test_each_point_lands_on_a_worker_of_its_label_and_is_recorded_once(cluster):
    done = _ckg(*_submit(cluster, "--grid", f"pause={PAUSE_S}")[1:], home=cluster["submitter"])
    report = json.loads(done.stdout)
    runs = _runs(cluster, report["experiment"])
    _check_placement(cluster, report, runs)
    addresses = {label: w.address for label, w in cluster["workers"].items()}
    assert {r["worker"] for r in runs} == set(addresses.values())
    progress = [line for line in done.stderr.splitlines() if line.startswith("[")]
    assert len(progress) == 8 and progress[-1].startswith("[8/8]")
    assert sum(f"[{label}]" in line for line in progress for label in LABELS) == 8


def test_a_worker_killed_mid_grid_loses_no_run_and_duplicates_none(cluster):
    victim = cluster["workers"]["cpu-a"]
    finished = "MATCH (r:Run {worker: $w, status: 'ok'}) RETURN count(r) AS n"
    with open_store(cluster["uri"], home=cluster["root"]) as store:
        before = store.run(finished, {"w": victim.address})[0]["n"]
    submit = subprocess.Popen(
        _submit(cluster, "--grid", f"pause={PAUSE_S}"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "CKG_HOME": str(cluster["submitter"])},
    )
    with open_store(cluster["uri"], home=cluster["root"]) as store:
        deadline = time.monotonic() + STARTUP_S
        while time.monotonic() < deadline and submit.poll() is None:  # until cpu-a has run one
            if store.run(finished, {"w": victim.address})[0]["n"] > before:
                break
            time.sleep(0.05)
    os.kill(victim.process.pid, signal.SIGKILL)
    victim.process.wait()
    killed = victim.address
    victim.start()
    out, err = submit.communicate(timeout=120)
    assert submit.returncode == 0, out + err
    report = json.loads(out)
    runs = _runs(cluster, report["experiment"])
    _check_placement(cluster, report, runs)
    workers_a = {r["worker"] for r in runs if r["labels"] == ["cpu-a"]}
    assert killed in workers_a and victim.address in workers_a  # the rest ran after restart


def test_a_point_whose_worker_dask_gives_up_on_is_marked_lost(cluster):
    """A scheduler that allows no failures: the first worker death loses the point for good."""
    env = {"DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "0"}
    with scheduler(cluster["certs"], cluster["root"] / "strict.log", env) as address:
        home = cluster["workers"]["cpu-a"].home  # trusts the repository already
        doomed = Worker("doomed", home, cluster["uri"], address).start()
        submit = subprocess.Popen(
            [
                CKG,
                "--db",
                cluster["uri"],
                "run",
                "pauser",
                "--grid",
                "pause=3",
                "--cluster",
                address,
                "--json",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "CKG_HOME": str(cluster["submitter"])},
        )
        claimed = "MATCH (r:Run {worker: $w, status: 'running'}) RETURN count(r) AS n"
        with open_store(cluster["uri"], home=cluster["root"]) as store:
            deadline = time.monotonic() + STARTUP_S
            while time.monotonic() < deadline and submit.poll() is None:
                if store.run(claimed, {"w": doomed.address})[0]["n"]:
                    break
                time.sleep(0.05)
            os.kill(doomed.process.pid, signal.SIGKILL)
            doomed.process.wait()
            out, err = submit.communicate(timeout=60)
            assert submit.returncode == 1, out + err
            [run] = json.loads(out)["runs"]
            assert run["status"] == "lost" and "KilledWorker" in run["error"]
            rows = store.run(
                "MATCH (r:Run {uid: $u}) RETURN r.status AS s, r.worker AS w", {"u": run["uid"]}
            )
            assert rows == [{"s": "lost", "w": doomed.address}]


def test_a_task_executed_twice_runs_its_command_once(cluster, tmp_path):
    """What Dask does when a worker dies after recording a run but before handing the result
    back: the second execution returns the recorded run."""
    from distributed import Client

    import ckg
    from ckg.run import Options
    from ckg.run.cluster.certs import security_for
    from ckg.run.cluster.submit import task_specs
    from ckg.run.cluster.worker import run_task

    tally = tmp_path / "tally"
    with ckg.open(cluster["uri"], home=cluster["submitter"]) as kg:
        [spec] = task_specs(
            kg.store,
            kg.home,
            "pauser",
            Options(grid={"tally": [str(tally)]}),
            cluster["scheduler"],
            ("cpu-b",),
        )
    member = security_for(cluster["scheduler"], "client", cluster["certs"])
    with Client(cluster["scheduler"], security=member, set_as_default=False) as client:
        first = client.submit(run_task, spec, resources=spec["need"], pure=False).result()
        again = client.submit(run_task, spec, resources=spec["need"], pure=False).result()
    assert first["status"] == again["status"] == "ok" and first["uid"] == again["uid"]
    assert again["metrics"]["f1"] == first["metrics"]["f1"] == 1.0
    assert tally.read_text() == "x\n"  # the command ran once


def test_a_worker_runs_a_source_only_once_its_operator_trusts_it(cluster):
    folder = cluster["root"] / "stranger"
    folder.mkdir()
    (folder / "ckg.yaml").write_text(
        "alias: stranger\nuid: wf-stranger\nrun: 'echo out of luck >&2; exit 3'\n"
    )
    archive = shutil.make_archive(str(cluster["root"] / "stranger"), "zip", folder)
    home = cluster["submitter"]
    _ckg("--db", cluster["uri"], "ingest", archive, home=home)
    done = _ckg(
        "--db",
        cluster["uri"],
        "run",
        "stranger",
        "--cluster",
        cluster["scheduler"],
        "--platform",
        "cpu-b",
        home=home,
        check_code=1,
    )
    worker = cluster["workers"]["cpu-b"]
    assert f"refused (exit 1): on worker {worker.address} [cpu-b]" in done.stderr
    assert f"{archive} (zip), which is not trusted on this worker" in done.stderr
    assert f"`ckg trust {archive}` there" in done.stderr
    ran = "MATCH (r:Run)-[:OF]->(:Artifact {uid: 'wf-stranger'}) RETURN r.status AS s"
    with open_store(cluster["uri"], home=cluster["root"]) as store:
        assert store.run(ran) == []
    # Its operator trusts it: it runs there, and its failure comes back with its log's tail.
    _ckg("--db", cluster["uri"], "trust", archive, home=worker.home)
    done = _ckg(
        "--db",
        cluster["uri"],
        "run",
        "stranger",
        "--cluster",
        cluster["scheduler"],
        "--platform",
        "cpu-b",
        home=home,
        check_code=1,
    )
    platform = next(n for n in worker.offers.split(", ") if n.startswith("platform="))
    assert (
        f"failed (exit 3): on worker {worker.address} [cpu-b] on {platform[9:]}: out of luck"
    ) in done.stderr
    with open_store(cluster["uri"], home=cluster["root"]) as store:
        assert store.run(ran) == [{"s": "failed"}]
    # Trusting a source is not trusting what a submitter loads into it.
    done = _ckg("--db", cluster["uri"], "run", "stranger", "--cluster", cluster["scheduler"],
                "--platform", "cpu-b", "--env", "LD_PRELOAD=/tmp/evil.so", home=home,
                check_code=1)  # fmt: skip
    assert (
        f"refused (exit 1): on worker {worker.address} [cpu-b]" in done.stderr
        and "--env LD_PRELOAD is not accepted from a submitter on a worker" in done.stderr
    )


def test_a_folder_trust_and_an_unknown_platform_are_refused_at_submission(cluster, tmp_path):
    folder = tmp_path / "local"
    folder.mkdir()
    (folder / "ckg.yaml").write_text("alias: local-only\nuid: wf-local\nrun: 'echo hi'\n")
    home = cluster["submitter"]
    _ckg("--db", cluster["uri"], "ingest", str(folder), home=home)
    done = _ckg(
        "--db",
        cluster["uri"],
        "run",
        "local-only",
        "--cluster",
        cluster["scheduler"],
        home=home,
        check_code=1,
    )
    assert f"local-only comes from the folder {folder}" in done.stderr
    done = _ckg(
        "--db",
        cluster["uri"],
        "run",
        "pauser",
        "--trust",
        "--cluster",
        cluster["scheduler"],
        home=home,
        check_code=2,
    )
    assert "--trust does not apply with --cluster" in done.stderr
    done = _ckg(
        "--db",
        cluster["uri"],
        "run",
        "pauser",
        "--cluster",
        cluster["scheduler"],
        "--platform",
        "gpu=H200",
        home=home,
        check_code=1,
    )
    assert "no `ckg worker` there offers gpu=h200 (its workers offer: cores=" in done.stderr
    assert "label=cpu-a, label=cpu-b" in done.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["run", "x", "--cluster", "tcp://10.1.2.3:8786"],
            "--cluster tcp://10.1.2.3:8786: a "
            "tcp:// scheduler runs what anyone who reaches it sends, another local user included; "
            "start it with the certificates of `ckg cluster certs` and give tls://, or --insecure",
        ),
        (
            ["worker", "--scheduler", "tcp://127.0.0.1:8786"],
            "--scheduler tcp://127.0.0.1:8786: a "
            "tcp:// scheduler runs what anyone who reaches it sends",
        ),
        (
            ["run", "x", "--cluster", "10.1.2.3:8786"],
            "no cluster certificate {home}/cluster/ca.pem:"
            " make them with `ckg cluster certs {home}/cluster` and copy that folder here, or name "
            "the folder with --certs or CKG_CLUSTER_CERTS",
        ),
        (["run", "x", "--cluster", "http://127.0.0.1:8786"], "expected tls://HOST:PORT"),
        (
            ["run", "x", "--cluster", "127.0.0.1:8786", "--platform", "colour=red"],
            "--platform 'colour=red': expected a label or FIELD=VALUE",
        ),
    ],
)
def test_an_unsafe_or_malformed_cluster_flag_is_one_line_and_exit_2(
    ckg_home, tmp_path, args, message
):
    folder = tmp_path / "x"  # a target that exists, whichever the CLI looks at first
    folder.mkdir()
    (folder / "ckg.yaml").write_text("alias: x\nuid: wf-x\nrun: 'echo hi'\n")
    _ckg("ingest", str(folder), home=ckg_home)
    done = _ckg(*args, home=ckg_home, check_code=2)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message.format(home=ckg_home) in lines[0], done.stderr


def test_a_run_without_cluster_never_imports_dask(ckg_home, tmp_path):
    folder = tmp_path / "wf"
    folder.mkdir()
    (folder / "ckg.yaml").write_text("alias: quiet\nuid: wf-quiet\nrun: 'echo hi'\n")
    _ckg("ingest", str(folder), home=ckg_home)
    probe = (
        "import sys\n"
        "from ckg.cli import main\n"
        "sys.argv = ['ckg', 'run', 'quiet']\n"
        "try:\n    main()\nexcept SystemExit as exit:\n    assert not exit.code, exit.code\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "CKG_HOME": str(ckg_home)},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_without_dask_cluster_flags_say_what_to_install(ckg_home):
    probe = (
        "import sys\n"
        "sys.modules['distributed'] = None  # as if not installed: importing it fails\n"
        "from ckg.cli import main\n"
        "sys.argv = ['ckg', 'worker', '--scheduler', 'tls://127.0.0.1:8786']\n"
        "main()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "CKG_HOME": str(ckg_home)},
    )
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "ckg: error: --cluster and `ckg worker` need Dask distributed: pip install 'ckg[cluster]'"
    )


def test_a_tune_spreads_its_trials_over_the_workers_and_records_its_budget(cluster):
    # Two workers, one trial each at a time: both run some, and each trial is one Run.
    done = _ckg(
        "--db",
        cluster["uri"],
        "tune",
        "pauser",
        "--space",
        "n=int(1,50)",
        "--space",
        f"pause={PAUSE_S}",
        "--objectives",
        "f1,runtime",
        "--budget",
        "6",
        "--cluster",
        cluster["scheduler"],
        "--json",
        home=cluster["submitter"],
    )
    report = json.loads(done.stdout)
    runs = _runs(cluster, report["experiment"])
    assert len(runs) == len(report["trials"]) == 6
    assert all(r["status"] == "ok" and len(r["f1"]) == 1 for r in runs)
    assert {r["worker"] for r in runs} == {w.address for w in cluster["workers"].values()}
    assert len([line for line in done.stderr.splitlines() if line.startswith("[")]) == 6
