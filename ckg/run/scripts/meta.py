"""MLCFlow's rules for turning a script's meta into env, state and dependency lists (pure).

Each function here states the rule it follows; together they are what MLCFlow's script
automation does between finding a script and running it: merge dicts (lists appended
without duplicates), ``<<<KEY>>>`` references, dependency guards, ``add_deps`` /
``add_deps_recursive`` updates by name, variations (aliases, bases, group defaults,
``default_variations``, combinations, dynamic ``name.#``) and ``new_env_keys`` filters.
"""

import copy
import fnmatch
import re

from ckg.plan.guards import FALSE_WORDS, TRUE_WORDS

_REF = re.compile(r"<<<(.*?)>>>")


class MetaError(ValueError):
    """A meta that MLCFlow would refuse: an unknown variation, two of one group, ..."""


def is_true(value) -> bool:
    """``1``, ``true``, ``on``, ``yes`` in any case (MLCFlow's ``is_true``)."""
    return str(value).lower() in TRUE_WORDS


def is_false(value) -> bool:
    """``0``, ``false``, ``off``, ``no`` in any case (MLCFlow's ``is_false``)."""
    return str(value).lower() in FALSE_WORDS


def merge(dst: dict, src: dict) -> dict:
    """Merge ``src`` into ``dst`` in place: dicts recursively, lists appended without
    repeating an item, anything else overwritten (``merge_dicts`` with ``append_lists`` and
    ``append_unique``).

    >>> merge({"a": [1], "b": {"x": 1}, "c": 1}, {"a": [1, 2], "b": {"y": 2}, "c": 3})
    {'a': [1, 2], 'b': {'x': 1, 'y': 2}, 'c': 3}
    """
    if dst == src:
        return dst
    for key, value in src.items():
        old = dst.get(key)
        if key in dst and isinstance(old, dict) and isinstance(value, dict):
            merge(old, value)
        elif key in dst and isinstance(old, list) and isinstance(value, list):
            joined = []
            for item in old + value:
                if item not in joined:
                    joined.append(item)
            dst[key] = joined
        else:
            dst[key] = value
    return dst


def substitute(env: dict, extra: dict | None = None) -> None:
    """Replace ``<<<KEY>>>`` in env values by ``env[KEY]`` (or ``extra[KEY]``), in place;
    a reference to an unset key stays as written.

    >>> env = {"A": "x", "B": "<<<A>>>/y", "C": "<<<NOPE>>>", "+P": ["<<<A>>>"]}
    >>> substitute(env); env
    {'A': 'x', 'B': 'x/y', 'C': '<<<NOPE>>>', '+P': ['x']}
    """
    extra = extra or {}
    for key, value in list(env.items()):
        if key.startswith("+") and not isinstance(value, list):
            raise MetaError(f"env key {key} needs a list value, not {value!r}")
        if isinstance(value, bool):
            continue
        names = _REF.findall(str(value))
        for name in names:
            where = env if name in env else extra if name in extra else None
            if where is None:
                continue
            text = str(where[name])
            if isinstance(value, str):
                value = value.replace(f"<<<{name}>>>", text)
            elif isinstance(value, list):
                value = [
                    v.replace(f"<<<{name}>>>", text) if isinstance(v, str) else v for v in value
                ]
        if names:
            env[key] = value


def has_ref(value) -> bool:
    """Whether a value still holds a ``<<<KEY>>>`` reference."""
    return bool(_REF.search(str(value)))


def _wanted(spec) -> list[str]:
    values = spec if isinstance(spec, list) else [spec]
    return [str(v).lower() for v in values]


def all_match(condition: dict, env: dict) -> bool:
    """MLCFlow's ``enable_if_env`` / ``skip_if_env`` test: every key must match.

    Expected values with a true word match any value but a false word, ``""`` or an
    unresolved ``<<<KEY>>>``; with a false word (or ``""``), an absent key, a false word,
    ``""`` or an unresolved reference match; otherwise the value must be listed.

    >>> all_match({"A": ["yes"]}, {"A": "on"}), all_match({"A": ["no"]}, {})
    (True, True)
    >>> all_match({"A": ["x", "y"]}, {"A": "z"})
    False
    """
    for key, spec in condition.items():
        wanted = set(_wanted(spec))
        if key in env:
            value = str(env[key]).lower().strip()
            if wanted & TRUE_WORDS:
                if not is_false(value) and value != "" and not has_ref(value):
                    continue
            elif wanted & (FALSE_WORDS | {""}):
                if is_false(value) or value == "" or has_ref(value):
                    continue
            elif value in wanted:
                continue
        elif wanted & (FALSE_WORDS | {""}):
            continue
        return False
    return True


def any_match(condition: dict, env: dict) -> bool:
    """The ``*_if_any_env`` test: one key set in ``env`` that matches is enough.

    >>> any_match({"A": ["yes"], "B": ["x"]}, {"B": "x"})
    True
    """
    for key, spec in condition.items():
        if key not in env:
            continue
        wanted = set(_wanted(spec))
        value = str(env[key]).lower().strip()
        if wanted & TRUE_WORDS:
            if not is_false(value) and value != "" and not has_ref(value):
                return True
        elif wanted & (FALSE_WORDS | {""}):
            if is_false(value) or value == "" or has_ref(value):
                return True
        elif value in wanted:
            return True
    return False


def skipped(entry: dict, env: dict) -> bool:
    """Whether a dependency entry (or an ``update_meta_if_env`` item) is off under ``env``.

    >>> skipped({"enable_if_env": {"A": ["yes"]}}, {})
    True
    >>> skipped({"skip_if_any_env": {"A": ["yes"], "B": ["yes"]}}, {"B": "1"})
    True
    """
    if "enable_if_env" in entry and not all_match(entry["enable_if_env"], env):
        return True
    if "enable_if_any_env" in entry and not any_match(entry["enable_if_any_env"], env):
        return True
    if "skip_if_env" in entry and all_match(entry["skip_if_env"], env):
        return True
    return "skip_if_any_env" in entry and any_match(entry["skip_if_any_env"], env)


def update_deps(deps: list, by_name: dict, env: dict | None = None) -> None:
    """Apply ``add_deps`` / ``add_deps_recursive`` updates to the entries they name.

    An update ``NAME -> {...}`` (skipped when its own guards are off under ``env``) changes
    every entry whose ``names`` hold NAME: ``<<<KEY>>>`` in it filled from ``env``, tags
    added (unresolved ``<<<`` ones left out), dicts merged, lists extended, guards never
    touched, other keys overwritten.

    >>> deps = [{"tags": "get,python", "names": ["python"]}]
    >>> update_deps(deps, {"python": {"tags": "_conda", "version": "3.11"}}); deps
    [{'tags': 'get,python,_conda', 'names': ['python'], 'version': '3.11'}]
    """
    env = env or {}
    for name, update in (by_name or {}).items():
        if not isinstance(update, dict) or skipped(update, env):
            continue
        for dep in deps:
            if name not in (dep.get("names") or []):
                continue
            _fill_refs(update, env)
            for key, value in update.items():
                if key == "tags":
                    have = str(dep.get("tags", "")).split(",")
                    new = [t for t in str(value).split(",") if "<<<" not in t]
                    dep["tags"] = ",".join(have + [t for t in dict.fromkeys(new) if t not in have])
                elif "enable_if_" in key or "skip_if_" in key:
                    continue
                elif isinstance(value, dict):
                    if isinstance(dep.setdefault(key, {}), dict):
                        merge(dep[key], value)
                elif isinstance(value, list):
                    if isinstance(dep.setdefault(key, []), list):
                        dep[key].extend(value)
                else:
                    dep[key] = value


def _fill_refs(values: dict, env: dict) -> None:
    for key, value in values.items():
        if isinstance(value, dict):
            _fill_refs(value, env)
        elif isinstance(value, str):
            for ref in _REF.findall(value):
                if ref in env:
                    value = value.replace(f"<<<{ref}>>>", str(env[ref]))
            values[key] = value


def append_deps(deps: list, new: list) -> None:
    """Add entries to a dependency list; an entry with the same set of ``names`` (or, with
    no names, the same set of tags) as one already there replaces it in place: how a
    variation overrides a dependency.

    >>> deps = [{"tags": "a", "names": ["x"]}, {"tags": "b,c"}]
    >>> append_deps(deps, [{"tags": "b", "names": ["x"]}, {"tags": "c,b", "v": 1}]); deps
    [{'tags': 'b', 'names': ['x']}, {'tags': 'c,b', 'v': 1}]
    """
    for entry in new:
        names = set(entry.get("names") or [])
        tags = set(str(entry.get("tags", "")).split(","))
        for i, old in enumerate(deps):
            if names:
                same = bool(old.get("names")) and set(old["names"]) == names
            else:
                same = set(str(old.get("tags", "")).split(",")) == tags
            if same:
                deps[i] = entry
                break
        else:
            deps.append(entry)


def merge_tags_by_name(dst: dict, src: dict) -> None:
    """Merge ``add_deps_recursive`` maps: a name's tags are joined, other keys merged."""
    for name, update in (src or {}).items():
        if not isinstance(update, dict):
            continue
        entry = dst.setdefault(name, {})
        for key, value in update.items():
            if key == "tags" and entry.get("tags"):
                have = [t for t in str(entry["tags"]).split(",") if t]
                have += [t for t in str(value).split(",") if t and t not in have]
                entry["tags"] = ",".join(have)
            elif isinstance(value, dict) and isinstance(entry.get(key), dict):
                merge(entry[key], value)
            else:
                entry[key] = copy.deepcopy(value)


def select_keys(patterns: list, values: dict) -> dict:
    """The entries of ``values`` named by ``new_env_keys`` / ``new_state_keys`` patterns:
    a name, a wildcard (``MLC_PYTHON_*``) or ``<<<KEY>>>`` (the key named by ``KEY``'s value).

    >>> select_keys(["A_*", "B", "<<<C>>>"], {"A_1": 1, "B": 2, "C": "D", "D": 4, "E": 5})
    {'A_1': 1, 'B': 2, 'D': 4}
    """
    out = {}
    for pattern in patterns:
        if "?" in pattern or "*" in pattern:
            for key in values:
                if fnmatch.fnmatch(key, pattern):
                    out[key] = values[key]
        elif pattern in values:
            out[pattern] = values[pattern]
        elif "<<<" in pattern:
            for ref in _REF.findall(pattern):
                target = values.get(ref)
                if isinstance(target, str) and target in values:
                    out[target] = values[target]
    return out


def split_tags(tags) -> tuple[list[str], list[str]]:
    """Script tags and variation tags (``_x`` as ``x``, ``-_x`` as ``-x``).

    >>> split_tags("get,python3,_conda,-_shared")
    (['get', 'python3'], ['conda', '-shared'])
    """
    words = tags.split(",") if isinstance(tags, str) else list(tags or [])
    script, variations = [], []
    for raw in words:
        tag = raw.strip()
        if not tag:
            continue
        if tag.startswith("_"):
            name = tag[1:]
        elif tag.startswith("-_"):
            name = "-" + tag[2:]
        else:
            script.append(tag)
            continue
        if name not in variations:
            variations.append(name)
    return script, variations


# --- variations -----------------------------------------------------------------------


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
        if not any(part == t or (part.endswith(".#") and t.startswith(part[:-1])) for t in tags):
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


def _add_bases(name: str, variations: dict, tags: list, seen: dict, excluded: list) -> None:
    for base in variations[name].get("base") or []:
        if base not in variations and _static(base, variations) not in variations:
            raise MetaError(f"variation {base!r}, a base of {name!r}, is not declared")
        if base not in tags:
            if base in excluded:
                raise MetaError(f"variation {base!r} is a base of {name!r} but excluded")
            tags.insert(0, base)
            seen[base] = False


def _expand(tags: list, grouped: dict, excluded: list, variations: dict) -> None:
    static = [_static(t, variations) for t in tags]
    combos = sorted((k for k in variations if "," in k), key=lambda k: k.count(","))
    combo_done = dict.fromkeys(combos, False)
    seen = dict.fromkeys(tags, False)
    while True:
        for tag in list(tags):
            if tag.startswith(("~", "-")):
                seen[tag] = True
                continue
            name = _static(tag, variations)
            _add_bases(name, variations, tags, seen, excluded)
            for extra in _defaults_from(variations[name], variations, grouped, static, excluded):
                seen[extra] = False
                tags.append(extra)
            seen[name] = True
            for combo in combos:
                if combo_done[combo] or not _relaxed_subset(combo.split(","), tags):
                    continue
                combo_done[combo] = True
                _add_bases(combo, variations, tags, combo_done, excluded)
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


def choose(meta: dict, requested: list[str], extra_sources: list[dict] = ()) -> list[str]:
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
    if not tags and default_variation and default_variation not in excluded:
        tags = [default_variation]
    for source in [*extra_sources, meta]:
        if source and "default_variations" in source:
            static = [_static(t, variations) for t in tags]
            for extra in _defaults_from(source, variations, grouped, static, excluded):
                if extra not in tags:
                    tags.append(extra)
    _expand(tags, grouped, excluded, variations)
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
        _expand(tags, grouped, excluded, variations)
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
