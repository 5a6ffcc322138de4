"""The README and the CLI agree: CI runs the README's commands, every command is documented."""

import re
from pathlib import Path

import typer.main
from typer.testing import CliRunner

from ckg.cli import app, load_commands

load_commands()  # every command on app, as `ckg --help` lists them

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


def _groups(group=None, prefix=("ckg",)):
    """Each command group (the root first) and the words that call it."""
    group = group or typer.main.get_command(app)
    yield prefix, group
    for name, command in sorted(group.commands.items()):
        if hasattr(command, "commands"):
            yield from _groups(command, (*prefix, name))


def test_help_lists_each_command_with_its_whole_first_sentence():
    runner = CliRunner()
    for words, group in _groups():
        shown = runner.invoke(app, [*words[1:], "--help"], terminal_width=80)
        assert shown.exit_code == 0, shown.output
        listing = " ".join(shown.output.partition("\nCommands:\n")[2].split())
        for name, command in group.commands.items():
            first = " ".join(command.help.partition("\n\n")[0].split())
            first = re.match(r"(.+?\.)(?= [^a-z]|$)", first).group(1)  # what click ends at
            assert f"{name} {first}" in listing, f"{' '.join(words)} --help cuts {name}'s help"


def test_every_command_is_in_the_readme_or_the_docs():
    # Beside the CLI reference, which lists every option: where the command fits, in prose.
    text = "\n".join([README, *(p.read_text() for p in sorted((REPO / "docs").glob("*.md")))])
    missing = [path for path, _ in commands() if not re.search(rf"\b{path}\b", text)]
    assert not missing, f"commands named in neither README.md nor docs/*.md: {missing}"


def test_help_shows_every_arguments_help():
    runner = CliRunner()
    for path, command in commands():
        shown = " ".join(runner.invoke(app, [*path.split()[1:], "--help"]).output.split())
        for param in command.params:
            if param.param_type_name == "argument":
                assert param.help, f"{path}: {param.name} has no help"
                assert " ".join(param.help.split()) in shown, f"{path} --help: {param.name}"


def _slug(heading: str) -> str:
    """A heading's anchor as GitHub makes it: lower case, punctuation dropped, spaces to -."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    text = re.sub(r"(?ms)^```.*?^```", "", path.read_text())  # no headings inside code
    return {_slug(h) for h in re.findall(r"(?m)^#{1,6} (.+)$", text)}


def test_every_link_between_the_readme_and_the_docs_reaches_its_file_and_heading():
    pages = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    broken = []
    for page in pages:
        text = re.sub(r"(?ms)^```.*?^```", "", page.read_text())
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
                continue
            file, _, anchor = target.partition("#")
            resolved = (page.parent / file) if file else page
            if not resolved.exists() or (anchor and anchor not in _anchors(resolved)):
                broken.append(f"{page.relative_to(REPO)}: {target}")
    assert not broken, broken
    linked = set(re.findall(r"\]\(docs/([\w-]+\.md)", README))
    # Every page reachable from the README; the site's home page lists them all again.
    assert {p.name for p in (REPO / "docs").glob("*.md")} - linked <= {"index.md"}


def test_files_that_point_into_the_docs_point_at_pages_that_exist():
    compose = (REPO / "docker-compose.yml").read_text()
    named = re.findall(r"docs/[\w/.-]+\.md", compose)
    assert named and all((REPO / path).is_file() for path in named), named
