"""Real Dask schedulers and ``ckg worker`` processes on 127.0.0.1, started as the README
says: certificates made by ``ckg cluster certs``, ``dask scheduler`` with them, ``ckg
worker`` finding them in its home."""

import os
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from tests.fixtures_neo4j import free_port

BIN = Path(sys.executable).parent
CKG = str(BIN / "ckg")
STARTUP_S = 60


def make_certs(home: Path) -> Path:
    """``ckg cluster certs`` into ``home``'s default folder; that folder."""
    subprocess.run(
        [CKG, "cluster", "certs"],
        check=True,
        capture_output=True,
        timeout=60,
        env={**os.environ, "CKG_HOME": str(home)},
    )
    return home / "cluster"


def copy_certs(certs: Path, home: Path) -> None:
    """What the README asks of each machine: the folder copied into its ckg home, private."""
    home.mkdir(mode=0o700, exist_ok=True)
    shutil.copytree(certs, home / "cluster")


@contextmanager
def scheduler(certs: Path | None, log: Path, env=None):
    """A ``dask scheduler`` on a free port of 127.0.0.1: with the scheduler's certificate of
    ``certs``, or plain without; its address."""
    port = free_port()
    tls = (
        []
        if certs is None
        else [
            "--tls-ca-file",
            certs / "ca.pem",
            "--tls-cert",
            certs / "scheduler.pem",
            "--tls-key",
            certs / "scheduler.key",
        ]
    )
    with open(log, "w") as out:
        process = subprocess.Popen(
            [
                BIN / "dask",
                "scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--no-dashboard",
                *tls,
            ],
            stdout=out,
            stderr=out,
            env={**os.environ, **(env or {})},
        )
    try:
        yield f"{'tcp' if certs is None else 'tls'}://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=20)


class Worker:
    """One ``ckg worker`` subprocess with its own CKG_HOME (trust list, caches, journal,
    cluster certificates); ``uri`` None for its embedded graph."""

    def __init__(self, label: str, home: Path, uri: str | None, scheduler: str, *args: str):
        self.label, self.home, self.uri, self.scheduler = label, home, uri, scheduler
        self.args = args
        self.process = None
        self.address = self.offers = ""
        self.log = ""

    def start(self) -> "Worker":
        log = self.home / f"worker-{time.monotonic_ns()}.log"
        db = ["--db", self.uri] if self.uri else []
        with open(log, "w") as err:
            self.process = subprocess.Popen(
                [
                    CKG,
                    *db,
                    "worker",
                    "--scheduler",
                    self.scheduler,
                    "--label",
                    self.label,
                    *self.args,
                ],
                env={**os.environ, "CKG_HOME": str(self.home)},
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
        deadline = time.monotonic() + STARTUP_S
        while time.monotonic() < deadline:
            self.log = log.read_text()
            for line in self.log.splitlines():
                if line.startswith("ckg worker "):
                    self.address, _, self.offers = line[len("ckg worker ") :].partition(" offers ")
                    return self
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"ckg worker {self.label} did not start:\n{log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if not self.uri:
            subprocess.run(
                [CKG, "db", "stop"],
                capture_output=True,
                timeout=60,
                env={**os.environ, "CKG_HOME": str(self.home)},
            )
