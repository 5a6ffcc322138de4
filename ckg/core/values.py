"""The value normaliser: a published cell (``"76.1 (±0.2)"``, ``"220k"``, ``"12 ms"``) to numbers.

Papers, leaderboards, benchmark records and users' own tables write one quantity many ways.
:func:`parse_value` reads one cell and returns a :class:`Value`: the number in ckg's canonical
unit, its standard error where one is given, the canonical unit, the raw string, and whether it
could be read. It never raises on bad data: an unreadable cell keeps its raw text and carries
one warning, and a cell that says "no value" (``-``, ``—``, ``N/A``, empty) is a Value whose
``value`` is None and ``ok`` is True, so that callers can still account for the row.

Canonical units (:data:`CANONICAL_UNITS`): ``s`` (seconds), ``J`` (joules), ``W`` (watts),
``B`` (bytes; ``KB``/``MB``/``GB`` are powers of 1000, ``KiB``/``MiB``/``GiB`` of 1024),
``count`` (parameters, operations; ``k``, ``M``/``m``, ``B``/``G``, ``T`` scale it), ``%``
(kept on the published 0-100 scale), ``1/s`` (samples, queries, tokens per second) and
``1/J`` (samples per joule). A plain number has unit ``""``.

The unit comes from the cell itself, else from the ``unit`` argument (a unit column, MLPerf's
``Result_Units``), else from the column name (``Latency (ms)``, ``Energy [kJ]``, ``Samples/s``,
``% Test Accuracy``): see :func:`parse_unit` and :func:`column_unit`.

Hand-written leaderboards (Papers with Code's NLP-progress export, README tables) mark up
their cells: ``**70.3**`` (the best in bold), ``64.8*`` and ``60.7+`` (footnote marks),
``70.14 (measured by Ge et al., 2018)`` (a note after the number), a leading byte-order mark,
thin spaces. :func:`parse_value` reads the number through them and lists what it set aside
in ``Value.stripped``; ``raw`` keeps the cell as written. :func:`read_cell` also reads a pair
``78.9/78.6`` under a column that names both figures (``Pearson/Spearman``) as two values.

Examples
--------
>>> parse_value("0.8428 ± 0.0014")
Value(value=0.8428, stderr=0.0014, unit='', raw='0.8428 ± 0.0014', ok=True, warning=None, \
stripped=())
>>> parse_value("**70.3**").value, parse_value("**70.3**").stripped
(70.3, ("emphasis '**'",))
>>> parse_value("12", column="Latency (ms)").value
0.012
>>> parse_value("220k").value, parse_value("220k").unit
(220000.0, 'count')
>>> parse_value("—").missing
True
"""

import math
import re
import sys
from dataclasses import dataclass, replace

CANONICAL_UNITS = ("s", "J", "W", "B", "count", "%", "1/s", "1/J")

#: Cells that mean "no value was published here".
MISSING = frozenset(
    {"", "-", "--", "---", "—", "–", "n/a", "na", "n.a.", "none", "null", "nan", "?", "tbd", "x"}
)


@dataclass(frozen=True, slots=True)
class Unit:
    """A canonical unit and the factor that converts the written unit into it."""

    canonical: str
    factor: float = 1.0


@dataclass(frozen=True, slots=True)
class Value:
    """One normalised cell.

    ``value`` and ``stderr`` are in ``unit`` (canonical); ``raw`` is the text as published;
    ``ok`` is False when the cell could not be read, and then ``warning`` says why;
    ``stripped`` names what was set aside to read it (emphasis, a footnote mark, a note).
    """

    value: float | None
    stderr: float | None = None
    unit: str = ""
    raw: str = ""
    ok: bool = True
    warning: str | None = None
    stripped: tuple[str, ...] = ()

    @property
    def missing(self) -> bool:
        """True for a readable cell that publishes no value (``-``, ``N/A``, empty)."""
        return self.ok and self.value is None


def _table(unit: str, names: str, factor: float = 1.0) -> dict[str, Unit]:
    return {name: Unit(unit, factor) for name in names.split()}


# Case matters where SI prefixes collide (mW and MW, mJ and MJ); _CASELESS below
# holds the spellings that are safe to match in any case.
_UNITS: dict[str, Unit] = {
    **_table("s", "s sec secs second seconds"),
    **_table("s", "ms msec msecs millisecond milliseconds", 1e-3),
    **_table("s", "us µs μs usec microsecond microseconds", 1e-6),
    **_table("s", "ns nsec nanosecond nanoseconds", 1e-9),
    **_table("s", "min mins minute minutes", 60.0),
    **_table("s", "h hr hrs hour hours", 3600.0),
    **_table("J", "J joule joules"),
    **_table("J", "mJ millijoule millijoules", 1e-3),
    **_table("J", "uJ µJ μJ microjoule microjoules", 1e-6),
    **_table("J", "kJ kilojoule kilojoules", 1e3),
    **_table("J", "MJ megajoule megajoules", 1e6),
    **_table("J", "Wh", 3600.0),
    **_table("J", "kWh", 3.6e6),
    **_table("W", "W watt watts Watts"),
    **_table("W", "mW milliwatt milliwatts", 1e-3),
    **_table("W", "kW kilowatt kilowatts", 1e3),
    **_table("W", "MW megawatt megawatts", 1e6),
    **_table("B", "B byte bytes"),
    **_table("B", "KB kB kilobyte kilobytes", 1e3),
    **_table("B", "MB megabyte megabytes", 1e6),
    **_table("B", "GB gigabyte gigabytes", 1e9),
    **_table("B", "TB terabyte terabytes", 1e12),
    **_table("B", "KiB", 1024.0),
    **_table("B", "MiB", 1024.0**2),
    **_table("B", "GiB", 1024.0**3),
    **_table("B", "TiB", 1024.0**4),
    **_table("count", "count counts params parameters samples tokens ops flops"),
    **_table("%", "% percent pct"),
}
_RATE_WORDS = "samples?|queries|query|inferences?|images?|imgs?|frames?|tokens?|tok|it|items?"
_CASELESS = {
    "qps": Unit("1/s"),
    "fps": Unit("1/s"),
    "ips": Unit("1/s"),
    "tps": Unit("1/s"),
    "hz": Unit("1/s"),
}
_RATE = re.compile(rf"^(?:(?:{_RATE_WORDS})\s*)?(?:/|per)\s*(?:s|sec|second)$")
_PER_JOULE = re.compile(rf"^(?:(?:{_RATE_WORDS})\s*)?(?:/|per)\s*(?:j|joule)$")
_PER_ITEM = re.compile(rf"^(.+?)\s*(?:/|per)\s*(?:{_RATE_WORDS}|inference|sample|query)$")
#: Multipliers written right after a number: "220k", "3.0M", "1.5B" parameters.
_SCALE = {"k": 1e3, "K": 1e3, "m": 1e6, "M": 1e6, "b": 1e9, "B": 1e9, "G": 1e9, "T": 1e12}

_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
#: A cell that is a number and nothing else, "90.871": read without cleaning.
_PLAIN = re.compile(r"-?\d{1,300}(?:\.\d+)?")
#: Infinity as JSON (``-Infinity``), YAML (``.inf``) or Python (``inf``) write it.
_INFINITY = re.compile(r"[-+]?\.?inf(?:inity)?$", re.I)
#: Integers larger than this are past a float's range (and ``str`` refuses 4,300 digits).
_MAX_FLOAT_INT = int(sys.float_info.max)
_HEAD = re.compile(rf"^(?P<num>{_NUMBER})\s*(?P<rest>.*)$")
#: "± 0.2", "+/- 0.2", "+- 0.2%", optionally in brackets: "(±0.2)", "[± 0.2 ms]".
_ERROR = re.compile(
    rf"[(\[]?\s*(?:±|\+/-|\+-)\s*(?P<err>{_NUMBER})\s*(?P<eunit>[^)\]]*?)\s*[)\]]?$"
)


def parse_unit(text: str) -> Unit | None:
    """The canonical unit of a written unit, or None if it is not one ckg knows.

    >>> parse_unit("ms")
    Unit(canonical='s', factor=0.001)
    >>> parse_unit("Samples/s")
    Unit(canonical='1/s', factor=1.0)
    >>> parse_unit("J/inference")
    Unit(canonical='J', factor=1.0)
    """
    text = text.strip()
    if not text:
        return None
    if text in _UNITS:
        return _UNITS[text]
    low = text.casefold().replace("_", " ")
    if low in _CASELESS:
        return _CASELESS[low]
    if _RATE.match(low):
        return Unit("1/s")
    if _PER_JOULE.match(low):
        return Unit("1/J")
    # "J/inference", "ms/sample": a quantity per item is still that quantity's unit.
    per_item = _PER_ITEM.match(text)
    if per_item:
        return parse_unit(per_item.group(1))
    for name, unit in _UNITS.items():
        if len(name) > 3 and name.casefold() == low:
            return unit
    return None


def column_unit(column: str | None) -> Unit | None:
    """The unit a column name states: ``Latency (ms)``, ``Energy [kJ]``, ``Samples/s``, ``% Acc``.

    >>> column_unit("Latency (ms)")
    Unit(canonical='s', factor=0.001)
    >>> column_unit("EM") is None
    True
    """
    if not column:
        return None
    column = column.strip()
    bracket = re.search(r"[(\[]\s*([^()\[\]]+?)\s*[)\]]\s*$", column)
    if bracket:
        unit = parse_unit(bracket.group(1))
        if unit:
            return unit
    if column.startswith("%") or column.endswith("%"):
        return Unit("%")
    return parse_unit(column)


def parse_value(raw: object, column: str | None = None, *, unit: str | None = None) -> Value:
    """Normalise one published cell into a :class:`Value`; never raises on bad data.

    Parameters
    ----------
    raw
        The cell: a string as published, a number, or None.
    column
        The column or metric name, read for a unit when the cell states none.
    unit
        A unit stated beside the cell (a unit column, ``Result_Units``); it wins over the
        column name but not over a unit written in the cell itself.

    Returns
    -------
    Value
        ``value`` None and ``ok`` True for "no value" cells; ``ok`` False with one
        ``warning`` for cells that cannot be read; ``raw`` always holds the cell as text.

    Examples
    --------
    >>> parse_value("76.1 (±0.2)").stderr
    0.2
    >>> parse_value("84.28%")
    Value(value=84.28, stderr=None, unit='%', raw='84.28%', ok=True, warning=None, stripped=())
    >>> parse_value("3.0M").value
    3000000.0
    >>> parse_value("1.2e-3").value
    0.0012
    >>> parse_value("fast").warning
    "cannot read a number in 'fast'"
    """
    if raw is None:
        return Value(None)
    if isinstance(raw, bool):
        return _bad(str(raw), "a true/false flag is not a measured value")
    context = _context_unit(column, unit)
    if isinstance(raw, (int, float)):
        if isinstance(raw, int) and abs(raw) > _MAX_FLOAT_INT:  # float() and str() refuse it
            return _bad(f"<integer of {raw.bit_length()} bits>", "past a float's range")
        text = repr(raw) if isinstance(raw, float) else str(raw)
        if isinstance(raw, float) and not math.isfinite(raw):
            return _bad(text, f"{text} is not a finite number")
        return _scaled(float(raw), None, context, text)
    text = str(raw)
    if _PLAIN.fullmatch(text):  # most cells: nothing to clean, no unit of their own
        return _scaled(float(text), None, context, text)
    cell, stripped = _clean(text)
    if cell.casefold() in MISSING:
        return Value(None, raw=text)
    head = _HEAD.match(cell)
    if not head:
        if _INFINITY.match(cell):
            return _bad(text, f"{_quoted(text)} is not a finite number")
        return _bad(text, f"cannot read a number in {_quoted(text)}")
    number = float(head.group("num").lstrip("+"))
    rest = head.group("rest")
    stderr, err_unit = None, ""
    error = _ERROR.search(rest)
    if error:
        stderr = float(error.group("err"))
        err_unit = error.group("eunit").strip()
        rest = rest[: error.start()].strip()
    rest = rest.strip()
    if err_unit and not rest:
        rest = err_unit  # "84.28 ± 0.1 %": the unit follows the error
    if not rest:
        return _scaled(number, stderr, context, text, stripped)
    own = _own_unit(rest, context)
    if own is None:
        return _bad(text, f"unknown unit {_quoted(rest)} in {_quoted(text)}")
    return _scaled(number, stderr, own, text, stripped)


def read_cell(
    raw: object, column: str | None = None, *, unit: str | None = None
) -> list[tuple[str | None, Value]]:
    """A published cell as ``(metric, value)`` pairs: one whose metric is None (the column's),
    or two for a pair of figures ``78.9/78.6`` under a column that names both
    (:func:`pair_names`). Each of the two keeps the whole cell as ``raw`` and says in
    ``stripped`` that the other figure was set aside. A pair under a column that does not say
    what its figures are is one unreadable value whose warning says so: which figure is
    which is not ckg's to guess.

    >>> [(m, v.value) for m, v in read_cell("78.9/78.6", "Pearson/Spearman")]
    [('Pearson', 78.9), ('Spearman', 78.6)]
    >>> read_cell("78.9/78.6", "STS")[0][1].warning
    "'78.9/78.6' is two figures, and column 'STS' does not say what each is"
    """
    value = parse_value(raw, column, unit=unit)
    if value.ok or not isinstance(raw, str):
        return [(None, value)]
    cell, stripped = _clean(raw)
    pair = _PAIR.fullmatch(cell)
    if pair is None:
        return [(None, value)]
    names = pair_names(column)
    if names is None:
        return [
            (
                None,
                _bad(
                    raw,
                    f"{_quoted(raw)} is two figures, and column {column!r} "
                    "does not say what each is",
                ),
            )
        ]
    first, second = pair.group("a").strip(), pair.group("b").strip()
    return [
        (
            name,
            replace(
                parse_value(figure, name, unit=unit),
                raw=raw,
                stripped=(*stripped, f"{other!r}: the pair's other figure"),
            ),
        )
        for name, figure, other in (
            (names[0], first, f"/{second}"),
            (names[1], second, f"{first}/"),
        )
    ]


def pair_names(column: str | None) -> tuple[str, str] | None:
    """The two metrics a column names for a pair of figures ``a/b``, or None.

    ``Pearson/Spearman``, ``F1/Accuracy``, and ``STS-B (Pearson/Spearman)`` (whose names
    keep what comes before the brackets); never a unit (``Samples/s``, ``J/inference``,
    ``Throughput (samples/s)``), and each side is a name with a letter in it.

    >>> pair_names("Pearson/Spearman"), pair_names("STS-B (Pearson/Spearman)")
    (('Pearson', 'Spearman'), ('STS-B Pearson', 'STS-B Spearman'))
    >>> pair_names("F1 (%)/Accuracy (%)")
    ('F1 (%)', 'Accuracy (%)')
    >>> pair_names("Samples/s"), pair_names("Throughput (samples/s)"), pair_names("STS")
    (None, None, None)
    """
    if not column:
        return None
    column = column.strip()
    found = _PAIR_IN_BRACKETS.fullmatch(column)
    if found:
        pre = found.group("pre").strip()
        names = (f"{pre} {found.group('a').strip()}", f"{pre} {found.group('b').strip()}")
        halves = (found.group("a"), found.group("b"))
    else:
        found = _PAIR_COLUMN.fullmatch(column)
        if found is None:
            return None
        names = halves = (found.group("a").strip(), found.group("b").strip())
    for half in halves:
        half = half.strip()
        if (
            not re.search(r"[^\W\d_]", half)
            or half.count("(") != half.count(")")
            or parse_unit(half) is not None
        ):
            return None
    return names


#: Thin, narrow no-break, hair, six-per-em and punctuation spaces: typeset tables put them
#: between a number and its unit, or between groups of digits.
_THIN = "\u2009\u202f\u200a\u2006\u2008"
_THIN_SPACE = re.compile(f"[{_THIN}]")
#: The characters markup ends a cell with (a mark, a bracket) or starts it with (emphasis):
#: a cell that neither starts nor ends with one has none to strip.
_MARKUP_ENDS = frozenset(")]*_+†‡§¶#¹²³⁴⁵⁶⁷⁸⁹⁰")
#: ``**70.3**``, ``__70.3__``, ``*70.3*``, ``_70.3_``: Markdown emphasis (the best in bold).
_EMPHASIS = re.compile(r"(?P<mark>\*\*|__|\*|_)(?P<inner>[^*_]+?)(?P=mark)(?P<rest>[^*_]*)")
#: Footnote marks after a value: ``64.8*``, ``60.7+``, ``81.2†``, ``77.1²``.
_MARK = re.compile(r"(?<=[\w%)\]])\s*(?P<mark>[*+†‡§¶#¹²³⁴⁵⁶⁷⁸⁹⁰]+)$")
#: Bracketed text with a letter in it after a value, ``70.14 (measured by Ge et al., 2018)``,
#: or a reference number in square brackets, ``84.1 [12]``.
_NOTE = re.compile(r"(?<=\S)\s*(?P<note>[(\[][^()\[\]]*[^\W\d_][^()\[\]]*[)\]]|\[\d{1,3}\])$")
_PAIR = re.compile(rf"(?P<a>{_NUMBER}\s*%?)\s*/\s*(?P<b>{_NUMBER}\s*%?)")
_PAIR_IN_BRACKETS = re.compile(r"(?P<pre>[^/()]+?)\s*\(\s*(?P<a>[^/()]+)/(?P<b>[^/()]+)\)")
_PAIR_COLUMN = re.compile(r"(?P<a>[^/]+)/(?P<b>[^/]+)")


def _clean(text: str) -> tuple[str, tuple[str, ...]]:
    """The cell to read, and what was set aside to read it.

    Typography is undone silently (unicode minus, no-break spaces, thousands commas);
    what a person wrote around the number is set aside and named: a byte-order mark, thin
    spaces, emphasis, footnote marks and bracketed notes after it. A bracket that holds an
    error (``(± 0.2 ms)``) or a unit is no note.

    >>> _clean("\ufeff**70.3**")
    ('70.3', ('byte-order mark', "emphasis '**'"))
    >>> _clean("70.14 (measured by Ge et al., 2018)")
    ('70.14', ("note '(measured by Ge et al., 2018)'",))
    >>> _clean("64.8*"), _clean("76.1 (±0.2)"), _clean("1\u2009234.5")
    (('64.8', ("footnote mark '*'",)), ('76.1 (±0.2)', ()), ('1234.5', ('thin space',)))
    """
    stripped = []
    if "\ufeff" in text:
        text = text.replace("\ufeff", "")
        stripped.append("byte-order mark")
    if _THIN_SPACE.search(text):
        text = re.sub(rf"(?<=\d)[{_THIN}](?=\d{{3}}(?!\d))", "", text)  # 1 234 567
        text = _THIN_SPACE.sub(" ", text)
        stripped.append("thin space")
    text = text.strip().replace("\u2212", "-").replace("\u00a0", " ")
    text = re.sub(r"(?<=\d),(?=\d{3}(?!\d))", "", text)
    while text and (text[0] in _MARKUP_ENDS or text[-1] in _MARKUP_ENDS):
        if found := _EMPHASIS.fullmatch(text):
            text = (found.group("inner") + found.group("rest")).strip()
            stripped.append(f"emphasis {found.group('mark')!r}")
        elif (found := _NOTE.search(text)) and not _is_unit_or_error(found.group("note")):
            text = text[: found.start()].rstrip()
            stripped.append(f"note {found.group('note')!r}")
        elif found := _MARK.search(text):
            text = text[: found.start()].rstrip()
            stripped.append(f"footnote mark {found.group('mark')!r}")
        else:
            break
    return text, tuple(stripped)


def _is_unit_or_error(bracketed: str) -> bool:
    """``(ms)``, ``[± 0.2 ms]``: a bracket after a number that says something about it."""
    return bool(_ERROR.fullmatch(bracketed)) or parse_unit(bracketed[1:-1]) is not None


def _context_unit(column: str | None, unit: str | None) -> Unit | None:
    if unit:
        stated = parse_unit(unit)
        if stated:
            return stated
    return column_unit(column)


def _own_unit(rest: str, context: Unit | None) -> Unit | None:
    """The unit written after the number: a unit, or a multiplier with an optional unit."""
    unit = parse_unit(rest)
    # "1.5B" parameters are billions; only a byte-valued column makes a lone B mean bytes.
    if unit is not None and not (rest in "bB" and (context is None or context.canonical != "B")):
        return unit
    scale = _SCALE.get(rest[0])
    if scale is None:
        return None
    after = rest[1:].strip()
    if not after:
        base = context if context and context.canonical not in ("%",) else Unit("count")
        return Unit(base.canonical, base.factor * scale)
    unit = parse_unit(after)
    return Unit(unit.canonical, unit.factor * scale) if unit else None


def _scaled(
    number: float, stderr: float | None, unit: Unit | None, raw: str, stripped: tuple[str, ...] = ()
) -> Value:
    factor = unit.factor if unit else 1.0
    value = number * factor
    error = None if stderr is None else stderr * factor
    # "1e999", 400 digits or "1e308 kJ": no graph stores inf, and no front ranks it
    if not math.isfinite(value) or error is not None and not math.isfinite(error):
        return _bad(raw, f"{_quoted(raw)} is not a finite number")
    if unit is None:
        return Value(number, stderr, "", raw, stripped=stripped)
    return Value(
        _tidy(value),
        None if error is None else _tidy(error),
        unit.canonical,
        raw,
        stripped=stripped,
    )


def _tidy(x: float) -> float:
    """Round away binary noise of unit conversion: 12 * 0.001 is 0.012, not 0.012000000000000002."""
    return float(f"{x:.15g}")


def _bad(raw: str, warning: str) -> Value:
    return Value(None, None, "", raw, False, warning)


def _quoted(text: str) -> str:
    """``text`` quoted for a warning, cut to its first 20 characters past 40: one line.

    >>> _quoted("12 ms"), _quoted("9" * 4000)
    ("'12 ms'", "'99999999999999999999…'")
    """
    return repr(text if len(text) <= 40 else text[:20] + "…")


# --- showing values -----------------------------------------------------------------------


#: The units a table or a plot may scale, with the prefixed units it may show, smallest first.
_PREFIXES = {
    "s": ((1e-9, "ns"), (1e-6, "µs"), (1e-3, "ms"), (1.0, "s")),
    "J": ((1e-6, "µJ"), (1e-3, "mJ"), (1.0, "J"), (1e3, "kJ"), (1e6, "MJ")),
    "W": ((1e-3, "mW"), (1.0, "W"), (1e3, "kW")),
    "B": ((1.0, "B"), (1e3, "kB"), (1e6, "MB"), (1e9, "GB"), (1e12, "TB")),
}


def human_unit(values, unit: str) -> tuple[float, str]:
    """The factor to divide a column's values by, and the unit they are then in.

    The unit is the largest prefixed one the column's median magnitude reaches, so that
    typical values show 1 to 3 digits before the point, or a larger one where the largest
    value would show more than 4; units without prefixes stay.

    >>> human_unit([3.4e-05, 1.9e-07, 6.2e-06], "s")
    (1e-06, 'µs')
    >>> human_unit([3.4e-05, 6.5e-06, 6.0e-07, 5.8e-07, 2.1e-07], "s")  # not 34000 ns
    (1e-06, 'µs')
    >>> human_unit([166014976.0], "B")
    (1000000.0, 'MB')
    >>> human_unit([91.3, 97.2], "%")
    (1.0, '%')
    """
    choices = _PREFIXES.get(unit)
    sizes = sorted(abs(v) for v in values if is_number(v) and v and math.isfinite(v))
    if not choices or not sizes:
        return 1.0, unit
    typical = sizes[len(sizes) // 2]  # the median: one outlier does not decide for the rest
    # 0.9995: 999.96 µs rounds to 1000, so it reads as 1.000 ms.
    index = max([0, *(i for i, (step, _) in enumerate(choices) if typical >= step * 0.9995)])
    while index + 1 < len(choices) and sizes[-1] >= choices[index][0] * 9999.5:
        index += 1
    return choices[index]


def format_number(value, digits: int = 4) -> str:
    """``value`` with ``digits`` significant digits, in plain notation where that is short.

    >>> [format_number(v) for v in (91.296, 0.019213, 1234.56, 0, 7, 2.5e-07, None)]
    ['91.30', '0.01921', '1235', '0', '7', '2.500e-07', '']
    """
    if value is None:
        return ""
    if not is_number(value) or isinstance(value, int) or not math.isfinite(value):
        return str(value)
    rounded = float(f"{value:.{digits}g}")  # round first: 9.99996 is 10.00, not 10.000
    if rounded == 0:
        return "0"
    magnitude = math.floor(math.log10(abs(rounded)))
    if not -4 <= magnitude < 9:
        return f"{rounded:.{digits - 1}e}"
    if magnitude >= digits - 1:  # whole digits cost no width to keep: 12346, not 12350
        return f"{value:.0f}"
    return f"{rounded:.{digits - 1 - magnitude}f}"


def is_number(value) -> bool:
    """A real number, not a bool (which Python counts as an int)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)
