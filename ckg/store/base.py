"""The one interface every part of ckg uses to reach the graph.

Engines implement the core (:meth:`run`, :meth:`write`, :meth:`transaction`,
:meth:`ensure_schema`, :meth:`close`); everything else is written once here on top of it.
Rows come back as plain dicts of primitives, lists and dicts (nodes become dicts of their
properties), never as driver objects.
"""

from abc import ABC, abstractmethod
from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager

from ckg.records import Records
from ckg.schema import NODE_KEYS, check_name, key_of

#: Rows per UNWIND batch. Measured with bench/store_bench.py: throughput on both engines
#: stops improving past a few thousand rows, and larger batches only cost memory.
BATCH_SIZE = 5000


class Transaction(ABC):
    """Write statements applied together when the ``transaction()`` block ends.

    Rows are not returned inside a transaction (the embedded engine only applies its
    statements at the end); read with :meth:`GraphStore.run` before or after.
    """

    @abstractmethod
    def run(self, cypher: str, params: dict | None = None) -> None:
        """Add one write statement to the transaction."""


class GraphStore(ABC):
    """A graph database that speaks Cypher. Use as a context manager."""

    #: Short engine name shown by ``ckg db status``.
    engine: str = ""
    #: Where the data lives: a folder or a URI.
    location: str = ""

    # --- core: each engine implements these -------------------------------------------

    @abstractmethod
    def run(self, cypher: str, params: dict | None = None) -> list[dict]:
        """Run one read or write statement with parameters and return its rows.

        Raises :class:`ckg.errors.QueryError` with the engine's message when the engine
        refuses the statement, :class:`ckg.errors.StoreUnavailable` when it cannot be reached.
        """

    @abstractmethod
    def write(self, cypher: str, params: dict | None = None) -> list[dict]:
        """Run one write statement in its own write transaction (retried where transient)."""

    @abstractmethod
    def transaction(self) -> AbstractContextManager[Transaction]:
        """A write transaction: committed when the block ends, rolled back if it raises."""

    @abstractmethod
    def ensure_schema(self) -> None:
        """Create a uniqueness constraint or unique index for every key in ``NODE_KEYS``."""

    @abstractmethod
    def close(self) -> None:
        """Release the connection. The data stays."""

    # --- derived: written once for every engine ---------------------------------------

    def __enter__(self) -> "GraphStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def upsert_nodes(
        self, label: str, rows: Iterable[dict], *, batch_size: int = BATCH_SIZE
    ) -> int:
        """Merge nodes of ``label`` on their key; each row is ``{"key": k, "props": {...}}``.

        Idempotent: the same rows written twice leave the graph as after the first time.
        Returns the number of rows written.
        """
        return self.write_batches(_node_cypher(label), rows, batch_size=batch_size)

    def upsert_edges(
        self,
        rel_type: str,
        src_label: str,
        dst_label: str,
        rows: Iterable[dict],
        *,
        batch_size: int = BATCH_SIZE,
    ) -> int:
        """Merge relationships between existing nodes; each row is ``{"src", "dst", "props"}``.

        A row whose end node does not exist writes nothing. Returns the rows sent.
        """
        cypher = _edge_cypher(rel_type, src_label, dst_label)
        return self.write_batches(cypher, rows, batch_size=batch_size)

    def write_records(
        self, records: Records, *, batch_size: int = BATCH_SIZE, one_transaction: bool = False
    ) -> None:
        """Write every node, then every edge, of ``records``, grouped by label and type.

        With ``one_transaction``, all of it goes in one transaction (:meth:`write_many`): one
        round trip instead of one per label and type, for small record sets such as one run's.
        """
        nodes: dict[str, list[dict]] = defaultdict(list)
        for node in records.nodes:
            nodes[node.label].append({"key": node.key, "props": node.props})
        edges: dict[tuple[str, str, str], list[dict]] = defaultdict(list)
        for edge in records.edges:
            edges[(edge.type, edge.src_label, edge.dst_label)].append(
                {"src": edge.src_key, "dst": edge.dst_key, "props": edge.props}
            )
        if one_transaction:
            statements = [(_node_cypher(label), {"rows": rows}) for label, rows in nodes.items()]
            statements += [(_edge_cypher(*group), {"rows": rows}) for group, rows in edges.items()]
            if statements:
                self.write_many(statements)
            return
        for label, rows in nodes.items():
            self.upsert_nodes(label, rows, batch_size=batch_size)
        for (rel_type, src, dst), rows in edges.items():
            self.upsert_edges(rel_type, src, dst, rows, batch_size=batch_size)

    def write_many(self, statements: list[tuple[str, dict]]) -> None:
        """Apply write statements in order as one transaction. Engines override this to
        send them in one round trip and to retry the whole on transient errors."""
        with self.transaction() as tx:
            for cypher, params in statements:
                tx.run(cypher, params)

    def get_node(self, label: str, key: str) -> dict | None:
        """The properties of the node of ``label`` whose key is ``key``, or None."""
        rows = self.run(
            f"MATCH (n:{check_name(label)} {{{key_of(label)}: $key}}) RETURN n LIMIT 1",
            {"key": key},
        )
        return rows[0]["n"] if rows else None

    def counts(self) -> dict:
        """Node counts per label and relationship counts per type (zero counts left out)."""
        labels = {}
        for label in NODE_KEYS:
            rows = self.run(f"MATCH (n:{label}) RETURN count(n) AS c")
            if rows[0]["c"]:
                labels[label] = rows[0]["c"]
        rels = {}
        for row in self.run("MATCH ()-[r]->() RETURN type(r) AS t, count(r) AS c"):
            rels[row["t"]] = row["c"]
        return {"nodes": labels, "relationships": dict(sorted(rels.items()))}

    def reset(self) -> None:
        """Delete every node and relationship, in batches so a large graph fits in memory."""
        while True:
            rows = self.write("MATCH (n) WITH n LIMIT 10000 DETACH DELETE n RETURN count(*) AS c")
            if not rows or not rows[0]["c"]:
                return

    def write_batches(
        self, cypher: str, rows: Iterable[dict], *, batch_size: int = BATCH_SIZE
    ) -> int:
        """Run the write ``cypher`` with ``$rows`` bound to each batch of ``rows`` in turn.

        Each batch is its own write transaction. Returns the number of rows sent.
        """
        sent = 0
        for batch in batches(rows, batch_size):
            self.write(cypher, {"rows": batch})
            sent += len(batch)
        return sent


def batches(rows: Iterable[dict], size: int) -> Iterator[list[dict]]:
    """``rows`` in lists of ``size`` (the last one shorter)."""
    batch: list[dict] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _node_cypher(label: str) -> str:
    key = key_of(label)
    return (
        f"UNWIND $rows AS row MERGE (n:{check_name(label)} {{{key}: row.key}}) SET n += row.props"
    )


def _edge_cypher(rel_type: str, src_label: str, dst_label: str) -> str:
    return (
        f"UNWIND $rows AS row "
        f"MATCH (a:{check_name(src_label)} {{{key_of(src_label)}: row.src}}) "
        f"MATCH (b:{check_name(dst_label)} {{{key_of(dst_label)}: row.dst}}) "
        f"MERGE (a)-[r:{check_name(rel_type)}]->(b) SET r += row.props"
    )
