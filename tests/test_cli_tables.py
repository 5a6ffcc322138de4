"""The tables of ``ckg run``, ``ckg demo`` and ``ckg pareto`` in an 80-column terminal.

Real runs of a tiny workflow, printed by real ``ckg`` processes with ``COLUMNS`` set, as a
pipe or a CI log gets them; plus the shared formatting helpers of ``ckg.cli.app``.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ckg.cli.app import print_rows
from ckg.core.values import format_number, human_unit

CKG = str(Path(sys.executable).with_name("ckg"))

STEP = """\
import json, sys
variant, latency = sys.argv[1], float(sys.argv[2])
print(json.dumps({"accuracy": {"value": 90 + len(variant) / 10, "unit": "%"},
                  "latency": {"value": latency, "unit": "s"}}))
"""

VARIANTS = ("effnet_b7_int8", "mobilenet_fp16", "resnet50_fp32")
LATENCIES = ("3.45e-05", "1.21e-06")


def _ckg(*args, columns=80, code=0):
    env = {**os.environ, "COLUMNS": str(columns)}
    done = subprocess.run([CKG, *args], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == code, done.stdout + done.stderr
    return done.stdout


@pytest.fixture
def grid_run(ckg_home, tmp_path):
    """Six real runs of a step whose latency is a parameter; returns the `ckg run` table."""
    folder = tmp_path / "wf"
    folder.mkdir()
    (folder / "step.py").write_text(STEP)
    (folder / "ckg.yaml").write_text(
        "alias: bench\nuid: wf-bench\nparams: {variant: x, latency: 1}\n"
        'run: "{python} {artifact_dir}/step.py {variant} {latency}"\n'
    )
    _ckg("ingest", str(folder))
    return _ckg(
        "run",
        "bench",
        "--grid",
        f"variant={','.join(VARIANTS)}",
        "--grid",
        f"latency={','.join(LATENCIES)}",
        "--pareto",
        "accuracy,latency",
    )


def test_run_table_at_80_columns_keeps_every_configuration_whole(grid_run):
    for variant in VARIANTS:
        for latency in LATENCIES:
            assert f"variant={variant} latency={latency}" in grid_run, grid_run
    assert "…" not in grid_run
    assert max(len(line) for line in grid_run.splitlines()) <= 80, grid_run


def test_run_table_shows_latency_in_microseconds_with_four_digits(grid_run):
    assert "(µs)" in grid_run and "latency (s)" not in grid_run
    assert "34.50" in grid_run and "1.210" in grid_run, grid_run
    assert "3.450e-05" not in grid_run  # the old cut-off scientific notation


def test_run_table_leaves_cpu_times_out_at_80_columns_and_says_so(grid_run):
    table = grid_run.split("runs,")[0]
    assert "cpu_user_time" not in table.split("(left out")[0]
    assert "(left out to fit: cpu_user_time, cpu_system_time" in table


def test_pareto_table_at_80_columns_keeps_every_point_whole(grid_run):
    out = _ckg("pareto", "accuracy,latency", "--no-write", columns=80)
    # ckg pareto labels points by their parameters, sorted by name.
    for variant in VARIANTS:
        assert f"latency={LATENCIES[0]} variant={variant}" in out, out
    assert "(µs)" in out and "34.50" in out and "…" not in out


def test_run_table_keeps_cpu_times_on_a_wide_terminal(grid_run):
    wide = _ckg("run", "bench", "--grid", f"variant={VARIANTS[0]}", columns=200)
    assert re.search(r"cpu_user_time \(m?s\)", wide) and "memory (MB)" in wide
    assert "left out" not in wide


def test_run_table_has_a_status_column_only_when_a_run_failed(grid_run):
    assert "status" not in grid_run
    out = _ckg("run", "bench", "--grid", "latency=1e-3,oops", code=1)
    assert "status" in out and "failed" in out and "latency=oops" in out, out


def test_run_json_keeps_seconds_and_raw_values(grid_run):
    out = _ckg("run", "bench", "--grid", f"variant={VARIANTS[0]}", "--json")
    run = json.loads(out)["runs"][0]
    assert run["units"]["latency"] == "s" and run["metrics"]["latency"] == 1.0


def _printed(capsys, monkeypatch, columns, rows, **options) -> str:
    monkeypatch.setenv("COLUMNS", str(columns))
    print_rows(rows, **options)
    return capsys.readouterr().out


ROWS = [
    {
        "params": f"model=transformer_{i}_layers batch=64 precision=bfloat16",
        "latency": 3.441e-05 * (i + 1),
        "memory": 1.6e8 + i,
        "cpu_user_time": 1.2,
    }
    for i in range(3)
]
UNITS = {"latency": "s", "memory": "B", "cpu_user_time": "s"}


def test_label_wraps_at_spaces_when_the_terminal_is_too_narrow(capsys, monkeypatch):
    out = _printed(
        capsys, monkeypatch, 60, ROWS, units=UNITS, label="params", optional=(("memory",),)
    )
    for i in range(3):
        assert f"model=transformer_{i}_layers" in out, out
    assert "precision=bfloat16" in out and "…" not in out
    assert "memory" not in out.split("(left out")[0] and "(left out to fit: memory; see" in out
    assert max(len(line) for line in out.splitlines()) <= 60, out


def test_a_plain_listing_keeps_its_text(capsys, monkeypatch):
    out = _printed(capsys, monkeypatch, 80, [{"uid": "a", "d": 1.61495491900041}])
    assert "1.61495491900041" in out


@pytest.mark.parametrize(
    "values, unit, expected",
    [
        ([3.4e-05, 1.9e-07, 6.2e-06], "s", (1e-06, "µs")),
        ([0.0099, 0.1059, 0.0009], "s", (1e-3, "ms")),
        ([0.0009999], "s", (1e-3, "ms")),
        ([3600.0], "s", (1.0, "s")),
        ([1.66e8, None, float("nan")], "B", (1e6, "MB")),
        ([0.0072], "J", (1e-3, "mJ")),
        ([91.3], "%", (1.0, "%")),
        ([None], "s", (1.0, "s")),
    ],
)
def test_human_unit_picks_one_prefix_per_column(values, unit, expected):
    assert human_unit(values, unit) == expected


@pytest.mark.parametrize(
    "value, text",
    [(9.99996, "10.00"), (0.00012346, "0.0001235"), (1.2e-6, "1.200e-06"), (12345.6, "12346")],
)
def test_format_number_keeps_four_significant_digits(value, text):
    assert format_number(value) == text


PAPERS = [
    {
        "metric": "accuracy",
        "direction": "max",
        "model": f"Densely-Connected Recurrent and Co-Attentive Network Ensemble {i}",
        "value": 89.30000000000001 - i,
        "unit": "%",
        "raw": f"{89.3 - i}%",
        "paper": "Improving Language Understanding by Generative Pre-Training",
        "paper_url": f"https://arxiv.org/abs/1810.0480{i}",
        "code": [],
        "result": f"result:{i:024x}",
    }
    for i in range(3)
]


def test_a_wide_listing_keeps_the_important_columns_whole_and_names_the_rest(capsys, monkeypatch):
    out = _printed(capsys, monkeypatch, 80, PAPERS, important=("metric", "model", "value", "paper"))
    assert max(len(line) for line in out.splitlines()) <= 80, out
    assert "…" not in out
    words = set(out.replace("│", " ").split())  # every word whole, wrapped at spaces
    for row in PAPERS:
        assert set(row["model"].split()) <= words, out
        assert f"{row['value']:.15g}" in words  # not the float's noise, 89.30000000000001
    assert set(PAPERS[0]["paper"].split()) <= words
    left_out = out.split("(left out to fit: ")[1]
    assert "paper_url" in left_out and "result" in left_out and "see --json or --csv" in out
    assert "code" not in out.split("(left out")[0]  # an empty column goes first


def test_a_long_table_shows_the_first_rows_and_says_how_many_there_are(capsys, monkeypatch):
    rows = [{"n": i} for i in range(120)]
    out = _printed(capsys, monkeypatch, 80, rows)
    assert "│ 49 │" in out and "│ 50 │" not in out
    assert "(50 of 120 rows shown: --json or --csv for all)" in out
    # only a command that has --limit is told to use it (ckg pareto has none)
    said = _printed(capsys, monkeypatch, 80, rows, limit_option=True)
    assert "(50 of 120 rows shown: --limit 0 for all, --json or --csv to save)" in said
    assert "│ 119 │" in _printed(capsys, monkeypatch, 80, rows, limit=0)
    monkeypatch.setenv("COLUMNS", "80")
    print_rows(rows, as_json=True)
    assert len(json.loads(capsys.readouterr().out)) == 120  # JSON is never cut unless asked


def test_an_empty_table_says_why(capsys, monkeypatch):
    out = _printed(capsys, monkeypatch, 80, [], empty_hint="no Dataset 'snli' in the graph")
    assert "(no rows: no Dataset 'snli' in the graph)" in out


def test_plan_lines_fit_the_terminal_and_keep_every_word(corpora, ckg_home):
    _ckg("ingest", str(corpora / "cm4mlops"))
    narrow = _ckg("plan", "app-mlperf-inference", columns=80)
    wide = _ckg("plan", "app-mlperf-inference", columns=400)
    assert max(len(line) for line in narrow.splitlines()) <= 80
    assert max(len(line) for line in wide.splitlines()) > 80  # one line a step, as before
    assert "".join(narrow.split()) == "".join(wide.split())  # a word wider than 80 folds
