"""A real Neo4j 5 for the tests: ``neo4j_uri``, started once per session from Maven Central jars.

The launcher in ``tests/neo4j`` (an embedded Neo4j Community serving Bolt) is built with Maven
the first time, or when its sources change; Maven caches the jars in ``~/.m2``. The server
listens on a free port of 127.0.0.1 with authentication on, and the fixture puts its
credentials in ``NEO4J_USERNAME`` / ``NEO4J_PASSWORD`` for the session, where
:func:`ckg.core.config.neo4j_auth` (and any ``ckg`` subprocess) finds them.

Environment:

``CKG_TEST_NEO4J_URI``
    Use this running server instead of starting one (credentials from the environment).
``CKG_NEO4J_SKIP_REPORT``
    A file path: when the Neo4j half is skipped because Java or Maven is missing, one line
    ``skipped: <reason>`` is appended to it, so that CI can fail on a skip it must not accept.
``CKG_NEO4J_JAVA_OPTS``
    JVM options for the launcher, replacing the start-up-friendly defaults.
"""

import fcntl
import os
import shlex
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

LAUNCHER = Path(__file__).parent / "neo4j"
TARGET = LAUNCHER / "target"
JAR = TARGET / "ckg-neo4j-launcher.jar"
CLASSPATH = TARGET / "classpath.txt"
SOURCES = [LAUNCHER / "pom.xml", *sorted((LAUNCHER / "src").rglob("*.java"))]

TEST_USER = "neo4j"
TEST_PASSWORD = "ckg-test-password"

#: The first build downloads about 120 MB of jars; a cold JVM on 2 busy cores takes 10-30 s.
BUILD_TIMEOUT = 900
READY_TIMEOUT = 180
STOP_TIMEOUT = 30

# C1 only and the serial collector: about half the CPU time to start, which matters more on
# 2 shared cores than the peak speed of a server that lives for one test session.
DEFAULT_JAVA_OPTS = "-XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xms256m -Xmx1g"


def missing_tools() -> list[str]:
    """The tools the launcher needs that are not on PATH."""
    return [tool for tool in ("java", "mvn") if shutil.which(tool) is None]


def report_skip(reason: str) -> None:
    """Append ``skipped: reason`` to the file named by ``CKG_NEO4J_SKIP_REPORT``, if set."""
    report = os.environ.get("CKG_NEO4J_SKIP_REPORT")
    if report:
        with open(report, "a", encoding="utf-8") as out:
            out.write(f"skipped: {reason}\n")


def launcher_classpath() -> str:
    """Build the launcher if it is missing or older than its sources; return its class path.

    A lock file serialises builds, since several test sessions may share one working tree.
    """
    TARGET.mkdir(exist_ok=True)
    with open(TARGET / ".build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _stale():
            command = ["mvn", "-B", "-q", "-f", str(LAUNCHER / "pom.xml"), "package"]
            done = subprocess.run(
                command, capture_output=True, text=True, timeout=BUILD_TIMEOUT, check=False
            )
            if done.returncode != 0:
                tail = (done.stdout + done.stderr).strip().splitlines()[-20:]
                raise RuntimeError(
                    f"building the Neo4j launcher failed ({shlex.join(command)}):\n"
                    + "\n".join(tail)
                )
        return f"{JAR}{os.pathsep}{CLASSPATH.read_text().strip()}"


def _stale() -> bool:
    if not JAR.exists() or not CLASSPATH.exists():
        return True
    built = min(JAR.stat().st_mtime, CLASSPATH.stat().st_mtime)
    if any(source.stat().st_mtime > built for source in SOURCES):
        return True
    # The local Maven repository may have been cleaned since the last build.
    return not all(Path(jar).exists() for jar in CLASSPATH.read_text().strip().split(os.pathsep))


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Neo4jServer:
    """One launcher process: started by :meth:`start`, ended by :meth:`stop`."""

    def __init__(self, classpath: str, data_dir: Path):
        self.classpath = classpath
        self.data_dir = data_dir
        self.process: subprocess.Popen | None = None
        self.uri = ""

    def start(self) -> str:
        """Start the server on a free port, wait until Bolt accepts connections; its URI."""
        for _ in range(3):  # another process may take the free port before the JVM binds it
            port = free_port()
            try:
                return self._start_on(port)
            except _PortTaken:
                continue
        raise RuntimeError("Neo4j launcher: no free port could be bound in 3 tries")

    def _start_on(self, port: int) -> str:
        java_opts = shlex.split(os.environ.get("CKG_NEO4J_JAVA_OPTS", DEFAULT_JAVA_OPTS))
        command = [
            "java",
            *java_opts,
            "-cp",
            self.classpath,
            "ckg.neo4j.Launcher",
            str(port),
            str(self.data_dir / f"db-{port}"),
            TEST_PASSWORD,
        ]
        log = self.data_dir / f"launcher-{port}.log"
        said = self.data_dir / f"launcher-{port}.out"
        deadline = time.monotonic() + READY_TIMEOUT
        # stdin stays open: the launcher shuts down when it closes, also if pytest is killed.
        with open(log, "w") as stderr, open(said, "w") as stdout:
            self.process = subprocess.Popen(
                command, stdin=subprocess.PIPE, stdout=stdout, stderr=stderr, text=True
            )
        line = self._read_ready(said, deadline)
        if not line.startswith("READY"):
            self.process.kill()
            self.process.wait()
            errors = log.read_text(errors="replace")
            if "Address already in use" in errors:
                raise _PortTaken()
            tail = "\n".join(errors.strip().splitlines()[-15:])
            raise RuntimeError(
                f"Neo4j launcher did not become ready ({line or 'no output'}):\n{tail}"
            )
        self.uri = line.split()[1]
        return self.uri

    def _read_ready(self, said: Path, deadline: float) -> str:
        """The launcher's READY line in ``said`` (its stdout), or '' if it exits first, or
        'timed out'.

        Its stdout is a file, not a pipe: the JVM may print warnings there too, and a pipe
        would need a thread reading it for the whole session (a test that forks needs a
        process of one thread).
        """
        while time.monotonic() < deadline:
            exited = self.process.poll() is not None
            for line in said.read_text(errors="replace").splitlines():
                if line.startswith("READY"):
                    return line.strip()
            if exited:
                return ""
            time.sleep(0.05)
        return "timed out"

    def stop(self) -> None:
        """Close the launcher's stdin, wait for its clean shutdown, and check it happened.

        Raises
        ------
        RuntimeError
            If the JVM outlived STOP_TIMEOUT (it is killed) or exited with an error, so that
            a launcher that leaves a JVM behind fails the session instead of going unseen.
        """
        if self.process is None or self.process.poll() is not None:
            return
        self.process.stdin.close()
        try:
            code = self.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise RuntimeError(
                f"Neo4j launcher {self.process.pid} ignored the end of its stdin for "
                f"{STOP_TIMEOUT} s and was killed"
            ) from None
        if code != 0:
            raise RuntimeError(f"Neo4j launcher {self.process.pid} exited with {code} on shutdown")


class _PortTaken(Exception):
    pass


@pytest.fixture(scope="session")
def neo4j_uri(tmp_path_factory):
    """The Bolt URI of a real Neo4j 5 for this test session (skips without Java or Maven)."""
    external = os.environ.get("CKG_TEST_NEO4J_URI")
    if external:
        yield external
        return
    missing = missing_tools()
    if missing:
        reason = f"Neo4j tests need Java and Maven: {' and '.join(missing)} missing"
        report_skip(reason)
        pytest.skip(reason)
    server = Neo4jServer(launcher_classpath(), tmp_path_factory.mktemp("neo4j"))
    try:
        uri = server.start()
        with pytest.MonkeyPatch.context() as env:
            env.setenv("NEO4J_USERNAME", TEST_USER)
            env.setenv("NEO4J_PASSWORD", TEST_PASSWORD)
            yield uri
    finally:
        server.stop()
