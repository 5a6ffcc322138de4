"""Variation selection and application with CM's rules.

A CM script declares ``variations``: named bundles of ``env``, ``default_env``, ``deps``,
``add_deps_recursive`` and more, chosen with ``_name`` tags. The rules followed here are those
of CM's script automation (``_update_state_from_variations`` and helpers):

- ``alias: other`` stands for ``other``; ``-name`` excludes ``name``.
- With nothing requested, the meta's ``default_variation`` is requested.
- ``base: [...]`` variations are turned on with the variation that names them.
- ``default_variations: {group: name}`` (in a variation or a combination) turns ``name`` on
  when no variation of ``group`` is on yet.
- Each ``group`` holds at most one variation; a group with none gets its ``default: true``
  variation, unless that one is excluded. Base and default expansion repeat until stable.
- A combination key ``a,b`` applies when ``a`` and ``b`` are both on, smaller ones first.
- A dynamic variation ``name.#`` matches ``_name.VALUE``; ``#`` in its env values becomes
  ``VALUE``.

As in MLCFlow, any ``default`` key marks its group's default, whatever its value: real metas
hold ``default: true,`` (a string).
"""

from collections.abc import Mapping
from dataclasses import dataclass, field


class VariationError(ValueError):
    """A requested variation is unknown, excluded as a base, or conflicts in its group."""


@dataclass(slots=True)
class Chosen:
    """The variations on for one step, and what they add to it."""

    names: list[str] = field(default_factory=list)  # as tags, dynamic ones with their value
    active: set[str] = field(default_factory=set)  # declared keys on, combinations included
    env: dict = field(default_factory=dict)  # overrides, in application order
    default_env: dict = field(default_factory=dict)  # set only where still unset
    new_env_keys: list[str] = field(default_factory=list)
    add_deps_recursive: dict = field(default_factory=dict)  # dependency name -> {"tags": ...}
    add_deps: dict = field(default_factory=dict)


def static_name(tag: str, variations: Mapping) -> str:
    """The declared key a requested tag stands for: itself, or ``name.#`` for ``name.VALUE``.

    >>> static_name("package.numpy", {"package.#": {}})
    'package.#'
    >>> static_name("cpu", {"cpu": {}})
    'cpu'
    """
    if tag in variations or "." not in tag or tag.endswith("."):
        return tag
    return tag[: tag.index(".") + 1] + "#"


def is_declared(tag: str, variations: Mapping) -> bool:
    """Whether ``tag`` names a declared variation (directly or through ``name.#``)."""
    return static_name(tag, variations) in variations


def groups_of(variations: Mapping) -> dict[str, dict]:
    """``group -> {"variations": [...], "default": name or None}`` for a variations meta."""
    groups: dict[str, dict] = {}
    for name, meta in variations.items():
        if isinstance(meta, Mapping) and meta.get("group"):
            group = groups.setdefault(str(meta["group"]), {"variations": [], "default": None})
            group["variations"].append(name)
            if "default" in meta:  # MLCFlow tests the key's presence, not its value
                group["default"] = name
    return groups


def choose(
    variations: Mapping, requested, *, default_variation: str = "", owner: str = ""
) -> list[str]:
    """The variations that are on, in CM's order, for the tags ``requested``.

    Parameters
    ----------
    variations : mapping
        The script's ``variations`` meta.
    requested : iterable of str
        Variation names without the leading ``_``; ``-name`` excludes ``name``.
    default_variation : str
        The meta's ``default_variation``, used when nothing is requested.
    owner : str
        The script's alias, for messages.

    Returns
    -------
    list of str
        Requested, base, group-default and ``default_variations`` names, without exclusions.

    Raises
    ------
    VariationError
        If a name is not declared, or two variations of one group would be on.

    Examples
    --------
    >>> v = {"cpu": {"group": "target", "default": True}, "cuda": {"group": "target"}}
    >>> choose(v, [])
    ['cpu']
    >>> choose(v, ["cuda"])
    ['cuda']
    """
    tags: list[str] = []
    excluded: set[str] = set()
    for tag in requested:
        if tag.startswith("-"):
            excluded.add(tag[1:])
            continue
        meta = variations.get(tag)
        target = meta.get("alias") if isinstance(meta, Mapping) else None
        tag = str(target) if target else tag
        if tag not in tags:
            tags.append(tag)
    for tag in [*tags, *excluded]:
        if not is_declared(tag, variations):
            declared = ", ".join(sorted(variations)) or "none"
            raise VariationError(
                f"variation {tag!r} is not declared by {owner or 'the script'} "
                f"(declared: {declared})"
            )
    if not tags and default_variation and default_variation not in excluded:
        tags.append(default_variation)
    groups = groups_of(variations)
    while True:
        _add_bases_and_defaults(tags, variations, groups, excluded, owner)
        added = _add_group_defaults(tags, variations, groups, excluded, owner)
        if not added:
            return tags


def _group_taken(group: dict, tags: list[str], variations: Mapping) -> bool:
    return any(static_name(t, variations) in group["variations"] for t in tags)


def _add_bases_and_defaults(tags, variations, groups, excluded, owner) -> None:
    """Turn on ``base`` and ``default_variations`` of every tag until nothing changes."""
    done: set[str] = set()
    while len(done) < len(tags):
        for tag in list(tags):
            if tag in done:
                continue
            done.add(tag)
            meta = variations.get(static_name(tag, variations)) or {}
            for base in meta.get("base") or []:
                if not is_declared(base, variations):
                    raise VariationError(
                        f"variation {base!r}, a base of {tag!r}, is not declared by {owner}"
                    )
                if base in excluded:
                    raise VariationError(f"variation {base!r} is a base of {tag!r} but excluded")
                if base not in tags:
                    tags.append(base)
            on = {static_name(t, variations) for t in tags}
            combos = [c for c in combinations(variations) if set(c.split(",")) <= on]
            metas = [meta] + [variations[c] or {} for c in combos]
            for each in metas:
                for group, name in (each.get("default_variations") or {}).items():
                    if group in groups and not _group_taken(groups[group], tags, variations):
                        if name not in excluded and name not in tags:
                            tags.append(name)


def _add_group_defaults(tags, variations, groups, excluded, owner) -> bool:
    """Check one-per-group and add each empty group's default; True when one was added."""
    added = False
    for group_name, group in groups.items():
        on = sorted({static_name(t, variations) for t in tags} & set(group["variations"]))
        if len(on) > 1:
            raise VariationError(
                f"variations {', '.join(on)} of {owner or 'the script'} are all in group "
                f"{group_name!r}; choose one"
            )
        default = group["default"]
        if not on and default and default not in excluded:
            tags.append(default)
            added = True
    return added


def combinations(variations: Mapping) -> list[str]:
    """Combination keys (``a,b``), fewest parts first, as CM applies them."""
    return sorted((k for k in variations if "," in k), key=lambda k: k.count(","))


def apply(variations: Mapping, names: list[str]) -> Chosen:
    """What the variations ``names`` (from :func:`choose`) add to a step.

    >>> v = {"cuda": {"env": {"USE_CUDA": True}}, "package.#": {"env": {"PKG": "#"}}}
    >>> apply(v, ["cuda", "package.numpy"]).env
    {'USE_CUDA': True, 'PKG': 'numpy'}
    """
    chosen = Chosen(names=list(names))
    for tag in names:
        key = static_name(tag, variations)
        chosen.active.add(key)
        suffix = tag[len(key) - 1 :] if key.endswith(".#") and key != tag else None
        _merge(chosen, variations.get(key) or {}, suffix)
    for combo in combinations(variations):
        if set(combo.split(",")) <= chosen.active:
            chosen.active.add(combo)
            _merge(chosen, variations[combo] or {}, None)
    return chosen


def _merge(chosen: Chosen, meta: Mapping, suffix: str | None) -> None:
    def fill(value):
        return value.replace("#", suffix) if suffix and isinstance(value, str) else value

    for key, value in (meta.get("env") or {}).items():
        chosen.env[key] = fill(value)
    for key, value in (meta.get("default_env") or {}).items():
        chosen.default_env.setdefault(key, fill(value))
    for key in meta.get("new_env_keys") or []:
        if key not in chosen.new_env_keys:
            chosen.new_env_keys.append(key)
    for source, target in (
        (meta.get("add_deps_recursive") or meta.get("adr") or {}, chosen.add_deps_recursive),
        (meta.get("add_deps") or meta.get("ad") or {}, chosen.add_deps),
    ):
        merge_adr(target, source)


def merge_adr(target: dict, source: Mapping) -> dict:
    """Merge ``add_deps_recursive``-style maps: tags are joined, other keys overwritten.

    >>> merge_adr({"python": {"tags": "_a"}}, {"python": {"tags": "_b", "version": "3"}})
    {'python': {'tags': '_a,_b', 'version': '3'}}
    """
    for name, update in source.items():
        if not isinstance(update, Mapping):
            continue
        entry = target.setdefault(name, {})
        for key, value in update.items():
            if key == "tags" and entry.get("tags"):
                joined = [t for t in str(entry["tags"]).split(",") if t]
                joined += [t for t in str(value).split(",") if t and t not in joined]
                entry["tags"] = ",".join(joined)
            else:
                entry[key] = value
    return target
