"""The ``ckg`` console script: starts the embedded server while the CLI is still importing.

A cold ``ckg find`` must start the server (about 0.25 s, mostly loading the FalkorDB module)
and import the CLI (about 0.1 s); doing both at once keeps it near the 0.3 s budget.
The thread only starts the server; the command itself opens the store and reports errors.
"""

import os
import sys
import threading

_NO_STORE = {"--help", "--version", "platform", "trust", "cluster", "completion"}


def main() -> None:
    if _uses_embedded_store(sys.argv[1:]):
        # Imported here, in this thread: two threads importing at once can deadlock or
        # see half-initialised modules.
        from ckg.core import config
        from ckg.core.errors import CkgError
        from ckg.store.server import ensure_server

        def start_server() -> None:
            try:
                ensure_server(config.home())
            except CkgError:
                pass  # the command opens the store itself and reports the error

        threading.Thread(target=start_server, daemon=True).start()
    else:
        _lean_neo4j_driver()
    from ckg.cli import main as cli_main

    cli_main()


def _lean_neo4j_driver() -> None:
    """Keep the Neo4j driver from importing numpy, pandas and pyarrow, which it does whenever
    they are installed, for result conversions (``to_df``, vectors) ckg never asks for: about
    0.45 s of the 0.7 s its import takes here. Only in this process, the ``ckg`` command's,
    which holds no other code that could want them; the driver reads None as not installed.
    """
    import types

    if "neo4j" not in sys.modules:
        extras = types.ModuleType("neo4j._optional_deps")
        extras.np = extras.pd = extras.pa = extras.pa_compute = None
        sys.modules["neo4j._optional_deps"] = extras


def _uses_embedded_store(args: list[str]) -> bool:
    if not args or _NO_STORE.intersection(args) or "--db" in args:
        return False
    if args[-2:] == ["db", "stop"]:  # stops the server, if one runs: never starts one
        return False
    return (os.environ.get("CKG_DB") or os.environ.get("NEO4J_URI") or "embedded") == "embedded"
