"""The executor with real subprocesses: exit codes, logs, CPU time, memory, timeouts."""

import os
import signal
import subprocess
import sys

import psutil
import pytest

from ckg.core.errors import RunFailed
from ckg.run import execute as execute_module
from ckg.run.execute import execute


def _run(tmp_path, command, **kw):
    env = dict(os.environ)
    return execute(command, cwd=tmp_path / "w", env=env, log_path=tmp_path / "log", **kw)


def test_execute_ok_records_log_and_exit_code(tmp_path):
    out = _run(tmp_path, "echo out; echo err >&2")
    assert out.status == "ok" and out.exit_code == 0
    assert out.log_tail == "out\nerr\n"
    assert (tmp_path / "w").is_dir()


def test_execute_nonzero_exit_is_failed(tmp_path):
    out = _run(tmp_path, "exit 3")
    assert (out.status, out.exit_code) == ("failed", 3)


def test_execute_log_tail_is_only_this_execution(tmp_path):
    _run(tmp_path, "echo first")
    out = _run(tmp_path, "echo second")
    assert out.log_tail == "second\n"
    assert (tmp_path / "log").read_text() == "first\nsecond\n"


def test_execute_measures_cpu_time_of_a_busy_child(tmp_path):
    out = _run(tmp_path, [sys.executable, "-c", "sum(i * i for i in range(3_000_000))"])
    assert out.user_s > 0.05
    assert out.wall_s >= out.user_s * 0.5


def test_execute_peak_rss_sees_a_large_allocation(tmp_path):
    code = "b = bytearray(200 * 2**20); import time; time.sleep(0.3)"
    out = _run(tmp_path, [sys.executable, "-c", code])
    assert out.peak_rss_bytes > 200 * 2**20


def test_execute_peak_rss_adds_up_the_process_tree(tmp_path):
    child = "b = bytearray(120 * 2**20); import time; time.sleep(0.6)"
    script = f'{sys.executable} -c "{child}" & {sys.executable} -c "{child}" & wait'
    out = _run(tmp_path, script)
    # Each process alone peaks near 130 MiB: only the sum of the tree exceeds 200 MiB.
    assert out.peak_rss_bytes > 200 * 2**20


def test_without_tree_memory_nothing_is_sampled_and_a_timeout_still_ends_it(tmp_path, monkeypatch):
    """A script worker's native scripts: the worker's caller samples the whole tree, so the
    worker samples none of it (ru_maxrss gives the largest process); its timeout holds."""
    sampled = []
    monkeypatch.setattr(execute_module, "_tree_rss", lambda pid: sampled.append(pid) or 0)
    code = "b = bytearray(60 * 2**20); import time; time.sleep(0.3)"
    out = _run(tmp_path, [sys.executable, "-c", code], tree_memory=False)
    assert out.status == "ok" and out.peak_rss_bytes > 60 * 2**20 and sampled == []
    out = _run(tmp_path, "sleep 30", timeout_s=0.3, tree_memory=False)
    assert out.status == "timeout" and sampled == []


def test_measuring_a_process_tree_imports_no_psutil(tmp_path):
    """psutil takes 10-25 ms to import, in ckg and again in each script worker."""
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from ckg.run.execute import execute\n"
        f"d = Path({str(tmp_path)!r})\n"
        "out = execute('sleep 0.2 & sleep 0.2; wait', cwd=d, env={}, log_path=d / 'log')\n"
        "print(out.peak_rss_bytes > 0, 'psutil' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout == "True False\n"


def test_timeout_kills_the_whole_process_group(tmp_path):
    pids, late = tmp_path / "pids", tmp_path / "late"
    child = f"(sleep 60; echo late >> {late}) & echo $! >> {pids}"
    script = f"{child}; {child}; echo $$ >> {pids}; wait; echo late >> {late}"
    out = _run(tmp_path, script, timeout_s=0.5)
    # Ended by the timeout's SIGTERM, not by itself, and nothing in it lived to finish.
    assert (out.status, out.exit_code) == ("timeout", -signal.SIGTERM)
    assert not late.exists()
    recorded = [int(p) for p in pids.read_text().split()]
    assert len(recorded) == 3
    for pid in recorded:
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    survivors = [
        p
        for p in psutil.process_iter(["pid", "status"])
        if _pgid(p.pid) == out.pid and p.info["status"] != psutil.STATUS_ZOMBIE
    ]
    assert survivors == []


def test_timeout_kills_a_child_that_ignores_sigterm(tmp_path):
    pidfile = tmp_path / "pid"
    code = (
        "import os, signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        f"open({str(pidfile)!r}, 'w').write(str(os.getpid())); time.sleep(60)"
    )
    out = _run(tmp_path, [sys.executable, "-c", code], timeout_s=0.5)
    assert out.status == "timeout" and out.exit_code < 0
    assert not psutil.pid_exists(int(pidfile.read_text()))


def test_missing_program_raises_run_failed(tmp_path):
    with pytest.raises(RunFailed, match="cannot start '/nonexistent/prog'"):
        _run(tmp_path, ["/nonexistent/prog"])


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None


def test_a_thread_python_does_not_list_keeps_callables_out_of_a_fork():
    # As OpenBLAS's, started by numpy: a thread of the process the threading module never saw.
    # In a new interpreter: this pytest worker may hold such threads already (xdist's).
    script = (
        "import _thread, threading\n"
        "from ckg.run.execute import can_fork\n"
        "alone = can_fork()\n"
        "release = _thread.allocate_lock()\n"
        "release.acquire()\n"
        "_thread.start_new_thread(release.acquire, ())\n"
        "print(alone, threading.active_count(), can_fork())\n"
        "release.release()\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    # Unseen by threading (one thread), seen by the system: no fork.
    assert done.stdout.split() == ["True", "1", "False"]


def test_a_callable_runs_in_a_fork_as_a_command_would_and_never_returns_here(tmp_path):
    """Its own session, exactly ``env``, ``cwd``, /dev/null for stdin, its output in the log,
    its return value or what it raised as the exit code; and whatever it raises ends the
    fork there: the caller's ``finally`` runs in the caller alone."""
    seen = tmp_path / "seen.txt"
    finally_ran = tmp_path / "finally.txt"

    def call(fail: bool):
        seen.write_text(
            repr(
                [
                    os.getsid(0) == os.getpid(),
                    os.environ.get("ONLY"),
                    "HOME" in os.environ,
                    os.getcwd(),
                    os.path.samestat(os.fstat(0), os.stat(os.devnull)),
                ]
            )
        )
        print("from the fork")
        if fail:
            raise ValueError("boom")
        return 3

    for fail in (False, True):
        try:
            out = execute(
                lambda fail=fail: call(fail),
                cwd=tmp_path / "w",
                env={"ONLY": "1"},
                log_path=tmp_path / "log",
            )
        finally:
            with open(finally_ran, "a") as marks:
                marks.write(f"{os.getpid()}\n")
        assert out.pid != os.getpid()
        assert eval(seen.read_text()) == [True, "1", False, str(tmp_path / "w"), True]
        assert "from the fork" in out.log_tail
        if fail:
            assert (out.status, out.exit_code) == ("failed", 1)
            assert "ValueError: boom" in out.log_tail
        else:
            assert (out.status, out.exit_code) == ("failed", 3)
    assert finally_ran.read_text().split() == [str(os.getpid())] * 2


def test_a_callable_that_outlives_its_timeout_is_ended_with_its_group(tmp_path):
    out = _run(tmp_path, lambda: subprocess.run(["sleep", "30"]).returncode, timeout_s=0.5)
    assert out.status == "timeout" and out.wall_s < 10
    assert _group_members(out.pid) == []


def _group_members(pgid: int) -> list[int]:
    """The live processes of process group ``pgid``."""
    members = []
    for process in psutil.process_iter():
        try:
            if os.getpgid(process.pid) == pgid and process.status() != psutil.STATUS_ZOMBIE:
                members.append(process.pid)
        except (OSError, psutil.Error):
            continue
    return members


def test_what_the_caller_holds_open_reaches_no_program_a_callable_runs(tmp_path):
    """A descriptor this process holds open and inheritable (a pipe a caller reads to its
    end) is not passed on to what the fork runs, as Popen's close_fds keeps it from a new
    interpreter: a program left running would hold the caller's pipe open."""
    read_end, write_end = os.pipe()
    os.set_inheritable(write_end, True)
    try:
        out = _run(tmp_path, lambda: os.system(f"test -e /dev/fd/{write_end}") >> 8)
    finally:
        os.close(read_end)
        os.close(write_end)
    assert out.exit_code == 1, f"descriptor {write_end} reached the program"
