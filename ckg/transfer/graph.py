"""A whole graph moved between stores: ``ckg db export FILE``, ``ckg db import FILE`` and
``ckg db copy --to URI``.

The file is JSON lines, gzip-compressed when its name ends in ``.gz``: a header, every node,
every relationship, and a footer that says the file is whole::

    {"format": "ckg-graph", "version": 1, "ckg_version": ..., "exported_at": ...,
     "exported_from": ..., "nodes": N, "relationships": M}
    {"label": "Artifact", "key": "d0b5dd74373f4a62", "props": {...}}
    {"type": "DEPENDS_ON", "src_label": "Artifact", "src_key": ..., "dst_label": ...,
     "dst_key": ..., "props": {...}}
    {"end": true, "nodes": N, "relationships": M}

Reading goes through each label's nodes in key order, :data:`PAGE` at a time, then again for
their outgoing relationships; writing sends batches of :data:`ckg.store.BATCH_SIZE` through
the store. Neither side holds the graph in memory. Every node has one label and its key
(:func:`ckg.core.schema.key_of`); ``IngestLock`` nodes are the state of a running ingest, not data,
and are never copied.

Nodes merge on their key and take the file's properties, so importing twice changes nothing.
Relationships of one type between two nodes merge into one, as ckg writes them, except
those :data:`EDGE_KEYS` names: dependency edges, one per dependency entry, merge on ``entry``
as ingest writes them. Parallel relationships of any other type would become one: an export
that meets some says so.
"""

import gzip
import json
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ckg.core.errors import InvalidInput, NotFound, UsageError
from ckg.core.records import Edge, Node, Records
from ckg.core.redact import ambient, mask_node
from ckg.core.schema import NODE_KEYS, key_of
from ckg.store.base import BATCH_SIZE
from ckg.transfer.encode import edge_from, edge_json, node_from, node_json, stamp

FORMAT = "ckg-graph"
VERSION = 1
#: Nodes read per query.
PAGE = 2000
#: Relationship types that may run in parallel between two nodes, and the property that
#: tells them apart (ckg.ingest.write writes DEPENDS_ON so).
EDGE_KEYS = {"DEPENDS_ON": "entry"}
#: Labels that are never copied.
INTERNAL = frozenset({"IngestLock"})
Progress = Callable[[str, int, int], None]


@dataclass
class GraphSummary:
    """What an export, import or copy moved: nodes per label, relationships per type."""

    source: str
    target: str
    nodes: dict[str, int] = field(default_factory=dict)
    relationships: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return {
            **self.__dict__,
            "total_nodes": sum(self.nodes.values()),
            "total_relationships": sum(self.relationships.values()),
        }

    def lines(self) -> list[str]:
        return [
            f"{self.source} -> {self.target}: {sum(self.nodes.values())} nodes, "
            f"{sum(self.relationships.values())} relationships in {self.seconds:.1f} s",
            *(f"  ({label}) {n}" for label, n in self.nodes.items()),
            *(f"  [:{rel}] {n}" for rel, n in sorted(self.relationships.items())),
            *(f"  warning: {w}" for w in self.warnings),
        ]


# --- reading a store ----------------------------------------------------------------------


def labels(store) -> list[str]:
    """The labels of the graph's nodes that are copied: the model's first, in its order."""
    found = {label for labels, _ in store.label_sets() for label in labels} - INTERNAL
    return [label for label in NODE_KEYS if label in found] + sorted(found - set(NODE_KEYS))


def header(store, names: list[str]) -> dict:
    """The file's first line: who wrote it, from where, and how much it holds."""
    nodes = sum(store.count_nodes(label) for label in names)
    rels = sum(store.relationship_counts().values())
    return {
        "format": FORMAT,
        "version": VERSION,
        **stamp(store),
        "nodes": nodes,
        "relationships": rels,
    }


def read_store(store, names: list[str], warnings: list[str]) -> Iterator[Node | Edge]:
    """Every node of the labels ``names``, then every relationship leaving them.

    Nodes without their key, and relationships to an uncopied label or a node without its
    key, are left out and counted in ``warnings``; so are parallel relationships that will
    merge into one. Runs leave with their secrets masked (:func:`ckg.core.redact.mask_node`).
    """
    secrets = ambient()
    for label in names:
        sent = 0
        for page in _pages(store, label, whole=True):
            yield from (mask_node(node, secrets) for node in page)
            sent += len(page)
        missing = store.count_nodes(label) - sent
        if missing > 0:
            warnings.append(f"{missing} {label} node(s) without a usable {key_of(label)} left out")
    parallel: Counter = Counter()
    dropped = 0
    for label in names:
        for page in _pages(store, label, whole=False):
            edges, lost = _edges_from(store, label, [n.key for n in page])
            dropped += lost
            seen = Counter(
                (e.src_key, e.type, e.dst_label, e.dst_key)
                for e in edges
                if e.type not in EDGE_KEYS
            )
            for (_, rel_type, _, _), n in seen.items():
                parallel[rel_type] += n - 1
            yield from edges
    if dropped:
        warnings.append(f"{dropped} relationship(s) to nodes that are not copied left out")
    for rel_type, n in sorted(parallel.items()):
        if n:
            warnings.append(
                f"{n} parallel {rel_type} relationship(s) (one type between the "
                "same two nodes) merge into one when written"
            )


def _pages(store, label: str, *, whole: bool) -> Iterator[list[Node]]:
    """The nodes of ``label`` in key order, a page at a time (only their keys unless
    ``whole``)."""
    after = None
    while True:
        rows = store.page(label, after, PAGE, whole=whole)
        if whole:
            page = [_node(label, props) for props in rows]
        else:
            page = [Node(label, key) for key in rows]
        if page:
            yield page
        if len(rows) < PAGE:
            return
        after = page[-1].key


def _node(label: str, props: dict) -> Node:
    props = dict(props or {})
    return Node(label, props.pop(key_of(label), None), props)


def _edges_from(store, label: str, keys: list) -> tuple[list[Edge], int]:
    edges, dropped = [], 0
    for row in store.outgoing(label, keys):
        dst, dst_key = row["label"], row["key"]
        if dst is None or dst in INTERNAL or dst_key is None:
            dropped += 1
            continue
        edges.append(Edge(row["type"], label, row["src"], dst, dst_key, row["props"]))
    edges.sort(
        key=lambda e: (
            str(e.src_key),
            e.type,
            e.dst_label,
            str(e.dst_key),
            json.dumps(e.props, sort_keys=True, default=str),
        )
    )
    return edges, dropped


# --- writing a store ----------------------------------------------------------------------


def write_store(
    store, items, *, progress: Progress | None = None, totals: tuple[int, int] = (0, 0)
) -> tuple[Counter, Counter]:
    """Write nodes and relationships from ``items`` in batches, nodes before the
    relationships that follow them. Returns nodes per label and relationships per type.

    Each batch is one transaction, one statement per label or relationship type in it: on
    Neo4j a transaction costs more than its rows, so fewer and larger ones copy faster.
    """
    report = progress or (lambda stage, done, total: None)
    nodes: list[Node] = []
    edges: list[Edge] = []
    node_counts: Counter = Counter()
    edge_counts: Counter = Counter()

    def flush_nodes() -> None:
        store.write_records(Records(nodes=nodes), one_transaction=True)
        node_counts.update(n.label for n in nodes)
        nodes.clear()
        report("nodes", node_counts.total(), totals[0])

    def flush_edges() -> None:
        _write_edges(store, edges)
        edge_counts.update(e.type for e in edges)
        edges.clear()
        report("relationships", edge_counts.total(), totals[1])

    for item in items:
        if isinstance(item, Node):
            if edges:
                flush_edges()
            nodes.append(item)
            if len(nodes) >= BATCH_SIZE:
                flush_nodes()
        else:
            if nodes:
                flush_nodes()
            edges.append(item)
            if len(edges) >= BATCH_SIZE:
                flush_edges()
    if nodes:
        flush_nodes()
    if edges:
        flush_edges()
    return node_counts, edge_counts


def _write_edges(store, edges: list[Edge]) -> None:
    plain, keyed = [], {}
    for edge in edges:
        prop = EDGE_KEYS.get(edge.type)
        if prop is None or edge.props.get(prop) is None:
            plain.append(edge)
            continue
        group = keyed.setdefault((edge.type, edge.src_label, edge.dst_label, prop), [])
        group.append(
            {"src": edge.src_key, "dst": edge.dst_key, "key": edge.props[prop], "props": edge.props}
        )
    if plain:
        store.write_records(Records(edges=plain), one_transaction=True)
    for group, rows in keyed.items():
        store.upsert_keyed_edges(*group, rows)


# --- the three commands -------------------------------------------------------------------


def export_graph(store, path: str | Path, *, progress: Progress | None = None) -> GraphSummary:
    """Write every node and relationship of ``store`` to the JSON lines file ``path``.

    The file appears only when it is whole (it is written beside and renamed).

    Raises
    ------
    NotFound
        The folder of ``path`` does not exist.
    """
    started = time.perf_counter()
    path = Path(path).expanduser()
    if not path.parent.is_dir():
        raise NotFound(f"no folder {path.parent} to write {path.name} into")
    names = labels(store)
    head = header(store, names)
    summary = GraphSummary(head["exported_from"], str(path))
    report = progress or (lambda stage, done, total: None)
    nodes: Counter = Counter()
    edges: Counter = Counter()
    partial = path.with_name(path.name + ".partial")
    try:
        with _open(partial, "wt") as out:
            out.write(json.dumps(head, ensure_ascii=False) + "\n")
            for item in read_store(store, names, summary.warnings):
                if isinstance(item, Node):
                    out.write(json.dumps(node_json(item), ensure_ascii=False) + "\n")
                    nodes[item.label] += 1
                    if nodes.total() % PAGE == 0:
                        report("nodes", nodes.total(), head["nodes"])
                else:
                    out.write(json.dumps(edge_json(item), ensure_ascii=False) + "\n")
                    edges[item.type] += 1
                    if edges.total() % PAGE == 0:
                        report("relationships", edges.total(), head["relationships"])
            footer = {"end": True, "nodes": nodes.total(), "relationships": edges.total()}
            out.write(json.dumps(footer) + "\n")
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    summary.nodes, summary.relationships = dict(nodes), dict(edges)
    summary.seconds = time.perf_counter() - started
    return summary


def read_file(path: str | Path) -> tuple[dict, Iterator[Node | Edge]]:
    """The header of a graph file and an iterator over its nodes and relationships.

    Raises
    ------
    NotFound
        No file at ``path``.
    InvalidInput
        Not a graph file, written by a newer ckg, a malformed line (named by its number), or
        a file that ends before its footer (raised by the iterator when it gets there).
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise NotFound(f"no such file: {path}")
    try:
        stream = _open(path, "rt")
        first = stream.readline()
        head = json.loads(first) if first.strip() else None
    except (OSError, ValueError, EOFError) as exc:
        raise InvalidInput(f"{path}: not a ckg graph file ({exc})") from None
    if not isinstance(head, dict) or head.get("format") != FORMAT:
        stream.close()
        raise InvalidInput(f"{path}: not a ckg graph file (no {FORMAT!r} header on line 1)")
    version = head.get("version")
    if not isinstance(version, int) or version > VERSION:
        stream.close()
        raise InvalidInput(
            f"{path}: format version {version!r} is not one this ckg reads ({VERSION})"
        )
    return head, _items(path, stream)


def _items(path: Path, stream) -> Iterator[Node | Edge]:
    with stream:
        number = 1
        try:
            for number, line in enumerate(stream, 2):
                if not line.strip():
                    continue
                try:
                    data = json.loads(line)
                except ValueError:
                    raise InvalidInput(f"{path}:{number}: not a JSON line") from None
                where = f"{path}:{number}"
                if isinstance(data, dict) and data.get("end") is True:
                    return
                if isinstance(data, dict) and "type" in data:
                    yield edge_from(data, where)
                else:
                    yield node_from(data, where)
        except (OSError, EOFError) as exc:
            raise InvalidInput(f"{path}:{number}: cannot be read further ({exc})") from None
    raise InvalidInput(
        f"{path}: ends at line {number} before its last line: the file is "
        "cut short (what came before it was written)"
    )


def import_graph(store, path: str | Path, *, progress: Progress | None = None) -> GraphSummary:
    """Write every node and relationship of the graph file ``path`` into ``store``.

    Raises
    ------
    NotFound, InvalidInput
        From :func:`read_file`.
    """
    started = time.perf_counter()
    head, items = read_file(path)
    summary = GraphSummary(str(path), store.location)
    nodes, edges = write_store(
        store,
        items,
        progress=progress,
        totals=(head.get("nodes") or 0, head.get("relationships") or 0),
    )
    summary.nodes, summary.relationships = dict(nodes), dict(edges)
    summary.seconds = time.perf_counter() - started
    return summary


def copy_graph(
    source, target, *, merge: bool = False, progress: Progress | None = None
) -> GraphSummary:
    """Copy every node and relationship of the store ``source`` into the store ``target``.

    Parameters
    ----------
    source, target : GraphStore
    merge : bool
        Copy into a target that holds nodes already (its nodes of the same keys take the
        source's properties). Without it such a target is refused.

    Raises
    ------
    UsageError
        ``target`` is ``source``, or it is not empty and ``merge`` is not set.
    """
    started = time.perf_counter()
    if (source.engine, source.location) == (target.engine, target.location):
        raise UsageError(f"{target.location} is the graph being copied: give another --to")
    held = _held(target)
    if held and not merge:
        raise UsageError(
            f"{target.location} already holds {held} node(s): add --merge to copy into it"
        )
    names = labels(source)
    head = header(source, names)
    summary = GraphSummary(head["exported_from"], f"{target.engine} {target.location}")
    items = read_store(source, names, summary.warnings)
    nodes, edges = write_store(
        target, items, progress=progress, totals=(head["nodes"], head["relationships"])
    )
    summary.nodes, summary.relationships = dict(nodes), dict(edges)
    if not held:
        summary.warnings += _check_copy(target, summary)
    summary.seconds = time.perf_counter() - started
    return summary


def _held(store) -> int:
    return sum(count for labels, count in store.label_sets() if not INTERNAL.intersection(labels))


def _check_copy(target, summary: GraphSummary) -> list[str]:
    """Differences between what was sent to a target that was empty and what it holds."""
    problems = []
    for label, sent in summary.nodes.items():
        held = target.count_nodes(label)
        if held != sent:
            problems.append(f"{label}: {sent} node(s) sent, the target holds {held}")
    held = target.relationship_counts()
    for rel_type, sent in sorted(summary.relationships.items()):
        if held.get(rel_type, 0) != sent:
            problems.append(
                f"[:{rel_type}]: {sent} relationship(s) sent, the target holds "
                f"{held.get(rel_type, 0)}"
            )
    return problems


def _open(path: Path, mode: str):
    if path.name.endswith(".gz") or path.name.endswith(".gz.partial"):
        return gzip.open(path, mode, encoding="utf-8")
    return open(path, mode, encoding="utf-8")
