"""Graph stores: one interface (:class:`GraphStore`), two engines, chosen by a URI.

``embedded`` (the default) is FalkorDB run by ckg under ``CKG_HOME``; ``bolt://``,
``neo4j://`` and ``neo4j+s://`` URIs reach a Neo4j 5 server. Each engine's import is lazy
so that commands which never touch Neo4j do not pay for its driver.
"""

from ckg.store.base import BATCH_SIZE, GraphStore, Transaction

NEO4J_SCHEMES = ("bolt://", "bolt+s://", "bolt+ssc://", "neo4j://", "neo4j+s://", "neo4j+ssc://")


def open_store(uri: str | None = None, *, home=None, database: str | None = None) -> GraphStore:
    """Open the store that ``uri`` names (``embedded`` when None or empty).

    Parameters
    ----------
    uri : str, optional
        ``embedded`` or a Neo4j URI. Defaults to ``CKG_DB``, then ``NEO4J_URI``, then embedded.
    home : path, optional
        ckg's home folder for the embedded engine; defaults to :func:`ckg.core.config.home`.
    database : str, optional
        Neo4j database name; the server's default when None.
    """
    from ckg.core import config
    from ckg.core.errors import UsageError

    uri = uri or config.db_uri()
    if uri == "embedded":
        from ckg.store.embedded import EmbeddedStore

        return EmbeddedStore(home or config.home())
    if uri.startswith(NEO4J_SCHEMES):
        from ckg.store.neo4j import Neo4jStore

        return Neo4jStore(uri, database=database)
    raise UsageError(f"unknown database {uri!r}: use 'embedded' or a bolt:// or neo4j:// URI")


__all__ = ["BATCH_SIZE", "GraphStore", "Transaction", "open_store"]
