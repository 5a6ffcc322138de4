"""Read YAML, JSON and TOML meta files fast, keeping what is needed to name lines in warnings.

YAML goes through libyaml's ``CSafeLoader`` when PyYAML was built with it (about 6x faster
than the pure-Python loader on CM metas); the composed node tree is kept so that a warning
can name the line of a key without a second parse. JSON has no node tree: the line of a key
is found by searching the text, which is only done when a warning needs it.

A file that cannot be read gives one :class:`~ckg.records.Problem` naming file and line and
no data; the caller goes on with the rest of the source. So does a file no graph can hold or
no reader survives: YAML whose aliases expand past :data:`MAX_YAML_NODES` nodes (a "billion
laughs" bomb of a kilobyte), and a string or key holding NUL or a lone surrogate (escapes
such as ``\\u0000`` or ``\\ud800``), which the stores refuse.
"""

import hashlib
import json
import re
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ckg.records import Problem, Records
from importers.files import read_file

#: Most nodes a YAML document with anchors may expand to once its aliases are followed: the
#: largest meta of the corpora has 4,505 nodes, a billion-laughs bomb has billions.
MAX_YAML_NODES = 100_000
#: An anchor (``&name``) where YAML allows one: at the start, after a space or a flow
#: indicator. Searched before any alias is followed, as documents without one cannot expand.
_ANCHOR = re.compile(r"&(?<=(?<![^\s\[{,:])&)[^\s\[\]{},&]")
#: The escapes that make NUL or a lone surrogate in YAML, JSON or TOML (``\0``, ``\x00``,
#: ``\u0000``, ``\U00000000``, ``\ud800``-``\udfff``): decoded text holds neither itself.
_NUL_OR_SURROGATE_ESCAPE = re.compile(
    r"\\(?:0|x00|u0000|U00000000|u[dD][89a-fA-F]|U0000[dD][89a-fA-F])"
)

try:
    from yaml import CSafeLoader as _Loader
except ImportError:  # PyYAML built without libyaml: correct, only slower
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]


@dataclass(slots=True)
class Loaded:
    """One parsed file: its data, where it came from, and what finds lines in it.

    ``rel`` is the path relative to the source root (POSIX separators), ``raw`` the bytes
    as read (for the digest), ``node`` the YAML node tree (None for JSON and TOML), ``text``
    the decoded text.
    """

    rel: str
    data: Any
    raw: bytes
    text: str
    node: yaml.Node | None = None

    def line_of(self, *keys: str | int) -> int | None:
        """Line (1-based) of the last key of ``keys`` in this file, or None if unknown.

        Examples
        --------
        >>> doc = Loaded("m.yaml", None, b"", "", yaml.compose("a:\\n  b: 1\\n"))
        >>> doc.line_of("a", "b")
        2
        """
        if self.node is not None:
            return _yaml_line(self.node, keys)
        # JSON has no node tree: find each quoted key after the previous one, which lands on
        # the right line for the keys warnings name (list positions are skipped)
        at = found = 0
        for key in keys:
            if isinstance(key, str):
                hit = self.text.find(json.dumps(key, ensure_ascii=False) + ":", at)
                if hit < 0:
                    break
                at, found = hit, 1
        return self.text.count("\n", 0, at) + 1 if found else None


def _yaml_line(node: yaml.Node, keys: tuple[str | int, ...]) -> int | None:
    line = node.start_mark.line + 1
    for key in keys:
        if isinstance(node, yaml.MappingNode) and isinstance(key, str):
            for knode, vnode in node.value:
                if knode.value == key:
                    line, node = knode.start_mark.line + 1, vnode
                    break
            else:
                return line
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def relpath(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` with POSIX separators ("." for root itself).

    String slicing, because ``PurePath.relative_to`` costs about 0.1 ms a call (a sixth of a
    CM meta's parse time) and ``path`` is always under ``root`` here.

    >>> relpath(Path("/r/script/a/_cm.yaml"), Path("/r"))
    'script/a/_cm.yaml'
    """
    p, r = str(path), str(root)
    if p == r:
        return "."
    rel = p[len(r) :].lstrip("/\\") if p.startswith(r) else p
    return rel.replace("\\", "/")


def digest(*raws: bytes) -> str:
    """sha256 hex digest of the concatenated bytes of one artifact's meta files."""
    h = hashlib.sha256()
    for raw in raws:
        h.update(raw)
    return h.hexdigest()


def load(path: Path, root: Path) -> Loaded | Problem:
    """Parse ``path`` by its suffix (.yaml/.yml/.cff, .json, .toml); a Problem if it can't.

    Examples
    --------
    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp()); _ = (d / "x.json").write_text('{"a": [1,')
    >>> str(load(d / "x.json", d))
    'x.json:1: invalid JSON: Expecting value (column 10)'
    """
    rel = relpath(path, root)
    try:
        raw = read_file(path, root)  # no FIFO, no link out of the source, bounded
        text = raw.decode("utf-8-sig")
    except OSError as e:
        return Problem(rel, f"cannot read: {e.strerror or e}")
    except UnicodeDecodeError as e:
        return Problem(rel, f"not UTF-8 text: {e.reason} at byte {e.start}")
    suffix = path.suffix.lower()
    if suffix == ".json":
        try:
            return _checked(Loaded(rel, json.loads(text), raw, text))
        except json.JSONDecodeError as e:
            return Problem(rel, f"invalid JSON: {e.msg} (column {e.colno})", e.lineno)
        except RecursionError:  # a few hundred kilobytes of "[" would end the whole ingest
            return Problem(rel, "invalid JSON: nested too deeply")
    if suffix == ".toml":
        try:
            return _checked(Loaded(rel, tomllib.loads(text), raw, text))
        except RecursionError:
            return Problem(rel, "invalid TOML: nested too deeply")
        except tomllib.TOMLDecodeError as e:
            # Python 3.12's TOMLDecodeError has no lineno attribute; its message ends with it
            m = re.search(r"at line (\d+)", str(e))
            line = int(m.group(1)) if m else text.count("\n") + 1  # "at end of document"
            return Problem(rel, f"invalid TOML: {e}", line)
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            data = None
        elif _ANCHOR.search(text):
            bomb = _expansion_over(node, MAX_YAML_NODES)
            if bomb is not None:
                msg = f"YAML aliases expand to more than {MAX_YAML_NODES} nodes; file skipped"
                return Problem(rel, msg, bomb.start_mark.line + 1)
            data = loader.construct_document(node)
        else:
            data = construct_tree(loader, node)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark else None
        return Problem(rel, f"invalid YAML: {e.problem or e.context}", line)
    except yaml.YAMLError as e:
        return Problem(rel, f"invalid YAML: {e}")
    finally:
        loader.dispose()
    return _checked(Loaded(rel, data, raw, text, node))


_STR, _SEQ, _MAP = (f"tag:yaml.org,2002:{t}" for t in ("str", "seq", "map"))
#: Keys that PyYAML's mapping constructor rewrites before building: merges and ``=``.
_REWRITTEN_KEYS = frozenset({"tag:yaml.org,2002:merge", "tag:yaml.org,2002:value"})


class _Unusual(Exception):
    """A node that :func:`construct_tree` leaves to PyYAML's constructor."""


def construct_tree(loader, node: yaml.Node) -> Any:
    """``loader.construct_document(node)`` for a node tree without anchors, four times as fast.

    PyYAML builds every mapping and sequence through generators and every node through its
    bookkeeping of shared and recursive nodes, which a tree without anchors has none of; the
    construction was a third of parsing a CM meta. Strings, mappings and sequences with
    their default tags are built here; every other scalar (numbers, booleans, null, dates)
    by ``loader`` itself. Anything else (a merge ``<<`` or ``=`` key, a key that is not a
    scalar, a mapping or sequence with an explicit tag), and any failure (a bad scalar,
    nesting deeper than Python's recursion limit) goes to ``loader.construct_document`` from a
    clean slate, so the result or the error is PyYAML's own.

    >>> doc = "a: [x, 1, yes, ~]\\nb: {c: 2.5}\\n"
    >>> construct_tree(_Loader(doc), yaml.compose(doc, _Loader)) == yaml.safe_load(doc)
    True
    """
    try:
        return _tree_data(loader, node)
    except Exception:  # _Unusual, or any failure: PyYAML's own path meets it first or not
        loader.constructed_objects, loader.recursive_objects = {}, {}
        return loader.construct_document(node)


def _tree_data(loader, node: yaml.Node) -> Any:
    tag = node.tag
    if isinstance(node, yaml.ScalarNode):
        return node.value if tag == _STR else loader.construct_object(node, deep=True)
    if isinstance(node, yaml.MappingNode) and tag == _MAP:
        data = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag in _REWRITTEN_KEYS:
                raise _Unusual
            data[_tree_data(loader, key_node)] = _tree_data(loader, value_node)
        return data
    if isinstance(node, yaml.SequenceNode) and tag == _SEQ:
        return [_tree_data(loader, child) for child in node.value]
    raise _Unusual


def _expansion_over(root: yaml.Node, limit: int) -> yaml.Node | None:
    """The first node whose aliases expand past ``limit`` nodes, or None.

    The composed tree shares one node per anchor, so it stays as small as the text; only
    constructing, JSON or walking the data expands it. Each distinct node is sized once
    (children first, without recursion), so a bomb is found in time linear in the text. An
    alias to its own ancestor (an endless expansion) counts as over the limit.
    """
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[yaml.Node] = [root]
    while stack:
        node = stack[-1]
        children = _children(node)
        if id(node) not in open_nodes:
            open_nodes.add(id(node))
            for child in children:
                if id(child) in open_nodes and id(child) not in sizes:
                    return child  # an ancestor: the alias expands without end
                if id(child) not in sizes:
                    stack.append(child)
            continue
        stack.pop()
        if id(node) not in sizes:
            sizes[id(node)] = 1 + sum(sizes[id(c)] for c in children)
            if sizes[id(node)] > limit:
                return node
    return None


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return node.value
    return []


def _checked(doc: Loaded) -> Loaded | Problem:
    """``doc``, or a Problem if one of its keys or strings holds NUL or a lone surrogate.

    Neither can come from the decoded text itself (the parsers refuse control characters,
    strict UTF-8 refuses surrogates), only from escapes: files without one are not walked.
    """
    if not _NUL_OR_SURROGATE_ESCAPE.search(doc.text):
        return doc
    for keys, text, part in _strings(doc.data):
        if bad := _bad_text(text):
            return Problem(doc.rel, f"{bad} in a {part}; file skipped", doc.line_of(*keys))
    return doc


def _strings(data: Any) -> Iterator[tuple[tuple, str, str]]:
    """Every key and string value of ``data`` with the keys that lead to it.

    Without recursion, and each container once: YAML aliases share them.
    """
    stack: list[tuple[Any, tuple]] = [(data, ())]
    seen: set[int] = set()
    while stack:
        value, keys = stack.pop()
        if isinstance(value, str):
            yield keys, value, "string"
        elif isinstance(value, dict | list) and id(value) not in seen:
            seen.add(id(value))
            pairs = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in pairs:
                if isinstance(key, str):
                    yield (*keys, key), key, "key"
                stack.append((item, (*keys, key)))


def _bad_text(text: str) -> str:
    """What makes ``text`` unfit for a graph property ("" when nothing does)."""
    if "\0" in text:
        return "NUL character"
    if not text.isascii():
        try:
            text.encode()
        except UnicodeEncodeError:
            return "lone surrogate (not valid UTF-8)"
    return ""


def load_mapping(path: Path, root: Path) -> Loaded | Problem:
    """Like :func:`load`, but a file whose top level is not a mapping is a Problem too."""
    doc = load(path, root)
    if isinstance(doc, Loaded) and not isinstance(doc.data, dict):
        return Problem(doc.rel, "top level is not a mapping", 1)
    return doc


def json_text(value: Any) -> str:
    """Compact JSON of nested meta for a graph property (dates and other odd values as str)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def isolated(out: Records, rel: str, read: Callable[[Records], None]) -> None:
    """Run ``read`` (one artifact's reader) so that an odd shape costs one warning, not the source.

    A meta can be valid YAML and still put a string where a mapping belongs; ``read`` writes
    into a scratch :class:`Records`, merged into ``out`` only when it finished, so no
    half-read artifact is left behind.

    >>> out = Records()
    >>> isolated(out, "a/_cm.yaml", lambda r: "text".get("deps"))
    >>> str(out.warnings[0])
    "a/_cm.yaml: unexpected structure: 'str' object has no attribute 'get'"
    """
    scratch = Records()
    try:
        read(scratch)
    except (AttributeError, TypeError, ValueError, KeyError) as e:
        out.warnings.append(Problem(rel, f"unexpected structure: {e}"))
    else:
        out.extend(scratch)
