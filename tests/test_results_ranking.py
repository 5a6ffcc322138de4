"""Rankings of published results are right: the direction of every metric is known or asked
for, and said; a 0-1 scale is recognised; queries and ``compare`` name metrics alike.

The leaderboards here are Papers with Code files in the corpus's format holding results as
their papers published them (enwik8 bits per character, CIFAR-10 percentage error).
"""

import json
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from ckg.core.errors import UsageError
from ckg.graph import named

ENWIK8_BPC = [  # model, bits per character on enwik8 as published
    ("Compressive Transformer", "0.97"),
    ("Transformer-XL (24 layers)", "0.99"),
    ("64-layer Character Transformer Model", "1.06"),
    ("mLSTM", "1.24"),
    ("Recurrent Highway Networks", "1.27"),
    ("LN HM-LSTM", "1.32"),
]
CIFAR10_ERROR = [("Wide ResNet", "3.08"), ("ResNet-1001", "4.62"), ("DenseNet", "3.46")]
MNIST_ACCURACY_FRACTIONS = [("Branching CNN", "0.9984"), ("Simple CNN", "0.9953")]


def board(task: str, dataset: str, metric: str, rows: list[tuple[str, str]]) -> dict:
    return {
        "task": task, "description": "", "categories": [], "synonyms": [], "subtasks": [],
        "source_link": None,
        "datasets": [{
            "dataset": dataset, "description": "", "subdatasets": [],
            "sota": {"metrics": [metric], "rows": [
                {"model_name": model, "paper_title": "", "paper_url": "", "paper_date": None,
                 "code_links": [], "uses_additional_data": False, "metrics": {metric: value}}
                for model, value in rows]},
        }],
    }


@pytest.fixture
def leaderboards(kg, tmp_path):
    folder = tmp_path / "boards"
    folder.mkdir()
    tasks = [
        board("Language Modelling", "enwik8", "Bit per Character (BPC)", ENWIK8_BPC),
        board("Image Classification", "CIFAR-10", "Percentage error", CIFAR10_ERROR),
        board("Image Classification", "MNIST", "Accuracy", MNIST_ACCURACY_FRACTIONS),
        board("Image Classification", "MNIST", "Widget Count", [("A", "3"), ("B", "5")]),
    ]
    (folder / "boards.json").write_text(json.dumps(tasks))
    kg.import_results([folder / "boards.json"])
    return kg


def test_a_lower_is_better_leaderboard_is_ranked_best_first_with_its_rule(leaderboards):
    frame = leaderboards.compare("Language Modelling", "enwik8", "Bit per Character (BPC)")
    assert list(frame["value"]) == sorted(float(v) for _, v in ENWIK8_BPC)
    assert frame.iloc[0]["model"] == "Compressive Transformer"
    assert frame.attrs["direction"] == "min" and frame.attrs["why"] == "registry"


def test_percentage_error_is_an_error_rate_not_a_word_error_rate(leaderboards):
    rows = leaderboards.query(
        "MATCH (r:Result)-[:OF_METRIC]->(m:Metric) WHERE r.dataset = 'CIFAR-10' "
        "RETURN DISTINCT m.name AS metric, m.direction AS direction")
    assert rows == [{"metric": "error_rate", "direction": "min"}]
    frame = leaderboards.compare("Image Classification", "CIFAR-10", "Percentage error")
    assert frame.iloc[0]["model"] == "Wide ResNet"


def test_fractions_of_a_percentage_metric_are_scaled_and_the_original_kept(leaderboards):
    frame = leaderboards.compare("Image Classification", "MNIST", "accuracy")
    assert list(frame["value"]) == pytest.approx([99.84, 99.53])
    assert list(frame["raw"]) == ["0.9984", "0.9953"]
    [row] = leaderboards.query(
        "MATCH (r:Result {model: 'Simple CNN'}) RETURN r.scale AS scale, r.unit AS unit")
    assert row["scale"].startswith("x100") and row["unit"] == "%"


def test_a_metric_of_unknown_direction_is_not_ranked_until_one_is_given(leaderboards):
    with pytest.raises(UsageError, match="--higher-is-better or --lower-is-better"):
        leaderboards.compare("Image Classification", "MNIST", "Widget Count")
    frame = leaderboards.compare("Image Classification", "MNIST", "Widget Count", "max")
    assert list(frame["model"]) == ["B", "A"] and frame.attrs["why"].startswith("given")
    rows = named.run(leaderboards.store, "compare-papers",
                       {"dataset": "MNIST", "metric": "Widget Count"})
    assert {r["direction"] for r in rows} == {None}  # listed, not ranked


def test_the_named_query_and_compare_resolve_metric_names_alike(leaderboards):
    for spelling in ("Bit per Character (BPC)", "BPC", "bits_per_character"):
        rows = named.run(leaderboards.store, "compare-papers",
                           {"dataset": "enwik8", "metric": spelling})
        frame = leaderboards.compare("Language Modelling", "enwik8", spelling)
        assert [r["model"] for r in rows] == list(frame["model"])
        assert len(rows) == len(ENWIK8_BPC)


def test_compare_cli_prints_the_rule_and_asks_for_a_direction(leaderboards, ckg_home):
    ckg = [str(Path(sys.executable).with_name("ckg"))]
    shown = subprocess.run(
        [*ckg, "compare", "--task", "Language Modelling", "--dataset", "enwik8", "--metric",
         "BPC"], capture_output=True, text=True, env=_env(ckg_home))
    assert shown.returncode == 0, shown.stderr
    assert "ranked lower is better: registry" in shown.stdout
    asked = subprocess.run(
        [*ckg, "compare", "--task", "Image Classification", "--dataset", "MNIST", "--metric",
         "Widget Count"], capture_output=True, text=True, env=_env(ckg_home))
    assert asked.returncode == 2
    assert "has no known direction" in asked.stderr and "--lower-is-better" in asked.stderr


def _env(home: Path) -> dict:
    import os

    return {**os.environ, "CKG_HOME": str(home)}


def test_a_comparison_plot_names_each_result_and_spans_its_values(tmp_path):
    import pandas as pd

    from ckg.results.published import plot

    frame = pd.DataFrame({"model": ["BERT", "ESIM", None], "date": ["2018-10-11", None, None],
                          "value": [91.0, 84.5, 78.0], "unit": ["%", "%", "%"]})  # fmt: skip
    frame.attrs.update(metric="accuracy", dataset="SNLI", direction="max")
    html = plot(frame, tmp_path / "c.html").read_text()
    assert '"BERT (2018)"' in html and '"ESIM"' in html and '"(no model)"' in html
    assert "()" not in html.split("<body>")[1].split("<script")[0]
    assert "accuracy (%), higher is better" in html
    low = re.search(r'"range":\[([-\d.e]+),([-\d.e]+)\]', html)
    assert low and 70 < float(low.group(1)) < 78 and 91 < float(low.group(2)) < 95  # not from 0
    assert plot(frame, tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"


def qa_set(kg, tmp_path) -> None:
    """A leaderboard of 7 F1 results on QA-set and 5 on its part ``hard``: 12 rows."""
    rows = [(f"M{i}", f"{50 + (i * 7) % 11}.{i}") for i in range(7)]
    whole = board("Question Answering", "QA-set", "F1", rows)
    whole["datasets"][0]["subdatasets"] = [
        {**board("Question Answering", "QA-set / hard", "F1", rows[:5])["datasets"][0],
         "dataset": "hard"}]
    (tmp_path / "qa.json").write_text(json.dumps([whole]))
    kg.import_results([tmp_path / "qa.json"])


def test_a_page_of_a_comparison_is_that_slice_of_the_whole_ranked_alike(kg, tmp_path):
    """compare(start=, stop=) reads one page in the store: its rows, ranks and artifacts are
    those of the whole comparison's slice, a part's ranks (a sub-dataset) counted from the
    part's first row even where the page begins inside it."""
    qa_set(kg, tmp_path)
    full = kg.compare("Question Answering", "QA-set", "F1")
    assert len(full.attrs["datasets"]) == 2 and full.attrs["total"] == len(full) == 12
    for size in (1, 3, 5):
        pages = [kg.compare("Question Answering", "QA-set", "F1", start=start,
                            stop=start + size) for start in range(0, len(full), size)]
        assert {p.attrs["total"] for p in pages} == {12}
        assert all(p.attrs["datasets"] == full.attrs["datasets"] for p in pages)
        joined = pd.concat(pages, ignore_index=True)
        assert joined.to_dict("records") == full.to_dict("records")
    assert kg.compare("Question Answering", "QA-set", "F1", start=20, stop=30).empty


def test_compare_cli_prints_the_first_rows_of_the_whole_ranking_and_counts_all(
    kg, tmp_path, ckg_home
):
    """ckg compare --limit N (a table's default 50) reads those rows as a page and says how
    many there are in all: the same rows, ranks and parts as the first N of all of them."""
    qa_set(kg, tmp_path)
    ckg = [str(Path(sys.executable).with_name("ckg")), "compare", "--task"]
    ckg += ["Question Answering", "--dataset", "QA-set", "--metric", "F1"]
    env = {**_env(ckg_home), "COLUMNS": "200"}

    def shown(*args: str) -> str:
        done = subprocess.run([*ckg, *args], capture_output=True, text=True, env=env)
        assert done.returncode == 0, done.stderr
        return done.stdout

    every = json.loads(shown("--json"))
    assert len(every) == 12 and json.loads(shown("--json", "--limit", "0")) == every
    for limit in ("1", "5", "7", "12"):
        assert json.loads(shown("--json", "--limit", limit)) == every[: int(limit)]
    table = shown("--limit", "5")
    lines = [line.split("│")[1:4] for line in table.splitlines() if line.startswith("│")]
    cells = [[c.strip() for c in line] for line in lines]
    assert cells == [[str(r["rank"]), r["dataset"], r["model"]] for r in every[:5]]
    assert "(5 of 12 rows shown: --limit 0 for all" in table
    assert "rows shown" not in shown()
