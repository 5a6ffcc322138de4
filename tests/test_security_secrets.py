"""Secrets are masked everywhere ckg writes (issue 21, item 9), on both engines.

A real ``ckg run`` of a ``ckg.yaml`` workflow, an MLC/CM script and a notebook, with a secret
passed by ``--env`` and three more in the environment (one under a secret name, one in a URL
whose variable name says nothing, one under ``*_AUTH``), whose code prints them all: the
secret text is then nowhere under ``CKG_HOME`` (plans, journal, logs, the step worker's files,
the executed notebook, the embedded engine's data), in the graph's properties, in ``ckg
export`` and ``ckg db export``, in the log tail ``ckg run --json`` prints, or in ``ckg show``;
and the step got the real values (it prints their digest).
"""

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest

from ckg.core.records import Node, Records

CKG = str(Path(sys.executable).with_name("ckg"))

PASSED = {"OPENAI_API_KEY": "sk-live-4f9a8b7c6d5e3a21"}
AMBIENT = {
    "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLE",
    "DATABASE_URL": "postgres://u:hunter2pw@h/db",
    "NEO4J_AUTH": "neo4j/s3cretpw",
}
#: The text that must appear nowhere.
CLEAR = (
    "sk-live-4f9a8b7c6d5e3a21",
    "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLE",
    "hunter2pw",
    "s3cretpw",
)
#: What the step prints: every secret, then the digest of the values it really got.
PRINT = (
    'echo "key=$OPENAI_API_KEY aws=$AWS_SECRET_ACCESS_KEY db=$DATABASE_URL auth=$NEO4J_AUTH"; '
    'printf %s "$OPENAI_API_KEY$AWS_SECRET_ACCESS_KEY$DATABASE_URL$NEO4J_AUTH" '
    "| sha256sum | cut -c1-16 | sed s/^/got=/"
)
GOT = (
    "got="
    + hashlib.sha256("".join([*PASSED.values(), *AMBIENT.values()]).encode()).hexdigest()[:16]
)


def _ckg(*args, cwd=None) -> subprocess.CompletedProcess:
    done = subprocess.run([CKG, *args], capture_output=True, text=True, timeout=300, cwd=cwd)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


@pytest.fixture
def leaky(store, ckg_home, tmp_path, monkeypatch):
    """A workflow and a CM script that print the secrets, ingested; the ambient secrets set."""
    for name, value in AMBIENT.items():
        monkeypatch.setenv(name, value)
    workflow = tmp_path / "wf"
    workflow.mkdir()
    (workflow / "ckg.yaml").write_text(
        f"alias: leaky-wf\nuid: wf-leaky\nrun: {json.dumps(PRINT)}\n"
    )
    repo = tmp_path / "repo"
    (repo / "script" / "leaky-script").mkdir(parents=True)
    (repo / "cmr.yaml").write_text("alias: leaky-repo\nuid: 00000000000000e9\n")
    (repo / "script" / "leaky-script" / "_cm.yaml").write_text(
        textwrap.dedent("""
        alias: leaky-script
        uid: 20000000000000e1
        automation_alias: script
        tags: [leaky, script]
        """)
    )
    (repo / "script" / "leaky-script" / "run.sh").write_text(f"#!/bin/bash\n{PRINT}\n")
    notebooks = tmp_path / "nb"
    notebooks.mkdir()
    names = [*PASSED, *AMBIENT]
    nbformat.write(
        nbformat.v4.new_notebook(
            cells=[
                nbformat.v4.new_code_cell(
                    f"import hashlib, os\nvalues = [os.environ[n] for n in {names!r}]\n"
                    "print(*values)\n"
                    "print('got=' + hashlib.sha256(''.join(values).encode()).hexdigest()[:16])"
                )
            ]
        ),
        notebooks / "leaky_nb.ipynb",
    )
    _ckg("ingest", str(workflow), str(repo), str(notebooks))
    return store


def _assert_nowhere(where: str, text: str) -> None:
    for secret in CLEAR:
        assert secret not in text, f"{secret!r} in clear in {where}"


def _assert_no_file_holds_a_secret(folder: Path) -> None:
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.is_symlink():
            _assert_nowhere(str(path), path.read_bytes().decode("utf-8", "replace"))


def _assert_masked_everywhere(
    store, home: Path, tmp_path: Path, report: dict, printed: str
) -> None:
    [run] = report["runs"]
    assert run["status"] == "ok"
    assert GOT in printed  # the step got the real values
    assert "***" in printed
    _assert_nowhere("the output of ckg run --json", json.dumps(report))
    rows = store.run("MATCH (n) RETURN labels(n) AS label, properties(n) AS props")
    rows += store.run("MATCH ()-[r]->() RETURN type(r) AS type, properties(r) AS props")
    assert any(row.get("label") == ["Run"] for row in rows)
    _assert_nowhere(f"the graph ({store.engine})", json.dumps(rows, default=str))
    _assert_nowhere("ckg show", _ckg("show", run["uid"], "--json").stdout)
    _ckg("export", run["uid"], "--to", str(tmp_path / "exported"))
    _ckg("db", "export", str(tmp_path / "graph.jsonl"))
    _assert_no_file_holds_a_secret(tmp_path / "exported")
    _assert_nowhere("ckg db export", (tmp_path / "graph.jsonl").read_text())
    _assert_no_file_holds_a_secret(home)


def test_secrets_of_a_workflow_run_are_masked_everywhere(leaky, ckg_home, tmp_path):
    done = _ckg("run", "leaky-wf", "--env", "OPENAI_API_KEY=" + PASSED["OPENAI_API_KEY"], "--json")
    report = json.loads(done.stdout)
    _assert_masked_everywhere(leaky, ckg_home, tmp_path, report, report["runs"][0]["log_tail"])


def test_secrets_of_a_script_run_are_masked_everywhere(leaky, ckg_home, tmp_path):
    done = _ckg(
        "run", "leaky,script", "--env", "OPENAI_API_KEY=" + PASSED["OPENAI_API_KEY"], "--json"
    )
    report = json.loads(done.stdout)
    _assert_masked_everywhere(leaky, ckg_home, tmp_path, report, report["runs"][0]["log_tail"])


def test_secrets_of_a_notebook_run_are_masked_everywhere(leaky, ckg_home, tmp_path):
    done = _ckg("run", "leaky_nb", "--env", "OPENAI_API_KEY=" + PASSED["OPENAI_API_KEY"], "--json")
    report = json.loads(done.stdout)
    executed = Path(report["runs"][0]["workdir"]) / "executed.ipynb"
    _assert_masked_everywhere(leaky, ckg_home, tmp_path, report, executed.read_text())


def test_secrets_of_runs_recorded_in_clear_before_are_masked_on_export(store, ckg_home, tmp_path):
    """A run written by an older ckg holds its environment and log in clear: ``ckg show``,
    ``ckg export`` and ``ckg db export`` mask them by the names in its own environment."""
    workdir = ckg_home / "runs" / "run-old"
    workdir.mkdir(parents=True)
    printed = "key=sk-live-4f9a8b7c6d5e3a21 db=postgres://u:hunter2pw@h/db auth=neo4j/s3cretpw\n"
    (workdir / "ckg-run.log").write_text(printed)
    env = {
        "OPENAI_API_KEY": PASSED["OPENAI_API_KEY"],
        "MY_DB": AMBIENT["DATABASE_URL"],
        "NEO4J_AUTH": AMBIENT["NEO4J_AUTH"],
        "CM_X": "1",
    }
    store.write_records(
        Records(
            nodes=[
                Node(
                    "Run",
                    "run-old",
                    {
                        "status": "ok",
                        "env": json.dumps(env),
                        "workdir": str(workdir),
                        "env_full": json.dumps(env),
                        "log_tail": printed,
                        "command": "psql postgres://u:hunter2pw@h/db",
                    },
                )
            ]
        )
    )
    shown = json.loads(_ckg("show", "run-old", "--json").stdout)
    _assert_nowhere("ckg show", json.dumps(shown))
    assert shown["run"]["env"]["CM_X"] == "1"
    _ckg("export", "run-old", "--to", str(tmp_path / "exported"))
    _ckg("db", "export", str(tmp_path / "graph.jsonl"))
    _assert_no_file_holds_a_secret(tmp_path / "exported")
    _assert_nowhere("ckg db export", (tmp_path / "graph.jsonl").read_text())


def test_short_values_and_names_that_are_no_secret_are_kept():
    from ckg.core import redact

    env = {
        "API_KEY": "1",
        "CM_TOKENIZER": "bert-base-uncased",
        "MAX_NUM_TOKENS": "4096",
        "HF_TOKEN": "hf_abcdefgh",
        "SSH_AUTH_SOCK": "/tmp/agent.sock",
    }
    secrets = redact.secret_values(env)
    assert secrets == ("hf_abcdefgh",)
    assert (
        redact.mask_text("n=1 tokenizer bert-base-uncased token hf_abcdefgh", secrets)
        == "n=1 tokenizer bert-base-uncased token ***"
    )
    assert redact.mask_env(env, secrets) == {**env, "API_KEY": "***", "HF_TOKEN": "***"}


def test_the_step_gets_the_real_secret_and_its_log_file_is_masked(tmp_path):
    from ckg.core import redact
    from ckg.run.execute import execute

    env = {**os.environ, **PASSED, **AMBIENT}
    log = tmp_path / "log"
    log.write_bytes(b"before\n")
    secrets = redact.secret_values(env)
    out = execute(PRINT, cwd=tmp_path, env=env, log_path=log, secrets=secrets)
    assert out.status == "ok" and GOT in out.log_tail
    text = log.read_text()
    assert text.startswith("before\nkey=*** aws=*** db=postgres://u:***@h/db auth=***\n")
    _assert_nowhere("the log", text)
