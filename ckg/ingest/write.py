"""Ingest's writes: resolve dependency entries and write one source's changes in order.

The order keeps a killed ingest repairable (see :mod:`ckg.ingest`): ``Source.complete`` set
false, artifacts and their edges merged, entries pointing at removed or re-tagged artifacts
detached, removed artifacts deleted, entries resolved again, ``complete`` set true.

Concurrent ingests
------------------
Resolution reads the whole graph (every artifact is a candidate, every unresolved entry may
be settled by new artifacts) and then writes, so two ingests interleaving their reads and
writes would each resolve against a graph that lacks the other's artifacts, and leave
entries missing that neither re-checks. Every ingest that writes therefore holds the
store's ingest lock (:func:`write_lock`) from its first read of the graph to its last write:
ingests are serialised per store, each one sees the graph the previous one left, and the
result is the graph of some sequential order. Reading and parsing the source happen before
the lock, so two ingests still parse in parallel.

The lock lives where the store lives, so that every writer of the store shares it: each
engine keeps its own (:meth:`ckg.store.GraphStore.ingest_lock`, :mod:`ckg.store.lock`).
Should a Neo4j server end the lock's transaction early, :meth:`Held.confirm` fails before
the source is marked complete, so the next ingest re-reads it whole.

An ingest that writes nothing does not take the lock, unless entries of its source are
still missing and an artifact now in the graph carries their tags (:func:`resolvable`, one
query that returns only such artifacts): it then resolves them again under the lock
(:func:`resolve_missing`). A graph left with stale missing entries (by an ingest of an
older version, or by a resolution that ran while the lock was lost) thus heals on the next
ingest of either side, even one that finds its source unchanged. The manifest keeps the
graph's :func:`graph_mark` of the last such look, so that while no ingest has written
since, an unchanged re-ingest pays one query over the ``Source`` nodes instead of a scan
of the artifacts.
"""

import hashlib
import json
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from ckg.core.records import Dependency, Edge, Records
from ckg.graph import lookup
from ckg.store.base import BATCH_SIZE
from ckg.store.lock import Held

#: Fields of a dependency entry kept on its DEPENDS_ON edges and UnresolvedDependency node.
DEP_FIELDS = (
    "kind",
    "position",
    "tags",
    "names",
    "guard",
    "via_variation",
    "version",
    "version_min",
    "version_max",
)


def graph_artifacts(store) -> dict[str, dict]:
    """Every artifact as resolution reads it, by uid."""
    return {row["uid"]: row for row in lookup.resolution_candidates(store)}


def graph_mark(store) -> str:
    """A digest that changes whenever the artifacts of the graph may have changed.

    Only ingest writes artifacts, and every ingest that writes sets its ``Source.complete``
    false first and true with a new ``ingested_at`` last: the pairs of all sources say
    whether an artifact can have come (or changed) since. One query over the few sources.
    """
    rows = lookup.source_marks(store)
    body = sorted((r["uid"], str(r["at"]), bool(r["done"])) for r in rows)
    return hashlib.sha256(json.dumps(body).encode()).hexdigest()[:16]


def write_plan(store, uid: str, source_props: dict, plan, graph: dict, report) -> int:
    """Write the plan in the order that keeps a killed ingest repairable; return re-resolved.

    Besides the source's own entries, three kinds of entries of other artifacts are resolved
    again: those that pointed at a removed artifact, those that pointed at an artifact whose
    tags, variations or kind changed, and unresolved ones that the new artifacts may match.
    The caller holds :func:`write_lock` (``graph`` was read under it) and marks the source
    complete afterwards (:func:`mark_complete`).
    """
    store.upsert_nodes("Source", [{"key": uid, "props": source_props}])
    written = {**plan.new, **plan.changed}
    _clear_outgoing(store, list(plan.changed))
    groups = list(written.values())
    records = Records(list(plan.shared.nodes), list(plan.shared.edges))
    for i, group in enumerate(groups, 1):
        records.nodes.append(group.node)
        records.nodes.extend(group.nodes)
        records.edges.extend(group.edges)
        records.edges.append(Edge("CONTAINS", "Source", uid, "Artifact", group.node.key))
        if i % 200 == 0 or i == len(groups):
            report("artifacts", i, len(groups))
    store.write_records(records)

    candidates = [row for u, row in graph.items() if u not in written and u not in plan.removed]
    candidates.extend(candidate(g.node.props) for g in groups)
    own = [d for g in groups for d in g.deps]
    _write_resolutions(store, _resolve(own, candidates), report)

    retargeted = {
        u
        for u, g in plan.changed.items()
        if u in graph and _matching(graph[u]) != _matching(g.node.props)
    }
    detached = _detach_incoming(store, plan.removed | retargeted, set(written))
    _remove(store, plan.removed)
    pending = _unresolved(store, skip=set(written)) if groups else []
    _write_resolutions(store, _resolve(detached, candidates), report)
    found = [r for r in _resolve(pending, candidates) if r.matches]
    _settle(store, found, report)
    return len(found)


def mark_complete(store, uid: str, source_props: dict) -> None:
    """The last write of an ingest: ``Source.complete`` true, with the time."""
    done = {**source_props, "complete": True, "ingested_at": datetime.now(UTC).isoformat()}
    store.upsert_nodes("Source", [{"key": uid, "props": done}])


def resolvable(store, missing: list[Dependency]) -> bool:
    """Whether any of the ``missing`` entries would match an artifact of the graph now.

    Cheap enough for every ingest, unchanged ones included: one query returns only the
    artifacts that carry every plain tag of some entry (usually none), and those are
    resolved with CM's rules. Entries without a plain tag need every artifact.
    """
    from ckg.core.resolve import parse_tags, resolve

    queries = {parse_tags(d.tags) for d in missing}
    if any(q.variations and not q.plain for q in queries):
        candidates = list(graph_artifacts(store).values())
    else:
        plains = sorted({q.plain for q in queries if q.plain})
        if not plains:
            return False
        candidates = lookup.resolution_candidates(store, [list(p) for p in plains])
    return any(r.matches for r in resolve(missing, candidates))


def resolve_missing(store, uid: str, report=None) -> int:
    """Resolve the missing entries of source ``uid`` again, against the whole graph.

    The caller holds :func:`write_lock`. Returns the number of entries that now match.
    """
    pending = _unresolved(store, source=uid)
    if not pending:
        return 0
    found = [r for r in _resolve(pending, list(graph_artifacts(store).values())) if r.matches]
    _settle(store, found, report or (lambda stage, done, total: None))
    return len(found)


def candidate(props: dict) -> dict:
    return {k: props.get(k) for k in ("uid", "alias", "kind", "tags", "variations", "source_uid")}


def _matching(props: dict) -> tuple:
    """What dependency resolution looks at: a change here re-resolves entries pointing in."""
    return (
        props.get("kind"),
        sorted(props.get("tags") or []),
        sorted(props.get("variations") or []),
    )


def _resolve(deps: list[Dependency], candidates: list[dict]):
    from ckg.core.resolve import resolve

    return resolve(deps, candidates) if deps else []


def _dep_props(dep: Dependency, entry: str) -> dict:
    props = {f: getattr(dep, f) for f in DEP_FIELDS}
    props["entry"] = entry
    return props


def _write_resolutions(store, resolutions, report) -> None:
    edges, unresolved, needs = [], [], []
    for r in resolutions:
        props = _dep_props(r.dependency, r.entry)
        if r.matches:
            props["matches"] = len(r.matches)
            edges.extend(
                {"src": r.dependency.artifact_uid, "dst": m, "key": r.entry, "props": props}
                for m in r.matches
            )
        else:
            props.update(uid=r.entry, status="missing")
            unresolved.append({"key": r.entry, "props": props})
            needs.append({"src": r.dependency.artifact_uid, "dst": r.entry, "props": {}})
    for start in range(0, len(edges), BATCH_SIZE):
        store.upsert_keyed_edges(
            "DEPENDS_ON", "Artifact", "Artifact", "entry", edges[start : start + BATCH_SIZE]
        )
        report("edges", min(start + BATCH_SIZE, len(edges)), len(edges))
    if unresolved:
        store.upsert_nodes("UnresolvedDependency", unresolved)
        store.upsert_edges("NEEDS", "Artifact", "UnresolvedDependency", needs)


def _clear_outgoing(store, uids: list[str]) -> None:
    """Drop what a rewritten artifact owns (variations, unresolved entries, outgoing edges)."""
    if not uids:
        return
    store.delete_reached("Artifact", uids, "HAS_VARIATION", "Variation")
    store.delete_reached("Artifact", uids, "NEEDS", "UnresolvedDependency")
    store.delete_outgoing("Artifact", uids)


def _detach_incoming(store, targets: set[str], written: set[str]) -> list[Dependency]:
    """Delete every edge of the entries (of artifacts not rewritten) that point at ``targets``.

    Returns those entries, to be resolved again.
    """
    if not targets:
        return []
    rows = lookup.entries_into(store, sorted(targets), sorted(written | targets), DEP_FIELDS)
    entries = {row["entry"]: _dependency(row["src"], row) for row in rows}
    if entries:
        store.delete_edges("DEPENDS_ON", "entry", sorted(entries))
    return list(entries.values())


def _remove(store, removed: set[str]) -> None:
    """Delete artifacts gone from the source, with what they own."""
    if removed:
        uids = sorted(removed)
        _clear_outgoing(store, uids)
        store.delete_nodes("Artifact", uids)


def _dependency(src: str, row: dict) -> Dependency:
    values = {f: row.get(f) for f in DEP_FIELDS if row.get(f) is not None}
    return Dependency(artifact_uid=src, **values)


def _unresolved(store, *, skip: set[str] = frozenset(), source: str | None = None):
    """Unresolved entries of the whole graph (or of one source), except those of ``skip``."""
    rows = lookup.unresolved_entries(store, DEP_FIELDS, source)
    return [_dependency(r["src"], r) for r in rows if r["src"] not in skip]


def _settle(store, found, report) -> None:
    """Replace the ``UnresolvedDependency`` of each entry in ``found`` by its edges."""
    if found:
        store.delete_nodes("UnresolvedDependency", [r.entry for r in found])
        _write_resolutions(store, found, report)


def count_resolution(store, summary) -> list[Dependency]:
    """Edges and unresolved entries of the source's artifacts, read back from the graph.

    Counted in the engine: returning every edge costs more than the rest of an unchanged
    re-ingest. Returns the missing entries, for :func:`resolvable`.
    """
    summary.edges = lookup.dependency_count(store, summary.uid)
    rows = lookup.ambiguous_entries(store, summary.uid)
    ambiguous: dict[str, dict] = {}
    for row in rows:
        item = ambiguous.setdefault(
            row["entry"],
            {
                "alias": row["alias"],
                "entry": row["entry"],
                "tags": row["tags"],
                "status": "ambiguous",
                "candidates": [],
            },
        )
        item["candidates"].append(row["target"])
    missing = lookup.unresolved_entries(store, DEP_FIELDS, summary.uid)
    for item in ambiguous.values():
        item["candidates"].sort()
    summary.unresolved = [
        {
            "alias": r["alias"],
            "entry": r["entry"],
            "tags": r["tags"],
            "status": "missing",
            "candidates": [],
        }
        for r in missing
    ] + sorted(ambiguous.values(), key=lambda item: item["entry"])
    summary.missing, summary.ambiguous = len(missing), len(ambiguous)
    return [_dependency(r["src"], r) for r in missing]


# --- the store's ingest lock ------------------------------------------------------------


class _Reentered(Held):
    reentered = True

    def __init__(self, outer: Held):
        self.outer = outer

    def confirm(self) -> None:
        self.outer.confirm()


#: The locks this process holds, by store and thread, so that a thread can nest them.
_HELD: dict[tuple[str, str, int], Held] = {}


def notice(text: str) -> None:
    """Tell the person at the terminal why ingest waits (stderr, the progress bars' stream)."""
    print(text, file=sys.stderr, flush=True)


@contextmanager
def write_lock(store, tell: Callable[[str], None] = notice) -> Iterator[Held]:
    """Hold the ingest lock of ``store`` for the block; wait, saying so, while another has it.

    Parameters
    ----------
    store : GraphStore
        Its :meth:`~ckg.store.GraphStore.ingest_lock` is taken.
    tell : callable
        Called once with ``waiting for another ingest into <where> (pid N) ...`` when the
        lock is held by another process.

    Yields
    ------
    Held
        Nested in a block of the same thread and store, the lock is not taken again.

    Raises
    ------
    StoreUnavailable
        The lock file cannot be opened, or the store cannot be reached.

    Examples
    --------
    >>> with write_lock(kg.store) as held:                      # doctest: +SKIP
    ...     ...  # read the graph, write
    ...     held.confirm()
    """
    key = (store.engine, store.location, threading.get_ident())
    if key in _HELD:
        yield _Reentered(_HELD[key])
        return
    with store.ingest_lock(tell) as held:
        _HELD[key] = held
        try:
            yield held
        finally:
            del _HELD[key]
