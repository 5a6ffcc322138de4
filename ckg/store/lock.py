"""The store's ingest lock, one way per engine (:meth:`ckg.store.GraphStore.ingest_lock`).

The lock lives where the store lives, so that every writer of the store shares it (why
ingests need it: :mod:`ckg.ingest.write`):

- embedded FalkorDB (one server per ``CKG_HOME``, only processes of that machine reach it):
  ``fcntl.flock`` on ``CKG_HOME/ingest.lock`` (:func:`file_lock`). The kernel drops the
  lock when its holder exits, however it exits; the holder's pid is written in the file for
  the wait message.
- Neo4j (one server, clients on any number of machines): a file lock would only exclude
  processes of one machine, so the lock is in the graph (:func:`graph_lock`). The holder
  opens a transaction and writes the ``IngestLock {uid: "ingest"}`` node (unique by the
  constraint :data:`LOCK_CONSTRAINT`, which the engine makes), and keeps
  that transaction open while it ingests: the server keeps the node's write lock until the
  transaction ends, and makes any other writer of that node wait. When the holder dies,
  its connection closes and the server rolls the transaction back, which frees the lock;
  there is no lease to expire under a slow holder. A second node,
  ``IngestLock {uid: "ingest:holder"}``, carries the holder's pid and host for the wait
  message. Should the server end the lock's transaction early (a
  ``db.transaction.timeout``, a restart), :meth:`Held.confirm` fails, so that the caller
  can leave its work marked incomplete.
"""

import fcntl
import os
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ckg.core.errors import CkgError, StoreUnavailable

#: The embedded engine's lock file, in its ``CKG_HOME``.
LOCK_FILE = "ingest.lock"
#: Seconds a Neo4j ingest waits for the lock before it says who holds it.
NOTICE_AFTER = 0.5
#: The node whose write lock is the ingest lock, and the node naming its holder.
LOCK_KEY = "ingest"
HOLDER_KEY = "ingest:holder"
# Not "ckg_...": those names are the graph model's constraints (ckg.core.schema.NODE_KEYS).
LOCK_CONSTRAINT = "ingest_lock_uid"


class Held:
    """The ingest lock, held: :meth:`confirm` checks it is still held.

    ``reentered`` is true in a nested :func:`ckg.ingest.write.write_lock` of a thread that
    holds it already.
    """

    reentered = False

    def confirm(self) -> None:
        """Raise :class:`StoreUnavailable` if the lock was lost (a file lock never is)."""


def waiting(where: str, pid, host: str | None = None) -> str:
    """The line telling why a writer waits: ``waiting for another ingest into WHERE (pid N)``."""
    holder = f"pid {pid or '?'}" + (f" on {host}" if host else "")
    return f"waiting for another ingest into {where} ({holder}) ..."


@contextmanager
def file_lock(home: Path, tell: Callable[[str], None]) -> Iterator[Held]:
    """Hold ``fcntl.flock`` on ``home/ingest.lock`` for the block.

    Parameters
    ----------
    home : Path
        The embedded engine's ``CKG_HOME``.
    tell : callable
        Called once with :func:`waiting`'s line when another process holds the lock.

    Raises
    ------
    StoreUnavailable
        The lock file cannot be opened (or is a link).
    """
    try:
        fd = os.open(home / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    except OSError as exc:
        raise StoreUnavailable(f"cannot open {home / LOCK_FILE}: {exc.strerror}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            tell(waiting(str(home), os.pread(fd, 32, 0).decode(errors="replace").strip()))
            fcntl.flock(fd, fcntl.LOCK_EX)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield Held()
    finally:
        os.close(fd)  # releases the lock


class _GraphHeld(Held):
    def __init__(self, tx, token: str, where: str):
        self.tx, self.token, self.where = tx, token, where

    def confirm(self) -> None:
        try:
            rows = self.tx.run(
                "MATCH (l:IngestLock {uid: $k}) RETURN l.token AS token", {"k": LOCK_KEY}
            )
        except CkgError:
            rows = None
        if not rows or rows[0]["token"] != self.token:
            raise StoreUnavailable(
                f"the ingest lock on {self.where} was lost (its transaction ended); "
                "the source is left incomplete: ingest it again"
            )


@contextmanager
def graph_lock(store, tell: Callable[[str], None]) -> Iterator[Held]:
    """Hold the write lock of the ``IngestLock`` node of ``store`` for the block.

    For an engine whose transactions hold a node's write lock until they end, and return
    rows inside a transaction (Neo4j); the caller has made the node's key unique.

    Parameters
    ----------
    store : GraphStore
    tell : callable
        Called once with :func:`waiting`'s line when the lock is not had within
        :data:`NOTICE_AFTER` seconds, naming the holder its node names.
    """
    token = os.urandom(8).hex()
    timer = threading.Timer(NOTICE_AFTER, _tell_holder, (store, tell))
    timer.daemon = True
    timer.start()
    try:
        with store.transaction() as tx:
            # Waits here while another transaction holds the node: that wait is the lock.
            tx.run("MERGE (l:IngestLock {uid: $k}) SET l.token = $t", {"k": LOCK_KEY, "t": token})
            timer.cancel()
            holder = {"pid": os.getpid(), "host": socket.gethostname(), "token": token}
            store.write(_SET_HOLDER, {"k": HOLDER_KEY, "props": holder})
            try:
                yield _GraphHeld(tx, token, store.location)
            finally:
                try:
                    store.write(
                        "MATCH (h:IngestLock {uid: $k, token: $t}) SET h.pid = null, h.host = null",
                        {"k": HOLDER_KEY, "t": token},
                    )
                except CkgError:
                    pass  # only the wait message of the next ingest reads it
    finally:
        timer.cancel()


_SET_HOLDER = "MERGE (h:IngestLock {uid: $k}) SET h += $props"


def _tell_holder(store, tell) -> None:
    """The lock's holder, as its committed holder node says (best effort, in a timer)."""
    try:
        rows = store.run(
            "MATCH (h:IngestLock {uid: $k}) RETURN h.pid AS pid, h.host AS host",
            {"k": HOLDER_KEY},
        )
    except Exception:  # a notice from a timer thread: never an error of the ingest
        rows = []
    row = rows[0] if rows else {}
    tell(waiting(store.location, row.get("pid"), row.get("host")))
