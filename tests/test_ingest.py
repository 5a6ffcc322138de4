"""ckg.ingest and the look-ups: real trees, Git repositories and archives, both engines."""

import json
import os
import tarfile
import zipfile
from pathlib import Path

import pytest

from ckg.core.errors import NotFound, UsageError
from ckg.ingest import StrictFailure
from ckg.ingest import core as ingest_mod
from tests.gitrepo import git

PY = "aaaaaaaaaaaaaaa1"
OS = "aaaaaaaaaaaaaaa2"
APP = "aaaaaaaaaaaaaaa3"
ALT = "aaaaaaaaaaaaaaa4"
ZLIB = "aaaaaaaaaaaaaaa5"

TREE = {
    "cmr.yaml": "alias: test@tiny\nuid: aaaaaaaaaaaaaaa0\n",
    "script/get-python3/_cm.yaml": f"""alias: get-python3
uid: {PY}
automation_alias: script
tags: [get, python, python3, get-python3]
variations:
  conda.#: {{}}
  shared:
    group: link
    default: true
""",
    "script/detect-os/_cm.json": json.dumps(
        {"alias": "detect-os", "uid": OS, "automation_alias": "script", "tags": ["detect", "os"]}
    ),
    "script/get-python-alt/_cm.yaml": f"""alias: get-python-alt
uid: {ALT}
automation_alias: script
tags: get,python-alt
""",
    "script/app-hello/_cm.yaml": f"""alias: app-hello
uid: {APP}
automation_alias: script
tags: [app, hello]
deps:
- tags: detect,os
- tags: get,python3
  names: [python]
- tags: get,zlib
- tags: get
prehook_deps:
- tags: detect,os
  enable_if_env:
    CM_X: ['yes']
variations:
  cuda:
    deps:
    - tags: get,python3,_shared
  conda:
    deps:
    - tags: get,python3,_conda.py311
""",
    "script/app-hello/run.sh": "echo hello\n",
}
ZLIB_TREE = {
    "script/get-zlib/_cm.yaml": f"alias: get-zlib\nuid: {ZLIB}\nautomation_alias: script\n"
    "tags: [get, zlib]\n",
}


def write_tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def count(kg, cypher: str, **params) -> int:
    return kg.query(cypher, params)[0]["n"]


@pytest.fixture
def tiny(tmp_path) -> Path:
    return write_tree(tmp_path / "tiny", TREE)


@pytest.fixture
def writes(kg, monkeypatch):
    """Every write statement the store is sent, recorded."""
    sent: list[str] = []
    write, write_batches = kg.store.write, kg.store.write_batches
    batching = []  # non-empty while write_batches runs: its own writes are counted once

    def spy_write(cypher, params=None):
        if not batching:
            sent.append(cypher)
        return write(cypher, params)

    def spy_write_batches(cypher, rows, **options):
        sent.append(cypher)
        batching.append(cypher)
        try:
            return write_batches(cypher, rows, **options)
        finally:
            batching.pop()

    monkeypatch.setattr(kg.store, "write", spy_write)
    monkeypatch.setattr(kg.store, "write_batches", spy_write_batches)
    return sent


def test_folder_ingest_writes_artifacts_variations_and_resolved_edges(kg, tiny):
    summary = kg.ingest(tiny, name="tiny")
    assert (summary.kind, summary.new, summary.parsed, summary.meta_files) == ("dir", 5, 5, 5)
    assert summary.files == 6 and summary.warnings == []
    assert count(kg, "MATCH (a:Artifact) RETURN count(a) AS n") == 5
    assert (
        count(kg, "MATCH (:Artifact {uid: $u})-[:HAS_VARIATION]->(v) RETURN count(v) AS n", u=PY)
        == 2
    )
    # detect,os x2 + get,python3 + get (2: ambiguous) + _shared + _conda.py311 (wildcard)
    assert summary.edges == 7
    assert (summary.missing, summary.ambiguous) == (1, 1)
    source = kg.store.get_node("Source", summary.uid)
    assert source["complete"] is True and source["name"] == "tiny" and source["kind"] == "dir"
    edge = kg.query(
        "MATCH (:Artifact {uid: $a})-[r:DEPENDS_ON {kind: 'prehook_deps'}]->(b) "
        "RETURN r.guard AS guard, r.entry AS entry, b.alias AS alias",
        {"a": APP},
    )
    assert edge == [
        {
            "guard": '{"enable_if_env":{"CM_X":["yes"]}}',
            "entry": f"{APP}#prehook_deps##0",
            "alias": "detect-os",
        }
    ]
    missing = kg.query(
        "MATCH (:Artifact {uid: $a})-[:NEEDS]->(u:UnresolvedDependency) "
        "RETURN u.tags AS tags, u.status AS status",
        {"a": APP},
    )
    assert missing == [{"tags": ["get", "zlib"], "status": "missing"}]


def test_unchanged_reingest_parses_and_writes_nothing(kg, tiny, writes):
    first = kg.ingest(tiny)
    stamp = kg.store.get_node("Source", first.uid)["ingested_at"]
    writes.clear()
    again = kg.ingest(tiny)
    assert writes == []
    assert (again.parsed, again.unchanged, again.new, again.wrote) == (0, 5, 0, False)
    assert (again.edges, again.missing, again.ambiguous) == (7, 1, 1)
    assert kg.store.get_node("Source", first.uid)["ingested_at"] == stamp
    (tiny / "script" / "app-hello" / "run.sh").write_text("echo changed\n")  # not a meta file
    third = kg.ingest(tiny)
    assert (third.parsed, third.wrote) == (0, False) and writes == []


def test_changed_meta_rewrites_only_its_artifact(kg, tiny, writes):
    kg.ingest(tiny)
    path = tiny / "script" / "get-python3" / "_cm.yaml"
    path.write_text(path.read_text().replace("tags: [get,", "tags: [get, new-tag,"))
    writes.clear()
    summary = kg.ingest(tiny)
    assert (summary.parsed, summary.changed, summary.unchanged, summary.new) == (1, 1, 4, 0)
    assert kg.find("new-tag")[0]["uid"] == PY
    rows = kg.query("UNWIND $rows AS row RETURN size(row) AS n", {"rows": [[1]]})
    assert rows == [{"n": 1}]  # the spy leaves reads alone
    artifact_writes = [w for w in writes if "MERGE (n:Artifact" in w]
    assert len(artifact_writes) == 1
    # the dependent's edges to the rewritten artifact are still there
    assert (
        count(
            kg,
            "MATCH (:Artifact {uid: $a})-[r:DEPENDS_ON]->(:Artifact {uid: $p}) "
            "RETURN count(r) AS n",
            a=APP,
            p=PY,
        )
        == 4
    )


def test_removed_artifact_is_deleted_and_its_dependents_reresolved(kg, tiny):
    kg.ingest(tiny)
    for name in ("_cm.json",):
        (tiny / "script" / "detect-os" / name).unlink()
    summary = kg.ingest(tiny)
    assert (summary.removed, summary.unchanged) == (1, 4)
    assert kg.store.get_node("Artifact", OS) is None
    assert summary.missing == 3  # get,zlib plus both detect,os entries
    assert count(kg, "MATCH (u:UnresolvedDependency) RETURN count(u) AS n") == 3


def test_later_source_resolves_missing_entries_of_another(kg, tiny, tmp_path):
    kg.ingest(tiny)
    other = kg.ingest(write_tree(tmp_path / "zlib", ZLIB_TREE))
    assert other.reresolved == 1
    assert count(kg, "MATCH (u:UnresolvedDependency) RETURN count(u) AS n") == 0
    assert kg.query(
        "MATCH (:Artifact {uid: $a})-[r:DEPENDS_ON]->(:Artifact {uid: $z}) RETURN r.tags AS tags",
        {"a": APP, "z": ZLIB},
    ) == [{"tags": ["get", "zlib"]}]
    # and removing it again makes the entry missing again
    (tmp_path / "zlib" / "script" / "get-zlib" / "_cm.yaml").unlink()
    assert kg.ingest(tmp_path / "zlib").removed == 1
    assert count(kg, "MATCH (u:UnresolvedDependency) RETURN count(u) AS n") == 1


def test_malformed_yaml_and_json_give_one_warning_each_and_the_rest_ingests(kg, tiny):
    write_tree(
        tiny,
        {
            "script/broken-yaml/_cm.yaml": "alias: broken\ntags: [a, b\nuid: x\n",
            "script/broken-json/_cm.json": '{"alias": "bj",\n "tags": [1,\n',
        },
    )
    summary = kg.ingest(tiny)
    assert summary.new == 5
    by_path = {w.path: w for w in summary.warnings}
    assert set(by_path) == {"script/broken-yaml/_cm.yaml", "script/broken-json/_cm.json"}
    assert by_path["script/broken-yaml/_cm.yaml"].line == 3
    assert by_path["script/broken-json/_cm.json"].line == 3
    assert "invalid YAML" in str(by_path["script/broken-yaml/_cm.yaml"])
    again = kg.ingest(tiny)  # warnings are reported again without parsing again
    assert again.parsed == 0 and len(again.warnings) == 2
    (tiny / "script" / "broken-yaml" / "_cm.yaml").write_text("alias: broken-yaml\nuid: b1\n")
    fixed = kg.ingest(tiny)
    assert (fixed.parsed, fixed.new, len(fixed.warnings)) == (1, 1, 1)


def test_strict_fails_on_warnings_and_writes_nothing(kg, tiny):
    write_tree(tiny, {"script/bad/_cm.json": "{"})
    with pytest.raises(StrictFailure, match="1 warning.* with --strict; nothing written") as err:
        kg.ingest(tiny, strict=True)
    assert err.value.summary.warnings[0].path == "script/bad/_cm.json"
    assert count(kg, "MATCH (n) RETURN count(n) AS n") == 0


def test_killed_ingest_is_marked_incomplete_and_repaired(kg, tiny, monkeypatch):
    original = kg.store.upsert_nodes

    def die_halfway(label, rows, **kw):
        rows = list(rows)
        if label == "Artifact":
            original(label, rows[: len(rows) // 2], **kw)
            raise KeyboardInterrupt
        return original(label, rows, **kw)

    monkeypatch.setattr(kg.store, "upsert_nodes", die_halfway)
    with pytest.raises(KeyboardInterrupt):
        kg.ingest(tiny)
    monkeypatch.undo()
    uid = kg.query("MATCH (s:Source) RETURN s.uid AS n")[0]["n"]
    assert kg.store.get_node("Source", uid)["complete"] is False
    assert count(kg, "MATCH (a:Artifact) RETURN count(a) AS n") == 2
    kg.query(
        "CREATE (:Artifact {uid: 'stale', alias: 'stale', source_uid: $s, tags: []})", {"s": uid}
    )
    summary = kg.ingest(tiny)
    assert (summary.new, summary.changed, summary.removed) == (3, 2, 1)
    assert kg.store.get_node("Source", uid)["complete"] is True
    assert count(kg, "MATCH (a:Artifact) RETURN count(a) AS n") == 5
    assert summary.edges == 7


def test_git_repo_ingest_change_reingest_and_older_tag(kg, tiny):
    git(tiny, "init", "-q", "-b", "main")
    git(tiny, "add", ".")
    git(tiny, "commit", "-q", "-m", "one")
    git(tiny, "tag", "v1")
    first = kg.ingest(tiny)
    assert (first.kind, first.commit, first.new) == ("git", git(tiny, "rev-parse", "HEAD"), 5)
    meta = tiny / "script" / "detect-os" / "_cm.json"
    meta.write_text(meta.read_text().replace('"os"]', '"os", "linux"]'))
    git(tiny, "commit", "-q", "-am", "two")
    second = kg.ingest(tiny)
    assert (second.parsed, second.changed, second.unchanged) == (1, 1, 4)
    assert kg.store.get_node("Source", first.uid)["commit"] == git(tiny, "rev-parse", "HEAD")
    assert "linux" in kg.show(OS)["artifact"]["tags"]
    old = kg.ingest(tiny, ref="v1")
    assert old.uid != first.uid and old.commit == git(tiny, "rev-parse", "v1^{commit}")
    # the older tag's artifacts keep their own uids: HEAD's hold the meta uids
    assert (old.new, old.renamed) == (5, 5)
    linux = [a["uid"] for a in kg.find("detect,os")]
    assert len(linux) == 2 and len(kg.find("detect,os,linux")) == 1


def test_zip_and_tar_archives_ingest_and_reingest_without_writes(kg, tmp_path, writes):
    tree = write_tree(tmp_path / "src", TREE)
    archive = tmp_path / "tiny.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(tree.rglob("*")):
            zf.write(path, path.relative_to(tree))
    summary = kg.ingest(archive)
    assert (summary.kind, summary.new, len(summary.warnings)) == ("zip", 5, 0)
    writes.clear()
    os.utime(archive)  # touched, same bytes: digest says unchanged
    assert kg.ingest(archive).wrote is False and kg.ingest(archive).parsed == 0
    assert writes == []
    tgz = tmp_path / "zlib.tar.gz"
    with tarfile.open(tgz, "w:gz") as tf:
        tf.add(write_tree(tmp_path / "z", ZLIB_TREE), arcname="pkg")
    other = kg.ingest(tgz)
    assert (other.kind, other.new, other.reresolved) == ("tar", 1, 1)


def test_find_show_and_deps(kg, tiny):
    kg.ingest(tiny)
    assert [a["alias"] for a in kg.find("get")] == ["get-python-alt", "get-python3"]
    assert [a["alias"] for a in kg.find("get,-python3")] == ["get-python-alt"]
    assert [a["alias"] for a in kg.find("get,_conda.py312")] == ["get-python3"]
    assert [a["alias"] for a in kg.find("get,_nope")] == []
    assert {a["alias"] for a in kg.find("", kind="repo")} == {"test@tiny"}
    info = kg.show("app-hello")
    assert info["artifact"]["meta"]["deps"][0] == {"tags": "detect,os"}
    assert {d["target_alias"] for d in info["dependencies"]} == {
        "detect-os",
        "get-python3",
        "get-python-alt",
    }
    assert [u["tags"] for u in info["unresolved"]] == [["get", "zlib"]]
    assert {v["name"] for v in info["variations"]} == {"cuda", "conda"}
    assert info["source"]["complete"] is True
    assert [u["alias"] for u in kg.show(PY)["used_by"]] == ["app-hello"]
    tree = kg.deps("app-hello")
    children = {c["alias"]: c for c in tree["children"]}
    assert set(children) == {"detect-os", "get-python3", "get-python-alt", "get,zlib"}
    assert children["get,zlib"]["status"] == "missing"
    assert children["get-python-alt"]["status"] == "ambiguous"
    assert {v["via_variation"] for v in children["get-python3"]["via"]} == {"", "cuda", "conda"}

    def drawn(node):  # what the web page's figure draws of a tree
        return [(c["uid"], c["alias"], c["kind"], c["status"], c.get("repeat"), drawn(c))
                for c in node["children"]]  # fmt: skip

    brief = kg.deps("app-hello", via=False)  # the targets read, not each edge
    assert drawn(brief) == drawn(tree)
    assert [c["via"] for c in brief["children"] if c["status"] != "missing"] == [[]] * 3
    assert kg.deps("app-hello", depth=0)["children"] == []
    assert [c["alias"] for c in kg.deps("detect-os", reverse=True)["children"]] == ["app-hello"]
    with pytest.raises(NotFound, match="no artifact with alias or uid 'nope'"):
        kg.show("nope")
    with pytest.raises(UsageError, match="--depth must be 0 or more"):
        kg.deps("app-hello", depth=-1)


def test_alias_shared_by_two_sources_is_chosen_as_mlcflow_orders_them(kg, tiny, tmp_path):
    kg.ingest(tiny)
    kg.ingest(
        write_tree(
            tmp_path / "copy",
            {
                "script/detect-os/_cm.json": TREE["script/detect-os/_cm.json"].replace(
                    OS, "bbbbbbbbbbbbbbb2"
                )
            },
        )
    )
    # same `sort`: the folder decides, .../copy/script/detect-os before .../tiny/...
    shown = kg.show("detect-os")
    assert shown["artifact"]["uid"] == "bbbbbbbbbbbbbbb2"
    assert [c["uid"] for c in shown["choice"]["also_matched"]] == [OS]
    assert kg.show("detect-os", source="tiny")["artifact"]["uid"] == OS
    assert kg.show(OS)["artifact"]["uid"] == OS
    with pytest.raises(UsageError, match="--source 'elsewhere': none of the 2 artifacts"):
        kg.show("detect-os", source="elsewhere")


def test_unknown_format_is_a_usage_error(kg, tiny):
    with pytest.raises(UsageError, match="unknown format 'cmx'"):
        kg.ingest(tiny, fmt="cmx")


def test_cm4mlops_corpus_counts_match_pathlib(kg, corpora):
    root = corpora / "cm4mlops"
    folders = {p.parent for p in root.rglob("_cm.yaml")} | {
        p.parent for p in root.rglob("_cm.json")
    }
    summary = kg.ingest(root)
    assert summary.new == len(folders) + 1  # + the repository descriptor cmr.yaml
    assert summary.files == sum(1 for p in root.rglob("*") if p.is_file())
    scripts = {f for f in folders if f.parent.name == "script"}  # script/x and its templates
    assert count(kg, "MATCH (a:Artifact {kind: 'script'}) RETURN count(a) AS n") == len(scripts)
    entries = kg.query(
        "MATCH (a:Artifact {kind: 'script'})-[r:DEPENDS_ON]->() "
        "RETURN r.entry AS entry, r.matches AS matches"
    )
    ok = {e["entry"] for e in entries if e["matches"] == 1}
    total = len({e["entry"] for e in entries}) + count(
        kg, "MATCH (:Artifact {kind: 'script'})-[:NEEDS]->(u) RETURN count(u) AS n"
    )
    assert len(ok) / total >= 0.98
    again = kg.ingest(root)
    assert (again.parsed, again.wrote, again.unchanged) == (0, False, summary.new)


def test_progress_reports_files_artifacts_and_edges(kg, tiny):
    seen: dict[str, tuple[int, int]] = {}
    kg.ingest(tiny, progress=lambda stage, done, total: seen.__setitem__(stage, (done, total)))
    assert seen["files"] == (5, 5) and seen["artifacts"] == (5, 5)
    assert seen["edges"][0] == seen["edges"][1] > 0


def test_manifest_is_kept_per_store_under_ckg_home(kg, tiny):
    summary = kg.ingest(tiny)
    manifests = list((kg.home / "manifests").glob(f"*/{summary.uid}.json"))
    assert len(manifests) == 1
    data = json.loads(manifests[0].read_text())
    assert set(data["artifacts"]) == {PY, OS, APP, ALT, "aaaaaaaaaaaaaaa0"}
    assert ingest_mod.MANIFEST_VERSION == data["version"]


def test_ck_env_corpus_counts_match_pathlib(kg, corpora):
    root = corpora / "ck-env"
    entries = list(root.rglob(".cm/meta.json"))
    summary = kg.ingest(root)
    assert summary.new == len(entries) + 1  # + the repository descriptor .ckr.json
    kinds = kg.query("MATCH (a:Artifact {kind: 'soft'}) RETURN count(a) AS n")[0]["n"]
    assert kinds == len(list((root / "soft").glob("*/.cm/meta.json")))
    assert kg.ingest(root).parsed == 0


def test_ck_entry_change_in_info_json_rewrites_that_entry(kg, corpora, tmp_path):
    import shutil

    tree = tmp_path / "ck"
    for name in ("android.sdk", "autotuning.ccc"):
        shutil.copytree(corpora / "ck-env" / "soft" / name, tree / "soft" / name)
    for path in tree.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    assert kg.ingest(tree, fmt="ck").new == 2
    info = tree / "soft" / "android.sdk" / ".cm" / "info.json"
    info.write_text(info.read_text().replace("{", '{"note": "edited", ', 1))
    summary = kg.ingest(tree, fmt="ck")
    assert (summary.parsed, summary.changed, summary.unchanged) == (1, 1, 1)


def test_no_artifact_replaces_another_on_a_uid_clash(kg, tmp_path):
    """A copy of a repository whose root is both a repository (meta.yaml) and a Python
    project (pyproject.toml): its descriptor's uid is held by the first copy, and the uid it
    got instead must not be the generic project's, or the project would vanish."""
    first = write_tree(
        tmp_path / "one",
        {
            "meta.yaml": "alias: org@tools\nuid: 9cf241afa6074c00\n",
            "script/get-x/meta.yaml": "alias: get-x\nuid: 1111111111111111\n"
            "automation_alias: script\ntags: [get, x]\n",
        },
    )
    second = write_tree(
        tmp_path / "two",
        {
            "meta.yaml": "alias: org@tools\nuid: 9cf241afa6074c00\n",
            "pyproject.toml": '[project]\nname = "tools"\nversion = "1.0"\n'
            'dependencies = ["numpy>=1.26"]\n',
            "script/get-x/meta.yaml": "alias: get-x\nuid: 1111111111111111\n"
            "automation_alias: script\ntags: [get, x]\n",
        },
    )
    kg.ingest(first)
    summary = kg.ingest(second)
    rows = kg.query(
        "MATCH (s:Source)-[:CONTAINS]->(a:Artifact) WHERE s.location = $loc "
        "RETURN a.uid AS uid, a.kind AS kind ORDER BY kind",
        {"loc": str(second)},
    )
    kinds = sorted(r["kind"] for r in rows)
    assert "repo" in kinds and "script" in kinds and len(kinds) == 3, rows
    assert len({r["uid"] for r in rows}) == 3
    held = [str(w) for w in summary.warnings if "is held by" in str(w)]
    assert len(held) == 2 and any("org@tools" in w for w in held)


def test_one_door_ingest_brings_the_results_of_a_results_repository(kg, corpora, tmp_path):
    """``ckg ingest`` of a folder of published results imports them as ``ckg results import``
    would; a file removed takes its results with it; an unchanged folder reads nothing."""
    import shutil

    folder = tmp_path / "leaderboards"
    shutil.copytree(corpora / "pwc", folder)
    first = kg.ingest(folder)
    assert first.results == 1903
    count_results = "MATCH (r:Result {source_uid: $uid}) RETURN count(r) AS n"
    assert kg.query(count_results, {"uid": first.uid})[0]["n"] == 1903
    assert kg.ingest(folder).results == 0  # unchanged: nothing read again
    squad = len(json.loads((folder / "squad.json").read_text())[0]["datasets"])
    assert squad
    (folder / "squad.json").unlink()
    after = kg.ingest(folder)
    left = kg.query(count_results, {"uid": first.uid})[0]["n"]
    assert after.results == left < 1903
    assert not kg.query(
        "MATCH (r:Result {source_uid: $uid}) WHERE r.path = 'squad.json' RETURN r.uid AS uid",
        {"uid": first.uid},
    )
