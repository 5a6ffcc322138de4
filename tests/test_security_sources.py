"""Hostile sources read in place: links, special files and image archives that amplify.

A folder or a Git checkout is read as an archive is extracted: a link that leaves the source
is refused with one warning naming it, a link inside is followed to its target, a FIFO,
device or socket is skipped without being opened, and the rest of the source is read. An
image archive is bounded by the bytes it makes ckg read, however often its manifest names
the same config or layer.

Each ingest that could hang or grow without bound runs in a process of its own with a
timeout and a bound on its address space, so that the code before these fixes fails the
test instead of the machine.
"""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import ckg
from ckg.formats import container
from tests.gitrepo import git
from tests.test_containers import config, sha, tar_bytes
from tests.test_ingest import write_tree

HELLO = "alias: hello\nuid: 0000000000000001\nautomation_alias: script\ntags: [hello, demo]\n"
SECRET_ROWS = "model,dataset,accuracy\nsecret-model,Private,99.9\n"
#: Runs one ingest in a process whose address space is bounded once the embedded server
#: (which must not inherit the bound) answers; prints the summary as JSON.
BOUNDED_INGEST = """
import json, resource, sys
import ckg
with ckg.open() as kg:
    kg.store.run("RETURN 1")
    resource.setrlimit(resource.RLIMIT_AS, (int(sys.argv[2]),) * 2)
    print(json.dumps(kg.ingest(sys.argv[1]).as_dict()))
"""


def ingest_bounded(source: Path, *, memory: int = 1 << 30, timeout: int = 120) -> dict:
    """Ingest ``source`` in a process of its own: at most ``memory`` bytes of address space
    and ``timeout`` seconds (subprocess kills it and raises past that)."""
    done = subprocess.run(
        [sys.executable, "-c", BOUNDED_INGEST, str(source), str(memory)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def warnings_of(summary: dict) -> dict[str, str]:
    return {w["path"]: w["message"] for w in summary["warnings"]}


def graph(cypher: str) -> list[dict]:
    with ckg.open() as kg:
        return kg.store.run(cypher)


def aliases() -> set[str]:
    return {r["a"] for r in graph("MATCH (a:Artifact) RETURN a.alias AS a")}


def committed(repo: Path, files: dict[str, str], links: dict[str, str]) -> Path:
    """A real Git repository holding ``files`` and the symbolic ``links``, all committed."""
    write_tree(repo, files)
    for name, target in links.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, repo / name)
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "links")
    return repo


# --- links that leave the source ------------------------------------------------------------


def test_links_leaving_a_git_source_are_refused_and_named(ckg_home, tmp_path):
    private = write_tree(
        tmp_path / "private",
        {
            "results.csv": SECRET_ROWS,
            "_cm.yaml": (
                "alias: leaked\nuid: 0000000000000009\nautomation_alias: script\ntags: [secret]\n"
            ),
        },
    )
    (private / "results.csv").chmod(0o600)
    repo = committed(
        tmp_path / "repo",
        {"script/hello/_cm.yaml": HELLO},
        {
            "results.csv": str(private / "results.csv"),  # an absolute link
            "script/leak/_cm.yaml": "../../../private/_cm.yaml",  # a relative one
        },
    )
    summary = ingest_bounded(repo)
    assert summary["kind"] == "git"
    warned = warnings_of(summary)
    assert "leads out of the source" in warned["results.csv"]
    assert "leads out of the source" in warned["script/leak/_cm.yaml"]
    assert graph("MATCH (r:Result) RETURN count(r) AS n") == [{"n": 0}]
    assert aliases() == {"hello"}


@pytest.mark.parametrize("kind", ["git", "dir"])
def test_link_to_dev_zero_is_refused_not_read(ckg_home, tmp_path, kind):
    files, links = {"script/hello/_cm.yaml": HELLO}, {"results.csv": "/dev/zero"}
    if kind == "git":
        source = committed(tmp_path / "repo", files, links)
    else:
        source = write_tree(tmp_path / "folder", files)
        os.symlink("/dev/zero", source / "results.csv")
    summary = ingest_bounded(source, timeout=60)
    assert summary["kind"] == kind
    assert "leads out of the source" in warnings_of(summary)["results.csv"]
    assert aliases() == {"hello"}


def test_files_read_beside_a_unit_refuse_links_out(ckg_home, tmp_path):
    # Files no walk lists, opened by name from a unit: CK's info.json and alias file, an
    # MLPerf submission's accuracy and summary.
    submission = "closed/Acme"
    results = f"{submission}/results/box1/resnet50/Offline"
    repo = committed(
        tmp_path / "repo",
        {
            "package/lib-demo/.cm/meta.json": json.dumps({"tags": ["lib", "demo"]}),
            f"{submission}/systems/box1.json": json.dumps(
                {"submitter": "Acme", "system_name": "Box"}
            ),
            f"{results}/performance/run_1/mlperf_log_summary.txt": (
                "Scenario : Offline\nSamples per second: 1234.5\n"
            ),
        },
        {
            "package/lib-demo/.cm/info.json": "/dev/zero",
            "package/.cm/alias-a-lib-demo": "/dev/zero",
            f"{results}/accuracy/accuracy.txt": "/dev/zero",
        },
    )
    summary = ingest_bounded(repo, timeout=60)
    warned = warnings_of(summary)
    for link in ("package/lib-demo/.cm/info.json", f"{results}/accuracy/accuracy.txt"):
        assert "leads out of the source" in warned[link]
    assert "lib-demo" in aliases()
    assert summary["results"] == 1  # the throughput; the accuracy was not read


# --- special files --------------------------------------------------------------------------


def test_fifo_named_like_a_results_table_is_skipped(ckg_home, tmp_path):
    source = write_tree(tmp_path / "folder", {"script/hello/_cm.yaml": HELLO})
    os.mkfifo(source / "results.csv")
    os.mkfifo(source / "script" / "hello" / "README.md")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(source / "results.yaml"))
        summary = ingest_bounded(source, timeout=60)  # no writer ever opens the FIFOs
    warned = warnings_of(summary)
    assert "FIFO" in warned["results.csv"] and "FIFO" in warned["script/hello/README.md"]
    assert "socket" in warned["results.yaml"]
    assert aliases() == {"hello"}
    assert summary["results"] == 0


# --- links inside the source ----------------------------------------------------------------


def test_links_inside_a_git_source_are_followed(ckg_home, tmp_path):
    notebook = {
        "cells": [
            {
                "cell_type": "code",
                "metadata": {},
                "source": "import numpy",
                "outputs": [],
                "execution_count": None,
            }
        ],
        "metadata": {
            "kernelspec": {"name": "python3", "language": "python", "display_name": "Python 3"}
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    repo = committed(
        tmp_path / "repo",
        {
            "docs/README.md": "# Linked\n\nThe readme lives in docs.\n",
            "pyproject.toml": '[project]\nname = "linked"\nversion = "1.0"\n',
            "metas/hello.yaml": HELLO,
            "docker/Dockerfile.in": 'FROM python:3.12-slim\nCMD ["python"]\n',
            "notebooks/analysis.json": json.dumps(notebook),
        },
        {
            "README.md": "docs/README.md",
            "script/hello/_cm.yaml": "../../metas/hello.yaml",
            "Dockerfile": "docker/Dockerfile.in",
            "analysis.ipynb": "notebooks/analysis.json",
            "docs/again.md": "../README.md",  # a chain of two links, still inside
        },
    )
    summary = ingest_bounded(repo)
    assert summary["warnings"] == []
    found = {
        r["a"]: r
        for r in graph("MATCH (a:Artifact) RETURN a.alias AS a, a.kind AS kind, a.meta AS meta")
    }
    assert {"hello", "linked", "dockerfile", "analysis"} <= found.keys()
    assert json.loads(found["dockerfile"]["meta"])["stages"][0]["from"] == "python:3.12-slim"
    # a link re-pointed inside is read again on the next ingest: its target's bytes count
    os.remove(repo / "script/hello/_cm.yaml")
    write_tree(repo, {"metas/other.yaml": HELLO.replace("hello, demo", "hello, moved")})
    os.symlink("../../metas/other.yaml", repo / "script/hello/_cm.yaml")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "re-point")
    ingest_bounded(repo)
    [tags] = [r["t"] for r in graph("MATCH (a:Artifact {alias: 'hello'}) RETURN a.tags AS t")]
    assert "moved" in tags


def test_link_into_the_git_folder_is_refused(ckg_home, tmp_path):
    # A checkout's .git/config may hold the token of the URL it was fetched with.
    repo = committed(
        tmp_path / "repo", {"script/hello/_cm.yaml": HELLO}, {"README.md": ".git/config"}
    )
    summary = ingest_bounded(repo)
    assert "leads out of the source" in warnings_of(summary)["README.md"]
    assert aliases() == {"hello"}


# --- image archives -------------------------------------------------------------------------


def docker_save_naming(path: Path, entries: list[dict], cfg: bytes, layers: dict[str, bytes]):
    """A ``docker save`` tar whose manifest lists ``entries`` over one config and ``layers``."""
    files = {
        f"{sha(cfg)}.json": cfg,
        **layers,
        "manifest.json": json.dumps(entries).encode(),
        "repositories": b"{}",
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(tar_bytes(files))
    return path


def test_image_archive_naming_one_config_many_times_is_read_once(ckg_home, tmp_path):
    layer = tar_bytes({"opt/app/run.sh": b"echo hi\n"})
    cfg = json.loads(config([layer]))
    # 8 MB of history: each manifest entry parsed on its own costs some 60 MB
    cfg["history"] = [{"created_by": f"RUN step {i}"} for i in range(250_000)]
    cfg = json.dumps(cfg).encode()
    entry = {
        "Config": f"{sha(cfg)}.json",
        "RepoTags": ["ckg-test/amp:1"],
        "Layers": ["l1/layer.tar"],
    }
    root = write_tree(tmp_path / "src", {"script/hello/_cm.yaml": HELLO})
    docker_save_naming(root / "amp.tar", [entry] * 100, cfg, {"l1/layer.tar": layer})
    summary = ingest_bounded(root, memory=2 << 30, timeout=300)
    images = graph("MATCH (a:Artifact {kind: 'image'}) RETURN a.alias AS a, a.meta AS meta")
    assert [i["a"] for i in images] == ["amp"]
    assert json.loads(images[0]["meta"])["ref"] == "ckg-test/amp:1"
    assert "hello" in aliases() and summary["new"] == 2


def test_image_archive_reads_are_bounded_in_total(tmp_path, monkeypatch):
    # Each entry is another image (a longer list of one layer): no entry breaks the bound,
    # all of them together do.
    layer = tar_bytes({"opt/app/blob.bin": os.urandom(1 << 20)})
    cfg = config([layer])
    entries = [
        {
            "Config": f"{sha(cfg)}.json",
            "RepoTags": [f"ckg-test/grow:{n}"],
            "Layers": ["l1/layer.tar"] * n,
        }
        for n in range(1, 11)
    ]
    root = tmp_path / "src"
    docker_save_naming(root / "grow.tar", entries, cfg, {"l1/layer.tar": layer})
    monkeypatch.setenv("CKG_ARCHIVE_MAX_BYTES", str(20 << 20))
    records = container.read(root, "s")
    refs = [json.loads(n.props["meta"])["ref"] for n in records.nodes]
    assert refs and len(refs) < 10  # what fits in the bound is read, the rest is not
    [warning] = [w for w in records.warnings if "more than" in w.message]
    assert warning.path == "grow.tar" and str(20 << 20) in warning.message
