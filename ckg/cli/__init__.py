"""ckg's command line. ``main`` is the console entry point."""

import sys

from ckg.cli import cache, db, ingest, pareto, plan, query, results, run  # noqa: F401 - importing registers the commands
from ckg.cli.app import app, settings
from ckg.errors import CkgError


def main() -> None:
    """Run the CLI; a CkgError becomes one line on stderr and its exit code."""
    try:
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
