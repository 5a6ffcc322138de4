"""The typer application, its global options, and the helpers every command shares.

Commands live in one module per group (``db.py``, ``query.py``, ...) and call the Python
API only; :func:`main` turns any :class:`ckg.core.errors.CkgError` into one line on stderr.
"""

import inspect
import json
import math
import sys
from dataclasses import dataclass

import click
import typer

from ckg import __version__


class HelpGroup(typer.core.TyperGroup):
    """A command group whose help lists each command with the whole first sentence of its
    help, where click cuts it to what fits on the line after the name ("...")."""

    def __init__(self, **attrs) -> None:
        super().__init__(**attrs)
        for command in self.commands.values():
            _restore_argument_help(command)

    def format_commands(self, ctx, formatter) -> None:
        commands = [(name, self.get_command(ctx, name)) for name in self.list_commands(ctx)]
        rows = [
            (name, cmd.get_short_help_str(limit=sys.maxsize))
            for name, cmd in commands
            if cmd is not None and not cmd.hidden
        ]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def _restore_argument_help(command: click.Command) -> None:
    """Give each argument of ``command`` back the help its ``typer.Argument`` declares.

    Click 8.5 gave arguments a ``help`` of their own, which its constructor sets to None
    after typer (before 0.25, which ckg keeps to) has set it: ``--help`` showed none.
    """
    bare = [p for p in command.params if isinstance(p, click.Argument) and p.help is None]
    if not bare or command.callback is None:
        return
    declared = inspect.signature(inspect.unwrap(command.callback)).parameters
    for param in bare:
        if param.name in declared:
            param.help = getattr(declared[param.name].default, "help", None)


app = typer.Typer(
    name="ckg",
    cls=HelpGroup,
    help="Collective Knowledge Graph: ingest research artifacts, run them, compare results.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    suggest_commands=False,  # click suggests already: typer's would say it twice
    # click's own help layout: it rewraps a docstring's paragraphs to the terminal, where
    # typer's rich one keeps every line break of the source and breaks lines mid-sentence.
    rich_markup_mode=None,
)


#: Set by the script of ``ckg completion`` when it calls ckg back for completions.
COMPLETE_VAR = "_CKG_COMPLETE"
# The click command built from ``app``, and the number of commands and groups it was built
# with (a module loaded later registers more).
_built: tuple[tuple[int, int], click.Command] | None = None


def click_command() -> click.Command:
    """``app`` as a click command, built once while no command is added: typer builds it anew
    at every ``app()``, 10-40 ms with every command registered, as the resident process
    (:mod:`ckg.cli.resident`) holds them for each of its children."""
    global _built
    key = (len(app.registered_commands), len(app.registered_groups))
    if _built is None or _built[0] != key:
        _built = (key, typer.main.get_command(app))
    return _built[1]


@dataclass
class Settings:
    db: str | None = None
    debug: bool = False


settings = Settings()


def _version(value: bool) -> None:
    if value:
        print(f"ckg {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    db: str = typer.Option(
        None, "--db", envvar="CKG_DB", help="'embedded' (default) or a bolt:// / neo4j:// URI."
    ),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks."),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version."
    ),
) -> None:
    settings.db = db
    settings.debug = debug


def open_graph():
    """Open the graph the global options name (the one place the CLI opens it)."""
    from ckg.api import open as open_kg

    return open_kg(settings.db)


def params_text(params) -> str:
    """A run's parameters, a dict or as stored (JSON text), as ``model=knn k=1``; ``-``
    for none.

    >>> params_text('{"model": "knn", "k": 1}'), params_text("{}"), params_text(None)
    ('model=knn k=1', '-', '-')
    """
    try:
        decoded = json.loads(params) if isinstance(params, str) else params
    except ValueError:
        return str(params)
    if not isinstance(decoded, dict):
        return str(params) if params else "-"
    return " ".join(f"{k}={v}" for k, v in decoded.items()) or "-"


#: Deepest nesting of lists and maps in a ``--param`` value: a deeper one would come back
#: from the engines deeper than Python's recursion limit lets the reply be read.
MAX_PARAM_DEPTH = 100
#: The integers both engines hold: beyond them FalkorDB clamps without a word and the Neo4j
#: driver raises OverflowError.
INT64 = range(-(2**63), 2**63)


def parse_params(pairs: list[str] | None) -> dict:
    """``["k=v", ...]`` to a dict; values that read as JSON (numbers, lists) are decoded.

    >>> parse_params(["n=3", "tags=[\\"a\\"]", "name=knn"])
    {'n': 3, 'tags': ['a'], 'name': 'knn'}
    """
    from ckg.core.errors import UsageError

    params = {}
    for pair in pairs or []:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise UsageError(f"--param expects NAME=VALUE, got {pair!r}")
        try:
            params[name] = json.loads(value)
        except RecursionError:
            raise _too_deep(name) from None
        except ValueError:
            params[name] = value
        _check_param(name, params[name])
    return params


def _too_deep(name: str):
    from ckg.core.errors import UsageError

    return UsageError(f"--param {name}: nested deeper than {MAX_PARAM_DEPTH} levels")


def _check_param(name: str, value) -> None:
    """Refuse what no engine can take: nesting deeper than :data:`MAX_PARAM_DEPTH`, text
    that is not UTF-8 (a JSON escape such as ``"\\udcff"`` decodes to a lone surrogate), and
    integers beyond 64 bits (refused rather than kept as text: a number compared with text
    matches nothing, which would look like an empty answer).

    >>> _check_param("x", float("inf"))
    Traceback (most recent call last):
    ckg.core.errors.UsageError: --param x: inf is not a finite number (JSON reads 1e999 as \
infinity); \
pass it as text with x='"..."'
    >>> _check_param("n", [1, 2**63])
    Traceback (most recent call last):
    ckg.core.errors.UsageError: --param n: 9223372036854775808 does not fit the 64-bit integers a \
graph holds; pass it as text with n='"9223372036854775808"'
    """
    from ckg.core.errors import UsageError

    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            item = [*item, *item.values()]
        if isinstance(item, list):
            if depth >= MAX_PARAM_DEPTH:
                raise _too_deep(name)
            stack.extend((child, depth + 1) for child in item)
        elif isinstance(item, str):
            try:
                item.encode()
            except UnicodeEncodeError:
                raise UsageError(f"--param {name}: {item!r} is not valid UTF-8 text") from None
        elif isinstance(item, int) and item not in INT64:
            raise UsageError(f"--param {name}: {item} does not fit the 64-bit integers a graph "
                             f"""holds; pass it as text with {name}='"{item}"'""")
        elif isinstance(item, float) and not math.isfinite(item):
            raise UsageError(f"--param {name}: {item} is not a finite number (JSON reads 1e999 "
                             f"""as infinity); pass it as text with {name}='"..."'""")


def print_rows(
    rows: list[dict],
    *,
    as_json: bool = False,
    as_csv: bool = False,
    title=None,
    units: dict[str, str] | None = None,
    label: str | None = None,
    optional: tuple[tuple[str, ...], ...] = (),
    important: tuple[str, ...] = (),
    empty_hint: str | None = None,
    limit: int | None = None,
    limit_option: bool = False,
    drop_empty: bool = False,
    total: int | None = None,
) -> None:
    """Render rows as a rich table, JSON or CSV on stdout.

    Parameters
    ----------
    rows : list of dict
        One dict per row; the first row's keys are the columns.
    as_json, as_csv : bool
        Print the rows unchanged as JSON or CSV instead of a table.
    title : str, optional
    units : mapping, optional
        Column -> unit of its raw numbers ("" for a plain number). In the table these
        columns show about four significant digits, scaled to one unit per column
        (:func:`human_unit`) that the header names: ``latency (µs)``.
    label : str, optional
        The column that tells rows apart (a run's parameters): never cut, its words wrap.
    optional : tuple of tuples of column names
        Groups of columns, least useful first, left out while the table would not fit the
        terminal with the label on one line; a note names what was left out.
    important : tuple of column names
        In a plain listing (no ``label``, no ``units``) that is wider than the terminal, the
        columns kept first, in this order; the others follow in their own order while they
        fit, empty ones last. Text wraps at spaces; a word wider than its column (a URL, a
        hash) ends in an ellipsis rather than breaking across lines.
    empty_hint : str, optional
        Printed under an empty table: what to do to get rows.
    limit : int, optional
        Print at most this many rows (0: all); the table says how many there were. Without
        it a table shows :data:`TABLE_ROWS` and JSON or CSV all of them.
    limit_option : bool
        The command has a ``--limit`` option: the note under a cut table names it.
    drop_empty : bool
        Leave out of a table the columns no row shown has a value in (a date no result
        has), and name them in a note; JSON and CSV keep every column.
    total : int, optional
        How many rows there are in all where ``rows`` are the first of them, read as a
        page (``ckg compare``): the table says how many were shown of it. Default
        ``len(rows)``.
    """
    total = len(rows) if total is None else total
    if limit is None:
        limit = 0 if as_json or as_csv else TABLE_ROWS
    rows = rows[:limit] if limit else rows
    if as_json:
        print(json.dumps(rows, indent=2, default=str, ensure_ascii=False))
        return
    columns = list(rows[0]) if rows else []
    if as_csv:
        import csv

        writer = csv.writer(sys.stdout)
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_cell(row.get(c), exact=True) for c in columns])
        return
    empty = [c for c in columns if drop_empty and not any(_cell(r.get(c)) for r in rows)]
    if len(empty) == len(columns):  # a table of no column at all would say nothing
        empty = []
    columns = [c for c in columns if c not in empty]
    # rich (60 ms to import) only for what it would not draw as plain text (ckg.cli.table).
    from ckg.cli.table import is_plain, plain_table, terminal_width

    plain = terminal_width()
    width = plain or _console().width
    units = units or {}
    headers, cells = _shown(rows, columns, units)
    if label or units:
        layout = _fit(headers, cells, units, label, optional, width)
    else:
        layout = _fit_plain(headers, cells, important, width)
    if rows:
        text = None
        if plain and not (layout.widths or layout.label_wraps):  # no cell wraps
            shown = list(layout.headers)
            texts = [list(r) for r in zip(*(cells[c] for c in shown), strict=True)]
            right = {i for i, c in enumerate(shown) if c in units}
            text = plain_table([*layout.headers.values()], texts, right=right, title=title,
                               width=width)  # fmt: skip
        if text:
            sys.stdout.write(text)
        else:
            _console().print(_table(layout, cells, units, label, title, width))
    else:
        print(f"(no rows: {empty_hint})" if empty_hint else "(no rows)")
    if len(rows) < total:
        more = "--json or --csv for all"
        if limit_option:
            more = "--limit 0 for all, --json or --csv to save"
        print(f"({len(rows)} of {total} rows shown: {more})")
    notes = []
    if layout.left_out:
        notes.append(f"(left out to fit: {', '.join(layout.left_out)}; see --json or --csv)")
    if empty:
        notes.append(f"(empty in every row shown: {', '.join(empty)})")
    for note in notes:
        if plain and is_plain(note) and len(note) <= width:
            print(note)
        else:
            _console().print(note, markup=False, highlight=False)


def _console():
    from rich.console import Console

    return Console()


#: The most rows a table prints unless told otherwise (``--limit``).
TABLE_ROWS = 50

#: The figures ckg measures on every run, in the order its tables show them, after those the
#: runs reported themselves (accuracy, latency ...).
MEASURED = ("runtime", "cpu_user_time", "cpu_system_time", "memory", "energy")


def metric_columns(names) -> list[str]:
    """The metrics ``names`` in the order run tables show them: those the runs reported, by
    name, then ckg's own (:data:`MEASURED`) in their order.

    >>> metric_columns({"memory", "runtime", "f1", "accuracy"})
    ['accuracy', 'f1', 'runtime', 'memory']
    """
    names = set(names)
    return sorted(names - set(MEASURED)) + [m for m in MEASURED if m in names]


def _shown(rows, columns, units):
    """Each column's header and cell texts, numbers scaled into one unit per column."""
    # Here, not at the top: its patterns take longer to compile than ckg find takes to print.
    from ckg.core.values import format_number, human_unit, is_number

    headers, cells = {}, {}
    for column in columns:
        values = [row.get(column) for row in rows]
        if column not in units:
            headers[column] = column
            cells[column] = [_cell(v) for v in values]
            continue
        factor, unit = human_unit(values, units[column])
        headers[column] = f"{column} ({unit})" if unit else column
        cells[column] = [
            format_number(v / factor if is_number(v) and factor != 1 else v) for v in values
        ]
    return headers, cells


@dataclass
class _Layout:
    headers: dict[str, str]  # the columns shown, in order, and their header texts
    left_out: list[str]
    label_wraps: bool
    widths: dict[str, int] | None = None  # fixed widths of a plain listing narrowed to fit


def _fit(headers, cells, units, label, optional, width) -> _Layout:
    """How a table fits a terminal ``width`` wide, trying each step only if the last fails:
    all as is; each unit on a header line of its own; the ``optional`` groups left out one
    by one; the label wrapped at spaces."""

    def fits(shown: dict[str, str]) -> bool:
        needs = [  # a cell is one line (the label's too); a header has its own lines
            max([*(len(t) for t in cells[c]), *(len(h) for h in head.splitlines())])
            for c, head in shown.items()
        ]
        return sum(needs) + 3 * len(needs) + 1 <= width  # borders and padding: 3 a column

    if fits(headers) or not (label or units):
        return _Layout(headers, [], False)
    shown = {c: _stack(h) if c in units else h for c, h in headers.items()}
    left_out = []
    for group in ((), *optional):
        left_out += [c for c in group if c in shown and c != label]
        shown = {c: h for c, h in shown.items() if c not in left_out}
        if fits(shown):
            return _Layout(shown, left_out, False)
    return _Layout(shown, left_out, True)


#: The narrowest a wrapped column of a plain listing may become (or its widest cell, if
#: less): an important column, and any other.
_MIN_IMPORTANT, _MIN_WRAPPED = 16, 10


def _fit_plain(headers, cells, important, width) -> _Layout:
    """How a plain listing fits a terminal ``width`` wide: every column if it fits as is,
    else the ``important`` columns first and then the others in order, each at least
    :data:`_MIN_IMPORTANT` or :data:`_MIN_WRAPPED` wide (text wraps), while they fit; empty
    columns go last."""

    def natural(column: str) -> int:
        return max([len(headers[column]), *(len(t) for t in cells[column])])

    def least(column: str) -> int:
        return min(natural(column), _MIN_IMPORTANT if column in important else _MIN_WRAPPED)

    def total(columns) -> int:
        return sum(least(c) for c in columns) + 3 * len(columns) + 1

    columns = list(headers)
    if sum(natural(c) for c in columns) + 3 * len(columns) + 1 <= width:
        return _Layout(headers, [], False)
    rest = [c for c in columns if c not in important]
    order = [c for c in important if c in headers] + sorted(
        rest, key=lambda c: not any(cells[c])  # stable: columns with values keep their order
    )
    kept = []
    for column in order:
        if total([*kept, column]) <= width:
            kept.append(column)
    shown = [c for c in columns if c in kept]
    widths = _share({c: natural(c) for c in shown}, least, width - 3 * len(shown) - 1)
    return _Layout(
        {c: headers[c] for c in shown}, [c for c in columns if c not in kept], True, widths
    )


def _share(natural: dict[str, int], least, room: int) -> dict[str, int]:
    """Column widths that fill ``room``: each column first gets ``least(column)``, then what is
    left goes to the columns that want more, the narrowest wish first, evenly, so a long
    title does not take all of it.

    >>> wish = {"metric": 8, "model": 40, "paper": 60}
    >>> _share(wish, lambda c: min(wish[c], 10), 50)
    {'metric': 8, 'model': 21, 'paper': 21}
    """
    widths = {c: least(c) for c in natural}
    left = room - sum(widths.values())
    wanting = sorted((c for c in natural if natural[c] > widths[c]), key=natural.get)
    while left > 0 and wanting:
        each = max(1, left // len(wanting))
        column = wanting.pop(0)
        more = min(natural[column] - widths[column], each if wanting else left)
        widths[column] += more
        left -= more
    return widths


def _stack(header: str) -> str:
    """``latency (µs)`` as two lines, ``latency`` over ``(µs)``."""
    name, sep, unit = header.rpartition(" (")
    return f"{name}\n({unit}" if sep else header


def _table(layout: _Layout, cells, units, label, title, width):
    """A rich table in which only the label may wrap, so no number is ever cut short."""
    from rich.table import Table

    table = Table(title=title)
    fixed = bool(label or units)  # a plain listing (a query's rows) keeps rich's own layout
    for column, header in layout.headers.items():
        if column == label:
            # Whole words wrap when they must; a word longer than half the terminal
            # folds rather than being cut to an ellipsis.
            words = [len(w) for text in cells[column] for w in text.split()] or [1]
            table.add_column(
                header,
                overflow="fold",
                no_wrap=not layout.label_wraps,
                min_width=min(max(words), width // 2),
            )
        elif layout.widths:
            # A plain listing narrowed to fit: words wrap; one longer than its column (a URL,
            # a hash) is cut to an ellipsis, never broken across lines (--csv has it whole).
            table.add_column(header, overflow="ellipsis", width=layout.widths[column])
        else:
            justify = "right" if column in units else "left"
            table.add_column(header, justify=justify, no_wrap=fixed)
    for texts in zip(*(cells[c] for c in layout.headers), strict=True):
        table.add_row(*texts)
    return table


def _cell(value, exact: bool = False) -> str:
    """A value as a table cell, or with ``exact`` as a CSV field (every digit a float has)."""
    if value is None or value == [] or value == {}:
        return ""
    if isinstance(value, float) and not exact:
        return f"{value:.15g}"  # 89.3, not the 89.30000000000001 a unit conversion left
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)
