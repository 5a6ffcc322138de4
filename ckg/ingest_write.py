"""Ingest's writes: resolve dependency entries and write one source's changes in order.

The order keeps a killed ingest repairable (see :mod:`ckg.ingest`): ``Source.complete`` set
false, artifacts and their edges merged, entries pointing at removed or re-tagged artifacts
detached, removed artifacts deleted, entries resolved again, ``complete`` set true.
"""

from datetime import UTC, datetime

from ckg.records import Dependency, Edge, Records
from ckg.store.base import BATCH_SIZE

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

_CANDIDATES = (
    "MATCH (a:Artifact) RETURN a.uid AS uid, a.alias AS alias, a.kind AS kind, "
    "a.tags AS tags, a.variations AS variations, a.source_uid AS source_uid"
)
_DEPENDS_ON = (
    "UNWIND $rows AS row MATCH (a:Artifact {uid: row.src}) MATCH (b:Artifact {uid: row.dst}) "
    "MERGE (a)-[r:DEPENDS_ON {entry: row.entry}]->(b) SET r += row.props"
)


def graph_artifacts(store) -> dict[str, dict]:
    return {row["uid"]: row for row in store.run(_CANDIDATES)}


def write_plan(store, uid: str, source_props: dict, plan, graph: dict, report) -> int:
    """Write the plan in the order that keeps a killed ingest repairable; return re-resolved.

    Besides the source's own entries, three kinds of entries of other artifacts are resolved
    again: those that pointed at a removed artifact, those that pointed at an artifact whose
    tags, variations or kind changed, and unresolved ones that the new artifacts may match.
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
    pending = _pending(store, set(written)) if groups else []
    _write_resolutions(store, _resolve(detached, candidates), report)
    found = [r for r in _resolve(pending, candidates) if r.matches]
    if found:
        store.write(
            "UNWIND $entries AS e MATCH (u:UnresolvedDependency {uid: e}) DETACH DELETE u",
            {"entries": [r.entry for r in found]},
        )
        _write_resolutions(store, found, report)

    done = {**source_props, "complete": True, "ingested_at": datetime.now(UTC).isoformat()}
    store.upsert_nodes("Source", [{"key": uid, "props": done}])
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
    from ckg.resolve import resolve

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
                {"src": r.dependency.artifact_uid, "dst": m, "entry": r.entry, "props": props}
                for m in r.matches
            )
        else:
            props.update(uid=r.entry, status="missing")
            unresolved.append({"key": r.entry, "props": props})
            needs.append({"src": r.dependency.artifact_uid, "dst": r.entry, "props": {}})
    for start in range(0, len(edges), BATCH_SIZE):
        store.write(_DEPENDS_ON, {"rows": edges[start : start + BATCH_SIZE]})
        report("edges", min(start + BATCH_SIZE, len(edges)), len(edges))
    if unresolved:
        store.upsert_nodes("UnresolvedDependency", unresolved)
        store.upsert_edges("NEEDS", "Artifact", "UnresolvedDependency", needs)


def _clear_outgoing(store, uids: list[str]) -> None:
    """Drop what a rewritten artifact owns (variations, unresolved entries, outgoing edges)."""
    if not uids:
        return
    store.write(
        "UNWIND $uids AS u MATCH (a:Artifact {uid: u})-[:HAS_VARIATION]->(v:Variation) "
        "DETACH DELETE v",
        {"uids": uids},
    )
    store.write(
        "UNWIND $uids AS u MATCH (a:Artifact {uid: u})-[:NEEDS]->(x:UnresolvedDependency) "
        "DETACH DELETE x",
        {"uids": uids},
    )
    store.write("UNWIND $uids AS u MATCH (a:Artifact {uid: u})-[r]->() DELETE r", {"uids": uids})


def _detach_incoming(store, targets: set[str], written: set[str]) -> list[Dependency]:
    """Delete every edge of the entries (of artifacts not rewritten) that point at ``targets``.

    Returns those entries, to be resolved again.
    """
    if not targets:
        return []
    fields = ", ".join(f"r.{f} AS {f}" for f in DEP_FIELDS)
    rows = store.run(
        f"MATCH (a:Artifact)-[r:DEPENDS_ON]->(b:Artifact) WHERE b.uid IN $targets "
        f"AND NOT a.uid IN $skip RETURN a.uid AS src, r.entry AS entry, {fields}",
        {"targets": sorted(targets), "skip": sorted(written | targets)},
    )
    entries = {row["entry"]: _dependency(row["src"], row) for row in rows}
    if entries:
        store.write(
            "MATCH ()-[r:DEPENDS_ON]->() WHERE r.entry IN $entries DELETE r",
            {"entries": sorted(entries)},
        )
    return list(entries.values())


def _remove(store, removed: set[str]) -> None:
    """Delete artifacts gone from the source, with what they own."""
    if removed:
        uids = sorted(removed)
        _clear_outgoing(store, uids)
        store.write("UNWIND $uids AS u MATCH (a:Artifact {uid: u}) DETACH DELETE a", {"uids": uids})


def _dependency(src: str, row: dict) -> Dependency:
    values = {f: row.get(f) for f in DEP_FIELDS if row.get(f) is not None}
    return Dependency(artifact_uid=src, **values)


def _pending(store, skip: set[str]) -> list[Dependency]:
    """Unresolved entries in the whole graph, except those of artifacts in ``skip``."""
    fields = ", ".join(f"u.{f} AS {f}" for f in DEP_FIELDS)
    rows = store.run(
        f"MATCH (a:Artifact)-[:NEEDS]->(u:UnresolvedDependency) RETURN a.uid AS src, {fields}"
    )
    return [_dependency(r["src"], r) for r in rows if r["src"] not in skip]


def count_resolution(store, summary) -> None:
    """Edges and unresolved entries of the source's artifacts, read back from the graph.

    Counted in the engine: returning every edge costs more than the rest of an unchanged
    re-ingest.
    """
    summary.edges = store.run(
        "MATCH (a:Artifact {source_uid: $s})-[r:DEPENDS_ON]->(:Artifact) RETURN count(r) AS n",
        {"s": summary.uid},
    )[0]["n"]
    rows = store.run(
        "MATCH (a:Artifact {source_uid: $s})-[r:DEPENDS_ON]->(b:Artifact) WHERE r.matches > 1 "
        "RETURN a.alias AS alias, r.entry AS entry, r.tags AS tags, b.alias AS target",
        {"s": summary.uid},
    )
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
    missing = store.run(
        "MATCH (a:Artifact {source_uid: $s})-[:NEEDS]->(u:UnresolvedDependency) "
        "RETURN a.alias AS alias, u.uid AS entry, u.tags AS tags",
        {"s": summary.uid},
    )
    for item in ambiguous.values():
        item["candidates"].sort()
    summary.unresolved = [
        {**row, "status": "missing", "candidates": []} for row in missing
    ] + sorted(ambiguous.values(), key=lambda item: item["entry"])
    summary.missing, summary.ambiguous = len(missing), len(ambiguous)
