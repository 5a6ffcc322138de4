"""Importers: pure functions from a file tree to records; they never write."""

import importlib
from types import ModuleType

#: The importer module of a format, where its name differs (``importers.<module>.read``).
MODULES = {"ckg": "ckgyaml"}


def importer(fmt: str) -> ModuleType:
    """The module whose ``read(root, source_uid, files)`` reads format ``fmt``.

    >>> importer("ckg").__name__, importer("mlc").__name__
    ('importers.ckgyaml', 'importers.mlc')
    """
    return importlib.import_module(f"importers.{MODULES.get(fmt, fmt)}")
