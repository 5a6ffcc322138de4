"""The planner's view of a step's variations, from the rule book's (:mod:`ckg.mlc.variations`).

Which variations are on, and in what order, is :func:`ckg.mlc.choose` (MLCFlow's rules); here
they are gathered into what one step of a plan needs: their env, ``default_env``,
``new_env_keys``, ``add_deps`` and ``add_deps_recursive``.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field

from ckg import mlc


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

    >>> static_name("package.numpy", {"package.#": {}}), static_name("cpu", {"cpu": {}})
    ('package.#', 'cpu')
    """
    return tag if tag in variations else (mlc.dynamic_name(tag) or tag)


def choose(
    variations: Mapping, requested, *, default_variation: str = "", owner: str = ""
) -> list[str]:
    """The variations that are on, in MLCFlow's order (:func:`ckg.mlc.choose`), each once.

    Raises
    ------
    VariationError
        What :class:`ckg.mlc.MetaError` says, with ``owner`` named.

    Examples
    --------
    >>> v = {"cpu": {"group": "target", "default": True}, "cuda": {"group": "target"}}
    >>> choose(v, []), choose(v, ["cuda"])
    (['cpu'], ['cuda'])
    """
    meta = {"variations": dict(variations), "default_variation": default_variation}
    try:
        tags = mlc.choose(meta, list(requested))
    except mlc.MetaError as exc:
        raise VariationError(f"{owner or 'the script'}: {exc}") from None
    return list(dict.fromkeys(t for t in tags if not t.startswith("-")))  # the ones on


def apply(variations: Mapping, names: list[str]) -> Chosen:
    """What the variations ``names`` (from :func:`choose`) add to a step: the metas of
    :func:`ckg.mlc.variation_metas`, merged in that order.

    >>> v = {"cuda": {"env": {"USE_CUDA": True}}, "package.#": {"env": {"PKG": "#"}}}
    >>> apply(v, ["cuda", "package.numpy"]).env
    {'USE_CUDA': True, 'PKG': 'numpy'}
    """
    chosen = Chosen(names=list(names))
    chosen.active = {static_name(n, variations) for n in names}
    chosen.active |= {c for c in variations if "," in c and set(c.split(",")) <= chosen.active}
    for meta in mlc.variation_metas(dict(variations), list(names)):
        chosen.env.update(meta.get("env") or {})
        for key, value in (meta.get("default_env") or {}).items():
            chosen.default_env.setdefault(key, value)
        for key in meta.get("new_env_keys") or []:
            if key not in chosen.new_env_keys:
                chosen.new_env_keys.append(key)
        merge_adr(chosen.add_deps_recursive, meta.get("add_deps_recursive") or meta.get("adr"))
        merge_adr(chosen.add_deps, meta.get("add_deps") or meta.get("ad"))
    return chosen


def merge_adr(target: dict, source: Mapping | None) -> dict:
    """``add_deps_recursive`` maps merged the rule book's way (:func:`ckg.mlc.merge_tags_by_name`).

    >>> merge_adr({"python": {"tags": "_a"}}, {"python": {"tags": "_b", "version": "3"}})
    {'python': {'tags': '_a,_b', 'version': '3'}}
    """
    return mlc.merge_tags_by_name(target, dict(source or {}))
