"""Sources: one read-only file tree over a Git repository, an archive or a folder.

:func:`open_source` turns what a user names on ``ckg ingest`` into a :class:`SourceTree`:
a folder to read plus its provenance (location, kind, commit, content digest).

- A Git URL, or a local folder with ``.git``, is fetched into ``CKG_HOME/cache/git`` with
  ``git`` (shallow: one commit deep) and checked out at ``ref`` (branch, tag or commit). Its
  ``origin`` is the URL itself, or a local repository's ``origin`` remote (:func:`git_origin`),
  so that a paper's code link finds a local clone too.
- A ``.zip`` / ``.whl`` or a ``.tar``, ``.tar.gz``, ``.tgz``, ``.tar.bz2``, ``.tar.xz`` is
  extracted once into ``CKG_HOME/cache/archives/<sha256>``; a later call with the same
  bytes reuses that folder. Extraction is safe: every member is checked before a byte is
  written (see :class:`Limits` and :func:`extract_archive`).
- Any other folder is read in place.

A source's uid is a digest of its location and ref, so the same repository at two refs
is two sources, and re-ingesting one location updates the same ``Source`` node.
"""

import hashlib
import lzma
import os
import re
import shutil
import stat
import subprocess
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ckg.errors import InvalidInput, NotFound, UnsafeArchive

ZIP_SUFFIXES = (".zip", ".whl")
TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
GIT_URL_PREFIXES = ("https://", "http://", "git://", "ssh://", "git@", "file://")
#: Folders never part of a source's content.
SKIP_DIRS = frozenset({".git", ".hg", ".svn", "__pycache__"})
_COMPLETE_MARK = ".ckg-extracted"
#: A Git config section header: ``[name]``, ``[name "sub"]``, ``[name.sub]``.
_SECTION = re.compile(r'^\[\s*([\w.-]+)(?:\s+"((?:[^"\\]|\\.)*)")?\s*\]')
#: What the zip, tar and decompression modules raise on damaged input (bz2 and gzip raise
#: OSError; a truncated stream raises EOFError).
_CORRUPT = (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError, zlib.error, lzma.LZMAError)


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds that stop an archive bomb before it fills the disk.

    Defaults: 1 GiB unpacked in total, 100,000 members, and a compression ratio of at most
    200 (unpacked / packed), checked per member once it unpacks to more than 1 MiB and over
    the whole archive. Each can be set with ``CKG_ARCHIVE_MAX_BYTES``,
    ``CKG_ARCHIVE_MAX_MEMBERS`` and ``CKG_ARCHIVE_MAX_RATIO``, or passed to :func:`open_source`.
    """

    max_bytes: int = 1 << 30
    max_members: int = 100_000
    max_ratio: float = 200.0
    #: Members smaller than this are not ratio-checked: short runs of text compress well.
    ratio_floor: int = 1 << 20

    @classmethod
    def from_env(cls, **overrides) -> "Limits":
        """Defaults, then the ``CKG_ARCHIVE_*`` environment, then ``overrides``."""
        values = {}
        for name, var, cast in (
            ("max_bytes", "CKG_ARCHIVE_MAX_BYTES", int),
            ("max_members", "CKG_ARCHIVE_MAX_MEMBERS", int),
            ("max_ratio", "CKG_ARCHIVE_MAX_RATIO", float),
        ):
            if os.environ.get(var):
                try:
                    values[name] = cast(os.environ[var])
                except ValueError:
                    raise InvalidInput(f"{var}={os.environ[var]!r} is not a number") from None
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


@dataclass(frozen=True, slots=True)
class SourceTree:
    """A folder to read and where it came from.

    Attributes
    ----------
    uid : str
        Digest of ``location`` and ``ref``: the ``Source`` node's key.
    location : str
        What the user named, normalised: an absolute path or a URL.
    kind : str
        ``git``, ``zip``, ``tar`` or ``dir``.
    root : Path
        The folder holding the files (a cache folder for Git and archives).
    ref : str
        The ref asked for ("" for the default branch, archives and folders).
    commit : str
        The checked-out commit for Git, else "".
    digest : str
        The archive's sha256, the commit for Git, "" for a folder (its files are checked one
        by one by the ingest stage).
    origin : str
        The remote a Git source comes from: the URL given, or a local repository's ``origin``
        remote; "" when there is none (archives, folders, a repository without remote).
    """

    uid: str
    location: str
    kind: str
    root: Path
    ref: str = ""
    commit: str = ""
    digest: str = ""
    origin: str = ""

    def files(self) -> Iterator[os.DirEntry]:
        """Every regular file below :attr:`root` (links not followed), skipping VCS folders."""
        return walk_files(self.root)

    def props(self) -> dict:
        """The ``Source`` node's properties that describe provenance.

        ``origin`` is None when unknown, so that writing it removes a remote that is gone.
        """
        return {
            "uid": self.uid,
            "location": self.location,
            "kind": self.kind,
            "ref": self.ref,
            "commit": self.commit,
            "digest": self.digest,
            "origin": self.origin or None,
        }


def source_uid(location: str, ref: str = "") -> str:
    """The uid of a source: 16 hex digits of sha256 over location and ref.

    >>> source_uid("https://github.com/mlcommons/cm4mlops") == source_uid(
    ...     "https://github.com/mlcommons/cm4mlops", "")
    True
    >>> len(source_uid("/data/repo", "v1"))
    16
    """
    return hashlib.sha256(f"{location}\n{ref}".encode()).hexdigest()[:16]


def kind_of(location: str) -> str:
    """``git``, ``zip``, ``tar`` or ``dir`` for what ``location`` names (it may not exist).

    >>> kind_of("https://github.com/mlcommons/cm4mlops.git"), kind_of("x.tar.gz")
    ('git', 'tar')
    >>> kind_of("dist/mlc_scripts-1.0-py3-none-any.whl")
    'zip'
    """
    lower = location.lower()
    if lower.startswith(GIT_URL_PREFIXES):
        return "git"
    if lower.endswith(ZIP_SUFFIXES):
        return "zip"
    if lower.endswith(TAR_SUFFIXES):
        return "tar"
    if (Path(location) / ".git").exists():
        return "git"
    return "dir"


def open_source(
    location: str | Path,
    *,
    ref: str | None = None,
    cache: Path,
    limits: Limits | None = None,
) -> SourceTree:
    """Make ``location`` readable as a folder and describe where it came from.

    Parameters
    ----------
    location : str or Path
        A Git URL, a local Git repository, an archive, or a folder.
    ref : str, optional
        Branch, tag or commit (Git only).
    cache : Path
        Folder for clones and extracted archives (``CKG_HOME/cache``).
    limits : Limits, optional
        Archive bounds; :meth:`Limits.from_env` when None.

    Returns
    -------
    SourceTree

    Raises
    ------
    NotFound
        The path does not exist.
    InvalidInput
        A corrupt or truncated archive, a Git fetch that failed, ``ref`` on a non-Git source.
    UnsafeArchive
        A member would land outside the extraction root, or a limit was exceeded.

    Examples
    --------
    >>> open_source("/tmp", cache=Path("/tmp/ckg-cache")).kind
    'dir'
    """
    text = str(location)
    kind = kind_of(text)
    ref = ref or ""
    if kind == "git":
        url = text if text.lower().startswith(GIT_URL_PREFIXES) else str(_existing(text))
        return _open_git(url, ref, cache / "git")
    path = _existing(text)
    if ref:
        raise InvalidInput(f"--ref {ref!r} applies to Git sources only, not to {path}")
    if kind == "dir":
        if not path.is_dir():
            raise InvalidInput(f"{path} is neither a folder, a Git repository nor an archive")
        return SourceTree(source_uid(str(path)), str(path), "dir", path)
    digest = file_digest(path)
    root = cache / "archives" / digest[:32]
    if not (root / _COMPLETE_MARK).exists():
        extract_archive(path, root, kind=kind, limits=limits or Limits.from_env())
    return SourceTree(source_uid(str(path)), str(path), kind, root, digest=digest)


def file_digest(path: Path) -> str:
    """sha256 of a file's bytes, read in 1 MiB chunks."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def walk_files(root: Path) -> Iterator[os.DirEntry]:
    """Regular files below ``root``, depth first, without following links or VCS folders."""
    stack = [str(root)]
    while stack:
        with os.scandir(stack.pop()) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    if entry.name not in SKIP_DIRS:
                        stack.append(entry.path)
                elif entry.is_file(follow_symlinks=False) and entry.name != _COMPLETE_MARK:
                    yield entry


def _existing(text: str) -> Path:
    path = Path(text).expanduser()
    if not path.exists():
        raise NotFound(f"source {text!r} does not exist")
    return path.resolve()


# --- Git -------------------------------------------------------------------------------


def _open_git(url: str, ref: str, cache: Path) -> SourceTree:
    """Fetch ``ref`` of ``url`` one commit deep into a cache folder and check it out."""
    repo = cache / hashlib.sha256(url.encode()).hexdigest()[:16]
    # A local path is fetched over file:// so that --depth is honoured.
    remote = url if url.lower().startswith(GIT_URL_PREFIXES) else Path(url).as_uri()
    if not (repo / ".git").is_dir():
        repo.mkdir(parents=True, exist_ok=True)
        _git(repo, "init", "-q")
        _git(repo, "remote", "add", "origin", remote)
    want = ref or "HEAD"
    try:
        _git(repo, "fetch", "-q", "--depth", "1", "--no-tags", "origin", want)
    except InvalidInput:
        # Some servers refuse a shallow fetch of a bare commit id; fetch everything instead.
        _git(repo, "fetch", "-q", "--tags", "origin")
        want = _git(repo, "rev-parse", "--verify", "-q", f"{ref}^{{commit}}")
    else:
        want = "FETCH_HEAD"
    _git(repo, "checkout", "-q", "--force", "--detach", want)
    _git(repo, "clean", "-q", "-ffdx")
    commit = _git(repo, "rev-parse", "HEAD")
    origin = url if remote == url else git_origin(Path(url))
    return SourceTree(source_uid(url, ref), url, "git", repo, ref, commit, commit, origin)


def git_origin(repo: Path) -> str:
    """The URL of the ``origin`` remote of a local repository, or "" when it has none.

    Read from the repository's ``config`` file rather than by running ``git``: an unchanged
    re-ingest spawns no process for it. A ``.git`` file (a worktree or submodule) is followed
    to its Git folder, and a worktree's ``commondir`` to the shared config. ``insteadOf``
    rewrites are not applied.

    >>> git_origin(Path("~/src/bert-repro").expanduser())      # doctest: +SKIP
    'git@github.com:acme/bert-repro.git'
    >>> git_origin(Path("/nonexistent"))
    ''
    """
    config = _git_dir(repo / ".git") / "config"
    try:
        text = config.read_text(errors="replace")
    except OSError:
        return ""
    section = None
    for raw in text.splitlines():
        line = raw.strip()
        header = _SECTION.match(line)
        if header:
            # [remote "origin"], or the deprecated [remote.origin] (names are case-blind).
            name, sub = header.group(1), header.group(2)
            section = (name.lower(), sub) if sub is not None else tuple(name.lower().split(".", 1))
            continue
        key, sep, value = line.partition("=")
        if sep and section == ("remote", "origin") and key.strip().lower() == "url":
            return _config_value(value)
    return ""


def _git_dir(dot_git: Path) -> Path:
    """The Git folder a ``.git`` entry names: itself, or the ``gitdir:`` of a ``.git`` file."""
    if dot_git.is_file():
        try:
            target = dot_git.read_text(errors="replace").strip().removeprefix("gitdir:").strip()
        except OSError:
            return dot_git
        dot_git = (dot_git.parent / target).resolve()
    common = dot_git / "commondir"
    if common.is_file():
        return (dot_git / common.read_text(errors="replace").strip()).resolve()
    return dot_git


def _config_value(text: str) -> str:
    """A config value without its quotes and trailing ``#`` / ``;`` comment."""
    out, quoted = [], False
    for ch in text.strip():
        if ch == '"':
            quoted = not quoted
        elif ch in "#;" and not quoted:
            break
        else:
            out.append(ch)
    return "".join(out).strip()


def _git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true"}
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, env=env)
    if done.returncode:
        message = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise InvalidInput(f"git {args[0]} failed: {message}")
    return done.stdout.strip()


# --- archives --------------------------------------------------------------------------


def extract_archive(archive: Path, dest: Path, *, kind: str, limits: Limits) -> None:
    """Extract ``archive`` into ``dest`` safely, or raise and leave nothing behind.

    Every member is checked first (name, type, link target, sizes), then unpacked into a
    temporary sibling of ``dest`` that is renamed into place only when all went well.
    Byte counts are enforced while unpacking too, since headers can lie.

    Raises
    ------
    UnsafeArchive
        Naming the member: an absolute name or ``..``, a link pointing outside, a device or
        FIFO, or a limit exceeded.
    InvalidInput
        The archive is corrupt or truncated.
    """
    tmp = dest.with_name(f"{dest.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        if kind == "zip":
            _extract_zip(archive, tmp, limits)
        else:
            _extract_tar(archive, tmp, limits)
        (tmp / _COMPLETE_MARK).write_text(archive.name)
        shutil.rmtree(dest, ignore_errors=True)
        tmp.rename(dest)
    except UnsafeArchive:
        raise
    except _CORRUPT as exc:
        raise InvalidInput(f"{archive}: corrupt or truncated archive ({exc})") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def member_path(name: str, archive: Path) -> PurePosixPath:
    """The relative path a member may be written to, or UnsafeArchive naming it.

    >>> member_path("script/get-python3/meta.yaml", Path("a.zip"))
    PurePosixPath('script/get-python3/meta.yaml')
    >>> member_path("../evil", Path("a.zip"))
    Traceback (most recent call last):
    ckg.errors.UnsafeArchive: a.zip: member '../evil' would land outside the extraction root
    """
    clean = name.replace("\\", "/")
    parts = [p for p in clean.split("/") if p not in ("", ".")]
    if clean.startswith("/") or (len(clean) > 1 and clean[1] == ":") or ".." in parts:
        raise UnsafeArchive(f"{archive}: member {name!r} would land outside the extraction root")
    return PurePosixPath(*parts) if parts else PurePosixPath(".")


def _check_link(member: PurePosixPath, target: str, archive: Path) -> None:
    """Raise UnsafeArchive unless a symbolic link at ``member`` to ``target`` stays inside."""
    outside = UnsafeArchive(f"{archive}: link {str(member)!r} points outside: {target!r}")
    if target.startswith("/") or (len(target) > 1 and target[1] == ":"):
        raise outside
    parts: list[str] = list(member.parent.parts)
    for part in target.replace("\\", "/").split("/"):
        if part == "..":
            if not parts:
                raise outside
            parts.pop()
        elif part not in ("", "."):
            parts.append(part)


class _Budget:
    """Counts unpacked bytes and members against :class:`Limits`."""

    def __init__(self, archive: Path, limits: Limits, packed_total: int):
        self.archive, self.limits, self.packed_total = archive, limits, max(packed_total, 1)
        self.bytes = 0
        self.members = 0

    def member(self, name: str) -> None:
        self.members += 1
        if self.members > self.limits.max_members:
            raise UnsafeArchive(
                f"{self.archive}: more than {self.limits.max_members} members (at {name!r}); "
                "raise CKG_ARCHIVE_MAX_MEMBERS if this archive is trusted"
            )

    def declare(self, name: str, size: int, packed: int) -> None:
        """Check a zip member's header sizes before anything is unpacked."""
        limits = self.limits
        if size > limits.max_bytes:
            raise UnsafeArchive(
                f"{self.archive}: member {name!r} unpacks to {size} bytes: more than "
                f"{limits.max_bytes} bytes; raise CKG_ARCHIVE_MAX_BYTES if this archive is trusted"
            )
        if size > limits.ratio_floor and size > limits.max_ratio * max(packed, 1):
            raise UnsafeArchive(
                f"{self.archive}: member {name!r} unpacks {size} bytes from {packed} "
                f"(ratio above {limits.max_ratio:g}); raise CKG_ARCHIVE_MAX_RATIO if trusted"
            )

    def add(self, name: str, count: int) -> None:
        self.bytes += count
        limits = self.limits
        if self.bytes > limits.max_bytes:
            raise UnsafeArchive(
                f"{self.archive}: unpacks to more than {limits.max_bytes} bytes (at {name!r}); "
                "raise CKG_ARCHIVE_MAX_BYTES if this archive is trusted"
            )
        if self.bytes > limits.ratio_floor and self.bytes > limits.max_ratio * self.packed_total:
            raise UnsafeArchive(
                f"{self.archive}: compression ratio above {limits.max_ratio:g} (at {name!r}); "
                "raise CKG_ARCHIVE_MAX_RATIO if this archive is trusted"
            )


def _target(root: Path, rel: PurePosixPath, archive: Path, name: str) -> Path:
    """``root / rel`` after checking that its real parent folder is inside ``root``."""
    path = root.joinpath(*rel.parts)
    parent = os.path.realpath(path.parent)
    real_root = os.path.realpath(root)
    if parent != real_root and not parent.startswith(real_root + os.sep):
        raise UnsafeArchive(f"{archive}: member {name!r} would land outside the extraction root")
    if path.is_symlink():
        raise UnsafeArchive(f"{archive}: member {name!r} would be written through a link")
    return path


def _copy_stream(src, path: Path, budget: _Budget, name: str, declared: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with open(path, "wb") as out:
        while chunk := src.read(1 << 16):
            written += len(chunk)
            if written > declared:
                raise UnsafeArchive(f"{budget.archive}: member {name!r} outgrows its header")
            budget.add(name, len(chunk))
            out.write(chunk)


def _extract_zip(archive: Path, root: Path, limits: Limits) -> None:
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
        budget = _Budget(archive, limits, archive.stat().st_size)
        links: list[tuple[PurePosixPath, str]] = []
        for info in infos:
            budget.member(info.filename)
            rel = member_path(info.filename, archive)
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                links.append((rel, zf.read(info).decode("utf-8", "replace")))
                _check_link(rel, links[-1][1], archive)
            elif mode and stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):
                raise UnsafeArchive(f"{archive}: member {info.filename!r} is a device or FIFO")
            budget.declare(info.filename, info.file_size, info.compress_size)
        for info in infos:
            rel = member_path(info.filename, archive)
            if info.is_dir() or stat.S_ISLNK(info.external_attr >> 16):
                continue
            path = _target(root, rel, archive, info.filename)
            with zf.open(info) as src:
                _copy_stream(src, path, budget, info.filename, info.file_size)
            if (info.external_attr >> 16) & 0o111:
                path.chmod(0o755)
        for rel, target in links:
            _make_link(root, rel, target, archive)


def _extract_tar(archive: Path, root: Path, limits: Limits) -> None:
    with tarfile.open(archive, "r:*") as tf:
        members = tf.getmembers()  # reads every header: a truncated archive fails here
        budget = _Budget(archive, limits, archive.stat().st_size)
        files: dict[PurePosixPath, tarfile.TarInfo] = {}
        links: list[tuple[PurePosixPath, str]] = []
        hard: list[tuple[PurePosixPath, PurePosixPath]] = []
        for m in members:
            budget.member(m.name)
            rel = member_path(m.name, archive)
            if m.isdev() or m.isfifo():
                raise UnsafeArchive(f"{archive}: member {m.name!r} is a device or FIFO")
            if m.issym():
                links.append((rel, m.linkname))
                _check_link(rel, m.linkname, archive)
            elif m.islnk():
                outside = m.linkname.startswith("/") or ".." in m.linkname.split("/")
                target = PurePosixPath(m.linkname)
                if outside or target not in files:
                    raise UnsafeArchive(
                        f"{archive}: hard link {m.name!r} points outside or to no earlier "
                        f"file: {m.linkname!r}"
                    )
                hard.append((rel, target))
            elif m.isfile():
                files[rel] = m
            elif not m.isdir():
                raise UnsafeArchive(f"{archive}: member {m.name!r} has an unsupported type")
        # tar compresses the stream, not members: check the declared total against it.
        total = sum(m.size for m in files.values())
        if total > limits.max_bytes:
            raise UnsafeArchive(f"{archive}: unpacks to more than {limits.max_bytes} bytes")
        if total > limits.ratio_floor and total > limits.max_ratio * budget.packed_total:
            raise UnsafeArchive(
                f"{archive}: compression ratio above {limits.max_ratio:g}; "
                "raise CKG_ARCHIVE_MAX_RATIO if this archive is trusted"
            )
        for rel, m in files.items():
            path = _target(root, rel, archive, m.name)
            src = tf.extractfile(m)
            _copy_stream(src, path, budget, m.name, m.size)
            if m.mode & 0o111:
                path.chmod(0o755)
        for rel, target in hard:
            # A hard link becomes a copy: links between cache files would share edits.
            path = _target(root, rel, archive, str(rel))
            shutil.copyfile(root.joinpath(*target.parts), path)
        for rel, target in links:
            _make_link(root, rel, target, archive)


def _make_link(root: Path, rel: PurePosixPath, target: str, archive: Path) -> None:
    """Create a symbolic link that stays inside ``root`` once every link is resolved."""
    path = _target(root, rel, archive, str(rel))
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() or path.is_symlink():
        raise UnsafeArchive(f"{archive}: link {str(rel)!r} replaces another member")
    os.symlink(target, path)
    real, real_root = os.path.realpath(path), os.path.realpath(root)
    if real != real_root and not real.startswith(real_root + os.sep):
        path.unlink()
        raise UnsafeArchive(f"{archive}: link {str(rel)!r} points outside: {target!r}")
