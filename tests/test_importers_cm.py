"""CM and MLC importers (ckg.formats.cm, ckg.formats.mlc, ckg.formats.cmlike) and format
detection."""

import json
from functools import cache
from pathlib import Path

import pytest
import yaml

from ckg.core.resolve import resolve
from ckg.formats import cm, mlc
from ckg.formats.cmlike import DEP_KINDS
from ckg.formats.detect import detect_formats


def artifacts(records, kind=None):
    return [
        n.props
        for n in records.nodes
        if n.label == "Artifact" and (kind is None or n.props["kind"] == kind)
    ]


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def line_in(text: str, needle: str) -> int:
    """1-based line of the first line containing ``needle``: the test's own line count."""
    return next(i for i, t in enumerate(text.splitlines(), 1) if needle in t)


@cache
def load_meta(path: Path) -> dict:
    if path.suffix == ".json":
        return json.loads(path.read_text())
    return yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


# --- the real cm4mlops corpus ----------------------------------------------------------


@cache
def read_cm(root: Path):
    return cm.read(root, "cm4mlops")  # read once for all the corpus tests


@pytest.fixture
def cm4mlops(corpora):
    root = corpora / "cm4mlops"
    if not root.is_dir():
        pytest.skip("cm4mlops corpus absent")
    return root, read_cm(root)


@pytest.fixture
def cm4mlops_metas(cm4mlops):
    root = cm4mlops[0]
    return sorted([*root.rglob("_cm.yaml"), *root.rglob("_cm.json")])


def test_cm4mlops_gives_one_artifact_per_meta_folder(cm4mlops, cm4mlops_metas):
    root, records = cm4mlops
    folders = {p.parent.relative_to(root).as_posix() for p in cm4mlops_metas}
    found = [a for a in artifacts(records) if a["kind"] != "repo"]
    assert sorted(a["path"] for a in found) == sorted(folders)
    assert len({a["uid"] for a in found}) == len(found)
    assert all(a["format"] == "cm" and a["source_uid"] == "cm4mlops" for a in found)
    repo = artifacts(records, "repo")
    assert [(r["alias"], r["path"]) for r in repo] == [("mlcommons@cm4mlops", ".")]


def test_cm4mlops_dependency_entries_match_an_independent_count(cm4mlops, cm4mlops_metas):
    _, records = cm4mlops
    expected = 0
    for path in cm4mlops_metas:
        meta = load_meta(path)
        sections = [meta, *[v for v in (meta.get("variations") or {}).values() if v]]
        for section in sections:
            for kind in DEP_KINDS:
                if isinstance(section.get(kind), list):
                    expected += sum(isinstance(e, dict) for e in section[kind])
    script_deps = [d for d in records.dependencies if d.kind in DEP_KINDS]
    assert len(script_deps) == expected
    entries = {(d.artifact_uid, d.kind, d.via_variation, d.position) for d in script_deps}
    assert len(entries) == expected  # entry ids are unique


def test_cm4mlops_resolves_at_least_98_percent_of_script_deps_to_one_script(cm4mlops):
    _, records = cm4mlops
    found = artifacts(records)
    scripts = {a["uid"] for a in found if a["kind"] == "script"}
    deps = [d for d in records.dependencies if d.artifact_uid in scripts]
    results = resolve(deps, found)
    ok = [r for r in results if r.status == "ok"]
    share = len(ok) / len(results)
    print(
        f"cm4mlops: {len(ok)}/{len(results)} script dependency entries resolve to one script "
        f"({share:.1%})"
    )
    assert all(m in scripts for r in ok for m in r.matches)
    assert share >= 0.98
    python = next(a for a in found if a["alias"] == "get-python3")
    bound = [r for r in ok if r.dependency.tags == ["get", "python3"]]
    assert bound and {r.matches for r in bound} == {(python["uid"],)}


def test_cm4mlops_warns_about_the_real_typo_with_file_and_line(cm4mlops):
    root, records = cm4mlops
    rel = "script/app-mlperf-inference-dummy/_cm.yaml"
    lines = (root / rel).read_text().splitlines()
    line = next(i for i, t in enumerate(lines, 1) if "updats_tags_from_env_with_prefix" in t)
    typo = [w for w in records.warnings if "updats_tags_from_env_with_prefix" in w.message]
    assert [(w.path, w.line) for w in typo] == [(rel, line)]
    assert "did you mean 'update_tags_from_env_with_prefix'" in typo[0].message


def test_cm4mlops_duplicate_uid_keeps_both_artifacts(cm4mlops, cm4mlops_metas):
    root, records = cm4mlops
    by_uid: dict[str, list[str]] = {}
    for path in cm4mlops_metas:
        uid = load_meta(path).get("uid")
        if uid:
            by_uid.setdefault(uid, []).append(path.relative_to(root).as_posix())
    dups = {uid: paths for uid, paths in by_uid.items() if len(paths) > 1}
    assert dups, "the corpus is known to reuse one uid"
    warned = [w for w in records.warnings if w.message.startswith("duplicate uid")]
    assert sorted(w.path for w in warned) == sorted(p for ps in dups.values() for p in ps[1:])


# --- CM trees built here -------------------------------------------------------------------

APP = """\
alias: app
uid: aaaa000000000001
automation_alias: script
tags: app,demo
deps:
  - tags: detect,os
  - tags: get,python3
    names: [python]
    enable_if_env:
      CM_NEED_PYTHON: ['yes']
    skip_if_any_env:
      CM_SKIP: [on]
prehook_deps:
  - tags: get,tool,_v.1
post_deps:
  - tags: get,tool,-extra
variations:
  cuda:
    group: device
    deps:
      - tags: get,cuda
  cpu:
    group: device
    default: true
  fast:
    base: [cpu]
    posthook_deps:
      - tags: get,tool
        updats_tags_from_env_with_prefix: {}
"""

TOOL = """\
alias: tool
uid: bbbb000000000002
automation_alias: script
tags: [get, tool]
variations:
  v.#: {}
"""


def cm_tree(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    write(root / "cmr.yaml", "alias: me@demo\nuid: 1234123412341234\ndeps:\n  - alias: me@other\n")
    write(root / "script" / "app" / "_cm.yaml", APP)
    write(root / "script" / "tool" / "_cm.yaml", TOOL)
    write(
        root / "script" / "os" / "_cm.json",
        json.dumps(
            {
                "alias": "os",
                "uid": "cccc000000000003",
                "automation_alias": "script",
                "tags": ["detect", "os"],
            },
            indent=2,
        ),
    )
    return root


def test_cm_dependencies_carry_kind_guard_variation_and_line(tmp_path):
    root = cm_tree(tmp_path)
    records = cm.read(root, "s1")
    deps = {(d.kind, d.via_variation, d.position): d for d in records.dependencies}
    python = deps["deps", "", 1]
    assert python.tags == ["get", "python3"] and python.names == ["python"]
    assert (
        python.guard
        == '{"enable_if_env":{"CM_NEED_PYTHON":["yes"]},"skip_if_any_env":{"CM_SKIP":[true]}}'
    )
    assert (python.path, python.line) == ("script/app/_cm.yaml", line_in(APP, "get,python3"))
    assert deps["deps", "cuda", 0].tags == ["get", "cuda"]
    assert deps["posthook_deps", "fast", 0].line == line_in(APP, "posthook_deps") + 1
    assert deps["prehook_deps", "", 0].guard == ""
    assert [r.kind for r in records.dependencies].count("repo_deps") == 1
    results = {r.entry: r for r in resolve(records.dependencies, artifacts(records))}
    assert results["aaaa000000000001#prehook_deps##0"].matches == ("bbbb000000000002",)
    assert results["aaaa000000000001#deps##0"].matches == ("cccc000000000003",)
    assert results["aaaa000000000001#deps#cuda#0"].status == "missing"
    assert results["1234123412341234#repo_deps##0"].status == "missing"


def test_cm_variations_become_nodes_with_group_default_and_base(tmp_path):
    records = cm.read(cm_tree(tmp_path), "s1")
    variations = {n.props["name"]: n.props for n in records.nodes if n.label == "Variation"}
    assert variations["cpu"] == {
        "uid": "aaaa000000000001:cpu",
        "name": "cpu",
        "group": "device",
        "is_default": True,
        "base": [],
    }
    assert variations["fast"]["base"] == ["cpu"] and variations["fast"]["is_default"] is False
    assert "v.#" in variations
    app = next(a for a in artifacts(records) if a["alias"] == "app")
    assert app["variations"] == ["cuda", "cpu", "fast"]
    assert app["tags"] == ["app", "demo"]
    assert json.loads(app["meta"])["variations"]["cpu"]["default"] is True
    edges = {(e.src_key, e.dst_key) for e in records.edges if e.type == "HAS_VARIATION"}
    assert ("aaaa000000000001", "aaaa000000000001:cuda") in edges and len(edges) == 4


def test_cm_warns_on_unknown_dep_key_alias_mismatch_and_bad_tags(tmp_path):
    root = cm_tree(tmp_path)
    write(
        root / "script" / "odd" / "_cm.yaml",
        "alias: not-odd\nuid: dddd000000000004\nautomation_alias: script\ntags: {a: 1}\n"
        "deps:\n  - tags: 7\n",
    )
    records = cm.read(root, "s1")
    messages = {(w.path, w.line, w.message.split(" (")[0]) for w in records.warnings}
    assert (
        "script/app/_cm.yaml",
        line_in(APP, "updats_"),
        "unknown key 'updats_tags_from_env_with_prefix' in posthook_deps entry",
    ) in messages
    assert ("script/odd/_cm.yaml", 1, "alias 'not-odd' differs from folder name 'odd'") in messages
    assert ("script/odd/_cm.yaml", 4, "tags is neither a list nor a comma string") in messages
    assert (
        "script/odd/_cm.yaml",
        6,
        "deps entry tags are neither a list nor a comma string",
    ) in messages


def test_cm_json_and_yaml_in_one_folder_make_one_artifact_yaml_winning(tmp_path):
    root = tmp_path / "repo"
    write(
        root / "script" / "x" / "_cm.json",
        '{"alias": "x", "uid": "eeee000000000005", "automation_alias": "script", "tags": ["old"]}',
    )
    write(root / "script" / "x" / "_cm.yaml", "tags: [new]\n")
    found = artifacts(cm.read(root, "s"))
    assert len(found) == 1
    assert (found[0]["uid"], found[0]["tags"]) == ("eeee000000000005", ["new"])


def test_malformed_yaml_and_json_give_one_warning_each_and_the_rest_is_read(tmp_path):
    root = cm_tree(tmp_path)
    write(root / "script" / "bad-yaml" / "_cm.yaml", "alias: bad\ntags: [a, b\ndeps: []\n")
    write(root / "script" / "bad-json" / "_cm.json", '{\n  "alias": "bad",\n  "tags": [1,]\n}\n')
    records = cm.read(root, "s1")
    bad = [w for w in records.warnings if "invalid" in w.message]
    assert sorted((w.path, w.line) for w in bad) == [
        ("script/bad-json/_cm.json", 3),
        ("script/bad-yaml/_cm.yaml", 3),
    ]
    assert sorted(a["alias"] for a in artifacts(records, "script")) == ["app", "os", "tool"]


# --- MLC -----------------------------------------------------------------------------------


def mlc_tree(tmp_path: Path) -> Path:
    root = tmp_path / "mlc-repo"
    write(
        root / "meta.yaml",
        "alias: mlcommons@mlperf-automations\nuid: 9e97bb72b0474657\ngit: true\nversion: 1.0.0\n",
    )
    write(
        root / "script" / "get-python3" / "meta.yaml",
        """\
alias: get-python3
uid: d0b5dd74373f4a62
automation_alias: script
cache: true
tags: [get, python, python3, get-python3]
default_env:
  MLC_PYTHON_MIN: '3.8'
new_env_keys: [MLC_PYTHON_*]
prehook_deps:
  - tags: install,python,src
    enable_if_env:
      MLC_REQUIRE_INSTALL: ['yes']
variations:
  conda.#:
    deps:
      - tags: get,generic,conda-package,_name.#
""",
    )
    write(
        root / "script" / "install-python-src" / "meta.json",
        json.dumps(
            {
                "alias": "install-python-src",
                "uid": "12e86eb386314866",
                "automation_alias": "script",
                "tags": ["install", "src", "python", "python3"],
                "deps": [{"tags": "detect,os", "skip_if_env": {"MLC_HOST_OS": ["windows"]}}],
            }
        ),
    )
    write(
        root / "script" / "get-conda-package" / "meta.yaml",
        "alias: get-conda-package\nuid: 6600115f41324c7b\nautomation_alias: script\n"
        "tags: get,generic,conda-package\nvariations:\n  name.#: {}\n",
    )
    write(
        root / "script" / "detect-os" / "meta.yaml",
        "alias: detect-os\nuid: 863735b7db8c44fc\nautomation_alias: script\ntags: detect,os\n",
    )
    write(root / "recipe" / "meta.yaml", "package:\n  name: not-mlc\n")  # a conda recipe
    return root


def test_mlc_tree_is_detected_read_and_resolved(tmp_path):
    root = mlc_tree(tmp_path)
    detected = detect_formats(root)
    assert set(detected) == {"mlc"}
    assert root / "recipe" / "meta.yaml" not in detected["mlc"]
    records = mlc.read(root, "mlc1", detected["mlc"])
    found = artifacts(records)
    assert sorted(a["alias"] for a in found) == [
        "detect-os",
        "get-conda-package",
        "get-python3",
        "install-python-src",
        "mlcommons@mlperf-automations",
    ]
    assert {a["format"] for a in found} == {"mlc"}
    python = next(a for a in found if a["alias"] == "get-python3")
    assert json.loads(python["meta"])["default_env"] == {"MLC_PYTHON_MIN": "3.8"}
    assert python["variations"] == ["conda.#"]
    results = resolve(records.dependencies, found)
    assert [r.status for r in results] == ["ok", "ok", "ok"]
    guards = sorted(r.dependency.guard for r in results)
    assert guards == [
        "",
        '{"enable_if_env":{"MLC_REQUIRE_INSTALL":["yes"]}}',
        '{"skip_if_env":{"MLC_HOST_OS":["windows"]}}',
    ]


def test_mlc_malformed_meta_gives_one_warning_and_the_rest_is_read(tmp_path):
    root = mlc_tree(tmp_path)
    write(root / "script" / "broken" / "meta.yaml", "alias: broken\n  uid: x\n")
    records = mlc.read(root, "mlc1")
    assert [(w.path, w.line) for w in records.warnings] == [("script/broken/meta.yaml", 2)]
    assert len(artifacts(records, "script")) == 4


def test_mlc_reading_some_files_gives_what_reading_all_gives_for_them(tmp_path):
    root = mlc_tree(tmp_path)
    whole = {n.key: n.props for n in mlc.read(root, "m").nodes}
    for rel in ("meta.yaml", "script/get-python3/meta.yaml"):
        part = {n.key: n.props for n in mlc.read(root, "m", [root / rel]).nodes}
        assert part and all(whole[k] == v for k, v in part.items())
    assert next(iter(mlc.read(root, "m", [root / "meta.yaml"]).nodes)).props["kind"] == "repo"


# --- detection -----------------------------------------------------------------------------


def test_detect_classifies_each_folder_of_a_mixed_tree(tmp_path):
    root = cm_tree(tmp_path)
    write(root / "script" / "app" / "requirements.txt", "numpy\n")  # the script's own file
    write(root / "requirements.txt", "pyyaml\n")
    write(root / "ck" / "soft" / "lib.x" / ".cm" / "meta.json", "{}")
    write(root / ".git" / "script" / "y" / "_cm.yaml", "alias: y\n")
    write(root / "node_modules" / "z" / "Dockerfile", "FROM node\n")
    found = {
        k: [p.relative_to(root).as_posix() for p in v] for k, v in detect_formats(root).items()
    }
    assert found == {
        "cm": ["cmr.yaml", "script/app/_cm.yaml", "script/os/_cm.json", "script/tool/_cm.yaml"],
        "ck": ["ck/soft/lib.x/.cm/meta.json"],
        "generic": ["requirements.txt"],
    }


def test_a_default_written_as_the_string_true_comma_is_the_group_default(corpora):
    """A real meta says ``default: true,`` (a YAML string); MLCFlow tests only that the key
    is there, so ``_python`` is the default implementation of this script."""
    from ckg.formats import mlc

    root = corpora / "mlperf-automations"
    folder = "script/app-mlperf-inference-mlcommons-python"
    records = mlc.read(root, "src", [root / folder / "meta.yaml"])
    defaults = {
        n.props["name"]: n.props["is_default"]
        for n in records.nodes
        if n.label == "Variation" and n.props["group"] == "implementation"
    }
    assert defaults["python"] is True
    assert sum(defaults.values()) == 1
