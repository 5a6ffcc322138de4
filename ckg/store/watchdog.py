"""Stops the embedded server of a home after a stretch with no command from any client, and
at once when the server is no longer the home's own.

Run by :func:`ckg.store.server.connect` as ``python -m ckg.store.watchdog HOME IDLE_SECONDS
SOCKET SERVER_PID``, in place of the shell that started the server in the background: the
watchdog is the server's parent, so that no server runs unwatched for a moment, whatever
happens to the process that started it. It waits for its server to listen on SOCKET (the
peer is SERVER_PID, and so is the pid file), takes what tied the server to its home then
(:func:`ckg.store.server.claim`), and polls the server's command counter and its blocked
clients (queries still running); its own poll is the only command it expects to see between
two polls. Every poll it also checks the claim again: a server whose home was deleted
(benchmarks delete their temporary homes) would otherwise hold its memory until the idle
timeout, and one whose socket or pid file was replaced serves nobody.
"""

import os
import signal
import sys
import time
from pathlib import Path

from ckg.core.errors import StoreUnavailable
from ckg.store.resp import Connection, ReplyError
from ckg.store.server import (
    HUNG_AFTER,
    PID_FILE,
    START_TIMEOUT,
    claim,
    forget_socket_folder,
    read_pid,
)

#: Most seconds between two polls, so that a server whose home is gone stops within it.
MAX_POLL = 1.0


def activity(conn: Connection) -> tuple[int, int]:
    """The server's ``total_commands_processed``, and its blocked clients (1 while it loads).

    A FalkorDB query runs on a worker thread with its client blocked, and counts as
    processed only when it ends: a long query shows as a blocked client meanwhile. Commands
    refused while the data loads are not counted: loading is busy too, not idle.
    """
    info = conn.call("INFO", "clients", "stats", "persistence")
    fields = dict(line.split(":", 1) for line in info.splitlines() if ":" in line)
    try:
        busy = int(fields["blocked_clients"]) or int(fields["loading"])
        return int(fields["total_commands_processed"]), busy
    except (KeyError, ValueError):
        raise StoreUnavailable(
            "INFO has no total_commands_processed, blocked_clients or loading"
        ) from None


def adopt(home: Path, sock: Path, pid: int) -> Connection | None:
    """A connection to server ``pid`` (a child of this process) once it listens on ``sock``;
    None once it has exited. A server that does not listen within
    :data:`~ckg.store.server.START_TIMEOUT` seconds is killed: nobody could use it, and
    nothing could stop it later.

    Nothing is sent before the peer is checked: ``sock`` may be someone else's until the
    server binds it, and a server that never does is ended at the deadline, since nobody can
    reach it; so it is at once when the home is gone and the socket cannot be reached. A home
    gone with the socket still there (outside it) is left to the caller, who shuts the server
    down through the connection.
    """
    deadline = time.monotonic() + START_TIMEOUT
    while os.waitpid(pid, os.WNOHANG) == (0, 0):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            break
        try:
            conn = Connection(str(sock), timeout=5.0)
        except StoreUnavailable:
            if not os.path.isdir(home):  # deleted, and the socket with it, or never reached
                _terminate(pid, home)
                break
            time.sleep(0.005)
            continue
        peer = conn.peer()
        if peer == (pid, os.getuid()) or (  # no peer credentials: the pid file must name it
            peer is None
            and os.lstat(sock).st_uid == os.getuid()
            and read_pid(home / PID_FILE) == pid
        ):
            conn.set_timeout(None)
            return conn
        # Another process listens there: the server replaces its socket when it binds, which
        # may come after its pid file; if it never does, the deadline ends it.
        conn.close()
        time.sleep(0.005)
    if not os.path.isdir(home):  # its socket may be left, and no start will reuse its folder
        forget_socket_folder(home, sock)
    return None


def _terminate(pid: int, home: Path) -> None:
    """End server ``pid``, a child of this process, and wait for it.

    With its home there, SIGTERM first: it saves what clients wrote, as on SHUTDOWN. A server
    refuses that while it cannot write its files (its home gone meanwhile): SIGKILL then,
    as at once when the home is gone.
    """
    if os.path.isdir(home):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + HUNG_AFTER
        while time.monotonic() < deadline:
            if os.waitpid(pid, os.WNOHANG) != (0, 0):
                return
            time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)  # not waited for yet: the pid is still its
    os.waitpid(pid, 0)


def watch(conn: Connection, home: Path, idle_seconds: float, held: tuple) -> None:
    """Return when the server on ``conn`` is gone, shutting it down first once idle for
    ``idle_seconds`` or once its home's :func:`~ckg.store.server.claim` is no longer ``held``,
    the claim the starter saw (the watchdog itself may start after a change)."""
    poll = max(0.2, min(MAX_POLL, idle_seconds / 5))
    sock = Path(conn.path)
    try:
        if claim(home, sock) != held:
            shut_down(conn, home, sock)
            return
        last, _ = activity(conn)
        idle_since = time.monotonic()
        while True:
            time.sleep(poll)
            if claim(home, sock) != held:
                shut_down(conn, home, sock)
                return
            try:
                now, blocked = activity(conn)
            except ReplyError:  # e.g. LOADING after a restart: busy, not idle
                idle_since = time.monotonic()
                continue
            if now - last > 1 or blocked:  # more than our own INFO, or a query running
                idle_since = time.monotonic()
            last = now
            if time.monotonic() - idle_since >= idle_seconds:
                shut_down(conn, home, sock)
                return
    except (StoreUnavailable, OSError):
        return  # the server went away: nothing left to watch


def shut_down(conn: Connection, home: Path, sock: Path) -> None:
    """Shut the server down (it flushes its append-only file first); with its home gone,
    also remove the private folder its socket was in, if that was outside the home."""
    try:
        reply = conn.pipeline([("SHUTDOWN",)])[0]
        if isinstance(reply, ReplyError):  # refused, e.g. the files cannot be written
            conn.pipeline([("SHUTDOWN", "NOSAVE", "FORCE")])
    except StoreUnavailable:
        pass  # the usual way: the server closed the connection on its way out
    if not os.path.isdir(home):
        forget_socket_folder(home, sock)


def main(home: Path, idle_seconds: float, sock: Path, pid: int) -> None:
    """Adopt server ``pid`` and watch it until it is gone (see the module's docstring)."""
    conn = adopt(home, sock, pid)
    if conn is None:
        return
    held = claim(home, sock)
    if held is None or held[-1] != pid:  # the home, socket or pid file went, or was replaced
        shut_down(conn, home, sock)
    else:
        watch(conn, home, idle_seconds, held)


if __name__ == "__main__":
    # No timeout on the connection: INFO waits behind a long query, and a watchdog that gave
    # up then would leave the server running for ever.
    home_arg, idle_arg, socket_arg, pid_arg = sys.argv[1:5]
    main(Path(home_arg), float(idle_arg), Path(socket_arg), int(pid_arg))
