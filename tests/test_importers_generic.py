"""Generic projects and packages (ckg.formats.generic): dependencies, notebooks, papers."""

import json
from pathlib import Path

from ckg.core.resolve import resolve
from ckg.formats import container, generic
from ckg.formats.detect import detect_formats


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


PYPROJECT = """\
[project]
name = "Attention_Demo"
version = "0.3.0"
description = "Transformer re-implementation"
requires-python = ">=3.10"
dependencies = ["numpy>=1.26,<3", "torch==2.3.1", "pyyaml"]

[project.optional-dependencies]
plot = ["matplotlib>=3.8"]
"""

ENVIRONMENT = """\
name: demo
channels: [conda-forge]
dependencies:
  - python=3.11
  - conda-forge::cudatoolkit>=11.8
  - pip
  - pip:
      - rich>=13
"""

CITATION = """\
cff-version: 1.2.0
title: attention-demo
doi: 10.5281/zenodo.1234567
preferred-citation:
  type: article
  title: Attention Is All You Need
  identifiers:
    - type: url
      value: https://arxiv.org/abs/1706.03762v7
"""


def project(tmp_path: Path) -> Path:
    root = tmp_path / "attention-demo"
    write(root / "pyproject.toml", PYPROJECT)
    write(
        root / "requirements.txt",
        "# pinned\nscipy==1.13.0  # solver\n-r dev.txt\n"
        "git+https://github.com/x/y.git\nTyping_Extensions>=4.8\n",
    )
    write(root / "environment.yml", ENVIRONMENT)
    write(
        root / "Dockerfile",
        "FROM python:3.12-slim AS build\nRUN pip install .\n"
        "FROM build\nFROM nvcr.io/nvidia/pytorch:24.01-py3\n",
    )
    write(root / "notebooks" / "explore.ipynb", json.dumps({"cells": [], "nbformat": 4}))
    write(root / "CITATION.cff", CITATION)
    write(
        root / "README.md",
        "# Demo\nImplements [the paper](https://arxiv.org/pdf/1706.03762.pdf)"
        " and follows doi:10.18653/V1/N18-2074.\n",
    )
    return root


def test_generic_project_becomes_one_package_artifact_with_its_dependencies(tmp_path):
    root = project(tmp_path)
    records = generic.read(root, "g1")
    [art] = [n.props for n in records.nodes if n.label == "Artifact"]
    assert (art["kind"], art["alias"], art["format"], art["path"]) == (
        "package",
        "Attention_Demo",
        "generic",
        ".",
    )
    assert art["tags"] == ["package", "python-package", "attention-demo"]
    meta = json.loads(art["meta"])
    # a notebook and a Dockerfile are artifacts of their own (ckg.formats.notebook, .container)
    assert "notebooks" not in meta and "Dockerfile" not in meta["files"]
    assert (meta["version"], meta["requires_python"]) == ("0.3.0", ">=3.10")
    pip = {d.tags[1]: d for d in records.dependencies if d.kind == "pip"}
    assert sorted(pip) == [
        "matplotlib",
        "numpy",
        "pyyaml",
        "rich",
        "scipy",
        "torch",
        "typing-extensions",
    ]
    assert (pip["numpy"].version_min, pip["numpy"].version_max) == ("1.26", "3")
    assert pip["torch"].version == "2.3.1"
    assert pip["matplotlib"].via_variation == "plot"
    assert (pip["scipy"].path, pip["scipy"].line, pip["scipy"].names) == (
        "requirements.txt",
        2,
        ["scipy==1.13.0"],
    )
    conda = {d.tags[1]: d for d in records.dependencies if d.kind == "conda"}
    assert sorted(conda) == ["cudatoolkit", "pip", "python"]
    assert (conda["python"].version, conda["cudatoolkit"].version_min) == ("3.11", "11.8")
    assert not [d for d in records.dependencies if d.kind == "docker"]
    dockerfile = container.read(root, "g1").dependencies
    docker = [(d.tags, d.version, d.line) for d in dockerfile if d.kind == "docker"]
    assert docker == [
        (["docker-image", "python"], "3.12-slim", 1),
        (["docker-image", "nvcr.io/nvidia/pytorch"], "24.01-py3", 4),
    ]
    ids = {(d.kind, d.via_variation, d.position) for d in records.dependencies}
    assert len(ids) == len(records.dependencies)


def test_generic_papers_from_citation_and_readme_are_linked_by_implements(tmp_path):
    records = generic.read(project(tmp_path), "g1")
    papers = {n.key: n.props for n in records.nodes if n.label == "Paper"}
    assert set(papers) == {
        "arxiv:1706.03762",
        "doi:10.5281/zenodo.1234567",
        "doi:10.18653/v1/n18-2074",
    }
    assert papers["arxiv:1706.03762"]["title"] == "Attention Is All You Need"
    assert papers["arxiv:1706.03762"]["url"] == "https://arxiv.org/abs/1706.03762"
    art = next(n.key for n in records.nodes if n.label == "Artifact")
    assert sorted((e.type, e.src_key, e.dst_key) for e in records.edges) == [
        ("IMPLEMENTS", art, uid) for uid in sorted(papers)
    ]


def test_generic_pip_dependency_resolves_to_an_ingested_package(tmp_path):
    root = project(tmp_path)
    write(root / "vendor" / "rich" / "pyproject.toml", '[project]\nname = "rich"\n')
    records = generic.read(root, "g1")
    found = [n.props for n in records.nodes if n.label == "Artifact"]
    assert sorted(a["path"] for a in found) == [".", "vendor/rich"]
    rich = next(a["uid"] for a in found if a["alias"] == "rich")
    results = {r.dependency.tags[1]: r for r in resolve(records.dependencies, found)}
    assert results["rich"].matches == (rich,) and results["rich"].status == "ok"
    assert results["numpy"].status == "missing"


def test_generic_reading_one_changed_file_rereads_its_whole_project(tmp_path):
    root = project(tmp_path)
    whole = generic.read(root, "g1")
    part = generic.read(root, "g1", [root / "requirements.txt"])
    assert [n.props for n in part.nodes] == [n.props for n in whole.nodes]
    assert part.dependencies == whole.dependencies


def test_generic_malformed_pyproject_and_environment_warn_with_line(tmp_path):
    root = tmp_path / "p"
    write(root / "pyproject.toml", '[project]\nname = "x"\ndependencies = ["a",\n')
    write(root / "environment.yml", "dependencies:\n  - a\n - b\n")
    write(root / "requirements.txt", "requests\n")
    records = generic.read(root, "g")
    assert sorted((w.path, w.line) for w in records.warnings) == [
        ("environment.yml", 3),
        ("pyproject.toml", 4),
    ]
    assert [d.tags for d in records.dependencies] == [["python-package", "requests"]]
    [art] = [n.props for n in records.nodes if n.label == "Artifact"]
    assert (art["kind"], art["alias"]) == ("project", "p")


def test_generic_file_of_odd_shape_costs_one_warning_not_the_project(tmp_path):
    root = tmp_path / "p"
    write(root / "pyproject.toml", 'project = "not a table"\n')
    write(root / "CITATION.cff", "- just\n- a list\n")
    write(root / "requirements.txt", "requests\n")
    records = generic.read(root, "g")
    assert sorted((w.path, w.message) for w in records.warnings) == [
        ("CITATION.cff", "top level is not a mapping"),
        ("pyproject.toml", "unexpected structure: 'str' object has no attribute 'get'"),
    ]
    assert [d.tags for d in records.dependencies] == [["python-package", "requests"]]


def test_generic_ignores_a_bare_readme_and_files_inside_cm_scripts(tmp_path):
    root = tmp_path / "cm-repo"
    write(root / "README.md", "A CM repository.\n")
    write(root / "script" / "x" / "_cm.yaml", "alias: x\n")
    write(root / "script" / "x" / "requirements.txt", "numpy\n")
    assert detect_formats(root)["generic"] == [root / "README.md"]
    assert generic.read(root, "g").nodes == []
