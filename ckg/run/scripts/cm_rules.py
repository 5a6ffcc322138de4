"""Collective Mind's rules for metas, guards, variations and native scripts (pure, but for
reading ``tmp-run-env.out`` and asking the host its word size), as ``cm run script`` applies
them: the functions of cm4mlops' ``automation/script/module.py`` and of cmind 4.2.0 that
:class:`~ckg.run.scripts.cm.CMEngine` follows, each named in its docstring. Where they are
MLCFlow's too, or differ only as :data:`ckg.mlc.CM` says, they are :mod:`ckg.mlc`'s.
"""

from functools import partial
from pathlib import Path

from ckg import mlc as rules
from ckg.mlc import CM, guards, versions
from ckg.run.scripts import native


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


def os_info() -> dict:
    """The utils automation's ``get_host_os_info`` on a POSIX host: MLCFlow's
    (:func:`ckg.run.scripts.native.os_info`, the same templates and bits) without
    ``env_quote``, and with an empty ``env``."""
    info = native.os_info()
    del info["env_quote"]
    info["env"] = {}
    return info


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


#: CM's ``_get_name_for_dynamic_variation_tag`` and ``_get_variation_groups`` are MLCFlow's.
dynamic_name = rules.dynamic_name
groups = rules.groups
#: CM's ``_update_state_from_variations`` (aliases, ``default_variation``, bases,
#: ``default_variations``, group defaults, combinations): MLCFlow's in CM's dialect.
choose_variations = partial(rules.choose, dialect=CM)


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
