"""ckg.formats.archives: zip and tar extracted safely through open_source, bombs refused."""

import io
import os
import tarfile
import zipfile
from pathlib import Path

import pytest

from ckg.core.errors import InvalidInput, UnsafeArchive
from ckg.formats.archives import Limits
from ckg.formats.sources import open_source


def files_under(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if not p.is_dir()}


@pytest.fixture
def sandbox(tmp_path):
    """A cache folder inside a sandbox whose other contents must never change."""
    box = tmp_path / "box"
    box.mkdir()
    (box / "keep.txt").write_text("untouched")
    return box


def assert_nothing_outside(sandbox: Path, tmp_path: Path) -> None:
    """Only the cache folder may have changed under tmp_path (archives sit beside it)."""
    assert (sandbox / "keep.txt").read_text() == "untouched"
    outside = {p.name for p in tmp_path.iterdir()} - {"box", "in"}
    assert outside == set(), outside
    assert {p.name for p in sandbox.iterdir()} <= {"keep.txt", "cache"}
    archives = sandbox / "cache" / "archives"
    if archives.exists():
        assert list(archives.iterdir()) == [], "a refused archive left files in the cache"


def write_zip(path: Path, members: dict[str, bytes], links: dict[str, str] | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = 0o120777 << 16
            zf.writestr(info, target)
    return path


def write_tar(path: Path, members: list[tarfile.TarInfo | tuple[str, bytes]], mode="w:gz") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, mode) as tf:
        for member in members:
            if isinstance(member, tarfile.TarInfo):
                tf.addfile(member)
            else:
                name, data = member
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    return path


def link(name: str, target: str, kind=tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


META = b"alias: hello\nuid: 0123456789abcdef\ntags: [hello, demo]\n"


@pytest.mark.parametrize("suffix", [".zip", ".whl"])
def test_zip_is_extracted_once_and_reused(tmp_path, suffix):
    archive = write_zip(tmp_path / "in" / f"a{suffix}", {"script/hello/_cm.yaml": META})
    tree = open_source(archive, cache=tmp_path / "cache")
    assert tree.kind == "zip" and len(tree.digest) == 64
    assert files_under(tree.root) == {"script/hello/_cm.yaml", ".ckg-extracted"}
    assert [e.name for e in tree.files()] == ["_cm.yaml"]
    marker = tree.root / "script" / "hello" / "_cm.yaml"
    before = marker.stat().st_mtime_ns
    again = open_source(archive, cache=tmp_path / "cache")
    assert again.root == tree.root and marker.stat().st_mtime_ns == before


@pytest.mark.parametrize(
    "mode,suffix",
    [
        ("w", ".tar"),
        ("w:gz", ".tgz"),
        ("w:bz2", ".tar.bz2"),
        ("w:xz", ".tar.xz"),
        ("w:gz", ".tar.gz"),
    ],
)
def test_tar_formats_extract_with_inner_links(tmp_path, mode, suffix):
    archive = write_tar(
        tmp_path / "in" / f"a{suffix}",
        [
            ("pkg/script/hello/_cm.yaml", META),
            link("pkg/alias.yaml", "script/hello/_cm.yaml"),
            link("pkg/copy.yaml", "pkg/script/hello/_cm.yaml", tarfile.LNKTYPE),
        ],
        mode,
    )
    tree = open_source(archive, cache=tmp_path / "cache")
    assert tree.kind == "tar"
    assert (tree.root / "pkg" / "alias.yaml").read_bytes() == META
    assert (tree.root / "pkg" / "copy.yaml").read_bytes() == META
    assert not (tree.root / "pkg" / "copy.yaml").is_symlink()


HOSTILE_ZIPS = {
    "zip slip": ({"../../evil.txt": b"x"}, None, "'../../evil.txt' would land outside"),
    "absolute": ({"/tmp/evil.txt": b"x"}, None, "'/tmp/evil.txt' would land outside"),
    "symlink escape": ({"a.txt": b"x"}, {"up": "../../.."}, "link 'up' points outside"),
    "absolute symlink": ({}, {"etc": "/etc"}, "link 'etc' points outside"),
}


@pytest.mark.parametrize("case", list(HOSTILE_ZIPS))
def test_hostile_zip_is_refused_and_writes_nothing(tmp_path, sandbox, case):
    members, links, message = HOSTILE_ZIPS[case]
    archive = write_zip(tmp_path / "in" / "bad.zip", members, links)
    with pytest.raises(UnsafeArchive, match=message):
        open_source(archive, cache=sandbox / "cache")
    assert_nothing_outside(sandbox, tmp_path)


def test_hostile_tar_members_are_refused_and_write_nothing(tmp_path, sandbox):
    fifo = tarfile.TarInfo("pipe")
    fifo.type = tarfile.FIFOTYPE
    device = tarfile.TarInfo("disk")
    device.type = tarfile.BLKTYPE
    cases = {
        "slip": ([("ok.txt", b"ok"), ("a/../../evil.txt", b"x")], "would land outside"),
        "absolute": ([("/etc/evil", b"x")], "'/etc/evil' would land outside"),
        "symlink": ([link("s", "../outside")], "link 's' points outside"),
        "symlink chain": ([link("d", "."), link("d/e", "../../x")], "link 'd/e' points outside"),
        "hardlink": ([link("h", "/etc/passwd", tarfile.LNKTYPE)], "hard link 'h' points outside"),
        "hardlink up": ([link("h", "../x", tarfile.LNKTYPE)], "hard link 'h' points outside"),
        "fifo": ([fifo], "'pipe' is a device or FIFO"),
        "device": ([device], "'disk' is a device or FIFO"),
    }
    for name, (members, message) in cases.items():
        archive = write_tar(tmp_path / "in" / f"{name.replace(' ', '-')}.tar", members, "w")
        with pytest.raises(UnsafeArchive, match=message):
            open_source(archive, cache=sandbox / "cache")
        assert_nothing_outside(sandbox, tmp_path)


def test_bombs_are_refused_by_ratio_size_and_count(tmp_path, sandbox):
    zeros = b"\0" * (8 << 20)  # 8 MiB of zeros deflate to about 8 KiB: ratio near 1000
    by_ratio = write_zip(tmp_path / "in" / "ratio.zip", {"zeros.bin": zeros})
    with pytest.raises(UnsafeArchive, match="ratio above 200"):
        open_source(by_ratio, cache=sandbox / "cache")
    tar_ratio = write_tar(tmp_path / "in" / "ratio.tgz", [("zeros.bin", zeros)])
    with pytest.raises(UnsafeArchive, match="compression ratio above 200"):
        open_source(tar_ratio, cache=sandbox / "cache")
    by_size = write_zip(tmp_path / "in" / "size.zip", {"a.bin": os.urandom(4000)})
    with pytest.raises(UnsafeArchive, match="more than 1000 bytes"):
        open_source(by_size, cache=sandbox / "cache", limits=Limits(max_bytes=1000))
    many = write_zip(tmp_path / "in" / "many.zip", {f"f{i}": b"x" for i in range(20)})
    with pytest.raises(UnsafeArchive, match="more than 10 members"):
        open_source(many, cache=sandbox / "cache", limits=Limits(max_members=10))
    assert_nothing_outside(sandbox, tmp_path)


def test_limits_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("CKG_ARCHIVE_MAX_BYTES", "1234")
    assert Limits.from_env().max_bytes == 1234
    assert Limits.from_env(max_bytes=5).max_bytes == 5
    monkeypatch.setenv("CKG_ARCHIVE_MAX_RATIO", "lots")
    with pytest.raises(InvalidInput, match="CKG_ARCHIVE_MAX_RATIO='lots' is not a number"):
        Limits.from_env()


@pytest.mark.parametrize("suffix", [".zip", ".tar.gz", ".tar.xz"])
def test_corrupt_or_truncated_archive_is_one_clear_error(tmp_path, sandbox, suffix):
    good = tmp_path / "in" / f"good{suffix}"
    payload = {"a.txt": os.urandom(50_000)}
    if suffix == ".zip":
        write_zip(good, payload)
    else:
        write_tar(good, list(payload.items()), "w:gz" if suffix == ".tar.gz" else "w:xz")
    data = good.read_bytes()
    truncated = tmp_path / "in" / f"cut{suffix}"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(InvalidInput, match=r"cut.*: corrupt or truncated archive"):
        open_source(truncated, cache=sandbox / "cache")
    garbage = tmp_path / "in" / f"junk{suffix}"
    garbage.write_bytes(b"this is not an archive at all" * 10)
    with pytest.raises(InvalidInput, match=r"junk.*: corrupt or truncated archive"):
        open_source(garbage, cache=sandbox / "cache")
    assert_nothing_outside(sandbox, tmp_path)
