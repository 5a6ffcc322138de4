"""The ``ckg`` console script.

A command runs in one of two places:

- in a child of the home's resident process (:mod:`ckg.cli.resident`), which has ckg imported
  already: this process sends it the command (arguments, environment, working folder, umask,
  limits, standard streams), forwards the signals it gets and ends with the child's status.
  The command then costs this interpreter's start and its own work, not 0.1 s of imports.
  ``CKG_RESIDENT=0`` turns this off.
- here, when no resident can take it: the first command of a home (which then starts one in
  the background for the next), the commands that run long or manage ckg's own processes
  (``_HERE``), and, while this process has a terminal, the commands that may run scripts
  that ask on it (``_MAY_ASK``). Here the embedded server is started while the CLI is still
  importing: a cold ``ckg find`` must start it (about 0.25 s, mostly loading the FalkorDB
  module) and import the CLI (about 0.1 s). The thread only starts the server; the command
  itself opens the store and reports errors.
"""

import os
import sys

from ckg.core import process

_NO_STORE = {"--help", "--version", "platform", "trust", "cluster", "completion"}
#: Commands that run long, or start and stop ckg's own processes: always run here.
_HERE = {"serve", "worker", "db", "cluster"}
#: Commands that may run scripts, and a script may ask on the terminal (``input()``,
#: ``sudo``): the resident's child is outside the terminal's session and could not answer.
_MAY_ASK = {"run", "demo", "tune", "reproduce", "plan"}
#: The signals passed on to the resident's child that runs the command.
_FORWARDED = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2")
#: Descriptors 0, 1 and 2 as SCM_RIGHTS carries them (three C ints).
_STDIO_FDS = b"".join(fd.to_bytes(4, sys.byteorder) for fd in (0, 1, 2))


def main() -> None:
    if _resident_may_run(sys.argv[1:]):
        code = _run_in_resident()
        if code is not None:
            _end_with(code)
    if _uses_embedded_store(sys.argv[1:]):
        # Imported here, in this thread: two threads importing at once can deadlock or
        # see half-initialised modules.
        import threading

        from ckg.core import config
        from ckg.core.errors import CkgError
        from ckg.store.server import ensure_server

        def start_server() -> None:
            try:
                ensure_server(config.home())
            except CkgError:
                pass  # the command opens the store itself and reports the error

        # Not a daemon: the interpreter's exit waits for it, where it would cut a start short
        # between the server and its watchdog when the command ends first (``ckg versoin``),
        # leaving a server nothing ever stops.
        threading.Thread(target=start_server).start()
    else:
        from ckg.store import lean_neo4j_driver

        lean_neo4j_driver()
    from ckg.cli import main as cli_main

    cli_main()


def _uses_embedded_store(args: list[str]) -> bool:
    if not args or _NO_STORE.intersection(args) or "--db" in args:
        return False
    if args[-2:] == ["db", "stop"]:  # stops the server, if one runs: never starts one
        return False
    return (os.environ.get("CKG_DB") or os.environ.get("NEO4J_URI") or "embedded") == "embedded"


def _resident_may_run(args: list[str]) -> bool:
    wanted = os.environ.get("CKG_RESIDENT", "1")
    if wanted not in ("0", "1"):
        print(f"ckg: error: CKG_RESIDENT={wanted!r} is not 0 (off) or 1 (on)", file=sys.stderr)
        sys.exit(2)
    command = process.command_name(args)
    if wanted == "0" or command in _HERE:
        return False
    return command not in _MAY_ASK or not _has_terminal()


def _has_terminal() -> bool:
    try:
        os.close(os.open("/dev/tty", os.O_RDONLY | os.O_NOCTTY))
    except OSError:
        return False
    return True


def _run_in_resident() -> int | None:
    """Run the command in a child of the home's resident and return its exit status (minus
    the signal's number if a signal ended it), or None if no resident took it."""
    # The socket and signal modules' enums, and struct, cost a few milliseconds of the ~35
    # this path takes; the C modules under them have all it uses.
    import _socket as socket
    import marshal
    import stat

    home = process.home_folder()
    path = os.path.join(home, process.RESIDENT_SOCKET)
    try:
        info = os.lstat(home)
        cwd = os.getcwd()
    except OSError:
        return None
    private = stat.S_ISDIR(info.st_mode) and not info.st_mode & 0o077
    if not private or info.st_uid != os.getuid() or len(os.fsencode(path)) > 100:
        return None
    streams = (sys.stdin, sys.stdout, sys.stderr)
    if None in streams:
        return None
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(path)
    except OSError:
        conn.close()
        if "--debug" in sys.argv:
            print(
                f"ckg: debug: runs here: no resident serves {home}; one is started for the "
                "commands that follow",
                file=sys.stderr,
            )
        _start_resident(home)
        return None
    if process.peer_uid(conn) != os.getuid():
        return None
    import _signal as signal
    import resource

    umask = os.umask(0)
    os.umask(umask)
    fields = {
        "argv": sys.argv, "path": sys.path, "env": dict(os.environ), "cwd": cwd, "umask": umask,
        "stdio": [(s.encoding, s.errors) for s in streams],
        "identity": process.process_identity(),
        "limits": [resource.getrlimit(getattr(resource, n)) for n in process.RESOURCE_LIMITS],
        "cpus": os.sched_getaffinity(0), "priority": os.getpriority(os.PRIO_PROCESS, 0),
    }  # fmt: skip
    payload = marshal.dumps(fields)
    message = len(payload).to_bytes(4, "big") + payload

    def forward(signum, _frame):
        try:
            conn.sendall(signum.to_bytes(4, "big", signed=True))
        except OSError:
            pass

    # Set before the request goes: a signal that comes while the child is forked waits in
    # the connection and reaches it.
    for name in _FORWARDED:
        signal.signal(getattr(signal, name), forward)
    try:
        sent = conn.sendmsg([message], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, _STDIO_FDS)])
        if sent < len(message):
            conn.sendall(message[sent:])
    except OSError:  # the request did not go whole: no child can run it
        _restore_signals(signal)
        return None
    # A child that takes the command says so ("ok") before it runs it, and holds the
    # connection open until then: a connection that ends with no reply was never taken.
    reply = _receive(conn, marshal)
    if reply is None or reply[0] != "ok":
        if reply and "--debug" in sys.argv:
            print(f"ckg: debug: runs here, not in the resident: {reply[1]}", file=sys.stderr)
        _restore_signals(signal)
        return None
    # From here the command is the child's, and it never runs here too: a fast one may have
    # ended, and the resident closed the connection, before this process reads on.
    while True:
        reply = _receive(conn, marshal)
        if reply is None:
            print(
                "ckg: error: the resident process ended while it ran this command",
                file=sys.stderr,
            )
            return 1
        if reply[0] == "exit":
            return reply[1]


def _restore_signals(signal) -> None:
    for name in _FORWARDED:
        signal.signal(getattr(signal, name), signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)


def _receive(conn, marshal):
    """One message from the resident, or None when the connection ended before it."""
    head = _read(conn, 4)
    if len(head) < 4:
        return None
    size = int.from_bytes(head, "big")
    body = _read(conn, size)
    return marshal.loads(body) if len(body) == size else None


def _read(conn, size: int) -> bytes:
    data = b""
    while len(data) < size:
        try:
            more = conn.recv(size - len(data))
        except OSError:  # reset: what was sent before it has been read
            break
        if not more:
            break
        data += more
    return data


def _start_resident(home: str) -> None:
    """Start the home's resident in the background for the commands that follow; its output
    goes to ``resident.log`` in the home."""
    import subprocess

    log = os.open(os.path.join(home, "resident.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        subprocess.Popen(
            [sys.executable, "-P", "-m", "ckg.cli.resident", home],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
    except OSError:
        pass  # the next command tries again
    finally:
        os.close(log)


def _end_with(code: int) -> None:
    """End this process as the child ended: with its status, or killed by its signal. The
    interpreter's teardown is skipped (about 4 ms): this process holds nothing but its
    streams, flushed first."""
    if code < 0:
        import _signal as signal

        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
        code = 128 - code
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)
