"""The documentation site as CI builds it: ``mkdocs build --strict`` of mkdocs.yml, whose CLI
reference must list every command, argument and option that ``ckg --help`` and each
command's ``--help`` show; and the strict build failing on a broken link or on a command
without help."""

import html
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ckg.cli import app, load_commands

REPO = Path(__file__).resolve().parents[1]
QUIET = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}  # no banner about Material's successor


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The site, built as CI builds it: a real ``mkdocs build --strict`` process."""
    out = tmp_path_factory.mktemp("site")
    build = [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", "mkdocs.yml", "-d", out]
    done = subprocess.run(build, cwd=REPO, capture_output=True, text=True, env=QUIET)
    assert done.returncode == 0, done.stderr
    return out


def test_every_page_of_docs_is_built(site):
    pages = {p.stem for p in (REPO / "docs").glob("*.md")} - {"index"}
    assert (site / "index.html").is_file()
    assert {p for p in pages if not (site / p / "index.html").is_file()} == set()
    assert (site / "cli" / "index.html").is_file()


def help_tree(words=("ckg",)):
    """``{command words: (arguments, options, subcommands)}`` as each ``--help`` prints them,
    from ``ckg --help`` down, ``--help`` itself left out."""
    load_commands()
    shown = CliRunner().invoke(app, [*words[1:], "--help"], terminal_width=200)
    assert shown.exit_code == 0, shown.output
    sections = dict(re.findall(r"(?ms)^(\w+):\n(.*?)(?=^\S|\Z)", shown.output))
    rows = {
        name: [line.strip() for line in text.splitlines() if re.match(r"  \S", line)]
        for name, text in sections.items()
    }
    arguments = [row.split()[0] for row in rows.get("Arguments", [])]
    options = [
        flag
        for row in rows.get("Options", [])
        for flag in re.findall(r"(?<![\w-])--?[A-Za-z][\w.-]*", re.split(r"\s{2}", row)[0])
        if flag != "--help"
    ]
    commands = [row.split()[0] for row in rows.get("Commands", [])]
    tree = {words: (arguments, options, commands)}
    for name in commands:
        tree.update(help_tree((*words, name)))
    return tree


def test_the_cli_reference_lists_every_command_argument_and_option_help_shows(site):
    page = (site / "cli" / "index.html").read_text()
    tree = help_tree()
    assert len(tree) > 30  # every command: a help section that does not parse lists none
    missing = []
    for words, (arguments, options, _) in tree.items():
        if len(words) == 1:
            section = page.partition('id="global-options"')[2].partition("<h2")[0]
        else:
            start = page.find(f'id="{"-".join(words)}"')
            if start < 0:
                missing.append(" ".join(words))
                continue
            section = re.split(r"<h[1-6]", page[start:], maxsplit=1)[0]
        codes = {html.unescape(code) for code in re.findall(r"<code>(.*?)</code>", section)}
        missing += [
            f"{' '.join(words)} {name}" for name in [*arguments, *options] if name not in codes
        ]
    assert missing == []


def test_a_broken_link_a_page_left_out_or_a_command_without_help_fails_the_build(tmp_path):
    shutil.copy(REPO / "mkdocs.yml", tmp_path)
    docs = tmp_path / "docs"
    shutil.copytree(REPO / "docs", docs, ignore=shutil.ignore_patterns("*.png"))
    for image in (REPO / "docs").glob("*.png"):  # linked from the pages: empty will do
        (docs / image.name).touch()
    with (docs / "plan.md").open("a") as page:
        page.write("\nSee [the steps](run.md#no-such-heading) and [more](nowhere.md).\n")
    (docs / "new-page.md").write_text("# A page nobody added to the nav\n")
    # A command module beside ckg's, registered on the app as ckg.cli's modules are, which
    # the hook loads first.
    (tmp_path / "undocumented.py").write_text(
        "import typer\n"
        "from ckg.cli.app import app\n\n\n"
        '@app.command("undocumented")\n'
        'def undocumented(thing: str = typer.Argument(...), n: int = typer.Option(1, "--n")):\n'
        "    pass\n"
    )
    hook = docs / "hooks" / "cli_reference.py"
    hook.write_text(f"import undocumented  # noqa\n{hook.read_text()}")
    build = [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", tmp_path / "site"]
    done = subprocess.run(
        build,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**QUIET, "PYTHONPATH": str(tmp_path)},
    )
    assert done.returncode == 1
    faults = [
        "contains a link 'nowhere.md', but the target is not found",
        "does not contain an anchor '#no-such-heading'",
        'not included in the "nav" configuration:\n  - new-page.md',
        "ckg undocumented has no help",
        "ckg undocumented: THING has no help",
        "ckg undocumented: --n has no help",
    ]
    assert [fault for fault in faults if fault not in done.stderr] == []
