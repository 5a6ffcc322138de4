"""``ckg --version``, ``ckg db ...`` and raw ``ckg query`` through real CLI processes."""

import json
import os
import subprocess
import sys

from ckg import __version__
from ckg.store.server import stop_server


def ckg(*args, env=None):
    return subprocess.run(
        [sys.executable, "-c", "from ckg.cli import main; main()", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
    )


def test_version():
    done = ckg("--version")
    assert done.returncode == 0
    assert done.stdout.strip() == f"ckg {__version__}"


def test_db_status_works_with_no_configuration(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CKG_", "NEO4J_", "XDG_"))}
    env["HOME"] = str(tmp_path)
    done = subprocess.run(
        [sys.executable, "-c", "from ckg.cli import main; main()", "db", "status", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    home = tmp_path / ".local" / "share" / ".ckg"
    try:
        assert done.returncode == 0, done.stderr
        info = json.loads(done.stdout)
        assert info["engine"] == "falkordb"
        assert info["location"] == str(home)
        assert info["nodes"] == {}
    finally:
        stop_server(home)


def test_status_counts_labels_and_types(store):
    store.write("CREATE (:Artifact {uid: 'a'})-[:DEPENDS_ON]->(:Artifact {uid: 'b'})")
    done = ckg("db", "status")
    assert done.returncode == 0, done.stderr
    assert "(Artifact) 2" in done.stdout
    assert "[:DEPENDS_ON] 1" in done.stdout


def test_query_with_params_as_json_and_csv(store):
    store.upsert_nodes("Tag", [{"key": "b", "props": {}}, {"key": "a", "props": {}}])
    cypher = "MATCH (t:Tag) WHERE t.name <> $skip RETURN t.name AS name ORDER BY name"
    done = ckg("query", cypher, "--param", "skip=zzz", "--json")
    assert json.loads(done.stdout) == [{"name": "a"}, {"name": "b"}]
    done = ckg("query", cypher, "--param", "skip=a", "--csv")
    assert done.stdout.splitlines() == ["name", "b"]


def test_query_syntax_error_is_the_engines_message(store):
    done = ckg("query", "MATCH (n RETURN n")
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("ckg: error:")
    assert "Traceback" not in done.stderr


def test_malformed_param_is_a_usage_error(ckg_home):
    done = ckg("query", "RETURN 1", "--param", "novalue")
    assert done.returncode == 2
    assert "--param expects NAME=VALUE, got 'novalue'" in done.stderr


def test_reset_needs_yes(store):
    store.upsert_nodes("Tag", [{"key": "x", "props": {}}])
    refused = ckg("db", "reset")
    assert refused.returncode == 2
    assert "--yes" in refused.stderr
    assert store.get_node("Tag", "x") is not None
    assert ckg("db", "reset", "--yes").returncode == 0
    assert store.get_node("Tag", "x") is None


def test_unknown_database_scheme_is_a_usage_error(ckg_home):
    done = ckg("--db", "mysql://localhost", "db", "status")
    assert done.returncode == 2
    assert "unknown database 'mysql://localhost'" in done.stderr
