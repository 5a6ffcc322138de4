"""Reported against reproduced, on both engines: runs that declare what they reproduce
(``ckg run --reproduces``, a ``reproduces:`` block), ``ckg link``, ``ckg reproduce`` and the
named queries ``paper-vs-reproduced`` and ``unreproduced-results``.

The scikit-learn example runs for real on a grid of two points; the other tests use a
workflow that prints the accuracy it is given, so that each value is known in advance.
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ckg.core.errors import NotFound, UsageError
from ckg.formats.reproduces import parse_declaration
from ckg.graph import named
from ckg.run.demo import EXAMPLE, run_demo

CKG = str(Path(sys.executable).with_name("ckg"))
EXAMPLE_PAPER = "https://example.org/sklearn-digits"
PAPER = "arxiv:2401.00001"
OTHER = "arxiv:2401.00002"
TABLE = """paper,task,dataset,model,metric,value
arXiv:2401.00001,Image Classification,digits,knn,accuracy,90%
arXiv:2401.00001,Image Classification,digits,svm,accuracy,95%
arXiv:2401.00001,Image Classification,mnist,svm,accuracy,97%
arXiv:2401.00002,Image Classification,digits,forest,accuracy,93%
"""
SCORE = """import json, sys
print(json.dumps({"accuracy": {"value": float(sys.argv[1]), "unit": "%"}}))
"""


def _ckg(*args, code=0):
    done = subprocess.run([CKG, *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == code, done.stdout + done.stderr
    return done


def _rows(kg, name, **params):
    return named.run(kg.store, name, params)


def _cols(rows, *names):
    return [tuple(row[n] for n in names) for row in rows]


@pytest.fixture
def results(kg, tmp_path):
    """Two papers' results: PAPER reports knn on digits and svm on digits and on mnist."""
    table = tmp_path / "results.csv"
    table.write_text(TABLE)
    kg.import_results([table])
    return table


def scorer(kg, folder: Path, block: list | None = None) -> str:
    """Ingest a workflow that reports the accuracy ``acc`` it is given; its uid."""
    folder.mkdir()
    (folder / "score.py").write_text(SCORE)
    meta = {
        "alias": "scorer",
        "uid": "wf-scorer",
        "params": {"model": "knn", "dataset": "digits", "acc": 50},
        "run": "{python} {artifact_dir}/score.py {acc}",
    }
    if block is not None:
        meta["reproduces"] = block
    (folder / "ckg.yaml").write_text(yaml.safe_dump(meta))
    summary = kg.ingest(str(folder))
    assert summary.warnings == []
    return meta["uid"]


def test_example_compares_each_reported_result_with_its_own_run_only(kg, tmp_path):
    """The example's reference table and reproduces: block, through ckg demo's own steps."""
    folder = tmp_path / "digits"
    shutil.copytree(EXAMPLE, folder)
    meta = yaml.safe_load((folder / "ckg.yaml").read_text())
    meta["grid"] = [{"model": "knn", "k": 1}, {"model": "logreg", "C": 1.0}]  # the demo's
    (folder / "ckg.yaml").write_text(yaml.safe_dump(meta))
    kg.ingest(str(folder))  # one door: the folder's reference table comes in with it
    todo = _rows(kg, "unreproduced-results", dataset="digits")
    assert _cols(todo, "paper", "model", "value") == [
        (EXAMPLE_PAPER, "knn", 98.3),
        (EXAMPLE_PAPER, "logreg", 97.2),
    ]
    assert _cols(_rows(kg, "paper-vs-reproduced", paper=EXAMPLE_PAPER), "model", "run") == [
        ("knn", None),
        ("logreg", None),
    ]

    # ingests the folder again: nothing changes
    knn, logreg = run_demo(kg.store, kg.home, folder).runs
    assert _rows(kg, "unreproduced-results", dataset="digits") == []
    kg.link("sklearn-digits", EXAMPLE_PAPER)  # implementing it adds no match by model name
    rows = _rows(kg, "paper-vs-reproduced", paper="example.org/sklearn-digits", metric="Accuracy")
    assert _cols(rows, "model", "reported", "run", "how") == [
        ("knn", 98.3, knn.uid, "declared"),
        ("logreg", 97.2, logreg.uid, "declared"),
    ]
    for row, run in zip(rows, (knn, logreg), strict=True):
        assert row["reproduced"] == pytest.approx(run.metrics["accuracy"])
        assert row["ratio"] == pytest.approx(run.metrics["accuracy"] / row["reported"])
        assert (row["stdev"], row["n"], row["unit"]) == (0.0, 1, "%")
        assert row["platform"].startswith("platform")


def test_runs_of_an_implementing_artifact_match_the_model_and_dataset_they_name(
    kg, tmp_path, results
):
    uid = scorer(kg, tmp_path / "wf")  # no reproduces: block
    linked = json.loads(_ckg("link", "scorer", "arXiv:2401.00001v2", "--json").stdout)
    assert linked == {
        "artifact": uid,
        "alias": "scorer",
        "paper": PAPER,
        "title": "",
        "added": True,
    }
    assert "(already linked)" in _ckg("link", uid, PAPER).stdout
    edges = kg.query("MATCH (a:Artifact)-[:IMPLEMENTS]->(p:Paper) RETURN a.uid AS a, p.uid AS p")
    assert edges == [{"a": uid, "p": PAPER}]

    report = kg.run(
        uid,
        grid=[
            {"model": "knn", "acc": 91},
            {"model": "svm", "acc": 94},  # svm is reported on two datasets: it names neither
            {"model": "svm", "dataset": "mnist", "acc": 96},
            {"model": "forest", "acc": 92},  # another paper's model
        ],
    )
    knn, _, svm_mnist, _ = report.runs
    rows = _rows(kg, "paper-vs-reproduced", paper=PAPER)
    assert _cols(rows, "dataset", "model", "reported", "reproduced", "run", "how") == [
        ("digits", "knn", 90.0, 91.0, knn.uid, "implements"),
        ("digits", "svm", 95.0, None, None, None),
        ("mnist", "svm", 97.0, 96.0, svm_mnist.uid, "implements"),
    ]
    assert rows[0]["ratio"] == pytest.approx(91 / 90)
    todo = _rows(kg, "unreproduced-results", task="Image Classification")
    assert _cols(todo, "paper", "dataset", "model", "artifacts") == [
        (PAPER, "digits", "svm", [uid]),
        (OTHER, "digits", "forest", []),
    ]


def test_run_reproduces_records_the_edge_and_a_bad_declaration_is_one_line_exit_2(
    kg, tmp_path, results
):
    uid = scorer(kg, tmp_path / "wf")
    spec = "paper=arXiv:2401.00001,task=Image Classification,dataset=digits,metric=Accuracy"
    spec += ",model=SVM"  # names ignore case, metric aliases are the registry's
    done = _ckg(
        "run", "scorer", "--grid", "model=svm", "--grid", "acc=96", "--reproduces", spec, "--json"
    )
    run = json.loads(done.stdout)["runs"][0]["uid"]
    svm = kg.query("MATCH (r:Result {model: 'svm', dataset: 'digits'}) RETURN r.uid AS uid")
    edges = "MATCH (r:Run)-[:REPRODUCES]->(x:Result) RETURN r.uid AS run, x.uid AS result"
    assert kg.query(edges) == [{"run": run, "result": svm[0]["uid"]}]
    rows = _rows(kg, "paper-vs-reproduced", paper=PAPER, metric="accuracy")
    assert _cols(rows, "model", "dataset", "reproduced", "run") == [
        ("knn", "digits", None, None),
        ("svm", "digits", 96.0, run),
        ("svm", "mnist", None, None),
    ]
    assert rows[1]["ratio"] == pytest.approx(96 / 95)

    runs = kg.query("MATCH (r:Run) RETURN count(r) AS n")
    for bad, message in [
        ("result:nope", "--reproduces: no result 'result:nope' in the graph"),
        (f"paper={PAPER},model=nothing", "matches no result in the graph"),
    ]:
        done = _ckg("run", uid, "--reproduces", bad, code=2)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], (bad, done.stderr)
    with pytest.raises(UsageError, match=r"names 2 different accuracy results \(svm on digits"):
        kg.run(uid, reproduces=("model=svm,metric=accuracy",))
    assert kg.query("MATCH (r:Run) RETURN count(r) AS n") == runs  # nothing ran

    [by_uid] = kg.run(uid, grid={"model": "knn"}, reproduces=(svm[0]["uid"],)).runs
    assert {"run": by_uid.uid, "result": svm[0]["uid"]} in kg.query(edges)


def test_a_cm_script_block_maps_its_env_to_results(kg, tmp_path, results):
    """A script's grid point is env over its default_env: a run with no grid is the default."""
    root = tmp_path / "repo"
    folder = root / "script" / "score"
    folder.mkdir(parents=True)
    (root / "cmr.yaml").write_text("alias: score-repo\nuid: 0000000000000009\n")
    (folder / "_cm.yaml").write_text(
        yaml.safe_dump(
            {
                "alias": "score",
                "uid": "9000000000000001",
                "automation_alias": "script",
                "tags": ["score"],
                "default_env": {"CM_MODEL": "knn", "CM_ACC": "88"},
                "reproduces": [
                    {
                        "paper": PAPER,
                        "dataset": "digits",
                        "model": "knn",
                        "params": {"CM_MODEL": "knn"},
                    },
                    {
                        "paper": PAPER,
                        "dataset": "mnist",
                        "model": "svm",
                        "params": {"CM_MODEL": "svm", "CM_ACC": 96},
                    },
                ],
            }
        )
    )
    (folder / "run.sh").write_text(
        '#!/bin/bash\nprintf \'{"Accuracy": %s}\' "$CM_ACC" > cm-result.json\n'
    )
    kg.ingest(str(root))
    [default] = kg.run("score").runs
    [svm, other] = kg.run(
        "score", grid=[{"CM_MODEL": "svm", "CM_ACC": 96}, {"CM_MODEL": "svm", "CM_ACC": 90}]
    ).runs
    rows = _rows(kg, "paper-vs-reproduced", paper=PAPER)
    assert _cols(rows, "dataset", "model", "reproduced", "run", "how") == [
        ("digits", "knn", 88.0, default.uid, "declared"),
        ("digits", "svm", None, None, None),
        ("mnist", "svm", 96.0, svm.uid, "declared"),
    ]
    assert other.status == "ok" and other.uid not in {r["run"] for r in rows}


@pytest.mark.parametrize(
    "text, message",
    [
        ("knn", r"--reproduces 'knn': give a Result uid \(result:...\) or paper=...,...$"),
        ("model=knn,colour=red", r"give a Result uid \(result:...\) or paper=...,task="),
        ("model=knn,model=svm", "a field is named twice"),
        ("model=", "give a Result uid"),
    ],
)
def test_a_malformed_declaration_is_refused(text, message):
    with pytest.raises(UsageError, match=message):
        parse_declaration(text)


def test_a_spec_value_may_hold_commas():
    entry = parse_declaration("model=XLNet (single model, large), metric=F1")
    assert entry.spec == (("model", "XLNet (single model, large)"), ("metric", "F1"))


def test_reproduce_runs_what_is_configured_and_lists_the_rest(kg, tmp_path, results):
    block = [
        {
            "paper": "arXiv:2401.00001",
            "dataset": "digits",
            "metric": "accuracy",
            "model": "knn",
            "params": {"model": "knn", "acc": 89},
        }
    ]
    uid = scorer(kg, tmp_path / "wf", block)
    _ckg("link", "scorer", PAPER)
    other = kg.run(uid, grid={"model": "knn", "acc": 70}).runs[0]  # not the block's point
    assert _cols(_rows(kg, "paper-vs-reproduced", paper=PAPER), "model", "run") == [
        ("knn", None),  # nor does implementing the paper make it a match: the block decides
        ("svm", None),
        ("svm", None),
    ]
    done = json.loads(_ckg("reproduce", "arxiv.org/abs/2401.00001", "--json").stdout)
    assert done["paper"] == PAPER
    rows = done["rows"]
    assert _cols(rows, "dataset", "model", "reported", "reproduced", "artifact") == [
        ("digits", "knn", 90.0, 89.0, uid),
        ("digits", "svm", 95.0, None, None),
        ("mnist", "svm", 97.0, None, None),
    ]
    assert rows[0]["status"] == "reproduced" and rows[0]["ratio"] == pytest.approx(89 / 90)
    assert rows[0]["platform"].startswith("platform")
    assert {r["status"] for r in rows[1:]} == {
        "no configuration: no reproduces: entry of scorer names it"
    }
    runs = kg.query("MATCH (r:Run)-[:REPRODUCES]->(x:Result) RETURN r.params AS params")
    assert runs == [{"params": '{"acc": 89, "model": "knn"}'}]
    assert other.uid not in {r["run"] for r in rows}

    table = _ckg("reproduce", OTHER).stdout  # nothing implements it: nothing runs
    assert f"reported vs reproduced: {OTHER}" in table
    assert "forest on digits (accuracy): no implementing artifact" in table
    with pytest.raises(NotFound, match=r"no paper 'arxiv:2401.00003' in the graph \(did you"):
        kg.reproduce("arXiv:2401.00003")


def test_a_reproduces_block_naming_no_parameter_is_refused_at_ingest(kg, tmp_path):
    folder = tmp_path / "wf"
    folder.mkdir()
    (folder / "ckg.yaml").write_text(
        "alias: w\nparams: {n: 1}\nrun: echo {n}\nreproduces:\n  - {model: knn, params: {k: 1}}\n"
    )
    summary = kg.ingest(str(folder))
    assert [str(w) for w in summary.warnings] == [
        "ckg.yaml: reproduces[0] matches on k, which is not in params"
    ]
