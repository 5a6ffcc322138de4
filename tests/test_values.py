"""The value normaliser: published cells to value, standard error and canonical unit."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ckg.core.values import CANONICAL_UNITS, Unit, column_unit, parse_unit, parse_value


@pytest.mark.parametrize(
    ("raw", "column", "value", "stderr", "unit"),
    [
        ("0.8428 ± 0.0014", None, 0.8428, 0.0014, ""),
        ("84.28%", None, 84.28, None, "%"),
        ("76.1 (±0.2)", None, 76.1, 0.2, ""),
        ("220k", None, 220_000.0, None, "count"),
        ("3.0M", None, 3_000_000.0, None, "count"),
        ("1.2e-3", None, 0.0012, None, ""),
        ("12 ms", None, 0.012, None, "s"),
        ("12", "Latency (ms)", 0.012, None, "s"),
        ("5", "Samples/s", 5.0, None, "1/s"),
        ("9.9m", "Parameters", 9_900_000.0, None, "count"),
        ("1.5B", "Parameters", 1.5e9, None, "count"),
        ("1.5B", "Memory (B)", 1.5, None, "B"),
        ("2 GB", None, 2e9, None, "B"),
        ("12", "Memory (GiB)", 12 * 1024**3, None, "B"),
        ("84.28 ± 0.1 %", None, 84.28, 0.1, "%"),
        ("0.85+/-0.01", None, 0.85, 0.01, ""),
        ("1,234.5", None, 1234.5, None, ""),
        ("−3.2", None, -3.2, None, ""),
        ("75W", None, 75.0, None, "W"),
        ("2.5 kWh", None, 9e6, None, "J"),
        ("3 mJ", None, 0.003, None, "J"),
        ("40 QPS", None, 40.0, None, "1/s"),
        ("1.2k samples/s", None, 1200.0, None, "1/s"),
        ("3.1 J/inference", None, 3.1, None, "J"),
        ("5", "% Test Accuracy", 5.0, None, "%"),
        ("4", "Energy [kJ]", 4000.0, None, "J"),
        (185.5, "Inference_per_Joule", 185.5, None, "1/J"),
        (168720, None, 168720.0, None, ""),
    ],
)
def test_parse_value_reads_published_spellings(raw, column, value, stderr, unit):
    parsed = parse_value(raw, column)
    assert parsed.ok and parsed.warning is None
    assert parsed.value == pytest.approx(value)
    assert parsed.stderr == (None if stderr is None else pytest.approx(stderr))
    assert parsed.unit == unit
    assert parsed.raw == str(raw)


@pytest.mark.parametrize("raw", ["-", "—", "–", "N/A", "n/a", "", "  ", None, "--"])
def test_no_value_cells_are_missing_not_errors(raw):
    parsed = parse_value(raw)
    assert parsed.missing and parsed.ok and parsed.value is None and parsed.warning is None


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("(32.76 32.07 26.26 22.74)", "cannot read a number"),
        ("fast", "cannot read a number"),
        ("12 furlongs", "unknown unit 'furlongs'"),
        (True, "true/false"),
        (float("nan"), "not a finite number"),
    ],
)
def test_unreadable_cells_keep_raw_and_give_one_warning(raw, message):
    parsed = parse_value(raw)
    assert not parsed.ok and not parsed.missing and parsed.value is None
    assert message in parsed.warning
    assert parsed.raw == str(raw)


def test_unit_beside_the_value_wins_over_column_and_cell_unit_wins_over_both():
    assert parse_value("12", "Latency (s)", unit="ms").value == pytest.approx(0.012)
    assert parse_value("12 us", "Latency (s)", unit="ms").value == pytest.approx(12e-6)


def test_stderr_is_converted_with_the_value():
    parsed = parse_value("12 ± 2 ms")
    assert (parsed.value, parsed.stderr, parsed.unit) == (0.012, 0.002, "s")


def test_parse_unit_and_column_unit():
    assert parse_unit("MiB") == Unit("B", 1024.0**2)
    assert parse_unit("mW") == Unit("W", 1e-3) and parse_unit("MW") == Unit("W", 1e6)
    assert parse_unit("samples per joule") == Unit("1/J")
    assert parse_unit("parsecs") is None
    assert column_unit("Latency (ms)") == Unit("s", 1e-3)
    assert column_unit("EM") is None and column_unit(None) is None
    assert {u.canonical for u in map(parse_unit, ["s", "J", "W", "B", "count", "%", "qps"])} <= set(
        CANONICAL_UNITS
    )


@given(st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12))
def test_any_printed_float_reads_back(x):
    assert parse_value(repr(x)).value == pytest.approx(x)
    assert parse_value(f"{x:.6g} ms").value == pytest.approx(float(f"{x:.6g}") / 1000)


@given(st.text(max_size=20))
def test_parse_value_never_raises(text):
    parsed = parse_value(text)
    assert parsed.raw == text
    assert parsed.ok or parsed.warning
