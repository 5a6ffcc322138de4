"""``ckg demo``: the example workload, ingested, run over its grid and recorded.

The example is ``ckg/run/demo_example``, inside the package so that an installed ckg has
it: scikit-learn classifiers on the digits set that ships with scikit-learn (the ``demo``
extra), so it runs offline on any CPU.
"""

from pathlib import Path

import yaml

from ckg.core import config
from ckg.core.errors import NotFound, require_extra
from ckg.formats.ckgyaml import FILENAME
from ckg.ingest import ingest
from ckg.run.runner import Options, run

EXAMPLE = Path(__file__).resolve().with_name("demo_example")


def run_demo(store, home: Path, path: str | Path | None = None, progress=None):
    """Ingest the workflow folder ``path`` (default: the example) with its reference results
    (``reported-results.yaml``: ingest reads a source's results files, so the runs record
    what they reproduce) into ``store``, run its grid with ckg's ``home``, return the
    :class:`ckg.run.Report`; ``progress`` as :func:`ckg.run.run` takes it.

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
    target = str(meta.get("uid") or meta["alias"])
    with config.private_files():
        ingest(store, home, str(folder))
        return run(store, home, target, Options(grid=meta.get("grid") or {}), progress)
