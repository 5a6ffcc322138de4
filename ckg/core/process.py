"""What the ``ckg`` console script reads before it imports anything else: the home's folder,
the command named, and what a resident process's child must share with it (:mod:`ckg.entry`,
:mod:`ckg.cli.resident`). Only ``os`` and ``sys``: the console script of a command that a
resident runs imports nothing more (``pathlib`` alone is 5-9 ms where the install is not
editable).
"""

import os
import sys

#: The socket of the home's resident process (:mod:`ckg.cli.resident`), in the home.
RESIDENT_SOCKET = "resident.sock"
#: The limits a command passes to the resident's child that runs it (``resource`` names).
RESOURCE_LIMITS = (
    "RLIMIT_AS",
    "RLIMIT_CORE",
    "RLIMIT_CPU",
    "RLIMIT_DATA",
    "RLIMIT_FSIZE",
    "RLIMIT_MEMLOCK",
    "RLIMIT_NOFILE",
    "RLIMIT_NPROC",
    "RLIMIT_STACK",
)


def home_folder() -> str:
    """Where ckg's home folder is: ``CKG_HOME``, else ``$XDG_DATA_HOME/.ckg`` (by default
    ``~/.local/share/.ckg``); nothing is created or checked (:func:`ckg.core.config.home`
    does that)."""
    configured = os.environ.get("CKG_HOME")
    if configured:
        return os.path.expanduser(configured)
    data = os.environ.get("XDG_DATA_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "share"
    )
    return os.path.join(data, ".ckg")


def command_name(args: list[str]) -> str | None:
    """The command ``args`` name: the first argument that is neither a global option nor the
    value of ``--db``.

    >>> command_name(["--db", "embedded", "--debug", "find", "--tags", "x"])
    'find'
    >>> command_name(["--db=bolt://h:7687", "run"]), command_name(["--help"])
    ('run', None)
    """
    args = iter(args)
    for arg in args:
        if arg == "--db":
            next(args, None)
        elif not arg.startswith("-"):
            return arg
    return None


def peer_uid(conn) -> int:
    """The user id of the process at the other end of the Unix socket ``conn``."""
    import _socket  # the C module: socket's enums would cost the console script milliseconds

    creds = conn.getsockopt(_socket.SOL_SOCKET, _socket.SO_PEERCRED, 12)  # pid, uid, gid
    return int.from_bytes(creds[4:8], sys.byteorder, signed=True)


def process_identity() -> tuple:
    """What a child of the resident process must share with the ``ckg`` command it runs,
    and cannot take on after the fork: the interpreter and the flags that change what code
    does, the user and groups, the cgroup (memory and CPU limits) and the namespaces."""
    try:
        with open("/proc/self/cgroup") as cgroup:
            groups = cgroup.read()
    except OSError:
        groups = ""
    namespaces = []
    for name in ("mnt", "pid", "net", "user", "uts", "ipc"):
        try:
            namespaces.append(os.readlink(f"/proc/self/ns/{name}"))
        except OSError:
            namespaces.append("")
    flags = sys.flags
    return (
        sys.executable,
        flags.utf8_mode,
        flags.optimize,
        flags.dev_mode,
        flags.ignore_environment,
        flags.no_user_site,
        flags.isolated,
        os.getuid(),
        os.geteuid(),
        os.getgid(),
        os.getegid(),
        tuple(sorted(os.getgroups())),
        groups,
        tuple(namespaces),
    )


def set_environ(env: dict[str, str]) -> None:
    """Make this process's environment exactly ``env`` (a fork that takes on a command's or
    a step's), changing only the variables that differ: setting each of some fifty anew
    costs a fork about half a millisecond."""
    for name in [name for name in os.environ if name not in env]:
        del os.environ[name]
    for name, value in env.items():
        if os.environ.get(name) != value:
            os.environ[name] = value
