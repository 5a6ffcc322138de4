"""The Neo4j engine: a Neo4j 5 server reached over Bolt with the official driver.

Imported only when a ``bolt://`` or ``neo4j://`` URI is opened, so that the embedded path
never pays for the driver. Writes go through managed transactions (``execute_write``), which
the driver retries on transient errors such as deadlocks or a leader switch; :meth:`run`
sends one auto-commit statement, so that anything a user types (schema commands included)
works as it would in Neo4j's own shell.

Every timeout is kept under ten seconds so that a server that is down, or refuses the
credentials, gives one clear line quickly instead of a minute of retries.
"""

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import neo4j
from neo4j import exceptions as neo4j_errors
from neo4j import time as neo4j_time
from neo4j.graph import Node, Path, Relationship

from ckg import __version__
from ckg.core import config
from ckg.core.errors import QueryError, StoreUnavailable, UsageError
from ckg.core.schema import NODE_INDEXES, NODE_KEYS, check_name, check_params
from ckg.store.base import GraphStore, Transaction
from ckg.store.lock import LOCK_CONSTRAINT, graph_lock

# The driver logs failures (e.g. "Unable to retrieve routing information") with no handler
# of its own, so Python would print them to stderr beside ckg's one-line error. A null
# handler stops that; an application that configures logging still receives them.
logging.getLogger("neo4j").addHandler(logging.NullHandler())

#: Seconds to open a TCP connection and finish the Bolt handshake.
CONNECT_TIMEOUT = 5.0
#: Seconds to wait for a pooled connection (opening one included): above CONNECT_TIMEOUT.
ACQUIRE_TIMEOUT = 8.0
#: Seconds a managed transaction keeps retrying transient errors before giving up.
RETRY_TIME = 8.0

# Temporal values of the driver (neo4j.time) become ISO 8601 text, as the embedded engine
# and JSON output need plain values.
_TEMPORAL = (neo4j_time.Date, neo4j_time.Time, neo4j_time.DateTime, neo4j_time.Duration)


def plain(value):
    """Turn a value the driver returned into plain Python data.

    Nodes and relationships become dicts of their properties, paths a dict of node and
    relationship lists, temporal values ISO 8601 strings; lists and maps are converted
    item by item.

    Examples
    --------
    >>> plain([1, {"a": neo4j_time.Date(2024, 5, 1)}])
    [1, {'a': '2024-05-01'}]
    """
    if isinstance(value, (Node, Relationship)):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, Path):
        return {
            "nodes": [plain(node) for node in value.nodes],
            "relationships": [plain(rel) for rel in value.relationships],
        }
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, _TEMPORAL):
        return value.iso_format()
    return value


def _rows(result) -> list[dict]:
    return [{key: plain(value) for key, value in record.items()} for record in result]


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else text


class Neo4jTransaction(Transaction):
    """Statements inside one explicit Neo4j write transaction."""

    def __init__(self, tx, uri: str):
        self._tx = tx
        self._uri = uri

    def run(self, cypher: str, params: dict | None = None) -> list[dict]:
        """Run one statement in the transaction and return its rows."""
        with _translated_errors(self._uri):
            return _rows(self._tx.run(cypher, check_params(params or {})))


class Neo4jStore(GraphStore):
    """A graph in a Neo4j 5 server.

    Parameters
    ----------
    uri : str
        A ``bolt://``, ``bolt+s://``, ``neo4j://`` or ``neo4j+s://`` URI.
    database : str, optional
        The database to use; the server's default database when None.

    Raises
    ------
    StoreUnavailable
        When the server cannot be reached or refuses the credentials from
        ``NEO4J_USERNAME`` / ``NEO4J_PASSWORD``.
    UsageError
        When ``uri`` is not a URI the driver accepts.

    Examples
    --------
    >>> with Neo4jStore("bolt://localhost:7687") as store:  # doctest: +SKIP
    ...     store.run("RETURN 1 AS one")
    [{'one': 1}]
    """

    engine = "neo4j"

    def __init__(self, uri: str, *, database: str | None = None):
        self.location = uri
        self._database = database
        try:
            self._driver = neo4j.GraphDatabase.driver(
                uri,
                auth=config.neo4j_auth(),
                connection_timeout=CONNECT_TIMEOUT,
                connection_acquisition_timeout=ACQUIRE_TIMEOUT,
                max_transaction_retry_time=RETRY_TIME,
                user_agent=f"ckg/{__version__}",
            )
        except (ValueError, neo4j_errors.ConfigurationError) as exc:
            raise UsageError(f"not a usable Neo4j URI {uri!r}: {_first_line(str(exc))}") from None
        try:
            with _translated_errors(uri):
                self._driver.verify_connectivity()
        except ValueError as exc:  # the driver checks the port only when it connects
            self._driver.close()
            raise UsageError(f"not a usable Neo4j URI {uri!r}: {_first_line(str(exc))}") from None
        except StoreUnavailable:
            self._driver.close()
            raise

    def run(self, cypher: str, params: dict | None = None) -> list[dict]:
        """Run one statement as an auto-commit transaction and return its rows."""
        with self._session() as session, _translated_errors(self.location):
            return _rows(session.run(cypher, check_params(params or {})))

    def write(self, cypher: str, params: dict | None = None) -> list[dict]:
        """Run one statement in a managed write transaction, retried on transient errors."""
        params = check_params(params or {})
        with self._session() as session, _translated_errors(self.location):
            return session.execute_write(lambda tx: _rows(tx.run(cypher, params)))

    @contextmanager
    def transaction(self) -> Iterator[Neo4jTransaction]:
        """One explicit write transaction: committed at the end, rolled back on an exception."""
        with self._session() as session:
            with _translated_errors(self.location):
                tx = session.begin_transaction()
            try:
                yield Neo4jTransaction(tx, self.location)
            except BaseException:
                tx.close()  # rolls back what the block wrote
                raise
            with _translated_errors(self.location):
                tx.commit()

    def write_many(self, statements: list[tuple[str, dict]]) -> None:
        """The statements in one managed write transaction, retried as a whole on transient
        errors (two runs merging the same Platform node may deadlock, and Neo4j says retry)."""

        def work(tx) -> None:
            for cypher, params in statements:
                tx.run(cypher, check_params(params)).consume()

        with self._session() as session, _translated_errors(self.location):
            session.execute_write(work)

    def ensure_schema(self) -> None:
        """Create a uniqueness constraint for every key of the graph model and an index for
        each property of ``NODE_INDEXES``, if missing.

        One look at the existing indexes first (a constraint's own index has its name), so
        that opening a store that is set up already costs one round trip rather than one
        per label.
        """
        existing = {row["name"] for row in self.run("SHOW INDEXES YIELD name")}
        for label, key in NODE_KEYS.items():
            name = f"ckg_{check_name(label)}_{check_name(key)}"
            if name in existing:
                continue
            # Schema commands cannot share a transaction with other statements; IF NOT EXISTS
            # covers another process creating the same constraint meanwhile.
            self.write(
                f"CREATE CONSTRAINT {name} IF NOT EXISTS FOR (n:{label}) REQUIRE n.{key} IS UNIQUE"
            )
        for label, names in NODE_INDEXES.items():
            for key in names:
                name = f"ckg_{check_name(label)}_{check_name(key)}"
                if name not in existing:
                    self.write(f"CREATE INDEX {name} IF NOT EXISTS FOR (n:{label}) ON (n.{key})")

    def ingest_lock(self, tell):
        """The write lock of a node held by an open transaction: clients on any machine
        share it, and the server frees it when its holder's connection ends
        (:func:`ckg.store.lock.graph_lock`)."""
        self._ensure_lock_schema()
        return graph_lock(self, tell)

    def _ensure_lock_schema(self) -> None:
        """Make the ingest lock's node unique (one look first: it exists but the first time)."""
        if not self.run(
            "SHOW CONSTRAINTS YIELD name WHERE name = $n RETURN name", {"n": LOCK_CONSTRAINT}
        ):
            self.write(
                f"CREATE CONSTRAINT {LOCK_CONSTRAINT} IF NOT EXISTS "
                "FOR (l:IngestLock) REQUIRE l.uid IS UNIQUE"
            )

    def close(self) -> None:
        """Close the driver and its connections; the data stays on the server."""
        self._driver.close()

    def _session(self):
        # The server's notifications (performance hints, deprecations) have no place in
        # ckg's output; asking for none also spares the server the work.
        return self._driver.session(database=self._database, notifications_min_severity="OFF")


@contextmanager
def _translated_errors(uri: str) -> Iterator[None]:
    """Turn the driver's exceptions into ckg's: one line, naming the server."""
    try:
        yield
    except neo4j_errors.AuthError as exc:
        raise StoreUnavailable(
            f"Neo4j at {uri} refused the credentials ({_first_line(exc.message or str(exc))}); "
            "set NEO4J_USERNAME and NEO4J_PASSWORD"
        ) from None
    except (neo4j_errors.ServiceUnavailable, neo4j_errors.SessionExpired) as exc:
        raise StoreUnavailable(f"cannot reach Neo4j at {uri}: {_reason(exc)}") from None
    except neo4j_errors.ConnectionAcquisitionTimeoutError:
        raise StoreUnavailable(
            f"cannot reach Neo4j at {uri}: no connection within {ACQUIRE_TIMEOUT:g} s"
        ) from None
    except neo4j_errors.Neo4jError as exc:
        if exc.code == "Neo.ClientError.Database.DatabaseNotFound":
            raise StoreUnavailable(f"Neo4j at {uri}: {_first_line(exc.message)}") from None
        raise QueryError(_first_line(exc.message or str(exc))) from None


def _reason(exc: Exception) -> str:
    """The cause of a connection failure in a few words (the driver's text spans lines)."""
    cause = exc
    while cause.__cause__ is not None or cause.__context__ is not None:
        cause = cause.__cause__ or cause.__context__
    if isinstance(cause, OSError) and cause.strerror:
        return cause.strerror.lower()
    return " ".join(str(exc).split())
