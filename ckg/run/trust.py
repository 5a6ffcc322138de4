"""Which sources may run code here, and the cache of dependency steps.

A folder on this machine that the user running ckg (or the system) owns, and no one else may
write to, is that user's own code; a Git repository, a zip, wheel or tar archive runs only
after ``ckg trust SOURCE`` put its uid in
``$CKG_HOME/trust.json``, or with ``--trust`` for one run. Trust is given to content, not to a
place: the entry keeps the source's digest (the archive's sha256, the Git commit), and once a
re-ingest brings other content, that content needs ``ckg trust`` again. What a step runs is
read from its meta in the graph; before it runs, that meta is checked against the meta file
of the folder it runs from (:func:`meta_mismatch`), so a graph others can write cannot change
what a trusted source runs.

A dependency step that succeeded is remembered in ``$CKG_HOME/cache/steps/<key>.json``
with the environment it exported; a later run with the same key reuses it. A failed step is
never written there.
"""

import hashlib
import json
import os
import stat
from pathlib import Path

from importers.detect import CKG_META, CM_META, MLC_META

TRUST_FILE = "trust.json"
CACHE_DIR = Path("cache") / "steps"
#: Where the metas found equal to their source's files are remembered (:func:`meta_mismatch`).
META_CHECKED_DIR = Path("cache") / "metas-checked"


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


#: The files an artifact's meta is read from, per format whose meta says what runs.
META_FILES = {"ckg": (CKG_META,), "mlc": MLC_META, "cm": CM_META}


def meta_mismatch(root: Path, step, home: Path) -> str | None:
    """Why the meta the graph holds for ``step`` is not the one its source holds, or None.

    The command, environment and dependencies of a step come from the graph; a graph that
    others can write (a shared Neo4j) could hold another meta than the trusted source, so
    the meta file in the folder the step runs from is read again, with the importer that
    read it at ingest, and must give the same meta. A pair of meta file bytes and graph meta
    found equal once is remembered in ``home`` (private to the user), so that a run of the
    same step reads the file but parses nothing.
    """
    from importers import importer

    names = META_FILES.get(step.format)
    if not names:
        return None
    folder = Path(root) / (step.path or "")
    files = [folder / name for name in names if (folder / name).is_file()]
    if not files:
        return f"no {' or '.join(names)} in {folder}"
    seen = hashlib.sha256(step.uid.encode())
    for file in files:
        seen.update(file.read_bytes())
    seen.update(json.dumps(step.meta, sort_keys=True, default=str).encode())
    checked = Path(home) / META_CHECKED_DIR / seen.hexdigest()[:32]
    if checked.exists():
        return None
    read = importer(step.format).read(Path(root), step.source_uid or "", files)
    metas = [json.loads(n.props["meta"]) for n in read.nodes
             if n.label == "Artifact" and n.props.get("path") == step.path]
    if metas != [step.meta]:
        return f"its meta in the graph is not the one in {files[0]}"
    checked.parent.mkdir(parents=True, exist_ok=True)
    checked.touch()
    return None


def owned_folder(path) -> bool:
    """Whether ``path`` is a folder whose code the user running ckg runs as their own: one
    that user or the system (root) owns, and that no one else may write to.

    >>> owned_folder("/"), owned_folder("/tmp"), owned_folder("/no/such/folder")
    (True, False, False)
    """
    try:
        info = Path(path).stat()
    except (OSError, TypeError, ValueError):
        return False
    return (
        stat.S_ISDIR(info.st_mode)
        and info.st_uid in (os.getuid(), 0)
        and not info.st_mode & stat.S_IWOTH
    )
