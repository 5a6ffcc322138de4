"""Papers linked to the code that implements them, whichever comes into the graph first.

A local Git clone is matched through its ``origin`` remote (read from its config: nothing is
fetched), a URL source through its URL; a folder without a remote is never linked.
"""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ckg.cli import load_commands
from ckg.cli.app import app
from ckg.core.records import Edge, Node, Records
from ckg.formats.git import git_origin
from ckg.graph import named
from ckg.ingest.link import link_code
from tests.gitrepo import git

load_commands()  # every command on app, as `ckg --help` lists them

PAPER = "arxiv:1810.04805"
REMOTE = "https://github.com/acme/bert-repro"
TABLE = f"""paper,task,dataset,model,metric,value,code
arXiv:1810.04805,Question Answering,SQuAD1.1,BERT-large,F1,90.9,{REMOTE}
arXiv:1907.11692,Question Answering,SQuAD1.1,RoBERTa,F1,94.6,https://github.com/acme/other
"""
IMPLEMENTS = (
    "MATCH (s:Source {uid: $s})-[:CONTAINS]->(a:Artifact)-[:IMPLEMENTS]->(p:Paper) "
    "RETURN a.uid AS artifact, p.uid AS paper"
)


def project(path: Path, *, remote: str | None = REMOTE, use_git: bool = True) -> Path:
    """A generic Python project; a committed Git repository with ``origin`` when asked."""
    path.mkdir(parents=True)
    (path / "pyproject.toml").write_text(
        '[project]\nname = "bert-repro"\nversion = "0.1"\ndependencies = ["torch"]\n'
    )
    (path / "train.py").write_text("print('train')\n")
    if use_git:
        git(path, "init", "-q", "-b", "main")
        git(path, "add", ".")
        git(path, "commit", "-q", "-m", "one")
        if remote:
            git(path, "remote", "add", "origin", remote)
    return path


@pytest.fixture
def table(tmp_path) -> Path:
    path = tmp_path / "results.csv"
    path.write_text(TABLE)
    return path


def links(kg, uid: str) -> list[tuple[str, str]]:
    return sorted((r["artifact"], r["paper"]) for r in kg.query(IMPLEMENTS, {"s": uid}))


def artifact_of(kg, uid: str) -> str:
    rows = kg.query(
        "MATCH (:Source {uid: $s})-[:CONTAINS]->(a:Artifact {format: 'generic'}) "
        "RETURN a.uid AS uid",
        {"s": uid},
    )
    assert len(rows) == 1
    return rows[0]["uid"]


def test_git_origin_reads_the_config_of_a_clone_and_of_a_worktree(tmp_path):
    repo = project(tmp_path / "repo", remote="git@github.com:Acme/Bert-Repro.git")
    assert git_origin(repo) == git(repo, "remote", "get-url", "origin")
    git(repo, "worktree", "add", "-q", str(tmp_path / "wt"))
    assert (tmp_path / "wt" / ".git").is_file()
    assert git_origin(tmp_path / "wt") == "git@github.com:Acme/Bert-Repro.git"
    assert git_origin(project(tmp_path / "bare", remote=None)) == ""
    assert git_origin(project(tmp_path / "plain", use_git=False)) == ""


def test_results_first_then_ingest_links_and_queries_show_the_artifact(kg, tmp_path, table):
    report = kg.import_results([table])
    assert (report.results, report.linked) == (2, 0)
    repo = project(tmp_path / "clone")
    summary = kg.ingest(repo)
    source = kg.store.get_node("Source", summary.uid)
    assert (source["location"], source["origin"]) == (str(repo), REMOTE)
    artifact = artifact_of(kg, summary.uid)
    assert summary.implements == 1 and summary.as_dict()["implements"] == 1
    assert links(kg, summary.uid) == [(artifact, PAPER)]

    rows = named.run(
        kg.store, "compare-papers", {"task": None, "dataset": "SQuAD1.1", "metric": "f1"}
    )
    assert [(r["model"], r["artifacts"]) for r in rows] == [
        ("RoBERTa", []),
        ("BERT-large", [artifact]),
    ]
    kg.store.write_records(
        Records(
            nodes=[
                Node(
                    "Run",
                    "r1",
                    {
                        "uid": "r1",
                        "status": "ok",
                        "started_at": "2025-01-01",
                        "params": '{"model": "BERT-large"}',
                    },
                ),
                Node("Measurement", "m1", {"uid": "m1", "metric": "f1", "value": 90.0}),
            ],
            edges=[
                Edge("OF", "Run", "r1", "Artifact", artifact),
                Edge("MEASURED", "Run", "r1", "Measurement", "m1"),
            ],
        )
    )
    rows = named.run(kg.store, "paper-vs-reproduced", {"paper": PAPER, "metric": "f1"})
    assert [(r["artifact"], r["reported"], r["reproduced"]) for r in rows] == [
        (artifact, 90.9, 90.0)
    ]


def test_unchanged_reingest_writes_nothing_and_links_nothing_more(kg, tmp_path, table, monkeypatch):
    kg.import_results([table])
    repo = project(tmp_path / "clone")
    assert kg.ingest(repo).implements == 1
    sent: list[str] = []
    write, write_batches = kg.store.write, kg.store.write_batches
    monkeypatch.setattr(kg.store, "write", lambda c, p=None: sent.append(c) or write(c, p))
    monkeypatch.setattr(
        kg.store,
        "write_batches",
        lambda c, rows, **o: sent.append(c) or write_batches(c, rows, **o),
    )
    again = kg.ingest(repo)
    assert (again.wrote, again.implements, sent) == (False, 0, [])
    # Importing the same results again finds the edge there already.
    assert kg.import_results([table]).linked == 0
    assert len(links(kg, again.uid)) == 1


def test_ingest_first_then_results_import_links(kg, tmp_path, table):
    summary = kg.ingest(project(tmp_path / "clone"))
    assert summary.implements == 0
    assert kg.import_results([table]).linked == 1
    assert links(kg, summary.uid) == [(artifact_of(kg, summary.uid), PAPER)]
    rows = named.run(
        kg.store, "compare-papers", {"task": None, "dataset": "SQuAD1.1", "metric": None}
    )
    assert [r["artifacts"] for r in rows if r["model"] == "BERT-large"] == [
        [artifact_of(kg, summary.uid)]
    ]


def test_remote_added_after_ingest_links_on_the_next_ingest(kg, tmp_path, table):
    kg.import_results([table])
    repo = project(tmp_path / "clone", remote=None)
    first = kg.ingest(repo)
    assert first.implements == 0 and "origin" not in kg.store.get_node("Source", first.uid)
    git(repo, "remote", "add", "origin", "git@github.com:Acme/bert-repro.git")
    second = kg.ingest(repo)
    assert (second.wrote, second.parsed, second.implements) == (True, 0, 1)
    assert len(links(kg, first.uid)) == 1


def test_folders_without_a_remote_get_no_edge(kg, tmp_path, table):
    kg.import_results([table])
    no_remote = kg.ingest(project(tmp_path / "no-remote", remote=None))
    plain = kg.ingest(project(tmp_path / "plain", use_git=False))
    assert (no_remote.kind, plain.kind) == ("git", "dir")
    assert no_remote.implements == plain.implements == 0
    assert links(kg, no_remote.uid) == links(kg, plain.uid) == []
    assert link_code(kg.store) == 0


def test_cli_summary_shows_and_json_counts_the_links(kg, tmp_path, table):
    kg.import_results([table])
    repo = project(tmp_path / "clone")
    runner = CliRunner()
    shown = runner.invoke(app, ["ingest", str(repo)])
    assert shown.exit_code == 0, shown.output
    assert "papers implemented (IMPLEMENTS added)" in shown.output
    other = runner.invoke(app, ["ingest", "--json", str(project(tmp_path / "x", remote=None))])
    assert other.exit_code == 0, other.output
    assert json.loads(other.output)[0]["implements"] == 0
    quiet = runner.invoke(app, ["ingest", str(repo)])
    assert "IMPLEMENTS" not in quiet.output
