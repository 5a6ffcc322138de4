"""Collective Knowledge v1 repositories: ``.ckr.json``, ``<module>/<alias>/.cm/meta.json``.

An entry is a folder ``<module>/<alias>/`` with ``.cm/meta.json`` (the meta), ``.cm/info.json``
(``backup_data_uid``: the uid; ``data_name``) and ``.cm/desc.json``. The module folder keeps
alias files: ``.cm/alias-a-<alias>`` holds the uid, ``.cm/alias-u-<uid>`` the alias. The
entry becomes an ``Artifact`` of kind = module name (``soft``, ``package``, ``env``, ...),
format ``ck``, alias = folder name, uid from ``info.json`` (else the alias file, else derived
from source and path, with a warning), digest over ``meta.json`` and ``info.json``.

CK dependencies are a dict name -> ``{tags, no_tags, version_from, version_to, ...}``; each
becomes a :class:`~ckg.core.records.Dependency` of kind ``ck`` in the dict's order: ``names`` is
``[name]``, ``tags`` the comma string split plus each ``no_tags`` tag as ``-tag``,
``version_min`` / ``version_max`` the ``version_from`` / ``version_to`` lists joined by dots,
and ``enable_if_env`` / ``skip_if_env`` the guard. ``.ckr.json`` becomes an ``Artifact`` of
kind ``repo`` whose ``repo_deps`` are ``repo_deps`` dependencies, as for CM.

Examples
--------
>>> import json, tempfile
>>> d = Path(tempfile.mkdtemp()); (d / "soft" / "lib.x" / ".cm").mkdir(parents=True)
>>> meta = {"tags": ["lib", "x"], "deps": {"cc": {"tags": "compiler,lang-c", "no_tags": "llvm",
...                                               "version_from": [9, 1]}}}
>>> _ = (d / "soft" / "lib.x" / ".cm" / "meta.json").write_text(json.dumps(meta))
>>> _ = (d / "soft" / "lib.x" / ".cm" / "info.json").write_text('{"backup_data_uid": "abc"}')
>>> dep = read(d, "s").dependencies[0]
>>> dep.tags, dep.names, dep.version_min
(['compiler', 'lang-c', '-llvm'], ['cc'], '9.1')
"""

import json
from pathlib import Path
from typing import Any

from ckg.core.records import Dependency, Node, Problem, Records
from ckg.formats.cmlike import (
    derived_uid,
    guard_json,
    repo_dependency,
    repo_node,
    split_tags,
    unknown_key_message,
)
from ckg.formats.detect import CK_DESCRIPTOR, detect_formats
from ckg.formats.files import read_file
from ckg.formats.loaders import Loaded, digest, isolated, json_text, load_mapping, relpath

# Keys CK v1's env automation reads from a dependency (ck-env's own docs and metas).
KNOWN_CK_DEP_KEYS = frozenset(
    {
        "tags",
        "no_tags",
        "name",
        "local",
        "sort",
        "version_from",
        "version_to",
        "add_to_path",
        "skip_from_bat",
        "force_target_as_host",
        "only_for_target_os_tags",
        "only_for_host_os_tags",
        "skip_default",
        "enable_if_env",
        "skip_if_env",
        "update_tags_if_env",
        "update_tags_by_target_os_uoa",
        "repeat_at_the_end",
        "env_key",
        "skip_installed",
    }
)


def read(root: Path, source_uid: str, files: list[Path] | None = None) -> Records:
    """Records of every CK v1 entry and ``.ckr.json`` under ``root``.

    ``files`` are the paths :func:`ckg.formats.detect.detect_formats` lists under ``"ck"``
    (``.cm/meta.json`` files and descriptors); None detects them.
    """
    root = Path(root)
    if files is None:
        files = detect_formats(root).get("ck", [])
    records = Records()
    seen: dict[str, str] = {}
    for path in sorted(files):
        if path.name == CK_DESCRIPTOR:
            reader = lambda r, p=path: _read_descriptor(root, source_uid, p, r)  # noqa: E731
        else:
            reader = lambda r, p=path: _read_entry(root, source_uid, p, r, seen)  # noqa: E731
        isolated(records, relpath(path, root), reader)
    return records


def _read_descriptor(root: Path, source_uid: str, path: Path, out: Records) -> None:
    doc = load_mapping(path, root)
    if isinstance(doc, Problem):
        out.warnings.append(doc)
        return
    meta = doc.data
    rel = relpath(path.parent, root)
    alias = str(meta.get("data_alias") or meta.get("data_uoa") or path.parent.name)
    uid = str(meta.get("data_uid") or derived_uid(source_uid, rel))
    out.nodes.append(repo_node(uid, alias, "ck", rel, meta, digest(doc.raw), source_uid))
    repo_deps = (meta.get("dict") or {}).get("repo_deps") or []
    for i, entry in enumerate(repo_deps if isinstance(repo_deps, list) else []):
        name = entry.get("repo_uoa") if isinstance(entry, dict) else None
        line = doc.line_of("dict", "repo_deps")
        if not name:
            out.warnings.append(Problem(doc.rel, "repo_deps entry without repo_uoa", line))
            continue
        out.dependencies.append(repo_dependency(uid, i, str(name), doc.rel, line))


def _small_text(path: Path, root: Path) -> str | None:
    """The stripped text of a CK alias file; None when unreadable or holding NUL (no uid)."""
    try:
        text = read_file(path, root).decode("utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return None if "\0" in text else text


def _read_entry(root: Path, source_uid: str, path: Path, out: Records, seen: dict) -> None:
    doc = load_mapping(path, root)
    if isinstance(doc, Problem):
        out.warnings.append(doc)
        return
    meta = doc.data
    entry = path.parent.parent
    module, alias = entry.parent.name, entry.name
    rel = relpath(entry, root)
    raws = [doc.raw]
    info = (
        load_mapping(path.parent / "info.json", root)
        if (path.parent / "info.json").exists()
        else None
    )
    uid = ""
    if isinstance(info, Problem):
        out.warnings.append(info)
    elif isinstance(info, Loaded):
        raws.append(info.raw)
        uid = str(info.data.get("backup_data_uid") or "")
    alias_uid = _small_text(entry.parent / ".cm" / f"alias-a-{alias}", root)
    if uid and alias_uid and alias_uid != uid:
        msg = f"alias file alias-a-{alias} holds uid {alias_uid}, info.json says {uid}"
        out.warnings.append(Problem(doc.rel, msg))
    uid = uid or alias_uid or ""
    if not uid:
        uid = derived_uid(source_uid, rel)
        out.warnings.append(Problem(doc.rel, f"no uid in info.json or alias file; using {uid}"))
    elif uid in seen:
        new = derived_uid(source_uid, rel)
        msg = (
            f"duplicate uid {uid} (also in {seen[uid]}); this one gets {new} derived from the path"
        )
        out.warnings.append(Problem(doc.rel, msg))
        uid = new
    seen[uid] = rel
    back = _small_text(entry.parent / ".cm" / f"alias-u-{uid}", root)
    if back is not None and back != alias:
        msg = f"alias file alias-u-{uid} names {back!r}, but the folder is {alias!r}"
        out.warnings.append(Problem(doc.rel, msg))

    tags = split_tags(meta.get("tags", []))
    if tags is None:
        out.warnings.append(
            Problem(doc.rel, "tags is neither a list nor a comma string", doc.line_of("tags"))
        )
        tags = []
    props = {
        "uid": uid,
        "alias": alias,
        "kind": module,
        "format": "ck",
        "tags": tags,
        "path": rel,
        "meta": json_text(meta),
        "digest": digest(*raws),
        "source_uid": source_uid,
        "variations": [],
    }
    out.nodes.append(Node("Artifact", uid, props))
    deps = meta.get("deps")
    if deps is None:
        return
    if not isinstance(deps, dict):
        out.warnings.append(Problem(doc.rel, "deps is not a mapping", doc.line_of("deps")))
        return
    for position, (name, dep) in enumerate(deps.items()):
        _dependency(doc, uid, position, str(name), dep, out)


def _dependency(doc: Loaded, uid: str, position: int, name: str, dep: Any, out: Records) -> None:
    line = doc.line_of("deps", name)
    if not isinstance(dep, dict):
        out.warnings.append(Problem(doc.rel, f"dependency {name!r} is not a mapping", line))
        return
    for key in sorted(dep.keys() - KNOWN_CK_DEP_KEYS):
        message = unknown_key_message(key, f"dependency {name!r}", KNOWN_CK_DEP_KEYS)
        out.warnings.append(Problem(doc.rel, message, doc.line_of("deps", name, key)))
    tags = split_tags(dep.get("tags", ""))
    no_tags = split_tags(dep.get("no_tags", ""))
    if tags is None or no_tags is None:
        msg = f"dependency {name!r}: tags or no_tags is neither a list nor a comma string"
        out.warnings.append(Problem(doc.rel, msg, line))
        tags, no_tags = tags or [], no_tags or []
    out.dependencies.append(
        Dependency(
            artifact_uid=uid,
            kind="ck",
            position=position,
            tags=tags + [f"-{t}" for t in no_tags],
            names=[name],
            guard=guard_json(dep),
            version_min=_version(dep.get("version_from")),
            version_max=_version(dep.get("version_to")),
            path=doc.rel,
            line=line,
        )
    )


def _version(value: Any) -> str:
    """CK writes versions as lists of parts (``[1, 8, 0]``); ckg keeps dotted strings."""
    if value is None or value == []:
        return ""
    if isinstance(value, list):
        return ".".join(str(v) for v in value)
    return json.dumps(value) if isinstance(value, dict) else str(value)
