"""The command registry of ``ckg.cli``: every command is named with the module that registers
it, and a command's process imports that module only."""

import subprocess
import sys

from ckg.cli import COMMAND_MODULES, COMMANDS, load_commands
from ckg.cli.app import app

load_commands()  # every command on app, as `ckg --help` lists them


def _module(callback) -> str:
    return callback.__module__.removeprefix("ckg.cli.")


def test_every_command_and_group_is_named_with_its_module():
    registered = {info.name: _module(info.callback) for info in app.registered_commands}
    for group in app.registered_groups:
        modules = {_module(info.callback) for info in group.typer_instance.registered_commands}
        assert len(modules) == 1, f"ckg {group.name}: commands registered by {modules}"
        registered[group.name] = modules.pop()
    assert registered == COMMANDS
    assert set(COMMANDS.values()) == set(COMMAND_MODULES)


def test_a_command_imports_its_own_module_only():
    code = (
        "import sys\n"
        "from ckg.cli import main\n"
        "sys.argv = ['ckg', '--db', 'embedded', 'find', '--help']\n"
        "try:\n"
        "    main()\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(sorted(m for m in sys.modules if m.startswith('ckg.cli.')))\n"
        "print(sorted(m for m in ('rich', 'numpy', 'networkx', 'optuna') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    *_, modules, heavy = done.stdout.splitlines()
    assert modules == "['ckg.cli.app', 'ckg.cli.ingest', 'ckg.cli.mlc']"
    assert heavy == "[]"
