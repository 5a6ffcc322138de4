"""A table that fits its terminal on one line a row, drawn without rich.

Importing rich takes about 60 ms, longer than a cached ``ckg run`` spends on its work. When
no cell has to wrap, rich's table is a plain drawing: each column as wide as its widest text,
one space of padding on each side, the header's lines at the bottom of the header row, the
heavy-headed box of :class:`rich.table.Table`, the title centred above. :func:`plain_table`
draws that same text, byte for byte (``tests/test_cli_table.py`` compares the two), and says
None whenever rich would draw anything else: colours and styles for a terminal, a cell or
header rich reads as markup or emoji, text whose width on screen is not its length, a table
or title wider than the terminal.
"""

import os
import re
import sys

#: Text rich would draw as is, one column a character: printable ASCII and ``µ`` (units),
#: with no ``[`` (markup) and no ``:word:`` (an emoji code).
_PLAIN = re.compile(r"[ -Z\\\]^-~µ]*")
_EMOJI = re.compile(r":\S*?:")


def plain_table(
    headers: list[str],
    rows: list[list[str]],
    *,
    right: set[int] = frozenset(),
    title: str | None = None,
    width: int = 80,
) -> str | None:
    """The text of rich's default :class:`~rich.table.Table` of ``rows`` under ``headers``
    when it has no style to draw and no cell to wrap in ``width`` columns; None otherwise.

    Parameters
    ----------
    headers : list of str
        Each column's header; a header may hold several lines.
    rows : list of list of str
        The cells, one text each, one line each.
    right : set of int
        The columns whose text is right-justified (header included); the others are left.
    title : str, optional
        Centred over the table, as rich's ``title``.
    width : int
        The terminal's width (:func:`terminal_width`).

    Returns
    -------
    str or None
        The lines of the table, each ending with a newline.

    Examples
    --------
    >>> print(plain_table(["name", "n"], [["a", "10"], ["bc", "2"]], right={1}), end="")
    ┏━━━━━━┳━━━━┓
    ┃ name ┃  n ┃
    ┡━━━━━━╇━━━━┩
    │ a    │ 10 │
    │ bc   │  2 │
    └──────┴────┘
    >>> plain_table(["[b]x[/b]"], [["1"]]) is None  # markup: rich's to draw
    True
    """
    title = title or None  # rich draws no empty title
    texts = [*(line for h in headers for line in h.split("\n")), *(c for r in rows for c in r)]
    if not all(map(is_plain, [*texts, title or ""])):
        return None
    header_lines = [h.split("\n") for h in headers]
    widths = [
        max([*(len(line) for line in lines), *(len(r[i]) for r in rows)])
        for i, lines in enumerate(header_lines)
    ]
    total = sum(widths) + 3 * len(widths) + 1
    if total > width or (title is not None and len(title) > total):
        return None

    def line(cells, ends: str) -> str:
        left, middle, end = ends
        padded = (
            f" {c.rjust(w) if i in right else c.ljust(w)} "
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )
        return left + middle.join(padded) + end + "\n"

    def rule(ends: str, fill: str) -> str:
        left, middle, end = ends
        return left + middle.join(fill * (w + 2) for w in widths) + end + "\n"

    height = max(len(lines) for lines in header_lines)
    bottom_aligned = [[""] * (height - len(lines)) + lines for lines in header_lines]
    out = []
    if title is not None:
        before = (total - len(title)) // 2
        out.append(" " * before + title + " " * (total - len(title) - before) + "\n")
    out.append(rule("┏┳┓", "━"))
    out += [line(cells, "┃┃┃") for cells in zip(*bottom_aligned, strict=True)]
    out.append(rule("┡╇┩", "━"))
    out += [line(cells, "│││") for cells in rows]
    out.append(rule("└┴┘", "─"))
    return "".join(out)


def is_plain(text: str) -> bool:
    """Whether rich prints ``text`` as is, one column a character (see the module's text).

    >>> is_plain("latency (µs)"), is_plain("[red]x"), is_plain(":smile:"), is_plain("日本")
    (True, False, False, False)
    """
    return bool(_PLAIN.fullmatch(text)) and not _EMOJI.search(text)


def terminal_width() -> int | None:
    """The width rich's :class:`~rich.console.Console` takes for stdout, or None when rich
    would draw styles there (a terminal, or ``FORCE_COLOR`` / ``TTY_COMPATIBLE`` saying so).

    rich's own rules: ``COLUMNS`` when it is a number, else the size of the first of stdin,
    stdout and stderr that is a terminal, else 80.
    """
    compatible = os.environ.get("TTY_COMPATIBLE", "")
    force = os.environ.get("FORCE_COLOR")
    if compatible in ("0", "1"):
        styled = compatible == "1"
    elif force is not None:
        styled = force != ""
    else:
        try:
            styled = sys.stdout.isatty()
        except ValueError:  # closed
            styled = False
    if styled:
        return None
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit():
        return int(columns)
    for fd in (0, 1, 2):
        try:
            return os.get_terminal_size(fd).columns or 80
        except (AttributeError, ValueError, OSError):
            continue
    return 80
