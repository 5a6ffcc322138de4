"""A TCP forwarder for the tests that cut a connection to a server, or count them."""

import socket
import threading
import time
from pathlib import Path


class Proxy:
    """A TCP forwarder on 127.0.0.1 to ``target_port`` of ``host``; :meth:`close` drops every
    connection and stops listening, so that the port refuses from then on. A connection
    that ``target_port`` refuses is hung up on. ``connections`` counts those made to it."""

    def __init__(self, target_port: int, host: str = "127.0.0.1"):
        self._target = (host, target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self.port = self._listener.getsockname()[1]
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self.connections = 0
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    def close_when(self, trigger: Path, limit_s: float) -> None:
        """Close as soon as ``trigger`` exists (polled), or after ``limit_s`` at most."""

        def watch() -> None:
            deadline = time.monotonic() + limit_s
            while not trigger.exists() and time.monotonic() < deadline:
                if self._closed.wait(0.02):
                    return
            self.close()

        thread = threading.Thread(target=watch, daemon=True)
        thread.start()
        self._threads.append(thread)

    def close(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        self._listener.close()
        with self._lock:
            for sock in self._sockets:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()

    def join(self) -> None:
        for thread in self._threads:
            thread.join(timeout=5)

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # closed
            self.connections += 1
            try:
                upstream = socket.create_connection(self._target)
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._closed.is_set():
                    client.close()
                    upstream.close()
                    return
                self._sockets += [client, upstream]
            for src, dst in ((client, upstream), (upstream, client)):
                thread = threading.Thread(target=self._pump, args=(src, dst), daemon=True)
                thread.start()
                self._threads.append(thread)

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass  # the other side or close() ended it
        finally:
            try:
                dst.shutdown(socket.SHUT_WR)
            except OSError:
                pass
