"""Cache entries of ``cache: true`` scripts, one folder each under ``CKG_HOME/cache/scripts``.

An entry holds ``ckg-cache.json`` (uid, tags, the script's uid and alias, version,
variations, creation time, expiry, the folder it depends on) and, once its script
succeeded, ``mlc-cached-state.json`` (``new_env``, ``new_state``, ``deps``, ``version``) as
MLCFlow writes it, plus ``tmp-env.sh`` / ``tmp-env-all.sh``. Scripts that install things
run in their entry's folder. An entry is created with the tag ``tmp`` before its script
runs and becomes visible to searches only when :meth:`ScriptCache.finish` drops that tag;
a failed script's entry is removed, never kept half-made.
"""

import json
import os
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

META = "ckg-cache.json"
STATE = "mlc-cached-state.json"

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


@dataclass(slots=True)
class CacheEntry:
    """One cache entry: its folder and what ``ckg-cache.json`` says of it."""

    path: Path
    meta: dict

    @property
    def uid(self) -> str:
        return self.meta.get("uid", self.path.name)

    @property
    def tags(self) -> list[str]:
        return list(self.meta.get("tags") or [])

    @property
    def version(self) -> str:
        return str(self.meta.get("version") or "")

    @property
    def dependent(self) -> str:
        return str(self.meta.get("dependent_cached_path") or "")

    def expired(self, now: float | None = None) -> bool:
        seconds = self.meta.get("cache_expiration")
        if not seconds:
            return False
        return (now or time.time()) > float(self.meta.get("created", 0)) + float(seconds)


def parse_expiration(text) -> float:
    """Seconds in an expiry such as ``30m``, ``2h``, ``1d``, ``1w`` or a number of
    seconds.

    >>> parse_expiration("2h"), parse_expiration("90")
    (7200.0, 90.0)
    """
    value = str(text).strip().lower()
    if value and value[-1] in _UNITS:
        return float(value[:-1]) * _UNITS[value[-1]]
    return float(value)


class ScriptCache:
    """The cache folder of one ckg home."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self._entries: list[CacheEntry] | None = None

    def entries(self) -> list[CacheEntry]:
        """Every finished or unfinished entry, read once per cache object."""
        if self._entries is None:
            found = []
            try:
                folders = sorted(os.scandir(self.root), key=lambda e: e.name)
            except OSError:
                folders = []
            for folder in folders:
                try:
                    meta = json.loads(Path(folder.path, META).read_text())
                except (OSError, ValueError):
                    continue
                if isinstance(meta, dict):
                    found.append(CacheEntry(Path(folder.path), meta))
            self._entries = found
        return self._entries

    def entries_of(self, script_uid: str) -> list[CacheEntry]:
        return [
            e
            for e in self.entries()
            if e.meta.get("script_uid") == script_uid and "tmp" not in e.tags
        ]

    def search(self, script_uid: str, tags: list[str]) -> list[CacheEntry]:
        """Finished entries of ``script_uid`` having every plain tag of ``tags`` and none
        of its ``-tag`` ones."""
        need = {t for t in tags if not t.startswith("-")}
        refuse = {t[1:] for t in tags if t.startswith("-")} | {"tmp"}
        out = []
        for entry in self.entries():
            have = set(entry.tags)
            if entry.meta.get("script_uid") == script_uid and need <= have and not refuse & have:
                out.append(entry)
        return out

    def create(self, script, tags: list[str], variations: list[str], version: str):
        """A new entry tagged ``tmp``, for ``script`` about to run in it."""
        uid = uuid.uuid4().hex[:16]
        path = self.root / f"{script.alias}_{uid}"
        path.mkdir(parents=True)
        meta = {
            "uid": uid,
            "tags": ["tmp", *tags],
            "script_uid": script.uid,
            "script_alias": script.alias,
            "associated_script_item": f"{script.alias},{script.uid}",
            "variations": variations,
            "version": version,
            "created": time.time(),
        }
        entry = CacheEntry(path, meta)
        _write_json(path / META, meta)
        self.entries().append(entry)
        return entry

    def finish(
        self,
        entry: CacheEntry,
        tags,
        new_env,
        new_state,
        deps,
        version,
        script,
        *,
        env: dict,
        expiration="",
        dependent: str = "",
    ) -> None:
        """Record a successful run in ``entry`` and make it visible (``tmp`` dropped).

        The state keeps ``new_env`` as the script made it, since a later run reuses it; the
        two shell files, which only show what ran, have their secrets masked.
        """
        from ckg.core.redact import mask_env, secret_values
        from ckg.run.scripts.native import export_lines

        _write_json(
            entry.path / STATE,
            {"new_state": new_state, "new_env": new_env, "deps": deps, "version": version},
        )
        secrets = secret_values(os.environ, env, new_env)
        for name, values in (("tmp-env.sh", new_env), ("tmp-env-all.sh", env)):
            (entry.path / name).write_text(
                "\n".join(["#!/bin/bash", "", *export_lines(mask_env(values, secrets))]) + "\n"
            )
        meta = dict(entry.meta)
        meta["tags"] = [t for t in dict.fromkeys(tags) if t != "tmp"]
        if version:
            meta["version"] = version
        if expiration:
            meta["cache_expiration"] = parse_expiration(expiration)
        if (
            dependent
            and os.path.exists(dependent)
            and os.path.realpath(dependent) != os.path.realpath(entry.path)
        ):
            meta["dependent_cached_path"] = dependent
        meta["finished"] = time.time()
        entry.meta = meta
        _write_json(entry.path / META, meta)

    def load_state(self, entry: CacheEntry) -> dict | None:
        """``new_env``, ``new_state``, ``version`` of a finished entry (None: unreadable)."""
        try:
            data = json.loads((entry.path / STATE).read_text())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def remove(self, entry: CacheEntry) -> None:
        shutil.rmtree(entry.path, ignore_errors=True)
        if self._entries is not None and entry in self._entries:
            self._entries.remove(entry)


def list_entries(root: Path, tags: str = "") -> list[dict]:
    """Finished cache entries under ``root`` whose tags include every tag of ``tags``
    (``-tag`` excludes), as rows for ``ckg cache list``.

    >>> list_entries(Path("/nonexistent"))
    []
    """
    words = [t for t in tags.split(",") if t.strip()] if tags else []
    need = {w.strip() for w in words if not w.strip().startswith("-")}
    refuse = {w.strip()[1:] for w in words if w.strip().startswith("-")} | {"tmp"}
    rows = []
    for entry in ScriptCache(root).entries():
        have = set(entry.tags) | {entry.meta.get("script_alias", "")}
        if need <= have and not refuse & have:
            created = entry.meta.get("created", 0)
            rows.append(
                {
                    "entry": entry.path.name,
                    "script": entry.meta.get("script_alias", ""),
                    "variations": ",".join("_" + v for v in entry.meta.get("variations") or []),
                    "version": entry.version,
                    "created": time.strftime("%Y-%m-%d %H:%M", time.localtime(created)),
                    "expires": _expiry(entry),
                    "path": str(entry.path),
                }
            )
    return rows


def remove_entries(root: Path, names: list[str]) -> list[str]:
    """Delete the entries named (folder name, or script alias for all of its entries);
    the folder names removed."""
    cache = ScriptCache(root)
    removed = []
    for entry in list(cache.entries()):
        if entry.path.name in names or entry.meta.get("script_alias") in names:
            cache.remove(entry)
            removed.append(entry.path.name)
    return removed


def _expiry(entry: CacheEntry) -> str:
    seconds = entry.meta.get("cache_expiration")
    if not seconds:
        return ""
    at = float(entry.meta.get("created", 0)) + float(seconds)
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(at))


def _write_json(path: Path, data) -> None:
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.write_text(json.dumps(data, indent=2, sort_keys=True, default=str))
    os.replace(partial, path)
