"""``ckg serve``: a read-only web view of the graph (artifacts, runs, experiments, published
results, platforms), every page also as JSON; see :mod:`ckg.serve.app`."""

import socket

from ckg.errors import UsageError

#: Where ``ckg serve`` listens unless told otherwise: this machine only.
HOST = "127.0.0.1"
PORT = 8765


def listen(host: str = HOST, port: int = PORT) -> socket.socket:
    """A socket listening on ``host``:``port``; UsageError naming them when it cannot be
    (the port taken, an address not of this machine)."""
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


def serve(kg, sock: socket.socket) -> None:
    """Serve ``kg`` on the listening socket ``sock`` until interrupted."""
    import uvicorn

    from ckg.serve.app import create_app

    config = uvicorn.Config(create_app(kg), log_level="warning")
    uvicorn.Server(config).run(sockets=[sock])
