"""``ckg completion``: the script that lets bash or zsh complete ckg's commands and options.

Click's own completion (:mod:`click.shell_completion`): the script calls ``ckg`` back with
the words typed so far in ``COMP_WORDS`` and ``COMP_CWORD`` and :data:`COMPLETE_VAR` set,
and :func:`complete` answers from the whole command tree.
"""

import click
import typer

from ckg.cli.app import COMPLETE_VAR, app, click_command

SHELLS = ("bash", "zsh")


@app.command("completion")
def completion(
    shell: str = typer.Argument(..., click_type=click.Choice(SHELLS), help="bash or zsh."),
) -> None:
    """Print the script that completes ckg's commands, options and choices in SHELL.

    Load it in each new shell from ~/.bashrc or ~/.zshrc (zsh: after compinit), or save
    it where your shell looks for completions (bash-completion:
    ~/.local/share/bash-completion/completions/ckg).

    Example: eval "$(ckg completion bash)"
    """
    from click.shell_completion import get_completion_class

    root = click.get_current_context().find_root().command
    print(get_completion_class(shell)(root, {}, "ckg", COMPLETE_VAR).source())


def complete(instruction: str) -> int:
    """Answer a completion script's request, ``bash_complete`` or ``zsh_complete``: print
    what may follow the words typed so far, one completion a line; return the exit code.

    Every command's module is loaded first: the word being completed may be a command's name.
    """
    from click.shell_completion import shell_complete

    from ckg.cli import load_commands

    load_commands()
    return shell_complete(click_command(), {}, "ckg", COMPLETE_VAR, instruction)
