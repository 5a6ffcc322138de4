"""Ingest: bring a Git repository, archive or folder into the graph, in three stages.

- :mod:`~ckg.ingest.core` reads the source (through :mod:`ckg.formats`), compares it with its
  manifest, and plans what to write: :func:`ingest`, :class:`IngestSummary`;
- :mod:`~ckg.ingest.write` writes the plan under the store's write lock and resolves
  dependency entries against the whole graph;
- :mod:`~ckg.ingest.link` links papers to the code that implements them.

Data flows down: core calls write, then link; neither calls back.
"""

from ckg.ingest.core import IngestSummary, StrictFailure, ingest

__all__ = ["IngestSummary", "StrictFailure", "ingest"]
