"""Nodes and relationships as JSON objects, checked on the way back in, and the stamp that
says where an export came from.

Both export formats (a run's record, a whole graph's lines) write a node as
``{"label", "key", "props"}`` and a relationship as ``{"type", "src_label", "src_key",
"dst_label", "dst_key", "props"}``, the fields of :class:`ckg.core.records.Node` and
:class:`ckg.core.records.Edge`, as the run journal does. A file read back is someone else's: every
label and type must be a name :func:`ckg.core.schema.check_name` accepts, every key text or a
number, every property a primitive or a list of primitives (what both engines store).
"""

from dataclasses import asdict
from datetime import UTC, datetime
from urllib.parse import urlsplit, urlunsplit

from ckg import __version__
from ckg.core.errors import InvalidInput
from ckg.core.records import Edge, Node
from ckg.core.schema import check_name

_PRIMITIVE = (str, int, float, bool, type(None))


def now() -> str:
    """The time now, UTC, ISO 8601 to the second."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def stamp(store) -> dict:
    """Who wrote an export, from which graph, when: the header of both formats.

    A URI's user name and password, should it hold any, are left out.

    >>> class S: engine, location = "neo4j", "bolt://ann:secret@db:7687"
    >>> stamp(S())["exported_from"]
    'neo4j bolt://db:7687'
    """
    return {
        "ckg_version": __version__,
        "exported_at": now(),
        "exported_from": f"{store.engine} {_without_credentials(store.location)}",
    }


def _without_credentials(location: str) -> str:
    parts = urlsplit(location)
    if not parts.scheme or "@" not in parts.netloc:
        return location
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def node_json(node: Node) -> dict:
    return asdict(node)


def edge_json(edge: Edge) -> dict:
    return asdict(edge)


def node_from(data, where: str) -> Node:
    """The :class:`Node` that ``data`` describes; ``where`` names it in errors.

    >>> node_from({"label": "Run", "key": "r1", "props": {"n": [1, 2]}}, "x").key
    'r1'
    >>> node_from({"label": "Run; DROP", "key": "r1", "props": {}}, "f.json:3")
    Traceback (most recent call last):
    ckg.core.errors.InvalidInput: f.json:3: not a valid label or relationship type: 'Run; DROP'
    """
    if not isinstance(data, dict):
        raise InvalidInput(f"{where}: not a node")
    label = _name(data.get("label"), where)
    return Node(label, _key(data.get("key"), where), _props(data.get("props"), where))


def edge_from(data, where: str) -> Edge:
    """The :class:`Edge` that ``data`` describes; ``where`` names it in errors."""
    if not isinstance(data, dict):
        raise InvalidInput(f"{where}: not a relationship")
    return Edge(
        _name(data.get("type"), where),
        _name(data.get("src_label"), where),
        _key(data.get("src_key"), where),
        _name(data.get("dst_label"), where),
        _key(data.get("dst_key"), where),
        _props(data.get("props"), where),
    )


def _name(value, where: str) -> str:
    if not isinstance(value, str):
        raise InvalidInput(f"{where}: a label or type must be text, not {value!r}")
    try:
        return check_name(value)
    except InvalidInput as exc:
        raise InvalidInput(f"{where}: {exc}") from None


def _key(value, where: str):
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise InvalidInput(f"{where}: a key must be text or a number, not {value!r}")
    return value


def _props(value, where: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidInput(f"{where}: properties must be an object")
    for name, item in value.items():
        if isinstance(item, list):
            ok = all(isinstance(v, _PRIMITIVE) and v is not None for v in item)
        else:
            ok = isinstance(item, _PRIMITIVE)
        if not ok:
            raise InvalidInput(
                f"{where}: property {name!r} is neither a primitive nor a list of primitives"
            )
    return value
