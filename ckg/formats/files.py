"""A source's files as every reader sees them: read in place as an archive is extracted.

A folder, a Git checkout or an extracted archive holds what its author put there, links
and special files included. :func:`walk` lists what may be read, and :func:`open_file`
and :func:`read_file` read it, by one rule:

- a symbolic link (or a chain of them) is followed when it ends at a regular file inside the
  source and outside its version-control folders (a checkout's ``.git/config`` may hold the
  token of the URL it came from); one that leads anywhere else is refused, with a warning
  naming it. Links to folders are not descended: no loops, and no artifact read twice;
- FIFOs, devices and sockets are skipped, with a warning, and never opened: a FIFO blocks
  its reader for ever, ``/dev/zero`` never ends;
- names that are not valid UTF-8 are left out, with a warning (:func:`utf8_name`).

What the walk lists can change before it is read (another user's folder): :func:`open_file`
applies the rule again at the moment of opening, and :func:`read_file` reads no more than
the archive bound (:attr:`ckg.formats.archives.Limits.max_bytes`) of one file.
"""

import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from ckg.core.records import Problem

#: The most bytes one file of a source is read to, and an archive unpacks to, unless
#: ``CKG_ARCHIVE_MAX_BYTES`` says otherwise (:class:`ckg.formats.archives.Limits`).
MAX_BYTES = 1 << 30
#: Folders whose files are never the source's content, nor a link's target.
VCS_DIRS = frozenset({".git", ".hg", ".svn"})
#: The names of archives :mod:`ckg.formats.archives` extracts (here, so that telling a source's
#: kind does not import the zip, tar and compression modules).
ZIP_SUFFIXES = (".zip", ".whl")
TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
#: The file written last into an extracted folder: its presence means extraction completed.
COMPLETE_MARK = ".ckg-extracted"
_SPECIAL = (
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)
#: Flags of every open of a source file: a FIFO swapped in after the check does not block
#: the open, and a final component swapped for a link is not followed.
_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)


def utf8_name(name: str) -> bool:
    """Whether a file name read from disk was valid UTF-8.

    Python decodes other bytes of a name to lone surrogates (``b"bad\\xff"`` reads
    ``"bad\\udcff"``), which no graph can store and which end an ingest at the first
    ``str.encode``: such a file is read as if absent.

    >>> utf8_name("get-python3"), utf8_name("caf\\u00e9"), utf8_name("bad\\udcff")
    (True, True, False)
    """
    if name.isascii():
        return True
    try:
        name.encode()
    except UnicodeEncodeError:
        return False
    return True


def walk(
    root: str | Path, skip: frozenset[str] = VCS_DIRS, problems: list[Problem] | None = None
) -> Iterator[tuple[str, list[str], list[str]]]:
    """``os.walk(root)``, top-down, listing only what a source may have read.

    ``dirnames`` holds real folders not named in ``skip`` (prune it in place to skip more),
    ``filenames`` regular files and links that end at one inside ``root``. What is left
    out with a reason is added to ``problems``, one :class:`~ckg.core.records.Problem` each,
    named relative to ``root``; a link to a folder inside, or to nothing, is left out
    silently, as there is nothing to read.

    Examples
    --------
    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp()); _ = (d / "a.txt").write_text("a")
    >>> os.symlink("a.txt", d / "b.txt"); os.symlink("/etc/hostname", d / "c.txt")
    >>> os.mkfifo(d / "d.csv")
    >>> problems = []
    >>> [sorted(files) for _, _, files in walk(d, problems=problems)]
    [['a.txt', 'b.txt']]
    >>> for problem in sorted(problems, key=lambda p: p.path):
    ...     print(problem)
    c.txt: link to '/etc/hostname' leads out of the source; not read
    d.csv: a FIFO, not a regular file; skipped
    """
    for folder, dirs, entries in walk_entries(root, skip, problems):
        yield folder, dirs, [entry.name for entry in entries]


def walk_entries(
    root: str | Path, skip: frozenset[str] = VCS_DIRS, problems: list[Problem] | None = None
) -> Iterator[tuple[str, list[str], list[os.DirEntry]]]:
    """:func:`walk` with each file as its :class:`os.DirEntry` (whose ``stat()`` is a link's
    target's)."""
    root = str(root)
    real_root = os.path.realpath(root)
    stack = [root]
    while stack:
        folder = stack.pop()
        dirs: list[str] = []
        paths: dict[str, str] = {}  # entry.path, cheaper than os.path.join
        files: list[os.DirEntry] = []
        try:
            entries = os.scandir(folder)
        except OSError:
            continue  # gone or unreadable since it was listed, as os.walk does
        with entries:
            for entry in entries:
                name = entry.name
                if not utf8_name(name):
                    why = "name is not valid UTF-8; skipped"
                elif entry.is_dir(follow_symlinks=False):  # the file type the folder lists:
                    if name not in skip:  # no system call
                        dirs.append(name)
                        paths[name] = entry.path
                    continue
                elif entry.is_file(follow_symlinks=False):
                    files.append(entry)
                    continue
                else:
                    why = _odd(entry, real_root, files)
                if why and problems is not None:
                    problems.append(Problem(_shown(entry.path, root), why))
        yield folder, dirs, files  # the caller may prune dirs in place, as with os.walk
        stack.extend(paths[d] for d in reversed(dirs))


def _odd(entry: os.DirEntry, real_root: str, files: list) -> str:
    """A link (to ``files`` when it ends at a regular file inside) or a special file: why
    it is left out, "" for no warning."""
    if entry.is_symlink():
        why, mode = link_target(entry.path, real_root)
        if not why and stat.S_ISREG(mode):
            files.append(entry)
        return why
    return special(entry.stat(follow_symlinks=False).st_mode)


def link_target(path: str, real_root: str) -> tuple[str, int]:
    """Where the link at ``path`` ends, judged against the source's real root: ("", mode of
    the target) inside, or (why it is refused, 0); ("", 0) when it ends at nothing."""
    real = os.path.realpath(path)
    rel = os.path.relpath(real, real_root)
    if (
        rel == os.pardir
        or rel.startswith(os.pardir + os.sep)
        or os.path.isabs(rel)
        or VCS_DIRS.intersection(rel.split(os.sep))
    ):
        try:
            target = os.readlink(path)
        except OSError:
            target = real
        return f"link to {target!r} leads out of the source; not read", 0
    try:
        mode = os.stat(real).st_mode
    except OSError:
        return "", 0  # a dangling link (or a loop): nothing to read
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return "", mode
    return f"link to {_kind(mode)} inside the source; skipped", 0


def special(mode: int) -> str:
    """Why a file of ``mode`` (a FIFO, a device, a socket) is not read."""
    return f"{_kind(mode)}, not a regular file; skipped"


def _kind(mode: int) -> str:
    return next((what for test, what in _SPECIAL if test(mode)), "a special file")


def _shown(path: str, root: str) -> str:
    """``path`` relative to ``root``, POSIX, with bytes that are not UTF-8 escaped."""
    rel = os.path.relpath(path, root).replace(os.sep, "/")
    return rel.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def open_file(path: str | Path, root: str | Path) -> BinaryIO:
    """Open a file of the source at ``root`` for reading in binary, by :func:`walk`'s rule.

    A link is followed only to a regular file inside ``root``; anything else raises
    :class:`OSError` whose ``strerror`` says why, without the file being opened (a device's
    open can act: a tape rewinds) or, if it was swapped in since, without blocking.

    Examples
    --------
    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp()); os.mkfifo(d / "fifo")
    >>> open_file(d / "fifo", d)
    Traceback (most recent call last):
    OSError: [Errno 22] a FIFO, not a regular file; skipped: 'fifo'
    """
    fd, _ = _open(os.fspath(path), root)
    return os.fdopen(fd, "rb")


def read_file(path: str | Path, root: str | Path, limit: int | None = None) -> bytes:
    """The bytes of a file of the source at ``root`` (:func:`open_file`), at most ``limit``
    (the archive bound, ``CKG_ARCHIVE_MAX_BYTES``, when None); a larger file raises
    :class:`OSError` naming the bound, having read no more than it.

    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp()); _ = (d / "a").write_bytes(b"12345")
    >>> read_file(d / "a", d)
    b'12345'
    >>> read_file(d / "a", d, limit=4)
    Traceback (most recent call last):
    OSError: [Errno 27] larger than 4 bytes (CKG_ARCHIVE_MAX_BYTES); not read: 'a'
    """
    limit = _max_bytes() if limit is None else limit
    path = os.fspath(path)
    fd, size = _open(path, root)
    try:
        # os.read(n) allocates n bytes first: ask for the size the file has, then for
        # chunks while it grows under the reader's feet, never past the bound.
        left, want, parts = limit + 1, size + 1, []
        while size <= limit and left > 0 and (chunk := os.read(fd, want)):
            parts.append(chunk)
            left -= len(chunk)
            want = min(1 << 20, left)
    finally:
        os.close(fd)
    if size > limit or left <= 0:
        raise OSError(
            errno.EFBIG,
            f"larger than {limit} bytes (CKG_ARCHIVE_MAX_BYTES); not read",
            _shown(path, os.fspath(root)),
        )
    return b"".join(parts)


def _open(path: str, root) -> tuple[int, int]:
    """A descriptor open on the regular file ``path`` names by the rule, and its size."""
    mode = os.lstat(path).st_mode
    if stat.S_ISLNK(mode):
        why, mode = link_target(path, os.path.realpath(root))
        if why or not mode:
            raise OSError(errno.ELOOP, why or "a dangling link", _shown(path, os.fspath(root)))
        path = os.path.realpath(path)
    if not stat.S_ISREG(mode):
        raise OSError(errno.EINVAL, special(mode), _shown(path, os.fspath(root)))
    fd = os.open(path, _OPEN_FLAGS)
    try:
        st = os.fstat(fd)  # what was opened, which may not be what lstat saw
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, special(st.st_mode), _shown(path, os.fspath(root)))
    except BaseException:
        os.close(fd)
        raise
    return fd, st.st_size


def _max_bytes() -> int:
    """``CKG_ARCHIVE_MAX_BYTES`` as :class:`ckg.formats.archives.Limits` reads it, or
    :data:`MAX_BYTES`; archives' modules (tarfile, zipfile, lzma) are imported only for the
    first, as every meta check of ``ckg run`` reads files."""
    if not os.environ.get("CKG_ARCHIVE_MAX_BYTES"):
        return MAX_BYTES
    from ckg.formats.archives import Limits

    return Limits.from_env().max_bytes
