"""A minimal Redis protocol (RESP2) client over a Unix socket, and FalkorDB's compact replies.

Why not ``redis-py``: importing it costs about 0.17 s here, more than half of the 0.3 s that
``ckg find`` may take as a whole process. ckg only needs to send commands to its own
server on a Unix socket and read the replies, which is this small module.

FalkorDB's ``GRAPH.QUERY ... --compact`` reply is ``[header, rows, stats]`` (or ``[stats]``
for a statement that returns nothing); every value is a ``[type, value]`` pair, and node
and relationship properties name their keys by number (see :class:`CompactDecoder`).
"""

import socket
import struct
from json import dumps as _json

from ckg.core.errors import QueryError, StoreUnavailable


class ReplyError(Exception):
    """An error reply (``-ERR ...``) from the server."""


class Connection:
    """One blocking connection to a Redis server on a Unix socket."""

    def __init__(self, path: str, *, timeout: float | None = None, fileno: int | None = None):
        """Connect to ``path``, or take over the connected socket ``fileno`` (one a parent
        process opened to ``path`` and passed on)."""
        self.path = path
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM, fileno=fileno)
        self._sock.settimeout(timeout)
        if fileno is None:
            try:
                self._sock.connect(path)
            except OSError as exc:
                self._sock.close()
                raise StoreUnavailable(f"cannot connect to {path}: {exc.strerror or exc}") from None
        self._reader = self._sock.makefile("rb", buffering=1 << 16)

    def close(self) -> None:
        self._reader.close()
        self._sock.close()

    def fileno(self) -> int:
        return self._sock.fileno()

    def set_timeout(self, seconds: float | None) -> None:
        """Seconds to wait for each reply from now on (None: for as long as it takes)."""
        self._sock.settimeout(seconds)

    def peer(self) -> tuple[int, int] | None:
        """The pid and uid of the process listening on the other end (``SO_PEERCRED``),
        or None where the system does not tell (not Linux)."""
        if not hasattr(socket, "SO_PEERCRED"):
            return None
        creds = self._sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
        pid, uid, _gid = struct.unpack("3i", creds)
        return pid, uid

    def call(self, *args) -> object:
        """Send one command and return its reply; an error reply raises :class:`ReplyError`.

        FalkorDB reports a failed query either as the reply or as the last element of it.
        """
        self.send(*args)
        reply = self.read()
        error = reply_error(reply)
        if error is not None:
            raise error
        return reply

    def send(self, *args) -> None:
        """Send one command without waiting for its reply; :meth:`read` reads it later."""
        self._sendall(_encode(args))

    def pipeline(self, commands: list[tuple]) -> list[object]:
        """Send several commands at once and return every reply; errors come back as values."""
        self._sendall(b"".join(_encode(c) for c in commands))
        return [self.read() for _ in commands]

    def _sendall(self, data: bytes) -> None:
        try:
            self._sock.sendall(data)
        except OSError as exc:
            raise StoreUnavailable(f"lost the connection to {self.path}: {exc}") from None

    def read(self) -> object:
        """Read one whole reply; an error reply is returned as a :class:`ReplyError` value."""
        try:
            line = self._reader.readline()
        except OSError as exc:  # reset by a server that stopped, or a timeout
            raise StoreUnavailable(f"lost the connection to {self.path}: {exc}") from None
        if not line:
            raise StoreUnavailable(f"the server at {self.path} closed the connection")
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            return ReplyError(rest.decode(errors="replace"))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            size = int(rest)
            if size < 0:
                return None
            try:
                data = self._reader.read(size + 2)
            except OSError as exc:
                raise StoreUnavailable(f"lost the connection to {self.path}: {exc}") from None
            return data[:-2].decode(errors="surrogateescape")
        if kind == b"*":
            size = int(rest)
            if size < 0:
                return None
            return [self.read() for _ in range(size)]
        raise StoreUnavailable(f"unexpected reply from {self.path}: {line[:40]!r}")


def reply_error(reply: object) -> "ReplyError | None":
    """The error a reply carries: the reply itself, or (FalkorDB) its last element."""
    if isinstance(reply, ReplyError):
        return reply
    if isinstance(reply, list) and reply and isinstance(reply[-1], ReplyError):
        return reply[-1]
    return None


def _encode(args: tuple) -> bytes:
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


# FalkorDB's value types in compact replies.
_NULL, _STRING, _INTEGER, _BOOLEAN, _DOUBLE, _ARRAY, _EDGE, _NODE, _PATH, _MAP, _POINT = range(
    1, 12
)
_VECTORF32 = 12


class CompactDecoder:
    """Turns compact replies into rows of plain Python values.

    Nodes and relationships become dicts of their properties; property keys come as numbers,
    named by ``CALL db.propertyKeys()``, which is asked again whenever a number is new.
    """

    def __init__(self, fetch_property_keys):
        self._fetch_property_keys = fetch_property_keys
        self._keys: list[str] = []

    def rows(self, reply: list) -> list[dict]:
        if len(reply) < 3:
            return []
        header, records = reply[0], reply[1]
        names = [column[1] for column in header]
        return [
            {name: self.value(cell) for name, cell in zip(names, record, strict=True)}
            for record in records
        ]

    def value(self, cell: list) -> object:
        kind, raw = cell
        if kind == _STRING or kind == _INTEGER:
            return raw
        if kind == _NULL:
            return None
        if kind == _BOOLEAN:
            return raw == "true"
        if kind == _DOUBLE:
            return float(raw)
        if kind == _ARRAY:
            return [self.value(item) for item in raw]
        if kind == _NODE:
            return self._properties(raw[2])
        if kind == _EDGE:
            return self._properties(raw[4])
        if kind == _MAP:
            return {raw[i]: self.value(raw[i + 1]) for i in range(0, len(raw), 2)}
        if kind == _PATH:
            return {"nodes": self.value(raw[0]), "relationships": self.value(raw[1])}
        if kind == _POINT:
            return {"latitude": float(raw[0]), "longitude": float(raw[1])}
        if kind == _VECTORF32:
            return [float(v) for v in raw]
        return raw

    def _properties(self, props: list) -> dict:
        out = {}
        for key_id, kind, raw in props:
            if key_id >= len(self._keys):
                self._keys = self._fetch_property_keys()
            out[self._keys[key_id]] = self.value([kind, raw])
        return out


def cypher_literal(value: object) -> str:
    """Write a parameter value as the Cypher literal FalkorDB's ``CYPHER name=value`` expects.

    FalkorDB receives parameters as literals in a prefix of the query text; this is its
    protocol, so every string is escaped here and nowhere else. Written for speed (type
    checks by identity, most common type first): a 100,000-row batch is encoded here.

    A list with no map in it is written by :func:`json.dumps`, in half the time: JSON's
    lists, strings, numbers, ``null``, ``true`` and ``false`` are Cypher's, and FalkorDB
    reads JSON's escapes but ``\\uXXXX`` (a control character other than newline, tab,
    carriage return, backspace and form feed), for which, as for a map's quoted keys,
    the slow path writes it.

    >>> cypher_literal({"a": ['x"y', 1, 2.5, None, True]})
    '{`a`:["x\\\\"y",1,2.5,null,true]}'
    >>> cypher_literal([['x"y', 1, 2.5, None, True]])
    '[["x\\\\"y",1,2.5,null,true]]'
    """
    if type(value) is list:
        try:
            text = _json(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        except (TypeError, ValueError):  # NaN, infinities and other types: the slow path
            text = None
        if text is not None and '":' not in text and "\\u" not in text:
            return text
    return _literal(value)


def _literal(value: object) -> str:
    kind = type(value)
    if kind is str:
        if "\\" in value or '"' in value:
            value = value.replace("\\", "\\\\").replace('"', '\\"')
        return '"' + value + '"'
    if kind is dict:
        return "{" + ",".join([_map_key(k) + _literal(v) for k, v in value.items()]) + "}"
    if kind is list or kind is tuple:
        return "[" + ",".join([_literal(v) for v in value]) + "]"
    if value is None:
        return "null"
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return str(value)
    if kind is float:
        if value != value or value in (float("inf"), float("-inf")):
            raise QueryError(f"the embedded engine cannot store {value!r}: use null")
        return repr(value)
    if isinstance(value, (str, int, float, list, tuple, dict)):  # subclasses, e.g. IntEnum
        return _literal(_plain(value))
    if hasattr(value, "item"):  # NumPy scalars
        return _literal(value.item())
    raise QueryError(f"cannot send a {kind.__name__} as a query parameter")


_KEYS: dict[str, str] = {}


def _map_key(key: object) -> str:
    """```key`:`` for a map key; FalkorDB's parameter parser has no escape for backticks."""
    text = _KEYS.get(key)  # type: ignore[arg-type]
    if text is None:
        if not isinstance(key, str) or not key or "`" in key:
            raise QueryError(f"map key {key!r} cannot be sent to the embedded engine")
        text = f"`{key}`:"
        if len(_KEYS) < 10_000:
            _KEYS[key] = text
    return text


def _plain(value: object) -> object:
    for base in (int, float, str, list, tuple, dict):
        if isinstance(value, base):
            return base(value)
    return value
