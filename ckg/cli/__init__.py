"""ckg's command line. ``main`` is the console entry point."""

import importlib
import sys

from ckg.cli.app import app, settings
from ckg.core.config import private_files
from ckg.core.errors import CkgError, UsageError

#: The modules whose import registers the commands, in the order ``ckg --help`` lists them:
#: the way through ckg, from ingesting to looking at the results.
COMMAND_MODULES = ("ingest", "plan", "run", "runs", "rm", "cluster", "pareto", "query", "results",
                   "reproduce", "transfer", "cache", "serve", "db")
for _module in COMMAND_MODULES:
    importlib.import_module(f"ckg.cli.{_module}")


def main() -> None:
    """Run the CLI; a CkgError becomes one line on stderr and its exit code.

    Everything the command creates is private to the user (:func:`ckg.core.config.private_files`).
    """
    try:
        with private_files():
            _check_text(sys.argv[1:])
            # Outside standalone mode click returns the code of a ``typer.Exit`` instead of
            # exiting with it.
            code = app(standalone_mode=False)
    except CkgError as exc:
        if settings.debug:
            raise
        print(f"ckg: error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except SystemExit:
        raise
    except Exception as exc:  # typer/click usage errors and aborts
        code = _usage_exit(exc)
        if code is None:
            raise
        sys.exit(code)
    if isinstance(code, int) and code:
        sys.exit(code)


def _usage_exit(exc: Exception) -> int | None:
    """Click-style usage errors print themselves and exit 2; anything else is a bug."""
    show = getattr(exc, "show", None)
    exit_code = getattr(exc, "exit_code", None)
    if show is not None and exit_code is not None:
        show()
        return exit_code
    return None


def _check_text(args: list[str]) -> None:
    """Refuse an argument that is not UTF-8 text (Python keeps its bytes as lone surrogates):
    the graph, its queries and ckg's files hold text only."""
    for arg in args:
        try:
            arg.encode()
        except UnicodeEncodeError:
            raise UsageError(f"{arg!r} is not valid UTF-8 text") from None
