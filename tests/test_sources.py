"""ckg.formats.sources: what a location names, folders read in place, provenance."""

import pytest

from ckg.core.errors import InvalidInput, NotFound
from ckg.formats.sources import kind_of, open_source, source_uid

META = b"alias: hello\nuid: 0123456789abcdef\ntags: [hello, demo]\n"


def test_kind_of_names_every_supported_location(tmp_path):
    assert kind_of("git@github.com:mlcommons/ck.git") == "git"
    assert [kind_of(f"a{s}") for s in (".tgz", ".tar.bz2", ".tar.xz", ".tar")] == ["tar"] * 4
    assert kind_of(str(tmp_path)) == "dir"
    (tmp_path / ".git").mkdir()
    assert kind_of(str(tmp_path)) == "git"


def test_folder_is_used_in_place(tmp_path):
    (tmp_path / "script" / "hello").mkdir(parents=True)
    (tmp_path / "script" / "hello" / "_cm.yaml").write_bytes(META)
    tree = open_source(tmp_path, cache=tmp_path / "cache")
    assert (tree.kind, tree.root, tree.uid) == ("dir", tmp_path, source_uid(str(tmp_path)))
    assert [e.name for e in tree.files()] == ["_cm.yaml"]
    assert not (tmp_path / "cache").exists()


def test_missing_source_and_ref_on_folder_are_refused(tmp_path):
    with pytest.raises(NotFound, match="nowhere"):
        open_source(tmp_path / "nowhere", cache=tmp_path)
    with pytest.raises(InvalidInput, match="--ref 'v1' applies to Git sources only"):
        open_source(tmp_path, ref="v1", cache=tmp_path / "cache")
