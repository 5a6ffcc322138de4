"""Behaviour only the Neo4j engine has: connection errors, credentials, the driver's types,
schema commands, and the test launcher's own life cycle.

The behaviour both engines share is in ``test_store_contract.py``.
"""

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from ckg.core.errors import QueryError, StoreUnavailable, UsageError
from ckg.core.schema import NODE_KEYS
from ckg.store import open_store
from ckg.store.neo4j import Neo4jStore, plain
from tests.fixtures_neo4j import free_port, missing_tools, report_skip
from tests.tcp_proxy import Proxy

CLI = [sys.executable, "-c", "import sys; from ckg.cli import main; sys.argv[0] = 'ckg'; main()"]


@pytest.fixture
def neo4j(neo4j_uri):
    """A Neo4jStore on the session's server, emptied before the test."""
    with Neo4jStore(neo4j_uri) as store:
        store.reset()
        yield store


def _cli(*args: str, home) -> subprocess.CompletedProcess:
    env = {**os.environ, "CKG_HOME": str(home)}
    env.pop("CKG_DB", None)
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env=env, timeout=60)


# --- errors a user can cause --------------------------------------------------------------


def test_a_server_that_is_not_there_is_tried_once():
    """One clear line at once, not a minute of retries: a closed port is refused, and a
    port that hangs up is connected to once."""
    uri = f"bolt://127.0.0.1:{free_port()}"
    with pytest.raises(StoreUnavailable, match=rf"cannot reach Neo4j at {uri}: connection refused"):
        Neo4jStore(uri)
    proxy = Proxy(free_port())  # to a closed port: it hangs up on each connection
    try:
        with pytest.raises(StoreUnavailable, match="cannot reach Neo4j at bolt://127.0.0.1:"):
            Neo4jStore(f"bolt://127.0.0.1:{proxy.port}")
        assert proxy.connections == 1
    finally:
        proxy.close()


def test_wrong_password_is_refused_with_one_line(neo4j_uri, monkeypatch):
    if os.environ.get("CKG_TEST_NEO4J_URI") and not os.environ.get("NEO4J_PASSWORD"):
        pytest.skip("the external server in CKG_TEST_NEO4J_URI has no password to get wrong")
    monkeypatch.setenv("NEO4J_PASSWORD", os.environ["NEO4J_PASSWORD"] + "-wrong")
    # bolt:// to the proxy, which counts the connections: a routing URI would lead past it.
    server = urlsplit(neo4j_uri)
    proxy = Proxy(server.port, host=server.hostname)
    try:
        uri = f"bolt://127.0.0.1:{proxy.port}"
        refused = f"Neo4j at {uri} refused the credentials"
        with pytest.raises(StoreUnavailable, match=refused) as err:
            Neo4jStore(uri)
        assert proxy.connections == 1  # refused at once, not tried again
    finally:
        proxy.close()
    assert "\n" not in str(err.value)
    assert "NEO4J_PASSWORD" in str(err.value)


def test_missing_credentials_are_refused(neo4j_uri, monkeypatch):
    if os.environ.get("CKG_TEST_NEO4J_URI") and not os.environ.get("NEO4J_PASSWORD"):
        pytest.skip("the external server in CKG_TEST_NEO4J_URI may not need credentials")
    monkeypatch.delenv("NEO4J_USERNAME")
    monkeypatch.delenv("NEO4J_PASSWORD")
    with pytest.raises(StoreUnavailable, match="refused the credentials"):
        Neo4jStore(neo4j_uri)


def test_routing_uri_on_closed_port_prints_one_line(tmp_path):
    uri = f"neo4j://127.0.0.1:{free_port()}"
    done = _cli("--db", uri, "db", "status", home=tmp_path)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"ckg: error: cannot reach Neo4j at {uri}: Unable to retrieve routing information"
    ]


def test_malformed_uri_is_a_usage_error():
    with pytest.raises(UsageError, match="not a usable Neo4j URI 'bolt://127.0.0.1:notaport'"):
        open_store("bolt://127.0.0.1:notaport")


def test_unknown_host_is_unavailable():
    with pytest.raises(StoreUnavailable, match="cannot reach Neo4j at bolt://no-such-host.invalid"):
        Neo4jStore("bolt://no-such-host.invalid:7687")


def test_unknown_database_is_unavailable(neo4j_uri):
    with Neo4jStore(neo4j_uri, database="nosuchdb") as store:
        with pytest.raises(StoreUnavailable, match=f"Neo4j at {neo4j_uri}: .*nosuchdb"):
            store.run("RETURN 1 AS one")


def test_syntax_error_carries_the_engine_message(neo4j):
    with pytest.raises(QueryError, match="Invalid input 'RETRN'") as err:
        neo4j.run("RETRN 1")
    assert "\n" not in str(err.value)


def test_semantic_error_is_a_query_error(neo4j):
    with pytest.raises(QueryError, match="Variable `missing` not defined"):
        neo4j.run("RETURN missing")


def test_constraint_violation_is_a_query_error(neo4j):
    neo4j.ensure_schema()
    neo4j.write("CREATE (:Artifact {uid: $uid})", {"uid": "a1"})
    with pytest.raises(QueryError, match="already exists with label `Artifact`"):
        neo4j.write("CREATE (:Artifact {uid: $uid})", {"uid": "a1"})
    assert neo4j.run("MATCH (a:Artifact) RETURN count(a) AS n") == [{"n": 1}]


def test_cli_status_on_closed_port_prints_one_line_and_exits_1(tmp_path):
    uri = f"bolt://127.0.0.1:{free_port()}"
    done = _cli("--db", uri, "db", "status", home=tmp_path)
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.strip().splitlines() == [
        f"ckg: error: cannot reach Neo4j at {uri}: connection refused"
    ]


def test_cli_status_with_wrong_password_exits_1(neo4j_uri, tmp_path, monkeypatch):
    monkeypatch.setenv("NEO4J_PASSWORD", "not-" + os.environ.get("NEO4J_PASSWORD", "set"))
    done = _cli("--db", neo4j_uri, "db", "status", home=tmp_path)
    assert done.returncode == 1
    assert len(done.stderr.strip().splitlines()) == 1
    assert "refused the credentials" in done.stderr


def test_cli_status_reports_neo4j_counts(neo4j, neo4j_uri, tmp_path):
    neo4j.upsert_nodes("Paper", [{"key": "arxiv:1", "props": {"title": "t"}}])
    done = _cli("--db", neo4j_uri, "db", "status", "--json", home=tmp_path)
    assert done.returncode == 0, done.stderr
    assert '"engine": "neo4j"' in done.stdout
    assert '"Paper": 1' in done.stdout


# --- the engine's own behaviour -----------------------------------------------------------


def test_store_names_engine_and_uri(neo4j, neo4j_uri):
    assert (neo4j.engine, neo4j.location) == ("neo4j", neo4j_uri)


def test_routing_scheme_reaches_a_single_server(neo4j_uri):
    uri = neo4j_uri.replace("bolt://", "neo4j://", 1)
    with Neo4jStore(uri) as store:
        assert store.write("RETURN 2 AS two") == [{"two": 2}]


def test_ensure_schema_creates_one_unique_constraint_per_key(neo4j, monkeypatch):
    neo4j.ensure_schema()
    created = []
    with monkeypatch.context() as patch:  # set up already: one look, nothing created again
        patch.setattr(neo4j, "write", lambda cypher, *args: created.append(cypher))
        neo4j.ensure_schema()
    assert created == []
    rows = neo4j.run(
        "SHOW CONSTRAINTS YIELD name, type, labelsOrTypes, properties "
        "WHERE name STARTS WITH 'ckg_' RETURN labelsOrTypes[0] AS label, properties AS props, type"
    )
    found = {row["label"]: row["props"] for row in rows}
    assert found == {label: [key] for label, key in NODE_KEYS.items()}
    assert {row["type"] for row in rows} == {"UNIQUENESS"}


def test_rows_are_plain_data(neo4j):
    neo4j.write(
        "CREATE (:Paper {uid: 'p', tags: ['a', 'b']})-[:REPORTS {rank: 1}]->(:Result {uid: 'r'})"
    )
    row = neo4j.run(
        "MATCH path = (p:Paper)-[r:REPORTS]->(x:Result) "
        "RETURN p, r, x, path, [p, x] AS both, {paper: p} AS map, "
        "date('2024-05-01') AS day, datetime('2024-05-01T10:00:00Z') AS moment"
    )[0]
    assert row["p"] == {"uid": "p", "tags": ["a", "b"]}
    assert row["r"] == {"rank": 1}
    assert row["both"] == [{"uid": "p", "tags": ["a", "b"]}, {"uid": "r"}]
    assert row["map"] == {"paper": {"uid": "p", "tags": ["a", "b"]}}
    assert row["path"] == {
        "nodes": [{"uid": "p", "tags": ["a", "b"]}, {"uid": "r"}],
        "relationships": [{"rank": 1}],
    }
    assert row["day"] == "2024-05-01"
    assert row["moment"].startswith("2024-05-01T10:00:00")


def test_transaction_commits_at_the_end(neo4j):
    with neo4j.transaction() as tx:
        tx.run("CREATE (:Tag {name: $n})", {"n": "one"})
        assert tx.run("MATCH (t:Tag) RETURN t.name AS n") == [{"n": "one"}]
    assert neo4j.run("MATCH (t:Tag) RETURN t.name AS n") == [{"n": "one"}]


def test_transaction_rolls_back_on_exception(neo4j):
    with pytest.raises(RuntimeError, match="abandon"):
        with neo4j.transaction() as tx:
            tx.run("CREATE (:Tag {name: 'gone'})")
            raise RuntimeError("abandon")
    assert neo4j.run("MATCH (t:Tag) RETURN count(t) AS n") == [{"n": 0}]


def test_transaction_rolls_back_on_query_error(neo4j):
    with pytest.raises(QueryError, match="Invalid input"):
        with neo4j.transaction() as tx:
            tx.run("CREATE (:Tag {name: 'gone'})")
            tx.run("CREATE (:Tag {name: })")
    assert neo4j.run("MATCH (t:Tag) RETURN count(t) AS n") == [{"n": 0}]


def test_run_accepts_schema_commands_as_a_user_would_type(neo4j):
    neo4j.run("CREATE INDEX ckg_test_title IF NOT EXISTS FOR (p:Paper) ON (p.title)")
    names = [row["name"] for row in neo4j.run("SHOW INDEXES YIELD name")]
    neo4j.run("DROP INDEX ckg_test_title")
    assert "ckg_test_title" in names


def test_plain_keeps_primitives_and_converts_tuples():
    assert plain({"a": (1, "x"), "b": None, "c": 1.5}) == {"a": [1, "x"], "b": None, "c": 1.5}


# --- the test launcher ----------------------------------------------------------------------


def test_missing_tools_names_each_absent_tool(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert missing_tools() == ["java", "mvn"]


def test_skip_report_appends_the_reason(monkeypatch, tmp_path):
    report = tmp_path / "neo4j-skipped.txt"
    monkeypatch.setenv("CKG_NEO4J_SKIP_REPORT", str(report))
    report_skip("Neo4j tests need Java and Maven: mvn missing")
    assert report.read_text() == "skipped: Neo4j tests need Java and Maven: mvn missing\n"


def test_the_ckg_command_imports_the_driver_without_pandas_and_numpy(tmp_path):
    # The driver imports both whenever installed; the command asks nothing of them.
    code = (
        "import sys; from ckg.store import lean_neo4j_driver; lean_neo4j_driver(); "
        "import ckg.store.neo4j; print(sorted({'numpy', 'pandas', 'pyarrow'} & set(sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "[]", done.stderr
    # the console script takes that path, and still says what went wrong
    ckg = str(Path(sys.executable).with_name("ckg"))
    uri = f"bolt://127.0.0.1:{free_port()}"
    env = {**os.environ, "CKG_HOME": str(tmp_path)}
    done = subprocess.run([ckg, "--db", uri, "find", "--tags", "x"], capture_output=True,
                          text=True, env=env, timeout=60)  # fmt: skip
    assert done.returncode == 1 and f"cannot reach Neo4j at {uri}" in done.stderr
