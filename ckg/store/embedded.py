"""The embedded engine: FalkorDB in a server that ckg runs under ``CKG_HOME``.

See :mod:`ckg.store.server` for the server's life. Statements go through
``GRAPH.QUERY <graph> "CYPHER p=... <statement>" --compact``: FalkorDB takes parameters
as literals in that prefix, written by :func:`ckg.store.resp.cypher_literal`.
"""

from contextlib import contextmanager
from pathlib import Path

from ckg.core.errors import QueryError, StoreUnavailable
from ckg.core.schema import NODE_INDEXES, NODE_KEYS, check_params
from ckg.store.base import BATCH_SIZE, GraphStore, Transaction, batches
from ckg.store.lock import file_lock
from ckg.store.resp import CompactDecoder, Connection, ReplyError, cypher_literal, reply_error
from ckg.store.server import connect, reply_timeout, stop_server

__all__ = ["EmbeddedStore", "stop_server"]

#: Bumped when :meth:`EmbeddedStore.ensure_schema` changes, so existing graphs get the new one.
SCHEMA_VERSION = "2"


class EmbeddedStore(GraphStore):
    """FalkorDB through ckg's own server of ``home``; ``graph`` names the graph in it."""

    engine = "falkordb"
    seeks_by_id = True

    def __init__(self, home: Path, graph: str = "ckg"):
        self.home = Path(home)
        self.graph = graph
        self.location = str(self.home)
        self._conn: Connection | None = None
        self._decoder = CompactDecoder(self._property_keys)

    # --- core ---------------------------------------------------------------------------

    def run(self, cypher: str, params: dict | None = None) -> list[dict]:
        reply = self._call("GRAPH.QUERY", self.graph, _text(cypher, params), "--compact")
        return self._decoder.rows(reply)

    def write(self, cypher: str, params: dict | None = None) -> list[dict]:
        # Every FalkorDB query is atomic on its own: a single write is its own transaction.
        return self.run(cypher, params)

    @contextmanager
    def transaction(self):
        """Statements queued in MULTI and applied together by EXEC when the block ends.

        Nothing is applied if the block raises. The server applies the queued statements
        one after the other with no other client in between; a statement the engine refuses
        at that point raises :class:`QueryError`, and the others stay applied, as Redis
        transactions have no rollback.
        """
        tx = _QueuedTransaction(self.graph)
        yield tx
        self._apply(tx.commands)

    def write_many(self, statements: list[tuple[str, dict]]) -> None:
        """The statements in one MULTI/EXEC round trip, reconnecting once like :meth:`run`
        (MERGE makes a repeat harmless if the server applied them and then went away)."""
        tx = _QueuedTransaction(self.graph)
        for cypher, params in statements:
            tx.run(cypher, params)
        try:
            self._apply(tx.commands)
        except StoreUnavailable:
            self.close()
            self._apply(tx.commands)

    def _apply(self, commands: list[tuple]) -> None:
        if not commands:
            return
        replies = self._connection().pipeline([("MULTI",), *commands, ("EXEC",)])
        results = replies[-1]
        if isinstance(results, ReplyError):
            raise QueryError(str(results))
        for result in results:
            failure = reply_error(result)
            if failure is not None:
                raise QueryError(str(failure))

    def ensure_schema(self) -> None:
        """A unique constraint (with its index) on the key of every label, and an index on
        each property of ``NODE_INDEXES``, created once."""
        marker = f"ckg:schema:{self.graph}"
        version, graph_exists = self._connection().pipeline(
            [("GET", marker), ("EXISTS", self.graph)]
        )
        if version == SCHEMA_VERSION and graph_exists:
            return
        indexed = list(NODE_KEYS.items())
        indexed += [(label, name) for label, names in NODE_INDEXES.items() for name in names]
        for label, key in indexed:
            try:
                self.run(f"CREATE INDEX FOR (n:{label}) ON (n.{key})")
            except QueryError as exc:
                if "already indexed" not in str(exc):
                    raise
        for label, key in NODE_KEYS.items():
            try:
                self._call(
                    "GRAPH.CONSTRAINT",
                    "CREATE",
                    self.graph,
                    "UNIQUE",
                    "NODE",
                    label,
                    "PROPERTIES",
                    1,
                    key,
                )
            except QueryError as exc:
                if "already exists" not in str(exc):
                    raise
        self._call("SET", marker, SCHEMA_VERSION)

    def ingest_lock(self, tell):
        """``fcntl.flock`` on ``home/ingest.lock``: one server per home, reached from this
        machine only (:func:`ckg.store.lock.file_lock`)."""
        return file_lock(self.home, tell)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # --- engine-specific ----------------------------------------------------------------

    def drop(self) -> None:
        """Delete this graph and its schema marker (other graphs of the server stay)."""
        self._connection().pipeline(
            [("GRAPH.DELETE", self.graph), ("DEL", f"ckg:schema:{self.graph}")]
        )

    def write_batches(self, cypher: str, rows, *, batch_size: int = BATCH_SIZE) -> int:
        """Send each batch before reading the previous one's reply.

        The server runs one batch while this process encodes the next: encoding is about a
        tenth of the time of a large upsert (bench/store_bench.py).
        """
        conn = self._connection()
        sent = unread = 0
        try:
            for batch in batches(rows, batch_size):
                conn.send("GRAPH.QUERY", self.graph, _text(cypher, {"rows": batch}), "--compact")
                if unread:
                    sent += self._reply(conn, unread)
                unread = len(batch)
            if unread:
                count, unread = unread, 0
                sent += self._reply(conn, count)
        finally:
            if unread:  # a reply was left unread: this connection is out of step, drop it
                self.close()
        return sent

    @staticmethod
    def _reply(conn: Connection, count: int) -> int:
        failure = reply_error(conn.read())
        if failure is not None:
            raise QueryError(str(failure))
        return count

    def _connection(self) -> Connection:
        if self._conn is None:
            self._conn = connect(self.home)
            # A reply this late means a hung server: the one retry of _call then restarts it.
            self._conn.set_timeout(reply_timeout())
        return self._conn

    def _call(self, *args):
        """Send one command; reconnect once if the server went away (idle stop, ``db stop``)."""
        try:
            return self._send(args)
        except StoreUnavailable:
            self.close()
            return self._send(args)

    def _send(self, args: tuple):
        try:
            return self._connection().call(*args)
        except ReplyError as exc:
            raise QueryError(str(exc)) from None

    def _property_keys(self) -> list[str]:
        reply = self._call("GRAPH.QUERY", self.graph, "CALL db.propertyKeys()", "--compact")
        return [row[0][1] for row in reply[1]]


class _QueuedTransaction(Transaction):
    def __init__(self, graph: str):
        self.graph = graph
        self.commands: list[tuple] = []

    def run(self, cypher: str, params: dict | None = None) -> None:
        self.commands.append(("GRAPH.QUERY", self.graph, _text(cypher, params), "--compact"))


def _text(cypher: str, params: dict | None) -> str:
    if not params:
        return cypher
    check_params(params)  # names go into the text as they are: only identifiers may
    prefix = " ".join(f"{name}={cypher_literal(value)}" for name, value in params.items())
    return f"CYPHER {prefix} {cypher}"
