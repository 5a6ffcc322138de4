"""Look-ups over ingested artifacts: find by tags, show one, walk its dependency tree.

These run on every ``ckg find``, so this module imports nothing heavy: the store's rows
come back as dicts and CM's tag rules come from :mod:`ckg.resolve`.
"""

import json

from ckg.errors import NotFound, UsageError, did_you_mean
from ckg.resolve import match_tags, parse_tags

_SUMMARY = (
    "a.uid AS uid, a.alias AS alias, a.kind AS kind, a.format AS format, a.tags AS tags, "
    "a.variations AS variations, a.path AS path, a.source_uid AS source_uid"
)
_EDGE = (
    "r.entry AS entry, r.kind AS kind, r.tags AS tags, r.names AS names, r.guard AS guard, "
    "r.via_variation AS via_variation, r.position AS position, r.matches AS matches, "
    "r.version AS version, r.version_min AS version_min, r.version_max AS version_max"
)


def find(store, tags: str | list[str] = "", kind: str | None = None) -> list[dict]:
    """Artifacts matching ``tags`` with CM's rules, sorted by alias.

    Plain tags must all be present and ``-tag`` excludes (both filtered in Cypher);
    ``_x`` keeps artifacts declaring variation ``x`` (filtered here, as ``name.#`` needs it).

    Examples
    --------
    >>> find(kg.store, "get,python3,-src", kind="script")       # doctest: +SKIP
    [{'uid': 'd0b5dd74373f4a62', 'alias': 'get-python3', 'kind': 'script', ...}]
    """
    query = parse_tags(tags)
    rows = store.run(
        "MATCH (a:Artifact) WHERE all(t IN $plain WHERE t IN a.tags) "
        "AND none(t IN $excluded WHERE t IN a.tags) "
        "AND ($kind IS NULL OR a.kind = $kind) "
        f"RETURN {_SUMMARY} ORDER BY alias, uid",
        {"plain": list(query.plain), "excluded": list(query.excluded), "kind": kind},
    )
    return match_tags(tags, rows) if query.variations else rows


def artifact(store, alias_or_uid: str) -> dict:
    """The artifact whose uid, else whose alias, is ``alias_or_uid``.

    Raises
    ------
    NotFound
        No artifact has that uid or alias.
    UsageError
        Several artifacts share the alias; the message lists their uids and sources.
    """
    rows = store.run(
        "MATCH (a:Artifact) WHERE a.uid = $k OR a.alias = $k RETURN a ORDER BY a.uid",
        {"k": alias_or_uid},
    )
    nodes = [row["a"] for row in rows]
    by_uid = [n for n in nodes if n.get("uid") == alias_or_uid]
    if by_uid:
        return by_uid[0]
    if not nodes:
        aliases = [r["alias"] for r in store.run("MATCH (a:Artifact) RETURN a.alias AS alias")]
        hint = did_you_mean(alias_or_uid, filter(None, aliases))
        raise NotFound(f"no artifact with alias or uid {alias_or_uid!r}{hint}")
    if len(nodes) > 1:
        choices = ", ".join(
            f"{n['uid']} ({n.get('kind')}, source {n.get('source_uid')})" for n in nodes
        )
        raise UsageError(
            f"alias {alias_or_uid!r} names {len(nodes)} artifacts: {choices}; give a uid"
        )
    return nodes[0]


def show(store, alias_or_uid: str) -> dict:
    """One artifact with its meta, dependencies (resolved and not), variations and source.

    Examples
    --------
    >>> show(kg.store, "get-python3")["source"]["commit"]       # doctest: +SKIP
    'e1d5c7cf...'
    """
    node = artifact(store, alias_or_uid)
    uid = node["uid"]
    deps = store.run(
        f"MATCH (a:Artifact {{uid: $u}})-[r:DEPENDS_ON]->(b:Artifact) RETURN {_EDGE}, "
        "b.uid AS target_uid, b.alias AS target_alias ORDER BY kind, via_variation, position",
        {"u": uid},
    )
    unresolved = store.run(
        "MATCH (a:Artifact {uid: $u})-[:NEEDS]->(x:UnresolvedDependency) RETURN x "
        "ORDER BY x.kind, x.via_variation, x.position",
        {"u": uid},
    )
    variations = store.run(
        "MATCH (a:Artifact {uid: $u})-[:HAS_VARIATION]->(v:Variation) RETURN v ORDER BY v.name",
        {"u": uid},
    )
    used_by = store.run(
        "MATCH (b:Artifact)-[:DEPENDS_ON]->(a:Artifact {uid: $u}) "
        "RETURN DISTINCT b.uid AS uid, b.alias AS alias ORDER BY alias",
        {"u": uid},
    )
    source = store.get_node("Source", node.get("source_uid") or "")
    info = dict(node)
    try:
        info["meta"] = json.loads(node.get("meta") or "{}")
    except ValueError:
        pass  # keep the text as stored
    return {
        "artifact": info,
        "dependencies": deps,
        "unresolved": [row["x"] for row in unresolved],
        "variations": [row["v"] for row in variations],
        "used_by": used_by,
        "source": source,
    }


def deps(store, alias_or_uid: str, depth: int | None = None, reverse: bool = False) -> dict:
    """The dependency tree of an artifact (or of its dependents when ``reverse``).

    One query per level. A node is expanded where it first appears (breadth first); later
    appearances carry ``repeat: True`` and no children, which also cuts cycles. Unresolved
    entries appear as children with ``status: "missing"``.

    Returns
    -------
    dict
        ``{uid, alias, kind, children: [{uid, alias, kind, via: [edge...], children...}]}``
    """
    if depth is not None and depth < 0:
        raise UsageError(f"--depth must be 0 or more, got {depth}")
    node = artifact(store, alias_or_uid)
    root = {
        "uid": node["uid"],
        "alias": node.get("alias"),
        "kind": node.get("kind"),
        "children": [],
    }
    seen = {node["uid"]: root}
    frontier = [root]
    level = 0
    while frontier and (depth is None or level < depth):
        level += 1
        by_uid = {n["uid"]: n for n in frontier}
        frontier = []
        for row in _edges(store, list(by_uid), reverse):
            parent = by_uid[row["parent"]]
            child = next((c for c in parent["children"] if c.get("uid") == row["uid"]), None)
            if child is None or row["uid"] is None:
                child = {
                    "uid": row["uid"],
                    "alias": row["alias"],
                    "kind": row["kind"],
                    "status": row["status"],
                    "via": [],
                    "children": [],
                }
                if row["uid"] is not None and row["uid"] in seen:
                    child["repeat"] = True
                elif row["uid"] is not None:
                    seen[row["uid"]] = child
                    frontier.append(child)
                parent["children"].append(child)
            child["via"].append(row["via"])
            if row["status"] == "ambiguous":  # from every edge, whatever order they came in
                child["status"] = "ambiguous"
    return root


def _edges(store, uids: list[str], reverse: bool) -> list[dict]:
    pattern = (
        "(b:Artifact)-[r:DEPENDS_ON]->(a:Artifact)"
        if reverse
        else "(a:Artifact)-[r:DEPENDS_ON]->(b:Artifact)"
    )
    rows = store.run(
        f"MATCH {pattern} WHERE a.uid IN $uids RETURN a.uid AS parent, b.uid AS uid, "
        f"b.alias AS alias, b.kind AS target_kind, {_EDGE} "
        "ORDER BY parent, alias, uid, position, entry",
        {"uids": uids},
    )
    out = [_row(r, "ambiguous" if (r["matches"] or 1) > 1 else "ok") for r in rows]
    if not reverse:
        missing = store.run(
            "MATCH (a:Artifact)-[:NEEDS]->(x:UnresolvedDependency) WHERE a.uid IN $uids "
            "RETURN a.uid AS parent, x.kind AS kind, x.tags AS tags, x.names AS names, "
            "x.guard AS guard, x.via_variation AS via_variation, x.position AS position, "
            "x.uid AS entry ORDER BY parent, kind, position, entry",
            {"uids": uids},
        )
        out.extend(_row(r, "missing") for r in missing)
    return out


def _row(r: dict, status: str) -> dict:
    """One child of the tree: the target (None when missing) and the edge that leads to it."""
    via = {k: r.get(k) for k in ("kind", "tags", "names", "guard", "via_variation", "entry")}
    if status == "missing":
        return {
            "parent": r["parent"],
            "uid": None,
            "alias": ",".join(r["tags"] or []),
            "kind": None,
            "status": status,
            "via": via,
        }
    return {
        "parent": r["parent"],
        "uid": r["uid"],
        "alias": r["alias"],
        "kind": r["target_kind"],
        "status": status,
        "via": via,
    }
