"""The MLC and CM scripts of sources, as the script runner indexes them.

:func:`source_stamps` is what an index of the sources' scripts is keyed by (it changes when
a source is ingested again); :func:`repo_metas` and :func:`script_rows` are what the index
holds. Each is one portable Cypher query (FalkorDB and Neo4j 5).
"""

_SCRIPTS = """
UNWIND $sources AS src
MATCH (s:Source {uid: src})-[:CONTAINS]->(a:Artifact)
WHERE a.format IN ['mlc', 'cm'] AND a.kind = 'script'
RETURN a.uid AS uid, a.alias AS alias, a.tags AS tags, a.meta AS meta, a.path AS path,
       a.format AS format, s.uid AS source_uid, s.location AS location, s.name AS name
"""
_SOURCES = """
UNWIND $sources AS src
MATCH (s:Source {uid: src})
RETURN s.uid AS uid, s.digest AS digest, s.ingested_at AS ingested_at
"""
_REPO_META = """
UNWIND $sources AS src
MATCH (s:Source {uid: src})-[:CONTAINS]->(a:Artifact {kind: 'repo'})
RETURN s.uid AS source_uid, a.meta AS meta
"""


def source_stamps(store, sources: list[str]) -> list[dict]:
    """The ``uid``, ``digest`` and ``ingested_at`` of each of the ``sources`` in the graph."""
    return store.run(_SOURCES, {"sources": sources})


def repo_metas(store, sources: list[str]) -> list[dict]:
    """The ``meta`` (JSON text) of the repository artifact of each of the ``sources`` that
    has one, with its ``source_uid``."""
    return store.run(_REPO_META, {"sources": sources})


def script_rows(store, sources: list[str]) -> list[dict]:
    """Every MLC or CM script of the ``sources``: its ``uid``, ``alias``, ``tags``, ``meta``
    (JSON text), ``path`` (in its source) and ``format``, and its source's ``source_uid``,
    ``location`` and ``name``."""
    return store.run(_SCRIPTS, {"sources": sources})
