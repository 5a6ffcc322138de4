"""Which sources may run code here, and the cache of dependency steps.

A folder on this machine is its owner's own code; anything fetched (a Git repository, a zip,
wheel or tar archive) runs only after ``ckg trust SOURCE`` put its uid in
``$CKG_HOME/trust.json``, or with ``--trust`` for one run.

A dependency step that succeeded is remembered in ``$CKG_HOME/cache/steps/<key>.json``
with the environment it exported; a later run with the same key reuses it. A failed step is
never written there.
"""

import json
import os
from pathlib import Path

TRUST_FILE = "trust.json"
CACHE_DIR = Path("cache") / "steps"


def trusted(home: Path) -> dict[str, str]:
    """Trusted source uids and the location each was trusted under."""
    path = Path(home) / TRUST_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except ValueError:
        from ckg.errors import InvalidInput

        raise InvalidInput(f"{path}: not valid JSON; fix or delete it") from None


def add_trust(home: Path, sources: dict[str, str]) -> None:
    """Trust each ``uid -> location`` of ``sources`` from now on."""
    entries = trusted(home) | sources
    _write_json(Path(home) / TRUST_FILE, entries)


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
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)


def trust_source(kg, source: str) -> list[dict]:
    """Trust the ingested source(s) whose uid or location is ``source``; return them.

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
        "RETURN s.uid AS uid, s.location AS location, s.kind AS kind",
        {"names": names},
    )
    if not rows:
        raise NotFound(f"no ingested source has uid or location {source!r}: ingest it first")
    add_trust(kg.home, {row["uid"]: row["location"] for row in rows})
    return rows
