"""Guards on dependency entries: ``enable_if_env``, ``skip_if_env`` and their ``_any_`` forms.

The rules are MLCFlow's (mlperf-automations ``automation/script/module.py``:
``enable_or_skip_script``, ``any_enable_or_skip_script``, ``is_dep_tobe_skipped``); CM's
differences are a :class:`~ckg.mlc.dialect.Dialect`:

- Expected values are compared as lower-case strings, so a YAML ``yes`` reads ``"true"``.
- With a true word (``yes``, ``on``, ``true``, ``1``) expected, a key matches when set to
  anything but a false word, ``""`` or (MLCFlow) an unresolved ``<<<KEY>>>``.
- Else, with a false word expected, a key matches when set to a false word, ``""`` or
  (MLCFlow) an unresolved reference; with a false word or ``""`` expected, when absent.
- Else the key must be set to one of the expected values.
- ``*_if_env`` needs every key to match; ``*_if_any_env`` one key that is set.
- An entry is skipped when ``skip_if_fake_run`` meets a fake run, an enable guard does not
  match, or a skip guard does.

The planner also asks :func:`blocked_by` with keys that only a run will set: a guard over
one of them is decided at run time.
"""

import json
import re
from collections.abc import Collection, Mapping

from ckg.mlc.dialect import MLCFLOW, Dialect

TRUE_WORDS = frozenset({"yes", "on", "true", "1"})
FALSE_WORDS = frozenset({"no", "off", "false", "0"})
GUARD_KEYS = ("enable_if_env", "enable_if_any_env", "skip_if_env", "skip_if_any_env")
_REF = re.compile(r"<<<(.*?)>>>")


def is_true(value) -> bool:
    """``1``, ``true``, ``on``, ``yes`` in any case (MLCFlow's ``is_true``)."""
    return str(value).lower() in TRUE_WORDS


def is_false(value) -> bool:
    """``0``, ``false``, ``off``, ``no`` in any case (MLCFlow's ``is_false``)."""
    return str(value).lower() in FALSE_WORDS


def _expected(spec, dialect: Dialect) -> set[str]:
    if isinstance(spec, list) or (dialect.scalar_letters and isinstance(spec, str)):
        return {str(v).lower() for v in spec}
    return {str(spec).lower()}


def key_matches(
    spec, env: Mapping, key: str, dialect: Dialect = MLCFLOW, *, any_form=False
) -> bool:
    """Whether ``env[key]`` matches one guard key's expected values (see the module).

    ``any_form``: the test of ``*_if_any_env``, where an absent key never matches and an
    expected ``""`` counts as a false word; in ``*_if_env`` it counts so for an absent key
    only (both functions of MLCFlow and of CM read so).

    Examples
    --------
    >>> key_matches(["yes"], {"A": "on"}, "A"), key_matches(["yes"], {"A": ""}, "A")
    (True, False)
    >>> key_matches(["no"], {}, "A"), key_matches(["yes"], {"A": "<<<B>>>"}, "A")
    (True, False)
    >>> key_matches([""], {"A": "no"}, "A"), key_matches([""], {"A": "no"}, "A", any_form=True)
    (False, True)
    """
    wanted = _expected(spec, dialect)
    if key not in env:
        return not any_form and bool(wanted & (FALSE_WORDS | {""}))
    value = str(env[key]).lower().strip()
    unset = is_false(value) or value == "" or (dialect.ref_is_unset and bool(_REF.search(value)))
    if wanted & TRUE_WORDS:
        return not unset
    if wanted & (FALSE_WORDS | {""} if any_form else FALSE_WORDS):
        return unset
    return value in wanted


def all_match(condition: Mapping, env: Mapping, dialect: Dialect = MLCFLOW) -> bool:
    """``enable_or_skip_script``: every key of ``condition`` matches ``env``.

    >>> all_match({"A": ["yes"]}, {"A": "on"}), all_match({"A": ["no"]}, {})
    (True, True)
    >>> all_match({"A": ["x", "y"]}, {"A": "z"})
    False
    """
    return all(key_matches(spec, env, key, dialect) for key, spec in condition.items())


def any_match(condition: Mapping, env: Mapping, dialect: Dialect = MLCFLOW) -> bool:
    """``any_enable_or_skip_script``: one key set in ``env`` matches.

    >>> any_match({"A": ["yes"], "B": ["x"]}, {"B": "x"}), any_match({"A": ["no"]}, {})
    (True, False)
    """
    return any(
        key_matches(spec, env, key, dialect, any_form=True) for key, spec in condition.items()
    )


_CHECKS = (
    ("enable_if_env", all_match, False),
    ("enable_if_any_env", any_match, False),
    ("skip_if_env", all_match, True),
    ("skip_if_any_env", any_match, True),
)


def skipped(entry: Mapping, env: Mapping, dialect: Dialect = MLCFLOW) -> bool:
    """``is_dep_tobe_skipped``: whether a dependency entry (or an ``add_deps`` update, an
    ``update_meta_if_env`` item) is off under ``env``.

    >>> skipped({"enable_if_env": {"A": ["yes"]}}, {})
    True
    >>> skipped({"skip_if_any_env": {"A": ["yes"], "B": ["yes"]}}, {"B": "1"})
    True
    >>> skipped({"skip_if_fake_run": True}, {"MLC_TMP_FAKE_RUN": "yes"})
    True
    """
    if entry.get("skip_if_fake_run") and env.get(dialect.prefix + "TMP_FAKE_RUN", "") == "yes":
        return True
    return any(
        name in entry and test(entry[name], env, dialect) == blocks
        for name, test, blocks in _CHECKS
    )


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


def blocked_by(guard, env: Mapping, unknown: Collection[str] = ()) -> str | None:
    """How the guard decides its entry under ``env``: None when the entry is used, else
    the first guard part that turns it off, as ``"enable_if_env {...}"``.

    Parameters
    ----------
    guard : dict or str
        The entry's guard keys, or their JSON text.
    env : mapping
        The environment of the script that declares the entry.
    unknown : collection of str
        Keys whose value only the run will know. A guard over one of them is not
        decided here: the answer is ``""`` (a false string: planned, decided at run time).

    Examples
    --------
    >>> blocked_by({"enable_if_env": {"USE_CUDA": [True]}}, {})
    "enable_if_env {'USE_CUDA': [True]}"
    >>> blocked_by({"skip_if_env": {"USE_CUDA": ["yes"]}}, {"USE_CUDA": "no"}) is None
    True
    >>> blocked_by({"enable_if_env": {"OS": ["linux"]}}, {}, unknown={"OS"})
    ''
    """
    parts = parse_guard(guard)
    if any(key in unknown for condition in parts.values() for key in condition):
        return ""
    for name, test, blocks in _CHECKS:
        if name in parts and test(parts[name], env) == blocks:
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
