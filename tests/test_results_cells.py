"""Every published cell read as written and kept apart (issue 23, items 1 and 2).

Hand-written leaderboards mark their cells up, and the sota-extractor format nests
sub-datasets under a dataset. The cells and structures below are taken from real files:
Papers with Code's NLP-progress export (sota-extractor's ``data/tasks/nlp-progress.json``:
the grammatical error correction boards with their ``Restricted`` / ``Unrestricted``
sub-datasets, ``70.14 (measured by Ge et al., 2018)``, SentEval's ``78.9/78.6``; the
hypernym discovery board, whose sub-datasets lost 82 values), and Papers with Code's
evaluation tables (``**55.6**``, ``41.0*``). The shared corpora's ``pwc`` files hold none
of that markup and no sub-dataset: the count over them checks that reading through markup
changed none of their values, and their rows fill a sub-dataset file of the same structure.

The accounting test counts cells by plain JSON walking and reads their numbers with its own
rules, not ckg's: every cell is a Result with its value, or a warning that names it.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ckg.core.values import parse_value, read_cell
from ckg.formats import pwc
from ckg.formats.published import Row, build
from ckg.graph import named as queries

CKG = str(Path(sys.executable).with_name("ckg"))
NO_VALUE = {"", "-", "–", "—"}


# --- the cell reader ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "column", "value", "stripped"),
    [
        ("**55.6**", "SemEval 2007", 55.6, ("emphasis '**'",)),
        ("**70.3**", "Accuracy", 70.3, ("emphasis '**'",)),
        ("41.0*", "BLEU score", 41.0, ("footnote mark '*'",)),
        ("64.8*", "F1", 64.8, ("footnote mark '*'",)),
        ("60.7+", "F1", 60.7, ("footnote mark '+'",)),
        ("\ufeff72.04", "F0.5", 72.04, ("byte-order mark",)),
        (
            "70.14 (measured by Ge et al., 2018)",
            "F0.5",
            70.14,
            ("note '(measured by Ge et al., 2018)'",),
        ),
        ("87.8\u2009%", "SICK-E", 87.8, ("thin space",)),
        ("1\u2009024", "Parameters", 1024.0, ("thin space",)),
        (
            "\ufeff**91.5**\u2020",
            "Accuracy",
            91.5,
            ("byte-order mark", "emphasis '**'", "footnote mark '†'"),
        ),
    ],
)
def test_cells_marked_up_by_hand_are_read_and_say_what_was_stripped(raw, column, value, stripped):
    read = parse_value(raw, column)
    assert read.ok and read.warning is None
    assert read.value == pytest.approx(value)
    assert read.raw == raw and read.stripped == stripped


@pytest.mark.parametrize(
    ("raw", "stderr", "warning"),
    [
        ("76.1 (±0.2)", 0.2, None),  # an error in brackets is no note
        ("0.25±0.005", 0.005, None),  # pwc/redditsota.json
        ("(32.76 32.07 26.26 22.74)", None, "cannot read a number"),  # pwc/redditsota.json
        ("12 furlongs", None, "unknown unit 'furlongs'"),
    ],
)
def test_what_is_not_markup_is_not_stripped(raw, stderr, warning):
    read = parse_value(raw)
    assert read.stripped == () and read.stderr == stderr
    assert (read.warning and warning in read.warning) if warning else read.ok


def test_a_pair_is_split_only_where_its_column_names_both_figures():
    # SentEval's STS column publishes Pearson/Spearman pairs without saying so.
    [(metric, unnamed)] = read_cell("78.9/78.6", "STS")
    assert metric is None and not unnamed.ok
    assert unnamed.warning == (
        "'78.9/78.6' is two figures, and column 'STS' does not say what each is"
    )
    named = read_cell("78.9/78.6", "Pearson/Spearman")
    assert [(m, v.value, v.raw) for m, v in named] == [
        ("Pearson", 78.9, "78.9/78.6"),
        ("Spearman", 78.6, "78.9/78.6"),
    ]
    assert named[0][1].stripped == ("'/78.6': the pair's other figure",)
    # A GLUE row marks its STS-B pair with a footnote.
    glue = read_cell("91.6/91.1*", "STS-B (Pearson/Spearman)")
    assert [(m, v.value) for m, v in glue] == [("STS-B Pearson", 91.6), ("STS-B Spearman", 91.1)]
    assert glue[1][1].stripped == ("footnote mark '*'", "'91.6/': the pair's other figure")
    # A rate is no pair of names.
    [(metric, rate)] = read_cell("78.9/78.6", "Samples/s")
    assert metric is None and "two figures" in rate.warning


def test_a_pair_becomes_two_results_and_an_unnamed_pair_one_warning():
    rows = [
        Row(
            "senteval.json",
            "Semantic Similarity/SentEval/row 0",
            column,
            raw,
            task="Semantic Similarity",
            dataset="SentEval",
            model="GenSen",
        )
        for column, raw in (
            ("Pearson/Spearman", "78.9/78.6"),
            ("STS", "78.9/78.6"),
            ("Pearson", "0.888"),
        )
    ]
    out = build(rows, "src")
    results = {
        (n.props["metric_label"], n.props.get("value")): n.props
        for n in out.nodes
        if n.label == "Result"
    }
    assert set(results) == {
        ("Pearson", 78.9),
        ("Spearman", 78.6),
        ("STS", None),
        ("Pearson", 0.888),
    }
    pearson = results[("Pearson", 78.9)]
    assert pearson["raw"] == "78.9/78.6" and pearson["column"] == "Pearson/Spearman"
    assert pearson["cell"] == "Semantic Similarity/SentEval/row 0: Pearson/Spearman"
    assert pearson["stripped"] == ["'/78.6': the pair's other figure"]
    assert [str(w) for w in out.warnings] == [
        "senteval.json: Semantic Similarity/SentEval/row 0: STS: '78.9/78.6' is two figures, "
        "and column 'STS' does not say what each is"
    ]


def test_two_cells_placed_at_one_spot_are_kept_apart_with_a_warning_naming_both():
    rows = [
        Row("f.json", "QA/SQuAD1.1/row 0", "F1", raw, task="QA", dataset="SQuAD1.1", model=model)
        for model, raw in (("BERT", "91.2"), ("XLNet", "90.1"))
    ]
    out = build(rows, "src")
    results = sorted((n.props["cell"], n.props["value"]) for n in out.nodes if n.label == "Result")
    assert results == [("QA/SQuAD1.1/row 0 (2): F1", 90.1), ("QA/SQuAD1.1/row 0: F1", 91.2)]
    assert [str(w) for w in out.warnings] == [
        "f.json: QA/SQuAD1.1/row 0: F1 (BERT: '91.2') and the cell after it at that place "
        "(XLNet: '90.1') would be one Result: kept apart, the second as "
        "QA/SQuAD1.1/row 0 (2): F1"
    ]


def test_a_board_listed_twice_in_a_file_keeps_both_boards(corpora, tmp_path):
    """Papers with Code dumps list some datasets twice under one task; each row of each
    listing is a cell of its own."""
    record = json.loads((corpora / "pwc" / "record.json").read_text())
    task = record[0]
    board = task["datasets"][0]
    twice = {**board, "sota": {**board["sota"], "rows": board["sota"]["rows"][::-1]}}
    task["datasets"] = [board, twice]
    (tmp_path / "record.json").write_text(json.dumps(record))
    out = pwc.read(tmp_path, "src")
    cells = 2 * 2 * len(board["sota"]["rows"])
    assert out.tally.results == len([n for n in out.nodes if n.label == "Result"]) == cells
    assert len(out.warnings) == cells // 2  # one per cell of the second listing
    assert out.warnings[0].message.endswith(
        "would be one Result: kept apart, the second as Common Sense Reasoning/ReCoRD/row 0 (2): EM"
    )


# --- sub-datasets ------------------------------------------------------------------------


def _row(model: str, paper: str = "", **metrics: str) -> dict:
    return {
        "code_links": [],
        "metrics": metrics,
        "model_links": [],
        "model_name": model,
        "paper_date": None,
        "paper_title": "",
        "paper_url": paper,
        "uses_additional_data": False,
    }


SMT = "http://aclweb.org/anthology/N18-2046"
CNN = "https://www.aaai.org/ocs/index.php/AAAI/AAAI18/paper/viewFile/17308/16137"
BOOST = "https://arxiv.org/pdf/1807.01270.pdf"


def _dataset(metrics: list, rows: list, parts: tuple = (), **name: str) -> dict:
    """A dataset (``dataset=``) or a sub-dataset (``subdataset=``), keys as sota-extractor
    writes them."""
    return {
        "dataset_citations": [],
        "dataset_links": [],
        "description": "",
        "sota": {"metrics": metrics, "rows": rows},
        "subdatasets": list(parts),
        **name,
    }


def _task(name: str, datasets: list) -> dict:
    return {
        "categories": [],
        "datasets": datasets,
        "description": "",
        "source_link": None,
        "subtasks": [],
        "synonyms": [],
        "task": name,
    }


def subdataset_file(corpora: Path) -> list:
    """A task list with sub-datasets, in the structure of nlp-progress.json.

    Its grammatical error correction boards are excerpts of that file: two datasets whose
    parts are both named ``Restricted`` and ``Unrestricted``, and a model (CNN Seq2Seq) in
    row 1 of both ``Restricted`` parts. Hypernym discovery is the board the issue names
    (CRIM's MAP: 19.78 on General, 40.97 on Music). ReCoRD's real rows (pwc/record.json)
    fill a dataset whose parts have parts. SentEval's row has pairs under columns that do not
    say what the figures are, beside a column that does.
    """
    f05 = "F0.5"
    gec = _task(
        "Grammatical Error Correction",
        [
            _dataset(
                [],
                [],
                dataset="CoNLL-2014 Shared Task",
                parts=(
                    _dataset(
                        [f05],
                        [
                            _row("Copy-Augmented Transformer + Pre-train (2019)", **{f05: "61.15"}),
                            _row("CNN Seq2Seq (2018)", CNN, **{f05: "54.79"}),
                        ],
                        subdataset="Restricted",
                    ),
                    _dataset(
                        [f05],
                        [_row("CNN Seq2Seq + Fluency Boost (2018)", **{f05: "61.34"})],
                        subdataset="Unrestricted",
                    ),
                ),
            ),
            _dataset(
                [],
                [],
                dataset="CoNLL-2014 10 Annotations",
                parts=(
                    _dataset(
                        [f05],
                        [
                            _row("SMT + BiGRU (2018)", SMT, **{f05: "72.04"}),
                            _row(
                                "CNN Seq2Seq (2018)",
                                CNN,
                                **{f05: "70.14 (measured by Ge et al., 2018)"},
                            ),
                        ],
                        subdataset="Restricted",
                    ),
                    _dataset(
                        [f05],
                        [_row("CNN Seq2Seq + Fluency Boost (2018)", BOOST, **{f05: "76.88"})],
                        subdataset="Unrestricted",
                    ),
                ),
            ),
        ],
    )
    columns = ["MAP", "MRR", "P@5"]
    hypernyms = _task(
        "Hypernym Discovery",
        [
            _dataset(
                [],
                [],
                dataset="SemEval 2018",
                parts=(
                    _dataset(
                        columns,
                        [
                            _row("CRIM", MAP="19.78", MRR="36.10", **{"P@5": "19.03"}),
                            _row("vTE", MAP="10.60", MRR="23.83", **{"P@5": "9.91"}),
                        ],
                        subdataset="General",
                    ),
                    _dataset(columns, [_row("CRIM", MAP="40.97")], subdataset="Music domain"),
                ),
            )
        ],
    )
    record = json.loads((corpora / "pwc" / "record.json").read_text())
    board = record[0]["datasets"][0]["sota"]
    rows, half = board["rows"], len(board["rows"]) // 2
    reading = _task(
        "Common Sense Reasoning",
        [
            _dataset(
                board["metrics"],
                rows[:2],
                dataset="ReCoRD",
                parts=(
                    _dataset(board["metrics"], rows[2:half], subdataset="dev"),
                    _dataset(
                        board["metrics"],
                        rows[half:-2],
                        subdataset="test",
                        parts=(_dataset(board["metrics"], rows[-2:], subdataset="hard"),),
                    ),
                ),
            )
        ],
    )
    senteval = _task(
        "Semantic Textual Similarity",
        [
            _dataset(
                ["MRPC", "SICK-R", "STS", "Pearson/Spearman"],
                [
                    _row(
                        "GenSen (2018)",
                        MRPC="78.6/84.4",
                        **{
                            "SICK-R": "0.888",
                            "STS": "78.9/78.6",
                            "Pearson/Spearman": "**78.9/78.6**",
                        },
                    ),
                    _row("TF-KLD (2013)", MRPC="80.4/85.9", **{"SICK-R": "-", "STS": "-"}),
                ],
                dataset="SentEval",
            )
        ],
    )
    return [gec, hypernyms, reading, senteval]


def test_every_subdataset_cell_is_under_its_own_dataset(corpora, tmp_path):
    (tmp_path / "nlp.json").write_text(json.dumps(subdataset_file(corpora)))
    out = pwc.read(tmp_path, "src")
    results = [n.props for n in out.nodes if n.label == "Result"]
    at = {(r["dataset"], r["model"], r["metric_label"]): r.get("value") for r in results}
    assert len(at) == len(results)  # no two Results for one cell, none lost
    assert at[("SemEval 2018 / General", "CRIM", "MAP")] == 19.78
    assert at[("SemEval 2018 / Music domain", "CRIM", "MAP")] == 40.97
    assert at[("CoNLL-2014 Shared Task / Restricted", "CNN Seq2Seq (2018)", "F0.5")] == 54.79
    assert at[("CoNLL-2014 10 Annotations / Restricted", "CNN Seq2Seq (2018)", "F0.5")] == 70.14
    assert {r["dataset"] for r in results} >= {
        "CoNLL-2014 Shared Task / Unrestricted",
        "ReCoRD",
        "ReCoRD / dev",
        "ReCoRD / test",
        "ReCoRD / test / hard",
        "SentEval",
    }
    assert all(
        r.get("parent_dataset") == r["dataset"].rpartition(" / ")[0]
        for r in results
        if " / " in r["dataset"]
    )
    parts = sorted((e.src_key, e.dst_key) for e in out.edges if e.type == "PART_OF")
    assert parts == [
        ("CoNLL-2014 10 Annotations / Restricted", "CoNLL-2014 10 Annotations"),
        ("CoNLL-2014 10 Annotations / Unrestricted", "CoNLL-2014 10 Annotations"),
        ("CoNLL-2014 Shared Task / Restricted", "CoNLL-2014 Shared Task"),
        ("CoNLL-2014 Shared Task / Unrestricted", "CoNLL-2014 Shared Task"),
        ("ReCoRD / dev", "ReCoRD"),
        ("ReCoRD / test", "ReCoRD"),
        ("ReCoRD / test / hard", "ReCoRD / test"),
        ("SemEval 2018 / General", "SemEval 2018"),
        ("SemEval 2018 / Music domain", "SemEval 2018"),
    ]
    datasets = {n.key for n in out.nodes if n.label == "Dataset"}
    assert {"CoNLL-2014 Shared Task", "SemEval 2018"} <= datasets  # parents with no row


# --- the accounting: every cell, counted by hand ----------------------------------------


def _boards(data):
    """(place, declared columns, rows) of every leaderboard, by plain JSON walking; a
    sub-dataset's place names it after its parent, ``<dataset> / <sub-dataset>``."""

    def datasets(items, task, parent):
        for item in items:
            name = item.get("dataset") or item.get("subdataset")
            full = f"{parent} / {name}" if parent else name
            sota = item.get("sota") or {}
            yield f"{task}/{full}", sota.get("metrics") or [], sota.get("rows") or []
            yield from datasets(item.get("subdatasets") or [], task, full)

    for task in data if isinstance(data, list) else [data]:
        yield from datasets(task.get("datasets") or [], task["task"], "")
        yield from _boards(task.get("subtasks") or [])


_NUMBER = r"\d+(?:\.\d+)?"
_SCALE = {"k": 1e3, "m": 1e6, "M": 1e6}


def _expected(raw, column):
    """What a cell must become, read by this test's own rules: None for no value, [] for a
    cell no number can be read from, else its value(s)."""
    if raw is None or raw.strip() in NO_VALUE:
        return None
    text = re.sub(r"\([^()]*[A-Za-z][^()]*\)", "", raw)  # a note in words
    text = re.sub(rf"±\s*{_NUMBER}", "", text)  # an error
    numbers = re.findall(rf"({_NUMBER})\s*([kmM]?)", text)
    if len(numbers) == 1:
        number, scale = numbers[0]
        return [float(number) * _SCALE.get(scale, 1)]
    if len(numbers) == 2 and "/" in text and "/" in column:
        return [float(number) for number, _ in numbers]
    return []


@pytest.mark.parametrize("files", ["corpora", "subdatasets"])
def test_every_cell_is_a_result_with_its_value_or_a_warning_naming_it(files, corpora, tmp_path):
    if files == "corpora":
        folder = corpora / "pwc"
    else:
        folder = tmp_path
        (folder / "nlp.json").write_text(json.dumps(subdataset_file(corpora)))
    out = pwc.read(folder, "src")
    by_cell: dict[str, list[dict]] = {}
    for node in out.nodes:
        if node.label == "Result":
            by_cell.setdefault(f"{node.props['path']}:{node.props['cell']}", []).append(node.props)
    warned = [str(w) for w in out.warnings]
    cells = results = warnings = 0
    for path in sorted(folder.glob("*.json")):
        for place, declared, rows in _boards(json.loads(path.read_text())):
            for index, row in enumerate(rows):
                for column in set(declared) | set(row["metrics"]):
                    cells += 1
                    raw = row["metrics"].get(column)
                    cell = f"{place}/row {index}: {column}"
                    expected = _expected(raw, column)
                    found = by_cell.get(f"{path.name}:{cell}", [])
                    if expected is None:
                        assert not found and any(
                            w.startswith(f"{path.name}: {cell}: no value") for w in warned
                        ), cell
                        warnings += 1
                    elif not expected:
                        [result] = found
                        assert "value" not in result and result["raw"] == raw, cell
                        assert any(w.startswith(f"{path.name}: {cell}: ") for w in warned), cell
                        results, warnings = results + 1, warnings + 1
                    else:
                        values = [r["value"] for r in found]
                        assert values == pytest.approx(expected), (cell, raw)
                        assert all(r["raw"] == raw for r in found), cell
                        results += len(found)
    assert results == len([n for n in out.nodes if n.label == "Result"])
    assert warnings == len(out.warnings)
    assert cells == (1910 if files == "corpora" else 47)


# --- in the graph, both engines ----------------------------------------------------------


def test_a_dataset_asked_for_brings_its_parts_each_ranked_on_its_own(kg, corpora, tmp_path):
    path = tmp_path / "nlp.json"
    path.write_text(json.dumps(subdataset_file(corpora)))
    kg.import_results([path])
    parts = kg.store.run(
        "MATCH (p:Dataset)-[:PART_OF]->(w:Dataset {name: 'SemEval 2018'}) "
        "RETURN p.name AS part ORDER BY part"
    )
    assert [r["part"] for r in parts] == ["SemEval 2018 / General", "SemEval 2018 / Music domain"]

    task = "Grammatical Error Correction"
    whole = kg.compare(task, "CoNLL-2014 10 Annotations", "F0.5", direction="max")
    assert list(
        zip(whole["dataset"], whole["rank"], whole["model"], whole["value"], strict=True)
    ) == [
        ("CoNLL-2014 10 Annotations / Restricted", 1, "SMT + BiGRU (2018)", 72.04),
        ("CoNLL-2014 10 Annotations / Restricted", 2, "CNN Seq2Seq (2018)", 70.14),
        (
            "CoNLL-2014 10 Annotations / Unrestricted",
            1,
            "CNN Seq2Seq + Fluency Boost (2018)",
            76.88,
        ),
    ]
    assert whole.attrs["datasets"] == [
        "CoNLL-2014 10 Annotations / Restricted",
        "CoNLL-2014 10 Annotations / Unrestricted",
    ]
    part = kg.compare(task, "CoNLL-2014 Shared Task / Restricted", "F0.5", direction="max")
    assert list(part["value"]) == [61.15, 54.79] and list(part["rank"]) == [1, 2]

    listed = kg.results(dataset="ReCoRD")
    assert set(listed["dataset"]) == {
        "ReCoRD",
        "ReCoRD / dev",
        "ReCoRD / test",
        "ReCoRD / test / hard",
    }
    assert set(kg.results(dataset="ReCoRD / test")["dataset"]) == {
        "ReCoRD / test",
        "ReCoRD / test / hard",
    }
    crim = queries.run(kg.store, "compare-papers", {"dataset": "SemEval 2018", "metric": "MAP"})
    assert [(r["dataset"], r["model"], r["value"]) for r in crim] == [
        ("SemEval 2018 / General", "CRIM", 19.78),
        ("SemEval 2018 / General", "vTE", 10.6),
        ("SemEval 2018 / Music domain", "CRIM", 40.97),
    ]
    todo = queries.run(kg.store, "unreproduced-results", {"dataset": "CoNLL-2014 10 Annotations"})
    assert sorted((r["dataset"], r["value"]) for r in todo) == [
        ("CoNLL-2014 10 Annotations / Restricted", 70.14),
        ("CoNLL-2014 10 Annotations / Restricted", 72.04),
        ("CoNLL-2014 10 Annotations / Unrestricted", 76.88),
    ]

    shown = subprocess.run(
        [
            CKG,
            "compare",
            "--task",
            "Hypernym Discovery",
            "--dataset",
            "SemEval 2018",
            "--metric",
            "MAP",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "160"},
    )
    assert shown.returncode == 0, shown.stderr
    assert "2 datasets, each ranked on its own" in shown.stdout
    assert "SemEval 2018 / Music domain" in shown.stdout and "40.97" in shown.stdout
