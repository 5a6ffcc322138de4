"""Variations: aliases, exclusions, bases, group defaults, combinations, dynamic ``name.#``.

MLCFlow's rules (mlperf-automations ``automation/script/module.py``:
``_update_state_from_variations``, ``_get_variations_with_aliases``, ``_add_base_variations``
(a base goes first), ``_process_variation_tags_in_groups``, ``_get_variation_groups`` (any
``default`` key marks its group's default, whatever its value),
``_get_variation_tags_from_default_variations``, ``_update_variation_meta_with_dynamic_suffix``);
CM's script automation applies the same ones.
"""

import copy

from ckg.mlc.dialect import MLCFLOW, Dialect
from ckg.mlc.env import MetaError


def dynamic_name(tag: str) -> str | None:
    """The declared name of a dynamic variation tag: ``name.#`` for ``name.value``.

    >>> dynamic_name("version.3.11"), dynamic_name("cpu")
    ('version.#', None)
    """
    if "." not in tag or tag.endswith("."):
        return None
    return tag[: tag.index(".") + 1] + "#"


def _static(tag: str, variations: dict) -> str:
    return tag if tag in variations else (dynamic_name(tag) or tag)


def groups(variations: dict) -> dict:
    """``group -> {"variations": [...], "default": name}``; MLCFlow counts any ``default``
    key, whatever its value."""
    found: dict = {}
    for name, var in variations.items():
        if isinstance(var, dict) and "group" in var:
            group = found.setdefault(var["group"], {"variations": []})
            group["variations"].append(name)
            if "default" in var:
                if "default" in group:
                    raise MetaError(
                        f"variation group {var['group']!r} has two defaults: "
                        f"{group['default']} and {name}"
                    )
                group["default"] = name
    return found


def _relaxed_subset(parts: list[str], tags: list[str]) -> bool:
    for part in parts:
        if part in tags:  # most parts: a plain name, one lookup instead of a scan
            continue
        if not (part.endswith(".#") and any(t.startswith(part[:-1]) for t in tags)):
            return False
    return True


def _defaults_from(
    var_meta: dict, variations: dict, grouped: dict, static: list, excluded: list
) -> list[str]:
    added = []
    for group, name in (var_meta.get("default_variations") or {}).items():
        if group not in grouped:
            raise MetaError(f"default_variations names group {group!r}, which is not declared")
        if set(grouped[group]["variations"]) & set(static):
            continue
        if name in excluded or name in static:
            continue
        if name not in variations and _static(name, variations) not in variations:
            raise MetaError(f"default variation {name!r} is not declared")
        added.append(name)
    return added


def _add_bases(name, variations, tags, seen, excluded, dialect: Dialect) -> None:
    for base in variations[name].get("base") or []:
        if base not in variations and _static(base, variations) not in variations:
            raise MetaError(f"variation {base!r}, a base of {name!r}, is not declared")
        if not dialect.base_first and base not in variations:
            prefix = base.split(".")[0] + "."
            if any(t.startswith(prefix) for t in tags):  # CM: one name.x at a time
                continue
        if base not in tags:
            if base in excluded:
                raise MetaError(f"variation {base!r} is a base of {name!r} but excluded")
            if dialect.base_first:
                tags.insert(0, base)
            else:
                tags.append(base)
            seen[base] = False


def _expand(tags: list, grouped: dict, excluded: list, variations: dict, dialect: Dialect) -> None:
    static = [_static(t, variations) for t in tags]
    combos = sorted((k for k in variations if "," in k), key=lambda k: k.count(","))
    combo_done = dict.fromkeys(combos, False)
    seen = dict.fromkeys(tags, False)
    while True:
        for tag in list(tags) if dialect.base_first else tags:
            if tag.startswith(("~", "-")):
                seen[tag] = True
                continue
            name = _static(tag, variations)
            _add_bases(name, variations, tags, seen, excluded, dialect)
            for extra in _defaults_from(variations[name], variations, grouped, static, excluded):
                seen[extra] = False
                tags.append(extra)
            seen[name] = True
            for combo in combos:
                if combo_done[combo]:
                    continue
                if dialect.combination_bases:
                    if not _relaxed_subset(combo.split(","), tags):
                        continue
                    _add_bases(combo, variations, tags, combo_done, excluded, dialect)
                elif not set(combo.split(",")) <= set(tags):
                    continue
                combo_done[combo] = True
                for extra in _defaults_from(
                    variations[combo] or {}, variations, grouped, static, excluded
                ):
                    seen[extra] = False
                    tags.append(extra)
        pending = [
            t for t in tags if not t.startswith("-") and not seen.get(_static(t, variations), False)
        ]
        if not pending:
            return


def choose(
    meta: dict, requested: list[str], extra_sources: list[dict] = (), dialect: Dialect = MLCFLOW
) -> list[str]:
    """The variation tags that are on, in the order MLCFlow applies them.

    ``requested`` holds names without ``_`` (``-x`` excludes ``x``); aliases, the meta's
    ``default_variation``, ``default_variations`` of the meta (and of ``extra_sources``),
    ``base`` variations (put first), group defaults and combinations' defaults are added
    until nothing changes; ``valid_variation_combinations`` /
    ``invalid_variation_combinations`` are checked.

    >>> v = {"cpu": {"group": "d", "default": True}, "cuda": {"group": "d"},
    ...      "numpy": {"base": ["pip"]}, "pip": {}}
    >>> choose({"variations": v}, ["numpy"])
    ['pip', 'numpy', 'cpu']
    """
    variations = meta.get("variations") or {}
    tags = list(requested)
    excluded = [t[1:] for t in tags if t.startswith("-")]
    excluded = [e if e in variations else (dynamic_name(e) or e) for e in excluded]
    for tag in list(tags):
        if tag.startswith("-"):
            continue
        name = _static(tag, variations)
        if name not in variations:
            known = ", ".join(sorted(variations)) or "none"
            raise MetaError(f"variation {tag!r} is not declared (declared: {known})")
        alias = (variations[name] or {}).get("alias")
        if alias:
            if alias in excluded or alias not in variations:
                raise MetaError(
                    f"variation {tag!r} is an alias of {alias!r}, which is excluded or not declared"
                )
            if alias not in tags:
                tags.append(alias)
    grouped = groups(variations)
    default_variation = meta.get("default_variation", "")
    if default_variation and default_variation not in variations:
        raise MetaError(f"default_variation {default_variation!r} is not declared")
    if not tags and default_variation and default_variation not in excluded:
        tags = [default_variation]
    for source in [*extra_sources, meta] if dialect.meta_default_variations else extra_sources:
        if source and "default_variations" in source:
            static = [_static(t, variations) for t in tags]
            for extra in _defaults_from(source, variations, grouped, static, excluded):
                if extra not in tags:
                    tags.append(extra)
    _expand(tags, grouped, excluded, variations, dialect)
    static = [_static(t, variations) for t in tags]
    with_defaults = list(tags)
    for name, group in grouped.items():
        on = set(group["variations"]) & set(static)
        if len(on) > 1:
            raise MetaError(
                f"variations {', '.join(sorted(on))} are all in group {name!r}; choose one"
            )
        if not on and "default" in group and group["default"] not in excluded:
            with_defaults.append(group["default"])
    if with_defaults != tags:
        tags = with_defaults
        _expand(tags, grouped, excluded, variations, dialect)
    valid = meta.get("valid_variation_combinations") or []
    if valid and not any(all(t in tags for t in combo) for combo in valid):
        raise MetaError(f"variations {tags} are not a valid combination: {valid}")
    invalid = meta.get("invalid_variation_combinations") or []
    if any(all(t in tags for t in combo) for combo in invalid):
        raise MetaError(f"variations {tags} are an invalid combination: {invalid}")
    return tags


def fill_dynamic(var_meta: dict, suffix: str) -> dict:
    """A copy of a ``name.#`` variation's meta with ``#`` replaced by the tag's value, in
    the places MLCFlow replaces it (values of dicts and dependency entries, list items).

    >>> fill_dynamic({"env": {"PKG": "#"}, "deps": [{"tags": "get,#"}]}, "numpy")
    {'env': {'PKG': 'numpy'}, 'deps': [{'tags': 'get,numpy'}]}
    """
    meta = copy.deepcopy(var_meta)

    def fill(value):
        if isinstance(value, str):
            return value.replace("#", suffix)
        if isinstance(value, list):
            return [fill(v) for v in value]
        if isinstance(value, dict):
            return {k: fill(v) for k, v in value.items()}
        return str(value).replace("#", suffix)

    for key, value in meta.items():
        if isinstance(value, list | dict):
            meta[key] = fill(value)
        elif not isinstance(value, bool):
            meta[key] = fill(value)
    return meta


def variation_metas(variations: dict, tags: list[str]) -> list[dict]:
    """The metas to apply for ``tags`` (from :func:`choose`): each variation's, then each
    combination ``a,b`` whose parts are all on, fewest parts first."""
    metas = []
    chosen: dict[str, tuple[str, str | None]] = {}
    for tag in tags:
        if tag.startswith(("~", "-")):
            continue
        name = _static(tag, variations)
        suffix = tag.split(".", 1)[1] if name != tag else None
        chosen.setdefault(name, (tag, suffix))
        var = variations.get(name) or {}
        metas.append(fill_dynamic(var, suffix) if suffix else var)
    combos = sorted((k for k in variations if "," in k), key=lambda k: k.count(","))
    for combo in combos:
        parts = combo.split(",")
        if not set(p for p in parts if not p.endswith(".#")) <= set(tags):
            continue
        dynamic = [p for p in parts if p.endswith(".#")]
        if not all(p in chosen for p in dynamic):
            continue
        suffixes = [chosen[p][1] for p in dynamic if chosen[p][1]]
        if len(suffixes) > 1:
            continue
        var = variations[combo] or {}
        metas.append(fill_dynamic(var, suffixes[0]) if suffixes else var)
    return metas


def inherited_tags(variation_string: str, grouped: dict, entry: dict) -> str:
    """The caller's variation tags a dependency entry with ``inherit_variation_tags`` takes
    (``_run_deps``): all of ``variation_string`` (``_a,_b``) but those of the entry's
    ``skip_inherit_variation_groups`` (``name.#`` ones by prefix) and those the entry's own
    tags exclude (``-_x``). ``grouped`` is :func:`groups` of the caller's variations.

    >>> g = {"device": {"variations": ["cpu", "cuda"]}}
    >>> inherited_tags("_cpu,_fp32,_batch.8", g, {"tags": "get,x,-_fp32",
    ...                "skip_inherit_variation_groups": ["device"]})
    '_batch.8'
    """
    skipped: list[str] = []
    for group in entry.get("skip_inherit_variation_groups") or []:
        skipped += (grouped.get(group) or {}).get("variations", [])
    tags = [t for t in variation_string.split(",") if t]
    tags = [t for t in tags if not t.startswith("_") or t[1:] not in skipped]
    for name in skipped:
        if name.endswith(".#"):
            tags = [t for t in tags if not t.startswith("_" + name[:-1])]
    for tag in str(entry.get("tags", "")).split(","):
        if tag.startswith(("-_", "_-")) and "_" + tag[2:] in tags:
            tags.remove("_" + tag[2:])
    return ",".join(tags)
