"""Read YAML, JSON, TOML and CSV files fast and guarded, keeping what names lines in warnings.

YAML goes through libyaml's ``CSafeLoader`` when PyYAML was built with it (about 6x faster
than the pure-Python loader on CM metas); the composed node tree is kept so that a warning
can name the line of a key without a second parse. JSON has no node tree: the line of a key
is found by searching the text, which is only done when a warning needs it.

A file that cannot be read gives one :class:`~ckg.core.records.Problem` naming file and line and
no data; the caller goes on with the rest of the source. So does a file no graph can hold or
no reader survives: YAML whose aliases expand past :data:`MAX_YAML_NODES` nodes (a "billion
laughs" bomb of a kilobyte), JSON or TOML nested past what the parser follows, and a string
or key holding NUL or a lone surrogate (escapes such as ``\\u0000`` or ``\\ud800``), which
the stores refuse.

A scalar that Python or a graph cannot hold as its type is read as the text the file wrote,
with nothing lost: a number past 64-bit integers (:data:`INT64`; FalkorDB would saturate it,
Neo4j refuses it, and Python's ``int`` refuses 4,300 digits) or past a float's range
(``1e999``), ``NaN`` and infinities, a date that does not exist. A reader that wants a
number from such a value says so about that value (:func:`ckg.core.values.parse_value` does).

Tables and notebooks, whose parts are read one by one, are loaded with ``salvage=True``:
what one value breaks costs that value and one warning (:attr:`Loaded.warnings`), and the
rest is read. A YAML node whose aliases expand past the bound is read as empty; a JSON value
nested deeper than :data:`MAX_DEPTH` levels is read as null past that depth; a key written
twice in one mapping keeps its first value. :func:`csv_records` reads CSV by the same rule.
A meta is never salvaged: half of one would run differently, so it stays one Problem.
"""

import csv
import hashlib
import io
import json
import math
import re
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ckg.core.records import Problem, Records
from ckg.formats.files import read_file

#: Most nodes a YAML document with anchors may expand to once its aliases are followed: the
#: largest meta of the corpora has 4,505 nodes, a billion-laughs bomb has billions.
MAX_YAML_NODES = 100_000
#: Integers a graph property holds: both stores keep 64-bit ones.
INT64 = range(-(2**63), 2**63)
#: Levels of a salvaged JSON value kept when the parser cannot follow it deeper: pwc's
#: nested subtasks go a dozen deep, query parameters are refused past 100.
MAX_DEPTH = 100
#: JSON strings (skipped whole) and brackets, to find the values nested too deeply.
_JSON_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')
#: An anchor (``&name``) where YAML allows one: at the start, after a space or a flow
#: indicator. Searched before any alias is followed, as documents without one cannot expand.
_ANCHOR = re.compile(r"&(?<=(?<![^\s\[{,:])&)[^\s\[\]{},&]")
#: The escapes that make NUL or a lone surrogate in YAML, JSON or TOML (``\0``, ``\x00``,
#: ``\u0000``, ``\U00000000``, ``\ud800``-``\udfff``): decoded text holds neither itself.
_NUL_OR_SURROGATE_ESCAPE = re.compile(
    r"\\(?:0|x00|u0000|U00000000|u[dD][89a-fA-F]|U0000[dD][89a-fA-F])"
)

try:
    from yaml import CSafeLoader as _BaseLoader
except ImportError:  # PyYAML built without libyaml: correct, only slower
    from yaml import SafeLoader as _BaseLoader  # type: ignore[assignment]


class _Loader(_BaseLoader):  # type: ignore[misc, valid-type]
    """libyaml's loader, reading as text the scalars Python or a graph cannot hold."""


def _as_text_if(fits: Callable[[Any], bool], construct: Callable) -> Callable:
    def constructor(loader, node: yaml.ScalarNode) -> Any:
        # int() refuses 4,300 digits; no 64-bit integer, even in binary, is 100 long
        if len(node.value) > 100:
            return node.value
        try:
            value = construct(loader, node)
        except ValueError:  # 2024-13-45, or an explicit !!int on text
            return node.value
        return value if fits(value) else node.value

    return constructor


for _tag, _fits in (
    ("int", lambda v: v in INT64),
    ("float", math.isfinite),
    ("timestamp", lambda v: True),
):
    _Loader.add_constructor(
        f"tag:yaml.org,2002:{_tag}",
        _as_text_if(_fits, _BaseLoader.yaml_constructors[f"tag:yaml.org,2002:{_tag}"]),
    )


def _json_int(text: str) -> int | str:
    """A JSON integer, or its text past 64 bits (never ``int()`` of thousands of digits)."""
    if len(text) <= 20:
        value = int(text)
        if value in INT64:
            return value
    return text


def _json_float(text: str) -> float | str:
    """A JSON float, or its text past a float's range (``1e999``)."""
    value = float(text)
    return value if math.isfinite(value) else text


_JSON_HOOKS = {"parse_int": _json_int, "parse_float": _json_float, "parse_constant": str}
#: One decoder for every meta: ``json.loads`` with hooks builds one per call, which cost
#: more than the hooks themselves on CK's 1,500 small metas.
_JSON = json.JSONDecoder(**_JSON_HOOKS)


@dataclass(slots=True)
class Loaded:
    """One parsed file: its data, where it came from, and what finds lines in it.

    ``rel`` is the path relative to the source root (POSIX separators), ``raw`` the bytes
    as read (for the digest), ``node`` the YAML node tree (None for JSON and TOML), ``text``
    the decoded text, ``warnings`` what a salvaged load left out or changed (see the module
    docstring).
    """

    rel: str
    data: Any
    raw: bytes
    text: str
    node: yaml.Node | None = None
    warnings: list[Problem] = field(default_factory=list)

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


def load(path: Path, root: Path, *, salvage: bool = False) -> Loaded | Problem:
    """Parse ``path`` by its suffix (.yaml/.yml/.cff, .json, .toml); a Problem if it can't.

    ``salvage``: read what one bad value leaves readable, see the module docstring.

    Examples
    --------
    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp()); _ = (d / "x.json").write_text('{"a": [1,')
    >>> str(load(d / "x.json", d))
    'x.json:1: invalid JSON: Expecting value (column 10)'
    """
    read = read_text(path, root)
    if isinstance(read, Problem):
        return read
    raw, text = read
    return parse(text, relpath(path, root), path.suffix, raw=raw, salvage=salvage)


def read_text(path: Path, root: Path) -> tuple[bytes, str] | Problem:
    """The bytes of ``path`` (a file of the source at ``root``) and their UTF-8 text, or a
    Problem naming it: :func:`ckg.formats.files.read_file` reads no FIFO, no link out of the
    source and nothing past the byte bound."""
    try:
        raw = read_file(path, root)
        return raw, raw.decode("utf-8-sig")
    except OSError as e:
        return Problem(relpath(path, root), f"cannot read: {e.strerror or e}")
    except UnicodeDecodeError as e:
        return Problem(relpath(path, root), f"not UTF-8 text: {e.reason} at byte {e.start}")


def parse(
    text: str, rel: str, suffix: str, *, raw: bytes | None = None, salvage: bool = False
) -> Loaded | Problem:
    """:func:`load` of text already read: ``rel`` names it, ``suffix`` says its format.

    ``raw`` is the bytes it was decoded from (its UTF-8 encoding when None).

    Examples
    --------
    >>> parse('{"n": 1e999, "k": 1, "k": 2}', "t.json", ".json", salvage=True).data
    {'n': '1e999', 'k': 1}
    """
    raw = text.encode() if raw is None else raw
    suffix = suffix.lower()
    try:
        if suffix == ".json":
            return _checked(_json(text, rel, raw, salvage), salvage)
        if suffix == ".toml":
            data = tomllib.loads(text, parse_float=_json_float)
            return _checked(Loaded(rel, data, raw, text))
        return _checked(_yaml(text, rel, raw, salvage), salvage)
    except RecursionError:  # a few hundred kilobytes of "[" would end the whole ingest
        return Problem(rel, f"invalid {_FORMATS.get(suffix, 'YAML')}: nested too deeply")
    except tomllib.TOMLDecodeError as e:
        # Python 3.12's TOMLDecodeError has no lineno attribute; its message ends with it
        m = re.search(r"at line (\d+)", str(e))
        line = int(m.group(1)) if m else text.count("\n") + 1  # "at end of document"
        return Problem(rel, f"invalid TOML: {e}", line)
    except ValueError as e:  # a TOML integer of 4,300 digits, past what int() reads
        why = str(e).split(";")[0]  # not Python's advice to raise the limit
        return Problem(rel, f"invalid {_FORMATS.get(suffix, 'YAML')}: {why}")


_FORMATS = {".json": "JSON", ".toml": "TOML"}


def _json(text: str, rel: str, raw: bytes, salvage: bool) -> Loaded | Problem:
    twice: dict[str, None] = {}
    decoder = _JSON
    if salvage:
        decoder = json.JSONDecoder(**_JSON_HOOKS, object_pairs_hook=_first_of_each(twice))
    warnings = []
    try:
        try:
            data = decoder.decode(text)
        except RecursionError:
            if not salvage:
                raise
            text, lines = _cut_deep(text, MAX_DEPTH)
            warnings.append(_cut_warning(rel, lines))
            data = decoder.decode(text)
    except json.JSONDecodeError as e:
        return Problem(rel, f"invalid JSON: {e.msg} (column {e.colno})", e.lineno)
    warnings += [
        Problem(rel, f"{key!r} written twice in one object; the first value is kept")
        for key in twice
    ]
    return Loaded(rel, data, raw, text, warnings=warnings)


def _first_of_each(twice: dict[str, None]) -> Callable[[list], dict]:
    """A JSON ``object_pairs_hook`` keeping the first value of a key, noting it in ``twice``."""

    def pairs_to_dict(pairs: list[tuple[str, Any]]) -> dict:
        data = dict(pairs)
        if len(data) < len(pairs):
            data = {}
            for key, value in pairs:
                if key in data:
                    twice[key] = None
                else:
                    data[key] = value
        return data

    return pairs_to_dict


def _cut_deep(text: str, limit: int) -> tuple[str, list[int]]:
    """``text`` with each value nested deeper than ``limit`` replaced by ``null``, and the
    lines where they began. Newlines are kept, so that lines after a cut keep their numbers.

    >>> _cut_deep('{"a": [[["x]"], 1]], "b": 2}', 2)
    ('{"a": [null], "b": 2}', [1])
    """
    parts, lines = [], []
    depth, start, kept, line, counted = 0, -1, 0, 1, 0
    for match in _JSON_TOKEN.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            if depth == limit + 1:
                start = match.start()
        elif token in "]}":
            if depth == limit + 1:
                line += text.count("\n", counted, start)
                parts += [text[kept:start], "null", "\n" * text.count("\n", start, match.end())]
                lines.append(line)
                kept = counted = match.end()
                line += parts[-1].count("\n")
            depth -= 1
    if depth > limit:  # never closed: the parser then says what is missing
        lines.append(line + text.count("\n", counted, start))
        parts += [text[kept:start], "null"]
        kept = len(text)
    return "".join(parts) + text[kept:], lines


def _cut_warning(rel: str, lines: list[int]) -> Problem:
    more = f" (and {len(lines) - 1} more)" if len(lines) > 1 else ""
    return Problem(
        rel,
        f"a value nested deeper than {MAX_DEPTH} levels{more}; read as null past level {MAX_DEPTH}",
        lines[0] if lines else None,
    )


def _yaml(text: str, rel: str, raw: bytes, salvage: bool) -> Loaded | Problem:
    warnings = []
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            data = None
        else:
            if salvage:
                warnings += _first_keys(node, rel)
            if _ANCHOR.search(text):
                bombs = _expansions_over(node, MAX_YAML_NODES, empty=salvage)
                if bombs and not salvage:
                    msg = f"YAML aliases expand to more than {MAX_YAML_NODES} nodes; file skipped"
                    return Problem(rel, msg, bombs[0].start_mark.line + 1)
                if bombs:
                    more = f" (and {len(bombs) - 1} more)" if len(bombs) > 1 else ""
                    warnings.append(
                        Problem(
                            rel,
                            f"YAML aliases expand to more than {MAX_YAML_NODES} nodes; "
                            f"the value here{more} is read as empty",
                            bombs[0].start_mark.line + 1,
                        )
                    )
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
    return Loaded(rel, data, raw, text, node, warnings)


def _first_keys(root: yaml.Node, rel: str) -> list[Problem]:
    """Drop the later of two equal keys of every mapping under ``root``, so that the first
    value is the one read: one warning per key name, at the line where it comes again.

    Keys are equal when their text and resolved tag are (``1`` and ``"1"`` differ); merge
    (``<<``) and value (``=``) keys are left to PyYAML's own rules.
    """
    warnings, named, seen = [], set(), set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            keys, kept = set(), []
            for pair in node.value:
                key = pair[0]
                if isinstance(key, yaml.ScalarNode) and key.tag not in _REWRITTEN_KEYS:
                    if (key.tag, key.value) in keys:
                        if key.value not in named:
                            named.add(key.value)
                            warnings.append(
                                Problem(
                                    rel,
                                    f"{key.value!r} written twice in one mapping; "
                                    "the first value is kept",
                                    key.start_mark.line + 1,
                                )
                            )
                        continue
                    keys.add((key.tag, key.value))
                kept.append(pair)
            node.value = kept
        stack.extend(reversed(_children(node)))
    return sorted(warnings, key=lambda w: w.line)


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


def _expansions_over(root: yaml.Node, limit: int, *, empty: bool = False) -> list[yaml.Node]:
    """The first node whose aliases expand past ``limit`` nodes (none: ``[]``); with
    ``empty``, every such node, each emptied in place (its aliases with it) as it is found,
    so that the rest of the document can be built.

    The composed tree shares one node per anchor, so it stays as small as the text; only
    constructing, JSON or walking the data expands it. Each distinct node is sized once
    (children first, without recursion), so a bomb is found in time linear in the text. An
    alias to its own ancestor (an endless expansion) counts as over the limit.
    """
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[yaml.Node] = [root]
    found: list[yaml.Node] = []
    while stack:
        node = stack[-1]
        children = _children(node)
        if id(node) not in open_nodes:
            open_nodes.add(id(node))
            for child in children:
                if id(child) in open_nodes and id(child) not in sizes:
                    found.append(child)  # an ancestor: the alias expands without end
                    if not empty:
                        return found
                    child.value, sizes[id(child)] = [], 1
                elif id(child) not in sizes:
                    stack.append(child)
            continue
        stack.pop()
        if id(node) not in sizes:
            size = 1 + sum(sizes[id(c)] for c in children)
            if size > limit:
                found.append(node)
                if not empty:
                    return found
                node.value, size = [], 1
            sizes[id(node)] = size
    return found


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return node.value
    return []


def _checked(doc: Loaded | Problem, salvage: bool = False) -> Loaded | Problem:
    """``doc``, or a Problem if one of its keys or strings holds NUL or a lone surrogate;
    salvaged, ``doc`` with each such character read as U+FFFD and one warning.

    Neither can come from the decoded text itself (the parsers refuse control characters,
    strict UTF-8 refuses surrogates), only from escapes: files without one are not walked.
    """
    if isinstance(doc, Problem) or not _NUL_OR_SURROGATE_ESCAPE.search(doc.text):
        return doc
    for keys, text, part in _strings(doc.data):
        if bad := _bad_text(text):
            if not salvage:
                return Problem(doc.rel, f"{bad} in a {part}; file skipped", doc.line_of(*keys))
            doc.data = _replaced(doc.data)
            doc.warnings.append(
                Problem(
                    doc.rel,
                    f"{bad} in a {part}: NUL and lone surrogates read as U+FFFD",
                    doc.line_of(*keys),
                )
            )
            return doc
    return doc


#: What no graph property holds: NUL and lone surrogates.
_UNSTORABLE = re.compile("[\0\ud800-\udfff]")


def replace_unstorable(text: str) -> str:
    """``text`` with NUL and lone surrogates as U+FFFD (the text itself when it has none).

    >>> replace_unstorable("a" + chr(0) + "b") == "a\\ufffdb"
    True
    """
    return _UNSTORABLE.sub("\ufffd", text) if _bad_text(text) else text


def _replaced(data: Any) -> Any:
    """``data`` with :func:`replace_unstorable` applied to every key and string, in place."""
    if isinstance(data, str):
        return replace_unstorable(data)
    stack, seen = [data], set()
    while stack:
        value = stack.pop()
        if not isinstance(value, dict | list) or id(value) in seen:
            continue
        seen.add(id(value))
        if isinstance(value, list):
            for index, item in enumerate(value):
                value[index] = replace_unstorable(item) if isinstance(item, str) else item
                stack.append(item)
            continue
        for key in list(value):
            item = value.pop(key) if isinstance(key, str) and _bad_text(key) else value[key]
            value[replace_unstorable(key) if isinstance(key, str) else key] = (
                replace_unstorable(item) if isinstance(item, str) else item
            )
            stack.append(item)
    return data


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


def csv_records(
    text: str, delimiter: str, rel: str, warnings: list[Problem]
) -> tuple[list[str], Iterator[tuple[int, dict[str, str]]]] | Problem:
    """The header of CSV ``text`` and its records, each (line, column -> cell); a Problem
    when the header cannot be read.

    As a salvaged :func:`load` reads YAML and JSON, a bad record costs itself and one
    warning added to ``warnings`` while iterating: a field longer than :mod:`csv`'s limit
    (``csv.field_size_limit()``, 131,072 characters unless the program raised it) or any
    other record :mod:`csv` cannot read is skipped. A column named twice keeps its first
    column's cells, with one warning naming it. NUL, which no graph property holds, is read
    as U+FFFD, with one warning naming the first line that has one.

    >>> problems = []
    >>> header, records = csv_records("a,b,a\\n1,2,3\\n", ",", "t.csv", problems)
    >>> list(records)
    [(2, {'a': '1', 'b': '2'})]
    >>> str(problems[0])
    "t.csv:1: 'a' written twice in the header; the first column is kept"
    """
    if "\0" in text:
        line = text.count("\n", 0, text.index("\0")) + 1
        warnings.append(Problem(rel, "NUL character: NUL read as U+FFFD", line))
        text = text.replace("\0", "\ufffd")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader, [])
    except csv.Error as e:
        return Problem(rel, f"{_csv_error(e)}; not read", reader.line_num)
    columns: dict[str, int] = {}
    twice: dict[str, None] = {}
    for index, name in enumerate(header):
        if name in columns:
            twice[name] = None
        else:
            columns[name] = index
    warnings += [
        Problem(
            rel, f"{name!r} written twice in the header; the first column is kept", reader.line_num
        )
        for name in twice
    ]
    return header, _csv_rows(reader, columns, rel, warnings)


def _csv_rows(reader, columns: dict[str, int], rel: str, warnings: list[Problem]):
    while True:
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            warnings.append(Problem(rel, f"{_csv_error(e)}; row skipped", reader.line_num))
            continue
        yield reader.line_num, {n: record[i] for n, i in columns.items() if i < len(record)}


def _csv_error(error: csv.Error) -> str:
    if str(error).startswith("field larger than field limit"):
        return f"a field longer than {csv.field_size_limit()} characters"
    return f"unreadable CSV ({error})"


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
