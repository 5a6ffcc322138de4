"""MkDocs hook: the CLI reference page, ``cli.md``, written from ckg's commands as the site
is built, so that it cannot drift from them.

Every command and command group that ``ckg --help`` lists, in its order, with its usage
line, its whole help (its ``Example:`` paragraphs as shell blocks), and its arguments and options
with their help, type or choices, default and environment variable. A command without help
or without an example, and an argument or option without help, is a warning, which
``mkdocs build --strict`` turns into a failed build.
"""

import html
import logging

import click
import typer.main
from mkdocs.structure.files import File

from ckg.cli import app, load_commands

#: The generated page, as the nav of mkdocs.yml names it.
PAGE = "cli.md"

log = logging.getLogger("mkdocs.hooks.cli_reference")


def on_files(files, config):
    files.append(File.generated(config, PAGE, content=reference()))
    return files


def reference() -> str:
    """The Markdown of the CLI reference: the global options, then every command."""
    load_commands()
    root = typer.main.get_command(app)
    ctx = click.Context(root, info_name="ckg")
    lines = [
        "# CLI reference",
        "",
        "Written from ckg's commands each time this site is built: what `ckg --help` and",
        "`ckg COMMAND --help` show, with each option's default. Every command takes `--help`.",
        "",
        *_usage(root, ctx),
        *_help(root.help),
        "## Global options",
        "",
        "Given before the command: `ckg --db bolt://localhost:7687 runs`.",
        "",
        *_params(root, ctx),
        *_commands(root, ctx, depth=2),
    ]
    return "\n".join(lines) + "\n"


def _commands(group: click.Group, ctx: click.Context, depth: int) -> list[str]:
    """Each command of ``group`` as a section of heading level ``depth``, a group's own
    commands one level deeper."""
    lines = []
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if command is None or command.hidden:
            continue
        sub = click.Context(command, info_name=name, parent=ctx)
        lines += [f"{'#' * depth} {sub.command_path}", ""]
        if not command.help:
            log.warning(f"{sub.command_path} has no help")
        elif not isinstance(command, click.Group) and "Example:" not in command.help:
            log.warning(f"{sub.command_path} has no Example: in its help")
        lines += [*_usage(command, sub), *_help(command.help), *_params(command, sub)]
        if isinstance(command, click.Group):
            lines += _commands(command, sub, depth + 1)
    return lines


def _help(text: str | None) -> list[str]:
    """A help text's paragraphs as Markdown: prose as it is (click rewraps it too), and each
    run of ``Example:`` paragraphs as one shell block."""
    lines = []
    examples = []
    for paragraph in (text or "").split("\n\n"):
        words = " ".join(paragraph.split())
        if words.startswith("Example:"):
            examples.append(words.removeprefix("Example:").strip())
            continue
        lines += _examples(examples)
        examples = []
        if words:
            lines += [html.escape(words, quote=False), ""]
    return lines + _examples(examples)


def _examples(examples: list[str]) -> list[str]:
    if not examples:
        return []
    return ["Example" + ("s:" if len(examples) > 1 else ":"), "", "```bash", *examples, "```", ""]


def _usage(command: click.Command, ctx: click.Context) -> list[str]:
    pieces = " ".join(command.collect_usage_pieces(ctx))
    return [f"Usage: `{ctx.command_path} {pieces}`", ""]


def _params(command: click.Command, ctx: click.Context) -> list[str]:
    """Tables of the arguments and the options ``--help`` shows (not ``--help`` itself)."""
    shown = [p for p in command.get_params(ctx) if not getattr(p, "hidden", False)]
    arguments = [p for p in shown if isinstance(p, click.Argument)]
    options = [p for p in shown if isinstance(p, click.Option) and "--help" not in p.opts]
    lines = []
    if arguments:
        lines += ["| Argument | Help |", "| --- | --- |"]
        for argument in arguments:
            help_ = _cell(_param_help(argument, ctx))
            lines.append(f"| {_code(argument.make_metavar(ctx))} | {help_} |")
        lines.append("")
    if options:
        lines += ["| Option | Value | Default | Help |", "| --- | --- | --- | --- |"]
        for option in options:
            names = ", ".join(_code(name) for name in option.opts + option.secondary_opts)
            value = "" if option.is_flag else _code(option.make_metavar(ctx))
            default = _default(option)
            help_ = _cell(_param_help(option, ctx))
            lines.append(f"| {names} | {value} | {default and _code(default)} | {help_} |")
        lines.append("")
    return lines


def _param_help(param: click.Parameter, ctx: click.Context) -> str:
    help_ = getattr(param, "help", None) or ""
    if not help_:
        name = "/".join(param.opts) if isinstance(param, click.Option) else param.make_metavar(ctx)
        log.warning(f"{ctx.command_path}: {name} has no help")
    if param.required:
        help_ += " Required."
    if isinstance(param, click.Option) and param.multiple and "repeatable" not in help_:
        help_ += " May be given more than once."
    if param.envvar:
        help_ += f" Environment variable: `{param.envvar}`."
    return help_.strip()


def _default(option: click.Option) -> str:
    """The default ``--help`` would show, or nothing where it is none, off or empty."""
    default = option.default
    if option.show_default is False or default is None or default is False:
        return ""
    if isinstance(default, (list, tuple)):
        return " ".join(str(d) for d in default)
    if isinstance(default, bool):
        return "on"
    return str(default)


def _cell(text: str) -> str:
    """Text in a Markdown table cell: its bars escaped, HTML's special characters too."""
    return html.escape(text, quote=False).replace("|", "\\|")


def _code(text: str) -> str:
    """Text as code in a table cell (as HTML: a bar in a Markdown code span ends the cell)."""
    return "<code>" + html.escape(text, quote=False).replace("|", "&#124;") + "</code>"
