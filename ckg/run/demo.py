"""``ckg demo``: the example workload, ingested, run over its grid and recorded.

The example is ``ckg/run/demo_example``, inside the package so that an installed ckg has
it: scikit-learn classifiers on the digits set that ships with scikit-learn (the ``demo``
extra), so it runs offline on any CPU.
"""

from pathlib import Path

import yaml

from ckg.errors import NotFound, require_extra
from importers.ckgyaml import FILENAME

EXAMPLE = Path(__file__).resolve().with_name("demo_example")


def run_demo(kg, path: str | Path | None = None, progress=None):
    """Ingest the workflow folder ``path`` (default: the example) with its reference results
    (``reported-results.yaml``: ingest reads a source's results files, so the runs record
    what they reproduce), run its grid, return the :class:`ckg.run.Report`; ``progress`` as
    :meth:`ckg.api.KnowledgeGraph.run` takes it.

    Raises
    ------
    NotFound
        When the folder holds no ``ckg.yaml``.
    MissingExtra
        When the example is to run without scikit-learn installed.
    """
    if path is None:
        require_extra("demo", "sklearn", what="ckg demo")
    folder = Path(path).expanduser().resolve() if path else EXAMPLE
    meta_file = folder / FILENAME
    if not meta_file.is_file():
        raise NotFound(f"{meta_file} not found: give a folder with a {FILENAME} (--path)")
    meta = yaml.safe_load(meta_file.read_text(encoding="utf-8"))
    kg.ingest(str(folder))
    target = str(meta.get("uid") or meta["alias"])
    return kg.run(target, grid=meta.get("grid") or {}, progress=progress)
