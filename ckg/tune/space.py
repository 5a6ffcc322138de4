"""The search space of ``ckg tune``: ``--space`` values read into parameters, pure.

One ``--space`` value declares one parameter of the target::

    model=knn,svm,forest          a choice among values (numbers read as JSON, else text)
    k=int(1,15)                   an integer from 1 to 15, both included; int(0,100,10) steps
    C=log(1e-3,1e3)               a float drawn on a log scale, bounds included
    lr=float(0,1)                 a float drawn on a linear scale
    C=log(1e-3,1e3) if model=svm  ... only where ``model`` is ``svm``
    k=int(1,15) if model=knn,ann  ... only where ``model`` is one of the values listed

A conditional parameter depends on one parameter declared before it (which may itself be
conditional): where the condition does not hold it is neither sampled nor passed to the
target, which then runs with its own default for it.
"""

import json
import re
from dataclasses import dataclass

from ckg.core.errors import UsageError
from ckg.run.workflow import parse_value

#: The kinds of parameter, as ``--space`` writes them, and what each is.
KINDS = {
    "choice": "V1,V2,...",
    "int": "int(LOW,HIGH) or int(LOW,HIGH,STEP)",
    "float": "float(LOW,HIGH)",
    "log": "log(LOW,HIGH) with 0 < LOW",
}
_RANGE = re.compile(r"^(int|float|log)\((.*)\)$")
_USAGE = (
    "NAME=V1,V2 | NAME=int(LOW,HIGH[,STEP]) | NAME=float(LOW,HIGH) | NAME=log(LOW,HIGH), "
    "optionally followed by ' if OTHER=V1,V2'"
)


@dataclass(frozen=True, slots=True)
class Param:
    """One parameter of a space.

    ``kind`` is one of :data:`KINDS`; ``values`` the choices of a ``choice``; ``low``,
    ``high`` (both included) and ``step`` (``int`` only) the range of the others; ``when``
    the condition, ``(parent, allowed values)``, or None for a parameter always passed.
    """

    name: str
    kind: str
    values: tuple = ()
    low: float | None = None
    high: float | None = None
    step: int | None = None
    when: tuple[str, tuple] | None = None

    def spec(self) -> str:
        """The ``--space`` value that declares this parameter, in one canonical form.

        >>> parse_space(["model=svm,knn", "C = log(0.001, 1000)  if model=svm"])[1].spec()
        'C=log(0.001,1000) if model=svm'
        """
        if self.kind == "choice":
            body = ",".join(_text(v) for v in self.values)
        else:
            bounds = [self.low, self.high] + ([self.step] if self.step not in (None, 1) else [])
            body = f"{self.kind}({','.join(_text(v) for v in bounds)})"
        cond = f" if {self.when[0]}={','.join(_text(v) for v in self.when[1])}" if self.when else ""
        return f"{self.name}={body}{cond}"


def parse_space(specs: list[str] | tuple[str, ...]) -> tuple[Param, ...]:
    """The parameters ``--space`` values declare, in order.

    Parameters
    ----------
    specs : list of str
        One ``--space`` value per parameter, as the module notes write them.

    Returns
    -------
    tuple of Param

    Raises
    ------
    UsageError
        No value; a value that is none of the forms (the message names it and the valid
        forms); bounds that are not numbers or not ``LOW < HIGH``; a ``log`` range that
        reaches 0; a parameter declared twice; a condition on a parameter not declared
        before, or on a value that parameter cannot take.

    Examples
    --------
    >>> space = parse_space(["model=knn,svm", "k=int(1,15) if model=knn", "C=log(1e-3,1e3)"])
    >>> [(p.name, p.kind) for p in space]
    [('model', 'choice'), ('k', 'int'), ('C', 'log')]
    >>> space[1].when, space[2].low, space[2].high
    (('model', ('knn',)), 0.001, 1000.0)
    >>> parse_space(["k=int(5,1)"])
    Traceback (most recent call last):
    ckg.core.errors.UsageError: --space 'k=int(5,1)': LOW must be below HIGH
    >>> parse_space(["C=0.1 if kind=rbf"])
    Traceback (most recent call last):
    ckg.core.errors.UsageError: --space 'C=0.1 if kind=rbf': kind is not declared by an earlier...
    """
    if not specs:
        raise UsageError(f"ckg tune needs at least one --space {_USAGE}")
    space: dict[str, Param] = {}
    for spec in specs:
        param = _parse_one(spec, space)
        if param.name in space:
            raise UsageError(f"--space {spec!r}: {param.name} is declared twice")
        space[param.name] = param
    return tuple(space.values())


def _parse_one(spec: str, earlier: dict[str, Param]) -> Param:
    def bad(why: str) -> UsageError:
        return UsageError(f"--space {spec!r}: {why}")

    body, _, condition = spec.partition(" if ")
    name, sep, value = body.partition("=")
    name, value = name.strip(), value.strip()
    if not sep or not name.isidentifier() or not value:
        raise bad(f"expected {_USAGE}")
    when = None
    if condition.strip():
        parent, sep, allowed = condition.partition("=")
        parent = parent.strip()
        if not sep or not parent or not allowed.strip():
            raise bad("a condition is ' if OTHER=V1,V2'")
        if parent not in earlier:
            raise bad(f"{parent} is not declared by an earlier --space")
        values = tuple(parse_value(v.strip()) for v in allowed.split(","))
        possible = earlier[parent]
        outside = [v for v in values if not _can_take(possible, v)]
        if outside:
            raise bad(f"{parent} never takes {_text(outside[0])} (it is {possible.spec()})")
        when = (parent, values)
    ranged = _RANGE.match(value)
    if not ranged and re.match(r"^\w+\(", value):  # a range of a kind there is not
        raise bad(f"expected {_USAGE}")
    if not ranged:
        choices = tuple(parse_value(v.strip()) for v in value.split(","))
        if "" in choices or len(set(map(json.dumps, choices))) != len(choices):
            raise bad("a choice lists distinct, non-empty values")
        return Param(name, "choice", values=choices, when=when)
    kind, inner = ranged.groups()
    parts = [parse_value(v.strip()) for v in inner.split(",")]
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in parts)
    if not numeric or len(parts) not in ((2, 3) if kind == "int" else (2,)):
        raise bad(f"{kind} takes {KINDS[kind]}, numbers")
    low, high, *step = parts
    if kind == "int" and not all(float(v).is_integer() for v in parts):
        raise bad("int bounds and step are whole numbers")
    if not low < high:
        raise bad("LOW must be below HIGH")
    if kind == "log" and low <= 0:
        raise bad("log needs 0 < LOW")
    if kind == "int":
        step_size = int(step[0]) if step else 1
        if step_size < 1 or (int(high) - int(low)) % step_size:
            raise bad("STEP is a whole number >= 1 that divides HIGH - LOW")
        return Param(name, kind, low=int(low), high=int(high), step=step_size, when=when)
    return Param(name, kind, low=float(low), high=float(high), when=when)


def _can_take(param: Param, value) -> bool:
    if param.kind == "choice":
        return value in param.values
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    inside = param.low <= value <= param.high
    return inside and (param.kind != "int" or (value - param.low) % param.step == 0)


def _text(value) -> str:
    """A value as ``--space`` writes it: ``1000`` for 1000.0, text as it is.

    >>> _text(1000.0), _text(0.001), _text("svm"), _text(True)
    ('1000', '0.001', 'svm', 'true')
    """
    if isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def holds(param: Param, point: dict) -> bool:
    """Whether ``param`` is passed at ``point`` (the values of the parameters before it):
    its condition holds, its parent having been passed.

    >>> space = parse_space(["model=knn,svm", "k=int(1,3) if model=knn"])
    >>> holds(space[1], {"model": "knn"}), holds(space[1], {"model": "svm"})
    (True, False)
    """
    if param.when is None:
        return True
    parent, allowed = param.when
    return parent in point and point[parent] in allowed


def grid(space: tuple[Param, ...], limit: int | None = None) -> list[dict] | None:
    """Every point of a space of choices and integers, conditions respected, in the order
    the values are declared; None when a parameter is a float, or when there are more than
    ``limit`` points (found without listing them all).

    >>> grid(parse_space(["model=knn,svm", "k=int(1,3) if model=knn"]))
    [{'model': 'knn', 'k': 1}, {'model': 'knn', 'k': 2}, {'model': 'knn', 'k': 3}, {'model': 'svm'}]
    >>> grid(parse_space(["a=int(1,1000)", "b=int(1,1000)", "c=int(1,1000)"]), limit=10**5)
    """
    if any(p.kind in ("float", "log") for p in space):
        return None
    points = [{}]
    for param in space:
        values = (
            param.values
            if param.kind == "choice"
            else tuple(range(param.low, param.high + 1, param.step))
        )
        if limit is not None:  # counted before they are made: a parameter never removes any
            if sum(len(values) if holds(param, p) else 1 for p in points) > limit:
                return None
        points = [
            extended
            for point in points
            for extended in (
                [{**point, param.name: v} for v in values] if holds(param, point) else [point]
            )
        ]
    return points


def nearest(point: dict, candidates: list[dict], space: tuple[Param, ...], rng) -> dict:
    """The candidate closest to ``point``, one of the closest drawn by ``rng`` (a
    :class:`random.Random`) where several are as close.

    The distance adds, over the parameters: 1 where one point has it and the other not, or
    where two values of a choice differ; for an integer, or a choice of numbers (taken in
    the order declared), the difference as a fraction of its whole range.

    >>> space = parse_space(["model=knn,svm", "k=int(1,11) if model=knn", "C=1,10,100"])
    >>> import random
    >>> nearest({"model": "knn", "k": 3, "C": 1}, [{"model": "knn", "k": 9, "C": 1},
    ...     {"model": "knn", "k": 5, "C": 100}, {"model": "svm", "C": 1}], space, random.Random(0))
    {'model': 'knn', 'k': 9, 'C': 1}
    """
    scale = {p.name: _positions(p) for p in space}

    def distance(other: dict) -> float:
        total = 0.0
        for name, position in scale.items():
            if (name in point) != (name in other):
                total += 1
            elif name in point and point[name] != other[name]:
                total += abs(position(point[name]) - position(other[name])) if position else 1
        return total

    distances = [distance(c) for c in candidates]
    closest = min(distances)
    return rng.choice([c for c, d in zip(candidates, distances, strict=True) if d == closest])


def _positions(param: Param):
    """Where a value of ``param`` lies on its range, from 0 to 1; None for a choice of
    values that are not all numbers (they have no order)."""
    if param.kind == "choice":
        numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in param.values)
        if not numbers or len(param.values) < 2:
            return None
        ranks = {v: i / (len(param.values) - 1) for i, v in enumerate(param.values)}
        return ranks.__getitem__
    return lambda value: (value - param.low) / (param.high - param.low)


def point_key(point: dict) -> str:
    """One text per point, whatever the order of its names: what tells two trials of the
    same parameters apart from two of different ones.

    >>> point_key({"k": 3, "model": "knn"}) == point_key({"model": "knn", "k": 3})
    True
    """
    return json.dumps(point, sort_keys=True)
