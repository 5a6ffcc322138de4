"""What a run reproduces: ``--reproduces`` texts and ``reproduces:`` blocks
(:mod:`ckg.formats.reproduces`), resolved to ``Result`` uids before anything runs, and the
``REPRODUCES`` edges the runner writes (:class:`Reproduces`).

Matching rules, here and in the named queries: a spec's fields must all agree with the Result
(task, dataset and model ignoring case; ``paper`` as :func:`ckg.formats.papers.paper_uid` keys
it; ``metric`` as the registry names it). A spec that names results of one metric with
different tasks, datasets, models or papers is ambiguous and refused: a run is compared with
one reported figure per metric, never with a cross product. A run's parameters match an
entry's ``params`` value by value, numbers as numbers and text ignoring case.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ckg.core.errors import InvalidInput, UsageError
from ckg.formats.reproduces import FIELDS, Entry, parse_block, parse_declaration
from ckg.graph.execution import results_by_uid, results_matching


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
        rows = results_by_uid(store, [entry.result])
        if not rows and strict:
            raise UsageError(f"{where}: no result {entry.result!r} in the graph")
        return [r["uid"] for r in rows]
    rows = results_matching(store, **_spec_params(dict(entry.spec)))
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
    from ckg.core import metrics
    from ckg.formats.papers import paper_uid

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
        from ckg.core.records import Edge

        return [
            Edge("REPRODUCES", "Run", run_uid, "Result", uid) for uid in self.results_for(point)
        ]


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
