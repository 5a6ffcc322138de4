"""Store fixtures: a private CKG_HOME per test, and the same tests on both engines.

``store`` is parametrized over the embedded FalkorDB engine (its own server in the test's
home, stopped afterwards) and a real Neo4j (``neo4j_uri``, emptied before each test).
``CKG_DB`` is set to match, so CLI calls made inside a test reach the same graph.
"""

import os
import time
from pathlib import Path

import pytest

from ckg.api import KnowledgeGraph
from ckg.cli.resident import stop as stop_resident
from ckg.store import open_store
from ckg.store.server import stop_server

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def corpora() -> Path:
    """The shared real-world corpora (``$CKG_CORPORA`` or ``../shared/corpora``), or a skip.

    The path is resolved as ckg records a folder source's location: where ``shared`` is a link
    (a CI checkout beside a linked folder), tests compare the locations ckg prints with it."""
    path = Path(os.environ.get("CKG_CORPORA") or REPO.parent / "shared" / "corpora").resolve()
    if not (path / "cm4mlops").is_dir():
        pytest.skip(f"the shared corpora are not at {path} (set CKG_CORPORA)")
    return path


@pytest.fixture
def ckg_home(tmp_path, monkeypatch) -> Path:
    """A private, empty CKG_HOME; its embedded server (if any started) is stopped afterwards."""
    home = tmp_path / "ckg-home"
    home.mkdir()
    monkeypatch.setenv("CKG_HOME", str(home))
    monkeypatch.setenv("CKG_DB", "embedded")
    monkeypatch.delenv("NEO4J_URI", raising=False)
    # No command of the suite takes a minute: a reply later than two is a hung server,
    # which is then replaced (ckg.store.server._stop_if_hung) instead of hanging the run.
    monkeypatch.setenv("CKG_REPLY_TIMEOUT", "120")
    yield home
    stop_resident(home)
    stop_server(home)


@pytest.fixture(params=["embedded", "neo4j"])
def store(request, ckg_home, monkeypatch):
    """An empty graph store with its schema, on each engine in turn."""
    if request.param == "embedded":
        uri = "embedded"
    else:
        uri = request.getfixturevalue("neo4j_uri")
        monkeypatch.setenv("CKG_DB", uri)
    graph = open_store(uri, home=ckg_home)
    if request.param == "neo4j":
        graph.reset()
    graph.ensure_schema()
    yield graph
    graph.close()


@pytest.fixture
def kg(store, ckg_home) -> KnowledgeGraph:
    """A KnowledgeGraph over ``store`` with the test's private home."""
    return KnowledgeGraph(store, ckg_home)


def wait_gone(pid: int, seconds: float) -> bool:
    """Whether process ``pid`` is gone (or a zombie) now or within ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            os.kill(pid, 0)
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (ProcessLookupError, FileNotFoundError):  # gone, or went between the two
            return True
        if state == "Z":
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
