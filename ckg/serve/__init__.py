"""``ckg serve``: a read-only web view of the graph, every page also as JSON."""

import socket

from ckg.core.errors import UsageError

#: Where ``ckg serve`` listens unless told otherwise: this machine only.
HOST = "127.0.0.1"
PORT = 8765


def listen(host: str = HOST, port: int = PORT) -> socket.socket:
    """A socket listening on ``host``:``port``; UsageError naming them when it cannot be
    (a port outside 1-65535, the port taken, an address not of this machine)."""
    if not 1 <= port <= 65535:  # the resolver would take 99999 and bind 34463 (modulo 2^16)
        raise UsageError(f"cannot listen on port {port}: a port is a number from 1 to 65535")
    try:
        info = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(info[0], socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(info[4])
    except OSError as exc:
        reason = (exc.strerror or str(exc)).lower()
        raise UsageError(f"cannot listen on {host}:{port}: {reason}") from None
    sock.listen(128)
    return sock


def serve(kg, sock: socket.socket, *, token: str, hosts: frozenset[str]) -> None:
    """Serve ``kg`` on the listening socket ``sock`` until interrupted, to requests for one
    of ``hosts`` carrying ``token`` (:mod:`ckg.serve.access`)."""
    import uvicorn

    from ckg.serve.access import MAX_URL
    from ckg.serve.app import create_app

    # h11 bounds a request's head only while it arrives in pieces (16 KiB by default); room
    # for the longest URL the app takes, so that one gets the app's clear 414 either way.
    config = uvicorn.Config(create_app(kg, token=token, hosts=hosts), log_level="warning",
                            h11_max_incomplete_event_size=MAX_URL + 16 * 1024)  # fmt: skip
    uvicorn.Server(config).run(sockets=[sock])
