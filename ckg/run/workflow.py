"""The values ``ckg run`` and ``ckg plan`` take on the command line: ``--grid``, ``--env``
and parameter values (a ``ckg.yaml``'s grids and command template are
:mod:`ckg.formats.ckgyaml`)."""

import json

from ckg.core.errors import UsageError


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
    ckg.core.errors.UsageError: --env expects NAME=VALUE with NAME a variable name, got 'oops'
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
