"""ckg's command line. ``main`` is the console entry point.

:func:`load_commands` registers the commands on ``app``; a command runs with its own
module's only.
"""

import importlib
import os
import sys

# app is imported from here (``from ckg.cli import app``) by the docs and their tests.
from ckg.cli.app import COMPLETE_VAR, app, click_command, settings  # noqa: F401
from ckg.core.config import private_files
from ckg.core.errors import CkgError, UsageError
from ckg.core.process import command_name

#: The modules whose import registers the commands, in the order ``ckg --help`` lists them:
#: the way through ckg, from ingesting to looking at the results.
COMMAND_MODULES = ("ingest", "plan", "db", "run", "runs", "rm", "cluster", "pareto", "query",
                   "results", "reproduce", "transfer", "cache", "serve", "completion",
                   "tune")
#: Each command or command group, and the module that registers it.
COMMANDS = {
    "ingest": "ingest", "find": "ingest", "show": "ingest", "deps": "ingest",
    "plan": "plan", "db": "db",
    "run": "run", "platform": "run", "trust": "run", "demo": "run",
    "runs": "runs", "diff": "runs", "rm": "rm", "worker": "cluster", "cluster": "cluster",
    "pareto": "pareto", "query": "query",
    "results": "results", "queries": "results", "compare": "results",
    "link": "reproduce", "reproduce": "reproduce", "export": "transfer", "cache": "cache",
    "serve": "serve", "completion": "completion", "tune": "tune",
}  # fmt: skip


def load_commands(command: str | None = None) -> None:
    """Register ``command``'s module on ``app``, or every command's when ``command`` is None
    or names none (the help lists them all, and click suggests the nearest name).

    A command imports only its own module: every command's module and what it imports, its
    fronts or its web view, cost tens of milliseconds that ``ckg find`` would pay for nothing.
    """
    for module in [COMMANDS[command]] if command in COMMANDS else COMMAND_MODULES:
        importlib.import_module(f"ckg.cli.{module}")


def main() -> None:
    """Run the CLI; a CkgError becomes one line on stderr and its exit code.

    Everything the command creates is private to the user (:func:`ckg.core.config.private_files`).
    """
    if COMPLETE_VAR in os.environ:  # the script of `ckg completion` asks what may follow
        from ckg.cli.completion import complete

        sys.exit(complete(os.environ[COMPLETE_VAR]))
    load_commands(command_name(sys.argv[1:]))
    try:
        with private_files():
            _check_text(sys.argv[1:])
            # Outside standalone mode click returns the code of a ``typer.Exit`` instead of
            # exiting with it. (typer's own ``app()`` would build the command again; with
            # pretty exceptions off it adds nothing else.)
            code = click_command()(standalone_mode=False)
            sys.stdout.flush()  # what is still buffered meets a closed pipe here, not at exit
    except BrokenPipeError:  # from that flush: click turns the command's own into SystemExit
        _closed_pipe()
    except CkgError as exc:
        if settings.debug:
            raise
        print(f"ckg: error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except SystemExit as exc:
        # click, and rich's console, end a command whose output lost its reader with status
        # 1, raised while handling the BrokenPipeError.
        if isinstance(exc.__context__, BrokenPipeError):
            _closed_pipe()
        raise
    except Exception as exc:  # typer/click usage errors and aborts
        code = _usage_exit(exc)
        if code is None:
            raise
        sys.exit(code)
    if isinstance(code, int) and code:
        sys.exit(code)


def _closed_pipe() -> None:
    """The reader of stdout went away (``ckg results list --csv | head -1``): end quietly with
    status 0, as Unix tools do, whatever the command was printing. stdout is pointed at
    /dev/null first, or Python's final flush at exit would fail on the same pipe and say so."""
    import os

    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    sys.exit(0)


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
