"""A real one-node Slurm for the tests: ``slurm``, started once per test process from Debian's
``slurmctld``, ``slurmd`` and ``munge``, all in a temporary folder.

``munged`` runs with its own key, socket, log and seed; ``slurm.conf`` names that socket
(``AuthInfo``), its own ports and spool and state folders, one partition ``debug`` and this
host as its one node, with the CPUs and memory ``slurmd -C`` reports. ``slurmctld -D`` and
``slurmd -D`` run as subprocesses with ``SLURM_CONF`` set, which the fixture also sets for
the session so that ``sbatch``, ``squeue`` and ``scancel`` (and the ``ckg`` processes the
tests start) reach this cluster. Each pytest-xdist worker starts its own, on its own free
ports and folders, so two never share a controller.

Slurm runs jobs as their submitter's user, so the daemons run as root: without root or
without the programs the fixture skips, saying which (``.ci/run`` installs them where it
can, as it installs chromium, and goes on without them where it cannot).
"""

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.fixtures_neo4j import free_port

PROGRAMS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scancel", "sinfo")
PARTITION = "debug"
READY_S = 60


def missing() -> str:
    """Why a Slurm cannot start here, or ''."""
    absent = [p for p in PROGRAMS if shutil.which(p) is None and not Path("/usr/sbin", p).exists()]
    if absent:
        return (
            f"the Slurm tests need Debian's slurmctld, slurmd and munge: "
            f"{', '.join(absent)} missing"
        )
    if os.geteuid() != 0:
        return "the Slurm tests start slurmd, which runs jobs as their users: they need root"
    return ""


def _program(name: str) -> str:
    return shutil.which(name) or str(Path("/usr/sbin", name))


class Slurm:
    """munged, slurmctld and slurmd of one cluster under ``root``; ``env`` reaches it."""

    def __init__(self, root: Path):
        self.root = root
        self.processes: list[subprocess.Popen] = []
        self.conf = root / "slurm.conf"
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}
        self.node = socket.gethostname().split(".")[0]

    def start(self) -> "Slurm":
        root = self.root
        for folder in ("munge", "state", "spool", "log"):
            (root / folder).mkdir(mode=0o700)
        key = root / "munge" / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        socket_path = root / "munge" / "munge.socket"
        self._start(
            [
                _program("munged"),
                "-F",
                "-f",
                f"--socket={socket_path}",
                f"--key-file={key}",
                f"--log-file={root / 'log' / 'munged.log'}",
                f"--pid-file={root / 'munge' / 'munged.pid'}",
                f"--seed-file={root / 'munge' / 'munged.seed'}",
            ],
            "munged",
        )
        self._wait(lambda: socket_path.exists(), "munged", root / "log" / "munged.log")
        # slurmd -C: this node as slurmd sees it (a larger RealMemory would drain it)
        node = subprocess.run(
            [_program("slurmd"), "-C"], capture_output=True, text=True, check=True, timeout=30
        ).stdout.splitlines()[0]
        node = " ".join(w for w in node.split() if not w.startswith("NodeName="))
        ctld, slurmd = free_port(), free_port()
        self.conf.write_text(
            "\n".join(
                [
                    f"ClusterName=ckg{ctld}",
                    "SlurmctldHost=localhost",
                    f"SlurmctldPort={ctld}",
                    f"SlurmdPort={slurmd}",
                    "SlurmUser=root",
                    "AuthType=auth/munge",
                    "CredType=cred/munge",
                    f"AuthInfo=socket={socket_path}",
                    f"StateSaveLocation={root / 'state'}",
                    f"SlurmdSpoolDir={root / 'spool'}",
                    f"SlurmctldPidFile={root / 'slurmctld.pid'}",
                    f"SlurmdPidFile={root / 'slurmd.pid'}",
                    f"SlurmctldLogFile={root / 'log' / 'slurmctld.log'}",
                    f"SlurmdLogFile={root / 'log' / 'slurmd.log'}",
                    "ProctrackType=proctrack/linuxproc",
                    "TaskPlugin=task/none",
                    "SelectType=select/cons_tres",
                    "SelectTypeParameters=CR_Core",
                    "ReturnToService=2",
                    "MpiDefault=none",
                    "SwitchType=switch/none",
                    "JobAcctGatherType=jobacct_gather/none",
                    "AccountingStorageType=accounting_storage/none",
                    "MailProg=/bin/true",
                    "KillWait=2",
                    f"NodeName={self.node} NodeAddr=127.0.0.1 {node} State=UNKNOWN",
                    f"PartitionName={PARTITION} Nodes={self.node} Default=YES State=UP",
                    "",
                ]
            )
        )
        self._start([_program("slurmctld"), "-D", "-i"], "slurmctld")
        self._start([_program("slurmd"), "-D", "-N", self.node], "slurmd")
        self._wait(self._idle, "the node to be idle in sinfo", root / "log" / "slurmd.log")
        return self

    def sinfo(self) -> str:
        done = subprocess.run(
            ["sinfo", "-h", "-N", "-o", "%N %t"],
            capture_output=True,
            text=True,
            env=self.env,
            timeout=30,
        )
        return done.stdout.strip()

    def jobs(self) -> list[str]:
        """The ids of the jobs in ``squeue``, of every state."""
        done = subprocess.run(
            ["squeue", "-h", "-o", "%i"],
            capture_output=True,
            text=True,
            env=self.env,
            timeout=30,
            check=True,
        )
        return done.stdout.split()

    def stop(self) -> None:
        subprocess.run(
            ["scancel", "--full", "--user", "root"], capture_output=True, env=self.env, timeout=30
        )
        for process in reversed(self.processes):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()

    def _idle(self) -> bool:
        return self.sinfo() == f"{self.node} idle"

    def _start(self, command: list[str], name: str) -> None:
        log = open(self.root / "log" / f"{name}.out", "w")
        with log:
            self.processes.append(
                subprocess.Popen(command, env=self.env, stdout=log, stderr=subprocess.STDOUT)
            )

    def _wait(self, ready, what: str, log: Path) -> None:
        deadline = time.monotonic() + READY_S
        while time.monotonic() < deadline:
            if ready():
                return
            if any(p.poll() is not None for p in self.processes):
                break
            time.sleep(0.2)
        logs = "\n".join(
            f"--- {f.name}\n" + f.read_text(errors="replace")[-1500:]
            for f in sorted((self.root / "log").iterdir())
        )
        self.stop()
        raise RuntimeError(f"Slurm: waited for {what} in vain ({log}):\n{logs}")


@pytest.fixture(scope="session")
def slurm(tmp_path_factory):
    """A running one-node Slurm (:class:`Slurm`), its ``SLURM_CONF`` set for the session."""
    why = missing()
    if why:
        pytest.skip(why)
    cluster = Slurm(tmp_path_factory.mktemp("slurm")).start()
    try:
        with pytest.MonkeyPatch.context() as env:
            env.setenv("SLURM_CONF", str(cluster.conf))
            yield cluster
    finally:
        cluster.stop()
