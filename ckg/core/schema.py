"""The graph model of DESIGN.md: every node label and the property that keys it.

The store creates a uniqueness constraint (or unique index) for each pair, and every
upsert merges on it. Labels and relationship types are the only names ever placed in
Cypher text, and only after :func:`check_name` accepted them; parameter names, which the
embedded engine sends inside the text, only after :func:`check_params` did.
"""

import re

from ckg.core.errors import InvalidInput

NODE_KEYS: dict[str, str] = {
    "Source": "uid",
    "Artifact": "uid",
    "Variation": "uid",
    "Platform": "uid",
    "Experiment": "uid",
    "Run": "uid",
    "Measurement": "uid",
    "Paper": "uid",
    "Result": "uid",
    "Task": "name",
    "Dataset": "name",
    "Model": "name",
    "Metric": "name",
    "Tag": "name",
    "UnresolvedDependency": "uid",
    "CacheEntry": "uid",
}
#: Properties besides the key that reads look nodes up by, indexed by the store: a tag
#: selects an artifact (``ckg find``, ``ckg run TAGS``). Without the index each such read
#: tests every artifact: 0.2-0.3 s at 100x the corpora (72,300 artifacts), 2-30 ms with it
#: on the embedded store, whose index answers ``$tag IN a.tags``. Not the alias: FalkorDB's
#: index leaves out empty strings, so ``{alias: ''}`` would find nothing.
NODE_INDEXES: dict[str, tuple[str, ...]] = {"Artifact": ("tags",)}

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_PARAM = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def check_name(name: str) -> str:
    """Return ``name`` if it is a safe label or relationship type, else raise.

    >>> check_name("DEPENDS_ON")
    'DEPENDS_ON'
    """
    if not _NAME.fullmatch(name):
        raise InvalidInput(f"not a valid label or relationship type: {name!r}")
    return name


def check_params(params: dict) -> dict:
    """Return ``params`` if every name in it is a plain identifier, else raise.

    A name is written into the query text by the embedded engine (``CYPHER name=value``),
    so a name holding Cypher would run as Cypher; both engines refuse the same names.

    >>> check_params({"rows": [], "min_2": 1})
    {'rows': [], 'min_2': 1}
    """
    for name in params:
        if not isinstance(name, str) or not _PARAM.fullmatch(name):
            raise InvalidInput(f"not a valid query parameter name: {name!r}")
    return params


def key_of(label: str) -> str:
    """The key property of ``label``: the model's key, or ``uid`` for labels outside it."""
    return NODE_KEYS.get(check_name(label), "uid")
