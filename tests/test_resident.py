"""The resident process (ckg.cli.resident): commands run in its children as they would in
their own process, in real processes.

Each test starts ``ckg`` in a session of its own (no controlling terminal, so ``ckg run``
goes through the resident too) with ``CKG_RESIDENT=1``. What tells where a command ran: a
workflow step writes its parent's pid and that process's parent (``/proc``): the ckg process
that ran the step, and whether it is a child of the resident or the console script itself.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from ckg.cli import resident
from tests.fixtures_store import wait_gone
from tests.serving import CKG

STEP = (
    "import json, os, pathlib, resource, sys, time\n"
    "ancestors, pid = [], os.getppid()\n"
    "while pid > 1:\n"
    "    ancestors.append(pid)\n"
    "    stat = pathlib.Path(f'/proc/{pid}/stat').read_text()\n"
    "    pid = int(stat.rsplit(')', 1)[1].split()[1])\n"
    "mask = os.umask(0)\n"
    "os.umask(mask)\n"
    "pathlib.Path(sys.argv[1]).write_text(json.dumps({'ancestors': ancestors, 'pid': os.getpid(),\n"
    "    'value': os.environ.get('CKG_TEST_VALUE'), 'umask': mask,\n"
    "    'absent': os.environ.get('CKG_TEST_ABSENT'),\n"
    "    'files': resource.getrlimit(resource.RLIMIT_NOFILE)[0]}))\n"
    "time.sleep(float(sys.argv[2]))\n"
)
WORKFLOW = (
    "alias: where\nuid: resident-where\nkind: workflow\nparams: {wait: 0}\n"
    'run: "{python} {artifact_dir}/where.py {artifact_dir}/out.json {wait}"\n'
)


@pytest.fixture
def workflow(tmp_path):
    """A workflow in ``tmp_path/where`` whose step says where it ran (``out.json``), then
    waits ``wait`` seconds."""
    folder = tmp_path / "where"
    folder.mkdir()
    (folder / "ckg.yaml").write_text(WORKFLOW)
    (folder / "where.py").write_text(STEP)
    return folder


def start(*args, env=None, **kwargs) -> subprocess.Popen:
    """``ckg ARGS`` in a session of its own, through the resident when one runs."""
    return subprocess.Popen([str(CKG), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True,
                            env={**os.environ, "CKG_RESIDENT": "1", **(env or {})},
                            **kwargs)  # fmt: skip


def ckg(*args, env=None, **kwargs) -> subprocess.CompletedProcess:
    proc = start(*args, env=env, **kwargs)
    out, err = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def resident_of(home: Path, env: dict | None = None) -> int:
    """Start the home's resident (the first command starts it) and return its pid once it
    serves."""
    os.chmod(home, 0o700)  # as ckg makes it: a resident serves a private home only
    ckg("--version", env=env)
    deadline = time.monotonic() + 120  # not a timing: how long an import may take at worst
    while not (home / "resident.sock").exists():
        assert time.monotonic() < deadline, (home / "resident.log").read_text()
        time.sleep(0.05)
    return int((home / "resident.pid").read_text())


def _limited():
    import resource

    os.umask(0o027)
    resource.setrlimit(resource.RLIMIT_NOFILE, (200, 200))


def test_a_command_runs_in_a_child_of_the_resident_as_it_would_run_itself(
    ckg_home, workflow, tmp_path
):
    # Started with a variable the commands have not, which they must not see.
    theirs = {"CKG_TEST_ABSENT": "the resident's"}
    pid = resident_of(ckg_home, theirs)
    assert "ckg.cli.resident" in Path(f"/proc/{pid}/cmdline").read_text()
    assert "CKG_TEST_ABSENT=" in Path(f"/proc/{pid}/environ").read_text()
    ingested = ckg("ingest", "./where", cwd=tmp_path)  # a path from the caller's folder
    assert ingested.returncode == 0, ingested.stderr
    seen = {}
    for where in ("0", "1"):
        pid = resident_of(ckg_home, theirs)  # the same, unless ckg's files changed meanwhile
        proc = start(
            "--debug",
            "run",
            "where",
            cwd=tmp_path,
            preexec_fn=_limited,
            env={"CKG_TEST_VALUE": "from the caller", "CKG_RESIDENT": where},
        )
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        seen[where] = json.loads((workflow / "out.json").read_text())
        seen[where]["said"] = [line for line in err.splitlines() if "debug" in line]
        ancestors = seen[where].pop("ancestors")
        seen[where].pop("pid")
        seen[where]["by"] = ("console script" if proc.pid in ancestors else
                             "resident" if pid in ancestors else ancestors)  # fmt: skip
    assert seen["0"].pop("by") == "console script"
    assert seen["1"].pop("by") == "resident", seen
    assert seen["0"] == seen["1"]  # the same environment, umask and limits: the caller's
    assert seen["1"]["value"] == "from the caller" and seen["1"]["files"] == 200
    assert seen["1"]["absent"] is None
    runs = json.loads(ckg("runs", "--json").stdout)
    assert [r["status"] for r in runs] == ["ok", "ok"]


def test_with_it_off_or_unknown_no_resident_is_started(ckg_home):
    assert ckg("--version", env={"CKG_RESIDENT": "0"}).returncode == 0
    assert not (ckg_home / "resident.pid").exists()
    wrong = ckg("--version", env={"CKG_RESIDENT": "yes"})
    assert (wrong.returncode, wrong.stderr) == (
        2,
        "ckg: error: CKG_RESIDENT='yes' is not 0 (off) or 1 (on)\n",
    )


def test_output_and_exit_status_are_the_commands_own(ckg_home):
    resident_of(ckg_home)
    unknown = ckg("nosuch")
    assert unknown.returncode == 2
    assert unknown.stderr.startswith("Usage: ckg [OPTIONS] COMMAND [ARGS]...")
    assert "No such command 'nosuch'" in unknown.stderr
    missing = ckg("show", "no-such-artifact")
    here = ckg("show", "no-such-artifact", env={"CKG_RESIDENT": "0"})
    assert (missing.returncode, missing.stdout, missing.stderr) == (
        here.returncode,
        here.stdout,
        here.stderr,
    )
    assert missing.returncode != 0 and missing.stderr.startswith("ckg: error: ")


def test_ctrl_c_reaches_the_command_and_its_status_comes_back(ckg_home, workflow):
    resident_of(ckg_home)
    proc, _ = waiting_run(workflow)
    os.kill(proc.pid, signal.SIGINT)  # to the console script alone: it passes it on
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "interrupted" in err
    runs = json.loads(ckg("runs", "--json").stdout)
    assert [r["status"] for r in runs] == ["interrupted"]


def waiting_run(workflow: Path, ingest: bool = True) -> tuple[subprocess.Popen, dict]:
    """``ckg run`` of ``workflow`` (ingested first unless ``ingest`` is false) with a step
    that waits, once the step has said where it runs (what it said)."""
    if ingest:
        assert ckg("ingest", str(workflow)).returncode == 0
    proc = start("run", "where", "--grid", "wait=600")
    out = workflow / "out.json"
    deadline = time.monotonic() + 120
    while not out.exists() or not out.read_text():
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    return proc, json.loads(out.read_text())


def test_a_killed_console_script_takes_its_command_with_it(ckg_home, workflow):
    pid = resident_of(ckg_home)
    proc, seen = waiting_run(workflow)
    command = seen["ancestors"]
    assert proc.pid not in command and pid in command
    command = command[command.index(pid) - 1]  # the resident's child: the command
    proc.kill()
    proc.communicate()
    try:
        assert wait_gone(command, 60), "the command outlived its console script"
    finally:  # its step, as a step of a command killed outright in its own process, runs on
        os.kill(seen["pid"], signal.SIGKILL)
    assert not wait_gone(pid, 0)  # the resident itself serves on
    assert ckg("--version").returncode == 0


def test_a_change_to_the_code_is_never_served_by_the_old_resident(ckg_home, tmp_path):
    extra = tmp_path / "on-path"
    extra.mkdir()
    env = {"PYTHONPATH": str(extra)}
    old = resident_of(ckg_home, env)
    (extra / "new_module.py").write_text("")  # an install changes its folder
    done = ckg("--version", env=env)
    assert done.returncode == 0 and done.stdout.startswith("ckg ")
    assert wait_gone(old, 60), "the outdated resident went on serving"


def children_of(pid: int) -> set[int]:
    return {int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}


def test_a_command_goes_to_a_child_forked_ahead_and_a_dead_one_is_replaced(ckg_home, workflow):
    pid = resident_of(ckg_home)
    (spare,) = children_of(pid)  # forked ahead of the next command
    os.kill(spare, signal.SIGKILL)
    assert wait_gone(spare, 60)
    proc, seen = waiting_run(workflow)  # the resident forks another for it
    assert pid in seen["ancestors"] and proc.pid not in seen["ancestors"]
    command = seen["ancestors"][seen["ancestors"].index(pid) - 1]
    assert command != spare
    (next_spare,) = children_of(pid) - {command}  # and one ahead of the next command
    os.kill(proc.pid, signal.SIGINT)
    proc.communicate(timeout=120)
    assert wait_gone(command, 60)
    assert children_of(pid) == {next_spare}
    (workflow / "out.json").unlink()
    proc, seen = waiting_run(workflow, ingest=False)
    assert seen["ancestors"][seen["ancestors"].index(pid) - 1] == next_spare, (
        "the command did not go to the child that waited for it"
    )
    (next_spare,) = children_of(pid) - {next_spare}
    os.kill(proc.pid, signal.SIGINT)
    proc.communicate(timeout=120)
    resident.stop(ckg_home)
    assert wait_gone(next_spare, 60), "the spare child outlived its resident"


@pytest.mark.parametrize("kernel", ["inotify", "modification times"])
def test_the_code_watch_sees_an_install_but_not_the_bytecode_python_writes(
    kernel, tmp_path, monkeypatch
):
    monkeypatch.syspath_prepend(str(tmp_path))
    if kernel == "modification times":  # as where the kernel's limit on watches is reached
        monkeypatch.setattr(resident.CodeWatch, "_watch", lambda self, folders: None)
    watch = resident.CodeWatch()
    assert (watch.fd is None) == (kernel == "modification times")
    if kernel == "inotify":  # Python writes bytecode next to what it imports
        (tmp_path / "__pycache__").mkdir()
        assert not watch.changed()
    time.sleep(0.01)  # file times move with the kernel's clock tick, a few milliseconds
    (tmp_path / "installed.py").write_text("")
    assert watch.changed() and watch.changed()


def test_another_user_reaching_the_socket_is_dropped_unheard(other_user, tmp_path):
    # A home the other user can reach (pytest's own folders are private): the way opened
    # on purpose, as a careless chmod would; the resident still checks who is on the other
    # end of the socket.
    home = Path(tempfile.mkdtemp(prefix="ckg-resident-"))
    env = {"CKG_HOME": str(home)}
    try:
        pid = resident_of(home, env)
        os.chmod(home, 0o711)
        os.chmod(home / "resident.sock", 0o777)
        script = (
            "import marshal, socket, struct\n"
            f"s = socket.socket(socket.AF_UNIX); s.connect({str(home / 'resident.sock')!r})\n"
            "body = marshal.dumps({'argv': ['ckg', '--version']})\n"
            "try:\n"
            "    s.sendmsg([len(body).to_bytes(4, 'big') + body], [(socket.SOL_SOCKET,\n"
            "              socket.SCM_RIGHTS, struct.pack('3i', 0, 1, 2))])\n"
            "    print(repr(s.recv(100)))\n"
            "except (BrokenPipeError, ConnectionResetError):  # closed before or unread\n"
            "    print(repr(b''))\n"
        )
        done = other_user.python(script)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "b''"  # closed without a word, nothing forked
        assert not wait_gone(pid, 0)
    finally:
        resident.stop(home)
        shutil.rmtree(home)


def test_db_stop_and_the_idle_timeout_end_the_resident(ckg_home):
    pid = resident_of(ckg_home)
    done = ckg("db", "stop")
    assert f"stopped resident process {pid}" in done.stdout
    assert wait_gone(pid, 0)
    assert not (ckg_home / "resident.sock").exists()
    ckg("--version", env={"CKG_IDLE_TIMEOUT": "1"})  # starts one that stops when idle
    deadline = time.monotonic() + 120
    while not (ckg_home / "resident.sock").exists():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    idle = int((ckg_home / "resident.pid").read_text())
    assert wait_gone(idle, 60), "the resident outlived its idle timeout"


def test_the_socket_of_a_home_is_its_owners_alone(ckg_home):
    resident_of(ckg_home)
    assert os.stat(ckg_home).st_mode & 0o077 == 0
    for name in ("resident.sock", "resident.pid", "resident.lock", "resident.log"):
        assert os.stat(ckg_home / name).st_mode & 0o077 == 0, name
    with socket.socket(socket.AF_UNIX) as conn:
        conn.connect(str(ckg_home / "resident.sock"))
    assert resident.stop(ckg_home) is not None
