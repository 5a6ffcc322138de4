"""The environment of a step as the planner knows it: the user's overrides, what guards see.

What a step hands down is the rule book's :func:`ckg.mlc.hand_down`."""

import fnmatch
import re
from collections.abc import Iterable, Iterator, Mapping
from functools import lru_cache


def split_env(env: Mapping) -> tuple[dict, dict]:
    """User env as ``(global, {alias_or_uid: {key: value}})``; ``ALIAS:KEY`` is per step.

    >>> split_env({"USE_CUDA": "yes", "get-openssl:CM_REQUIRE_INSTALL": "yes"})
    ({'USE_CUDA': 'yes'}, {'get-openssl': {'CM_REQUIRE_INSTALL': 'yes'}})
    """
    common: dict = {}
    per_step: dict = {}
    for key, value in env.items():
        owner, sep, name = key.partition(":")
        if sep:
            per_step.setdefault(owner, {})[name] = value
        else:
            common[key] = value
    return common, per_step


@lru_cache(maxsize=4096)  # asked for every guard key and tag key of every entry planned
def exported(patterns: tuple[str, ...], key: str) -> bool:
    """Whether ``key`` matches one of the (already plain) key patterns.

    CM's patterns are nearly all ``PREFIX*``: those are a ``startswith``, the rest fnmatch.
    """
    prefixes = tuple(p[:-1] for p in patterns if p.endswith("*") and not _GLOB.search(p[:-1]))
    if key.startswith(prefixes) or key in patterns:
        return True
    return any(fnmatch.fnmatchcase(key, p) for p in patterns if _GLOB.search(p))


_GLOB = re.compile(r"[*?\[]")
REFERENCE = re.compile(r"<<<(.*?)>>>")


def plain_patterns(new_env_keys) -> tuple[str, ...]:
    """``new_env_keys`` as plain key patterns: ``+PATH`` (append) and ``+ CFLAGS`` -> names."""
    return tuple(p.lstrip("+ ").strip() for p in new_env_keys if isinstance(p, str))


class GuardEnv(Mapping):
    """A step's env as its guards see it: keys that steps before it export count as set.

    CM evaluates a guard after the dependencies before it have run and merged their
    ``new_env_keys`` outputs into the env. Their values are unknown before a run; a key
    absent from ``env`` that matches one of those patterns reads as :attr:`UNKNOWN`, which is
    a set, non-false value (so ``skip_if_env: {CM_C_COMPILER_BIN: [on]}`` skips after a
    compiler was found). ``patterns`` are plain key patterns, ``+`` prefixes removed.

    >>> env = GuardEnv({"A": "no"}, ["CM_LLVM_*", "PATH"])
    >>> env["CM_LLVM_BIN"], env["A"], "PATH" in env, "B" in env
    ('<set at run time>', 'no', True, False)
    """

    UNKNOWN = "<set at run time>"

    def __init__(self, env: Mapping, patterns: Iterable[str]):
        self.env = env
        self.patterns = patterns

    def __getitem__(self, key):
        if key in self.env:
            return self.env[key]
        if exported(tuple(self.patterns), key):
            return self.UNKNOWN
        raise KeyError(key)

    def __iter__(self) -> Iterator:
        return iter(self.env)

    def __len__(self) -> int:
        return len(self.env)
