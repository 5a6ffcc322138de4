"""Jupyter notebooks as artifacts (ckg.formats.notebook) and as runs (ckg.run.notebook):
notebooks published by nbclient, and one written here run over a grid with a real kernel."""

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from ckg.formats import notebook

TRAIN_PARAMETERS = "lr = 0.1\nlabel = 'base'  # a default the grid may override"
TRAIN_BODY = """\
import json, os
import numpy as np
from sklearn import metrics
from IPython.display import display
data_dir = os.environ["CKG_NOTEBOOK_DIR"]
accuracy = 1 - lr
latency = 0.05 + lr
with open("ckg-result.json", "w") as f:
    json.dump({"accuracy": accuracy, "latency": {"value": latency, "unit": "s"}}, f)
display({"application/scrapbook.scrap.json+json":
         {"name": "loss", "data": lr / 2, "encoder": "json", "version": 1}}, raw=True)
"""


def write_notebook(path: Path, *cells, language: str = "python") -> Path:
    nb = nbformat.v4.new_notebook(cells=list(cells))
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": language,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def code(source: str, *tags: str):
    return nbformat.v4.new_code_cell(source, metadata={"tags": list(tags)} if tags else {})


@pytest.fixture(scope="session")
def nbclient_sdist(tmp_path_factory) -> Path:
    """nbclient's published source archive, whose tests/files hold 23 notebooks that
    Jupyter's developers wrote: one ``pip download`` away, or a skip when offline."""
    folder = tmp_path_factory.mktemp("sdist")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--no-binary",
            ":all:",
            "--disable-pip-version-check",
            "nbclient==0.11.0",
            "-d",
            str(folder),
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    found = sorted(folder.glob("nbclient-*.tar.gz"))
    if done.returncode != 0 or not found:
        pytest.skip(f"cannot download the nbclient sdist (offline?): {done.stderr[-200:]}")
    return found[0]


def test_published_notebooks_ingest_from_their_sdist(kg, nbclient_sdist):
    summary = kg.ingest(str(nbclient_sdist))
    rows = kg.store.run(
        "MATCH (a:Artifact {format: 'notebook'}) RETURN a.alias AS alias, a.path AS path, "
        "a.tags AS tags, a.meta AS meta ORDER BY alias"
    )
    assert len(rows) == 23 and summary.warnings == []
    by_alias = {r["alias"]: r for r in rows}
    assert {r["path"] for r in rows} == {"nbclient-0.11.0/tests/files"}
    # A kernelspec without "name" breaks nbformat's schema, not Jupyter nor ckg.
    output = json.loads(by_alias["Output"]["meta"])
    assert output["language"] == "python" and output["kernel"]["name"] == ""
    clear = json.loads(by_alias["Clear Output"]["meta"])
    assert clear["imports"] == ["IPython"] and clear["packages"] == {"IPython": "ipython"}
    assert "python" in by_alias["Error"]["tags"] and "notebook" in by_alias["Error"]["tags"]
    # the sdist's package is there too, beside its notebooks
    assert kg.store.run(
        "MATCH (a:Artifact {alias: 'nbclient', kind: 'package'}) RETURN count(a) AS n"
    ) == [{"n": 1}]


def test_what_a_notebook_says_is_read_without_running_it(tmp_path):
    (tmp_path / "helpers.py").write_text("X = 1\n")
    path = write_notebook(
        tmp_path / "explore.ipynb",
        nbformat.v4.new_markdown_cell("# Exploring"),
        code("%matplotlib inline\n!pip install -q torch==2.3 'transformers>=4'\nimport os"),
        code("n = 3\nname: str = 'x'\nsteps = list(range(n))", "parameters"),
        code(
            "import cv2, helpers\nfrom PIL import Image\nimport pandas as pd\n"
            "df = pd.read_csv('data/train.csv')\nimg = Image.open('cat.png')\n"
            "with open('out.txt', 'w') as f: f.write('x')\n"
            "w = np.load(file='w.npy')\ntext = open('notes.txt').read()"
        ),
        code("%%bash\necho not python"),
        code("def broken(:\n    pass"),
    )
    path.with_name("garbage.ipynb").write_text('{"cells": "not a list"')
    records = notebook.read(tmp_path, "s")
    [art] = [n.props for n in records.nodes]
    meta = json.loads(art["meta"])
    assert meta["parameters"] == {"n": 3, "name": "x", "steps": "list(range(n))"}
    assert meta["imports"] == ["PIL", "cv2", "pandas"]  # os (stdlib), helpers (beside it) out
    assert meta["packages"]["cv2"] == "opencv-python"
    assert meta["pip_installs"] == ["torch", "transformers"]
    assert meta["data_files"] == ["data/train.csv", "cat.png", "w.npy", "notes.txt"]
    assert (meta["code_cells"], meta["unparsed_cells"]) == (5, 1)
    assert sorted(d.tags[1] for d in records.dependencies) == [
        "opencv-python",
        "pandas",
        "pillow",
        "torch",
        "transformers",
    ]
    [warning] = records.warnings
    assert warning.path == "garbage.ipynb" and "not a readable Jupyter notebook" in str(warning)


@pytest.mark.parametrize("store", ["embedded"], indirect=True)  # a kernel per run: one engine
def test_notebook_runs_over_a_grid_and_is_recorded_with_its_metrics(kg, tmp_path):
    folder = tmp_path / "nbs"
    write_notebook(
        folder / "train.ipynb",
        nbformat.v4.new_markdown_cell("# Train"),
        code(TRAIN_PARAMETERS, "parameters"),
        code(TRAIN_BODY),
    )
    write_notebook(folder / "broken.ipynb", code("x = 1"), code("x / 0"))
    (folder / "empty.ipynb").write_text("")
    vendored = folder / "vendor" / "numpy" / "pyproject.toml"  # a package it imports
    vendored.parent.mkdir(parents=True)
    vendored.write_text('[project]\nname = "numpy"\nversion = "2.0"\n')
    summary = kg.ingest(str(folder))
    assert [str(w) for w in summary.warnings] == [
        "empty.ipynb:1: not a readable Jupyter notebook: Expecting value (column 1)"
    ]
    assert summary.new == 3
    needs = "MATCH (:Artifact {alias: 'train'})-[:DEPENDS_ON]->(p) RETURN p.alias AS p, p.kind AS k"
    assert kg.store.run(needs) == [{"p": "numpy", "k": "package"}]

    # the package is a requirement of the environment, not a step to execute
    assert [s.id for s in kg.plan("train").steps] == ["numpy", "train"]
    report = kg.run("train", grid={"lr": [0.1, 0.01]})
    assert [r.status for r in report.runs] == ["ok", "ok"]
    assert [round(r.metrics["accuracy"], 3) for r in report.runs] == [0.9, 0.99]
    assert [r.metrics["loss"] for r in report.runs] == [0.05, 0.005]  # glued
    rows = kg.store.run(
        "MATCH (r:Run)-[:OF]->(:Artifact {alias: 'train'}) "
        "MATCH (r)-[:MEASURED]->(m:Measurement {metric: 'accuracy'}) "
        "MATCH (r)-[:ON]->(:Platform) "
        "RETURN r.params AS params, r.executed_notebook AS nb, r.status AS status, "
        "m.value AS accuracy, r.artifact_digest AS code ORDER BY accuracy"
    )
    assert [json.loads(r["params"]) for r in rows] == [{"lr": 0.1}, {"lr": 0.01}]
    assert all(r["code"] for r in rows)  # provenance: the folder as run
    for row, lr in zip(rows, (0.1, 0.01), strict=True):
        executed = nbformat.read(row["nb"], as_version=4)  # kept with the run
        injected = [
            c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", [])
        ]
        assert Path(row["nb"]).parent.name.startswith("run-")
        assert injected and f"lr = {lr}" in injected[0].source
        assert executed.cells[-1].outputs, "the executed cells keep their outputs"

    [failed] = kg.run("broken").runs
    assert failed.status == "failed"
    assert failed.log_tail.strip().splitlines()[-1] == (
        "broken.ipynb: cell 2 failed: ZeroDivisionError: division by zero"
    )
    assert Path(failed.workdir, "executed.ipynb").is_file()

    # a notebook removed from the folder leaves the graph; its neighbour stays
    (folder / "broken.ipynb").unlink()
    again = kg.ingest(str(folder))
    assert (again.removed, again.unchanged) == (1, 2)


def test_what_cannot_run_is_refused_before_a_kernel_starts(kg, tmp_path):
    write_notebook(tmp_path / "nbs" / "train.ipynb", code(TRAIN_PARAMETERS, "parameters"))
    write_notebook(tmp_path / "nbs" / "plots.ipynb", code("library(ggplot2)"), language="R")
    kg.ingest(str(tmp_path / "nbs"))
    from ckg.core.errors import RunFailed, UsageError

    with pytest.raises(UsageError, match="epochs is not a parameter of train .*label, lr"):
        kg.run("train", grid={"epochs": [1, 2]})
    with pytest.raises(RunFailed, match="plots.ipynb: ckg runs Python notebooks; .* python3"):
        kg.run("plots")
    [step] = kg.run("train", grid={"lr": [0.5]}, dry_run=True, in_container="lab:1").dry_run
    assert step["command"].startswith("docker run --rm -v ")
    assert " lab:1 sh -c 'python3 -m ckg.run.notebook " in step["command"]
    assert "--params '\"'\"'{\"lr\": 0.5}'\"'\"'" in step["command"]
