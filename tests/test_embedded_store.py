"""The embedded engine's own server: shared per home, outlives a call, stops when idle or told."""

import fcntl
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ckg.core.errors import StoreUnavailable
from ckg.store.embedded import EmbeddedStore
from ckg.store.resp import cypher_literal
from ckg.store.server import PID_FILE, read_pid, server_pid, socket_path, stop_server
from tests.fixtures_store import wait_gone


def ckg(*args, env=None, check=True):
    done = subprocess.run(
        [sys.executable, "-c", "from ckg.cli import main; main()", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
    )
    if check:
        assert done.returncode == 0, done.stderr
    return done


def test_server_outlives_the_cli_call_and_is_shared(ckg_home):
    ckg("db", "status")
    pid = server_pid(ckg_home)
    assert pid is not None
    ckg("query", "CREATE (:Tag {name: 'kept'})")
    assert server_pid(ckg_home) == pid  # the second call reused the first call's server
    out = ckg("query", "MATCH (t:Tag) RETURN t.name AS name", "--json").stdout
    assert '"kept"' in out


def test_db_stop_ends_the_server_at_once(ckg_home):
    ckg("db", "status")
    pid = server_pid(ckg_home)
    out = ckg("db", "stop").stdout
    assert f"stopped server {pid}" in out
    assert wait_gone(pid, 0)  # already gone when db stop returns
    assert "no server running" in ckg("db", "stop").stdout


def test_idle_server_stops_after_the_timeout(ckg_home):
    ckg("db", "status", env={"CKG_IDLE_TIMEOUT": "1.5"})
    pid = server_pid(ckg_home)
    assert pid is not None
    assert not wait_gone(pid, 0.5)  # still up well inside the timeout
    assert wait_gone(pid, 15)


def test_a_query_longer_than_the_idle_timeout_is_not_cut_off(ckg_home):
    env = {"CKG_IDLE_TIMEOUT": "1"}
    started = time.monotonic()
    done = ckg("query", "UNWIND range(1, 40000000) AS x RETURN count(x) AS n", "--json", env=env)
    assert time.monotonic() - started > 2  # the query outlasted the idle timeout
    assert '"n": 40000000' in done.stdout
    pid = _read_pid(ckg_home)
    assert wait_gone(pid, 15)  # and the server still stops once idle


def _read_pid(home):
    return int((home / "falkordb.pid").read_text())


def test_store_reconnects_after_the_server_stopped(ckg_home):
    store = EmbeddedStore(ckg_home)
    store.upsert_nodes("Tag", [{"key": "before", "props": {}}])
    stop_server(ckg_home)
    assert store.get_node("Tag", "before") == {"name": "before"}
    store.close()


def test_killed_server_keeps_writes_older_than_a_second(ckg_home):
    store = EmbeddedStore(ckg_home)
    store.upsert_nodes("Tag", [{"key": f"t{i}", "props": {}} for i in range(100)])
    time.sleep(1.5)  # appendfsync everysec
    os.kill(server_pid(ckg_home), signal.SIGKILL)
    store.close()
    reopened = EmbeddedStore(ckg_home)
    assert reopened.run("MATCH (t:Tag) RETURN count(t) AS n") == [{"n": 100}]
    reopened.close()


def test_a_server_that_stops_answering_is_replaced_and_the_query_answered(
    ckg_home, monkeypatch, capsys
):
    # A stopped process is what a hung FalkorDB looks like from outside: it holds its
    # socket and files, and answers nothing.
    from ckg.store import server

    monkeypatch.setenv("CKG_REPLY_TIMEOUT", "2")
    monkeypatch.setattr(server, "HUNG_AFTER", 1.0)
    store = EmbeddedStore(ckg_home)
    store.upsert_nodes("Tag", [{"key": "kept", "props": {}}])
    hung = server_pid(ckg_home)
    os.kill(hung, signal.SIGSTOP)
    try:
        assert store.get_node("Tag", "kept") == {"name": "kept"}  # from the new server
        assert server_pid(ckg_home) != hung and wait_gone(hung, 10)
        assert f"(pid {hung}) stopped answering; restarting it" in capsys.readouterr().err
    finally:
        if not wait_gone(hung, 0):
            os.kill(hung, signal.SIGKILL)
        store.close()


def test_a_slow_server_that_still_answers_is_left_alone(ckg_home, monkeypatch):
    from ckg.store import server

    monkeypatch.setattr(server, "HUNG_AFTER", 1.0)
    store = EmbeddedStore(ckg_home)
    store.upsert_nodes("Tag", [{"key": "kept", "props": {}}])
    pid = server_pid(ckg_home)
    server._stop_if_hung(ckg_home)  # it answers PING: not hung
    assert server_pid(ckg_home) == pid and not wait_gone(pid, 0)
    assert store.get_node("Tag", "kept") == {"name": "kept"}
    store.close()


def test_long_home_path_puts_the_socket_in_the_temp_folder(tmp_path, monkeypatch):
    home = tmp_path / ("deep-" * 25)
    monkeypatch.setenv("CKG_HOME", str(home))
    with EmbeddedStore(home) as store:
        store.upsert_nodes("Tag", [{"key": "x", "props": {}}])
        assert store.get_node("Tag", "x") == {"name": "x"}
    assert len(str(socket_path(home))) <= 100
    stop_server(home)


def test_a_command_that_ends_at_once_leaves_its_server_watched(tmp_path):
    """The console script starts the server while the CLI imports; a command that ends
    first (a mistyped one) must not cut that start short: a server left without its watchdog
    runs on after its home is deleted, for ever. The test holds the home's start lock, as
    another process starting the server does, until the command has said its error. The
    home is long, so that the socket is in a private folder outside it."""
    home = tmp_path / ("deep-" * 25)
    home.mkdir(mode=0o700)
    env = {**os.environ, "CKG_HOME": str(home), "CKG_DB": "embedded", "CKG_RESIDENT": "0"}
    env.pop("NEO4J_URI", None)
    console = Path(sys.executable).with_name("ckg")
    lock = os.open(home / "falkordb.lock", os.O_WRONLY | os.O_CREAT, 0o600)
    fcntl.flock(lock, fcntl.LOCK_EX)
    with subprocess.Popen([console, "versoin"], stderr=subprocess.PIPE, env=env) as cmd:
        said, deadline = b"", time.monotonic() + 120  # not to wait for ever on another message
        while b"No such command 'versoin'" not in said and time.monotonic() < deadline:
            if select.select([cmd.stderr], [], [], 1)[0]:
                if not (chunk := os.read(cmd.stderr.fileno(), 4096)):
                    break
                said += chunk
        os.close(lock)  # releases the lock: the start goes on, if the command still runs
        assert cmd.wait(timeout=120) == 2, said
    pid = read_pid(home / PID_FILE)
    assert pid is not None, "the command ended before the server started"
    folder = socket_path(home).parent
    assert_deleting_home_stops(home, pid, folder)
    assert folder != home


def assert_deleting_home_stops(home: Path, pid: int, folder: Path) -> None:
    """Delete ``home``: its server ``pid`` ends, and its watchdog removes the socket's
    ``folder`` after it. A server left running is killed (unwatched: nothing else would ever
    stop it)."""
    try:
        shutil.rmtree(home)
        assert wait_gone(pid, 30)
        deadline = time.monotonic() + 30
        while folder.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not folder.exists()
    finally:
        if not wait_gone(pid, 0):
            os.kill(pid, signal.SIGKILL)


#: A process that starts the server of the home in argv[1] and is killed (SIGKILL: nothing
#: of its own runs after) the first time it looks for the server once the server's pid file
#: exists: a point after the server exists and before it answers.
_KILLED_WHILE_STARTING = """
import os, signal, sys
from pathlib import Path
from ckg.store import server

home, own_server = Path(sys.argv[1]), server.own_server

def killed_once_started(at, **kwargs):
    if (at / server.PID_FILE).exists():
        os.kill(os.getpid(), signal.SIGKILL)
    return own_server(at, **kwargs)

server.own_server = killed_once_started
server.connect(home)
"""


def test_a_start_killed_before_the_server_answers_leaves_it_watched(tmp_path):
    """Whenever the process that starts the server is killed, the server has its watchdog:
    here it is killed before the server answers, and the server still stops once its home
    is deleted (a long home: the watchdog removes the socket's folder too)."""
    home = tmp_path / ("deep-" * 25)
    env = {**os.environ, "CKG_HOME": str(home)}
    done = subprocess.run(
        [sys.executable, "-c", _KILLED_WHILE_STARTING, str(home)], env=env, timeout=120
    )
    assert done.returncode == -signal.SIGKILL
    assert_deleting_home_stops(home, read_pid(home / PID_FILE), socket_path(home).parent)


def test_unwritable_home_is_one_clear_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    done = ckg("db", "status", env={"CKG_HOME": str(blocker / "home")}, check=False)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"ckg: error: CKG_HOME {blocker / 'home'} cannot be written: Not a directory"
    ]


def test_non_finite_floats_are_refused_by_name():
    with pytest.raises(Exception, match="cannot store nan"):
        cypher_literal(float("nan"))
    with pytest.raises(Exception, match="cannot store inf"):
        cypher_literal([["a", float("inf")]])  # a list goes by JSON where it can


def test_a_list_parameter_round_trips_verbatim(ckg_home):
    """A list with no map in it is written as JSON: every escape JSON writes must read back
    as the text it stands for (a control character's \\u escape does not in FalkorDB)."""
    texts = [
        "quote \" and ' both",
        "back\\slash and \\n not a newline, \\\\ two, \\u0041 not an A",
        "line one\nline two\r\n\ttabbed \b \f",
        "bell \x07 and unit separator \x1f",
        'a key": in a string',
        "non-ASCII: é 中文 🚀 \u2028",
    ]
    with EmbeddedStore(ckg_home) as store:
        for text in texts:  # one at a time: one text that needs the slow path takes the list
            rows = [[text, 1, 2.5, None, True, [text], {"k": text}]]
            assert store.run("UNWIND $rows AS row RETURN row", {"rows": rows}) == [{"row": rows[0]}]


def test_server_that_cannot_start_names_the_reason(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    (home / "appendonlydir").write_text("a file where the server wants a folder")
    with pytest.raises(StoreUnavailable, match="did not start|cannot start"):
        monkeypatch.setattr("ckg.store.server.START_TIMEOUT", 3.0)
        EmbeddedStore(home).run("RETURN 1")


def test_a_far_end_found_by_id_is_checked_by_key(ckg_home, monkeypatch):
    """The embedded engine writes results with their edges to nodes found by id, read once
    before (a deleted node's id may be a new node's): an id that names another node by the
    time of the write links nothing to that node."""
    from ckg.core.records import Edge, Node, Records

    results = [Node("Result", f"r{i}", {"uid": f"r{i}", "task": "AB"[i % 2]}) for i in range(100)]
    records = Records(
        nodes=[*results, Node("Task", "A", {"name": "A"}), Node("Task", "B", {"name": "B"})],
        edges=[Edge("FOR_TASK", "Result", n.key, "Task", n.props["task"]) for n in results],
    )
    store = EmbeddedStore(ckg_home)
    store.ensure_schema()
    found = store.node_ids

    def swapped(label, keys, batch_size):  # A's id is B's and B's is A's
        ids = found(label, keys, batch_size)
        return dict(zip(ids, reversed(ids.values()), strict=True)) if label == "Task" else ids

    monkeypatch.setattr(store, "node_ids", swapped)
    store.write_records(records)
    rows = store.run("MATCH (r:Result)-[:FOR_TASK]->(t:Task) RETURN r.task AS r, t.name AS t")
    store.close()
    assert store.seeks_by_id and [row for row in rows if row["r"] != row["t"]] == []


def test_a_far_end_whose_id_was_not_read_is_linked_by_key(ckg_home, monkeypatch):
    """The ids of the far ends are read while the edges are sorted into the results' rows:
    an edge to a node the read missed (here: task B's) goes with the edges written by key,
    and each result keeps its other edges."""
    from ckg.core.records import Edge, Node, Records

    results = [Node("Result", f"r{i}", {"uid": f"r{i}", "task": "AB"[i % 2]}) for i in range(100)]
    records = Records(
        nodes=[
            *results,
            Node("Task", "A", {"name": "A"}),
            Node("Task", "B", {"name": "B"}),
            Node("Metric", "f1", {"name": "f1"}),
        ],
        edges=[
            *(Edge("FOR_TASK", "Result", n.key, "Task", n.props["task"]) for n in results),
            *(Edge("OF_METRIC", "Result", n.key, "Metric", "f1") for n in results),
        ],
    )
    store = EmbeddedStore(ckg_home)
    store.ensure_schema()
    found = store.node_ids

    def missing_b(label, keys, batch_size):
        return {k: i for k, i in found(label, keys, batch_size).items() if k != "B"}

    monkeypatch.setattr(store, "node_ids", missing_b)
    store.write_records(records)
    rows = store.run("MATCH (r:Result)-[:FOR_TASK]->(t:Task) RETURN r.task AS r, t.name AS t")
    counts = store.counts()["relationships"]
    store.close()
    assert sorted((row["r"], row["t"]) for row in rows) == sorted((t, t) for t in "AB" * 50)
    assert counts == {"FOR_TASK": 100, "OF_METRIC": 100}
