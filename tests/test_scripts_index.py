"""The script index as saved and loaded again: each script as it was saved, read and made on
first use (:mod:`ckg.run.scripts.index`)."""

from ckg.run.scripts.index import Script, load_index, save_index


def _script(uid: str, alias: str, tags: list[str], **meta) -> Script:
    return Script(
        uid,
        alias,
        tags,
        {"alias": alias, **meta},
        f"/repo/script/{alias}",
        "/repo",
        source_uid="src1",
        format="cm",
    )


def test_a_loaded_index_gives_each_script_as_saved(tmp_path):
    saved = [
        _script("a1", "get-x", ["get", "x"], variations={"v": {}}),
        _script("b2", "get-x-alt", ["get", "x"], sort=-1),
        _script("c3", "detect-os", ["detect", "os"]),
        _script('d"4\tä', "odd-uid", ["odd"], description="a line\nand a tab\t"),
    ]
    path = tmp_path / "index.json"
    save_index(path, saved)
    index = load_index(path, prefer="src1")
    scripts = index.scripts
    assert len(scripts) == 4 and list(scripts) == ["a1", "b2", "c3", 'd"4\tä']
    assert "c3" in scripts and "zz" not in scripts and scripts.get("zz") is None
    for before in saved:
        after = scripts[before.uid]
        assert after.to_dict() == before.to_dict()
        assert after.meta == before.meta
    assert [s.alias for s in scripts.values()] == ["get-x", "get-x-alt", "detect-os", "odd-uid"]
    assert [s.alias for s in index.find(["get", "x"], [])] == ["get-x-alt", "get-x"]
    assert [s.alias for s in index.find(["get", "x"], ["v"])] == ["get-x"]
