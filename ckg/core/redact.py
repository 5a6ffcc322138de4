"""Secrets kept out of everything ckg writes: plans, runs in the graph, the run journal,
logs, a script worker's files, exports.

A secret is found two ways:

- **by name**: the value of a variable or parameter whose name has a word ``KEY``,
  ``TOKEN``, ``SECRET(S)``, ``PASSWORD``, ``PASSWD``, ``PASSPHRASE`` or ``CREDENTIAL(S)``
  (alone or ending a word: ``APIKEY``), or ends in ``AUTH`` (``NEO4J_AUTH``), in any case
  and in snake or camel case; ``TOKENIZER``, ``MAX_TOKENS`` or ``SSH_AUTH_SOCK`` are none;
- **in a URL**: the password of ``scheme://user:password@host``, whatever the name.

Such values are then masked **by value** in any text ckg keeps (what a step prints, its
command, its parameters), so a secret a script echoes is gone from its log too. Values
shorter than :data:`MIN_LENGTH` are masked only where their name says so: masking every
``1`` of a log would destroy it and protect nothing.

The steps themselves get the real values: masking happens on what is written, and the
files a step needs (:mod:`ckg.plan.memo`'s plans, the script worker's job) keep
placeholders that :func:`unseal` turns back into the values from the environment.
"""

import dataclasses
import functools
import json
import os
import re
from collections.abc import Iterable, Mapping

MASK = "***"
#: Shorter values are not looked for in text.
MIN_LENGTH = 6
#: Labels of the nodes a run writes whose properties an export masks again (runs recorded
#: before masking, or with secrets not in their environment's names).
RUN_LABELS = frozenset({"Run", "Experiment"})
#: Run properties that hold a mapping as JSON text, whose keys name their values.
JSON_MAPS = ("env", "env_full", "new_env", "params", "params_grid", "new_state")

_WORDS = r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+"
_SECRET_WORDS = (
    "KEY",
    "TOKEN",
    "SECRET",
    "SECRETS",
    "PASSWORD",
    "PASSWD",
    "PASSPHRASE",
    "CREDENTIAL",
    "CREDENTIALS",
)
# A password of 3 or more characters in a URL: shorter is no secret, and then the mask
# never makes a text longer (a log is masked in place).
_URL_PASSWORD = r"([A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]*:)([^/\s@]{3,})@"
_CHUNK = 1 << 20


@functools.lru_cache(maxsize=4096)
def is_secret_name(name: str) -> bool:
    """Whether a variable or parameter called ``name`` holds a secret.

    >>> [is_secret_name(n) for n in ("OPENAI_API_KEY", "AWS_SECRET_ACCESS_KEY", "apiKey",
    ...                               "NEO4J_AUTH", "db_password", "GH_TOKEN")]
    [True, True, True, True, True, True]
    >>> [is_secret_name(n) for n in ("CM_TOKENIZER", "MAX_NUM_TOKENS", "SSH_AUTH_SOCK",
    ...                               "KEYFILE_PATH", "PWD", "model")]
    [False, False, False, False, False, False]
    """
    words = [w.upper() for w in _compiled(_WORDS).findall(name)]
    if not words:
        return False
    return words[-1].endswith("AUTH") or any(w.endswith(_SECRET_WORDS) for w in words)


def url_passwords(text: str) -> list[str]:
    """The passwords of the URLs in ``text``.

    >>> url_passwords("postgres://u:hunter2pw@h/db and https://host:8443/x")
    ['hunter2pw']
    """
    return [m.group(2) for m in _compiled(_URL_PASSWORD).finditer(text)] if "://" in text else []


def is_secret(name: str, value, secrets: Iterable[str] = ()) -> bool:
    """Whether the variable ``name=value`` holds a secret: by its name, a URL password, or
    one of ``secrets`` inside its value.

    >>> is_secret("CMD", "curl -H 'Bearer sk-12345678'", ("sk-12345678",))
    True
    """
    if is_secret_name(str(name)):
        return True
    if not isinstance(value, str):
        return False
    return bool(url_passwords(value)) or any(s in value for s in secrets)


def secret_values(*mappings: Mapping | None) -> tuple[str, ...]:
    """The secret values in ``mappings`` (environments, parameters) that text is masked
    by: those of secret names and URL passwords, at least :data:`MIN_LENGTH` long, the
    longest first (a secret holding another is masked whole).

    >>> secret_values({"HF_TOKEN": "hf_abcdefgh", "API_KEY": "1",
    ...                "DB": "mysql://me:hunter2pw@db/x", "N": "7"})
    ('hf_abcdefgh', 'hunter2pw')
    """
    found: set[str] = set()
    for mapping in mappings:
        for name, value in (mapping or {}).items():
            if not isinstance(value, str):
                continue
            if is_secret_name(str(name)):
                found.add(value)
            else:
                found.update(url_passwords(value))
    return combine(v for v in found if len(v) >= MIN_LENGTH)


def combine(*groups: Iterable[str]) -> tuple[str, ...]:
    """The secrets of ``groups``, each once, the longest first.

    >>> combine(("abcdefg",), ("abcdefgh", "abcdefg"))
    ('abcdefgh', 'abcdefg')
    """
    return tuple(sorted({s for group in groups for s in group}, key=lambda s: (-len(s), s)))


def ambient() -> tuple[str, ...]:
    """The secret values of this process's environment."""
    return secret_values(os.environ)


def mask_text(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with each of ``secrets`` and every URL password replaced by :data:`MASK`.

    >>> mask_text("key=sk-12345678 url=redis://:pa55word@h n=1", ("sk-12345678",))
    'key=*** url=redis://:***@h n=1'
    """
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    if "://" in text:
        text = _compiled(_URL_PASSWORD).sub(r"\1" + MASK + "@", text)
    return text


def mask_value(value, secrets: Iterable[str] = ()):
    """``value`` (text, or JSON-like lists and dicts of it) masked: the values of secret
    names in dicts whole, any text by :func:`mask_text`.

    >>> mask_value({"token": "abc", "cmd": ["run", "--key", "sk-12345678"]}, ("sk-12345678",))
    {'token': '***', 'cmd': ['run', '--key', '***']}
    """
    if isinstance(value, str):
        return mask_text(value, secrets)
    if isinstance(value, Mapping):
        return mask_env(value, secrets)
    if isinstance(value, list | tuple):
        return [mask_value(v, secrets) for v in value]
    return value


def mask_env(env: Mapping, secrets: Iterable[str] = ()) -> dict:
    """``env`` with the values of secret names replaced by :data:`MASK` (an empty one stays
    empty: it says the variable is unset) and the others masked by value.

    >>> mask_env({"CM_X": "1", "HF_TOKEN": "abc", "DB": "pg://u:hunter2@h", "PW_KEY": ""})
    {'CM_X': '1', 'HF_TOKEN': '***', 'DB': 'pg://u:***@h', 'PW_KEY': ''}
    """
    secrets = tuple(secrets)
    return {
        k: (MASK if v not in ("", None) else v)
        if is_secret_name(str(k))
        else mask_value(v, secrets)
        for k, v in env.items()
    }


def env_text(env: Mapping, secrets: Iterable[str] = ()) -> str:
    """``env`` masked (:func:`mask_env`) as JSON text, sorted by name, as runs record it.

    >>> env_text({"HF_TOKEN": "abc", "CM_X": "1"})
    '{"CM_X": "1", "HF_TOKEN": "***"}'
    """
    return json.dumps(mask_env(dict(sorted(env.items())), secrets), ensure_ascii=False)


def props_secrets(props: Mapping) -> tuple[str, ...]:
    """The secret values a node's properties hold in the mappings of :data:`JSON_MAPS`."""
    maps = [_json_map(props.get(name)) for name in JSON_MAPS]
    return secret_values(*maps)


def mask_props(props: Mapping, secrets: Iterable[str] = ()) -> dict:
    """A node's or relationship's properties masked: the JSON mappings of
    :data:`JSON_MAPS` by name, every text by ``secrets``, by the secrets those mappings
    hold, and by URL.

    >>> mask_props({"env": '{"HF_TOKEN": "hf_abcdefgh"}', "log_tail": "got hf_abcdefgh"})
    {'env': '{"HF_TOKEN": "***"}', 'log_tail': 'got ***'}
    """
    secrets = combine(secrets, props_secrets(props))
    out = {}
    for name, value in props.items():
        if name in JSON_MAPS and (mapping := _json_map(value)) is not None:
            masked = mask_env(mapping, secrets)
            value = value if masked == mapping else json.dumps(masked, ensure_ascii=False)
        elif isinstance(value, str | list):
            value = mask_value(value, secrets)
        out[name] = value
    return out


def mask_node(node, secrets: Iterable[str] = ()):
    """``node`` (:class:`ckg.core.records.Node`) with its properties masked if its label is one
    of :data:`RUN_LABELS`: a new node, or ``node`` itself."""
    if node.label not in RUN_LABELS or not node.props:
        return node
    return dataclasses.replace(node, props=mask_props(node.props, secrets))


def mask_records(records, secrets: Iterable[str] = ()):
    """``records`` (:class:`ckg.core.records.Records`) just made, whose mappings were masked by
    name as they were made (:func:`env_text`), with every text of every node and
    relationship masked by value, in place; returns them."""
    secrets = tuple(secrets)
    for item in (*records.nodes, *records.edges):
        for name, value in item.props.items():
            # A list a store keeps holds one type: only lists of text are looked into.
            if isinstance(value, str) or (
                isinstance(value, list) and value and isinstance(value[0], str)
            ):
                item.props[name] = mask_value(value, secrets)
    return records


def mask_file(path, secrets: Iterable[str], *, start: int = 0) -> None:
    """Mask ``secrets`` and URL passwords in the file ``path`` from byte ``start`` on, in
    place; a file that holds none is not written.

    The file is read a megabyte at a time, cut after a line end where it can be so that a
    secret is never split; a mask is never longer than what it replaces, so the writes
    stay behind the reads.
    """
    needles = [s.encode() for s in secrets]
    keep = max(map(len, needles), default=0) + 4096
    try:
        handle = open(path, "r+b")  # noqa: SIM115
    except OSError:
        return
    with handle:
        if not _holds(handle, start, needles, keep):
            return
        read_at = write_at = start
        carry = b""
        while True:
            handle.seek(read_at)
            block = handle.read(_CHUNK)
            read_at += len(block)
            data = carry + block
            if block:
                cut = data.rfind(b"\n") + 1
                if cut == 0:  # one long line: cut where no secret can span
                    cut = max(0, len(data) - keep)
                data, carry = data[:cut], data[cut:]
            masked = _mask_needles(data, needles)
            handle.seek(write_at)
            handle.write(masked)
            write_at += len(masked)
            if not block:
                break
        handle.truncate(write_at)


def _holds(handle, start: int, needles: list[bytes], keep: int) -> bool:
    handle.seek(start)
    tail = b""
    while block := handle.read(_CHUNK):
        data = tail + block
        if any(n in data for n in needles) or (
            b"://" in data and _compiled(_URL_PASSWORD.encode()).search(data)
        ):
            return True
        tail = data[-keep:]
    return False


def mask_bytes(data: bytes, secrets: Iterable[str]) -> bytes:
    """:func:`mask_text` of bytes (a log's, in any encoding that keeps ASCII).

    >>> mask_bytes(b"key=sk-12345678\\n", ("sk-12345678",))
    b'key=***\\n'
    """
    return _mask_needles(data, [s.encode() for s in secrets])


def _mask_needles(data: bytes, needles: list[bytes]) -> bytes:
    mask = MASK.encode()
    for needle in needles:
        data = data.replace(needle, mask)
    if b"://" in data:
        data = _compiled(_URL_PASSWORD.encode()).sub(rb"\1" + mask + b"@", data)
    return data


@functools.cache
def _compiled(pattern: str | bytes) -> re.Pattern:
    # At first use: most processes mask nothing, and compiling all costs a millisecond.
    return re.compile(pattern)


def seal(text: str, secrets: Iterable[str]) -> str:
    """JSON ``text`` with each of ``secrets`` replaced by a placeholder that
    :func:`unseal` turns back, given the same ``secrets``.

    The placeholders hold control characters that JSON text never holds raw, so they can
    neither be met in the text nor be taken for one another.

    >>> text = json.dumps({"env": {"K": "sk-12345678"}, "cmd": "use sk-12345678"})
    >>> sealed = seal(text, ("sk-12345678",))
    >>> "sk-" in sealed, json.loads(unseal(sealed, ("sk-12345678",))) == json.loads(text)
    (False, True)
    """
    for index, secret in enumerate(secrets):
        for ascii_only in (False, True):  # as json.dumps writes it either way
            text = text.replace(
                json.dumps(secret, ensure_ascii=ascii_only)[1:-1], f"\x1e{index}\x1f"
            )
    return text


def unseal(text: str, secrets: Iterable[str]) -> str:
    """JSON text with the values :func:`seal` was given."""
    for index, secret in reversed(list(enumerate(secrets))):
        text = text.replace(f"\x1e{index}\x1f", json.dumps(secret)[1:-1])
    return text


def _json_map(value) -> dict | None:
    if not isinstance(value, str) or not value.startswith("{"):
        return None
    try:
        data = json.loads(value)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None
