"""Sources: one read-only file tree over a Git repository, an archive or a folder.

:func:`open_source` turns what a user names on ``ckg ingest`` into a :class:`SourceTree`:
a folder to read plus its provenance (location, kind, commit, content digest).

- A Git URL, or a local folder with ``.git``, is fetched into ``CKG_HOME/cache/git`` with
  ``git`` (shallow: one commit deep) and checked out at ``ref`` (branch, tag or commit). Its
  ``origin`` is the URL itself, or a local repository's ``origin`` remote
  (:func:`ckg.formats.git.git_origin`), so that a paper's code link finds a local clone too.
- A ``.zip`` / ``.whl`` or a ``.tar``, ``.tar.gz``, ``.tgz``, ``.tar.bz2``, ``.tar.xz`` is
  extracted once into ``CKG_HOME/cache/archives/<sha256>``; a later call with the same
  bytes reuses that folder. Extraction is safe: every member is checked before a byte is
  written (see :class:`ckg.formats.archives.Limits` and
  :func:`ckg.formats.archives.extract_archive`).
- Any other folder is read in place.

Folders and checkouts are read as archives are extracted (:mod:`ckg.formats.files`): a link
that leaves the source is refused with a warning naming it, a link inside is read as its
target, FIFOs, devices and sockets are skipped unopened, and no file is read past the
archive bound.

A source's uid is a digest of its location and ref, so the same repository at two refs
is two sources, and re-ingesting one location updates the same ``Source`` node.
"""

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ckg.core.errors import InvalidInput, NotFound
from ckg.core.records import Problem
from ckg.formats.files import COMPLETE_MARK, TAR_SUFFIXES, VCS_DIRS, ZIP_SUFFIXES, walk_entries
from ckg.formats.git import GIT_URL_PREFIXES, checkout

if TYPE_CHECKING:
    from ckg.formats.archives import Limits

#: Folders never part of a source's content.
SKIP_DIRS = VCS_DIRS | {"__pycache__"}


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
        """Every file below :attr:`root` that may be read (:func:`walk_files`)."""
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
    if (Path(location) / ".git").exists() or is_bare_repository(Path(location)):
        return "git"
    return "dir"


def is_bare_repository(path: Path) -> bool:
    """Whether ``path`` is a bare Git repository (``repo.git``: ``HEAD``, ``objects/`` and
    ``refs/`` at its top, no work tree), which reads like its ``file://`` URL, not like an
    empty folder.

    >>> is_bare_repository(Path("/nonexistent"))
    False
    """
    return (path / "HEAD").is_file() and (path / "objects").is_dir() and (path / "refs").is_dir()


def open_source(
    location: str | Path,
    *,
    ref: str | None = None,
    cache: Path,
    limits: "Limits | None" = None,
    within: tuple[str, ...] = (),
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
    within : tuple of str, optional
        Git only: the folders whose content alone is used, whose entries alone tell an
        unchanged checkout (:func:`ckg.formats.git.checkout`); the whole work tree when empty.

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
        return _open_git(url, ref, cache / "git", within)
    path = _existing(text)
    if ref:
        raise InvalidInput(f"--ref {ref!r} applies to Git sources only, not to {path}")
    if kind == "dir":
        if not path.is_dir():
            raise InvalidInput(f"{path} is neither a folder, a Git repository nor an archive")
        return SourceTree(source_uid(str(path)), str(path), "dir", path)
    from ckg.formats.archives import Limits, extract_archive  # the zip, tar, bz2... modules

    digest = file_digest(path)
    root = cache / "archives" / digest[:32]
    if not (root / COMPLETE_MARK).exists():
        extract_archive(path, root, kind=kind, limits=limits or Limits.from_env())
    return SourceTree(source_uid(str(path)), str(path), kind, root, digest=digest)


def file_digest(path: Path) -> str:
    """sha256 of a file's bytes, read in 1 MiB chunks."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def walk_files(root: Path, refused: list[Problem] | None = None) -> Iterator[os.DirEntry]:
    """Files below ``root`` that may be read, depth first, VCS folders skipped.

    Regular files, and links that end at one inside ``root`` (their ``stat()`` is the
    target's); links that lead out, FIFOs, devices, sockets and names that are not valid
    UTF-8 are left out, each added to ``refused`` (:func:`ckg.formats.files.walk`).
    """
    for _, _, entries in walk_entries(root, SKIP_DIRS, refused):
        for entry in entries:
            if entry.name != COMPLETE_MARK:
                yield entry


def _existing(text: str) -> Path:
    path = Path(text).expanduser()
    if not path.exists():
        raise NotFound(f"source {text!r} does not exist")
    return path.resolve()


def _open_git(url: str, ref: str, cache: Path, within: tuple[str, ...]) -> SourceTree:
    """Fetch ``ref`` of ``url`` one commit deep into a cache folder and check it out."""
    repo, commit, origin = checkout(url, ref, cache, within)
    return SourceTree(source_uid(url, ref), url, "git", repo, ref, commit, commit, origin)
