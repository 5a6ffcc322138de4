"""ckg.cli.table draws rich's table byte for byte where it draws one, without importing rich."""

import io
import json
import os
import random
import subprocess
import sys

import pytest
from rich.console import Console
from rich.table import Table

from ckg.cli.table import plain_table, terminal_width

WORDS = ["a", "bb", "get-python3", "-", "8.903", "(s)", "x y z", "", "params", "µs", "522.6"]


def _rich(headers, rows, right, title, width) -> str:
    out = io.StringIO()
    table = Table(title=title)
    for i, header in enumerate(headers):
        table.add_column(header, justify="right" if i in right else "left", no_wrap=i % 2 == 0)
    for row in rows:
        table.add_row(*row)
    Console(file=out, width=width).print(table)
    return out.getvalue()


def test_a_plain_table_is_rich_s_table_byte_for_byte():
    draw = random.Random(25)
    drawn = 0
    for _ in range(300):
        columns = draw.randint(1, 5)
        headers = ["\n".join(draw.choices(WORDS, k=draw.choice((1, 1, 2)))) for _ in range(columns)]
        rows = [[draw.choice(WORDS) * draw.randint(1, 3) for _ in headers] for _ in range(3)]
        right = {i for i in range(columns) if draw.random() < 0.4}
        title = draw.choice([None, "", "t", "get-python3: experiment exp-7ca5fc63e6ac4d01"])
        width = draw.choice([20, 40, 80, 120])
        text = plain_table(headers, rows, right=right, title=title, width=width)
        if text is not None:
            drawn += 1
            assert text == _rich(headers, rows, right, title, width), (headers, rows, title)
    assert drawn > 100


@pytest.mark.parametrize(
    "headers, rows",
    [
        (["x"], [["[bold]a[/bold]"]]),  # markup
        (["x"], [[":smile:"]]),  # an emoji code
        (["x"], [["日本"]]),  # two columns a character
        (["x"], [["tab\there"]]),
        (["x" * 100], [["a"]]),  # wider than the terminal
    ],
)
def test_what_rich_would_draw_otherwise_is_left_to_rich(headers, rows):
    assert plain_table(headers, rows, width=80) is None


def test_a_terminal_or_forced_colours_are_left_to_rich(monkeypatch):
    monkeypatch.setenv("COLUMNS", "97")
    monkeypatch.delenv("TTY_COMPATIBLE", raising=False)
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    assert terminal_width() == 97  # pytest captures stdout: not a terminal
    monkeypatch.setenv("FORCE_COLOR", "1")
    assert terminal_width() is None
    monkeypatch.setenv("TTY_COMPATIBLE", "0")
    assert terminal_width() == 97


def _print_rows(rows, *, through_rich: bool) -> tuple[str, bool]:
    """What print_rows prints on a pipe 80 columns wide, and whether it imported rich."""
    code = (
        "import json, sys\n"
        "import ckg.cli.table\n"
        f"if {through_rich}:\n"
        "    ckg.cli.table.plain_table = lambda *args, **options: None\n"
        "from ckg.cli.app import print_rows\n"
        f"print_rows(json.loads({json.dumps(json.dumps(rows))}), title='bench',\n"
        "           units={'latency': 's', 'memory': 'B'}, label='params')\n"
        "print('rich' in sys.modules)\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "TTY_COMPATIBLE")}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True,
        env={**env, "COLUMNS": "80"},
    )  # fmt: skip
    *table, imported = done.stdout.splitlines(keepends=True)
    return "".join(table), imported == "True\n"


def test_a_run_table_is_printed_as_rich_would_without_importing_rich():
    rows = [
        {"params": f"batch={2**i}", "latency": 3.4e-05 * i, "memory": 1.6e8 + i}
        for i in range(1, 4)
    ]
    plain, imported = _print_rows(rows, through_rich=False)
    assert not imported
    assert (plain, True) == _print_rows(rows, through_rich=True)
    assert "latency (µs)" in plain
