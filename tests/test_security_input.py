"""Hostile sources: each attack on the importers costs one line, and the rest is still read.

One section per class of attack, with archives and folders built by the tests:
symbolic-link chains out of the extraction folder, tars of a million members, YAML alias
bombs, NUL, lone surrogates and runaway nesting in metas, and file names that are not UTF-8.
"""

import io
import json
import os
import tarfile
import tracemalloc
import zlib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ckg.cli import load_commands
from ckg.cli.app import app
from ckg.core.errors import InvalidInput, UnsafeArchive
from ckg.core.records import Problem
from ckg.formats import cm
from ckg.formats.archives import Limits
from ckg.formats.detect import detect_formats
from ckg.formats.loaders import MAX_YAML_NODES, Loaded, load
from ckg.formats.sources import open_source, walk_files
from tests.test_archives import link, write_tar, write_zip
from tests.test_ingest import write_tree

load_commands()  # every command on app, as `ckg --help` lists them

GOOD = "alias: good\nuid: 0000000000000001\nautomation_alias: script\ntags: [good, demo]\n"


def cli(*args: str):
    result = CliRunner().invoke(app, ["--db", "embedded", *args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def ingest_json(source: Path) -> dict:
    result = cli("ingest", str(source), "--json")
    assert result.exit_code == 0, result.output
    [summary] = json.loads(result.output)
    return summary


def found_aliases(tags: str) -> list[str]:
    return [a["alias"] for a in json.loads(cli("find", "--tags", tags, "--json").output)]


# --- symbolic-link chains ------------------------------------------------------------------


def escape_chain(secret: Path, depth: int = 40) -> list[tuple[str, str]]:
    """Three links that each point inside when made in this order, and together reach ``secret``.

    ``up`` is made while ``d/.../d/l`` does not exist yet, so it reads as the root; once
    ``d/.../d/l`` points back at the root, ``up`` climbs ``depth + 1`` levels above it: ``/``.
    """
    deep = "/".join(["d"] * depth)
    return [
        ("script/leak/_cm.yaml", f"../../up{secret}"),
        ("up", f"{deep}/l/" + "../" * (depth + 1)),
        (f"{deep}/l", "../" * depth),
    ]


def archive_with_links(path: Path, links: list[tuple[str, str]]) -> Path:
    files = {"script/good/_cm.yaml": GOOD.encode()}
    if path.suffix == ".zip":
        return write_zip(path, files, dict(links))
    return write_tar(path, [*files.items(), *(link(name, to) for name, to in links)])


@pytest.mark.parametrize("suffix", [".zip", ".tar.gz"])
def test_symlink_chain_escaping_the_root_is_refused(tmp_path, suffix):
    secret = tmp_path / "outside" / "_cm.yaml"
    write_tree(secret.parent, {"_cm.yaml": "alias: leak\nuid: 0000000000000009\ntags: [secret]\n"})
    archive = archive_with_links(tmp_path / "in" / f"chain{suffix}", escape_chain(secret))
    with pytest.raises(UnsafeArchive, match=r"link 'script/leak/_cm.yaml' points outside"):
        open_source(archive, cache=tmp_path / "cache")
    assert list((tmp_path / "cache" / "archives").iterdir()) == []


@pytest.mark.parametrize("suffix", [".zip", ".tar.gz"])
def test_symlink_chain_that_stays_inside_is_kept(tmp_path, suffix):
    links = [("c", "a/_cm.yaml"), ("a", "b"), ("b", "script/good")]
    archive = archive_with_links(tmp_path / "in" / f"inside{suffix}", links)
    tree = open_source(archive, cache=tmp_path / "cache")
    assert (tree.root / "c").read_text() == GOOD


# --- a million tar members -----------------------------------------------------------------


def tar_of_empty_files(path: Path, count: int) -> Path:
    """A gzipped tar of ``count`` empty files ``m/0000000``... whose end is not gzip: one header
    template, its name digits and checksum filled in, so a million members take about two
    seconds to write. A reader that went on past its member limit would fail on the end instead
    of refusing the count."""
    info = tarfile.TarInfo("m/0000000")
    template = bytearray(info.tobuf(tarfile.USTAR_FORMAT))
    template[148:156] = b" " * 8  # the checksum is summed with its own field as spaces
    base = sum(template) - sum(b"0000000")
    head, tail, rest = bytes(template[:2]), bytes(template[9:148]), bytes(template[156:])
    gzip = zlib.compressobj(1, zlib.DEFLATED, 31)
    with open(path, "wb") as out:
        for start in range(0, count, 10_000):
            headers = []
            for i in range(start, min(start + 10_000, count)):
                digits = b"%07d" % i
                checksum = b"%06o\0 " % (base + sum(digits))
                headers.append(b"".join((head, digits, tail, checksum, rest)))
            out.write(gzip.compress(b"".join(headers)))
        out.write(gzip.flush() + b"not gzip: the member limit must stop the reader before this")
    return path


@pytest.fixture(scope="session")
def million_member_tar(tmp_path_factory) -> Path:
    return tar_of_empty_files(tmp_path_factory.mktemp("tar") / "million.tar.gz", 1_000_000)


def test_tar_of_a_million_members_is_refused_at_the_limit_under_100mb(million_member_tar, tmp_path):
    refused = "more than 100000 members"
    with pytest.raises(UnsafeArchive, match=refused):
        open_source(million_member_tar, cache=tmp_path / "streamed", limits=Limits())
    tracemalloc.start()  # a second run: tracing slows allocation down several times
    try:
        with pytest.raises(UnsafeArchive, match=refused):
            open_source(million_member_tar, cache=tmp_path / "traced", limits=Limits())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 100 << 20


@pytest.mark.parametrize("fmt", [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_member_limit_counts_members_not_long_name_headers(tmp_path, fmt):
    archive = tmp_path / "long.tar"
    with tarfile.open(archive, "w", format=fmt) as tf:
        for i in range(10):
            tf.addfile(tarfile.TarInfo(f"{'x' * 120}/{i}"), io.BytesIO())
    tree = open_source(archive, cache=tmp_path / "ten", limits=Limits(max_members=10))
    assert len(list(tree.files())) == 10
    with pytest.raises(UnsafeArchive, match="more than 9 members"):
        open_source(archive, cache=tmp_path / "nine", limits=Limits(max_members=9))


# --- YAML alias bombs ----------------------------------------------------------------------


def alias_bomb(levels: int = 9) -> str:
    """Half a kilobyte of YAML whose aliases expand to 9 ** (levels + 1) strings."""
    lines = [
        "alias: bomb",
        "uid: 0000000000000002",
        "l0: &l0 [lol,lol,lol,lol,lol,lol,lol,lol,lol]",
    ]
    for i in range(1, levels + 1):
        lines.append(f"l{i}: &l{i} [{','.join([f'*l{i - 1}'] * 9)}]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    "bomb",
    [alias_bomb(), "alias: bomb\nloop: &a [lol, *a]\n"],
    ids=["billion-laughs", "alias-of-its-own-ancestor"],
)
def test_yaml_alias_bomb_is_skipped_at_the_node_limit(tmp_path, bomb):
    root = write_tree(
        tmp_path / "src", {"script/good/_cm.yaml": GOOD, "script/bomb/_cm.yaml": bomb}
    )
    assert len(bomb) <= 1024
    refused = isinstance(load(root / "script" / "bomb" / "_cm.yaml", root), Problem)
    assert refused, "the bomb was loaded"  # not its repr: that would expand it
    records = cm.read(root, "src", detect_formats(root)["cm"])
    [warning] = records.warnings
    assert warning.path == "script/bomb/_cm.yaml" and warning.line is not None
    assert (
        warning.message == f"YAML aliases expand to more than {MAX_YAML_NODES} nodes; file skipped"
    )
    assert [n.props["alias"] for n in records.nodes] == ["good"]


def test_yaml_aliases_of_ordinary_size_still_load(tmp_path):
    text = "base: &b {tags: [a, b]}\nvariations:\n  x: *b\n  y: *b\nnote: 'a && b'\n"
    (tmp_path / "_cm.yaml").write_text(text)
    doc = load(tmp_path / "_cm.yaml", tmp_path)
    assert isinstance(doc, Loaded) and doc.data["variations"]["y"] == {"tags": ["a", "b"]}


def test_yaml_alias_bomb_in_a_source_costs_one_warning(ckg_home, tmp_path):
    root = write_tree(
        tmp_path / "src", {"script/good/_cm.yaml": GOOD, "script/bomb/_cm.yaml": alias_bomb()}
    )
    summary = ingest_json(root)
    assert [w["path"] for w in summary["warnings"]] == ["script/bomb/_cm.yaml"]
    assert found_aliases("good") == ["good"]


# --- NUL, lone surrogates and nesting in metas ---------------------------------------------

BAD_STRINGS = {
    "tag, JSON escape": ("_cm.json", '{"alias": "x",\n "tags": ["a\\u0000b"]}', 2, "string"),
    "key, YAML escape": ("_cm.yaml", 'alias: x\nvariations:\n  "v\\0": {}\n', 3, "key"),
    "nested value": ("_cm.yaml", 'alias: x\nenv:\n  K: "\\x00"\n', 3, "string"),
    "TOML value": ("pyproject.toml", '[project]\nname = "a\\u0000"\n', None, "string"),
}


@pytest.mark.parametrize("case", list(BAD_STRINGS))
def test_nul_in_any_string_of_a_meta_is_one_problem(tmp_path, case):
    name, text, line, part = BAD_STRINGS[case]
    (tmp_path / name).write_text(text)
    assert load(tmp_path / name, tmp_path) == Problem(
        name, f"NUL character in a {part}; file skipped", line
    )


def test_lone_surrogate_in_a_json_meta_is_one_problem(tmp_path):
    (tmp_path / "meta.json").write_text('{"alias": "x", "tags": ["\\ud800"]}')
    problem = load(tmp_path / "meta.json", tmp_path)
    assert problem == Problem(
        "meta.json", "lone surrogate (not valid UTF-8) in a string; file skipped", 1
    )


def test_backslashes_without_nul_load_as_before(tmp_path):
    (tmp_path / "_cm.json").write_text('{"path": "C:\\\\tools\\\\x", "re": "\\\\d+\\u00e9"}')
    doc = load(tmp_path / "_cm.json", tmp_path)
    assert isinstance(doc, Loaded) and doc.data == {"path": "C:\\tools\\x", "re": "\\d+é"}


@pytest.mark.parametrize(
    "name,text",
    [("_cm.json", "[" * 100_000 + "]" * 100_000), ("pyproject.toml", "x = " + "[" * 100_000)],
)
def test_meta_nested_past_the_recursion_limit_is_one_problem(tmp_path, name, text):
    (tmp_path / name).write_text(text)
    problem = load(tmp_path / name, tmp_path)
    assert isinstance(problem, Problem) and problem.message.endswith("nested too deeply")


def test_nul_in_a_meta_skips_that_file_and_ingests_the_rest(kg, tmp_path):
    root = write_tree(
        tmp_path / "src",
        {
            "script/good/_cm.yaml": GOOD,
            "script/nul-tag/_cm.json": '{"alias": "nul-tag", "tags": ["demo", "a\\u0000b"]}',
            "script/nul-name/_cm.yaml": 'alias: "nul\\0name"\ntags: [demo]\n',
            "script/surrogate/_cm.json": '{"alias": "surrogate", "tags": ["demo\\udc80"]}',
        },
    )
    summary = kg.ingest(root)
    assert sorted(w.path for w in summary.warnings) == [
        "script/nul-name/_cm.yaml",
        "script/nul-tag/_cm.json",
        "script/surrogate/_cm.json",
    ]
    assert [a["alias"] for a in kg.find("demo")] == ["good"]
    assert kg.store.get_node("Source", summary.uid)["complete"] is True


# --- file names that are not UTF-8 ---------------------------------------------------------


def tree_with_non_utf8_names(root: Path) -> Path:
    """A good script, a script folder named ``bad\\xff`` and a stray file ``notes\\xfe``."""
    write_tree(root, {"script/good/_cm.yaml": GOOD})
    bad = os.path.join(os.fsencode(root), b"script", b"bad\xff")
    os.mkdir(bad)
    Path(os.fsdecode(os.path.join(bad, b"_cm.yaml"))).write_text("alias: bad\ntags: [demo]\n")
    Path(os.fsdecode(os.path.join(os.fsencode(root), b"notes\xfe"))).write_text("x")
    return root


def tar_with_non_utf8_names(path: Path) -> Path:
    with tarfile.open(path, "w:gz", encoding="utf-8", errors="surrogateescape") as tf:
        for name, text in (("script/good/_cm.yaml", GOOD), ("script/bad\udcff/_cm.yaml", "x: 1\n")):
            info = tarfile.TarInfo(name)
            info.size = len(text)
            tf.addfile(info, io.BytesIO(text.encode()))
    return path


def test_non_utf8_names_are_left_out_and_named_by_detection(tmp_path):
    root = tree_with_non_utf8_names(tmp_path / "src")
    detected = detect_formats(root)
    assert dict(detected) == {"cm": [root / "script" / "good" / "_cm.yaml"]}
    assert sorted(detected.problems, key=lambda p: p.path) == [
        Problem("notes\\xfe", "name is not valid UTF-8; skipped"),
        Problem("script/bad\\xff", "name is not valid UTF-8; skipped"),
    ]
    assert [e.name for e in walk_files(root)] == ["_cm.yaml"]


@pytest.mark.parametrize("kind", ["folder", "tar"])
def test_non_utf8_names_do_not_end_the_ingest(ckg_home, tmp_path, kind):
    if kind == "folder":
        source = tree_with_non_utf8_names(tmp_path / "src")
    else:
        source = tar_with_non_utf8_names(tmp_path / "src.tar.gz")
    summary = ingest_json(source)
    assert summary["new"] == 1
    assert found_aliases("good") == ["good"]


def test_non_utf8_names_are_named_in_the_ingest_warnings(ckg_home, tmp_path):
    summary = ingest_json(tree_with_non_utf8_names(tmp_path / "src"))
    assert sorted(w["path"] for w in summary["warnings"]) == ["notes\\xfe", "script/bad\\xff"]


def test_zip_whose_names_are_flagged_utf8_but_are_not_is_one_error(tmp_path):
    archive = write_zip(tmp_path / "in" / "names.zip", {"script/bXd/_cm.yaml": b"x: 1\n"})
    data = archive.read_bytes().replace(b"script/bXd", b"script/b\xffd")
    central = data.index(b"PK\x01\x02")  # general purpose flags: bit 11 says names are UTF-8
    flags = int.from_bytes(data[central + 8 : central + 10], "little") | 0x800
    archive.write_bytes(data[: central + 8] + flags.to_bytes(2, "little") + data[central + 10 :])
    with pytest.raises(InvalidInput, match=r"names.zip: corrupt or truncated archive \('utf-8'"):
        open_source(archive, cache=tmp_path / "cache")
