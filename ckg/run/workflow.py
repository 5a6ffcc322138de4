"""ckg's own workflow format, ``ckg.yaml``, and parameter grids.

A ``ckg.yaml`` names a command template and its parameters::

    alias: digits-classifiers
    tags: [demo, sklearn, classification]
    deps:                       # CM syntax: tags, names, enable_if_env, ...
      - tags: get,dataset,digits
    params:                     # every parameter the command takes, with its default
      model: logreg
      C: 1.0
    grid:                       # the sweep `ckg demo` runs: a mapping (one Cartesian product)
      - {model: [logreg], C: [0.01, 1.0]}     # or a list of them (their union)
      - {model: [knn]}
    run: "{python} train.py --model {model} --C {C}"
    metrics: ckg-result.json    # the file the command writes its figures to
    timeout: 120                # seconds
    env: {OMP_NUM_THREADS: "1"}
    new_env_keys: [DIGITS_*]    # what dependants receive from tmp-run-env.out
    reproduces:                 # published results runs reproduce (see ckg.reproduce)
      - {paper: arXiv:1234.5678, dataset: digits, metric: accuracy, model: knn,
         params: {model: knn}}

In ``run``, ``{name}`` is a parameter (shell-quoted), and ``{python}`` (this interpreter),
``{artifact_dir}`` (the folder of ``ckg.yaml``) and ``{workdir}`` (the run's working folder)
are always defined; ``{{`` and ``}}`` are literal braces.
"""

import itertools
import json
import shlex
import string
from collections.abc import Iterator, Mapping

from ckg.errors import InvalidInput, UsageError

FILENAME = "ckg.yaml"
BUILTINS = ("python", "artifact_dir", "workdir")
KNOWN_KEYS = frozenset(
    {"alias", "uid", "tags", "deps", "params", "grid", "run", "metrics", "timeout", "env"}
    | {"new_env_keys", "description", "kind", "name", "reproduces"}
)


def check_meta(meta: Mapping, where: str) -> list[str]:
    """Validate a ``ckg.yaml`` mapping; return warnings for keys ckg does not know.

    Raises
    ------
    InvalidInput
        When ``run`` is missing or names an undeclared parameter, or ``params``, ``grid``,
        ``timeout``, ``env`` or ``reproduces`` have the wrong shape; the message starts with
        ``where``.

    Examples
    --------
    >>> check_meta({"alias": "x", "run": "echo {n}", "params": {"n": 1}}, "ckg.yaml")
    []
    >>> check_meta({"alias": "x", "run": "echo {m}"}, "ckg.yaml")
    Traceback (most recent call last):
    ckg.errors.InvalidInput: ckg.yaml: run uses {m}, which is not in params
    """
    if not isinstance(meta.get("alias"), str) or not meta["alias"]:
        raise InvalidInput(f"{where}: alias must be a non-empty string")
    if not isinstance(meta.get("run"), str) or not meta["run"].strip():
        raise InvalidInput(f"{where}: run must be a command template string")
    params = meta.get("params") or {}
    if not isinstance(params, dict):
        raise InvalidInput(f"{where}: params must map names to default values")
    for name in template_fields(meta["run"], where):
        if name not in params and name not in BUILTINS:
            raise InvalidInput(f"{where}: run uses {{{name}}}, which is not in params")
    for point in expand_grid(meta.get("grid") or {}, where=where):
        unknown = sorted(set(point) - set(params))
        if unknown:
            raise InvalidInput(f"{where}: grid names {', '.join(unknown)}, not in params")
    timeout = meta.get("timeout")
    if timeout is not None and (not isinstance(timeout, (int, float)) or timeout <= 0):
        raise InvalidInput(f"{where}: timeout must be a positive number of seconds")
    if not isinstance(meta.get("env") or {}, dict):
        raise InvalidInput(f"{where}: env must map names to values")
    from ckg.reproduce import check_block

    check_block(meta.get("reproduces"), params, where)
    return [f"{where}: unknown key {key!r}" for key in meta if key not in KNOWN_KEYS]


def template_fields(template: str, where: str = "run") -> list[str]:
    """The ``{name}`` fields of a command template, in order.

    >>> template_fields("{python} x.py --n {n} {{literal}}")
    ['python', 'n']
    """
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise InvalidInput(f"{where}: bad template {template!r}: {exc}") from None
    fields = []
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if not name.isidentifier() or spec or conversion:
            raise InvalidInput(f"{where}: template field {{{name}}} must be a plain name")
        fields.append(name)
    return fields


def render(template: str, values: Mapping) -> str:
    """Fill ``template`` with shell-quoted ``values``.

    >>> render("echo {msg} {n}", {"msg": "a b", "n": 3})
    "echo 'a b' 3"
    """
    quoted = {name: shlex.quote(_text(values[name])) for name in template_fields(template)}
    return template.format_map(quoted)


def expand_grid(grid, *, where: str = "grid") -> Iterator[dict]:
    """Points of a grid: a mapping of name -> values (Cartesian product) or a list of them.

    A scalar value counts as a one-value list. Points come in the order written, the last
    name varying fastest.

    >>> list(expand_grid({"a": [1, 2], "b": "x"}))
    [{'a': 1, 'b': 'x'}, {'a': 2, 'b': 'x'}]
    >>> list(expand_grid([{"a": 1}, {"a": [2, 3]}]))
    [{'a': 1}, {'a': 2}, {'a': 3}]
    """
    blocks = grid if isinstance(grid, list) else [grid]
    for block in blocks:
        if not isinstance(block, dict):
            raise InvalidInput(f"{where}: a grid is a mapping of name -> values, or a list")
        names = list(block)
        axes = [v if isinstance(v, list) else [v] for v in block.values()]
        for combo in itertools.product(*axes):
            yield dict(zip(names, combo, strict=True))


def parse_grid(specs: list[str] | None) -> dict[str, list]:
    """``--grid k=v1,v2`` options to a grid mapping; values read as JSON where they can.

    Raises
    ------
    UsageError
        When an option is not ``NAME=V1[,V2...]`` or names one parameter twice.

    Examples
    --------
    >>> parse_grid(["model=knn,svm", "C=0.1,1"])
    {'model': ['knn', 'svm'], 'C': [0.1, 1]}
    """
    grid: dict[str, list] = {}
    for spec in specs or []:
        name, sep, values = spec.partition("=")
        name = name.strip()
        if not sep or not name or not values:
            raise UsageError(f"--grid expects NAME=V1,V2,..., got {spec!r}")
        if name in grid:
            raise UsageError(f"--grid names {name!r} twice")
        grid[name] = [parse_value(v) for v in values.split(",")]
    return grid


def parse_env(pairs: list[str] | None) -> dict[str, str]:
    """``--env K=V`` options to a dict of strings.

    >>> parse_env(["CM_X=1", "EMPTY="])
    {'CM_X': '1', 'EMPTY': ''}
    >>> parse_env(["oops"])
    Traceback (most recent call last):
    ckg.errors.UsageError: --env expects NAME=VALUE with NAME a variable name, got 'oops'
    """
    env = {}
    for pair in pairs or []:
        name, sep, value = pair.partition("=")
        # ALIAS:NAME sets NAME for one step only (the planner splits it off).
        if not sep or not name.rpartition(":")[2].isidentifier():
            raise UsageError(f"--env expects NAME=VALUE with NAME a variable name, got {pair!r}")
        env[name] = value
    return env


def parse_value(text: str):
    """A parameter value from the command line: a JSON number, bool or null, else the text.

    >>> parse_value("0.5"), parse_value("knn"), parse_value("true")
    (0.5, 'knn', True)
    """
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return value if isinstance(value, (int, float, bool)) or value is None else text


def _text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    return str(value)
