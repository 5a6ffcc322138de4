"""Every recorded number says what produced it: a workflow in a real Git repository, run at
one commit, changed, re-ingested and run again; the old run still names its own commit and
files, and ``ckg diff`` names what changed."""

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.gitrepo import git

WORKFLOW = """\
alias: square
uid: 5c0e0000000000aa
params: {n: 2}
run: "{python} {artifact_dir}/square.py {n}"
metrics: ckg-result.json
"""
SCRIPT = (
    "import json, sys\nn = float(sys.argv[1])\n"
    "json.dump({'f1': n * %s}, open('ckg-result.json', 'w'))\n"
)


def _repo(tmp_path: Path) -> Path:
    repo = tmp_path / "workflow"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "ckg.yaml").write_text(WORKFLOW)
    (repo / "square.py").write_text(SCRIPT % "n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "square")
    return repo


def test_a_run_keeps_what_produced_it_after_its_source_moves_on(kg, tmp_path):
    repo = _repo(tmp_path)
    commit_a = git(repo, "rev-parse", "HEAD")
    kg.ingest(str(repo))
    [first] = kg.run("square", trust=True, repeat=3, warmup=0).runs
    assert first.status == "ok" and first.metrics["f1"] == 4.0

    (repo / "square.py").write_text(SCRIPT % "n * 10")
    git(repo, "commit", "-q", "-am", "ten times")
    commit_b = git(repo, "rev-parse", "HEAD")
    kg.ingest(str(repo))
    [second] = kg.run("square", trust=True).runs
    assert second.metrics["f1"] == 40.0

    old = kg.show_run(first.uid)
    assert old["run"]["source_commit"] == commit_a and old["run"]["source_dirty"] is False
    assert set(old["run"]["artifact_files"]) == {"ckg.yaml", "square.py"}
    f1 = next(m for m in old["measurements"] if m["metric"] == "f1")
    assert f1["values"] == [4.0, 4.0, 4.0]
    runtime = next(m for m in old["measurements"] if m["metric"] == "runtime")
    assert len(runtime["values"]) == 3 and runtime["n"] == 3
    assert any(p.startswith("networkx==") for p in old["packages"])
    assert "PATH" in old["run"]["env_full"]

    new = kg.show_run(second.uid)
    assert new["run"]["source_commit"] == commit_b
    assert new["run"]["artifact_digest"] != old["run"]["artifact_digest"]

    found = kg.diff_runs(first.uid, second.uid)
    assert found["source_commit"] == {"a": commit_a, "b": commit_b}
    assert found["files"] == {"changed": ["square.py"]}
    assert "packages" not in found and "platform" not in found


def test_runs_show_and_diff_from_the_command_line(kg, tmp_path, ckg_home):
    repo = _repo(tmp_path)
    kg.ingest(str(repo))
    uids = [kg.run("square", trust=True, grid={"n": [n]}).runs[0].uid for n in (2, 3)]
    env = {**os.environ, "CKG_HOME": str(ckg_home)}
    ckg = str(Path(sys.executable).with_name("ckg"))

    def cli(*args):
        done = subprocess.run([ckg, *args], env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return done.stdout

    listed = json.loads(cli("runs", "--artifact", "square", "--json"))
    assert {r["run"] for r in listed} == set(uids)
    # What each run measured, in columns: what it reported first, then ckg's own figures.
    table = cli("runs", "--artifact", "square").splitlines()
    assert "f1" in table[2].split()
    for uid, f1 in zip(uids, ("4.000", "9.000"), strict=True):
        [line] = [line for line in table if uid[:16] in line]
        assert f1 in [cell.strip() for cell in line.split("│")]
    header = cli("runs", "--artifact", "square", "--csv").splitlines()[0].split(",")
    assert "f1" in header and "runtime (s)" in header
    shown = cli("show", uids[0])
    assert "commit:" in shown and "measurements" in shown
    # The values, old -> new, not only the name of what changed.
    assert "params: n: 2 -> 3" in cli("diff", uids[0], uids[1]).splitlines()
    assert json.loads(cli("diff", uids[0], uids[1], "--json"))["params"] == {"changed": ["n"]}
