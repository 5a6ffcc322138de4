"""Who ``ckg serve`` answers: its owner only, the way Jupyter does it.

Every request must name a host the server was told of (a web page whose own name was
rebound to 127.0.0.1 sends its own name: DNS rebinding), fit in :data:`MAX_URL` with no body
(every page is a GET), and carry the token printed when the server started: in the URL once
(``?token=...``, which then sets an HttpOnly, SameSite=Strict cookie and leaves the address
bar), in that cookie, or as ``Authorization: token ...`` for scripts. Anything else is
refused before it reaches the graph. The checks are a few comparisons of headers.
"""

import hmac
import json
import re
import secrets
from urllib.parse import urlsplit

from starlette.requests import cookie_parser

#: Names of this machine's loopback that every server answers to, as a Host header has them.
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")
#: Longest path and query taken, in bytes (Tornado's, and so Jupyter's, header limit).
MAX_URL = 64 * 1024


def new_token() -> str:
    """A fresh random token: 32 bytes, URL- and cookie-safe."""
    return secrets.token_urlsafe(32)


def host_name(host: str) -> str:
    """``host`` (a Host header, or an address) in lower case without its port, an IPv6
    address in brackets; empty when its port is not a number. Only names in the allowed set
    pass, so nothing else needs checking here.

    >>> host_name("LocalHost:8765"), host_name("[::1]:8765"), host_name("::1")
    ('localhost', '[::1]', '[::1]')
    >>> host_name("evil.example:x"), host_name("[::1]x"), host_name("")
    ('', '', '')
    """
    host = host.strip().lower()
    if host.startswith("["):
        name, _, port = host.partition("]")
        name += "]"
    elif host.count(":") > 1:  # a bare IPv6 address, as --host takes it
        return f"[{host}]"
    else:
        name, _, port = host.partition(":")
        port = ":" + port if port or host.endswith(":") else ""
    return name if not port or port[0] == ":" and port[1:].isdigit() else ""


def allowed_hosts(bound: str, extra=()) -> frozenset[str]:
    """The host names a server bound to ``bound`` answers to: loopback's, ``bound`` itself
    and the ``extra`` names the user gave.

    >>> sorted(allowed_hosts("::1", ["Lab-Box"]))
    ['127.0.0.1', '[::1]', 'lab-box', 'localhost']
    """
    return frozenset(n for n in map(host_name, (*LOOPBACK_HOSTS, bound, *extra)) if n)


def offsite(url: str, hosts: frozenset[str]) -> bool:
    """Whether a page may link to ``url``: http(s) to a host named, not numbered, and not one
    of ``hosts``. Browsers send a host's cookies to all its ports, so a link to another port
    of this machine would hand the token to whoever listens there; they also read a last
    label that is a number as an IPv4 address (``http://2130706433/`` is 127.0.0.1).

    >>> hosts = allowed_hosts("127.0.0.1")
    >>> [offsite(u, hosts) for u in ("https://arxiv.org/abs/1", "http://127.0.0.1:9/",
    ...  "http://2130706433/", "http://0x7f.1/", "http://[::1]:9/", "http://LocalHost./",
    ...  "javascript:alert(1)", "http://[::1")]
    [True, False, False, False, False, False, False, False]
    """
    try:
        parts = urlsplit(url)
        name = (parts.hostname or "").rstrip(".")
    except ValueError:
        return False
    numbered = ":" in name or re.fullmatch(r"\d*|0x[0-9a-f]*", name.rpartition(".")[2])
    return parts.scheme in ("http", "https") and not numbered and name not in hosts


def cookie_name(port: int) -> str:
    """The cookie of the server on ``port``: browsers send a host's cookies to all its ports,
    so two servers on one machine each keep their own."""
    return f"ckg-token-{port}"


class Guard:
    """ASGI middleware refusing, before ``app`` sees it, any request that is not the owner's
    (see the module's docstring)."""

    def __init__(self, app, *, token: str, hosts: frozenset[str]):
        self.app = app
        self.token = token.encode()
        self.hosts = hosts

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = _headers(scope)
        refused = self.refusal(scope, headers)
        if refused:
            return await _refuse(scope, send, *refused)
        query = scope["query_string"]
        if b"token=" in query and _is_page(scope) and self._given_in_query(query):
            return await self._sign_in(scope, send, query)
        await self.app(scope, receive, send)

    def refusal(self, scope, headers: dict[bytes, bytes]) -> tuple[int, str] | None:
        """(status, why) when the request is refused, else None."""
        host = headers.get(b"host", b"").decode("latin-1")
        if host_name(host) not in self.hosts:
            return 400, (f"this server does not answer to the host {host!r}; if that name is "
                         "this machine's, start ckg serve with --allow-host NAME")  # fmt: skip
        size = len(scope.get("raw_path") or b"") + len(scope["query_string"])
        if size > MAX_URL:
            return 414, f"this URL has {size} bytes; ckg serve reads at most {MAX_URL}"
        if headers.get(b"content-length", b"0") != b"0" or b"transfer-encoding" in headers:
            return 413, "ckg serve takes no request body: every page is a GET"
        if not self._given(scope, headers):
            return 403, ("this server answers its owner only: open the URL ckg serve printed "
                         "(it ends in ?token=...)")  # fmt: skip
        return None

    def _given(self, scope, headers) -> bool:
        """Whether the request carries the token: header, cookie or query."""
        scheme, _, value = headers.get(b"authorization", b"").partition(b" ")
        if scheme.lower() in (b"token", b"bearer") and self._equal(value.strip()):
            return True
        cookies = headers.get(b"cookie")
        if cookies:
            name = cookie_name(scope["server"][1])
            given = cookie_parser(cookies.decode("latin-1")).get(name)
            if given is not None and self._equal(given.encode("latin-1", "replace")):
                return True
        query = scope["query_string"]
        return b"token=" in query and self._given_in_query(query)

    def _given_in_query(self, query: bytes) -> bool:
        return any(self._equal(p[6:]) for p in query.split(b"&") if p.startswith(b"token="))

    def _equal(self, given: bytes) -> bool:
        return hmac.compare_digest(given, self.token)  # in constant time

    async def _sign_in(self, scope, send, query: bytes) -> None:
        """A page opened with the token: set the cookie and open the same page without the
        token, so that it stays out of the address bar, bookmarks and copied links."""
        kept = b"&".join(p for p in query.split(b"&") if p and not p.startswith(b"token="))
        # One leading slash: "//x" or "/\x" in Location would send the browser to host x.
        path = b"/" + (scope.get("raw_path") or scope["path"].encode()).lstrip(b"/\\")
        cookie = (f"{cookie_name(scope['server'][1])}={self.token.decode()}; Path=/; HttpOnly; "
                  "SameSite=Strict")  # fmt: skip
        await send({"type": "http.response.start", "status": 303, "headers": [
            (b"location", path + (b"?" + kept if kept else b"")),
            (b"set-cookie", cookie.encode()), (b"content-length", b"0"),
            (b"cache-control", b"no-store"), (b"referrer-policy", b"no-referrer")]})  # fmt: skip
        await send({"type": "http.response.body", "body": b""})


def _headers(scope) -> dict[bytes, bytes]:
    """The request's headers by lower-case name (ASGI servers give lower-case names)."""
    return dict(scope["headers"])


def _is_page(scope) -> bool:
    """A page for a browser: not ``/api/...`` nor ``?format=json``, read with GET or HEAD."""
    path, query = scope["path"], scope["query_string"]
    return (scope["method"] in ("GET", "HEAD") and path != "/api"
            and not path.startswith("/api/") and b"format=json" not in query)  # fmt: skip


async def _refuse(scope, send, status: int, why: str) -> None:
    if _is_page(scope):
        body, media = why.encode(), b"text/plain; charset=utf-8"
    else:
        body, media = json.dumps({"error": why}).encode(), b"application/json"
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", media), (b"content-length", str(len(body)).encode()),
        (b"x-content-type-options", b"nosniff"), (b"connection", b"close")]})  # fmt: skip
    await send({"type": "http.response.body", "body": body})
