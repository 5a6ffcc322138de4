"""The Python API: ``ckg.open()`` gives a :class:`KnowledgeGraph`, the CLI calls nothing else.

Each capability (ingest, find, plan, run, results, pareto) is a method here that delegates
to its own module, so this file stays a table of contents of what ckg can do.
"""

from pathlib import Path

from ckg import config
from ckg.store import GraphStore, open_store


class KnowledgeGraph:
    """A graph store plus ckg's home folder (caches, journal, trust list).

    Use as a context manager, or call :meth:`close`.
    """

    def __init__(self, store: GraphStore, home: Path):
        self.store = store
        self.home = home

    def __enter__(self) -> "KnowledgeGraph":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.store.close()

    def query(self, cypher: str, params: dict | None = None) -> list[dict]:
        """Run raw Cypher with parameters and return its rows as dicts."""
        return self.store.run(cypher, params or {})

    def status(self) -> dict:
        """Engine, location, and node and relationship counts per label and type."""
        return {"engine": self.store.engine, "location": self.store.location, **self.store.counts()}

    def reset(self) -> None:
        """Delete everything in the graph (the home folder's caches stay)."""
        self.store.reset()


def open(db: str | None = None, *, home: str | Path | None = None) -> KnowledgeGraph:  # noqa: A001
    """Open ckg's graph: ``embedded`` (default) or a Neo4j URI, schema ensured.

    Examples
    --------
    >>> import ckg
    >>> with ckg.open() as kg:            # doctest: +SKIP
    ...     kg.query("MATCH (a:Artifact) RETURN count(a) AS n")
    [{'n': 0}]
    """
    home_path = Path(home) if home else config.home()
    store = open_store(db, home=home_path)
    store.ensure_schema()
    return KnowledgeGraph(store, home_path)
