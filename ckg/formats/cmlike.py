"""What CM and MLC share: artifacts in ``<automation>/<alias>/<meta file>``, CM's dependency lists.

:mod:`ckg.formats.cm` and :mod:`ckg.formats.mlc` only name their file layout (:class:`Layout`);
everything else is here. One artifact folder gives:

- an ``Artifact`` node (uid, alias, kind = ``automation_alias``, format, tags, path, meta as
  JSON, digest of the meta bytes, source_uid, variations as declared, ``name.#`` kept);
- a ``Variation`` node per key of ``variations`` (``group``, ``is_default`` when it has a
  ``default`` key, ``base``), linked by ``HAS_VARIATION``;
- a :class:`~ckg.core.records.Dependency` per entry of ``deps``, ``prehook_deps``,
  ``posthook_deps``, ``post_deps``, at top level and inside each variation
  (``via_variation``), with its guard (``enable_if_env``, ``skip_if_env``,
  ``enable_if_any_env``, ``skip_if_any_env``) as compact JSON with sorted keys.

A repository descriptor (``cmr.yaml``, MLC's repository-root ``meta.yaml``) becomes an
``Artifact`` of kind ``repo`` tagged ``repo,<alias>``; each of its ``deps`` that is not a
``conflict`` becomes a dependency of kind ``repo_deps`` on tags ``repo,<alias>``.

When both a JSON and a YAML meta file sit in one folder they make one artifact, the YAML
merged over the JSON as CM does. Warnings name file and line: unreadable files, duplicate
uids (the later folder gets a uid derived from its path), an alias that differs from its
folder name, a missing uid (derived from source and path), unknown keys in dependency
entries (with the nearest known key), tags that are neither a list nor a comma string.
"""

import difflib
import hashlib
import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ckg.core.records import Dependency, Edge, Node, Problem, Records
from ckg.formats.loaders import Loaded, digest, isolated, json_text, load_mapping, relpath

DEP_KINDS = ("deps", "prehook_deps", "posthook_deps", "post_deps")
GUARD_KEYS = ("enable_if_env", "skip_if_env", "enable_if_any_env", "skip_if_any_env")

# Keys CM's and MLC's script automation read from a dependency entry (their documentation
# and the ``_run_deps`` behaviour they describe). Any other key is either passed on to the
# called script as an input or silently ignored, which is how typos survive in real repos.
KNOWN_DEP_KEYS = frozenset(
    {
        "tags",
        "names",
        *GUARD_KEYS,
        "skip_if_fake_run",
        "env",
        "force_env_keys",
        "force_new_env_keys",
        "version",
        "version_min",
        "version_max",
        "version_max_usable",
        "update_tags_from_env",
        "update_tags_from_env_with_prefix",
        "update_tags_if_env",
        "inherit_variation_tags",
        "skip_inherit_variation_groups",
        "force_cache",
        "extra_cache_tags",
        "extra_cache_rm_tags",
        "reuse_version",
        "dynamic",
        "add_deps",
        "add_deps_recursive",
        "ad",
        "adr",
    }
)


@dataclass(frozen=True, slots=True)
class Layout:
    """How one CM-like format names its files.

    ``meta_names`` are merged in order (later wins); ``descriptor`` is the repository
    descriptor's file name. When it equals a meta name (MLC's ``meta.yaml``) a file is a
    descriptor only where its folder holds automation folders of artifacts.
    """

    format: str
    meta_names: tuple[str, ...]
    descriptor: str


def split_tags(value: Any) -> list[str] | None:
    """Tags as a list of strings from a list or a comma string; None for anything else.

    Examples
    --------
    >>> split_tags("get, python3,_conda.#,")
    ['get', 'python3', '_conda.#']
    >>> split_tags(["get", 2024])
    ['get', '2024']
    >>> split_tags({"a": 1}) is None
    True
    """
    if isinstance(value, str):
        return [t for t in (p.strip() for p in value.split(",")) if t]
    if isinstance(value, list) and all(isinstance(t, str | int | float) for t in value):
        return [str(t).strip() for t in value if str(t).strip()]
    return None


def as_list(value: Any) -> list[str]:
    """A string or list of strings as a list of strings (names, base variations)."""
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v) for v in value]
    return [str(value)]


def guard_json(entry: dict) -> str:
    """The guard conditions of a dependency entry as compact, key-sorted JSON; "" if none.

    >>> guard_json({"tags": "x", "skip_if_env": {"A": ["yes"]}})
    '{"skip_if_env":{"A":["yes"]}}'
    """
    guard = {k: entry[k] for k in GUARD_KEYS if k in entry}
    if not guard:
        return ""
    return json.dumps(guard, sort_keys=True, separators=(",", ":"), default=str)


def derived_uid(source_uid: str, rel: str) -> str:
    """A stable 16-hex uid for an artifact whose meta has none."""
    return hashlib.sha256(f"{source_uid}:{rel}".encode()).hexdigest()[:16]


def is_true(value: Any) -> bool:
    """CM's notion of a true meta flag: a YAML true, or the strings yes/true/on."""
    if isinstance(value, str):
        return value.strip().lower() in ("yes", "true", "on")
    return value is True


def read_tree(root: Path, source_uid: str, files: list[Path], layout: Layout) -> Records:
    """Records for the CM-like artifacts and descriptors among ``files`` (paths under root).

    Parameters
    ----------
    root : Path
        The source's root folder; artifact paths are relative to it.
    source_uid : str
        Stored on every artifact (``source_uid``).
    files : list[Path]
        Meta files and descriptors, as :func:`ckg.formats.detect.detect_formats` lists them.
    layout : Layout
        The format's file names.
    """
    root = Path(root)
    folders: dict[Path, list[Path]] = defaultdict(list)
    descriptors: list[Path] = []
    for f in files:
        if f.name == layout.descriptor and not _artifact_meta(f, root, layout):
            descriptors.append(f)
        elif f.name in layout.meta_names:
            folders[f.parent].append(f)

    records = Records()
    seen: dict[str, str] = {}  # uid -> path of the folder that has it
    for d in sorted(descriptors):
        isolated(
            records,
            relpath(d, root),
            lambda r, d=d: _read_descriptor(root, source_uid, d, layout, r),
        )
    for folder in sorted(folders):
        order = {name: i for i, name in enumerate(layout.meta_names)}
        metas = sorted(folders[folder], key=lambda p: order[p.name])
        isolated(
            records,
            relpath(metas[-1], root),
            lambda r, f=folder, m=metas: _read_artifact(root, source_uid, f, m, layout, r, seen),
        )
    return records


def _artifact_meta(path: Path, root: Path, layout: Layout) -> bool:
    """Whether a file named like the descriptor is an artifact's meta (MLC's ``meta.yaml``).

    Decided from the file alone, as :mod:`ckg.formats.detect` does, so that reading a few
    changed files gives the same answer as reading them all: an artifact meta sits in
    ``<automation>/<alias>/`` where the automation folder is ``script`` or lies beside a
    repository descriptor inside ``root``.
    """
    if path.name not in layout.meta_names:
        return False
    automation = path.parent.parent
    repo = automation.parent
    inside = repo == root or root in repo.parents
    return automation.name == "script" or (inside and (repo / layout.descriptor).is_file())


def repo_node(
    uid: str, alias: str, fmt: str, rel: str, meta: dict, sha: str, source_uid: str
) -> Node:
    """The ``Artifact`` of kind ``repo`` for a repository descriptor (CM, MLC and CK alike)."""
    props = {
        "uid": uid,
        "alias": alias,
        "kind": "repo",
        "format": fmt,
        "tags": ["repo", alias],
        "path": rel,
        "meta": json_text(meta),
        "digest": sha,
        "source_uid": source_uid,
        "variations": [],
    }
    return Node("Artifact", uid, props)


def repo_dependency(uid: str, position: int, alias: str, path: str, line: int | None) -> Dependency:
    """A dependency of repository ``uid`` on the repository ``alias`` (kind ``repo_deps``)."""
    return Dependency(uid, "repo_deps", position, ["repo", alias], [alias], path=path, line=line)


def _read_descriptor(root: Path, source_uid: str, path: Path, layout: Layout, out: Records):
    doc = load_mapping(path, root)
    if isinstance(doc, Problem):
        out.warnings.append(doc)
        return
    meta = doc.data
    rel = relpath(path.parent, root)
    alias = str(meta.get("alias") or path.parent.name)
    uid = str(meta.get("uid") or derived_uid(source_uid, rel))
    out.nodes.append(repo_node(uid, alias, layout.format, rel, meta, digest(doc.raw), source_uid))
    entries = meta.get("deps") or []
    if not isinstance(entries, list):
        out.warnings.append(Problem(doc.rel, "deps is not a list", doc.line_of("deps")))
        return
    for i, entry in enumerate(entries):
        line = doc.line_of("deps", i)
        if not isinstance(entry, dict) or not entry.get("alias"):
            out.warnings.append(Problem(doc.rel, "repository dep without alias", line))
        elif not is_true(entry.get("conflict")):  # conflict: must NOT be installed beside
            out.dependencies.append(repo_dependency(uid, i, str(entry["alias"]), doc.rel, line))


def _read_artifact(
    root: Path,
    source_uid: str,
    folder: Path,
    metas: list[Path],
    layout: Layout,
    out: Records,
    seen: dict[str, str],
) -> None:
    docs: list[Loaded] = []
    for path in metas:
        doc = load_mapping(path, root)
        if isinstance(doc, Problem):
            out.warnings.append(doc)
        else:
            docs.append(doc)
    if not docs:
        return
    meta: dict = {}
    for doc in docs:
        meta.update(doc.data)
    main = docs[-1]  # the file whose keys won: warnings name it
    rel = relpath(folder, root)

    uid = str(meta.get("uid") or "")
    if not uid:
        uid = derived_uid(source_uid, rel)
        out.warnings.append(Problem(main.rel, f"no uid; using {uid} derived from the path", 1))
    elif uid in seen:
        # The graph keys artifacts by uid: the later folder gets its own, so both stay findable
        new = derived_uid(source_uid, rel)
        msg = (
            f"duplicate uid {uid} (also in {seen[uid]}); this one gets {new} derived from the path"
        )
        out.warnings.append(Problem(main.rel, msg, main.line_of("uid")))
        uid = new
    seen[uid] = rel
    alias = str(meta.get("alias") or folder.name)
    if alias != folder.name:
        out.warnings.append(
            Problem(
                main.rel,
                f"alias {alias!r} differs from folder name {folder.name!r}",
                main.line_of("alias"),
            )
        )
    tags = split_tags(meta.get("tags", []))
    if tags is None:
        out.warnings.append(
            Problem(main.rel, "tags is neither a list nor a comma string", main.line_of("tags"))
        )
        tags = []
    kind = str(meta.get("automation_alias") or folder.parent.name)

    variations = meta.get("variations") or {}
    if not isinstance(variations, dict):
        out.warnings.append(
            Problem(main.rel, "variations is not a mapping", main.line_of("variations"))
        )
        variations = {}
    out.nodes.append(
        Node(
            "Artifact",
            uid,
            {
                "uid": uid,
                "alias": alias,
                "kind": kind,
                "format": layout.format,
                "tags": tags,
                "path": rel,
                "meta": json_text(meta),
                "digest": digest(*(d.raw for d in docs)),
                "source_uid": source_uid,
                "variations": [str(v) for v in variations],
            },
        )
    )
    for name, body in variations.items():
        body = {} if body is None else body
        if not isinstance(body, dict):
            line = main.line_of("variations", name)
            out.warnings.append(Problem(main.rel, f"variation {name!r} is not a mapping", line))
            continue
        vuid = f"{uid}:{name}"
        out.nodes.append(
            Node(
                "Variation",
                vuid,
                {
                    "uid": vuid,
                    "name": str(name),
                    "group": str(body.get("group") or ""),
                    # MLCFlow tests only that the key is there: "default: true," (a string
                    # in a real meta) and even "default: false" make the group's default.
                    "is_default": "default" in body,
                    "base": as_list(body.get("base")),
                },
            )
        )
        out.edges.append(Edge("HAS_VARIATION", "Artifact", uid, "Variation", vuid))

    # An automation's own "deps" maps names to other automations, not script dependencies.
    if kind == "automation":
        return
    _dependencies(main, meta, (), uid, "", out)
    for name, body in variations.items():
        if isinstance(body, dict):
            _dependencies(main, body, ("variations", name), uid, str(name), out)


def _dependencies(doc: Loaded, section: dict, at: tuple, uid: str, via: str, out: Records) -> None:
    for kind in DEP_KINDS:
        entries = section.get(kind)
        if entries is None:
            continue
        if not isinstance(entries, list):
            out.warnings.append(Problem(doc.rel, f"{kind} is not a list", doc.line_of(*at, kind)))
            continue
        for i, entry in enumerate(entries):
            keys = (*at, kind, i)
            if not isinstance(entry, dict):
                out.warnings.append(
                    Problem(doc.rel, f"{kind} entry is not a mapping", doc.line_of(*keys))
                )
                continue
            for key in entry.keys() - KNOWN_DEP_KEYS:
                out.warnings.append(
                    Problem(
                        doc.rel, unknown_key_message(key, f"{kind} entry"), doc.line_of(*keys, key)
                    )
                )
            tags = split_tags(entry.get("tags"))
            if tags is None:
                msg = f"{kind} entry tags are neither a list nor a comma string"
                out.warnings.append(Problem(doc.rel, msg, doc.line_of(*keys, "tags")))
                tags = []
            out.dependencies.append(
                Dependency(
                    artifact_uid=uid,
                    kind=kind,
                    position=i,
                    tags=tags,
                    names=as_list(entry.get("names")),
                    guard=guard_json(entry),
                    via_variation=via,
                    version=_text(entry.get("version")),
                    version_min=_text(entry.get("version_min")),
                    version_max=_text(entry.get("version_max")),
                    path=doc.rel,
                    line=doc.line_of(*keys),
                )
            )


def unknown_key_message(key: str, where: str, known: frozenset[str] = KNOWN_DEP_KEYS) -> str:
    """Warning text for an unknown key in a dependency entry, with the nearest known key.

    >>> unknown_key_message("force-cache", "deps entry")
    "unknown key 'force-cache' in deps entry (did you mean 'force_cache'?)"
    """
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.8)
    hint = (
        f"did you mean {close[0]!r}?" if close else "passed to the script as an input, or ignored"
    )
    return f"unknown key {key!r} in {where} ({hint})"


def _text(value: Any) -> str:
    return "" if value is None else str(value)
