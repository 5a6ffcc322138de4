"""ckg.formats.loaders.construct_tree builds what PyYAML's own constructor builds, or fails as it
fails: on every YAML file of the shared corpora and on the shapes it hands back to PyYAML."""

import math
import sys

import pytest
import yaml

from ckg.formats.loaders import _Loader, construct_tree, load
from tests.fixtures_store import corpora  # noqa: F401 - fixture


def typed(value):
    """``value`` with the type of every part spelt out: ``1 == True`` and ``nan != nan``."""
    if isinstance(value, dict):
        return ("dict", [(typed(k), typed(v)) for k, v in value.items()])
    if isinstance(value, list | tuple | set):
        items = sorted(map(repr, value)) if isinstance(value, set) else map(typed, value)
        return (type(value).__name__, list(items))
    if isinstance(value, float) and math.isnan(value):
        return ("float", "nan")
    return (type(value).__name__, repr(value))


def pyyaml(text: str):
    """PyYAML's own result for ``text``, or its error as (type, message): a YAMLError, or
    a ValueError where a tagged scalar does not read (``!!int nope``)."""
    try:
        return typed(yaml.load(text, Loader=_Loader))
    except (yaml.YAMLError, ValueError) as e:
        return (type(e).__name__, str(e))


def ours(text: str):
    loader = _Loader(text)
    try:
        return typed(construct_tree(loader, loader.get_single_node()))
    except (yaml.YAMLError, ValueError) as e:
        return (type(e).__name__, str(e))
    finally:
        loader.dispose()


def test_every_corpus_yaml_file_builds_the_same_data(corpora):  # noqa: F811
    files = [p for p in sorted(corpora.rglob("*")) if p.suffix in (".yaml", ".yml")]
    assert len(files) > 600  # cm4mlops and mlperf-automations alone hold more
    differ = []
    for path in files:
        text = path.read_text(encoding="utf-8-sig", errors="replace")
        if "&" in text or not text.strip():  # anchors go to PyYAML itself in load()
            continue
        if ours(text) != pyyaml(text):
            differ.append(str(path.relative_to(corpora)))
    assert differ == []


@pytest.mark.parametrize(
    "text",
    [
        "a: 1\nb: [yes, no, ~, 0x1F, 1_000, 1:20, .inf, -.inf, .nan, 2.5e3, '1']\n",
        "when: 2024-01-02\nat: 2024-01-02 03:04:05.5+01:00\n",
        "blob: !!binary aGVsbG8=\nn: !!str 123\nf: !!float 1\n",
        "<<: {a: 1, b: 2}\nb: 3\n",  # a merge key without anchors
        "=: the value key\n",
        "? [a, b]\n: complex key\n",
        "s: !!set {a, b}\no: !!omap [a: 1, b: 2]\np: !!pairs [a: 1, a: 2]\n",
        "dup: 1\ndup: 2\n",
        "1: int key\ntrue: bool key\n~: null key\n3.5: float key\n",
        "x: !custom 1\n",  # an unknown tag: PyYAML's error, line included
        "a: !!int nope\nb: !!float nope\n",  # two errors: the one PyYAML meets first
        "a: !!map [1, 2]\n",
        "top: " + "[" * 300 + "]" * 300 + "\n",
        "- " * 200 + "deep\n",
    ],
)
def test_unusual_shapes_build_or_fail_as_pyyaml_does(text):
    assert ours(text) == pyyaml(text)


def test_nesting_deeper_than_the_recursion_limit_is_built_by_pyyaml():
    # construct_tree recurses once a level; PyYAML's constructor does not recurse, and
    # takes over where Python's limit is met (libyaml itself reads up to 1000 levels)
    text = "a: " + "[" * 300 + "]" * 300 + "\n"
    loader = _Loader(text)
    node = loader.get_single_node()
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(150)
    try:
        data = construct_tree(loader, node)
    finally:
        sys.setrecursionlimit(limit)
    assert typed(data) == pyyaml(text)


def test_nesting_as_deep_as_libyaml_reads_is_built_whole(tmp_path):
    depth = 990
    (tmp_path / "deep.yaml").write_text("a: " + "[" * depth + "]" * depth + "\n")
    value, seen = load(tmp_path / "deep.yaml", tmp_path).data["a"], 1
    while value:
        value, seen = value[0], seen + 1
    assert seen == depth
