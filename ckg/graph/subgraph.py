"""The planner's reads from the graph store: the target, and its dependency subgraph.

The target is chosen by :func:`ckg.graph.lookup.select` (as MLCFlow chooses among several
matches). A subgraph that spans several sources costs one more small query, for the
sources' locations and names, which order a dependency's candidates across them.

Both are single portable Cypher queries (FalkorDB and Neo4j 5). A variable-length pattern
(``-[:DEPENDS_ON*0..]->``) would be the obvious subgraph query, but FalkorDB enumerates every
path: on cm4mlops it did not return within the client's timeout even for a small app,
and fetching every artifact instead costs about 55 ms. :data:`SUBGRAPH` walks breadth-first
instead, one ``OPTIONAL MATCH`` per level, keeping a list of the artifacts seen (about 2 ms
for the largest cm4mlops script). Each ``DEPENDS_ON`` comes back as one string,
``entry-id<TAB>target-uid``: tags, names and guards are in the meta that comes anyway, and
a map per relationship made the reply about twice as slow to read. (Joining them all into
one string with ``reduce`` was faster still, but FalkorDB 4 dropped characters from such
concatenations.) :data:`LEVELS` levels cover cm4mlops (its deepest chain has 9); a deeper
graph costs one more query per further :data:`LEVELS` levels, started from the unexplored
frontier.
"""

LEVELS = 16

SOURCES = (
    "UNWIND $uids AS u MATCH (s:Source {uid: u}) "
    "RETURN s.uid AS uid, s.location AS location, s.name AS name"
)

# One breadth-first level: expand the frontier (a null stands in for an empty one, so that
# the row survives), keep what was not seen.
_LEVEL = """
UNWIND (CASE WHEN size(frontier) = 0 THEN [null] ELSE frontier END) AS f
OPTIONAL MATCH (f)-[:DEPENDS_ON]->(n:Artifact)
WITH seen, collect(DISTINCT n) AS found
WITH seen, [x IN found WHERE NOT x IN seen] AS frontier
WITH seen + frontier AS seen, frontier"""

SUBGRAPH = (
    "MATCH (t:Artifact) WHERE t.uid IN $uids\n"
    "WITH collect(t) AS seen, collect(t) AS frontier"
    + _LEVEL * LEVELS
    + r"""
WITH seen, [x IN frontier | x.uid] AS unexplored
UNWIND seen AS a
OPTIONAL MATCH (a)-[d:DEPENDS_ON]->(b:Artifact)
WITH a, unexplored, collect(d.entry + '\t' + b.uid) AS deps
OPTIONAL MATCH (a)-[:NEEDS]->(u:UnresolvedDependency)
RETURN a.uid AS uid, a.alias AS alias, a.kind AS kind, a.format AS format, a.path AS path,
       a.source_uid AS source_uid, a.tags AS tags, a.meta AS meta, deps, unexplored,
       collect(u.uid) AS needs
"""
)


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
        The artifact uid and the variation names (without ``_``). Where several artifacts
        match, the one MLCFlow chooses in quiet mode (:func:`ckg.graph.lookup.select`).

    Raises
    ------
    UsageError
        If nothing matches.
    """
    from ckg.graph.lookup import select

    chosen = select(store, target)
    return chosen.uid, list(chosen.variations)


def fetch_subgraph(store, uid: str) -> tuple[list[dict], list[dict], list[dict]]:
    """Artifacts reachable from ``uid`` by ``DEPENDS_ON`` and their entries.

    One query for graphs up to :data:`LEVELS` levels deep, one more per further
    :data:`LEVELS` levels.

    Returns
    -------
    (artifacts, edges, unresolved)
        Rows for :func:`ckg.plan.core.load_graph`.
    """
    artifacts, edges, unresolved = [], [], []
    seen: set[str] = set()  # rows taken
    explored: set[str] = set()  # artifacts whose dependencies were followed
    start = [uid]
    while start:
        left: set[str] = set()
        for row in store.run(SUBGRAPH, {"uids": start}):
            left.update(row["unexplored"] or [])
            if row["uid"] in seen:
                continue
            seen.add(row["uid"])
            artifacts.append({k: row[k] for k in row if k not in ("deps", "needs", "unexplored")})
            src = row["uid"]
            for pair in row["deps"]:
                entry, _, dst = pair.rpartition("\t")  # a uid has no tab: split at the last
                edges.append({"src": src, "entry": entry, "dst": dst})
            unresolved += [{"src": src, "entry": e} for e in row["needs"] if e]
        explored |= seen - left
        start = sorted(left - explored)
    sources = sorted({a["source_uid"] for a in artifacts if a.get("source_uid")})
    if len(sources) > 1:
        _add_sources(store, artifacts, sources)
    return artifacts, edges, unresolved


def _add_sources(store, artifacts: list[dict], uids: list[str]) -> None:
    """Give each artifact its source's location, name and place in the user's source
    order: what orders a dependency's candidates from several sources
    (:func:`ckg.core.resolve.choose`). A subgraph of one source needs none of it."""
    from ckg.core.resolve import source_rank
    from ckg.graph.lookup import source_order

    rows = store.run(SOURCES, {"uids": uids})
    found = {r["uid"]: r for r in rows}
    order = source_order()
    for a in artifacts:
        s = found.get(a.get("source_uid")) or {}
        a["source"], a["source_name"] = s.get("location") or "", s.get("name") or ""
        a["source_rank"] = source_rank(a, order) if order else 0
