"""The planner's two reads from the graph store: the target, and its dependency subgraph.

Both are single portable Cypher queries (FalkorDB and Neo4j 5). The subgraph query follows
``DEPENDS_ON`` from the target with a variable-length pattern, keeps each reachable artifact
once, and returns it with its outgoing ``DEPENDS_ON`` and ``NEEDS`` entries, so that
:func:`ckg.plan.core.load_graph` gets everything in one round trip.
"""

from ckg.errors import UsageError

_ARTIFACT = "a.uid AS uid, a.alias AS alias, a.kind AS kind, a.path AS path, a.tags AS tags"

FIND_BY_NAME = f"MATCH (a:Artifact) WHERE a.uid = $name OR a.alias = $name RETURN {_ARTIFACT}"
FIND_BY_TAGS = f"MATCH (a:Artifact) WHERE all(t IN $tags WHERE t IN a.tags) RETURN {_ARTIFACT}"

SUBGRAPH = """
MATCH (t:Artifact {uid: $uid})-[:DEPENDS_ON*0..]->(a:Artifact)
WITH DISTINCT a
OPTIONAL MATCH (a)-[d:DEPENDS_ON]->(b:Artifact)
WITH a, collect({dst: b.uid, kind: d.kind, position: d.position, tags: d.tags,
                 names: d.names, guard: d.guard, via_variation: d.via_variation,
                 entry: d.entry, version: d.version, version_min: d.version_min,
                 version_max: d.version_max}) AS deps
OPTIONAL MATCH (a)-[:NEEDS]->(u:UnresolvedDependency)
RETURN a.uid AS uid, a.alias AS alias, a.kind AS kind, a.format AS format, a.path AS path,
       a.source_uid AS source_uid, a.tags AS tags, a.meta AS meta, deps,
       collect({entry: u.uid, kind: u.kind, position: u.position, tags: u.tags,
                names: u.names, guard: u.guard, via_variation: u.via_variation}) AS needs
"""


def find_target(store, target: str) -> tuple[str, list[str]]:
    """The uid a target names, and the variations written in it.

    Parameters
    ----------
    store : ckg.store.GraphStore
    target : str
        An artifact uid or alias, or tags separated by commas or spaces (``get,python3``);
        ``_name`` tags are variations of the target, as in CM.

    Returns
    -------
    (str, list of str)
        The artifact uid and the variation names (without ``_``).

    Raises
    ------
    UsageError
        If nothing matches, or several artifacts do (they are listed).
    """
    words = [w for w in target.replace(",", " ").split() if w]
    plain = [w for w in words if not w.startswith("_")]
    wanted = [w[1:] for w in words if w.startswith("_")]
    if not plain:
        raise UsageError(f"target {target!r} names no artifact, only variations")
    rows = store.run(FIND_BY_NAME, {"name": plain[0]}) if len(plain) == 1 else []
    if not rows:
        rows = store.run(FIND_BY_TAGS, {"tags": plain})
    if not rows:
        raise UsageError(f"unknown target {target!r}: no artifact has that uid, alias or tags")
    if len(rows) > 1:
        named = ", ".join(sorted(f"{r['alias']} ({r['uid']})" for r in rows)[:10])
        raise UsageError(f"target {target!r} is ambiguous: {len(rows)} artifacts match: {named}")
    return rows[0]["uid"], wanted


def fetch_subgraph(store, uid: str) -> tuple[list[dict], list[dict], list[dict]]:
    """Artifacts reachable from ``uid`` by ``DEPENDS_ON``, their entries: one query.

    Returns
    -------
    (artifacts, edges, unresolved)
        Rows for :func:`ckg.plan.core.load_graph`.
    """
    artifacts, edges, unresolved = [], [], []
    for row in store.run(SUBGRAPH, {"uid": uid}):
        artifacts.append({k: row[k] for k in row if k not in ("deps", "needs")})
        edges += [{"src": row["uid"], **d} for d in row["deps"] if d.get("dst")]
        unresolved += [{"src": row["uid"], **u} for u in row["needs"] if u.get("entry")]
    return artifacts, edges, unresolved
