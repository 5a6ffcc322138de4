"""Configuration: flags first, then the environment, then defaults.

``CKG_HOME``   ckg's own folder (embedded database, caches, journal), private to its owner
               (mode 0700). Default: ``$XDG_DATA_HOME/.ckg``, that is ``~/.local/share/.ckg``.
``CKG_DB``     ``embedded`` or a Neo4j URI; ``NEO4J_URI`` is read when it is unset.
``NEO4J_USERNAME`` / ``NEO4J_PASSWORD``  Neo4j credentials; never written anywhere.
"""

import os
import stat
from contextlib import contextmanager
from pathlib import Path

from ckg.core.errors import StoreUnavailable
from ckg.core.process import home_folder

#: The umask ckg writes under: what it creates is its owner's alone (0700 folders, 0600 files).
PRIVATE_UMASK = 0o077
# The umask the user started ckg with, while :func:`private_files` replaced it.
_user_umask: int | None = None


def home_path() -> Path:
    """Where ckg's home folder is (``CKG_HOME``, else ``$XDG_DATA_HOME/.ckg``); nothing is
    created or checked: :func:`home` does that."""
    return Path(home_folder())


def home() -> Path:
    """ckg's home folder, created private if missing; raises StoreUnavailable if it cannot be."""
    path = home_path()
    try:
        private_dir(path)
        # One probe per process: with a shared name, two processes starting at once could
        # each unlink the other's probe and fail with "No such file or directory".
        probe = path / f".write-probe-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise StoreUnavailable(f"CKG_HOME {path} cannot be written: {exc.strerror}") from None
    return path


def private_dir(path: Path) -> Path:
    """Make ``path`` a folder only its owner can enter (0700), creating it if missing.

    The home holds the database, the run journal and the embedded server's socket: another
    local user who could enter it could read all of that, or plant a server of their own.

    Raises
    ------
    StoreUnavailable
        When ``path`` exists and belongs to another user (its owner could change it back);
        when it, or a folder above it, is a symbolic link of another user (planted in a
        shared folder such as ``/tmp``, it would put the folder where that user chose); when
        ``path`` was writable by others and holds something of another user's.
    """
    path = Path(path)
    _make_dirs(path)
    info = path.stat()
    if info.st_uid != os.getuid():
        raise StoreUnavailable(f"{path} belongs to another user (uid {info.st_uid}), not to you")
    if stat.S_IMODE(info.st_mode) & 0o077:
        path.chmod(0o700)
        if info.st_mode & 0o022:
            _refuse_planted(path)
    return path


def _make_dirs(path: Path) -> None:
    """Create ``path`` (0700) and its missing parents, one at a time, each checked with
    ``lstat``: a symbolic link on the way is followed only if it is the user's or root's."""
    me = os.getuid()
    path = path.absolute()
    for folder in [*reversed(path.parents), path]:
        try:
            info = os.lstat(folder)
        except FileNotFoundError:
            try:
                os.mkdir(folder, 0o700 if folder == path else 0o777)  # never follows a link
            except FileExistsError:
                pass  # made meanwhile: checked below like any other
            info = os.lstat(folder)
        if stat.S_ISLNK(info.st_mode) and info.st_uid not in (me, 0):
            where = "" if folder == path else f" on the way to {path}"
            raise StoreUnavailable(
                f"{folder} is a symbolic link of another user (uid {info.st_uid}): refused{where}"
            )


def _refuse_planted(path: Path) -> None:
    """Refuse a folder that others could write to until now if it holds anything of
    another user's (a link planted as ``cache`` would put every clone where they chose).
    Walked once: the folder is private from then on."""
    me = os.getuid()
    for folder, dirs, files in os.walk(path):  # links are not followed
        for name in dirs + files:
            owner = os.lstat(os.path.join(folder, name)).st_uid
            if owner != me:
                raise StoreUnavailable(
                    f"{os.path.join(folder, name)} belongs to another user (uid {owner}) and "
                    f"{path} was writable by others: remove it"
                )


@contextmanager
def private_files():
    """Create files and folders private to their owner inside the block (umask 077).

    The umask is the process's: the block is for ckg's own processes and its ingest and run
    steps. Commands ckg runs for the user get the user's umask back (:func:`user_umask`).
    """
    global _user_umask
    previous = os.umask(PRIVATE_UMASK)
    outermost = _user_umask is None
    if outermost:
        _user_umask = previous
    try:
        yield
    finally:
        os.umask(previous)
        if outermost:
            _user_umask = None


def user_umask() -> int:
    """The umask to start the user's commands with: theirs, or -1 (inherit) outside
    :func:`private_files`, so that a script writes files as it would without ckg."""
    return -1 if _user_umask is None else _user_umask


def db_uri() -> str:
    """The database named by ``CKG_DB``, else ``NEO4J_URI``, else ``embedded``."""
    return os.environ.get("CKG_DB") or os.environ.get("NEO4J_URI") or "embedded"


def neo4j_auth() -> tuple[str, str] | None:
    """Neo4j credentials from the environment, or None to connect without authentication."""
    user = os.environ.get("NEO4J_USERNAME")
    password = os.environ.get("NEO4J_PASSWORD")
    if user is None and password is None:
        return None
    return (user or "neo4j", password or "")
