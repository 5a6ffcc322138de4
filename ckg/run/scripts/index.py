"""The scripts an engine can run, found by tags with the planner's rules.

A :class:`ScriptIndex` is built from plain dicts (what the runner reads from the graph:
uid, alias, tags, meta, folder, repository root) and answers MLCFlow's script search:
every plain tag present, ``-tag`` absent, each requested variation declared (``name.#``
accepts ``name.value``); several matches are ordered by the meta's ``sort`` value, then
path, as MLCFlow orders them in quiet mode.
"""

from dataclasses import dataclass, field

from ckg.resolve import TagIndex, TagQuery


@dataclass(slots=True)
class Script:
    """One script: its meta and where its files are on this host."""

    uid: str
    alias: str
    tags: list[str]
    meta: dict
    path: str  # the script's folder
    repo_path: str = ""  # the repository (source) root
    repo_prefix: str = ""  # the repository's ``prefix``, where its scripts live
    source_uid: str = ""
    format: str = "mlc"
    variations: list[str] = field(default_factory=list)

    def __post_init__(self):
        if not self.variations:
            self.variations = list((self.meta.get("variations") or {}).keys())

    @property
    def repo_path_with_prefix(self) -> str:
        if not self.repo_prefix:
            return self.repo_path
        return f"{self.repo_path.rstrip('/')}/{self.repo_prefix}"

    @classmethod
    def from_dict(cls, d: dict) -> "Script":
        meta = d.get("meta") or {}
        return cls(
            uid=d["uid"],
            alias=d.get("alias") or meta.get("alias", d["uid"]),
            tags=list(d.get("tags") or meta.get("tags") or []),
            meta=meta,
            path=d["path"],
            repo_path=d.get("repo_path", ""),
            repo_prefix=d.get("repo_prefix", ""),
            source_uid=d.get("source_uid", ""),
            format=d.get("format", "mlc"),
        )

    def to_dict(self) -> dict:
        return {
            "uid": self.uid,
            "alias": self.alias,
            "tags": self.tags,
            "meta": self.meta,
            "path": self.path,
            "repo_path": self.repo_path,
            "repo_prefix": self.repo_prefix,
            "source_uid": self.source_uid,
            "format": self.format,
        }


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
        self.scripts = {s.uid: s for s in scripts}
        self.prefer = prefer
        self._tags = TagIndex(
            {"uid": s.uid, "tags": s.tags, "variations": s.variations, "source_uid": s.source_uid}
            for s in self.scripts.values()
        )

    def __len__(self) -> int:
        return len(self.scripts)

    def find(self, script_tags: list[str], variation_tags: list[str]) -> list[Script]:
        """Scripts with all of ``script_tags`` (``-tag`` excludes) that declare every
        variation of ``variation_tags`` (``-x`` ones are not searched for)."""
        plain = tuple(t for t in script_tags if not t.startswith("-"))
        excluded = tuple(t[1:] for t in script_tags if t.startswith("-"))
        wanted = tuple(v for v in variation_tags if not v.startswith("-"))
        uids = self._tags.match(TagQuery(plain, excluded, wanted))
        found = [self.scripts[u] for u in uids]
        if self.prefer and len(found) > 1:
            own = [s for s in found if s.source_uid == self.prefer]
            found = own or found
        return sorted(found, key=lambda s: (_sort_value(s.meta), s.path))


def _sort_value(meta: dict) -> float:
    try:
        return float(meta.get("sort", 0) or 0)
    except (TypeError, ValueError):
        return 0.0


def save_index(path, scripts) -> None:
    """Write scripts to a JSON file that :func:`load_index` reads (write, then rename)."""
    import json
    import os
    from pathlib import Path

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.write_text(json.dumps([s.to_dict() for s in scripts], ensure_ascii=False))
    os.replace(partial, path)


def load_index(path, prefer: str = "") -> ScriptIndex:
    """The :class:`ScriptIndex` saved in ``path`` by :func:`save_index`."""
    import json
    from pathlib import Path

    rows = json.loads(Path(path).read_text())
    return ScriptIndex([Script.from_dict(r) for r in rows], prefer=prefer)
