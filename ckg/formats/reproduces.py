"""The ``reproduces:`` block of a meta and ``--reproduces`` texts, parsed (no graph, no I/O).

A block (in ``ckg.yaml`` or a CM/MLC ``_cm.yaml`` / ``meta.yaml``) is a list of mappings,
each naming a published result by its ``result`` uid or by some of :data:`FIELDS`, with the
``params`` a run must have to reproduce it. What these entries name in the graph, and which
runs reproduce them, is :mod:`ckg.run.reproduces`.
"""

import re
from collections.abc import Iterable
from dataclasses import dataclass

from ckg.core.errors import InvalidInput, UsageError

#: The fields of a spec, in the order messages name them.
FIELDS = ("paper", "task", "dataset", "metric", "model")
_SPLIT = re.compile(r",\s*(?=[A-Za-z_]\w*\s*=)")  # a comma before NAME=: values may hold commas
_SPEC_HELP = "a Result uid (result:...) or paper=...,task=...,dataset=...,metric=...,model=..."


@dataclass(frozen=True, slots=True)
class Entry:
    """One declaration: a Result uid or a spec, and the parameters a run must have."""

    result: str | None = None
    spec: tuple[tuple[str, str], ...] = ()
    params: tuple[tuple[str, object], ...] = ()

    def text(self) -> str:
        return self.result or ",".join(f"{k}={v}" for k, v in self.spec)


def parse_declaration(text: str) -> Entry:
    """``--reproduces`` text as an :class:`Entry`.

    Raises
    ------
    UsageError
        Neither a ``result:`` uid nor a spec of known fields.

    Examples
    --------
    >>> parse_declaration("paper=arXiv:1810.04805, metric=F1,model=BERT-large").spec
    (('paper', 'arXiv:1810.04805'), ('metric', 'F1'), ('model', 'BERT-large'))
    >>> parse_declaration("result:0a1b").result
    'result:0a1b'
    >>> parse_declaration("knn")
    Traceback (most recent call last):
    ckg.core.errors.UsageError: --reproduces 'knn': give a Result uid (result:...) or paper=...,...
    """
    text = text.strip()
    if text.startswith("result:"):
        return Entry(result=text)
    spec = []
    for part in _SPLIT.split(text):
        name, sep, value = part.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or name not in FIELDS or not value:
            short = "a Result uid (result:...) or paper=...,..." if "=" not in text else _SPEC_HELP
            raise UsageError(f"--reproduces {text!r}: give {short}")
        spec.append((name, value))
    names = [n for n, _ in spec]
    if len(set(names)) < len(names):
        raise UsageError(f"--reproduces {text!r}: a field is named twice")
    return Entry(spec=tuple(spec))


def parse_block(block, where: str) -> list[Entry]:
    """The entries of a meta's ``reproduces:`` block (None: no block).

    Raises
    ------
    InvalidInput
        A block that is not a list of mappings, an entry naming neither ``result`` nor a spec
        field, an unknown key, or ``params`` that is not a mapping.

    Examples
    --------
    >>> [e.text() for e in parse_block([{"model": "knn", "metric": "accuracy"}], "ckg.yaml")]
    ['metric=accuracy,model=knn']
    >>> parse_block({"model": "knn"}, "ckg.yaml")
    Traceback (most recent call last):
    ckg.core.errors.InvalidInput: ckg.yaml: reproduces must be a list of {paper, task, dataset, ...
    """
    if block is None:
        return []
    if not isinstance(block, list):
        raise InvalidInput(
            f"{where}: reproduces must be a list of {{paper, task, dataset, metric, model, "
            "params}} or {result, params} mappings"
        )
    entries = []
    for index, item in enumerate(block):
        at = f"{where}: reproduces[{index}]"
        if not isinstance(item, dict):
            raise InvalidInput(f"{at} must be a mapping")
        unknown = sorted(set(item) - {*FIELDS, "result", "params"})
        if unknown:
            raise InvalidInput(
                f"{at}: unknown key {unknown[0]!r} (keys: {', '.join(FIELDS)}, result, params)"
            )
        params = item.get("params") or {}
        if not isinstance(params, dict):
            raise InvalidInput(f"{at}: params must map parameter names to values")
        spec = tuple((k, str(item[k])) for k in FIELDS if item.get(k) not in (None, ""))
        result = str(item["result"]) if item.get("result") else None
        if not spec and not result:
            raise InvalidInput(f"{at} names no result: give result, or some of {', '.join(FIELDS)}")
        entries.append(Entry(result, () if result else spec, tuple(params.items())))
    return entries


def check_block(block, names: Iterable[str], where: str) -> None:
    """Refuse a malformed block, or one whose ``params`` name no parameter in ``names``.

    >>> check_block([{"model": "knn", "params": {"k": 1}}], ["model"], "ckg.yaml")
    Traceback (most recent call last):
    ckg.core.errors.InvalidInput: ckg.yaml: reproduces[0] matches on k, which is not in params
    """
    known = set(names)
    for index, entry in enumerate(parse_block(block, where)):
        unknown = sorted({k for k, _ in entry.params} - known)
        if unknown:
            raise InvalidInput(
                f"{where}: reproduces[{index}] matches on {', '.join(unknown)}, "
                f"which {'is' if len(unknown) == 1 else 'are'} not in params"
            )
