"""Attacks on the store, its home and its trust list, each tried for real: planted servers on
real Unix sockets, real embedded servers and watchdogs, real ``ckg`` processes, both engines
where a store is involved."""

import hashlib
import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from pathlib import Path

import pytest

from ckg.core.errors import InvalidInput, RunFailed
from ckg.run.trust import TRUST_FILE, trust_source
from ckg.store.embedded import EmbeddedStore
from ckg.store.server import PID_FILE, RUN_DIR_FILE, server_pid, socket_path, stop_server

LONG = "deep-" * 25  # a home this deep is too long for a Unix socket path
#: How long a server that lost its home, pid file or socket may take to stop: a hang guard,
#: not a speed (the watchdog looks every second or less), ten times shorter than the idle
#: timeout (600 s), so that one stopped by that is not taken for one that noticed.
NOTICED_S = 60


def ckg(*args, env=None, umask=0o022):
    """A real ``ckg`` process, started with the umask most users have."""
    return subprocess.run(
        [sys.executable, "-c", "from ckg.cli import main; main()", *args],
        capture_output=True,
        env={**os.environ, **(env or {})},
        timeout=120,
        umask=umask,
    )


def gone(pid: int, seconds: float) -> bool:
    """True once ``pid`` exited (a zombie counts) within ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return True
        if state == "Z":
            return True
        time.sleep(0.05)
    return False


def dead_pid() -> int:
    """The pid of a process that has exited, as a stale pid file would hold."""
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


class PlantedServer:
    """A server someone else started on a Unix socket: it answers ``+PONG`` to anything and
    keeps every byte it was sent."""

    def __init__(self, path: Path):
        self.path = path
        self.connections = 0
        self.received = b""
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(str(path))
        self._listener.listen()
        self._listener.settimeout(0.1)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            self.connections += 1
            conn.settimeout(0.5)
            try:
                while data := conn.recv(65536):
                    self.received += data
                    conn.sendall(b"+PONG\r\n")
            except OSError:
                pass
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._listener.close()


@pytest.fixture
def planted():
    servers = []
    yield lambda path: servers.append(PlantedServer(path)) or servers[-1]
    for server in servers:
        server.close()


def private(path: Path) -> bool:
    return not stat.S_IMODE(os.stat(path).st_mode) & 0o077


def stop_and_clean(home: Path) -> None:
    """Stop the server of a long ``home`` and remove the private folder its socket was in."""
    stop_server(home)
    try:
        remove_socket_folder(Path((home / RUN_DIR_FILE).read_text().strip()))
    except OSError:
        pass


def remove_socket_folder(folder: Path) -> None:
    """Remove ``folder`` only if it is one that ckg made with ``mkdtemp(prefix="ckg-")``:
    whatever the code under test reports, a shared folder such as the temp folder stays."""
    if folder.name.startswith("ckg-") and folder.is_dir() and not folder.is_symlink():
        shutil.rmtree(folder)


def write_and_read(home: Path) -> list[dict]:
    with EmbeddedStore(home) as store:
        store.upsert_nodes("Tag", [{"key": "mine", "props": {}}])
        return store.run("MATCH (t:Tag) RETURN t.name AS name")


# --- 1. another local user takes over the store ------------------------------------------


def test_takeover_via_the_old_predictable_temp_socket_finds_nobody_listening(
    tmp_path, planted, monkeypatch
):
    home = tmp_path / LONG
    monkeypatch.setenv("CKG_HOME", str(home))
    digest = hashlib.sha256(str(home.resolve()).encode()).hexdigest()[:16]
    old_path = Path(tempfile.gettempdir()) / f"ckg-{digest}.sock"
    intruder = planted(old_path)
    try:
        assert write_and_read(home) == [{"name": "mine"}]
        sock = socket_path(home)
        assert intruder.connections == 0  # ckg never looked there
        assert sock != old_path and len(str(sock)) <= 100
        assert sock.parent.name.startswith("ckg-") and sock.parent != Path(tempfile.gettempdir())
        assert stat.S_IMODE(os.stat(sock.parent).st_mode) == 0o700
        assert os.stat(sock.parent).st_uid == os.getuid()
        assert (home / RUN_DIR_FILE).read_text().strip() == str(sock.parent)
    finally:
        stop_and_clean(home)
        old_path.unlink(missing_ok=True)


def test_takeover_via_a_socket_planted_where_ckg_looks_is_never_sent_a_command(ckg_home, planted):
    # What an idle stop leaves: no socket, a pid file naming a process that is gone.
    (ckg_home / PID_FILE).write_text(f"{dead_pid()}\n")
    intruder = planted(ckg_home / "falkordb.sock")
    assert write_and_read(ckg_home) == [{"name": "mine"}]
    assert intruder.connections >= 1 and intruder.received == b""
    assert server_pid(ckg_home) not in (None, os.getpid())


def test_takeover_via_a_run_folder_others_can_write_is_refused(tmp_path, planted):
    home = tmp_path / LONG
    write_and_read(home)
    folder = socket_path(home).parent
    assert folder.name.startswith("ckg-")  # a folder of its own, never the shared temp folder
    stop_server(home)
    assert not folder.exists()  # a stopped server leaves no folder behind
    folder.mkdir(mode=0o777)  # the recorded name, made again by someone who could enter it
    folder.chmod(0o777)
    intruder = planted(folder / "falkordb.sock")
    try:
        assert write_and_read(home) == [{"name": "mine"}]
        assert intruder.connections == 0
        assert socket_path(home).parent != folder and private(socket_path(home).parent)
    finally:
        stop_and_clean(home)
        remove_socket_folder(folder)


def test_stale_pid_is_never_signalled(ckg_home):
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        (ckg_home / PID_FILE).write_text(f"{sleeper.pid}\n")
        assert stop_server(ckg_home) is None
        assert sleeper.poll() is None
    finally:
        sleeper.send_signal(signal.SIGKILL)
        sleeper.wait()


def test_home_of_another_user_is_refused(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root to give the home to another user")
    home = tmp_path / "theirs"
    home.mkdir(mode=0o755)
    os.chown(home, 65534, 65534)
    done = ckg("db", "status", env={"CKG_HOME": str(home), "CKG_DB": "embedded"})
    assert done.returncode == 1
    assert done.stderr.decode().splitlines() == [
        f"ckg: error: {home} belongs to another user (uid 65534), not to you"
    ]
    assert not (home / "falkordb.sock").exists()


# --- 8. the data is readable by every local user -----------------------------------------


def _workflow_tar(tmp_path: Path, name: str, script: str) -> Path:
    """A tar of a ckg.yaml workflow ``touch-out`` whose step runs ``script`` (Python)."""
    folder = tmp_path / f"src-{name}"
    folder.mkdir()
    (folder / "ckg.yaml").write_text(
        'alias: touch-out\nuid: wf-touch-out\nrun: "{python} {artifact_dir}/step.py"\n'
    )
    (folder / "step.py").write_text(script)
    archive = tmp_path / "workflow.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(folder, arcname="workflow")
    return archive


def test_home_is_private_after_an_ingest_and_a_run(ckg_home, tmp_path):
    ckg_home.chmod(0o755)  # as an older ckg left it
    archive = _workflow_tar(tmp_path, "a", "open('out.txt', 'w').write('x')\n")
    for args in (["ingest", str(archive)], ["trust", str(archive)], ["run", "touch-out"]):
        done = ckg(*args)
        assert done.returncode == 0, done.stderr.decode()
    names, user_files = set(), []
    for folder, dirs, files in os.walk(ckg_home):
        for name in dirs + files:
            path = Path(folder) / name
            names.add(name)
            if name == "out.txt":
                user_files.append(path)
                continue
            assert private(path), f"{path} is {oct(os.stat(path).st_mode)}"
    assert private(ckg_home)
    assert {"runs.jsonl", TRUST_FILE, "manifests", "appendonlydir", "ckg-run.log"} <= names
    # The step itself wrote with the user's umask, as it would have without ckg.
    assert [stat.S_IMODE(os.stat(p).st_mode) for p in user_files] == [0o644]


# --- 11. a server outlives its home --------------------------------------------------------


def _started(home: Path) -> int:
    write_and_read(home)
    return server_pid(home)


def test_server_whose_home_is_deleted_stops_at_once(tmp_path):
    home = tmp_path / "bench-home"
    pid = _started(home)
    shutil.rmtree(home)
    assert gone(pid, NOTICED_S)


def test_server_of_a_long_home_that_is_deleted_stops_and_leaves_no_folder(tmp_path):
    home = tmp_path / LONG
    pid = _started(home)
    folder = socket_path(home).parent
    shutil.rmtree(home)
    assert gone(pid, NOTICED_S)
    deadline = time.monotonic() + NOTICED_S
    while folder.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not folder.exists()


#: Run as another user: a folder as ckg names its socket folders, private to that user,
#: holding a socket nothing listens on any more (what a killed server of theirs leaves).
_THEIR_DEAD_SOCKET_FOLDER = """
import socket, tempfile
folder = tempfile.mkdtemp(prefix="ckg-", dir=tempfile.gettempdir())
socket.socket(socket.AF_UNIX).bind(folder + "/falkordb.sock")
print(folder)
"""


def test_folders_of_killed_servers_go_at_the_next_start_and_no_one_elses(tmp_path, other_user):
    """A killed server leaves its socket's folder with a dead socket, one of a deleted home
    that stopped when idle an empty folder; the next start of a long home removes such
    folders of this user's, and leaves the folder of a server that runs, an empty one just
    made (another start's), another user's, and what another user's link leads to."""
    killed, live, new = (tmp_path / name / LONG for name in ("killed", "live", "new"))
    _started(live)
    running = socket_path(live).parent
    pid = _started(killed)
    stale = socket_path(killed).parent
    os.kill(pid, signal.SIGKILL)
    assert gone(pid, NOTICED_S)
    theirs = Path(other_user.python(_THEIR_DEAD_SOCKET_FOLDER).stdout.strip())
    victim = tmp_path / "victim"  # private, holding only a dead socket: stale but for its name
    victim.mkdir(mode=0o700)
    socket.socket(socket.AF_UNIX).bind(str(victim / "falkordb.sock"))
    link = Path(tempfile.gettempdir()) / f"ckg-link-{os.getpid()}"
    emptied, made = (Path(tempfile.mkdtemp(prefix="ckg-")) for _ in range(2))
    os.utime(emptied, (time.time() - 3600,) * 2)
    other_user.run(["ln", "-s", str(victim), str(link)], check=True)
    try:
        assert theirs.name.startswith("ckg-")  # stale is not checked: a test beside may sweep
        _started(new)
        assert not stale.exists() and not emptied.exists() and made.exists()
        assert (running / "falkordb.sock").exists() and write_and_read(live)
        assert (theirs / "falkordb.sock").exists()
        assert (victim / "falkordb.sock").exists() and link.is_symlink()
    finally:
        for home in (killed, live, new):
            stop_and_clean(home)
        shutil.rmtree(theirs, ignore_errors=True)
        remove_socket_folder(made)
        link.unlink(missing_ok=True)


def test_server_whose_pid_file_is_no_longer_its_own_stops_at_once(ckg_home):
    pid = _started(ckg_home)
    (ckg_home / PID_FILE).write_text(f"{dead_pid()}\n")
    assert gone(pid, NOTICED_S)


def test_server_whose_socket_is_no_longer_its_own_stops_at_once(ckg_home, planted):
    pid = _started(ckg_home)
    (ckg_home / "falkordb.sock").unlink()
    planted(ckg_home / "falkordb.sock")
    assert gone(pid, NOTICED_S)


# --- 12. values that used to end in a traceback, or a server without a watchdog ------------


@pytest.mark.parametrize("value", ["abc", "nan", "inf", "-5", "0"])
def test_invalid_idle_timeout_is_one_line_and_starts_no_server(ckg_home, value):
    done = ckg("db", "status", env={"CKG_IDLE_TIMEOUT": value})
    assert done.returncode == 2
    assert done.stderr.decode().splitlines() == [
        f"ckg: error: CKG_IDLE_TIMEOUT={value!r} is not a number of seconds above 0"
    ]
    assert server_pid(ckg_home) is None


def test_valid_idle_timeout_starts_a_watchdog(ckg_home):
    assert ckg("db", "status", env={"CKG_IDLE_TIMEOUT": "30"}).returncode == 0
    watchdogs = [
        cmdline
        for cmdline in (_cmdline(p) for p in os.listdir("/proc") if p.isdigit())
        if "ckg.store.watchdog" in cmdline and str(ckg_home) in cmdline
    ]
    assert [cmdline.split()[3:5] for cmdline in watchdogs] == [[str(ckg_home), "30.0"]]


def _cmdline(pid: str) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except (OSError, UnicodeDecodeError):
        return ""


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (
            [b"query", b"RETURN $x AS x", b"--param", b"x=" + b"[" * 50000 + b"]" * 50000],
            "--param x: nested deeper than 100 levels",
        ),
        (
            [b"query", b"RETURN $x AS x", b"--param", b"x=" + b"[" * 101 + b"]" * 101],
            "--param x: nested deeper than 100 levels",
        ),
        (
            [b"query", b"RETURN $x AS x", b"--param", b"x=\xff\xfe"],
            "'x=\\udcff\\udcfe' is not valid UTF-8 text",
        ),
        (
            [b"query", b"RETURN $x AS x", b"--param", b'x=["\\udcff"]'],
            "--param x: '\\udcff' is not valid UTF-8 text",
        ),
        ([b"find", b"--tags", b"get,\xff"], "'get,\\udcff' is not valid UTF-8 text"),
        (
            [b"query", b"RETURN 1 AS x", b"--param", b"MATCH (n) DETACH DELETE n //=1"],
            "not a valid query parameter name: 'MATCH (n) DETACH DELETE n //'",
        ),
    ],
    ids=["deep-json", "depth-101", "non-utf8", "escaped-surrogate", "non-utf8-tags", "cypher-name"],
)
def test_hostile_cli_values_are_one_line(store, args, error):
    store.upsert_nodes("Tag", [{"key": "kept", "props": {}}])
    done = subprocess.run(
        [sys.executable, "-c", "from ckg.cli import main; main()", *args],
        capture_output=True,
        timeout=120,
    )
    assert done.stderr.decode().splitlines() == [f"ckg: error: {error}"]
    assert done.returncode in (1, 2)
    assert store.run("MATCH (t:Tag) RETURN t.name AS name") == [{"name": "kept"}]


def test_param_nested_as_deep_as_allowed_comes_back(store):
    deep = "[" * 100 + "]" * 100
    done = ckg("query", "RETURN $x AS x", "--param", f"x={deep}", "--json")
    assert done.returncode == 0, done.stderr.decode()
    assert "".join(done.stdout.decode().split()) == f'[{{"x":{deep}}}]'


# --- 9. query parameter names written unescaped --------------------------------------------


@pytest.mark.parametrize(
    "name", ["MATCH (n) DETACH DELETE n //", "x=1 MATCH (n) DETACH DELETE n //", "1x", "", "x\n"]
)
def test_cypher_injection_through_a_parameter_name_is_refused(store, name):
    store.upsert_nodes("Tag", [{"key": f"t{i}", "props": {}} for i in range(3)])
    with pytest.raises(
        InvalidInput, match=re.escape(f"not a valid query parameter name: {name!r}")
    ):
        store.run("MATCH (t:Tag) RETURN count(t) AS n", {name: 1})
    with pytest.raises(InvalidInput, match="not a valid query parameter name"):
        store.write_many([("MATCH (t:Tag) RETURN count(t) AS n", {name: 1})])
    assert store.run("MATCH (t:Tag) RETURN count(t) AS n") == [{"n": 3}]


# --- 10. trust follows a location, not content --------------------------------------------


def test_trusted_archive_replaced_by_other_bytes_needs_trust_again(kg, tmp_path):
    marker = tmp_path / "second-content-ran"
    archive = _workflow_tar(tmp_path, "a", "open('out.txt', 'w').write('first')\n")
    kg.ingest(str(archive))
    trust_source(kg.store, kg.home, str(archive))
    assert kg.run("touch-out").runs[0].status == "ok"
    first = hashlib.sha256(archive.read_bytes()).hexdigest()

    archive.unlink()
    _workflow_tar(tmp_path, "b", f"open({str(marker)!r}, 'w').write('second')\n")
    second = hashlib.sha256(archive.read_bytes()).hexdigest()
    kg.ingest(str(archive))
    with pytest.raises(
        RunFailed,
        match=f"changed since it was trusted \\(content {first[:12]} then, {second[:12]} now\\)",
    ):
        kg.run("touch-out")
    assert not marker.exists()

    trust_source(kg.store, kg.home, str(archive))
    assert kg.run("touch-out").runs[0].status == "ok"
    assert marker.read_text() == "second"


def test_trust_recorded_without_content_is_not_enough(kg, tmp_path):
    archive = _workflow_tar(tmp_path, "a", "open('out.txt', 'w').write('x')\n")
    kg.ingest(str(archive))
    uid = trust_source(kg.store, kg.home, str(archive))[0]["uid"]
    (kg.home / TRUST_FILE).write_text(f'{{"{uid}": "{archive}"}}')  # an older ckg's entry
    with pytest.raises(RunFailed, match="trusted before ckg recorded what it trusted"):
        kg.run("touch-out")


# --- 11. a graph others can write cannot change what runs -----------------------------------


def test_a_meta_changed_in_the_graph_does_not_run(kg, tmp_path):
    marker = tmp_path / "planted-command-ran"
    archive = _workflow_tar(tmp_path, "a", "open('out.txt', 'w').write('first')\n")
    kg.ingest(str(archive))
    trust_source(kg.store, kg.home, str(archive))
    assert kg.run("touch-out").runs[0].status == "ok"
    # someone with write access to the shared graph replaces the trusted workflow's command
    [row] = kg.store.run("MATCH (a:Artifact {alias: 'touch-out'}) RETURN a.meta AS meta")
    meta = json.loads(row["meta"])
    meta["run"] = f"touch {marker}"
    kg.store.run("MATCH (a:Artifact {alias: 'touch-out'}) SET a.meta = $meta",
                 {"meta": json.dumps(meta)})  # fmt: skip
    with pytest.raises(RunFailed, match="touch-out: its meta in the graph is not the one in "
                                        f".*ckg.yaml; `ckg ingest {archive}` reads the source "
                                        "again"):  # fmt: skip
        kg.run("touch-out")
    assert not marker.exists()
    kg.ingest(str(archive))  # read whole, not skipped as unchanged: its own meta is back
    assert kg.run("touch-out").runs[0].status == "ok" and not marker.exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give a folder to another user")
def test_a_folder_of_another_user_does_not_run_as_ones_own(kg, tmp_path):
    folder = tmp_path / "theirs"
    folder.mkdir()
    (folder / "ckg.yaml").write_text("alias: theirs\nrun: 'echo hi'\n")
    kg.ingest(str(folder))
    assert kg.run("theirs").runs[0].status == "ok"  # the user's own folder runs
    os.chown(folder, 65534, 65534)  # now nobody's
    with pytest.raises(RunFailed, match=f"theirs comes from {folder}, which is not yours "
                                        f"alone: {folder} is owned by uid 65534; ckg runs "
                                        "your own folders"):  # fmt: skip
        kg.run("theirs")
    assert kg.run("theirs", trust=True).runs[0].status == "ok"  # this once, when told to
