"""The planner's graph: artifacts and their dependency entries in a NetworkX ``DiGraph``.

:func:`load_graph` takes plain rows (as the store query or the importer's records give
them); metas and entries are decoded lazily, on the first visit of a node, so that the
artifacts a plan never reaches cost nothing but a node.
"""

import json
from collections.abc import Iterable, Mapping

import networkx as nx

from ckg.mlc.guards import GUARD_KEYS, parse_guard
from ckg.plan.model import KIND_ORDER


def as_list(value) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [t.strip() for t in value.split(",") if t.strip()]
    return [str(t).strip() for t in value if str(t).strip()]


def entry_from_meta(meta: Mapping, entry_id: str) -> dict:
    """The properties of a dependency entry, read from its artifact's meta by entry id.

    The id is ``uid#kind#via_variation#position`` (:func:`ckg.core.resolve.entry_id`); the
    entry is ``meta[kind][position]``, or ``meta["variations"][via][kind][position]``.
    An id that points nowhere in the meta gives an entry without tags or guards.

    >>> meta = {"variations": {"cuda": {"deps": [{"tags": "get,cuda", "names": "cuda"}]}}}
    >>> e = entry_from_meta(meta, "abc#deps#cuda#0")
    >>> e["kind"], e["via_variation"], e["tags"], e["names"]
    ('deps', 'cuda', ['get', 'cuda'], ['cuda'])
    """
    parts = entry_id.split("#", 2)
    _, kind, rest = parts if len(parts) == 3 else ("", "deps", "#")
    via, _, position = rest.rpartition("#")
    section = meta if not via else (meta.get("variations") or {}).get(via) or {}
    entries = section.get(kind) if isinstance(section, Mapping) else None
    index = int(position) if position.isdigit() else -1
    raw = entries[index] if isinstance(entries, list) and 0 <= index < len(entries) else {}
    raw = raw if isinstance(raw, Mapping) else {}
    prefixed = raw.get("update_tags_from_env_with_prefix") or {}
    tags_from_env = {
        prefix: as_list(keys) for prefix, keys in prefixed.items() if isinstance(prefix, str)
    }
    for key in as_list(raw.get("update_tags_from_env")):
        tags_from_env.setdefault("", []).append(key)
    return {
        "kind": kind,
        "position": max(index, 0),
        "tags_from_env": tags_from_env,
        "via_variation": via,
        "tags": as_list(raw.get("tags")),
        "names": as_list(raw.get("names")),
        "guard": {k: raw[k] for k in GUARD_KEYS if k in raw},
        "inherit": bool(raw.get("inherit_variation_tags")),
        "skip_inherit": as_list(raw.get("skip_inherit_variation_groups")),
        **{k: str(raw[k]) for k in ("version", "version_min", "version_max") if raw.get(k)},
    }


def load_graph(
    artifacts: Iterable[Mapping], edges: Iterable[Mapping], unresolved: Iterable[Mapping] = ()
) -> nx.DiGraph:
    """Build the planner's graph from Artifact rows and dependency rows.

    Parameters
    ----------
    artifacts : iterable of mapping
        Artifact properties: ``uid``, ``alias``, ``meta`` (dict or JSON text), and
        optionally ``kind``, ``format``, ``path``, ``source_uid``, ``tags``.
    edges : iterable of mapping
        One per ``DEPENDS_ON`` relationship: ``src``, ``dst`` and its properties
        (``kind``, ``position``, ``tags``, ``names``, ``guard``, ``via_variation``, ``entry``,
        ``version``, ``version_min``, ``version_max``). A row with only ``src``, ``dst``
        and ``entry`` is completed from the meta of ``src`` (:func:`entry_from_meta`).
    unresolved : iterable of mapping
        One per ``UnresolvedDependency`` reached by ``NEEDS``: ``src`` and its properties,
        or ``src`` and ``entry`` only.

    Returns
    -------
    networkx.DiGraph
        A node per artifact (attributes ``artifact``, ``meta``, ``rows``), an edge
        ``src -> dst`` wherever some entry of ``src`` resolved to ``dst``.
        :func:`entries_of` turns a node's rows into its dependency entries, in run order,
        each with ``targets`` (uids, empty when unresolved).

    Examples
    --------
    >>> g = load_graph([{"uid": "a", "alias": "app", "meta": {}},
    ...                 {"uid": "b", "alias": "lib", "meta": {}}],
    ...                [{"src": "a", "dst": "b", "kind": "deps", "position": 0, "tags": ["lib"]}])
    >>> sorted(g.edges), entries_of(g, "a")[0]["targets"]
    ([('a', 'b')], ['b'])
    """
    graph = nx.DiGraph()
    for row in artifacts:
        meta = row.get("meta") or {}
        artifact = {k: row.get(k) or "" for k in ("uid", "alias", "kind", "format", "path")}
        artifact["source_uid"] = row.get("source_uid") or ""
        artifact["tags"] = as_list(row.get("tags"))
        graph.add_node(row["uid"], artifact=artifact, meta=meta, rows=[], entries=None)
    for row, dst in [(e, e.get("dst")) for e in edges] + [(u, None) for u in unresolved]:
        if row["src"] in graph:
            graph.nodes[row["src"]]["rows"].append((row, dst))
            if dst is not None:
                graph.add_edge(row["src"], dst)
    return graph


def entries_of(graph: nx.DiGraph, uid: str) -> list[dict]:
    """The dependency entries of a node in run order, built from its rows on first use.

    Rows without ``kind`` are completed from the meta, so metas of artifacts the walk never
    reaches are never decoded.
    """
    data = graph.nodes[uid]
    if data["entries"] is not None:
        return data["entries"]
    entries: dict[str, dict] = {}
    for row, dst in data["rows"]:
        if row.get("entry") in entries:  # another target of an entry already read
            if dst is not None:
                entries[row["entry"]]["targets"].append(dst)
            continue
        from_meta = entry_from_meta(meta_of(graph, uid), row["entry"]) if row.get("entry") else {}
        if "kind" not in row:
            row = {**from_meta, **row}
        kind = row.get("kind") or "deps"
        via = row.get("via_variation") or ""
        position = int(row.get("position") or 0)
        entry_id = row.get("entry") or f"{uid}#{kind}#{via}#{position}"
        entry = entries.get(entry_id)
        if entry is None:
            entry = entries[entry_id] = {
                "entry": entry_id,
                "kind": kind,
                "position": position,
                "tags": as_list(row.get("tags")),
                "names": as_list(row.get("names")),
                "guard": parse_guard(row.get("guard")),
                "via_variation": via,
                "version": {
                    k: row[k] for k in ("version", "version_min", "version_max") if row.get(k)
                },
                "tags_from_env": from_meta.get("tags_from_env") or {},
                "inherit": from_meta.get("inherit", False),
                "skip_inherit": from_meta.get("skip_inherit") or [],
                "targets": [],
            }
        if dst is not None:
            entry["targets"].append(dst)
    data["entries"] = sorted(
        entries.values(),
        key=lambda e: (KIND_ORDER.get(e["kind"], 0), e["via_variation"], e["position"]),
    )
    return data["entries"]


def meta_of(graph: nx.DiGraph, uid: str) -> dict:
    """The node's meta as a dict, decoded from JSON text once, on first use."""
    data = graph.nodes[uid]
    if isinstance(data["meta"], str):
        data["meta"] = json.loads(data["meta"]) if data["meta"] else {}
    return data["meta"]
