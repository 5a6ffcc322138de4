"""Collective Mind's rules for metas, guards, variations and native scripts (pure, but for
reading ``tmp-run-env.out`` and asking the host its word size), as ``cm run script`` applies
them: the functions of cm4mlops' ``automation/script/module.py`` and of cmind 4.2.0 that
:class:`~ckg.run.scripts.cm.CMEngine` follows, each named in its docstring. Where they are
MLCFlow's too, or differ only as :data:`ckg.mlc.CM` says, they are :mod:`ckg.mlc`'s.
"""

import copy
import platform
import struct
import subprocess
from functools import partial
from pathlib import Path

from ckg import mlc as rules
from ckg.mlc import CM, guards, versions


def merge(dst: dict, src: dict) -> dict:
    """cmind's ``utils.merge_dicts`` with ``append_lists`` and ``append_unique``, as CM's
    script automation calls it (nested dicts appended without the unique rule)."""
    from cmind import utils

    return utils.merge_dicts({"dict1": dst, "dict2": src, "append_lists": True,
                              "append_unique": True})["dict1"]


#: CM's ``update_env_with_values`` is MLCFlow's.
substitute = rules.substitute
#: CM's ``enable_or_skip_script``, ``any_enable_or_skip_script``, ``is_dep_tobe_skipped``
#: and ``update_deps``: MLCFlow's rules under CM's dialect (:data:`ckg.mlc.CM`).
all_match = partial(guards.all_match, dialect=CM)
any_match = partial(guards.any_match, dialect=CM)
skipped = partial(guards.skipped, dialect=CM)


def update_deps(deps: list, by_name: dict, env: dict) -> None:
    """CM's ``update_deps``: MLCFlow's (:func:`ckg.mlc.update_deps`) in CM's dialect."""
    rules.update_deps(deps, by_name, env, CM)


def merge_tags_by_name(dst: dict, src: dict) -> None:
    """CM's ``_merge_dicts_with_tags``: ``add_deps_recursive`` maps merged, tags joined."""
    from cmind import utils

    if dst == src:
        return
    for side in (dst, src):
        for update in side.values():
            if isinstance(update, dict) and "tags" in update:
                update["tags_list"] = utils.convert_tags_to_list(update)
    merge(dst, src)
    for update in dst.values():
        if isinstance(update, dict) and "tags_list" in update:
            update["tags"] = ",".join(update.pop("tags_list"))
    for update in src.values():
        if isinstance(update, dict):
            update.pop("tags_list", None)


# --- versions, host, native scripts ----------------------------------------------------


#: cmind's ``utils.compare_versions`` (:func:`ckg.mlc.compare_versions`, CM's dialect).
compare_versions = partial(versions.compare_versions, dialect=CM)


_os_info: dict | None = None


def os_info() -> dict:
    """The utils automation's ``get_host_os_info`` on a POSIX host (its ``env`` is empty)."""
    global _os_info
    if _os_info is None:
        name = "darwin" if platform.system().lower().startswith("darwin") else "linux"
        pbits = str(8 * struct.calcsize("P"))
        bits = pbits
        try:
            out = subprocess.run(["getconf", "LONG_BIT"], capture_output=True, text=True,
                                 timeout=5)
            if out.returncode == 0 and 0 < len(out.stdout.strip()) < 4:
                bits = out.stdout.strip()
        except (OSError, subprocess.SubprocessError):
            pass
        _os_info = {
            "bat_ext": ".sh",
            "set_env": 'export ${key}="${value}"',
            "env_separator": ":",
            "env_var": "${env_var}",
            "set_exec_file": 'chmod 755 "${file_name}"',
            "bat_rem": "# ${rem}",
            "run_local_bat": ". ./${bat_file}",
            "run_local_bat_from_python": 'bash -c ". ./${bat_file}"',
            "run_bat": ". ${bat_file}",
            "start_script": ["#!/bin/bash", ""],
            "env": {},
            "platform": name,
            "bits": bits,
            "python_bits": pbits,
        }
    return copy.deepcopy(_os_info)


def script_path(env: dict, folder: Path, name: str = "run") -> Path:
    """CM's ``get_script_name``: ``<name>-<flavor>-<version>-<machine>.sh``,
    ``-<flavor>-<machine>``, ``-<flavor>-<version>``, ``-<flavor>``, ``-<machine>``, else
    ``<name>.sh``."""
    flavor = str(env.get("CM_HOST_OS_FLAVOR", ""))
    version = str(env.get("CM_HOST_OS_VERSION", ""))
    machine = str(env.get("CM_HOST_PLATFORM_FLAVOR", ""))
    for parts in ((flavor, version, machine), (flavor, machine), (flavor, version),
                  (flavor,), (machine,)):
        candidate = folder / f"{name}-{'-'.join(parts)}.sh"
        if candidate.exists():
            return candidate
    return folder / f"{name}.sh"


def export_lines(env: dict) -> list[str]:
    """CM's ``convert_env_to_script`` on POSIX: values as ``str()`` writes them, unquoted
    inside the quotes; ``+KEY`` lists joined before ``${KEY}``.

    >>> export_lines({"+PATH": ["/opt/bin"], "L": ["a", "b"], "Q": 'say "hi"'})
    ['export PATH="/opt/bin:${PATH}"', 'export L="[\\'a\\', \\'b\\']"', 'export Q="say "hi""']
    """
    lines = []
    for key in sorted(env):
        value = env[key]
        name = key
        if key.startswith("+"):
            name, separator = key[1:], ":"
            if not name[0].isalnum():
                separator, name = name[0], name[1:]
            value = separator.join(value) + separator + "${" + name + "}"
        lines.append(f'export {name}="{value}"')
    return lines


def read_env_out(path: Path) -> dict:
    """``tmp-run-env.out`` read by cmind's ``utils.convert_env_to_dict``: a value ends at
    its second ``=``, a line without one is a key with an empty value.

    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "tmp-run-env.out"
    >>> _ = p.write_text("A = 1\\nnot a pair\\nB=x=y\\n")
    >>> read_env_out(p)
    {'A': '1', 'not a pair': '', 'B': 'x'}
    """
    from cmind import utils

    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return {}
    return utils.convert_env_to_dict(text)["dict"]


# --- variations ------------------------------------------------------------------------


def dynamic_name(tag: str) -> str | None:
    """CM's ``_get_name_for_dynamic_variation_tag``."""
    if "." not in tag or tag[-1] == ".":
        return None
    return tag[: tag.index(".") + 1] + "#"


def groups(variations: dict) -> dict:
    """CM's ``_get_variation_groups``."""
    found: dict = {}
    for name, var in variations.items():
        if not var or "group" not in var:
            continue
        group = found.setdefault(var["group"], {"variations": []})
        group["variations"].append(name)
        if "default" in var:
            if "default" in group:
                raise rules.MetaError(f"several defaults in variation group {var['group']!r}: "
                                      f"{name}, {group['default']}")
            group["default"] = name
    return found


def _defaults_of(var_meta, variations, groups, static, excluded) -> list[str]:
    """CM's ``_get_variation_tags_from_default_variations``."""
    out = []
    for group, default in (var_meta.get("default_variations") or {}).items():
        if group not in groups:
            raise rules.MetaError(f"default variation group {group!r} is not a group "
                                  f"(groups: {', '.join(groups)})")
        if (not set(groups[group]["variations"]) & set(static) and default not in excluded
                and default not in static):
            if default not in variations and dynamic_name(default) not in variations:
                raise rules.MetaError(f"default variation {default!r} is not declared")
            out.append(default)
    return out


def _add_bases_and_defaults(tags: list, variations, groups, excluded) -> None:
    """CM's ``_update_variation_tags_from_variations``: ``base`` variations and
    ``default_variations`` appended until every tag has been looked at."""
    static = [t if t in variations else dynamic_name(t) for t in tags]
    combos = sorted((k for k in variations if "," in k), key=lambda k: k.count(","))
    combos_done = dict.fromkeys(combos, False)
    if not tags:
        return
    done = dict.fromkeys(tags, False)
    while True:
        for name in tags:  # tags grows while it is walked, as in CM
            if name.startswith(("~", "-")):
                done[name] = True
                continue
            if name not in variations:
                name = dynamic_name(name)
            for base in variations[name].get("base") or []:
                already = False
                if base not in variations:
                    dynamic = dynamic_name(base)
                    if not dynamic or dynamic not in variations:
                        raise rules.MetaError(f"base variation {base!r} of {name!r} is not "
                                              "declared")
                    prefix = dynamic.split(".")[0] + "."
                    already = any(t.startswith(prefix) for t in tags)
                if base not in tags and not already:
                    if base in excluded:
                        raise rules.MetaError(f"base variation {base!r} of {name!r} is "
                                              "excluded")
                    tags.append(base)
                    done[base] = False
            for extra in _defaults_of(variations[name], variations, groups, static, excluded):
                done[extra] = False
                tags.append(extra)
            done[name] = True
            for combo in combos:
                if combos_done[combo] or not set(combo.split(",")) <= set(tags):
                    continue
                combos_done[combo] = True
                for extra in _defaults_of(variations[combo], variations, groups, static,
                                          excluded):
                    done[extra] = False
                    tags.append(extra)
        pending = [t for t in tags if not t.startswith("-")
                   and not done.get(t if t in variations else dynamic_name(t), False)]
        if not pending:
            return


def choose_variations(meta: dict, requested: list[str]) -> list[str]:
    """The variation tags CM turns on for ``requested`` (names without ``_``; ``-x``
    excludes ``x``), in the order it applies them (``_update_state_from_variations``):
    aliases, ``default_variation``, bases and ``default_variations`` appended, group
    defaults, then the combinations checked.

    >>> v = {"cpu": {"group": "d", "default": True}, "cuda": {"group": "d"},
    ...      "numpy": {"base": ["pip"]}, "pip": {}}
    >>> choose_variations({"variations": v}, ["numpy"])
    ['numpy', 'pip', 'cpu']
    """
    variations = meta.get("variations") or {}
    tags = list(requested)
    excluded = [t[1:] for t in tags if t.startswith("-")]
    excluded = [e if e in variations or dynamic_name(e) not in variations else dynamic_name(e)
                for e in excluded]
    for tag in list(requested):
        if tag.startswith("-"):
            continue
        name = tag if tag in variations else dynamic_name(tag)
        if name not in variations:
            known = ", ".join(sorted(variations)) or "none"
            raise rules.MetaError(f"variation {tag!r} is not declared (declared: {known})")
        alias = (variations[name] or {}).get("alias")
        if alias:
            if alias in excluded or alias not in variations:
                raise rules.MetaError(f"variation {tag!r} is an alias of {alias!r}, which is "
                                      "excluded or not declared")
            if alias not in tags:
                tags.append(alias)
    grouped = groups(variations)
    default = meta.get("default_variation", "")
    if default and default not in variations:
        raise rules.MetaError(f"default_variation {default!r} is not declared")
    if not tags and default and default not in excluded:
        tags = [default]
    _add_bases_and_defaults(tags, variations, grouped, excluded)
    static = [t if t in variations else dynamic_name(t) for t in tags]
    with_defaults = list(tags)
    for name, group in grouped.items():
        on = set(group["variations"]) & set(static)
        if len(on) > 1:
            raise rules.MetaError(f"variations {', '.join(sorted(on))} are all in group "
                                  f"{name!r}; choose one")
        if not on and "default" in group and group["default"] not in excluded:
            with_defaults.append(group["default"])
    if with_defaults != tags:
        tags = with_defaults
        _add_bases_and_defaults(tags, variations, grouped, excluded)
    valid = meta.get("valid_variation_combinations") or []
    if valid and not any(all(t in tags for t in combo) for combo in valid):
        raise rules.MetaError(f"variations {tags} are not a valid combination: {valid}")
    invalid = meta.get("invalid_variation_combinations") or []
    if any(all(t in tags for t in combo) for combo in invalid):
        raise rules.MetaError(f"variations {tags} are an invalid combination: {invalid}")
    return tags


def fill_suffix(var_meta: dict, suffix: str) -> None:
    """CM's ``_update_variation_meta_with_dynamic_suffix``: ``#`` replaced in place in the
    values of the meta's dicts and of its lists' entries (scalars left)."""
    def fill(value):
        return value.replace("#", suffix) if isinstance(value, str) else value

    for value in var_meta.values():
        if isinstance(value, list):
            for item in value:
                if not isinstance(item, dict):
                    continue
                for key, inner in item.items():
                    if isinstance(inner, dict):
                        for k in inner:
                            inner[k] = fill(inner[k])
                    elif isinstance(inner, list):
                        inner[:] = [fill(x) for x in inner]
                    else:
                        item[key] = fill(inner)
        elif isinstance(value, dict):
            for key, inner in value.items():
                if isinstance(inner, dict):
                    for k, inner2 in inner.items():
                        if isinstance(inner2, dict):
                            for k2 in inner2:
                                inner2[k2] = fill(inner2[k2])
                        else:
                            inner[k] = fill(inner2)
                elif isinstance(inner, list):
                    inner[:] = [fill(x) for x in inner]
                else:
                    value[key] = fill(inner)
