"""Graph stores: one interface (:class:`GraphStore`), two engines, chosen by a URI.

``embedded`` (the default) is FalkorDB run by ckg under ``CKG_HOME``; ``bolt://``,
``neo4j://`` and ``neo4j+s://`` URIs reach a Neo4j 5 server. Each engine's import is lazy
so that commands which never touch Neo4j do not pay for its driver.
"""

from ckg.store.base import BATCH_SIZE, GraphStore, Transaction

NEO4J_SCHEMES = ("bolt://", "bolt+s://", "bolt+ssc://", "neo4j://", "neo4j+s://", "neo4j+ssc://")


def lean_neo4j_driver() -> None:
    """Keep the Neo4j driver from importing numpy, pandas and pyarrow, which it does whenever
    they are installed, for result conversions (``to_df``, vectors) ckg never asks for: about
    0.45 s of the 0.7 s its import takes. The driver reads None as not installed.

    Only for a process that holds nothing but ckg's code, which never asks for them: the
    ``ckg`` command's (:mod:`ckg.entry`) and the resident's (:mod:`ckg.cli.resident`), whose
    children inherit it; never on ``import ckg``. Nothing once the driver is imported.
    """
    import sys
    import types

    if "neo4j" not in sys.modules:
        extras = types.ModuleType("neo4j._optional_deps")
        extras.np = extras.pd = extras.pa = extras.pa_compute = None
        sys.modules["neo4j._optional_deps"] = extras


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


__all__ = ["BATCH_SIZE", "GraphStore", "Transaction", "lean_neo4j_driver", "open_store"]
