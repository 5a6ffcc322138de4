"""ckg, the Collective Knowledge Graph: research artifacts, runs and results in one graph."""

__version__ = "0.1.0"


def open(db=None, *, home=None):  # noqa: A001 - ckg.open() mirrors the built-in on purpose
    """Open ckg's graph; see :func:`ckg.api.open`."""
    from ckg.api import open as _open

    return _open(db, home=home)
