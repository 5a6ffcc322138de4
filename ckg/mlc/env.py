"""Env and dependency lists: merging, ``<<<KEY>>>`` filling, ``add_deps`` updates, keys kept.

MLCFlow's rules (mlperf-automations ``automation/script/module.py`` and mlcflow's
``utils.merge_dicts``), each function naming the one it follows; CM's differences come as a
:class:`~ckg.mlc.dialect.Dialect`.
"""

import copy
import fnmatch
import re
from functools import lru_cache

from ckg.mlc.dialect import MLCFLOW, Dialect
from ckg.mlc.guards import skipped

REF = re.compile(r"<<<(.*?)>>>")


class MetaError(ValueError):
    """A meta that MLCFlow would refuse: an unknown variation, two of one group, ..."""


#: Keys a script keeps to itself: its caller's values are not handed down to it
#: (the script automation's ``local_env_keys``, without their ``MLC_`` / ``CM_`` prefix).
LOCAL_ENV_NAMES = (
    "VERSION",
    "VERSION_MIN",
    "VERSION_MAX",
    "VERSION_MAX_USABLE",
    "DETECTED_VERSION",
    "INPUT",
    "OUTPUT",
    "OUTBASENAME",
    "OUTDIRNAME",
    "SEARCH_FOLDER_PATH",
    "NAME",
    "EXTRA_CACHE_TAGS",
    "TMP_*",
    "GIT_*",
    "RENEW_CACHE_ENTRY",
)


def hand_down(env: dict, meta: dict, dialect: Dialect = MLCFLOW) -> dict:
    """The env a script passes to its dependencies: all but its local keys (``_run_deps``
    removes ``local_env_keys`` and the meta's ``local_env_keys`` patterns before each).

    >>> hand_down({"MLC_VERSION": "1", "MLC_TMP_X": "2", "A": "3", "B": "4"},
    ...           {"local_env_keys": ["B"]})
    {'A': '3'}
    """
    patterns = tuple(dialect.prefix + n for n in LOCAL_ENV_NAMES)
    local = _matcher(patterns + tuple(meta.get("local_env_keys") or ()))
    return {k: v for k, v in env.items() if not local(k)}


@lru_cache(maxsize=256)
def _matcher(patterns: tuple[str, ...]):
    """One compiled test for a tuple of shell-style key patterns."""
    return re.compile("|".join(fnmatch.translate(p) for p in patterns)).match


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
        names = REF.findall(str(value))
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
    return bool(REF.search(str(value)))


def update_deps(
    deps: list, by_name: dict, env: dict | None = None, dialect: Dialect = MLCFLOW
) -> None:
    """Apply ``add_deps`` / ``add_deps_recursive`` updates to the entries they name.

    An update ``NAME -> {...}`` (skipped when its own guards are off under ``env``) changes
    every entry whose ``names`` hold NAME: ``<<<KEY>>>`` in it filled from ``env``, tags
    added (unresolved ``<<<`` ones left out; sorted for CM), dicts merged, lists extended,
    guards never touched, other keys overwritten (``update_deps`` and ``update_dep_info``).

    >>> deps = [{"tags": "get,python", "names": ["python"]}]
    >>> update_deps(deps, {"python": {"tags": "_conda", "version": "3.11"}}); deps
    [{'tags': 'get,python,_conda', 'names': ['python'], 'version': '3.11'}]
    """
    env = env or {}
    for name, update in (by_name or {}).items():
        if not isinstance(update, dict) or skipped(update, env, dialect):
            continue
        for dep in deps:
            if name not in (dep.get("names") or []):
                continue
            fill_refs(update, env)
            for key, value in update.items():
                if key == "tags":
                    have = str(dep.get("tags", "")).split(",")
                    new = [t for t in str(value).split(",") if "<<<" not in t]
                    new = sorted(set(new)) if dialect.sorted_new_tags else dict.fromkeys(new)
                    dep["tags"] = ",".join(have + [t for t in new if t not in have])
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


def fill_refs(values: dict, env: dict) -> None:
    """``update_dynamic_env_values``: ``<<<KEY>>>`` in the string values of a (nested) dict
    filled from ``env`` where KEY is set, in place.

    >>> d = {"tags": "_v.<<<A>>>", "env": {"B": "<<<C>>>"}}; fill_refs(d, {"A": "1"}); d
    {'tags': '_v.1', 'env': {'B': '<<<C>>>'}}
    """
    for key, value in values.items():
        if isinstance(value, dict):
            fill_refs(value, env)
        elif isinstance(value, str):
            for ref in REF.findall(value):
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


def merge_tags_by_name(dst: dict, src: dict) -> dict:
    """Merge ``add_deps_recursive`` maps in place: a name's tags are joined, other keys
    merged (``_merge_dicts_with_tags``: tags as lists, ``merge_dicts`` appending uniquely).

    >>> merge_tags_by_name({"python": {"tags": "_a"}}, {"python": {"tags": "_b,_a", "v": "3"}})
    {'python': {'tags': '_a,_b', 'v': '3'}}
    """
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
    return dst


def select_keys(patterns: list, values: dict) -> dict:
    """The entries of ``values`` named by ``new_env_keys`` / ``new_state_keys`` patterns:
    a name, a wildcard (``MLC_PYTHON_*``) or ``<<<KEY>>>`` (the key named by ``KEY``'s value).

    >>> select_keys(["A_*", "B", "<<<C>>>"], {"A_1": 1, "B": 2, "C": "D", "D": 4, "E": 5})
    {'A_1': 1, 'B': 2, 'D': 4}
    >>> select_keys(["A?", "*_X", "A*X"], {"A1": 1, "A12": 2, "B_X": 3, "A_X": 4, "a_X": 5})
    {'A1': 1, 'B_X': 3, 'A_X': 4, 'a_X': 5}
    """
    out = {}
    for pattern in patterns:
        if "?" in pattern or "*" in pattern:
            head = pattern[:-1]
            if pattern.endswith("*") and not any(c in head for c in "*?["):
                # A name's beginning (MLC_PYTHON_*), as most are: no regular expression,
                # which fnmatch would compile anew in each process (0.1 ms a pattern).
                out.update((key, value) for key, value in values.items() if key.startswith(head))
            else:
                for key in fnmatch.filter(values, pattern):
                    out[key] = values[key]
        elif pattern in values:
            out[pattern] = values[pattern]
        elif "<<<" in pattern:
            for ref in REF.findall(pattern):
                target = values.get(ref)
                if isinstance(target, str) and target in values:
                    out[target] = values[target]
    return out


def tags_from_env(entry: dict, env: dict, key: str, prefix: str, dialect: Dialect = MLCFLOW) -> str:
    """The tags ``update_tags_from_env`` (``prefix`` ``""``) or
    ``update_tags_from_env_with_prefix`` add to a dependency entry for ``key``, each as
    ``,PREFIXVALUE``: from the entry's own ``env`` where set there, else from ``env``; a list
    gives one tag per item (``_run_deps``; its text in CM's dialect).

    >>> tags_from_env({"env": {}}, {"URL": "u"}, "URL", "_repo.")
    ',_repo.u'
    >>> tags_from_env({"env": {"V": ["a", "b"]}}, {"V": "c"}, "V", "_v.")
    ',_v.a,_v.b'
    >>> tags_from_env({}, {}, "V", "")
    ''
    >>> from ckg.mlc.dialect import CM
    >>> tags_from_env({}, {"V": ["a", "b"]}, "V", "", CM)
    ",['a', 'b']"
    """
    local = entry.get("env") or {}
    source = local if str(local.get(key, "")).strip() else env
    value = source.get(key, "")
    if not str(value).strip():
        return ""
    items = value if isinstance(value, list) and dialect.list_tags else [value]
    return "".join(f",{prefix}{item}" for item in items)


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
