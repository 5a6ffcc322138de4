"""What a run reproduces: ``--reproduces`` texts and ``reproduces:`` blocks, resolved to
``Result`` uids, and the ``REPRODUCES`` edges the runner writes (:class:`Reproduces`).

Matching rules, here and in the named queries: a spec's fields must all agree with the Result
(task, dataset and model ignoring case; ``paper`` as :func:`importers.papers.paper_uid` keys
it; ``metric`` as the registry names it). A spec that names results of one metric with
different tasks, datasets, models or papers is ambiguous and refused: a run is compared with
one reported figure per metric, never with a cross product. A run's parameters match an
entry's ``params`` value by value, numbers as numbers and text ignoring case.
"""

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from ckg.errors import InvalidInput, UsageError

#: The fields of a spec, in the order messages name them.
FIELDS = ("paper", "task", "dataset", "metric", "model")
_SPLIT = re.compile(r",\s*(?=[A-Za-z_]\w*\s*=)")  # a comma before NAME=: values may hold commas
_SPEC_HELP = "a Result uid (result:...) or paper=...,task=...,dataset=...,metric=...,model=..."

_BY_UID = """
UNWIND $uids AS u
MATCH (r:Result {uid: u})
OPTIONAL MATCH (p:Paper)-[:REPORTS]->(r)
RETURN r.uid AS uid, p.uid AS paper, r.task AS task, r.dataset AS dataset,
       r.metric AS metric, r.model AS model
"""
_MATCHING = """
MATCH (r:Result)
WHERE ($task IS NULL OR toLower(r.task) = toLower($task))
  AND ($dataset IS NULL OR toLower(r.dataset) = toLower($dataset))
  AND ($metric IS NULL OR r.metric = $metric)
  AND ($model IS NULL OR toLower(r.model) = toLower($model))
OPTIONAL MATCH (p:Paper)-[:REPORTS]->(r)
WITH r, p
WHERE $paper IS NULL OR p.uid = $paper
RETURN r.uid AS uid, p.uid AS paper, r.task AS task, r.dataset AS dataset,
       r.metric AS metric, r.model AS model
ORDER BY uid
"""


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
    ckg.errors.UsageError: --reproduces 'knn': give a Result uid (result:...) or paper=...,...
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
    ckg.errors.InvalidInput: ckg.yaml: reproduces must be a list of {paper, task, dataset, ...
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
            raise InvalidInput(f"{at}: unknown key {unknown[0]!r} (keys: {', '.join(FIELDS)}, "
                               "result, params)")
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
    ckg.errors.InvalidInput: ckg.yaml: reproduces[0] matches on k, which is not in params
    """
    known = set(names)
    for index, entry in enumerate(parse_block(block, where)):
        unknown = sorted({k for k, _ in entry.params} - known)
        if unknown:
            raise InvalidInput(
                f"{where}: reproduces[{index}] matches on {', '.join(unknown)}, "
                f"which {'is' if len(unknown) == 1 else 'are'} not in params"
            )


def same_value(a, b) -> bool:
    """Whether a declared parameter value and a run's agree: numbers as numbers, text
    ignoring case (``1`` is ``1.0`` is ``"1"``; ``KNN`` is ``knn``).

    >>> same_value(1, "1.0"), same_value("KNN", "knn"), same_value(True, "true"), same_value(1, 2)
    (True, True, True, False)
    """
    return _norm(a) == _norm(b)


def _norm(value):
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value).strip()
    try:
        return float(text)
    except ValueError:
        return text.casefold()


def params_match(wanted: Mapping, params: Mapping) -> bool:
    """Whether ``params`` (a run's) has every value ``wanted`` names.

    >>> params_match({"model": "knn"}, {"model": "knn", "k": 1}), params_match({"k": 5}, {})
    (True, False)
    """
    return all(k in params and same_value(v, params[k]) for k, v in wanted.items())


def resolve(store, entry: Entry, *, strict: bool, where: str = "--reproduces") -> list[str]:
    """The uids of the Results ``entry`` names.

    Raises
    ------
    UsageError
        (``strict``) an unknown Result uid, or a spec that matches nothing; and, always, a
        spec matching results of one metric that differ in paper, task, dataset or model.
    """
    if entry.result:
        rows = store.run(_BY_UID, {"uids": [entry.result]})
        if not rows and strict:
            raise UsageError(f"{where}: no result {entry.result!r} in the graph")
        return [r["uid"] for r in rows]
    rows = store.run(_MATCHING, _spec_params(dict(entry.spec)))
    if not rows:
        if strict:
            raise UsageError(
                f"{where} {entry.text()!r} matches no result in the graph "
                "(import the paper's results first: ckg results import)"
            )
        return []
    _check_unambiguous(rows, f"{where} {entry.text()!r}")
    return [r["uid"] for r in rows]


def _spec_params(spec: dict) -> dict:
    from ckg import metrics
    from importers.papers import paper_uid

    params = {name: spec.get(name) for name in FIELDS}
    if params["paper"]:
        params["paper"] = paper_uid(params["paper"]) or params["paper"]
    if params["metric"]:
        params["metric"] = metrics.canonical_name(params["metric"])
    return params


def _check_unambiguous(rows: list[dict], what: str) -> None:
    by_metric: dict[str, set[tuple]] = {}
    for row in rows:
        key = (row["paper"], row["task"], row["dataset"], row["model"])
        by_metric.setdefault(row["metric"], set()).add(key)
    for metric, keys in sorted(by_metric.items()):
        if len(keys) > 1:
            shown = "; ".join(
                f"{m or '?'} on {d or '?'} ({t or '?'}, {p or 'no paper'})"
                for p, t, d, m in sorted(keys, key=lambda k: tuple(x or "" for x in k))[:3]
            )
            raise UsageError(
                f"{what} names {len(keys)} different {metric} results ({shown}"
                f"{'; ...' if len(keys) > 3 else ''}): name the paper, task, dataset and model"
            )


@dataclass(frozen=True, slots=True)
class Claim:
    """Results that a run reproduces when its parameters match ``params`` (every run: {})."""

    results: tuple[str, ...]
    params: dict = field(default_factory=dict)


@dataclass(slots=True)
class Reproduces:
    """What the runs of one ``ckg run`` command reproduce, resolved before anything runs."""

    claims: list[Claim] = field(default_factory=list)
    defaults: dict = field(default_factory=dict)

    def results_for(self, point: Mapping) -> list[str]:
        """The Result uids a run at grid ``point`` reproduces, in declaration order."""
        params = {**self.defaults, **point}
        found: list[str] = []
        for claim in self.claims:
            if params_match(claim.params, params):
                found += [uid for uid in claim.results if uid not in found]
        return found

    def edges(self, run_uid: str, point: Mapping) -> list:
        """``(Run)-[:REPRODUCES]->(Result)`` edges of the run ``run_uid`` at ``point``."""
        from ckg.records import Edge

        return [Edge("REPRODUCES", "Run", run_uid, "Result", uid)
                for uid in self.results_for(point)]


def for_target(store, step, given: Sequence[str] = ()) -> Reproduces:
    """Resolve ``--reproduces`` texts (strictly) and the target ``step``'s meta block.

    Entries of the block that match no result in the graph (its results not imported yet)
    are left out; an unknown uid or an unmatched spec given on the command line is refused.

    Raises
    ------
    UsageError
        A ``--reproduces`` text that is malformed, unknown or ambiguous.
    InvalidInput
        A malformed block, or an entry of it that is ambiguous.
    """
    meta = step.meta or {}
    block = parse_block(meta.get("reproduces"), f"{step.alias}: meta")
    claims = []
    for text in given:
        claims.append(Claim(tuple(resolve(store, parse_declaration(text), strict=True))))
    for index, entry in enumerate(block):
        where = f"{step.alias}: reproduces[{index}]"
        try:
            uids = resolve(store, entry, strict=False, where=where)
        except UsageError as exc:
            raise InvalidInput(str(exc)) from None
        if uids:
            claims.append(Claim(tuple(uids), dict(entry.params)))
    defaults = meta.get("params") if step.format == "ckg" else meta.get("default_env")
    return Reproduces(claims, dict(defaults or {}) if claims else {})
