"""Stops the embedded server of a home after a stretch with no command from any client.

Started detached by :func:`ckg.store.server.ensure_server` as
``python -m ckg.store.watchdog HOME IDLE_SECONDS``. It polls the server's command counter
and its blocked clients (queries still running); its own poll is the only command it
expects to see between two polls.
"""

import sys
import time
from pathlib import Path

from ckg.errors import StoreUnavailable
from ckg.store.resp import Connection, ReplyError
from ckg.store.server import socket_path


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


def watch(home: Path, idle_seconds: float) -> None:
    """Return when the server is gone, shutting it down first once idle for ``idle_seconds``."""
    poll = max(0.2, min(5.0, idle_seconds / 5))
    try:
        # No timeout: INFO waits behind a long query, and a watchdog that gave up then
        # would leave the server running for ever.
        conn = Connection(str(socket_path(home)), timeout=None)
        last, _ = activity(conn)
        idle_since = time.monotonic()
        while True:
            time.sleep(poll)
            try:
                now, blocked = activity(conn)
            except ReplyError:  # e.g. LOADING after a restart: busy, not idle
                idle_since = time.monotonic()
                continue
            if now - last > 1 or blocked:  # more than our own INFO, or a query running
                idle_since = time.monotonic()
            last = now
            if time.monotonic() - idle_since >= idle_seconds:
                conn.pipeline([("SHUTDOWN",)])
                return
    except (StoreUnavailable, OSError):
        return  # the server went away: nothing left to watch


if __name__ == "__main__":
    watch(Path(sys.argv[1]), float(sys.argv[2]))
