"""``ckg serve`` started as a user starts it, for the tests that read it over HTTP:
``start_serve(home, log)`` waits for the line it prints and returns the URL in it."""

import os
import re
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

CKG = Path(sys.executable).with_name("ckg")


@dataclass
class Served:
    proc: subprocess.Popen
    url: str  # as printed, token included
    base: str  # scheme, host and port
    token: str | None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_env(home: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "NEO4J_URI"}
    return {**env, "CKG_HOME": str(home), "CKG_DB": "embedded"}


def start_serve(home: Path, log: Path, *args: str) -> Served:
    """``ckg serve --port FREE args`` over ``home``, its output in ``log``; a failure to start
    within 60 s fails the test with that output."""
    port = free_port()
    with log.open("w") as out:
        proc = subprocess.Popen([str(CKG), "serve", "--port", str(port), *args],
                                env=serve_env(home), stdout=out,
                                stderr=subprocess.STDOUT)  # fmt: skip
    deadline = time.monotonic() + 60
    while not (found := re.search(r"ckg serve: (http://\S+)", log.read_text())):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"ckg serve did not start: {log.read_text()}")
        time.sleep(0.1)
    url = found.group(1)
    parts = urlsplit(url)
    token = parse_qs(parts.query).get("token", [None])[0]
    return Served(proc, url, f"{parts.scheme}://{parts.netloc}", token)


def stop_serve(served: Served, log: Path) -> None:
    """Stop the server; it must have written no traceback."""
    served.proc.terminate()
    served.proc.wait(timeout=20)
    errors = log.read_text()
    assert "Traceback" not in errors, errors
