"""Importers: pure functions from a file tree to records; they never write."""

import importlib
from types import ModuleType

#: The importer module of a format, where its name differs (``ckg.formats.<module>.read``).
MODULES = {"ckg": "ckgyaml"}


def importer(fmt: str) -> ModuleType:
    """The module whose ``read(root, source_uid, files)`` reads format ``fmt``.

    >>> importer("ckg").__name__, importer("mlc").__name__
    ('ckg.formats.ckgyaml', 'ckg.formats.mlc')
    """
    return importlib.import_module(f"ckg.formats.{MODULES.get(fmt, fmt)}")
