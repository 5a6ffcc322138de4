"""The metric registry: aliases as real sources spell them, direction, unit, user extension."""

import pytest

from ckg.core import metrics
from ckg.core.errors import InvalidInput, NotFound
from ckg.core.values import CANONICAL_UNITS


@pytest.mark.parametrize(
    ("alias", "name", "direction", "unit"),
    [
        ("Test Accuracy", "accuracy", "max", "%"),
        ("% Test Accuracy", "accuracy", "max", "%"),
        ("Top 1 Accuracy", "top1_accuracy", "max", "%"),
        ("top1_accuracy", "top1_accuracy", "max", "%"),
        ("EM", "exact_match", "max", ""),
        ("F1", "f1", "max", ""),
        ("BLEU", "bleu", "max", ""),
        ("Samples/s", "throughput", "max", "1/s"),
        ("Result_Power", "power", "min", "W"),
        ("Inference_per_Joule", "inferences_per_joule", "max", "1/J"),
        ("Number of params", "params", "min", "count"),
        ("Perplexity", "perplexity", "min", ""),
        ("Latency (ms)", "latency", "min", "s"),
        ("Top-1 Error", "top1_error", "min", "%"),
    ],
)
def test_lookup_finds_real_spellings(alias, name, direction, unit):
    metric = metrics.lookup(alias)
    assert (metric.name, metric.direction, metric.unit) == (name, direction, unit)


def test_every_packaged_metric_is_well_formed():
    reg = metrics.Registry.from_files([metrics.PACKAGED])
    names = {m.name for m in reg}
    assert {"accuracy", "latency", "energy", "power", "params", "memory"} <= names
    for metric in reg:
        assert metric.direction in ("min", "max")
        assert metric.unit == "" or metric.unit in CANONICAL_UNITS
        assert reg.lookup(metric.name) is metric


def test_lookup_of_unknown_metric_names_close_ones():
    with pytest.raises(NotFound, match=r"unknown metric 'latncy' \(did you mean 'latency'"):
        metrics.lookup("latncy")
    assert metrics.get("latncy") is None


def test_resolve_derives_qualified_leaderboard_columns():
    ans = metrics.resolve("ANS-EM")
    assert (ans.name, ans.direction, ans.base) == ("ans_em", "max", "exact_match")
    train = metrics.resolve("% Train Accuracy")
    assert (train.name, train.direction, train.unit) == ("train_accuracy", "max", "%")
    unknown = metrics.resolve("IN-DOMAIN")
    assert (unknown.name, unknown.direction, unknown.sign) == ("in_domain", None, 0)


def test_direction_decides_better():
    assert metrics.lookup("latency").better(0.01, 0.02)
    assert not metrics.lookup("accuracy").better(70, 75)
    with pytest.raises(InvalidInput, match="no known direction"):
        metrics.resolve("QAC").better(1, 2)


def test_user_file_in_ckg_home_extends_and_overrides(tmp_path, monkeypatch):
    (tmp_path / "metrics.yaml").write_text(
        "samples_per_watt:\n  direction: max\n  aliases: [Samples/W]\n"
        "latency:\n  direction: min\n  unit: s\n  aliases: [Tail Latency]\n"
    )
    monkeypatch.setenv("CKG_HOME", str(tmp_path))
    monkeypatch.delenv("CKG_METRICS", raising=False)
    assert metrics.lookup("Samples/W").name == "samples_per_watt"
    assert metrics.lookup("Tail Latency").name == "latency"
    assert metrics.get("Mean Latency") is None  # the user's entry replaced the packaged one
    assert metrics.lookup("EM").name == "exact_match"


def test_ckg_metrics_file_is_read_and_reloaded_when_changed(tmp_path, monkeypatch):
    extra = tmp_path / "extra.yaml"
    extra.write_text("gops:\n  direction: max\n  unit: 1/s\n")
    monkeypatch.delenv("CKG_HOME", raising=False)
    monkeypatch.setenv("CKG_METRICS", str(extra))
    assert metrics.lookup("GOPS").unit == "1/s"
    extra.write_text("gops:\n  direction: max\n  unit: 1/s\n  aliases: [Giga-ops per second]\n")
    assert metrics.lookup("giga ops per second").name == "gops"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("x:\n  direction: up\n", "direction must be min or max, got 'up'"),
        ("x:\n  direction: max\n  unit: furlong\n", "unit 'furlong' is not one of"),
        ("x:\n  direction: max\n  aliases: EM\n", "aliases must be a list"),
        ("- a\n- b\n", "maps metric names"),
        ("x: [\n", "not valid YAML"),
    ],
)
def test_bad_registry_file_names_file_and_entry(tmp_path, monkeypatch, text, message):
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    monkeypatch.setenv("CKG_METRICS", str(bad))
    with pytest.raises(InvalidInput, match=message) as err:
        metrics.registry()
    assert "bad.yaml" in str(err.value)


def test_ckg_metrics_naming_a_missing_file_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv("CKG_METRICS", str(tmp_path / "nope.yaml"))
    with pytest.raises(InvalidInput, match="CKG_METRICS names .*nope.yaml"):
        metrics.lookup("EM")
