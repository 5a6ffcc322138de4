"""The README and the CLI agree: CI runs the README's commands, every command is documented."""

import re
from pathlib import Path

import typer.main

from ckg.cli import app

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()


def readme_block_after(heading: str) -> str:
    section = README.split(f"## {heading}\n", 1)[1]
    return re.search(r"```bash\n(.+?)\n```", section, re.S).group(1).strip()


def commands(group=None, prefix="ckg"):
    group = group or typer.main.get_command(app)
    for name, command in sorted(group.commands.items()):
        path = f"{prefix} {name}"
        if hasattr(command, "commands"):
            yield from commands(command, path)
        else:
            yield path, command


def test_ci_runs_the_readme_install_and_test_commands_unchanged():
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    install = readme_block_after("Install")
    test = readme_block_after("Test")
    assert install in ci
    assert test in ci
    assert ci.index(install) < ci.index(test)


def test_every_command_has_help_with_an_example():
    for path, command in commands():
        assert command.help and command.help.strip(), f"{path} has no help"
        assert "Example:" in command.help, f"{path} has no Example: in its help"


def test_every_command_is_in_the_readme():
    missing = [path for path, _ in commands() if not re.search(rf"\b{path}\b", README)]
    assert not missing, f"commands not documented in README.md: {missing}"
