"""``ckg run --slurm``: a real one-node Slurm (tests/slurm_cluster.py) whose jobs run ``ckg
worker`` through dask-jobqueue, in TLS with the certificates of ``ckg cluster certs``, into
the embedded graph of one ckg home, which the jobs share as a cluster's nodes share a
filesystem."""

import json
import os
import signal
import subprocess
import time

import pytest

from ckg.core.errors import UsageError
from ckg.store import open_store
from tests.dask_cluster import CKG
from tests.gitrepo import git
from tests.slurm_cluster import PARTITION

#: Long enough that a job can be cancelled, or the submitter interrupted, mid-grid.
PAUSE_S = 1
WAIT_S = 120

RUNNING = "MATCH (r:Run {status: 'running'}) RETURN count(r) AS n"
RUNS = """
MATCH (r:Run)-[:IN]->(e:Experiment {uid: $exp})
RETURN r.uid AS uid, r.status AS status, r.slurm_job AS job, r.slurm_node AS node,
       r.slurm_cpus AS cpus,
       r.params AS params
"""


@pytest.fixture(scope="module")
def site(slurm, tmp_path_factory):
    """A ckg home with the cluster's certificates and a Git repository of a workflow that
    sleeps ``pause`` seconds, ingested and trusted; its environment reaches ``slurm``."""
    pytest.importorskip("dask_jobqueue", reason="--slurm needs `pip install 'ckg[slurm]'`")
    root = tmp_path_factory.mktemp("slurm-site")
    home = root / "home"
    env = {**slurm.env, "CKG_HOME": str(home)}
    repo = root / "repo"
    repo.mkdir()
    (repo / "ckg.yaml").write_text(
        "alias: pauser\nuid: wf-pauser\nparams: {n: 1, pause: 0}\n"
        'run: \'sleep {pause}; echo "{{\\"f1\\": {n}}}"\'\n'
    )
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "pauser")
    for args in (["ingest", str(repo)], ["trust", str(repo)], ["cluster", "certs"]):
        subprocess.run([CKG, *args], check=True, capture_output=True, env=env, timeout=120)
    try:
        yield {"home": home, "env": env, "root": root, "slurm": slurm}
    finally:
        subprocess.run([CKG, "db", "stop"], capture_output=True, env=env, timeout=60)


def _submit(site, *args) -> list[str]:
    return [
        CKG,
        "run",
        "pauser",
        "--grid",
        "n=1,2,3,4,5,6",
        "--slurm",
        PARTITION,
        "--job",
        "jobs=2",
        "--json",
        *args,
    ]


def _runs(site, experiment: str) -> list[dict]:
    with open_store("embedded", home=site["home"]) as store:
        return store.run(RUNS, {"exp": experiment})


def _wait_for_a_claim(site, submit) -> None:
    """Until a job has claimed a point of the grid ``submit`` runs (or it ended)."""
    with open_store("embedded", home=site["home"]) as store:
        deadline = time.monotonic() + WAIT_S
        while not store.run(RUNNING)[0]["n"] and time.monotonic() < deadline:
            if submit.poll() is not None:
                return
            time.sleep(0.05)


def _queue_empties(slurm) -> list[str]:
    """The jobs left in squeue once cancelled ones have left it (or WAIT_S passed)."""
    deadline = time.monotonic() + WAIT_S
    while (jobs := slurm.jobs()) and time.monotonic() < deadline:
        time.sleep(0.2)
    return jobs


def _check_six(site, out: str) -> list[dict]:
    report = json.loads(out)
    runs = _runs(site, report["experiment"])
    assert len(runs) == 6 and {r["uid"] for r in runs} == {r["uid"] for r in report["runs"]}
    assert sorted(json.loads(r["params"])["n"] for r in runs) == [1, 2, 3, 4, 5, 6]
    assert all(
        r["status"] == "ok" and r["job"] and r["node"] == site["slurm"].node and r["cpus"] == 1
        for r in runs
    ), runs
    return runs


def test_a_grid_on_slurm_makes_one_run_per_point_each_naming_its_job(site):
    done = subprocess.run(
        _submit(site), capture_output=True, text=True, env=site["env"], timeout=WAIT_S
    )
    assert done.returncode == 0, done.stderr
    runs = _check_six(site, done.stdout)
    assert len({r["job"] for r in runs}) <= 2  # --job jobs=2: two jobs took every point
    progress = [line for line in done.stderr.splitlines() if line.startswith("[")]
    assert len(progress) == 6 and all(
        f"(Slurm job {r['job']} on {site['slurm'].node})" in done.stderr for r in runs
    )
    assert _queue_empties(site["slurm"]) == []  # cancelled when the grid ended


def test_a_job_cancelled_mid_grid_is_replaced_and_loses_no_point(site):
    slurm = site["slurm"]
    # One job, cancelled: another takes its place once Dask gives the lost one up (15 s by
    # default; 1 s here).
    submit = subprocess.Popen(
        _submit(site, "--grid", f"pause={PAUSE_S}", "--job", "jobs=1"),
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**site["env"], "DASK_DISTRIBUTED__DEPLOY__LOST_WORKER_TIMEOUT": "1s"},
    )
    claimed = (
        "MATCH (r:Run {status: 'running'}) WHERE r.slurm_job IS NOT NULL "
        "RETURN r.uid AS uid, r.slurm_job AS job"
    )
    victim = None
    with open_store("embedded", home=site["home"]) as store:
        deadline = time.monotonic() + WAIT_S
        while victim is None and time.monotonic() < deadline and submit.poll() is None:
            rows = store.run(claimed)
            victim = rows[0] if rows else None
            time.sleep(0.05)
    assert victim, "no job claimed a point"
    subprocess.run(["scancel", victim["job"]], check=True, env=slurm.env, timeout=30)
    out, err = submit.communicate(timeout=WAIT_S)
    assert submit.returncode == 0, err
    runs = _check_six(site, out)
    # The point the cancelled job was running ran again, whole, in the job that replaced it
    # (the grid had one job).
    [again] = [r for r in runs if r["uid"] == victim["uid"]]
    assert again["job"] != victim["job"]
    assert _queue_empties(slurm) == []


def test_a_folder_runs_where_the_node_sees_it_alike_and_is_refused_where_not(site):
    folder = site["root"] / "shared"
    folder.mkdir()
    (folder / "ckg.yaml").write_text(
        "alias: shared\nuid: wf-shared\nparams: {n: 1, pause: 0}\n"
        f"run: 'sleep {{pause}}; cat {folder}/data.txt'\n"
    )
    (folder / "data.txt").write_text('{"f1": 1}\n')
    subprocess.run(
        [CKG, "ingest", str(folder)], check=True, capture_output=True, env=site["env"], timeout=120
    )
    # One job: the second point is checked there once the first has run, the folder changed.
    submit = subprocess.Popen(
        [CKG, "run", "shared", "--grid", "n=1,2", "--grid", f"pause={PAUSE_S}", "--slurm",
         PARTITION, "--job", "jobs=1", "--json"], stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, env=site["env"])  # fmt: skip
    _wait_for_a_claim(site, submit)
    (folder / "data.txt").write_text('{"f1": 2}\n')
    out, err = submit.communicate(timeout=WAIT_S)
    assert submit.returncode == 1, err
    first, second = json.loads(out)["runs"]
    assert first["status"] == "ok" and second["status"] == "refused", err
    assert (
        f"{folder} (folder) differs on node {site['slurm'].node} from where the grid was "
        "submitted: other content in data.txt"
    ) in second["error"]


def test_jobs_that_end_before_their_worker_joins_end_the_grid(site):
    done = subprocess.run(
        [CKG, "run", "pauser", "--slurm", PARTITION, "--job", "prologue=exit 3"],
        capture_output=True, text=True, env=site["env"], timeout=WAIT_S)  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.strip().startswith(f"ckg: error: --slurm {PARTITION}: jobs ")
    assert f"ended before their worker joined: see {site['home']}/jobs/" in done.stderr


def test_a_partition_slurm_does_not_have_is_refused_before_any_job(site):
    done = subprocess.run(
        [CKG, "run", "pauser", "--slurm", "nosuch"],
        capture_output=True,
        text=True,
        env=site["env"],
        timeout=WAIT_S,
    )
    assert done.returncode == 1 and done.stderr == (
        "ckg: error: --slurm nosuch: Slurm does not take its jobs: sbatch: error: invalid "
        "partition specified: nosuch\n"
    )
    assert site["slurm"].jobs() == []


def test_a_wrong_job_setting_is_one_line_and_exit_2(ckg_home, tmp_path):
    folder = tmp_path / "x"  # a target that exists: the settings are refused after it is found
    folder.mkdir()
    (folder / "ckg.yaml").write_text("alias: x\nuid: wf-x\nrun: 'echo hi'\n")
    for setup in (["ingest", str(folder)], ["cluster", "certs"]):  # --dry-run is refused after
        subprocess.run([CKG, *setup], check=True, capture_output=True, timeout=60)
    for args, message in [
        (
            ["--job", "colour=red"],
            "--job: unknown key 'colour'; expected one of queue, account, walltime",
        ),
        (["--job", "jobs=0"], "--job: jobs = '0': expected a whole number >= 1"),
        (["--job", "walltime"], "--job 'walltime': expected KEY=VALUE"),
        (
            ["--cluster", "tls://127.0.0.1:8786"],
            "--slurm, --jobqueue and --cluster each say where the grid runs",
        ),
        (["--jobqueue", "pbs", "--job", "gres=gpu:1"], "--jobqueue pbs takes no gres"),
        (
            ["--jobqueue", "moab"],
            "--jobqueue 'moab': expected one of slurm, pbs, lsf, sge, htcondor",
        ),
        (["--dry-run"], f"--dry-run does not apply with --slurm {PARTITION}:"),
        (["--trust"], f"--trust does not apply with --slurm {PARTITION}:"),
        (["--jobqueue", "pbs", "--dry-run"], "--dry-run does not apply with --jobqueue pbs:"),
    ]:
        where = [] if "--jobqueue" in args else ["--slurm", PARTITION]
        done = subprocess.run(
            [CKG, "run", "x", *where, *args], capture_output=True, text=True, timeout=60
        )
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2 and len(lines) == 1 and message in lines[0], done.stderr


def test_a_config_section_sets_what_flags_do_not(tmp_path):
    from ckg.run.cluster.jobqueue import job_options

    (tmp_path / "config.toml").write_text(
        '[slurm]\nqueue = "gpu"\nwalltime = "02:00:00"\nprologue = ["module load cuda"]\n'
        '[pbs]\nqueue = "workq"\n'
    )
    jobs = job_options("slurm", None, ["prologue=source ~/v/bin/activate", "cores=4"], tmp_path)
    assert (jobs.queue, jobs.walltime, jobs.cores) == ("gpu", "02:00:00", 4)
    assert jobs.prologue == ("module load cuda", "source ~/v/bin/activate")
    assert job_options("slurm", "debug", (), tmp_path).queue == "debug"
    (tmp_path / "config.toml").write_text("[slurm]\nwalltime = \n")
    with pytest.raises(UsageError, match=f"{tmp_path}/config.toml: not TOML"):
        job_options("slurm", None, (), tmp_path)


def test_ctrl_c_cancels_every_job(site):
    slurm = site["slurm"]
    # As from a terminal: a shell without job control starts what it runs in the background
    # with SIGINT ignored, and pytest may be run so; Python keeps that for its children.
    submit = subprocess.Popen(
        _submit(site, "--grid", "pause=30"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=site["env"],
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    _wait_for_a_claim(site, submit)
    assert slurm.jobs()
    os.kill(submit.pid, signal.SIGINT)
    out, err = submit.communicate(timeout=WAIT_S)
    assert submit.returncode == 130, out + err
    assert "ckg: interrupted: the grid's jobs are cancelled" in err
    assert _queue_empties(slurm) == []
    with open_store("embedded", home=site["home"]) as store:  # claimed, never finished
        assert store.run(RUNNING)[0]["n"] == 0


def test_a_tune_on_slurm_runs_its_budget_in_jobs_and_cancels_them(site):
    done = subprocess.run(
        [CKG, "tune", "pauser", "--space", "n=int(1,9)", "--objectives", "f1", "--budget", "4",
         "--slurm", PARTITION, "--job", "jobs=2", "--json"],
        capture_output=True, text=True, env=site["env"], timeout=WAIT_S)  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    runs = _runs(site, report["experiment"])
    assert len(runs) == len(report["trials"]) == 4
    assert {r["uid"] for r in runs} == {t["run"] for t in report["trials"]}
    assert all(
        r["status"] == "ok" and r["job"] and r["node"] == site["slurm"].node for r in runs
    ), runs
    assert len({r["job"] for r in runs}) <= 2  # --job jobs=2
    assert _queue_empties(site["slurm"]) == []  # cancelled when the tune ended
