"""Archives: safe extraction of zip / whl and tar files into a cache folder.

:func:`extract_archive` unpacks a ``.zip`` / ``.whl`` or a ``.tar``, ``.tar.gz``, ``.tgz``,
``.tar.bz2``, ``.tar.xz`` into a folder, or raises and leaves nothing behind. Every member is
checked before a byte is written: its name (:func:`member_path`: no absolute name, no ``..``),
its type (no device or FIFO), where its link points, and the bomb bounds of :class:`Limits`
(total bytes, member count, compression ratio; a tar's members are counted before tarfile
reads them). Links are made last and each is resolved again in the finished tree, however
many other links it passes through. A finished folder holds :data:`COMPLETE_MARK`, so that a
later call with the same bytes can reuse it (:func:`ckg.formats.sources.open_source`).
"""

import bz2
import gzip
import lzma
import os
import shutil
import stat
import tarfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ckg.core.errors import ArchiveTooLarge, InvalidInput, UnsafeArchive
from ckg.formats.files import COMPLETE_MARK, MAX_BYTES

#: What the zip, tar and decompression modules raise on damaged input (bz2 and gzip raise
#: OSError; a truncated stream raises EOFError; a zip whose names are flagged UTF-8 and are
#: not raises UnicodeDecodeError).
_CORRUPT = (
    zipfile.BadZipFile,
    tarfile.TarError,
    EOFError,
    OSError,
    zlib.error,
    lzma.LZMAError,
    UnicodeDecodeError,
)


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds that stop an archive bomb before it fills the disk.

    Defaults: 1 GiB unpacked in total, 100,000 members, and a compression ratio of at most
    200 (unpacked / packed), checked per member once it unpacks to more than 1 MiB and over
    the whole archive. Each can be set with ``CKG_ARCHIVE_MAX_BYTES``,
    ``CKG_ARCHIVE_MAX_MEMBERS`` and ``CKG_ARCHIVE_MAX_RATIO``, or passed to
    :func:`ckg.formats.sources.open_source`.
    """

    max_bytes: int = MAX_BYTES
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
        (tmp / COMPLETE_MARK).write_text(archive.name)
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
    ckg.core.errors.UnsafeArchive: a.zip: member '../evil' would land outside the extraction root
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
    """Counts unpacked bytes and members against :class:`Limits`: past one, ArchiveTooLarge."""

    def __init__(self, archive: Path, limits: Limits, packed_total: int):
        self.archive, self.limits, self.packed_total = archive, limits, max(packed_total, 1)
        self.bytes = 0
        self.members = 0

    def member(self, name: str) -> None:
        self.members += 1
        if self.members > self.limits.max_members:
            raise ArchiveTooLarge(
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
            raise ArchiveTooLarge(
                f"{self.archive}: unpacks to more than {limits.max_bytes} bytes (at {name!r}); "
                "raise CKG_ARCHIVE_MAX_BYTES if this archive is trusted"
            )
        if self.bytes > limits.ratio_floor and self.bytes > limits.max_ratio * self.packed_total:
            raise ArchiveTooLarge(
                f"{self.archive}: compression ratio above {limits.max_ratio:g} (at {name!r}); "
                "raise CKG_ARCHIVE_MAX_RATIO if this archive is trusted"
            )


class _Folders:
    """Where members go under ``root``, each folder made, and its real path checked to lie
    inside ``root``, once: a folder's real path cannot change while no member link exists, so
    one instance serves every file and hard link, and each symbolic link gets its own
    (:func:`_make_link`). Resolving the real path per file cost about ten ``lstat`` calls a
    member, half of extracting a wheel.
    """

    def __init__(self, root: Path, archive: Path):
        self.root, self.archive = root, archive
        self.real_root = os.path.realpath(root)
        self.made: set[Path] = set()

    def target(self, rel: PurePosixPath, name: str) -> Path:
        """``root / rel``, its folder made, after checking that the folder is inside ``root``."""
        path = self.root.joinpath(*rel.parts)
        folder = path.parent
        if folder not in self.made:
            real = os.path.realpath(folder)
            if real != self.real_root and not real.startswith(self.real_root + os.sep):
                raise UnsafeArchive(
                    f"{self.archive}: member {name!r} would land outside the extraction root"
                )
            folder.mkdir(parents=True, exist_ok=True)
            self.made.add(folder)
        if path.is_symlink():
            raise UnsafeArchive(f"{self.archive}: member {name!r} would be written through a link")
        return path


def _copy_stream(src, path: Path, budget: _Budget, name: str, declared: int) -> None:
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
        files: list[tuple[zipfile.ZipInfo, PurePosixPath]] = []
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
            if not (info.is_dir() or stat.S_ISLNK(mode)):
                files.append((info, rel))
        folders = _Folders(root, archive)
        for info, rel in files:
            path = folders.target(rel, info.filename)
            with zf.open(info) as src:
                _copy_stream(src, path, budget, info.filename, info.file_size)
            if (info.external_attr >> 16) & 0o111:
                path.chmod(0o755)
        _make_links(root, links, archive)


def _extract_tar(archive: Path, root: Path, limits: Limits) -> None:
    _count_tar_members(archive, _Budget(archive, limits, 0))
    with tarfile.open(archive, "r:*") as tf:
        budget = _Budget(archive, limits, archive.stat().st_size)
        files: dict[PurePosixPath, tarfile.TarInfo] = {}
        links: list[tuple[PurePosixPath, str]] = []
        hard: list[tuple[PurePosixPath, PurePosixPath]] = []
        for m in tf:  # header by header, so that the member limit applies as they are read
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
        folders = _Folders(root, archive)
        for rel, m in files.items():
            path = folders.target(rel, m.name)
            src = tf.extractfile(m)
            _copy_stream(src, path, budget, m.name, m.size)
            if m.mode & 0o111:
                path.chmod(0o755)
        for rel, target in hard:
            # A hard link becomes a copy: links between cache files would share edits.
            path = folders.target(rel, str(rel))
            shutil.copyfile(root.joinpath(*target.parts), path)
        _make_links(root, links, archive)


def _make_links(root: Path, links: list[tuple[PurePosixPath, str]], archive: Path) -> None:
    """Create every symbolic link, then check where each one leads in the finished tree.

    A link is judged only once all exist: each link of a chain can point inside when it is
    made (``a -> d/l/..`` before ``d/l -> ../..`` exists) while the chain leads out.
    """
    paths = [_make_link(root, rel, target, archive) for rel, target in links]
    real_root = os.path.realpath(root)
    for (rel, target), path in zip(links, paths, strict=True):
        # normpath: realpath leaves a symlink loop's remaining ".." unresolved
        real = os.path.normpath(os.path.realpath(path))
        if real != real_root and not real.startswith(real_root + os.sep):
            raise UnsafeArchive(f"{archive}: link {str(rel)!r} points outside: {target!r}")


def _make_link(root: Path, rel: PurePosixPath, target: str, archive: Path) -> Path:
    """Create one symbolic link at ``rel``; :func:`_make_links` checks where it leads."""
    path = _Folders(root, archive).target(rel, str(rel))
    if path.exists() or path.is_symlink():
        raise UnsafeArchive(f"{archive}: link {str(rel)!r} replaces another member")
    os.symlink(target, path)
    return path


#: Tar header types that describe the member after them (pax and GNU long names, links).
_TAR_PREFIX_TYPES = frozenset(b"xgLK")
_TAR_BLOCK = 512


def _count_tar_members(archive: Path, budget: _Budget) -> None:
    """Refuse a tar with too many members after reading no more headers than the limit.

    tarfile builds a TarInfo (about 500 bytes, 25 µs) per header and keeps them all: a tar of
    a million empty files would cost half a gigabyte and most of a minute before any limit
    applied. Here each header is only read for its type and size, and its data skipped.
    Counting stops quietly at anything unusual (no ustar magic, a base-256 size, GNU sparse
    data): the tarfile pass that follows enforces the same limit, header by header.
    """
    with _decompressed(archive) as stream:
        while len(header := stream.read(_TAR_BLOCK)) == _TAR_BLOCK:
            size = _tar_header_size(header)
            if size is None:
                return
            if header[156] not in _TAR_PREFIX_TYPES:
                budget.member(header[:100].split(b"\0", 1)[0].decode("utf-8", "replace"))
            if size:
                stream.seek(-(-size // _TAR_BLOCK) * _TAR_BLOCK, os.SEEK_CUR)


def _tar_header_size(header: bytes) -> int | None:
    """The data size a POSIX or GNU tar header declares, or None where counting must stop.

    The magic stands in for the checksum, whose sum over 512 bytes would cost more than all
    the rest. Only an archive whose sizes lie can be miscounted, and a miscount can only
    refuse it early: tarfile counts again.
    """
    if header[257:262] != b"ustar" or header[156:157] == b"S" or header[124] & 0x80:
        return None  # also the end-of-archive zero block; GNU sparse; a base-256 size
    try:
        return int(header[124:136].split(b"\0", 1)[0].strip() or b"0", 8)
    except ValueError:
        return None


def _decompressed(archive: Path):
    """The archive's bytes as a tar reader sees them: gzip, bzip2 and xz by magic number."""
    with open(archive, "rb") as f:
        magic = f.read(6)
    if magic.startswith(b"\x1f\x8b"):
        return gzip.open(archive)
    if magic.startswith(b"BZh"):
        return bz2.open(archive)
    if magic.startswith(b"\xfd7zXZ\x00"):
        return lzma.open(archive)
    return open(archive, "rb")
