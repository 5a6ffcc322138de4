"""Run one command as a subprocess in its own process group, and measure it.

The child starts a new session, so it leads a process group that holds everything it
spawns; a timeout signals that whole group (SIGTERM, then SIGKILL after a grace period),
so no grandchild outlives a timed-out step. The parent blocks in ``os.wait4``, which hands
back the child's CPU times and peak RSS without polling; a sampler thread adds up the RSS of
the whole tree meanwhile, since ``ru_maxrss`` alone only sees the largest single process.
"""

import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from ckg.core import config, process
from ckg.core.errors import RunFailed
from ckg.core.redact import mask_file

#: Seconds between SIGTERM and SIGKILL when a step times out.
KILL_GRACE_S = 1.0
#: Bytes of the log kept on the Run node.
LOG_TAIL_BYTES = 4000


@dataclass(slots=True)
class Outcome:
    """What one execution did: status, exit code, times, memory and the log's tail.

    ``status`` is ``ok`` (exit 0), ``failed`` (non-zero exit or killed by a signal),
    ``timeout``, or ``interrupted`` (Ctrl-C while it ran: passed on to it, see
    :func:`execute`). ``exit_code`` is negative when a signal ended the process.
    """

    status: str
    exit_code: int
    wall_s: float
    user_s: float
    system_s: float
    peak_rss_bytes: int
    log_tail: str
    pid: int


def execute(
    command: str | list[str],
    *,
    cwd: Path,
    env: dict[str, str],
    log_path: Path,
    timeout_s: float | None = None,
    secrets: tuple[str, ...] = (),
    stdin: int | None = None,
    tree_memory: bool = True,
) -> Outcome:
    """Run ``command`` (a shell line, or an argument list) and measure it.

    Parameters
    ----------
    command : str, list of str or callable
        A string runs through ``/bin/sh -c``; a list is executed directly; a callable runs
        in a fork of this process (:func:`_fork`) and its return value is the exit code.
    cwd : Path
        The working folder; created if missing.
    env : dict
        The complete environment of the child (nothing is inherited beyond it).
    log_path : Path
        stdout and stderr both go here, appended.
    timeout_s : float, optional
        Wall-clock limit; on expiry the whole process group is killed.
    secrets : tuple of str
        Values masked, with URL passwords, in what the command wrote to the log once it
        ends (:func:`ckg.core.redact.mask_file`); the command itself gets them from ``env``.
    stdin : int, optional
        A descriptor the command reads (a terminal or pipe that answers its questions);
        ``/dev/null`` when None.
    tree_memory : bool
        Sample the resident memory of the command's whole process tree while it runs;
        False where a caller of this process measures its tree already (a script worker's
        native scripts): ``peak_rss_bytes`` is then the largest single process's.

    Returns
    -------
    Outcome
        With status ``interrupted`` when Ctrl-C (KeyboardInterrupt) came while the command
        ran: it is passed on to the command, which is ended, and not raised, so that the
        caller records the run as interrupted and then stops.

    Raises
    ------
    RunFailed
        When the command cannot be started at all (missing program, bad folder).

    Examples
    --------
    >>> import os, tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> out = execute("echo hi", cwd=d, env=dict(os.environ), log_path=d / "log")
    >>> out.status, out.log_tail
    ('ok', 'hi\\n')
    """
    cwd.mkdir(parents=True, exist_ok=True)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        offset = log.tell()
        start = time.perf_counter()
        if callable(command):
            proc = None
            pid = _fork(command, cwd=cwd, env=env, log=log, stdin=stdin)
        else:
            argv = ["/bin/sh", "-c", command] if isinstance(command, str) else list(command)
            try:
                proc = subprocess.Popen(
                    argv,
                    cwd=cwd,
                    env=env,
                    stdin=subprocess.DEVNULL if stdin is None else stdin,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    umask=config.user_umask(),  # the user's: ckg's private one is for its files
                )
            except OSError as exc:
                raise RunFailed(f"cannot start {argv[0]!r} in {cwd}: {exc.strerror}") from None
            pid = proc.pid
        watch = _Watch(pid, timeout_s, tree_memory)
        watch.start()
        interrupted = False
        try:
            try:
                _, status, usage = os.wait4(pid, 0)
            except KeyboardInterrupt:
                interrupted = True
                status, usage = _interrupt(pid)
        finally:
            wall = time.perf_counter() - start
            watch.finish()
        exit_code = os.waitstatus_to_exitcode(status)
        if proc is not None:
            proc.returncode = exit_code  # the Popen object must not try to reap the pid again
    if watch.timed_out or interrupted:
        # Members that trapped SIGTERM or SIGINT, or were still starting, go now.
        _signal_group(pid, signal.SIGKILL)
        _await_group_end(pid)
    mask_file(log_path, secrets, start=offset)
    if interrupted:
        state = "interrupted"
    elif watch.timed_out:
        state = "timeout"
    else:
        state = "ok" if exit_code == 0 else "failed"
    return Outcome(
        status=state,
        exit_code=exit_code,
        wall_s=wall,
        user_s=usage.ru_utime,
        system_s=usage.ru_stime,
        # Linux reports ru_maxrss in KiB.
        peak_rss_bytes=max(watch.peak_rss, usage.ru_maxrss * 1024),
        log_tail=read_tail(log_path, start=offset),
        pid=pid,
    )


def can_fork() -> bool:
    """Whether :func:`execute` may run a callable in a fork of this process: on a POSIX host,
    from a process with no other thread, which a fork would leave holding whatever locks it
    held (a progress bar's refresh, a cluster worker's tasks: those spawn instead). Threads
    Python does not know of count too (OpenBLAS starts one when numpy is imported), where the
    system lists them (``/proc/self/task``)."""
    if not hasattr(os, "fork") or threading.active_count() != 1:
        return False
    try:
        return len(os.listdir("/proc/self/task")) == 1
    except OSError:
        return True


#: What a fork resets to as a new interpreter has it: a host process (a resident ``ckg``,
#: a server) may have set its own handlers for these.
_DEFAULT_SIGNALS = ("SIGTERM", "SIGHUP", "SIGQUIT", "SIGCHLD", "SIGUSR1", "SIGUSR2", "SIGALRM")


def _fork(call, *, cwd: Path, env: dict[str, str], log, stdin: int | None) -> int:
    """Fork a child that runs ``call()`` as :func:`execute` runs a command (its own session,
    the user's umask, ``cwd``, exactly ``env``, stdout and stderr to ``log``, ``stdin`` or
    /dev/null) and exits with its return value; its pid.

    The child has this process's modules already imported, which is what it saves over a new
    interpreter (about 0.1 s of start and imports for a script worker). It never returns
    into this process's code: whatever ``call`` raises is printed to the log and ends it
    (KeyboardInterrupt as an interpreter ends on it, by SIGINT), and it leaves by
    ``os._exit``, so that no context manager, finalizer or ``atexit`` hook of this process
    (an open store's connection, a temporary folder) runs in it.
    """
    import faulthandler
    import io
    import sys

    for stream in (sys.stdout, sys.stderr):  # else what they hold is written twice
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    null = os.open(os.devnull, os.O_RDONLY) if stdin is None else None
    try:
        pid = os.fork()
    except OSError as exc:
        if null is not None:
            os.close(null)
        raise RunFailed(f"cannot start a process in {cwd}: {exc.strerror}") from None
    if pid:
        if null is not None:
            os.close(null)
        return pid
    code = 1
    try:
        os.setsid()
        os.umask(config.user_umask())
        signal.set_wakeup_fd(-1)
        for name in _DEFAULT_SIGNALS:
            signal.signal(getattr(signal, name), signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        os.dup2(null if stdin is None else stdin, 0)
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        # As Popen's close_fds does for a new interpreter: what this process holds open (a
        # store's connection, a resident's sockets, a caller's pipe) reaches no program the
        # child runs, which could keep it open past the command.
        for fd in _open_descriptors():
            if fd > 2:
                try:
                    os.set_inheritable(fd, False)
                except OSError:
                    pass  # the listing's own, closed since
        sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False), encoding="utf-8")
        # Unbuffered, as PYTHONUNBUFFERED=1 leaves a worker's: the log shows what ran last.
        sys.stdout, sys.stderr = (
            io.TextIOWrapper(
                io.FileIO(fd, "w", closefd=False),
                encoding="utf-8",
                errors=errors,
                write_through=True,
            )
            for fd, errors in ((1, "strict"), (2, "backslashreplace"))
        )
        # A crash is reported as a new interpreter would: only with PYTHONFAULTHANDLER, and
        # into the log (pytest's handler would write to the parent's stderr).
        faulthandler.disable()
        if env.get("PYTHONFAULTHANDLER"):
            faulthandler.enable()
        os.chdir(cwd)
        process.set_environ(env)
        code = call()
    except SystemExit as exc:
        code = exc.code
        if code is not None and not isinstance(code, int):
            print(code, file=sys.stderr)  # as sys.exit("message") ends an interpreter
            code = 1
    except KeyboardInterrupt:
        _print_exception()
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
    except BaseException:
        _print_exception()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(code or 0)


def _open_descriptors() -> list[int]:
    """The file descriptors open in this process (Linux lists them in /proc, others in
    /dev/fd)."""
    folder = "/proc/self/fd" if os.path.isdir("/proc/self/fd") else "/dev/fd"
    return [int(name) for name in os.listdir(folder) if name.isdigit()]


def _print_exception() -> None:
    import traceback

    try:
        traceback.print_exc()
    except BaseException:  # noqa: BLE001  -- the child ends with its code all the same
        pass


def _interrupt(pid: int):
    """Pass a Ctrl-C on to the command's group and reap it: the command leads a session of
    its own, which the terminal's SIGINT does not reach. What does not end within
    :data:`KILL_GRACE_S` is killed. Returns ``os.wait4``'s status and resource usage."""
    _signal_group(pid, signal.SIGINT)
    deadline = time.monotonic() + KILL_GRACE_S
    while True:
        done, status, usage = os.wait4(pid, os.WNOHANG)
        if done:
            return status, usage
        if time.monotonic() >= deadline:
            _signal_group(pid, signal.SIGKILL)
            return os.wait4(pid, 0)[1:]
        time.sleep(0.02)


def read_tail(path: Path, size: int = LOG_TAIL_BYTES, *, start: int = 0) -> str:
    """The last ``size`` bytes of ``path`` after offset ``start``, as text ('' if missing)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(start, handle.tell() - size))
            return handle.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _await_group_end(pgid: int, limit_s: float = 2.0) -> None:
    """Return once no live process is left in group ``pgid`` (a killed process on a busy
    host takes a moment to die), or after ``limit_s``."""
    import psutil

    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        alive = False
        for proc in psutil.process_iter():
            try:
                if os.getpgid(proc.pid) == pgid and proc.status() != psutil.STATUS_ZOMBIE:
                    alive = True
                    break
            except (OSError, psutil.Error):
                continue
        if not alive:
            return
        _signal_group(pgid, signal.SIGKILL)
        time.sleep(0.02)


class _Watch(threading.Thread):
    """Samples the tree's RSS (``memory``) and enforces the timeout while the parent waits;
    with neither to do, no thread runs."""

    def __init__(self, pid: int, timeout_s: float | None, memory: bool = True):
        super().__init__(daemon=True)
        self.pid = pid
        self.deadline = None if timeout_s is None else time.monotonic() + timeout_s
        self.memory = memory
        self.done = threading.Event()
        self.timed_out = False
        self.peak_rss = 0

    def start(self) -> None:
        if self.memory or self.deadline is not None:
            super().start()

    def run(self) -> None:
        # Short intervals first so that brief steps get a sample, then back off.
        interval = 0.01
        killed_at = None
        while not self.done.wait(interval):
            if self.memory:
                self.peak_rss = max(self.peak_rss, _tree_rss(self.pid))
            now = time.monotonic()
            if self.deadline is not None and now >= self.deadline:
                if killed_at is None:
                    self.timed_out = True
                    killed_at = now
                    _signal_group(self.pid, signal.SIGTERM)
                elif now - killed_at >= KILL_GRACE_S:
                    _signal_group(self.pid, signal.SIGKILL)
            interval = min(interval * 2, 0.2)
            if self.deadline is not None and killed_at is None:
                interval = max(0.001, min(interval, self.deadline - now))

    def finish(self) -> None:
        self.done.set()
        if self.ident is not None:
            self.join()


def _tree_rss(pid: int) -> int:
    """The resident memory (bytes) of process ``pid`` and all its descendants.

    Read from ``/proc`` where the kernel lists each thread's children: a few small files,
    where psutil takes 10-25 ms to import (in the ``ckg`` process and again in a script
    worker) and reads every process on the host to find the tree. psutil elsewhere.
    """
    if not _PROC_CHILDREN:
        return _tree_rss_psutil(pid)
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        try:
            with open(f"/proc/{current}/statm", "rb") as statm:
                total += int(statm.read().split()[1]) * _PAGE  # psutil's rss, the same way
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children", "rb") as children:
                    todo += map(int, children.read().split())
        except (OSError, ValueError, IndexError):
            continue  # ended meanwhile
    return total


#: Whether this kernel lists a thread's children in ``/proc`` (``CONFIG_PROC_CHILDREN``).
_PROC_CHILDREN = os.path.exists(f"/proc/{os.getpid()}/task/{os.getpid()}/children")
_PAGE = os.sysconf("SC_PAGE_SIZE") if _PROC_CHILDREN else 0


def _tree_rss_psutil(pid: int) -> int:
    import psutil

    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0
    total = 0
    for proc in procs:
        try:
            total += proc.memory_info().rss
        except psutil.Error:
            continue
    return total
