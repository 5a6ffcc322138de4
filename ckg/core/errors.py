"""Errors a user can cause, one root and branches by meaning.

The CLI catches :class:`CkgError` in one place and prints its message as one line
(exit code 1, or 2 for :class:`UsageError` and :class:`NotFound`: a malformed flag or an
unknown name); ``--debug`` shows the traceback.
"""


class CkgError(Exception):
    """Root of every error ckg raises on purpose."""

    exit_code = 1


class UsageError(CkgError):
    """A flag, parameter or value given on the command line is malformed or unknown."""

    exit_code = 2


class NotFound(CkgError):
    """A named artifact, query, source or metric does not exist."""

    exit_code = 2


class InvalidInput(CkgError):
    """A file or value could not be read: malformed YAML or JSON, a bad table row."""


class UnsafeArchive(InvalidInput):
    """An archive member would escape its extraction root, or the archive is a bomb."""


class ArchiveTooLarge(UnsafeArchive):
    """An archive as a whole passed a bound: bytes unpacked or read, members, or ratio."""


class CycleError(CkgError):
    """The planned dependency graph still has a cycle after guards were evaluated."""


class RunFailed(CkgError):
    """A step of a run exited non-zero, timed out or could not be started."""


class StoreUnavailable(CkgError):
    """The graph database cannot be reached, refused the credentials or cannot be written."""


class QueryError(CkgError):
    """The database engine refused a Cypher statement; the message is the engine's."""


class MissingExtra(CkgError):
    """A command needs packages that only one of ckg's extras installs (``ckg[serve]``)."""


def require_extra(extra: str, *modules: str, what: str) -> None:
    """Refuse, in one line naming the extra to install, when a module of ``modules`` is absent.

    Looks the modules up without importing them, so the check costs no import time.

    Parameters
    ----------
    extra : str
        The extra of ckg's ``pyproject.toml`` that brings the modules (``serve``).
    *modules : str
        Top-level module names, as imported (``sklearn``, not ``scikit-learn``).
    what : str
        What needs them, to start the message with (``ckg serve``).

    Raises
    ------
    MissingExtra
        Naming the first missing module and the ``pip install`` command that brings it.

    Examples
    --------
    >>> require_extra("demo", "json", what="ckg demo")
    >>> require_extra("demo", "json", "no_such_module", what="ckg demo")
    Traceback (most recent call last):
    ckg.core.errors.MissingExtra: ckg demo needs no_such_module: pip install 'ckg[demo]'
    """
    import importlib.util

    for module in modules:
        if importlib.util.find_spec(module) is None:
            raise MissingExtra(f"{what} needs {module}: pip install 'ckg[{extra}]'")


def did_you_mean(name: str, names, *, cutoff: float = 0.6) -> str:
    """A hint naming up to three of ``names`` close to ``name`` (same letters in another case
    included), to end a NotFound message with; ``""`` when none is close.

    >>> did_you_mean("SNLi", ["SNLI", "SQuAD1.1", "MultiNLI"])
    " (did you mean 'SNLI'?)"
    >>> did_you_mean("zzz", ["SNLI"])
    ''
    """
    import difflib

    names = list(names)
    near = difflib.get_close_matches(name, names, n=3, cutoff=cutoff)
    near += [n for n in names if n.casefold() == name.casefold() and n not in near][:1]
    return f" (did you mean {', '.join(map(repr, near))}?)" if near else ""
