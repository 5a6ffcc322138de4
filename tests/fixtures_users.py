"""Another local user, for tests where the attacker is someone else on this machine.

``other_user`` creates a real account (``ckg-test-other``) with ``useradd`` and runs real
processes as it through ``setpriv``. It needs root (as here and in CI) and skips with the
reason elsewhere.

The interpreter and the checkout often live under a home no one else may enter (``/root`` is
0700 and pyenv installs there). Rather than open that home to every user, a command runs in a
mount namespace of its own where each such home is replaced by an empty public folder holding
binds of just the folders the interpreter needs: the other user can start this Python, and
sees nothing else of the home.
"""

import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

# One account per pytest-xdist worker (PYTEST_XDIST_WORKER is gw0, gw1, ...): workers of one
# session must not delete each other's account.
OTHER_USER = "-".join(filter(None, ["ckg-test-other", os.environ.get("PYTEST_XDIST_WORKER")]))
PROJECT = Path(__file__).resolve().parent.parent


def _closed_ancestor(path: Path) -> Path | None:
    """The highest folder above ``path`` that others may not enter, or None."""
    for folder in reversed(path.parents):
        if not os.stat(folder).st_mode & 0o001:
            return folder
    return None


def _needed_paths() -> list[Path]:
    return sorted(
        {Path(os.path.realpath(p)) for p in (sys.executable, sys.prefix, sys.base_prefix, PROJECT)}
    )


def _shell_quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


@dataclass
class OtherUser:
    name: str
    uid: int
    gid: int
    home: Path
    _mounts: str

    def run(self, argv, *, env=None, timeout=120, **kwargs) -> subprocess.CompletedProcess:
        """Run ``argv`` as this user (no supplementary groups) and wait for it."""
        return subprocess.run(
            self.argv(argv),
            env=self.env(env),
            timeout=timeout,
            capture_output=True,
            text=True,
            **kwargs,
        )

    def popen(self, argv, *, env=None, **kwargs) -> subprocess.Popen:
        """Start ``argv`` as this user, without waiting."""
        return subprocess.Popen(self.argv(argv), env=self.env(env), **kwargs)

    def argv(self, argv) -> list[str]:
        drop = [
            "setpriv",
            f"--reuid={self.uid}",
            f"--regid={self.gid}",
            "--clear-groups",
            "--inh-caps=-all",
            "--",
        ]
        command = " ".join(_shell_quote(str(a)) for a in [*drop, *argv])
        if not self._mounts:
            return ["sh", "-c", "exec " + command]
        return [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            f"{self._mounts} && exec {command}",
        ]

    def env(self, extra=None) -> dict[str, str]:
        base = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.home),
            "LANG": "C.UTF-8",
            "CKG_HOME": str(self.home / "ckg-home"),
        }
        base.update(extra or {})
        return base

    def python(self, code: str, **kwargs) -> subprocess.CompletedProcess:
        """Run ``code`` with this interpreter, as this user."""
        return self.run([sys.executable, "-c", code], **kwargs)


def _mount_script(scratch: Path) -> str:
    """Shell commands that make the needed paths reachable inside a private mount namespace."""
    steps = []
    by_home: dict[Path, set[Path]] = {}
    for path in _needed_paths():
        closed = _closed_ancestor(path)
        if closed is None:
            continue
        child = closed / path.relative_to(closed).parts[0]
        by_home.setdefault(closed, set()).add(child)
    for n, (home, children) in enumerate(sorted(by_home.items())):
        public = scratch / f"home{n}"
        public.mkdir(mode=0o755)
        os.chmod(public, 0o755)
        for child in sorted(children):
            (public / child.name).mkdir()
            steps.append(
                f"mount --bind {_shell_quote(str(child))} {_shell_quote(str(public / child.name))}"
            )
        steps.append(f"mount --rbind {_shell_quote(str(public))} {_shell_quote(str(home))}")
    return " && ".join(steps)


@contextmanager
def _accounts_lock():
    """Serialise useradd/userdel between the workers of a session: each may fail ("cannot
    lock /etc/passwd; try again later") while another holds the lock of the account files."""
    with open(__file__, "rb") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


@pytest.fixture(scope="session")
def other_user():
    """A real second local account, created for the session and removed after it."""
    if os.geteuid() != 0:
        pytest.skip("needs root to create another local user")
    for tool in ("useradd", "userdel", "setpriv", "unshare"):
        if shutil.which(tool) is None:
            pytest.skip(f"needs {tool} to act as another local user")
    with _accounts_lock():
        subprocess.run(["userdel", OTHER_USER], capture_output=True)
        subprocess.run(
            ["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", OTHER_USER],
            check=True,
            capture_output=True,
        )
    scratch = Path(tempfile.mkdtemp(prefix="ckg-other-user-"))
    os.chmod(scratch, 0o755)
    try:
        import pwd

        entry = pwd.getpwnam(OTHER_USER)
        home = scratch / "home"
        home.mkdir()
        os.chown(home, entry.pw_uid, entry.pw_gid)
        os.chmod(home, 0o700)
        user = OtherUser(OTHER_USER, entry.pw_uid, entry.pw_gid, home, _mount_script(scratch))
        probe = user.python("import os; print(os.getuid())")
        if probe.returncode != 0 or probe.stdout.strip() != str(entry.pw_uid):
            pytest.skip(f"cannot run this interpreter as another user: {probe.stderr.strip()}")
        yield user
    finally:
        with _accounts_lock():
            subprocess.run(["userdel", OTHER_USER], capture_output=True)
        shutil.rmtree(scratch, ignore_errors=True)
