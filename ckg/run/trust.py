"""Which sources may run code here, and the cache of dependency steps.

A folder on this machine is its owner's own code; anything fetched (a Git repository, a zip,
wheel or tar archive) runs only after ``ckg trust SOURCE`` put its uid in
``$CKG_HOME/trust.json``, or with ``--trust`` for one run. Trust is given to content, not to a
place: the entry keeps the source's digest (the archive's sha256, the Git commit), and once a
re-ingest brings other content, that content needs ``ckg trust`` again.

A dependency step that succeeded is remembered in ``$CKG_HOME/cache/steps/<key>.json``
with the environment it exported; a later run with the same key reuses it. A failed step is
never written there.
"""

import json
import os
from pathlib import Path

TRUST_FILE = "trust.json"
CACHE_DIR = Path("cache") / "steps"


def trusted(home: Path) -> dict[str, dict]:
    """Trusted source uids, each with the ``location`` and content ``digest`` it was trusted at.

    An entry written before digests were kept (a bare location) has an empty digest, which
    no content matches.
    """
    path = Path(home) / TRUST_FILE
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except ValueError:
        entries = None
    if not isinstance(entries, dict):
        from ckg.errors import InvalidInput

        raise InvalidInput(f"{path}: not a JSON object of trusted sources; fix or delete it")
    return {
        uid: entry if isinstance(entry, dict) else {"location": entry, "digest": ""}
        for uid, entry in entries.items()
    }


def add_trust(home: Path, sources: dict[str, dict]) -> None:
    """Trust each ``uid -> {"location", "digest"}`` of ``sources`` from now on."""
    entries = trusted(home) | sources
    _write_json(Path(home) / TRUST_FILE, entries)


def distrust(entry: dict | None, digest: str | None) -> str | None:
    """Why content with ``digest`` is not trusted by ``entry``, or None when it is.

    >>> distrust({"location": "x.tar", "digest": "ab12"}, "ab12") is None
    True
    >>> distrust({"location": "x.tar", "digest": "ab12"}, "cd34")
    'which changed since it was trusted (content ab12 then, cd34 now)'
    """
    if entry is None:
        return "which is not trusted"
    if not entry.get("digest"):
        return "which was trusted before ckg recorded what it trusted"
    if entry["digest"] != digest:
        return (
            f"which changed since it was trusted "
            f"(content {entry['digest'][:12]} then, {(digest or 'unknown')[:12]} now)"
        )
    return None


def cache_get(home: Path, key: str) -> dict | None:
    """The cached outcome of the step with ``key``, or None."""
    try:
        return json.loads((Path(home) / CACHE_DIR / f"{key}.json").read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return None


def cache_put(home: Path, key: str, entry: dict) -> None:
    """Remember a succeeded step (written atomically: a reader sees all of it or nothing)."""
    _write_json(Path(home) / CACHE_DIR / f"{key}.json", entry)


def _write_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # the user's alone
    with open(fd, "w", encoding="utf-8") as handle:
        handle.write(json.dumps(data, indent=1, sort_keys=True))
    os.replace(tmp, path)


def trust_source(kg, source: str) -> list[dict]:
    """Trust the ingested source(s) whose uid or location is ``source``, at the content they
    were last ingested with (their ``digest``); return them.

    A local path is matched by its absolute form, as ingest stores it.

    Raises
    ------
    NotFound
        When no ingested source has that uid or location.
    """
    from ckg.errors import NotFound

    names = [source]
    if Path(source).expanduser().exists():
        names.append(str(Path(source).expanduser().resolve()))
    rows = kg.store.run(
        "MATCH (s:Source) WHERE s.uid IN $names OR s.location IN $names "
        "RETURN s.uid AS uid, s.location AS location, s.kind AS kind, s.digest AS digest",
        {"names": names},
    )
    if not rows:
        raise NotFound(f"no ingested source has uid or location {source!r}: ingest it first")
    add_trust(
        kg.home,
        {row["uid"]: {"location": row["location"], "digest": row["digest"]} for row in rows},
    )
    return rows
