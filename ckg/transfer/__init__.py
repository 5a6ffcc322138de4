"""Moving results between machines and stores without a shared database.

- :mod:`ckg.transfer.runs`: runs with everything they link to and their logs, as a folder
  that another ckg reads with ``ckg ingest DIR`` (``ckg export RUN... --to DIR``).
- :mod:`ckg.transfer.graph`: a whole graph as a JSON lines file, or copied straight from one
  store into another (``ckg db export``, ``ckg db import``, ``ckg db copy``).
- :mod:`ckg.transfer.encode`: nodes and relationships as JSON, and where an export came from.

Reading a store and writing one go through :class:`ckg.store.GraphStore` only (``run`` and
``write_records``), so every direction works between the embedded engine and Neo4j.
"""

from ckg.transfer.graph import GraphSummary, copy_graph, export_graph, import_graph
from ckg.transfer.runs import ExportSummary, RunImport, export_runs, import_runs, is_export

__all__ = [
    "ExportSummary",
    "GraphSummary",
    "RunImport",
    "copy_graph",
    "export_graph",
    "export_runs",
    "import_graph",
    "import_runs",
    "is_export",
]
