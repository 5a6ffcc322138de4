"""The one interface every part of ckg uses to reach the graph.

Engines implement the core (:meth:`run`, :meth:`write`, :meth:`transaction`,
:meth:`ensure_schema`, :meth:`ingest_lock`, :meth:`close`); everything else is written once
here on top of it.
Rows come back as plain dicts of primitives, lists and dicts (nodes become dicts of their
properties), never as driver objects.
"""

import gc
from abc import ABC, abstractmethod
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager

from ckg.core.errors import QueryError
from ckg.core.records import Edge, Records
from ckg.core.schema import NODE_KEYS, check_name, key_of
from ckg.store.lock import Held

#: Every key property of the graph model: what names a relationship's far end.
_KEY_PROPS = sorted({*NODE_KEYS.values(), "uid"})
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
    #: Whether a statement finds a node faster by the engine's id of it (:meth:`node_ids`)
    #: than by its key: :meth:`write_records` then names the far ends of its hub nodes' edges
    #: by id.
    seeks_by_id: bool = False

    # --- core: each engine implements these -------------------------------------------

    @abstractmethod
    def run(self, cypher: str, params: dict | None = None) -> list[dict]:
        """Run one read or write statement with parameters and return its rows.

        Raises :class:`ckg.core.errors.QueryError` with the engine's message when the engine
        refuses the statement, :class:`ckg.core.errors.StoreUnavailable` when it cannot be reached.
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
    def ingest_lock(self, tell: Callable[[str], None]) -> AbstractContextManager[Held]:
        """Hold the store's ingest lock for the block, shared by every writer of the store.

        Waits while another holder has it, calling ``tell`` once with ``waiting for another
        ingest into <location> (pid N) ...``. Each engine keeps it where all its writers
        see it (:mod:`ckg.store.lock`). Not reentrant: a second one in the same thread
        waits for ever (:func:`ckg.ingest.write.write_lock` nests).

        Raises :class:`ckg.core.errors.StoreUnavailable` when the lock cannot be taken; the
        yielded :class:`~ckg.store.lock.Held`'s ``confirm()`` raises it once the lock
        was lost.
        """

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

        The nodes of the label most of them have (the hub: a Result among its metric, task,
        dataset, model and paper; :data:`SHAPE_ROWS` of them at least) are written with their
        edges to the nodes of the other labels of ``records``, one statement row per hub node
        (:func:`_star_rows`): the hub node is found once, not once per edge, its properties are
        sent as a list whose names the statement holds, not as a map per row, and one the
        graph lacks (one query per batch tells) is created with its edges, which costs a
        third of a merge; should another writer make it meanwhile, the key's constraint
        refuses the batch, which is then merged. Every other node is written before, every
        other edge after (an end the records lack may be in the graph, or not); where the
        engine :attr:`seeks_by_id`, the hub rows name the other nodes by id, read once after
        they are written. The graph is the one the plain order leaves
        (tests/test_store_contract.py).

        With ``one_transaction``, all of it goes in one transaction (:meth:`write_many`): one
        round trip instead of one per label and type, for small record sets such as one run's.
        """
        if one_transaction:
            statements = _statements(records)
            if statements:
                self.write_many(statements)
            return
        counts: dict[str, int] = defaultdict(int)
        for node in records.nodes:
            counts[node.label] += 1
        hub = max(counts, key=counts.__getitem__, default=None)
        if hub and counts[hub] < SHAPE_ROWS:  # a few nodes: a statement per label and type
            hub = None
        nodes, _ = _grouped(Records([n for n in records.nodes if n.label != hub]))
        written = {label: {row["key"] for row in rows} for label, rows in nodes.items()}
        if not hub:
            for label, rows in nodes.items():
                self.upsert_nodes(label, rows, batch_size=batch_size)
            stars, rest = {}, records.edges
        else:
            from concurrent.futures import ThreadPoolExecutor

            # The store writes the other nodes and reads what the hub rows need while this
            # thread sorts the edges into them: a third of the wall time of
            # bench/query_bench.py's load was these two, one after the other.
            with ThreadPoolExecutor(1) as pool, _collector_paused():
                ready = pool.submit(self._before_hub, hub, records, nodes, batch_size)
                ends = _star_ends(hub, records, written)
                ids, existing = ready.result()
                stars, rest = _star_rows(hub, *ends, ids, existing)
        with _collector_paused():  # the rows are built as they are sent
            for (cypher, merge), rows in stars.items():
                try:
                    self.write_batches(cypher, rows, batch_size=batch_size)
                except QueryError:
                    if cypher == merge:
                        raise
                    # Another writer made one of these nodes since: merge them all (idempotent).
                    self.write_batches(merge, rows, batch_size=batch_size)
        for (rel_type, src, dst), rows in _grouped(Records(edges=rest))[1].items():
            self.upsert_edges(rel_type, src, dst, rows, batch_size=batch_size)

    def _before_hub(
        self, hub: str, records: Records, nodes: dict[str, list[dict]], batch_size: int
    ) -> tuple[dict | None, set]:
        """What :meth:`write_records` writes and reads before its ``hub`` rows: the other
        ``nodes`` written; the engine's ids of them where it :attr:`seeks_by_id` (else None);
        the keys of the hub nodes of ``records`` the graph holds (none to look up in a graph
        with no ``hub`` node yet: a count both engines keep says so)."""
        for label, rows in nodes.items():
            self.upsert_nodes(label, rows, batch_size=batch_size)
        ids = None
        if self.seeks_by_id:
            ids = {
                label: self.node_ids(label, [row["key"] for row in rows], batch_size)
                for label, rows in nodes.items()
            }
        if not self.count_nodes(hub):
            return ids, set()
        keys = list(dict.fromkeys(n.key for n in records.nodes if n.label == hub))
        return ids, self.existing(hub, keys, batch_size)

    def replace_incoming(self, rel_type: str, label: str, key: str, records: Records) -> None:
        """In one transaction, delete every ``rel_type`` relationship into the node of
        ``label`` whose key is ``key``, then write ``records`` (nodes, then edges): a node's
        incoming edges of one type replaced by a new set, never seen half done. A property
        set to None in ``records`` is removed."""
        delete = (
            f"MATCH (:{check_name(label)} {{{key_of(label)}: $key}})"
            f"<-[x:{check_name(rel_type)}]-() DELETE x"
        )
        self.write_many([(delete, {"key": key}), *_statements(records)])

    def upsert_keyed_edges(
        self,
        rel_type: str,
        src_label: str,
        dst_label: str,
        prop: str,
        rows: Iterable[dict],
        *,
        batch_size: int = BATCH_SIZE,
    ) -> int:
        """Merge relationships told apart by their property ``prop`` (several of one type
        may join the same two nodes: one per value, such as a dependency entry's edges);
        each row is ``{"src", "dst", "key", "props"}``, ``key`` the value of ``prop``.

        A row whose end node does not exist writes nothing. Returns the rows sent.
        """
        cypher = (
            f"UNWIND $rows AS row "
            f"MATCH (a:{check_name(src_label)} {{{key_of(src_label)}: row.src}}) "
            f"MATCH (b:{check_name(dst_label)} {{{key_of(dst_label)}: row.dst}}) "
            f"MERGE (a)-[r:{check_name(rel_type)} {{{check_name(prop)}: row.key}}]->(b) "
            "SET r += row.props"
        )
        return self.write_batches(cypher, rows, batch_size=batch_size)

    def node_ids(self, label: str, keys: list, batch_size: int = BATCH_SIZE) -> dict:
        """The engine's ids of the nodes of ``label`` whose keys are ``keys``, by key (a key
        no node has is left out). An id is the node's while it exists: a deleted node's may
        be given to a new one."""
        cypher = (
            f"UNWIND $keys AS k MATCH (n:{check_name(label)} {{{key_of(label)}: k}}) "
            "RETURN k, id(n) AS i"
        )
        return {
            row["k"]: row["i"]
            for start in range(0, len(keys), batch_size)
            for row in self.run(cypher, {"keys": keys[start : start + batch_size]})
        }

    def existing(self, label: str, keys: list, batch_size: int = BATCH_SIZE) -> set:
        """Which of ``keys`` a node of ``label`` has in the graph."""
        cypher = f"UNWIND $keys AS k MATCH (n:{check_name(label)} {{{key_of(label)}: k}}) RETURN k"
        return {
            row["k"]
            for start in range(0, len(keys), batch_size)
            for row in self.run(cypher, {"keys": keys[start : start + batch_size]})
        }

    def outgoing(self, label: str, keys: list, *, nodes: bool = False) -> list[dict]:
        """The relationships leaving the nodes of ``label`` whose keys are ``keys``.

        Returns
        -------
        list of dict
            One per relationship: ``src`` (the start's key), ``type``, ``label`` (the far
            end's first label, None if it has none), ``key`` (the far end's key, by
            :func:`ckg.core.schema.key_of` of that label; None where it lacks one), ``props``
            (the relationship's), and with ``nodes`` ``node``, the far end's properties.
        """
        if not keys:
            return []
        ends = ", ".join(f"b.{prop} AS k_{prop}" for prop in _KEY_PROPS)
        whole = ", b AS node" if nodes else ""
        rows = self.run(
            f"UNWIND $keys AS k MATCH (a:{check_name(label)} {{{key_of(label)}: k}})-[r]->(b) "
            f"RETURN k AS src, type(r) AS type, labels(b) AS labels, {ends}, r AS props{whole}",
            {"keys": keys},
        )
        found = []
        for row in rows:
            far = (row["labels"] or [None])[0]
            edge = {
                "src": row["src"],
                "type": row["type"],
                "label": far,
                "key": row[f"k_{key_of(far)}"] if far else None,
                "props": dict(row["props"] or {}),
            }
            if nodes:
                edge["node"] = dict(row["node"] or {})
            found.append(edge)
        return found

    def write_many(self, statements: list[tuple[str, dict]]) -> None:
        """Apply write statements in order as one transaction. Engines override this to
        send them in one round trip and to retry the whole on transient errors."""
        with self.transaction() as tx:
            for cypher, params in statements:
                tx.run(cypher, params)

    def delete_reached(self, label: str, keys: list, rel_type: str, far_label: str) -> None:
        """Delete the nodes of ``far_label`` that the nodes of ``label`` whose keys are
        ``keys`` reach by a ``rel_type`` relationship (what they own), with their
        relationships."""
        self.write(
            f"UNWIND $keys AS k MATCH (:{check_name(label)} {{{key_of(label)}: k}})"
            f"-[:{check_name(rel_type)}]->(x:{check_name(far_label)}) DETACH DELETE x",
            {"keys": list(keys)},
        )

    def delete_outgoing(self, label: str, keys: list) -> None:
        """Delete every relationship leaving the nodes of ``label`` whose keys are ``keys``."""
        self.write(
            f"UNWIND $keys AS k MATCH (:{check_name(label)} {{{key_of(label)}: k}})-[r]->() "
            "DELETE r",
            {"keys": list(keys)},
        )

    def delete_edges(self, rel_type: str, prop: str, values: list) -> None:
        """Delete the ``rel_type`` relationships whose property ``prop`` is among
        ``values``."""
        self.write(
            f"MATCH ()-[r:{check_name(rel_type)}]->() WHERE r.{check_name(prop)} IN $values "
            "DELETE r",
            {"values": list(values)},
        )

    def delete_unlisted(self, label: str, source_uid: str, kept: Iterable[str]) -> int:
        """Delete the nodes of ``label`` written from the source ``source_uid`` (their
        ``source_uid`` property) whose key is not in ``kept``, with their relationships:
        what a source no longer holds, once its new reading is written.

        Returns the number of nodes deleted.
        """
        # One auto-commit statement, not a write transaction: an unchanged re-ingest runs
        # it too, usually deleting nothing, and is meant to cost no write.
        rows = self.run(
            f"MATCH (n:{check_name(label)} {{source_uid: $uid}}) "
            f"WHERE NOT n.{key_of(label)} IN $kept DETACH DELETE n RETURN count(*) AS n",
            {"uid": source_uid, "kept": list(kept)},
        )
        return rows[0]["n"] if rows else 0

    def get_node(self, label: str, key: str) -> dict | None:
        """The properties of the node of ``label`` whose key is ``key``, or None."""
        rows = self.run(
            f"MATCH (n:{check_name(label)} {{{key_of(label)}: $key}}) RETURN n LIMIT 1",
            {"key": key},
        )
        return rows[0]["n"] if rows else None

    def update_nodes(
        self, label: str, keys: Iterable, props: dict, *, where: dict | None = None
    ) -> None:
        """Set ``props`` on the existing nodes of ``label`` whose keys are ``keys`` (none is
        made), on those only whose properties have the values ``where`` names, if given."""
        match = f"UNWIND $keys AS k MATCH (n:{check_name(label)} {{{key_of(label)}: k}})"
        where = where or {}
        params = {"keys": list(keys), "props": props}
        tests = []
        for index, (name, value) in enumerate(where.items()):
            tests.append(f"n.{check_name(name)} = $w{index}")
            params[f"w{index}"] = value
        test = f" WHERE {' AND '.join(tests)}" if tests else ""
        self.write(f"{match}{test} SET n += $props", params)

    def delete_nodes(self, label: str, keys: Iterable) -> None:
        """Delete the nodes of ``label`` whose keys are ``keys``, with their relationships."""
        self.write(
            f"UNWIND $keys AS k MATCH (n:{check_name(label)} {{{key_of(label)}: k}}) "
            "DETACH DELETE n",
            {"keys": list(keys)},
        )

    def counts(self) -> dict:
        """Node counts per label and relationship counts per type (zero counts left out)."""
        labels = {}
        for label in NODE_KEYS:
            count = self.count_nodes(label)
            if count:
                labels[label] = count
        return {"nodes": labels, "relationships": self.relationship_counts()}

    def relationship_counts(self) -> dict[str, int]:
        """Relationships per type, by type name (types with none left out).

        One count per type the store knows: both engines answer a count of one type from the
        counts they keep, where grouping every relationship by type reads them all (1 s of the
        home page at 10x the corpora)."""
        types = self.run("CALL db.relationshipTypes() YIELD relationshipType RETURN "
                         "relationshipType AS t")  # fmt: skip
        counts = {}
        for name in sorted(row["t"] for row in types):
            count = self.run(f"MATCH ()-[r:{check_name(name)}]->() RETURN count(r) AS c")[0]["c"]
            if count:
                counts[name] = count
        return counts

    def count_nodes(self, label: str) -> int:
        """How many nodes have ``label``."""
        return self.run(f"MATCH (n:{check_name(label)}) RETURN count(n) AS c")[0]["c"]

    def label_sets(self) -> list[tuple[tuple[str, ...], int]]:
        """Each set of labels the graph's nodes have (any label, the model's or not), with
        how many nodes have it."""
        rows = self.run("MATCH (n) RETURN labels(n) AS labels, count(n) AS c")
        return [(tuple(row["labels"] or ()), row["c"]) for row in rows]

    def page(self, label: str, after=None, limit: int = BATCH_SIZE, *, whole: bool = True) -> list:
        """The nodes of ``label`` whose key is above ``after`` (every one with a key when
        None), in key order, ``limit`` at most: their properties, or only their keys unless
        ``whole``. The last one's key is the next page's ``after``."""
        key = key_of(label)
        where = f"n.{key} > $after" if after is not None else f"n.{key} IS NOT NULL"
        returned = "n AS n" if whole else f"n.{key} AS n"
        rows = self.run(
            f"MATCH (n:{check_name(label)}) WHERE {where} RETURN {returned} "
            f"ORDER BY n.{key} LIMIT $limit",
            {"after": after, "limit": limit},
        )
        return [row["n"] for row in rows]

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


#: A hub node's properties go as a list when at least this many nodes have the same names
#: (a statement per set of names), as a map otherwise; a label with fewer nodes is no hub.
SHAPE_ROWS = 64


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cycle collector off for the block: building a row list per hub node (200,000
    for bench/query_bench.py) sets off full collections that walk every record, a third of
    the time of :func:`_star_ends` and :func:`_star_rows`. The rows hold no cycles."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _grouped(records: Records) -> tuple[dict[str, list[dict]], dict[tuple, list[dict]]]:
    """The rows of :meth:`GraphStore.upsert_nodes` per label and of
    :meth:`GraphStore.upsert_edges` per type and end labels, in the order of ``records``."""
    nodes: dict[str, list[dict]] = defaultdict(list)
    for node in records.nodes:
        nodes[node.label].append({"key": node.key, "props": node.props})
    edges: dict[tuple[str, str, str], list[dict]] = defaultdict(list)
    for edge in records.edges:
        edges[(edge.type, edge.src_label, edge.dst_label)].append(
            {"src": edge.src_key, "dst": edge.dst_key, "props": edge.props}
        )
    return nodes, edges


def _statements(records: Records) -> list[tuple[str, dict]]:
    """The statements that write ``records`` in order: every label's nodes, then every
    type's edges."""
    nodes, edges = _grouped(records)
    statements = [(_node_cypher(label), {"rows": rows}) for label, rows in nodes.items()]
    statements += [(_edge_cypher(*group), {"rows": rows}) for group, rows in edges.items()]
    return statements


def _star_ends(hub: str, records: Records, written: dict[str, set]) -> tuple[dict, dict, list]:
    """The ``hub`` nodes of ``records`` with the edges their rows hold, to the nodes
    ``written`` before them (label -> keys): the first half of :func:`_star_rows`.

    A hub node's edge of one type, direction and far label is in its row (one per kind: a
    second one of the same kind to another node is left out, as is an edge whose far end is
    not among ``written``: a statement matches every far end it names); a node listed twice
    is one row, its properties (and those of an edge listed twice) updated in order, as two
    writes would leave them.

    Returns
    -------
    tuple
        The hub nodes' properties by key; by kind ``(type, src label, dst label)``, whether
        the hub is its start, the far label, the far key by hub key and the edge
        properties by hub key; the edges left out, in order.
    """
    stars: dict[str, dict] = {}  # hub key -> its properties
    for node in records.nodes:
        if node.label == hub:
            props = stars.get(node.key)
            stars[node.key] = node.props if props is None else {**props, **node.props}
    # (type, src, dst) -> (hub is src, far keys, hub key -> far key, hub key -> edge props,
    # far label)
    kinds: dict[tuple, tuple] = {}
    last: dict[str, tuple] = {}  # by type: the kind of its last edge (one kind per type, mostly)
    rest = []
    for edge in records.edges:
        kind = last.get(edge.type)
        if kind is None or kind[0] != edge.src_label or kind[1] != edge.dst_label:
            triple = (edge.type, edge.src_label, edge.dst_label)
            if (edge.src_label == hub) == (edge.dst_label == hub):
                rest.append(edge)
                continue
            if triple not in kinds:
                far = edge.dst_label if edge.src_label == hub else edge.src_label
                kinds[triple] = (edge.src_label == hub, written.get(far, set()), {}, {}, far)
            kind = last[edge.type] = (edge.src_label, edge.dst_label, *kinds[triple])
        _, _, out, far_keys, ends, edge_props, _ = kind
        key, far = (edge.src_key, edge.dst_key) if out else (edge.dst_key, edge.src_key)
        if key not in stars or far not in far_keys:
            rest.append(edge)
            continue
        found = ends.get(key)
        if found is None:
            ends[key] = far
        elif found != far:
            rest.append(edge)
            continue
        if edge.props:
            edge_props[key] = {**edge_props.get(key, {}), **edge.props}
    return stars, kinds, rest


def _star_rows(
    hub: str, stars: dict, kinds: dict, rest: list, ids: dict[str, dict] | None, existing: set
) -> tuple[dict, list]:
    """Statements with their rows (a :class:`_Rows` each) that write the hub nodes
    ``stars`` with the edges of ``kinds`` (:func:`_star_ends`), and the edges ``rest`` left
    out. A statement is keyed by
    itself and the one that merges the same rows: a hub node not among the ``existing``
    ones is created, with its properties and edges (it has none yet). With ``ids`` (label
    -> key -> the engine's id of the node), the statements find a far end by its id, then
    check its key; an edge to a far end with no id (gone since it was written) is left out.

    Rows are grouped by the kinds they hold and by the names of their properties
    (:data:`SHAPE_ROWS`).
    """
    for (rel_type, src, dst), (out, far_keys, ends, edge_props, far) in kinds.items():
        if ids is not None and not far_keys <= ids.get(far, {}).keys():
            id_of = ids.get(far, {})
            for key in [key for key, end in ends.items() if end not in id_of]:
                end, props = ends.pop(key), edge_props.pop(key, {})
                rest.append(
                    Edge(rel_type, src, key, dst, end, props)
                    if out
                    else Edge(rel_type, src, end, dst, key, props)
                )
    every = tuple(kinds)
    partial = [triple for triple in every if len(kinds[triple][2]) < len(stars)]
    shapes: dict[tuple, list] = defaultdict(list)
    for key, props in stars.items():
        held = (
            every
            if not partial
            else tuple(t for t in every if t not in partial or key in kinds[t][2])
        )
        shapes[(held, tuple(props), key not in existing)].append((key, props))
    out_rows: dict[tuple, _Rows] = defaultdict(_Rows)
    for (held, names, new), members in shapes.items():
        listed = len(members) >= SHAPE_ROWS and all(
            isinstance(n, str) and n and "`" not in n for n in names
        )
        ends = [kinds[triple][2] for triple in held]
        by_id = ids is not None and bool(held)
        propped = [t for t in held if kinds[t][3] and any(k in kinds[t][3] for k, _ in members)]
        edge_props = [kinds[triple][3] for triple in propped]
        shape = (hub, held, names if listed else None, propped)
        merge = _star_cypher(*shape, create=False, by_id=by_id)
        id_of = [ids[kinds[triple][4]] for triple in held] if by_id else None
        out_rows[_star_cypher(*shape, create=new, by_id=by_id), merge].parts.append(
            (members, ends, id_of, edge_props, listed)
        )
    return out_rows, rest


class _Rows:
    """The rows of one statement of :func:`_star_rows`, built :data:`BATCH_SIZE` hub nodes
    at a time as they are read: the store writes one batch while the next is built (a
    tenth of the load's time before the first batch, built whole). Read twice, built twice.
    """

    def __init__(self) -> None:
        self.parts: list[tuple] = []  # (hub nodes, far keys, far ids, edge props, listed)

    def __iter__(self) -> Iterator[list]:
        for members, ends, id_of, edge_props, listed in self.parts:
            for start in range(0, len(members), BATCH_SIZE):
                yield from _built(
                    members[start : start + BATCH_SIZE], ends, id_of, edge_props, listed
                )


def _built(
    members: list, ends: list, id_of: list | None, edge_props: list, listed: bool
) -> list[list]:
    """The rows of ``members`` (key, properties) with their far ends' keys ``ends``,
    ``id_of`` their ids (or None) and their edges' properties ``edge_props``, by hub key."""
    # Built column by column: a list per end and per row costs a third more.
    keys = [key for key, _ in members]
    columns = [[by_key[key] for key in keys] for by_key in ends]
    if id_of is not None:
        columns[:0] = [
            [by_key[far] for far in column] for by_key, column in zip(id_of, columns, strict=True)
        ]
    columns += [[by_key.get(key, {}) for key in keys] for by_key in edge_props]
    tails = list(zip(*columns, strict=True)) if columns else [()] * len(keys)
    if listed:
        return [
            [key, *props.values(), *tail] for (key, props), tail in zip(members, tails, strict=True)
        ]
    return [[key, props, *tail] for (key, props), tail in zip(members, tails, strict=True)]


def _star_cypher(
    hub: str, held: tuple, names: tuple | None, propped: list, create: bool, by_id: bool = False
) -> str:
    """One hub node with its edges of the kinds ``held``: its key in ``row[0]``, its
    properties after it by ``names`` (a map in ``row[1]`` when None), then (``by_id``) the
    far ends' ids, then their keys, then the properties of the edges of the kinds
    ``propped``. With ``create``, the node and its edges are created (written inline, which
    costs a third of a SET), else merged.

    A far end found by its id is its node only while its key is the one in the row (a
    deleted node's id may be a new node's): a row whose ends do not all check writes its
    hub node and no edge, as a row whose far end is gone does when found by key (ckg
    deletes none of the labels that results point to). FalkorDB finds a node by its id
    with no lookup in its key's index: a fifth less server time for bench/query_bench.py's
    200,000 results with five edges each.
    """
    key = key_of(hub)
    at = 2 if names is None else 1 + len(names)
    verb = "CREATE" if create else "MERGE"
    if names is None:
        node, sets = f"(n:{check_name(hub)} {{{key}: row[0]}})", "n += row[1]"
    elif create:  # the key from the properties where they name it, as a SET would leave it
        inline = {key: "row[0]", **{name: f"row[{i}]" for i, name in enumerate(names, 1)}}
        node = f"(n:{check_name(hub)} {{{', '.join(f'`{k}`: {v}' for k, v in inline.items())}}})"
        sets = ""
    else:
        node = f"(n:{check_name(hub)} {{{key}: row[0]}})"
        sets = ", ".join(f"n.`{name}` = row[{i}]" for i, name in enumerate(names, 1))
    parts = [f"UNWIND $rows AS row {verb} {node}"]
    if sets:
        parts.append(f"SET {sets}")
    if held:
        parts.append("WITH n, row")
    fars = [dst if src == hub else src for _, src, dst in held]
    if by_id:  # the check is a filter after the seek: in the WHERE, it makes an index scan
        for i, far in enumerate(fars):
            parts.append(f"MATCH (e{i}:{check_name(far)}) WHERE id(e{i}) = row[{at + i}]")
        at += len(held)
        ends = ", ".join(f"e{i}" for i in range(len(held)))
        checks = " AND ".join(f"e{i}.{key_of(far)} = row[{at + i}]" for i, far in enumerate(fars))
        parts.append(f"WITH n, row, {ends} WHERE {checks}")
    else:
        for i, far in enumerate(fars):
            parts.append(f"MATCH (e{i}:{check_name(far)} {{{key_of(far)}: row[{at + i}]}})")
    for i, (rel_type, src, _) in enumerate(held):
        rel = f"[r{i}:{check_name(rel_type)}]"
        parts.append(f"{verb} (n)-{rel}->(e{i})" if src == hub else f"{verb} (e{i})-{rel}->(n)")
    for j, kind in enumerate(propped):
        parts.append(f"SET r{held.index(kind)} += row[{at + len(held) + j}]")
    return " ".join(parts)


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
