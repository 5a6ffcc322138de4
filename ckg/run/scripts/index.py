"""The scripts an engine can run, found by tags with the planner's rules.

A :class:`ScriptIndex` is built from plain dicts (what the runner reads from the graph:
uid, alias, tags, meta, folder, repository root) and answers MLCFlow's script search:
every plain tag present, ``-tag`` absent, each requested variation declared (``name.#``
accepts ``name.value``); among several matches the one chosen is the one a target or the
planner would choose (:func:`ckg.core.resolve.choose`: the meta's ``sort``, then folder, as
MLCFlow orders them in quiet mode).
"""

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path

from ckg.core.resolve import TagIndex, TagQuery, choose, sort_value
from ckg.graph.lookup import source_order


class Script:
    """One script: its meta and where its files are on this host.

    ``meta`` may be given as a JSON file (``meta_file``) instead: it is read on first use,
    so that an index of hundreds of scripts loads without reading the metas it never needs.
    """

    __slots__ = (
        "uid",
        "alias",
        "tags",
        "path",
        "repo_path",
        "repo_prefix",
        "source_uid",
        "format",
        "variations",
        "sort",
        "source",
        "source_name",
        "place",
        "_meta",
        "_meta_file",
    )

    def __init__(
        self,
        uid: str,
        alias: str,
        tags: list[str],
        meta: dict | None,
        path: str,
        repo_path: str = "",
        repo_prefix: str = "",
        source_uid: str = "",
        format: str = "mlc",
        *,
        meta_file: str = "",
        variations=None,
        sort=None,
        source: str = "",
        source_name: str = "",
        place: str = "",
    ):
        self.uid = uid
        self.alias = alias
        self.tags = list(tags)
        self.path = path  # the script's folder
        self.repo_path = repo_path  # the repository (source) root
        self.repo_prefix = repo_prefix  # the repository's ``prefix``, where scripts live
        self.source_uid = source_uid
        self.format = format
        # the source's location and name, and where MLCFlow would sort it (ckg.core.resolve.place)
        self.source = source
        self.source_name = source_name
        self.place = place or path
        self._meta = meta
        self._meta_file = meta_file
        if variations is None or sort is None:
            declared = self.meta.get("variations")
            variations = list(declared) if isinstance(declared, dict) else []
            sort = sort_value(self.meta)
        self.variations = list(variations)
        self.sort = sort

    @property
    def meta(self) -> dict:
        if self._meta is None:
            self._meta = json.loads(Path(self._meta_file).read_bytes()) if self._meta_file else {}
        return self._meta

    @property
    def repo_path_with_prefix(self) -> str:
        if not self.repo_prefix:
            return self.repo_path
        return f"{self.repo_path.rstrip('/')}/{self.repo_prefix}"

    @classmethod
    def from_dict(cls, d: dict) -> "Script":
        """From a row: ``meta`` a dict, or ``meta_file`` with ``variations`` and ``sort``."""
        meta = d.get("meta")
        return cls(
            d["uid"],
            d.get("alias") or (meta or {}).get("alias", d["uid"]),
            d.get("tags") or (meta or {}).get("tags") or [],
            meta,
            d["path"],
            d.get("repo_path", ""),
            d.get("repo_prefix", ""),
            d.get("source_uid", ""),
            d.get("format", "mlc"),
            meta_file=d.get("meta_file", ""),
            variations=d.get("variations"),
            sort=d.get("sort"),
            source=d.get("source", ""),
            source_name=d.get("source_name", ""),
            place=d.get("place", ""),
        )

    def to_dict(self, meta_file: str = "") -> dict:
        """A row for the index file; the meta itself is in ``meta_file``."""
        return {
            "uid": self.uid,
            "alias": self.alias,
            "tags": self.tags,
            "meta_file": meta_file,
            "variations": self.variations,
            "sort": self.sort,
            "path": self.path,
            "repo_path": self.repo_path,
            "repo_prefix": self.repo_prefix,
            "source_uid": self.source_uid,
            "format": self.format,
            "source": self.source,
            "source_name": self.source_name,
            "place": self.place,
        }


class _Rows(Mapping):
    """uid -> :class:`Script` of the lines of an index file (:func:`save_index`), each read
    and made on first use: a cached run uses one of CM's 309 scripts, and reading them all
    was most of the 2.5 ms that loading the index took."""

    def __init__(self, data: bytes):
        # A line: the uid as JSON (ASCII, a tab escaped), a tab, the row as JSON.
        self._lines = dict(line.split(b"\t", 1) for line in data.splitlines() if line)
        self._made: dict[str, Script] = {}

    def __getitem__(self, uid: str) -> Script:
        script = self._made.get(uid)
        if script is None:
            row = json.loads(self._lines[_key(uid)])
            script = self._made[uid] = Script.from_dict(row)
        return script

    def __contains__(self, uid) -> bool:
        return isinstance(uid, str) and _key(uid) in self._lines

    def __iter__(self):
        return (json.loads(key) for key in self._lines)

    def __len__(self) -> int:
        return len(self._lines)


def _key(uid: str) -> bytes:
    """How an index file's line names its script's ``uid``."""
    return json.dumps(uid).encode()


class ScriptIndex:
    """Scripts by tag; ``prefer`` names the source searched first (the target's own).

    >>> idx = ScriptIndex([Script("a", "get-x", ["get", "x"], {"variations": {"v": {}}}, "/a"),
    ...                    Script("b", "get-x2", ["get", "x"], {"sort": -1}, "/b")])
    >>> [s.alias for s in idx.find(["get", "x"], [])]
    ['get-x2', 'get-x']
    >>> [s.alias for s in idx.find(["get", "x"], ["v"])]
    ['get-x']
    """

    def __init__(self, scripts, prefer: str = ""):
        # A mapping uid -> Script; an iterable of them is made into one.
        self.scripts = scripts if isinstance(scripts, Mapping) else {s.uid: s for s in scripts}
        self.prefer = prefer
        self._tag_index: TagIndex | None = None

    @property
    def _tags(self) -> TagIndex:
        # Built at the first search: a run whose target, named by uid, is found cached
        # searches nothing (a third of the time to load CM's 373 scripts).
        if self._tag_index is None:
            self._tag_index = TagIndex(
                {
                    "uid": s.uid,
                    "tags": s.tags,
                    "variations": s.variations,
                    "source_uid": s.source_uid,
                }
                for s in self.scripts.values()
            )
        return self._tag_index

    def __len__(self) -> int:
        return len(self.scripts)

    def find(self, script_tags: list[str], variation_tags: list[str], cached=None) -> list[Script]:
        """Scripts with all of ``script_tags`` (``-tag`` excludes) that declare every
        variation of ``variation_tags`` (``-x`` ones are not searched for), the one to run
        first (:func:`ckg.core.resolve.choose`: ``prefer``'s if any, among them one for which
        ``cached(uid)`` is true if any, then the rest in order)."""
        plain = tuple(t for t in script_tags if not t.startswith("-"))
        excluded = tuple(t[1:] for t in script_tags if t.startswith("-"))
        wanted = tuple(v for v in variation_tags if not v.startswith("-"))
        uids = self._tags.match(TagQuery(plain, excluded, wanted))
        found = [self.scripts[u] for u in uids]
        if len(found) < 2:
            return found
        choice = choose(
            ({"uid": s.uid, "format": s.format, "sort": s.sort, "place": s.place,
              "source_uid": s.source_uid, "source": s.source, "source_name": s.source_name}
             for s in found),
            own_source=self.prefer, order=source_order(),
            cached=[s.uid for s in found if cached(s.uid)] if cached else (),
        )  # fmt: skip
        return [self.scripts[c["uid"]] for c in choice.candidates]


def save_index(path, scripts) -> None:
    """Write scripts to ``path``, a line each (its uid as JSON, a tab, its row as JSON), and
    their metas to a folder beside it, one JSON file per script, for :func:`load_index`
    (each file written, then renamed)."""
    path = Path(path)
    metas = path.with_name(path.stem + "-metas")
    metas.mkdir(parents=True, exist_ok=True)
    lines = []
    for script in scripts:
        name = hashlib.sha256(script.uid.encode()).hexdigest()[:20] + ".json"
        _write(metas / name, json.dumps(script.meta, ensure_ascii=False))
        row = json.dumps(script.to_dict(str(metas / name)), ensure_ascii=False)
        lines.append(f"{_key(script.uid).decode()}\t{row}\n")
    _write(path, "".join(lines))


_loaded: dict[tuple, ScriptIndex] = {}


def load_index(path, prefer: str = "") -> ScriptIndex:
    """The :class:`ScriptIndex` saved in ``path`` by :func:`save_index` (read once per
    process while the file is unchanged)."""
    stat = os.stat(path)
    key = (str(path), stat.st_mtime_ns, stat.st_size, prefer)
    if key not in _loaded:
        _loaded[key] = ScriptIndex(_Rows(Path(path).read_bytes()), prefer=prefer)
    return _loaded[key]


def _write(path: Path, text: str) -> None:
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)
