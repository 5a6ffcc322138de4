"""CK v1 importer (ckg.formats.ck) on the real ck-env corpus and on trees built here."""

import json
from functools import cache
from pathlib import Path

import pytest

from ckg.core.resolve import resolve
from ckg.formats import ck


@cache
def read_ck(root: Path):
    return ck.read(root, "ck-env")


@pytest.fixture
def ck_env(corpora):
    root = corpora / "ck-env"
    if not root.is_dir():
        pytest.skip("ck-env corpus absent")
    return root, read_ck(root)


def entries(records, kind=None):
    return [
        n.props
        for n in records.nodes
        if n.label == "Artifact" and n.props["kind"] != "repo" and kind in (None, n.props["kind"])
    ]


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_ck_env_gives_one_artifact_per_entry_with_uid_from_info(ck_env):
    root, records = ck_env
    metas = sorted(root.rglob(".cm/meta.json"))
    expected = {}
    for meta in metas:
        entry = meta.parent.parent
        info = json.loads((meta.parent / "info.json").read_text())
        expected[entry.relative_to(root).as_posix()] = (entry.parent.name, info["backup_data_uid"])
    found = {a["path"]: (a["kind"], a["uid"]) for a in entries(records)}
    assert found == expected
    assert len(entries(records)) == len(metas)
    soft = next(a for a in entries(records) if a["path"] == "soft/android.sdk")
    assert soft["alias"] == "android.sdk" and soft["format"] == "ck"
    assert soft["tags"] == json.loads((root / "soft/android.sdk/.cm/meta.json").read_text())["tags"]


def test_ck_env_dependency_entries_match_an_independent_count(ck_env):
    root, records = ck_env
    expected = 0
    for meta in root.rglob(".cm/meta.json"):
        deps = json.loads(meta.read_text()).get("deps")
        expected += len(deps) if isinstance(deps, dict) else 0
    assert len([d for d in records.dependencies if d.kind == "ck"]) == expected
    repo = [a for a in (n.props for n in records.nodes) if a.get("kind") == "repo"]
    assert [r["alias"] for r in repo] == ["ck-env"]
    repo_deps = [d for d in records.dependencies if d.kind == "repo_deps"]
    assert [d.tags for d in repo_deps] == [["repo", "ck-web"]]


def test_ck_env_reports_alias_files_that_disagree_with_info(ck_env):
    root, records = ck_env
    disagree = []
    for alias_file in root.glob("*/.cm/alias-a-*"):
        entry = alias_file.parent.parent / alias_file.name.removeprefix("alias-a-")
        info = entry / ".cm" / "info.json"
        if info.exists():
            uid = json.loads(info.read_text())["backup_data_uid"]
            if alias_file.read_text().strip() != uid:
                disagree.append(f"{entry.relative_to(root).as_posix()}/.cm/meta.json")
    warned = [w.path for w in records.warnings if "alias file alias-a-" in w.message]
    assert sorted(warned) == sorted(disagree)


def test_ck_env_dependencies_resolve_to_soft_first(ck_env):
    _, records = ck_env
    found = [n.props for n in records.nodes if n.label == "Artifact"]
    kinds = {a["uid"]: a["kind"] for a in found}
    results = [r for r in resolve(records.dependencies, found) if r.dependency.kind == "ck"]
    ok = [r for r in results if r.status == "ok"]
    print(f"ck-env: {len(ok)}/{len(results)} dependency entries resolve to exactly one entry")
    assert len(ok) > len(results) / 2
    assert {kinds[m] for r in results for m in r.matches} <= {"soft", "package"}


# --- trees built here ----------------------------------------------------------------------


def ck_tree(tmp_path: Path) -> Path:
    root = tmp_path / "ck-repo"
    write(
        root / ".ckr.json",
        json.dumps(
            {
                "data_alias": "my-repo",
                "data_uid": "0000aaaa0000aaaa",
                "dict": {"repo_deps": [{"repo_uoa": "ck-env"}]},
            }
        ),
    )
    pkg = {
        "tags": ["lib", "demo"],
        "deps": {
            "compiler": {
                "local": "yes",
                "name": "C compiler",
                "tags": "compiler,lang-c",
                "no_tags": "llvm,icc",
                "version_from": [9, 1],
                "version_to": [12],
            },
            "python": {
                "tags": "compiler,python",
                "enable_if_env": {"USE_PY": ["yes"]},
                "skip_instaled": "yes",
            },
        },
    }
    write(root / "package" / "lib-demo" / ".cm" / "meta.json", json.dumps(pkg, indent=1))
    write(
        root / "package" / "lib-demo" / ".cm" / "info.json",
        '{"backup_data_uid": "1111bbbb1111bbbb"}',
    )
    write(root / "package" / ".cm" / "alias-a-lib-demo", "1111bbbb1111bbbb\n")
    write(root / "package" / ".cm" / "alias-u-1111bbbb1111bbbb", "lib-demo\n")
    for alias, uid, tags in [
        ("compiler.gcc", "2222", "compiler,lang-c,gcc"),
        ("compiler.llvm", "3333", "compiler,lang-c,llvm"),
        ("compiler.python", "4444", "compiler,python"),
    ]:
        write(root / "soft" / alias / ".cm" / "meta.json", json.dumps({"tags": tags.split(",")}))
        write(root / "soft" / ".cm" / f"alias-a-{alias}", uid)  # no info.json: uid from alias
    return root


def test_ck_dict_dependencies_become_entries_with_exclusions_versions_and_guard(tmp_path):
    records = ck.read(ck_tree(tmp_path), "s")
    deps = {d.names[0]: d for d in records.dependencies}
    compiler = deps["compiler"]
    assert (compiler.kind, compiler.position) == ("ck", 0)
    assert compiler.tags == ["compiler", "lang-c", "-llvm", "-icc"]
    assert (compiler.version_min, compiler.version_max) == ("9.1", "12")
    assert deps["python"].guard == '{"enable_if_env":{"USE_PY":["yes"]}}'
    assert (deps["ck-env"].kind, deps["ck-env"].tags) == ("repo_deps", ["repo", "ck-env"])
    uids = {a["alias"]: a["uid"] for a in entries(records)}
    assert uids == {
        "lib-demo": "1111bbbb1111bbbb",
        "compiler.gcc": "2222",
        "compiler.llvm": "3333",
        "compiler.python": "4444",
    }
    results = {r.dependency.names[0]: r for r in resolve(records.dependencies, entries(records))}
    assert results["compiler"].matches == ("2222",)
    assert results["python"].matches == ("4444",)


def test_ck_warns_on_unknown_dependency_key_with_line(tmp_path):
    root = ck_tree(tmp_path)
    records = ck.read(root, "s")
    text = (root / "package/lib-demo/.cm/meta.json").read_text()
    line = next(i for i, t in enumerate(text.splitlines(), 1) if "skip_instaled" in t)
    typo = [w for w in records.warnings if "skip_instaled" in w.message]
    assert [(w.path, w.line) for w in typo] == [("package/lib-demo/.cm/meta.json", line)]
    assert "did you mean 'skip_installed'" in typo[0].message


def test_ck_malformed_meta_json_gives_one_warning_and_the_rest_is_read(tmp_path):
    root = ck_tree(tmp_path)
    write(root / "soft" / "broken" / ".cm" / "meta.json", '{\n "tags": ["a",\n "b"\n')
    records = ck.read(root, "s")
    bad = [w for w in records.warnings if "invalid JSON" in w.message]
    assert [(w.path, w.line) for w in bad] == [("soft/broken/.cm/meta.json", 4)]
    assert len(entries(records)) == 4


def test_ck_descriptor_of_odd_shape_costs_one_warning(tmp_path):
    root = ck_tree(tmp_path)
    write(root / ".ckr.json", '{"data_alias": "r", "dict": ["not", "a", "mapping"]}')
    records = ck.read(root, "s")
    assert [w.message.split(":")[0] for w in records.warnings if w.path == ".ckr.json"] == [
        "unexpected structure"
    ]
    assert [a for a in (n.props for n in records.nodes) if a["kind"] == "repo"] == []
    assert len(entries(records)) == 4


def test_ck_entry_without_any_uid_gets_a_derived_one_and_a_warning(tmp_path):
    root = tmp_path / "r"
    write(root / "soft" / "lone" / ".cm" / "meta.json", '{"tags": ["lone"]}')
    records = ck.read(root, "s")
    [art] = entries(records)
    assert len(art["uid"]) == 16 and art["uid"] == ck.read(root, "s").nodes[0].key
    assert art["uid"] != ck.read(root, "other-source").nodes[0].key
    assert [w.path for w in records.warnings] == ["soft/lone/.cm/meta.json"]
