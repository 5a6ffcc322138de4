"""``ckg ingest``, ``find``, ``show``, ``deps`` on the command line (embedded engine)."""

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from ckg.cli import load_commands
from ckg.cli.app import app
from tests.test_ingest import APP, PY, TREE, write_tree

load_commands()  # every command on app, as `ckg --help` lists them


@pytest.fixture
def tiny(tmp_path, ckg_home):
    return write_tree(tmp_path / "tiny", TREE)


def cli(*args: str):
    result = CliRunner().invoke(app, ["--db", "embedded", *args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def test_ingest_json_then_find_show_deps(tiny):
    result = cli("ingest", str(tiny), "--json", "--name", "tiny")
    assert result.exit_code == 0, result.output
    [summary] = json.loads(result.output)
    assert (summary["new"], summary["artifacts"], summary["missing"]) == (5, 5, 1)
    assert summary["name"] == "tiny" and summary["warnings"] == []

    found = json.loads(cli("find", "--tags", "get,python3", "--json").output)
    assert [a["uid"] for a in found] == [PY]
    text = cli("find", "--tags", "get", "--kind", "script").output
    assert text.splitlines()[0].split()[:2] == ["get-python-alt", "aaaaaaaaaaaaaaa4"]
    none = cli("find", "--tags", "nothing-has-this").output
    assert "(no artifacts match 'nothing-has-this')" in none

    shown = cli("show", "app-hello").output
    assert f"uid {APP}" in shown and "get,zlib" in shown and "detect-os" in shown
    assert json.loads(cli("show", PY, "--json").output)["artifact"]["alias"] == "get-python3"

    tree = cli("deps", "app-hello").output
    assert "missing" in tree and "get-python3 (script)" in tree and "_cuda" in tree
    reverse = cli("deps", "get-python3", "--reverse", "--json").output
    assert [c["alias"] for c in json.loads(reverse)["children"]] == ["app-hello"]


def test_ingest_table_lists_counts_warnings_and_unresolved(tiny):
    write_tree(tiny, {"script/bad/_cm.json": '{"alias": "bad",\n'})
    result = cli("ingest", str(tiny))
    out = result.stdout
    assert "new / changed / removed / unchanged" in out and "5 / 0 / 0 / 0" in out
    # Warnings on stderr: stdout is the command's result.
    assert "warning: script/bad/_cm.json:2: invalid JSON" in result.stderr
    assert "warning:" not in out
    assert "missing   app-hello: tags get,zlib" in out
    assert "ambiguous app-hello: tags get -> get-python-alt, get-python3" in out
    again = cli("ingest", str(tiny)).output
    assert "0 / 0 / 0 / 5" in again and "(nothing written)" in again


def run_ckg(*args: str) -> subprocess.CompletedProcess:
    code = "from ckg.cli import main; main()"
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120
    )


def test_errors_are_one_line_with_exit_codes(tiny):
    write_tree(tiny, {"script/bad/_cm.yaml": "tags: [\n"})
    strict = run_ckg("ingest", str(tiny), "--strict")
    assert strict.returncode == 1
    assert "warning: script/bad/_cm.yaml:2: invalid YAML" in strict.stderr
    assert strict.stderr.strip().splitlines()[-1].endswith("with --strict; nothing written")
    missing = run_ckg("ingest", str(tiny / "nowhere"))
    assert (missing.returncode, missing.stderr.count("\n")) == (2, 1)
    assert "does not exist" in missing.stderr
    bad = run_ckg("ingest", str(tiny), "--format", "cmx")
    assert bad.returncode == 2 and "unknown format 'cmx'" in bad.stderr
    show = run_ckg("show", "nope")
    assert show.returncode == 2 and "no artifact with alias or uid 'nope'" in show.stderr
    run_ckg("db", "stop")
