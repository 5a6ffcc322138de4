"""Stops the embedded server of a home after a stretch with no command from any client, and
at once when the server is no longer the home's own.

Started detached by :func:`ckg.store.server.connect` as
``python -m ckg.store.watchdog HOME IDLE_SECONDS SOCKET FD CLAIM``: FD is a connection to the
server that the starter verified and passed on, CLAIM what tied the server to its home then
(:func:`ckg.store.server.claim`). It polls the server's command counter and its blocked
clients (queries still running); its own poll is the only command it expects to see between
two polls. Every poll it also checks the claim again: a server whose home was deleted
(benchmarks delete their temporary homes) would otherwise hold its memory until the idle
timeout, and one whose socket or pid file was replaced serves nobody.
"""

import os
import sys
import time
from pathlib import Path

from ckg.core.errors import StoreUnavailable
from ckg.store.resp import Connection, ReplyError
from ckg.store.server import claim, forget_socket_folder

#: Most seconds between two polls, so that a server whose home is gone stops within it.
MAX_POLL = 1.0


def activity(conn: Connection) -> tuple[int, int]:
    """The server's ``total_commands_processed`` and ``blocked_clients``.

    A FalkorDB query runs on a worker thread with its client blocked, and counts as
    processed only when it ends: a long query shows as a blocked client meanwhile.
    """
    info = conn.call("INFO", "clients", "stats")
    fields = dict(line.split(":", 1) for line in info.splitlines() if ":" in line)
    try:
        return int(fields["total_commands_processed"]), int(fields["blocked_clients"])
    except (KeyError, ValueError):
        raise StoreUnavailable("INFO has no total_commands_processed or blocked_clients") from None


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


if __name__ == "__main__":
    home_arg, idle_arg, socket_arg, fd_arg, claim_arg = sys.argv[1:6]
    # No timeout: INFO waits behind a long query, and a watchdog that gave up then would
    # leave the server running for ever.
    watch(
        Connection(socket_arg, fileno=int(fd_arg)),
        Path(home_arg),
        float(idle_arg),
        tuple(int(n) for n in claim_arg.split(",")),
    )
