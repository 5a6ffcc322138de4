"""Statistics, energy meters and result files, with real files and a fake powercap tree."""

import json

import pytest

from ckg.core.errors import InvalidInput
from ckg.run.measure import (
    EnergyMeter,
    canonical_metrics,
    counter_delta,
    rapl_domains,
    result_metrics,
    summarize,
)


def test_summarize_gives_min_median_mean_stdev():
    stats = summarize([0.3, 0.1, 0.2, 0.6])
    assert stats["min"] == 0.1 and stats["max"] == 0.6
    assert stats["median"] == pytest.approx(0.25)
    assert stats["mean"] == pytest.approx(0.3)
    assert stats["stdev"] == pytest.approx(0.2160, abs=1e-4)


def test_summarize_refuses_no_values():
    with pytest.raises(InvalidInput, match="no values"):
        summarize([])


def test_counter_delta_handles_wrap():
    assert counter_delta(262_143_000_000, 1_000_000, 262_143_328_850) == 328_850 + 1_000_000


def _powercap(root, zones):
    for name, label, energy, max_range in zones:
        zone = root / name
        zone.mkdir(parents=True)
        (zone / "name").write_text(label + "\n")
        (zone / "energy_uj").write_text(f"{energy}\n")
        (zone / "max_energy_range_uj").write_text(f"{max_range}\n")


def test_rapl_meter_sums_package_and_dram_across_a_wrap(tmp_path):
    _powercap(
        tmp_path,
        [
            ("intel-rapl:0", "package-0", 999_000_000, 1_000_000_000),
            ("intel-rapl:0:0", "dram", 5_000_000, 1_000_000_000),
            ("intel-rapl:0:1", "core", 0, 1_000_000_000),  # inside the package: not added
        ],
    )
    meter = EnergyMeter(rapl_root=tmp_path, use_nvml=False)
    assert [d.name for d in meter.rapl] == ["intel-rapl:0:package-0", "intel-rapl:0:0:dram"]
    mark = meter.start()
    (tmp_path / "intel-rapl:0" / "energy_uj").write_text("2000000\n")  # wrapped: +3 J
    (tmp_path / "intel-rapl:0:0" / "energy_uj").write_text("6500000\n")  # +1.5 J
    [figure] = meter.stop(mark, cpu_s=10.0)
    assert (figure.metric, figure.method, figure.unit) == ("energy", "rapl", "J")
    assert figure.values == [pytest.approx(4.5)]


def test_unreadable_rapl_falls_back_to_the_estimate(tmp_path, monkeypatch):
    _powercap(tmp_path, [("intel-rapl:0", "package-0", 1, 10)])
    (tmp_path / "intel-rapl:0" / "energy_uj").unlink()  # as when only root may read it
    assert rapl_domains(tmp_path) == []
    monkeypatch.setenv("CKG_WATTS_PER_CORE", "5")
    meter = EnergyMeter(rapl_root=tmp_path, use_nvml=False)
    [figure] = meter.stop(meter.start(), cpu_s=2.0)
    assert (figure.method, figure.values, figure.extra) == (
        "estimate:tdp",
        [10.0],
        {"watts_per_core": 5.0},
    )


def test_metrics_from_ckg_result_json(tmp_path):
    (tmp_path / "ckg-result.json").write_text(
        json.dumps({"accuracy": 0.97, "latency": {"value": 2e-5, "unit": "s"}, "model": "knn"})
    )
    assert result_metrics(tmp_path) == {"accuracy": (0.97, ""), "latency": (2e-5, "s")}


def test_metrics_from_cm_result_json_list(tmp_path):
    records = [{"Accuracy": 75.9, "Result": 168720, "Result_Units": "Samples/s", "uid": 7}]
    (tmp_path / "cm-result.json").write_text(json.dumps(records))
    assert result_metrics(tmp_path) == {
        "Accuracy": (75.9, ""),
        "Result": (168720.0, "Samples/s"),
    }


def test_metrics_from_cm_output_json(tmp_path):
    (tmp_path / "cm-output.json").write_text(
        json.dumps({"return": 0, "metrics": {"f1": 0.81}, "new_env": {"CM_X": "1"}})
    )
    assert result_metrics(tmp_path) == {"f1": (0.81, "")}


def test_metrics_from_final_json_line_of_stdout(tmp_path):
    log = 'loading\n{"note": "not last"}\n{"accuracy": 0.5, "ok": true}\n\n'
    assert result_metrics(tmp_path, log) == {"accuracy": (0.5, "")}
    assert result_metrics(tmp_path, '{"accuracy": 0.5}\ndone\n') == {}


def test_result_files_override_stdout_in_priority_order(tmp_path):
    (tmp_path / "cm-output.json").write_text('{"accuracy": 0.1, "f1": 0.2}')
    (tmp_path / "ckg-result.json").write_text('{"accuracy": 0.3}')
    found = result_metrics(tmp_path, '{"accuracy": 0.0, "bleu": 9}')
    assert found == {"accuracy": (0.3, ""), "f1": (0.2, ""), "bleu": (9.0, "")}


def test_malformed_result_file_names_the_file(tmp_path):
    (tmp_path / "ckg-result.json").write_text("{accuracy: 1")
    with pytest.raises(InvalidInput, match="ckg-result.json: not valid JSON"):
        result_metrics(tmp_path)


def test_canonical_metrics_map_names_through_the_registry():
    mapped = canonical_metrics(
        {"Accuracy": (0.9, ""), "Samples/s": (10.0, "1/s"), "Result": (5.0, "Samples/s")}
    )
    assert mapped == {"accuracy": (0.9, ""), "throughput": (5.0, "Samples/s")}
