"""Result importers: Papers with Code, MLPerf (CM records and submission layout), tables.

Corpus tests count every published cell independently of the importers and check that each
one is a Result or a warning, then compare values read by hand from the files.
"""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ckg.core.errors import InvalidInput, UsageError
from ckg.formats import mlperf, pwc, results, tables
from ckg.formats.papers import paper_uid, repo_url

NO_VALUE = {"", "-", "–", "—"}


def _results(out):
    return [n for n in out.nodes if n.label == "Result"]


def _one(out, **props):
    found = [n.props for n in _results(out) if all(n.props.get(k) == v for k, v in props.items())]
    assert len(found) == 1, (props, len(found))
    return found[0]


def _pwc_cells(node):
    """(cells, empty cells, multi-number cells) of a sota-extractor tree, counted by hand."""
    cells = empty = multi = 0
    if isinstance(node, list):
        for item in node:
            c, e, m = _pwc_cells(item)
            cells, empty, multi = cells + c, empty + e, multi + m
        return cells, empty, multi
    for key in ("datasets", "subtasks", "subdatasets"):
        c, e, m = _pwc_cells(node.get(key) or [])
        cells, empty, multi = cells + c, empty + e, multi + m
    sota = node.get("sota") or {}
    for row in sota.get("rows") or []:
        columns = set(sota.get("metrics") or []) | set(row["metrics"])
        for column in columns:
            raw = row["metrics"].get(column)
            cells += 1
            if raw is None or raw.strip() in NO_VALUE:
                empty += 1
            elif re.fullmatch(r"\(.*\d\s+\d.*\)", raw.strip()):
                multi += 1
    return cells, empty, multi


def test_every_pwc_cell_is_a_result_or_a_warning(corpora):
    folder = corpora / "pwc"
    files = sorted(folder.glob("*.json"))
    assert len(files) == 7
    cells = empty = multi = 0
    for file in files:
        c, e, m = _pwc_cells(json.loads(file.read_text()))
        cells, empty, multi = cells + c, empty + e, multi + m
    out = pwc.read(folder, "src:pwc")
    assert out.tally.rows == cells == 1910
    assert out.tally.missing == empty == 7
    assert out.tally.unreadable == multi == 4
    assert len(_results(out)) == out.tally.results == cells - empty
    assert len(out.warnings) == empty + multi
    assert sum(1 for n in _results(out) if "value" not in n.props) == multi


def test_pwc_values_match_the_files(corpora):
    out = pwc.read(corpora / "pwc", "src:pwc")
    fpnet = _one(
        out, model="FPNet (ensemble)", dataset="SQuAD2.0", metric="exact_match", raw="90.871"
    )
    assert fpnet["value"] == 90.871 and fpnet["task"] == "Question Answering"
    lstm = _one(out, model="100D LSTM encoders", metric="params")
    assert (lstm["value"], lstm["unit"], lstm["raw"]) == (220_000.0, "count", "220k")
    assert lstm["paper_uid"] == "https://nlp.stanford.edu/pubs/snli_paper.pdf"
    acc = _one(out, model="100D LSTM encoders", metric="accuracy")
    assert (acc["value"], acc["unit"], acc["metric_label"]) == (77.6, "%", "% Test Accuracy")
    caps = _one(out, raw="0.25±0.005")
    assert (caps["value"], caps["stderr"], caps["metric"]) == (0.25, 0.005, "error_rate")
    assert caps["paper_uid"] == "arxiv:1710.09829"
    assert _one(out, raw="2.31%")["unit"] == "%"
    bleu = _one(out, dataset="WMT14(en-fr fr-en)", metric="bleu")
    assert "value" not in bleu and bleu["raw"] == "(16.97 15.58)"


def test_pwc_papers_are_one_node_per_identity_with_code_links(corpora):
    out = pwc.read(corpora / "pwc", "src:pwc")
    papers = {n.key: n.props for n in out.nodes if n.label == "Paper"}
    capsules = papers["arxiv:1710.09829"]
    assert capsules["title"] == "Dynamic Routing Between Capsules"
    assert capsules["url"] == "https://arxiv.org/abs/1710.09829"
    assert "https://github.com/gram-ai/capsule-networks" in capsules["code_urls"]
    # "http://arxiv.org/pdf/1606.01933v1.pdf" and the abs link are one paper.
    assert "arxiv:1606.01933" in papers
    assert not [k for k in papers if "arxiv.org" in k]
    reports = {e.dst_key for e in out.edges if e.type == "REPORTS"}
    assert reports <= {n.key for n in _results(out)}


def _mlperf_cells(records):
    fields = ("Result", "Accuracy", "Result_Power", "Inference_per_Joule")
    cells = sum(1 for r in records for f in fields if f in r)
    empty = sum(1 for r in records for f in fields if f in r and r[f] in (None, ""))
    return cells, empty


def test_every_mlperf_record_metric_is_a_result_or_a_warning(corpora):
    folder = corpora / "mlperf"
    records = json.loads(next(folder.glob("*.json")).read_text())
    cells, empty = _mlperf_cells(records)
    out = mlperf.read(folder, "src:mlperf")
    assert out.tally.rows == cells == 291
    assert out.tally.missing == len(out.warnings) == empty == 7
    assert len(_results(out)) == cells - empty
    platforms = [n for n in out.nodes if n.label == "Platform"]
    assert len(platforms) == len({n.key for n in platforms})
    on = {e.src_key for e in out.edges if e.type == "ON"}
    assert on == {n.key for n in _results(out)}


def test_mlperf_values_match_the_file(corpora):
    out = mlperf.read(corpora / "mlperf", "src:mlperf")
    untether = _one(out, record_uid="e8cfc0254394479c", metric="throughput")
    assert (untether["value"], untether["unit"], untether["scenario"]) == (
        168720.0,
        "1/s",
        "Offline",
    )
    hpe = {"record_uid": "fc10918c3d974c42"}
    assert _one(out, **hpe, metric="power")["value"] == pytest.approx(426.60129129129126)
    assert _one(out, **hpe, metric="inferences_per_joule")["unit"] == "1/J"
    assert _one(out, **hpe, metric="accuracy")["value"] == 75.94
    assert _one(out, **hpe, metric="throughput")["value"] == 79213.4
    assert _one(out, **hpe, metric="accuracy")["dataset"] == "ImageNet"
    hpe_platform = next(
        n.props for n in out.nodes if n.label == "Platform" and n.props.get("submitter") == "HPE"
    )
    assert hpe_platform["cores"] == 36
    assert hpe_platform["accelerators"] == ["QUALCOMM Cloud AI 100 PCIe/HHHL Standard"] * 4


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.fixture
def submission(tmp_path):
    """A small MLPerf submission tree in the official layout."""
    base = tmp_path / "closed" / "Acme"
    system = {
        "submitter": "Acme",
        "system_name": "Acme Box (2x Widget)",
        "host_processor_model_name": "Some CPU",
        "host_processor_core_count": 8,
        "host_processors_per_node": 2,
        "accelerator_model_name": "Widget",
        "accelerators_per_node": 2,
        "operating_system": "Linux",
        "framework": "WidgetRT 1.0",
        "system_type": "edge",
    }
    _write(base / "systems" / "box1.json", json.dumps(system))
    res = base / "results" / "box1"
    _write(
        res / "resnet50/Offline/performance/run_1/mlperf_log_summary.txt",
        "MLPerf Results Summary\nScenario : Offline\n"
        "Samples per second: 1234.5\nResult is : VALID\n",
    )
    _write(
        res / "resnet50/Offline/accuracy/accuracy.txt",
        "accuracy=76.078%, good=38039, total=50000\n",
    )
    _write(
        res / "resnet50/Offline/power/spl.txt",
        "Time,01-02-2024 10:00:00.000,Watts,300.0,Volts,230.1\n"
        "Time,01-02-2024 10:00:01.000,Watts,310.0,Volts,230.0\n",
    )
    _write(
        res / "resnet50/SingleStream/performance/run_1/mlperf_log_summary.txt",
        "Scenario : SingleStream\n90th percentile latency (ns) : 512345\n",
    )
    _write(
        res / "bert-99/Server/performance/run_1/mlperf_log_summary.txt",
        "Scenario : Server\nScheduled samples per second : 99.5\n",
    )
    _write(res / "bert-99/Server/accuracy/accuracy.txt", '{"exact_match": 83.6, "f1": 90.87}\n')
    _write(res / "bert-99/Offline/performance/run_1/mlperf_log_summary.txt", "Scenario : Offline\n")
    return tmp_path


def test_mlperf_submission_layout(submission):
    found = results.detect(submission)
    assert [p.relative_to(submission).as_posix() for p in found["mlperf"]] == [
        "closed/Acme/systems/box1.json"
    ]
    out = results.read(submission, "src:sub", found)
    assert out.tally.results == 7
    assert [str(w) for w in out.warnings] == [
        "closed/Acme/results/box1/bert-99/Offline/performance/run_1/mlperf_log_summary.txt: "
        "no throughput or latency line found"
    ]
    platform = next(n for n in out.nodes if n.label == "Platform")
    assert platform.props["cores"] == 16 and platform.props["system_id"] == "box1"
    offline = {"scenario": "Offline", "model": "resnet50"}
    assert _one(out, **offline, metric="throughput")["value"] == 1234.5
    assert _one(out, **offline, metric="accuracy")["value"] == 76.078
    assert _one(out, **offline, metric="power")["value"] == 305.0
    assert _one(out, scenario="SingleStream", metric="latency")["value"] == pytest.approx(512345e-9)
    server = {"scenario": "Server", "model": "bert-99"}
    assert _one(out, **server, metric="throughput")["unit"] == "1/s"
    assert _one(out, **server, metric="f1")["value"] == 90.87
    assert _one(out, **server, metric="exact_match")["task"] == "Question Answering"
    assert all(n.props["division"] == "closed" for n in _results(out))


LONG_CSV = """paper,task,dataset,model,metric,value,unit,platform
arXiv:1512.03385,Image Classification,ImageNet,ResNet-50,Top 1 Accuracy,76.1 (±0.2),,
,Image Classification,ImageNet,ResNet-50,Latency,12,ms,my-laptop
,Image Classification,ImageNet,ResNet-50,,12,ms,my-laptop
,Image Classification,ImageNet,ResNet-50,Latency,N/A,ms,my-laptop
"""


def test_long_csv_counts_rows_missing_metric_or_value(tmp_path):
    _write(tmp_path / "res.csv", LONG_CSV)
    out = tables.read(tmp_path, "src:t")
    assert (out.tally.results, out.tally.no_metric, out.tally.missing) == (2, 1, 1)
    assert [w.line for w in out.warnings] == [4, 5]
    assert "no metric named" in out.warnings[0].message
    top1 = _one(out, metric="top1_accuracy")
    assert (top1["value"], top1["stderr"], top1["paper_uid"]) == (76.1, 0.2, "arxiv:1512.03385")
    latency = _one(out, metric="latency")
    assert (latency["value"], latency["unit"]) == (0.012, "s")
    on = [e for e in out.edges if e.type == "ON"]
    assert [e.dst_key for e in on] == ["platform:named:my-laptop"]


def test_wide_tsv_reads_units_from_column_names(tmp_path):
    _write(
        tmp_path / "wide.tsv",
        "model\tdataset\tTop-1 Accuracy\tLatency (ms)\tSamples/s\tParams\n"
        "ResNet-50\tImageNet\t76.1%\t12\t950\t25.6M\n",
    )
    out = tables.read(tmp_path, "src:t")
    assert out.tally.results == 4
    assert _one(out, metric="latency")["value"] == 0.012
    assert _one(out, metric="throughput")["unit"] == "1/s"
    assert _one(out, metric="params")["value"] == 25_600_000.0


def test_yaml_and_json_tables_apply_top_level_defaults(tmp_path):
    _write(
        tmp_path / "my-results.yaml",
        "paper: https://arxiv.org/abs/1810.04805\ntask: Question Answering\ndataset: SQuAD1.1\n"
        "results:\n  - {model: BERT-large, metric: EM, value: 84.1}\n"
        "  - {model: BERT-large, metrics: {F1: 90.9, 'Energy (kJ)': 2}}\n",
    )
    _write(
        tmp_path / "results.json", json.dumps([{"model": "m", "metric": "WER", "value": "5.1%"}])
    )
    out = tables.read(tmp_path, "src:t")
    assert out.tally.results == 4
    assert _one(out, metric="exact_match")["paper_uid"] == "arxiv:1810.04805"
    assert _one(out, metric="energy")["value"] == 2000.0
    assert _one(out, metric="wer")["unit"] == "%"


def test_file_in_no_known_format_is_named(tmp_path):
    _write(tmp_path / "notes.csv", "a,b\n1,2\n")
    _write(tmp_path / "other.json", '{"hello": 1}')
    for name in ("notes.csv", "other.json"):
        with pytest.raises(InvalidInput, match=rf"{name}: not in a known results format"):
            results.read_file(tmp_path / name, "src")
    assert results.detect(tmp_path) == {}
    out = tables.read(tmp_path, "src", ["notes.csv"])
    assert "notes.csv: not a results table" in str(out.warnings[0])


def test_pwc_read_names_broken_and_foreign_json(tmp_path):
    _write(tmp_path / "broken.json", "[{")
    _write(tmp_path / "foreign.json", "[1, 2]")
    out = pwc.read(tmp_path, "src")
    messages = sorted(str(w) for w in out.warnings)
    assert messages[0].startswith("broken.json:1: not readable as JSON")
    assert messages[1] == (
        'foreign.json: not a Papers with Code (sota-extractor) task list: item 0 has no "task" key'
    )


def test_detect_finds_each_format_in_a_mixed_tree(corpora, tmp_path):
    found = results.detect(corpora)
    assert len(found["pwc"]) == 7 and len(found["mlperf"]) == 1
    assert "tables" not in found  # no CM or CK meta file is mistaken for a results table


@pytest.mark.parametrize(
    ("link", "uid"),
    [
        ("https://arxiv.org/pdf/1810.04805v2.pdf", "arxiv:1810.04805"),
        ("arxiv.org/abs/1810.04805", "arxiv:1810.04805"),
        ("10.48550/arXiv.1810.04805", "arxiv:1810.04805"),
        ("https://doi.org/10.18653/V1/P18-1157", "doi:10.18653/v1/p18-1157"),
        ("doi:10.1145/3352460.3358265", "doi:10.1145/3352460.3358265"),
        ("http://aclweb.org/anthology/P18-1157", "https://aclanthology.org/P18-1157"),
        ("https://openreview.net/pdf?id=S1NHaMW0b", "https://openreview.net/forum?id=S1NHaMW0b"),
        ("https://github.com/ymcui/MacBERT", "https://github.com/ymcui/macbert"),
        ("HTTP://WWW.Example.org/paper/?utm_source=x#a", "https://example.org/paper"),
        ("", None),
        ("not a link", None),
    ],
)
def test_paper_uid_normalises_identities(link, uid):
    assert paper_uid(link) == uid


def test_repo_url_agrees_for_clone_tree_and_ssh_links():
    links = [
        "https://github.com/Salesforce/awd-lstm-lm.git",
        "git@github.com:salesforce/awd-lstm-lm.git",
        "https://github.com/salesforce/awd-lstm-lm/tree/master/data",
    ]
    assert {repo_url(u) for u in links} == {"https://github.com/salesforce/awd-lstm-lm"}


def test_a_pwc_task_list_with_boardless_tasks_is_still_pwc(corpora, tmp_path):
    """Full sota-extractor dumps hold tasks with neither datasets nor subtasks; such a file
    lost 789 of its 826 values to the table reader, silently."""
    tasks = []
    for file in sorted((corpora / "pwc").glob("*.json")):
        data = json.loads(file.read_text())
        tasks += data if isinstance(data, list) else [data]
    boardless = {
        "task": "Program Repair",
        "description": "",
        "categories": [],
        "synonyms": [],
        "source_link": None,
    }
    tasks.insert(1, boardless)
    _write(tmp_path / "evaluation-tables-results.json", json.dumps(tasks))
    expected = pwc.read(corpora / "pwc", "src")
    out = results.read_file(tmp_path / "evaluation-tables-results.json", "src")
    assert out.tally.results == expected.tally.results == 1903
    assert not [
        n
        for n in out.nodes
        if n.label == "Metric" and n.key in ("description", "subtasks", "source_link", "datasets")
    ]
    assert results.detect(tmp_path) == {"pwc": [tmp_path / "evaluation-tables-results.json"]}


def test_a_table_in_which_no_cell_holds_a_number_is_refused_loudly(tmp_path):
    rows = [{"task": "Program Repair", "description": "", "categories": [], "source_link": ""}]
    _write(tmp_path / "results.json", json.dumps(rows * 3))
    out = tables.read(tmp_path, "src", ["results.json"])
    assert out.nodes == [] and out.tally.results == 0
    [warning] = out.warnings
    assert "none of its" in str(warning) and "is it in another format?" in str(warning)


# --- ckg ingest of one results file ------------------------------------------------------

CKG = str(Path(sys.executable).with_name("ckg"))


def _ckg(*args: str) -> str:
    done = subprocess.run([CKG, *args], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"ckg {' '.join(args)}: {done.stderr}"
    return done.stdout


def _graph(store) -> tuple[list[str], list[str]]:
    """Every node (labels, properties) and relationship of the graph, ingest times aside."""
    nodes = store.run("MATCH (n) RETURN labels(n) AS labels, properties(n) AS props")
    edges = store.run(
        "MATCH (a)-[r]->(b) RETURN type(r) AS type, coalesce(a.uid, a.name) AS src, "
        "coalesce(b.uid, b.name) AS dst, properties(r) AS props"
    )
    return (
        sorted(
            json.dumps(
                [sorted(r["labels"]), {k: v for k, v in r["props"].items() if k != "ingested_at"}],
                sort_keys=True,
            )
            for r in nodes
        ),
        sorted(
            json.dumps([r["type"], r["src"], r["dst"], r["props"]], sort_keys=True) for r in edges
        ),
    )


def test_ckg_ingest_of_a_results_file_gives_the_graph_of_results_import(store, corpora, tmp_path):
    """A Papers with Code task list, an MLPerf cm-result.json, a task list with sub-datasets
    and a results table: ``ckg ingest FILE`` refused each ("neither a folder, a Git
    repository nor an archive"); it now writes the graph ``ckg results import FILE`` does."""
    from tests.test_results_cells import subdataset_file

    nlp = tmp_path / "nlp-progress.json"
    nlp.write_text(json.dumps(subdataset_file(corpora)))
    _write(tmp_path / "results.csv", LONG_CSV)
    files = [
        corpora / "pwc" / "squad.json",
        next((corpora / "mlperf").glob("cm-result*.json")),
        nlp,
        tmp_path / "results.csv",
    ]
    for file in files:
        store.reset()
        imported = json.loads(_ckg("results", "import", str(file), "--json"))
        expected = _graph(store)
        store.reset()
        [summary] = json.loads(_ckg("ingest", str(file), "--json"))
        assert _graph(store) == expected, file.name
        assert (summary["kind"], summary["location"]) == ("file", str(file.resolve()))
        assert summary["results"] == imported["results"] > 0
        assert [w["message"] for w in summary["warnings"]] == [
            w.split(": ", 1)[1] for w in imported["warnings"]
        ]


def test_ingest_of_a_results_file_keeps_only_what_it_holds_and_names_other_files(kg, tmp_path):
    table = tmp_path / "results.csv"
    _write(table, LONG_CSV)
    first = kg.ingest(table, name="mine")
    assert (first.kind, first.results, first.name) == ("file", 2, "mine")
    _write(
        table,
        LONG_CSV.replace("Latency,12,ms", "Latency,14,ms").replace(
            "arXiv:1512.03385,Image Classification,ImageNet,ResNet-50,"
            "Top 1 Accuracy,76.1 (±0.2),,\n",
            "",
        ),
    )
    kg.ingest(table)
    rows = kg.query("MATCH (r:Result) RETURN r.metric AS metric, r.value AS value")
    assert rows == [{"metric": "latency", "value": 0.014}]  # the removed row is gone
    [source] = kg.query("MATCH (s:Source) RETURN s.name AS name, s.kind AS kind")
    assert source == {"name": "mine", "kind": "file"}
    _write(tmp_path / "notes.txt", "hello\n")
    with pytest.raises(
        InvalidInput,
        match=r"notes.txt is neither a folder, a Git repository, "
        r"an archive nor a results file \(Papers with Code JSON",
    ):
        kg.ingest(tmp_path / "notes.txt")
    with pytest.raises(UsageError, match="results file: --format cm applies to artifacts"):
        kg.ingest(table, fmt="cm")
