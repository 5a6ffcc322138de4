"""The resident process of a home: ckg imported once, one forked child per command.

A ``ckg`` process spends about 0.1 s importing ckg, typer and the store client before its
first line of work, as long as Collective Mind's whole ``cm find``. The resident pays that
once: the ``ckg`` console script (:mod:`ckg.entry`) connects to ``HOME/resident.sock`` and
sends its arguments, environment, working folder, umask, limits and the encodings of its
standard streams, with the streams themselves (``SCM_RIGHTS``). The resident forks; the
child takes all of that on (:func:`adopt`) and runs :func:`ckg.cli.main` as the command's own
process would. The console script forwards the signals it gets and ends with the child's
status, a signal's included.

The child is what the command would have been in every respect a command can observe; where
it could not be (another interpreter, ``sys.path``, user, groups, cgroup or namespace; a limit
or CPU set it may not take on), it says so before doing anything and the console script runs
the command itself. It is outside the terminal's session, so the console script keeps the
commands that may run scripts (which may ask on the terminal) to itself while it has one.

Only its owner reaches the resident: the socket is in the private home, and a peer of another
user (``SO_PEERCRED``) is dropped unheard. It ends, after its children, when its home or
socket is no longer its own, on SIGTERM (``ckg db stop``), when ckg's own files change (a new
version is never served by the old one), or after ``CKG_IDLE_TIMEOUT`` seconds without a
command.

Started detached as ``python -P -m ckg.cli.resident HOME`` (``-P``: nothing from the folder
it was started in is importable).
"""

import fcntl
import gc
import io
import locale
import marshal
import os
import resource
import select
import signal
import socket
import struct
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ckg.core import config, process
from ckg.store import NEO4J_SCHEMES, lean_neo4j_driver
from ckg.store.server import idle_timeout

LOCK = "resident.lock"
PID_FILE = "resident.pid"
#: Modules of ckg not imported ahead: their commands run long or their extras are heavy (the
#: Neo4j driver: but see :func:`import_ahead`); each child that needs them imports them. A
#: package's ``__init__`` is imported all the same, to walk it: ckg.pareto's imports numpy.
_NOT_AHEAD = (
    "ckg.serve",
    "ckg.tune",
    "ckg.run.cluster",
    "ckg.run.notebook",
    "ckg.cli.resident",
    "ckg.store.watchdog",
    "ckg.entry",
    "ckg.cluster",
    "ckg.pareto",
    "ckg.store.neo4j",
)

#: Modules of ckg's dependencies that a command imports as it runs (CM's utils for the
#: scripts of CM, email's parser for package metadata, what the script worker sets).
_AHEAD_TOO = ("cmind", "cmind.utils", "email.parser", "faulthandler")


@dataclass
class Request:
    """What a ``ckg`` command sent: its fields (see :mod:`ckg.entry`), its standard streams'
    descriptors and the connection the child answers on."""

    fields: dict
    fds: list[int]
    conn: socket.socket


def main(argv: list[str]) -> int:
    home = Path(argv[1])
    os.umask(config.PRIVATE_UMASK)  # its files are its owner's alone; a child takes the caller's
    lock = os.open(home / LOCK, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return 0  # another resident serves this home
    # Written before the imports, so that ckg db stop finds (and ends) a resident that
    # is still starting.
    (home / PID_FILE).write_text(f"{os.getpid()}\n")
    code = CodeWatch()  # before the imports: a file changed while they run is seen too
    import_ahead()
    # What is imported now is the children's too: kept out of the collector, which would
    # otherwise touch (and so copy) every page of it in each child.
    gc.freeze()
    request = Resident(home, lock, code).serve()
    if request is None:
        return 0
    try:
        adopt(request.fields, request.fds)
    except (OSError, ValueError, LookupError) as exc:
        send(request.conn, ("fallback", str(exc)))
        os._exit(0)  # the command runs in its own process instead
    send(request.conn, ("ok", os.getpid()))
    request.conn.close()
    from ckg.cli import main as cli_main

    try:
        cli_main()
        code = 0
    except SystemExit as exc:
        code = exc.code
    except KeyboardInterrupt:
        import traceback

        traceback.print_exc()
        finish()
        signal.signal(signal.SIGINT, signal.SIG_DFL)  # die of it, as the interpreter does
        os.kill(os.getpid(), signal.SIGINT)
        code = 130
    except BaseException:
        sys.excepthook(*sys.exc_info())
        code = 1
    end(code)
    return 0


def end(code) -> None:
    """End the child with ``SystemExit``'s ``code`` as the interpreter would, without tearing
    down the modules imported ahead: finalising them copies the resident's memory page by
    page, most of a second."""
    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code & 0xFF
    else:
        print(code, file=sys.stderr)
        status = 1
    os._exit(finish() or status)


def finish() -> int:
    """What the interpreter does at exit before its teardown: join the threads, run the exit
    functions, flush the streams; 120 when stdout could not be flushed, else 0."""
    import atexit
    import threading

    for thread in threading.enumerate():
        if thread is not threading.main_thread() and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()
    failed = 0
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            failed = 120
    return failed


def import_ahead() -> None:
    """Import every command and what the commands import when they run."""
    import importlib
    import pkgutil

    import ckg
    from ckg.cli import load_commands
    from ckg.cli.app import click_command

    # numpy's OpenBLAS would start its threads at import, and a process is forked safely
    # only while it has one thread; ckg's own numerical work does not use them.
    os.environ["OPENBLAS_NUM_THREADS"] = "1"

    # The Neo4j driver, wherever it is imported (here or in a child), without the numpy,
    # pandas and pyarrow it would import for conversions ckg never asks for: 0.65 s of a
    # child's Neo4j command otherwise, where the console script's own process pays 0.3 s.
    lean_neo4j_driver()
    load_commands(None)
    names = [m.name for m in pkgutil.walk_packages(ckg.__path__, "ckg.")]
    ahead = [n for n in names if not n.startswith(_NOT_AHEAD)] + list(_AHEAD_TOO)
    # The driver itself only for a home whose commands use Neo4j (the command that started
    # this resident did): it adds 0.13 s and 34 MiB to a start every embedded user would pay.
    # Only its code is shared: each child opens its own driver and connections.
    if config.db_uri().startswith(NEO4J_SCHEMES):
        ahead.append("ckg.store.neo4j")
    for name in ahead:
        try:
            importlib.import_module(name)
        except ImportError:  # a module of an extra that is not installed
            pass
    parse_ahead(click_command(), "ckg", None)  # last, with every command registered


def parse_ahead(command, name: str, parent) -> None:
    """Parse an empty command line for ``command`` and each of its subcommands, with no
    callback run (``resilient_parsing``): the first parse of a process fills caches (Python's
    ABC subclass checks, click's parameter types) that each child would otherwise fill
    again, about half of the CPU ``ckg --version`` or ``ckg find`` takes in a child."""
    context = command.make_context(name, [], parent=parent, resilient_parsing=True)
    for subname, subcommand in getattr(command, "commands", {}).items():
        parse_ahead(subcommand, subname, context)


class Resident:
    """The serving loop: hands each command to a child forked ahead of it, relays signals to
    that child and its exit status back."""

    def __init__(self, home: Path, lock: int, code: "CodeWatch"):
        self.home = home
        self.lock = lock
        self.code = code
        self.path = home / process.RESIDENT_SOCKET
        self.path.unlink(missing_ok=True)  # a dead resident's: the lock says none serves
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(str(self.path))
        self.listener.listen(64)
        self.claim = (os.stat(home).st_ino, os.stat(self.path).st_ino)
        self.children: dict[int, tuple[int, socket.socket]] = {}  # pidfd: (pid, connection)
        self.watched: dict[int, int] = {}  # a connection's descriptor: its child's pidfd
        self.spare: Spare | None = None
        self.accepting = True
        self.wake_read, wake_write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(wake_write)
        self.told_to_stop = False
        # Only noted here: the listener is closed by the loop, between two selects.
        signal.signal(signal.SIGTERM, lambda *_: setattr(self, "told_to_stop", True))

    def serve(self) -> Request | None:
        """Serve until told to stop and every child has ended (None); in a child, return
        its request."""
        last = time.monotonic()
        idle = idle_timeout()
        request = self.fork_spare()
        if request is not None:
            return request
        while self.accepting or self.children:
            fds = [self.wake_read, *self.children, *self.watched]
            if self.accepting:
                fds.append(self.listener.fileno())
            if self.spare is not None:
                fds.append(self.spare.pidfd)
            ready, _, _ = select.select(fds, [], [], 1.0)
            for fd in ready:
                if fd == self.listener.fileno():
                    last = time.monotonic()
                    request = self.accept()
                    if request is not None:  # this is the child that runs it
                        return request
                elif fd in self.children:
                    self.reap(fd)
                elif fd in self.watched:
                    self.relay(fd)
                elif self.spare is not None and fd == self.spare.pidfd:
                    self.drop_spare()  # it died waiting: the next command forks another
                else:
                    os.read(self.wake_read, 512)
            idle_now = not self.children and time.monotonic() - last > idle
            if self.accepting and (self.told_to_stop or idle_now or not self.own()):
                self.stop_accepting()
        return None

    def accept(self) -> Request | None:
        """Take one command and hand it to the spare child: in that child, return its
        request; else None."""
        conn, _ = self.listener.accept()
        if process.peer_uid(conn) != os.getuid():
            conn.close()
            return None
        conn.settimeout(5.0)
        try:
            message, fds = receive_message(conn, 3)
        except (OSError, ValueError, EOFError):
            conn.close()
            return None
        if self.code.changed():
            send(conn, ("fallback", "ckg's files changed since the resident started"))
            conn.close()
            close_all(fds)
            self.stop_accepting()
            return None
        for _ in range(2):  # a spare that died since the last select is replaced once
            if self.spare is None and (request := self.fork_spare()) is not None:
                return request
            spare = self.spare
            try:
                send_message(spare.conn, message, [*fds, conn.fileno()])
            except OSError:
                self.drop_spare()
                continue
            self.spare = None
            spare.conn.close()
            self.children[spare.pidfd] = (spare.pid, conn)
            self.watched[conn.fileno()] = spare.pidfd
            break
        else:
            send(conn, ("fallback", "the resident could not fork a child for the command"))
            conn.close()
        close_all(fds)
        return self.fork_spare()  # ahead of the next command

    def fork_spare(self) -> Request | None:
        """Fork the child that runs the next command, so that the command does not wait for
        the fork. In that child, wait for the command and return its request (or end when
        the resident stops first); in the resident, return None."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        pid = os.fork()
        if pid == 0:
            ours.close()
            self.become_child()
            try:
                message, fds = receive_message(theirs, 4)
                fields = marshal.loads(message)
                if not isinstance(fields, dict):
                    raise ValueError("a request is a dict")
            except (OSError, ValueError, EOFError, TypeError):
                os._exit(0)  # the resident stopped before a command came
            theirs.close()
            return Request(fields, fds[:3], socket.socket(fileno=fds[3]))
        theirs.close()
        self.spare = Spare(pid, os.pidfd_open(pid), ours)
        return None

    def drop_spare(self) -> None:
        """End and reap the spare child (it holds nothing of a command's)."""
        spare, self.spare = self.spare, None
        spare.conn.close()
        try:
            signal.pidfd_send_signal(spare.pidfd, signal.SIGKILL)
        except ProcessLookupError:
            pass
        os.waitpid(spare.pid, 0)
        os.close(spare.pidfd)

    def become_child(self) -> None:
        """Drop the resident's own descriptors and handlers in a newly forked child."""
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        self.listener.close()
        close_all([self.lock, self.wake_read, *self.children])
        if self.code.fd is not None:
            os.close(self.code.fd)
        for _, conn in self.children.values():
            conn.close()

    def relay(self, fd: int) -> None:
        """Pass the signals a command forwarded to its child; kill the child if the command
        went away (as it would have died with it)."""
        pidfd = self.watched[fd]
        _, conn = self.children[pidfd]
        try:
            data = conn.recv(4096)
        except OSError:
            data = b""
        if not data:
            del self.watched[fd]
            data = struct.pack("!i", signal.SIGKILL)
        for (signum,) in struct.iter_unpack("!i", data[: len(data) // 4 * 4]):
            try:
                signal.pidfd_send_signal(pidfd, signum)
            except (ProcessLookupError, ValueError, OSError):
                pass

    def reap(self, pidfd: int) -> None:
        pid, conn = self.children.pop(pidfd)
        self.watched.pop(conn.fileno(), None)
        _, status = os.waitpid(pid, 0)
        try:
            send(conn, ("exit", os.waitstatus_to_exitcode(status)))
        except OSError:
            pass  # the command is gone
        conn.close()
        os.close(pidfd)

    def own(self) -> bool:
        """Whether the home and the socket are still the ones this resident made."""
        try:
            return (os.stat(self.home).st_ino, os.stat(self.path).st_ino) == self.claim
        except OSError:
            return False

    def stop_accepting(self) -> None:
        if not self.accepting:
            return
        self.accepting = False
        if self.own():
            self.path.unlink(missing_ok=True)
        self.listener.close()
        if self.spare is not None:
            self.drop_spare()


@dataclass
class Spare:
    """The child forked ahead of the next command, and the resident's end of the socket on
    which that command is handed to it."""

    pid: int
    pidfd: int
    conn: socket.socket


def adopt(fields: dict, fds: list[int]) -> None:
    """Make this forked child the process of the command that sent ``fields`` and ``fds``.

    Raises
    ------
    ValueError
        When the child cannot be that process (another interpreter, path, user, cgroup or
        namespace); OSError when a limit, CPU set or priority cannot be taken on.
    """
    if fields["identity"] != process.process_identity():
        raise ValueError("the command runs as another process than the resident")
    if fields["path"][1:] != sys.path:
        raise ValueError("the command has another sys.path than the resident")
    os.setsid()
    for limit, value in zip(process.RESOURCE_LIMITS, fields["limits"], strict=True):
        resource.setrlimit(getattr(resource, limit), value)
    os.sched_setaffinity(0, fields["cpus"])
    os.setpriority(os.PRIO_PROCESS, 0, fields["priority"])
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
    close_all([fd for fd in fds if fd > 2])
    process.set_environ(fields["env"])  # most of this function, when each was set anew
    os.chdir(fields["cwd"])
    os.umask(fields["umask"])
    time.tzset()
    try:
        locale.setlocale(locale.LC_CTYPE, "")  # as the interpreter does at its start
    except locale.Error:
        pass
    # The command's __main__ would be the console script, not this module: click names the
    # program after it.
    main = sys.modules["__main__"] = type(sys)("__main__")
    main.__file__ = fields["argv"][0]
    sys.argv = fields["argv"]
    sys.path[:] = fields["path"]
    streams = [text_stream(fd, *fields["stdio"][fd]) for fd in range(3)]
    sys.stdin, sys.stdout, sys.stderr = streams
    sys.__stdin__, sys.__stdout__, sys.__stderr__ = streams


def text_stream(fd: int, encoding: str, errors: str) -> io.TextIOWrapper:
    """A standard stream on ``fd`` as the interpreter makes one at its start: stderr, and
    stdout on a terminal, line-buffered; no newline translation."""
    raw = io.FileIO(fd, "r" if fd == 0 else "w", closefd=False)
    buffered = io.BufferedReader(raw) if fd == 0 else io.BufferedWriter(raw)
    return io.TextIOWrapper(
        buffered,
        encoding=encoding,
        errors=errors,
        newline="\n",
        line_buffering=fd == 2 or (fd == 1 and raw.isatty()),
    )


class CodeWatch:
    """Whether ckg's files or the folders on ``sys.path`` changed since it was made: then the
    code imported ahead may no longer be the code a new process would run.

    The kernel tells (inotify, one watch per folder of ckg and per folder on ``sys.path``: an
    install or removal changes its folder), so that asking costs a read, not a walk of ckg's
    files. Where it will not watch them all (its limit on watches reached), the newest
    modification time among them is compared instead (about 1 ms a command).
    """

    #: Written, touched, created, removed or renamed (in or out); the folder itself removed
    #: or renamed; the kernel's queue overflowed.
    _CHANGES = 0x2 | 0x4 | 0x8 | 0x40 | 0x80 | 0x100 | 0x200 | 0x400 | 0x800 | 0x4000

    def __init__(self):
        self.seen = False
        self.fd = self._watch(self._folders())
        self.stamp = code_stamp() if self.fd is None else None

    @staticmethod
    def _folders() -> list[str]:
        return ckg_folders() + [entry for entry in sys.path if os.path.isdir(entry or ".")]

    def _watch(self, folders: list[str]) -> int | None:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if fd < 0:
            return None
        for folder in folders:
            if libc.inotify_add_watch(fd, os.fsencode(folder or "."), self._CHANGES) < 0:
                os.close(fd)
                return None
        return fd

    def changed(self) -> bool:
        if self.fd is None:
            return code_stamp() != self.stamp
        while not self.seen:
            try:
                events = os.read(self.fd, 1 << 16)
            except BlockingIOError:
                break
            offset = 0
            while offset < len(events):
                _, mask, _, size = struct.unpack_from("iIII", events, offset)
                name = events[offset + 16 : offset + 16 + size].rstrip(b"\0")
                offset += 16 + size
                # Python writes a module's bytecode into __pycache__ when it first imports it.
                if mask & self._CHANGES and name != b"__pycache__":
                    self.seen = True
        return self.seen


def ckg_folders() -> list[str]:
    """ckg's package folder and those under it, ``__pycache__`` left out (Python writes there
    as it imports)."""
    import ckg

    folders = []
    for folder, dirs, _ in os.walk(ckg.__path__[0]):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        folders.append(folder)
    return folders


def code_stamp() -> tuple[int, ...]:
    """The newest modification time among ckg's files, and those of the folders on
    ``sys.path``."""
    newest = 0
    for folder in ckg_folders():
        with os.scandir(folder) as entries:
            for entry in entries:
                try:
                    if entry.is_file():
                        newest = max(newest, entry.stat().st_mtime_ns)
                except OSError:
                    pass
    folders = []
    for entry in sys.path:
        try:
            folders.append(os.stat(entry or ".").st_mtime_ns)
        except OSError:
            folders.append(0)
    return (newest, *folders)


def receive_message(conn: socket.socket, count: int) -> tuple[bytes, list[int]]:
    """One message (its length, then its body) and the ``count`` descriptors sent with it."""
    fd_size = struct.calcsize(f"{count}i")
    data, ancillary, _, _ = conn.recvmsg(1 << 16, socket.CMSG_SPACE(fd_size))
    fds = []
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds += struct.unpack(f"{len(payload) // 4}i", payload[: len(payload) // 4 * 4])
    if len(fds) != count:
        close_all(fds)
        raise ValueError(f"a request must carry {count} descriptors")
    while len(data) < 4 or len(data) < 4 + int.from_bytes(data[:4], "big"):
        more = conn.recv(1 << 16)
        if not more:
            close_all(fds)
            raise EOFError("the command went away")
        data += more
    return data[4:], fds


def send_message(conn: socket.socket, message: bytes, fds: list[int]) -> None:
    """Send ``message`` as :func:`receive_message` reads it, with ``fds``."""
    data = len(message).to_bytes(4, "big") + message
    sent = conn.sendmsg(
        [data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack(f"{len(fds)}i", *fds))]
    )
    if sent < len(data):  # an empty send would fail once the child has read it and closed
        conn.sendall(data[sent:])


def send(conn: socket.socket, message: tuple) -> None:
    payload = marshal.dumps(message)
    conn.sendall(len(payload).to_bytes(4, "big") + payload)


def close_all(fds: list[int]) -> None:
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass


def stop(home: Path, *, timeout: float = 10.0) -> int | None:
    """Stop the resident of ``home`` (it finishes its children first); return its pid, or
    None when none runs. Only a process that is this home's resident is signalled."""
    try:
        pid = int((Path(home) / PID_FILE).read_text())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return None
    if b"ckg.cli.resident" not in cmdline or os.fsencode(str(home)) not in cmdline:
        return None
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    return pid


if __name__ == "__main__":
    sys.exit(main(sys.argv))
