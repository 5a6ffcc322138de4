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

Examples
--------
>>> parse_value("0.8428 ± 0.0014")
Value(value=0.8428, stderr=0.0014, unit='', raw='0.8428 ± 0.0014', ok=True, warning=None)
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
from dataclasses import dataclass

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
    ``ok`` is False when the cell could not be read, and then ``warning`` says why.
    """

    value: float | None
    stderr: float | None = None
    unit: str = ""
    raw: str = ""
    ok: bool = True
    warning: str | None = None

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
    Value(value=84.28, stderr=None, unit='%', raw='84.28%', ok=True, warning=None)
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
    cell = _clean(text)
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
        return _scaled(number, stderr, context, text)
    own = _own_unit(rest, context)
    if own is None:
        return _bad(text, f"unknown unit {_quoted(rest)} in {_quoted(text)}")
    return _scaled(number, stderr, own, text)


def _clean(text: str) -> str:
    """Strip the cell and undo typography: unicode minus, narrow spaces, thousands commas."""
    text = text.strip().replace("\u2212", "-").replace("\u00a0", " ").replace("\u2009", " ")
    return re.sub(r"(?<=\d),(?=\d{3}(?!\d))", "", text)


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


def _scaled(number: float, stderr: float | None, unit: Unit | None, raw: str) -> Value:
    factor = unit.factor if unit else 1.0
    value = number * factor
    error = None if stderr is None else stderr * factor
    # "1e999", 400 digits or "1e308 kJ": no graph stores inf, and no front ranks it
    if not math.isfinite(value) or error is not None and not math.isfinite(error):
        return _bad(raw, f"{_quoted(raw)} is not a finite number")
    if unit is None:
        return Value(number, stderr, "", raw)
    return Value(_tidy(value), None if error is None else _tidy(error), unit.canonical, raw)


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
