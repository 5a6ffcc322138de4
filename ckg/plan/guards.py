"""Guards on dependency entries: ``enable_if_env``, ``skip_if_env`` and their ``_any_`` forms.

CM decides whether a dependency entry is used by comparing its guards with the environment
of the script that declares it, just before the entry would run. These functions follow
the rules of CM's script automation (``cm4mlops/automation/script/module.py``,
``enable_or_skip_script`` and ``any_enable_or_skip_script``):

- A guard is a mapping ``KEY -> expected values``. Values are compared as lower-case
  strings: ``str(value).lower()``, so a YAML ``yes`` (a boolean) reads as ``"true"``.
- If the expected values contain a true word (``yes``, ``on``, ``true``, ``1``), the key
  matches when it is set to anything but a false word (``no``, ``off``, ``false``, ``0``).
- Else, if they contain a false word, the key matches when it is set to a false word.
- Else the key matches when its value is one of the expected values.
- A key absent from the environment never matches.
- ``enable_if_env`` and ``skip_if_env`` need every key to match (AND);
  ``enable_if_any_env`` and ``skip_if_any_env`` need one key to match (OR).
- An entry is used when its enable guards match and its skip guards do not.

One deliberate difference: CM iterates over the expected value, so a scalar such as
``CM_TORCH_DEVICE: cuda`` is compared letter by letter there and never matches; here a
scalar counts as a one-element list, which is what such metas mean.
"""

import json
from collections.abc import Mapping

TRUE_WORDS = frozenset({"yes", "on", "true", "1"})
FALSE_WORDS = frozenset({"no", "off", "false", "0"})
GUARD_KEYS = ("enable_if_env", "enable_if_any_env", "skip_if_env", "skip_if_any_env")


def key_matches(expected, env: Mapping, key: str) -> bool:
    """Whether ``env[key]`` matches the expected values of one guard key (CM's rules).

    Examples
    --------
    >>> key_matches([True], {"USE_CUDA": "yes"}, "USE_CUDA")
    True
    >>> key_matches(["yes"], {"USE_CUDA": "no"}, "USE_CUDA")
    False
    >>> key_matches(["no"], {}, "USE_CUDA")
    False
    """
    if key not in env:
        return False
    values = expected if isinstance(expected, list | tuple) else [expected]
    wanted = {str(v).lower() for v in values}
    value = str(env[key]).lower()
    if wanted & TRUE_WORDS:
        return value not in FALSE_WORDS
    if wanted & FALSE_WORDS:
        return value in FALSE_WORDS
    return value in wanted


def all_match(condition: Mapping, env: Mapping) -> bool:
    """Every key of ``condition`` matches ``env`` (the AND of ``*_if_env``)."""
    return all(key_matches(expected, env, key) for key, expected in condition.items())


def any_match(condition: Mapping, env: Mapping) -> bool:
    """At least one key of ``condition`` matches ``env`` (the OR of ``*_if_any_env``)."""
    return any(key_matches(expected, env, key) for key, expected in condition.items())


def parse_guard(guard) -> dict:
    """A guard as stored (JSON text, ``""`` or a dict) as a dict of its four keys.

    >>> parse_guard('{"skip_if_env": {"A": ["yes"]}}')
    {'skip_if_env': {'A': ['yes']}}
    >>> parse_guard("")
    {}
    """
    if not guard:
        return {}
    data = json.loads(guard) if isinstance(guard, str) else guard
    return {k: v for k, v in data.items() if k in GUARD_KEYS and isinstance(v, Mapping)}


def blocked_by(guard, env: Mapping) -> str | None:
    """Why the guard disables its entry under ``env``, or None when the entry is used.

    Parameters
    ----------
    guard : dict or str
        ``enable_if_env`` / ``skip_if_env`` / ``enable_if_any_env`` / ``skip_if_any_env``
        mappings, or their JSON text.
    env : mapping
        The environment of the script that declares the entry.

    Returns
    -------
    str or None
        The first guard that disables the entry, as ``"enable_if_env {...}"``.

    Examples
    --------
    >>> blocked_by({"enable_if_env": {"USE_CUDA": [True]}}, {})
    "enable_if_env {'USE_CUDA': [True]}"
    >>> blocked_by({"skip_if_env": {"USE_CUDA": ["yes"]}}, {"USE_CUDA": "no"}) is None
    True
    """
    parts = parse_guard(guard)
    checks = (
        ("enable_if_env", all_match, False),
        ("enable_if_any_env", any_match, False),
        ("skip_if_env", all_match, True),
        ("skip_if_any_env", any_match, True),
    )
    for name, test, blocks_when in checks:
        if name in parts and test(parts[name], env) == blocks_when:
            return f"{name} {dict(sorted(parts[name].items()))}"
    return None


def describe(guard) -> str:
    """A guard as a person reads it: ``if A=yes, B=x|y``, ``unless C=on``, ``if any ...``.

    >>> describe('{"enable_if_env": {"A": ["yes"], "B": ["x", "y"]}, "skip_if_env": {"C": "on"}}')
    'if A=yes, B=x|y; unless C=on'
    >>> describe({"enable_if_any_env": {"A": [True], "B": [1]}})
    'if any of A=True, B=1'
    >>> describe("")
    ''
    """
    words = {
        "enable_if_env": "if ",
        "enable_if_any_env": "if any of ",
        "skip_if_env": "unless ",
        "skip_if_any_env": "unless any of ",
    }
    parts = []
    for name, condition in parse_guard(guard).items():
        keys = ", ".join(
            f"{key}={'|'.join(map(str, _listed(expected)))}" for key, expected in condition.items()
        )
        parts.append(words[name] + keys)
    return "; ".join(parts)


def _listed(expected) -> list:
    return list(expected) if isinstance(expected, (list, tuple)) else [expected]
