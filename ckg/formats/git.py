"""Git: a repository fetched into a cache folder, and a local repository's ``origin``.

:func:`checkout` fetches one ref of a Git URL or a local repository with ``git`` (shallow:
one commit deep) into ``CKG_HOME/cache/git`` and checks it out. :func:`git_origin` reads a
local repository's ``origin`` remote from its config, so that a paper's code link finds a
local clone too.

Each checkout is recorded in the clone's ``.git/ckg-checkout.json`` (the user's private
cache, 0600): the commit, whether ``git status`` found changes, and a stamp of what git
itself would look at, read without spawning it (:func:`_tree_stamp`): the size, times,
inode and mode of every work tree entry (as git's index keeps them), the bytes of ``HEAD``,
the index and the config, and git's own settings. While the stamp is unchanged,
so is the checkout: a file written, touched, replaced, added or removed changes its ctime
or its folder's (a folder's times change with its listing, so the entries recorded are
stat'ed again without listing any folder), and an entry not strictly older than the
record's own file is never taken as unchanged (git's "racy" entries). A run names the
folders of the artifacts it runs: the record keeps a digest of each folder's entries, so
that only those are stat'ed again (with ``.git``'s ``HEAD``, index and config); a change
elsewhere in the checkout does not change the code the run takes from them, which is then
as git last reported it (the record's commit and ``dirty``). For a local
repository (a path or a ``file://`` URL) the record also keeps the bytes of the upstream's
``HEAD``, refs and config: while they and the stamp are unchanged, a fetch would bring the
same commit, and :func:`checkout` spawns no ``git`` at all.
"""

import bisect
import hashlib
import json
import marshal
import os
import re
import subprocess
from pathlib import Path
from typing import NamedTuple

from ckg.core.errors import InvalidInput

GIT_URL_PREFIXES = ("https://", "http://", "git://", "ssh://", "git@", "file://")
#: The transports git may use, and no other (``ext::`` runs a command): those of
#: :data:`GIT_URL_PREFIXES`, ``git@host:path`` being ssh.
_PROTOCOLS = "https:http:git:ssh:file"
# What ``git check-ref-format --allow-onelevel`` refuses anywhere in a ref: control
# characters, space, ``~ ^ : ? * [ \``, ``..``, ``@{``, ``//``, a component starting with ``.``
# or ending with ``.lock``.
_BAD_REF = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]|\.\.|@\{|//|(?:^|/)\.|\.lock(?:/|$)")
#: A Git config section header: ``[name]``, ``[name "sub"]``, ``[name.sub]``.
_SECTION = re.compile(r'^\[\s*([\w.-]+)(?:\s+"((?:[^"\\]|\\.)*)")?\s*\]')


def checkout(
    url: str, ref: str, cache: Path, within: tuple[str, ...] = ()
) -> tuple[Path, str, str]:
    """Fetch ``ref`` of ``url`` one commit deep into a cache folder and check it out.

    Parameters
    ----------
    url : str
        A Git URL, or the absolute path of a local repository.
    ref : str
        Branch, tag or commit; "" for the remote's default branch.
    cache : Path
        Folder holding one clone per URL (``CKG_HOME/cache/git``).
    within : tuple of str, optional
        Folders of the repository (relative, "/"-separated) whose content alone is used: an
        unchanged checkout is then told by their entries only (see the module's text); the
        whole work tree when empty or when one of them is "" or not a folder recorded.

    Returns
    -------
    tuple of (Path, str, str)
        The checked-out folder, its commit, and its origin: ``url`` itself for a URL, a local
        repository's ``origin`` remote (:func:`git_origin`) otherwise, "" when it has none.

    Raises
    ------
    InvalidInput
        A ``git`` command failed (unknown ref, unreachable remote), or ``url`` or ``ref`` is
        refused by :func:`check_url` or :func:`check_ref`.
    """
    check_url(url)
    check_ref(ref, url)
    repo = cache / hashlib.sha256(url.encode()).hexdigest()[:16]
    # A local path is fetched over file:// so that --depth is honoured.
    remote = url if url.lower().startswith(GIT_URL_PREFIXES) else Path(url).as_uri()
    origin = url if remote == url else git_origin(Path(url))
    # Read before the fetch: a change after it makes the record older than the upstream.
    local = _local_folder(remote)
    upstream = None if local is None else _upstream_stamp(local)
    kept = last_checkout(repo)
    if (
        kept
        and kept["url"] == url
        and kept["ref"] == ref
        and upstream is not None
        and kept["upstream"] == upstream
        and _unchanged(repo, kept, within)
    ):
        return repo, kept["commit"], origin
    if kept:  # from here on, a record says what this checkout left, or there is none
        (repo / ".git" / STATE_FILE).unlink(missing_ok=True)
    if not (repo / ".git").is_dir():
        repo.mkdir(parents=True, exist_ok=True)
        _git(repo, "init", "-q")
        _git(repo, "remote", "add", "--", "origin", remote)
    want = ref or "HEAD"
    try:
        _git(repo, "fetch", "-q", "--depth", "1", "--no-tags", "--", "origin", want)
    except InvalidInput:
        # Some servers refuse a shallow fetch of a bare commit id; fetch everything instead.
        _git(repo, "fetch", "-q", "--tags", "--", "origin")
        want = _git(repo, "rev-parse", "--verify", "-q", "--end-of-options", f"{ref}^{{commit}}")
    else:
        want = "FETCH_HEAD"
    state = {"url": url, "ref": ref, "upstream": upstream}
    stamp = _as_kept(repo, kept) if kept and kept["commit"] == _fetched(repo, want) else None
    if stamp:  # the same commit, the copy as it was left
        _record(repo, {**state, "commit": kept["commit"], "dirty": kept["dirty"]}, stamp)
        return repo, kept["commit"], origin
    _git(repo, "checkout", "-q", "--force", "--detach", want)
    _git(repo, "clean", "-q", "-ffdx")
    commit, dirty = _status(repo)
    _record(repo, {**state, "commit": commit, "dirty": dirty})
    return repo, commit, origin


#: The record of the last checkout of a clone, in its ``.git`` (see the module's text).
STATE_FILE = "ckg-checkout.json"
_records: dict[Path, tuple[tuple, dict]] = {}


def last_checkout(repo: Path) -> dict | None:
    """What :func:`checkout` left in ``repo``: ``url``, ``ref``, ``commit``, ``dirty``
    (changes ``git status`` saw right after it), the ``upstream`` and work tree stamps and
    the ``paths`` of the entries stamped (sorted), the digest of each folder's entries
    (``folders``) and of ``.git``'s state (``git``); None when there is no record (or one
    written before a record had all of these); the dict is shared, not to be changed. Not
    verified here: right after :func:`checkout` it holds, later it holds while
    :func:`_tree_stamp` of its ``paths`` gives its ``stamp``."""
    path = repo / ".git" / STATE_FILE
    try:
        info = os.stat(path)
        # Parsed once per process while the file is the same (a record is replaced whole):
        # a run reads it when it checks the copy and again for its state, 1 ms each.
        seen = (info.st_ino, info.st_mtime_ns, info.st_size)
        if _records.get(path, (None,))[0] != seen:
            _records[path] = (seen, json.loads(path.read_bytes()))
        record = _records[path][1]
    except (OSError, ValueError):
        return None
    keys = {"url", "ref", "upstream", "commit", "dirty", "stamp", "paths", "folders", "git"}
    if not (isinstance(record, dict) and keys <= record.keys()):
        return None
    # Of the form this module writes, or none (another version's record is checked by git).
    shaped = isinstance(record["paths"], list) and isinstance(record["folders"], dict)
    return record if shaped else None


def _unchanged(repo: Path, kept: dict, within: tuple[str, ...]) -> bool:
    """Whether the entries of ``repo`` in the folders ``within`` (the whole work tree when
    empty, or when one is "" or a folder the record ``kept`` does not list), and ``.git``'s
    state, are as ``kept`` recorded them."""
    folders = kept["folders"]
    if not within or not all(folder in folders for folder in within):
        return _as_kept(repo, kept) is not None
    for folder in within:
        paths = kept["paths"]
        found = _entries(repo, [folder, *paths[_inside(paths, folder)]])
        if found is None or _digest(found[0]) != folders[folder]:
            return False
    return _git_state(repo) == kept["git"]


def _as_kept(repo: Path, kept: dict) -> "Stamp | None":
    """The stamp of ``repo``'s entries that the record ``kept`` lists, when it is the one
    recorded; None when the checkout changed since."""
    stamp = _tree_stamp(repo, kept["paths"])
    return stamp if stamp and stamp.digest == kept["stamp"] else None


def _record(repo: Path, state: dict, stamp: "Stamp | None" = None) -> None:
    """Write ``state`` with the stamp of ``repo`` as its record, unless an entry is racy:
    changed no earlier than the record's file was made (same file system, same clock), so
    that a later change in the same clock tick would leave its times as recorded. A
    ``stamp`` given is one found equal to an earlier record's: its entries are older."""
    path = repo / ".git" / STATE_FILE
    partial = path.with_name(f".{STATE_FILE}.{os.getpid()}")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    written = False
    try:
        made = os.fstat(fd).st_mtime_ns
        found = stamp or _tree_stamp(repo)  # None: an entry went while it was listed
        if found and found.newest < made:
            os.write(
                fd,
                json.dumps(
                    {
                        **state,
                        "stamp": found.digest,
                        "paths": found.paths,
                        "folders": _folder_digests(found.paths, found.entries),
                        "git": found.git,
                    }
                ).encode(),
            )
            written = True
    finally:
        os.close(fd)
        if not written:
            partial.unlink()
    if written:
        os.replace(partial, path)


class Stamp(NamedTuple):
    """What :func:`_tree_stamp` found: its ``digest``, the ``newest`` mtime or ctime of the
    work tree's entries (ns), their ``paths`` (relative to the repository, "" for itself)
    and ``entries`` (what was stat'ed of each, in the same order), and the digest of
    ``.git``'s state (``git``, :func:`_git_state`)."""

    digest: str
    newest: int
    paths: list[str]
    entries: list[tuple]
    git: str


def _tree_stamp(repo: Path, paths: list[str] | None = None) -> Stamp | None:
    """A digest of what git looks at to tell the state of the checkout ``repo``, with what
    it was made of (:class:`Stamp`).

    Every entry from ``repo`` down but ``.git``'s content: path, mode, inode, size, mtime
    and ctime (``.git`` itself: path and inode); the bytes of ``.git/HEAD``, the index and
    the config; git's own settings (:func:`_git_settings`). The entries are found by
    listing every folder, or are ``paths`` (a record's): a folder's times change whenever
    an entry is added to, removed from or renamed in it, so stat'ing the entries recorded,
    folders included, finds every change the listing would; None when one of them is gone.
    """
    root = str(repo)
    git_dir = f"{root}/.git"
    if paths is None:
        paths, folders = [""], [root]
        while folders:
            with os.scandir(folders.pop()) as listing:
                for entry in listing:
                    paths.append(entry.path[len(root) + 1 :])
                    # The listing's type (no stat); nothing below .git.
                    if entry.is_dir(follow_symlinks=False) and entry.path != git_dir:
                        folders.append(entry.path)
        paths.sort()  # a folder's entries then lie together (:func:`_inside`)
    found = _entries(repo, paths)
    if found is None:
        return None
    entries, newest = found
    git = _git_state(repo)
    return Stamp(_digest(entries, git), newest, paths, entries, git)


def _entries(repo: Path, paths: list[str]) -> tuple[list[tuple], int] | None:
    """What git's index keeps of each of ``paths`` of the work tree ``repo`` (relative, ""
    for itself): path, mode, inode, size, mtime and ctime (``.git`` itself: path and
    inode), and the newest of those times (ns); None when one of them is gone."""
    root = str(repo)
    entries, newest = [], 0
    # Each entry stat'ed from the open root: the kernel then walks its path from there, not
    # from /, a quarter of the time over CM's 3,300 entries.
    try:
        root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return None
    try:
        for path in paths:
            full = f"{root}/{path}" if path else root
            try:
                info = os.lstat(path, dir_fd=root_fd) if path else os.lstat(root)
            except OSError:  # gone, or a folder on its way is not one now
                return None
            if path == ".git":
                entries.append((full, info.st_ino))
                continue
            entries.append(
                (full, info.st_mode, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)
            )
            newest = max(newest, info.st_mtime_ns, info.st_ctime_ns)
    finally:
        os.close(root_fd)
    return entries, newest


def _digest(entries: list[tuple], git: str = "") -> str:
    """The digest of ``entries`` (:func:`_entries`) and of ``.git``'s state ``git``: 128
    bits, which tell a change (a record has one per folder, which a run reads)."""
    # Version 2: its bytes depend on the values alone (later versions mark objects held
    # twice, so that the same entries held by another list would give another digest).
    return hashlib.sha256(marshal.dumps(entries, 2) + git.encode()).hexdigest()[:32]


def _git_state(repo: Path) -> str:
    """A digest of what tells git the commit and the index of ``repo``: ``.git``'s inode,
    the bytes of its ``HEAD``, index and config, and git's own settings."""
    git_dir = repo / ".git"
    try:
        digest = hashlib.sha256(b"%d" % os.lstat(git_dir).st_ino)
    except OSError:
        return ""
    _hash_files(digest, [git_dir / name for name in ("HEAD", "index", "config")])
    digest.update(_git_settings())
    return digest.hexdigest()


def _inside(paths: list[str], folder: str) -> slice:
    """Where the paths below ``folder`` lie in the sorted ``paths``.

    >>> paths = ["", "a", "a-b", "a/x", "a/y/z", "b"]
    >>> paths[_inside(paths, "a")]
    ['a/x', 'a/y/z']
    """
    # They follow "folder/" and precede "folder0" ("0" sorts right after "/").
    return slice(bisect.bisect_left(paths, folder + "/"), bisect.bisect_left(paths, folder + "0"))


def _folder_digests(paths: list[str], entries: list[tuple]) -> dict[str, str]:
    """The digest of the entries (:func:`_entries`) of each folder among the sorted ``paths``,
    itself and all below it, but ``.git`` and the work tree's root (the whole)."""
    import stat

    return {
        path: _digest([entry, *entries[_inside(paths, path)]])
        for path, entry in zip(paths, entries, strict=True)
        if path and path != ".git" and stat.S_ISDIR(entry[1])
    }


def _local_folder(remote: str) -> Path | None:
    """The folder of this host that a ``file://`` URL names (a local path is fetched as
    one), whose state can be read without ``git``; None for any other URL.

    >>> _local_folder("file:///srv/my%20repo"), _local_folder("https://host/repo")
    (PosixPath('/srv/my repo'), None)
    """
    from urllib.parse import unquote, urlsplit

    parts = urlsplit(remote)
    if parts.scheme.lower() != "file" or parts.netloc not in ("", "localhost"):
        return None
    return Path(unquote(parts.path))


def _upstream_stamp(path: Path) -> str:
    """A digest of what a fetch from the local repository ``path`` resolves a ref with: its
    ``HEAD``, refs and config (bytes), and git's own settings; the same digest, the same
    commit fetched (objects are named by their content)."""
    # A worktree's HEAD is in its own folder, the refs and config in the shared one.
    git_dir = _git_dir(path / ".git", common=False) if (path / ".git").exists() else path
    common = _git_dir(git_dir)
    digest = hashlib.sha256(f"{git_dir}\0{common}".encode())
    _hash_files(
        digest,
        [
            git_dir / "HEAD",
            *(common / name for name in ("packed-refs", "config", "reftable/tables.list")),
        ],
    )
    for top in dict.fromkeys((git_dir / "refs", common / "refs")):
        for folder, subfolders, files in os.walk(top):
            subfolders.sort()
            _hash_files(digest, [Path(folder, name) for name in sorted(files)])
    digest.update(_git_settings())
    return digest.hexdigest()


def _hash_files(digest, paths: list[Path]) -> None:
    """Add the path and bytes of each of ``paths`` to ``digest``."""
    for path in paths:
        digest.update(b"\0%s\0%s" % (str(path).encode(), _bytes(path)))


def _git_settings() -> bytes:
    """git's settings outside the repository, which change what it fetches or reports:
    the ``GIT_*`` environment and the global and system config files (bytes)."""
    home = Path.home()
    xdg = os.environ.get("XDG_CONFIG_HOME") or home / ".config"
    files = (
        os.environ.get("GIT_CONFIG_GLOBAL") or home / ".gitconfig",
        Path(xdg) / "git" / "config",
        os.environ.get("GIT_CONFIG_SYSTEM") or "/etc/gitconfig",
    )
    env = sorted((k, v) for k, v in os.environ.items() if k.startswith("GIT_"))
    return json.dumps(env).encode() + b"".join(b"\0" + _bytes(Path(f)) for f in files)


def _bytes(path: Path) -> bytes:
    """The bytes of ``path``; a mark that cannot be a file's bytes when it cannot be read."""
    try:
        return path.read_bytes()
    except OSError as error:
        return f"\0{type(error).__name__}".encode()


def _fetched(repo: Path, want: str) -> str:
    """The object ``want`` names after a fetch: itself, or for ``FETCH_HEAD`` the one a fetch
    of one ref left there (a tag's object, not its commit, for an annotated tag)."""
    if want != "FETCH_HEAD":
        return want
    return _bytes(repo / ".git" / "FETCH_HEAD").split(b"\t", 1)[0].decode(errors="replace")


def _status(repo: Path) -> tuple[str, bool]:
    """The commit checked out in ``repo`` and whether git sees changes to its tracked files,
    from one ``git status``."""
    out = _git(repo, "status", "--porcelain=v2", "--branch", "--untracked-files=no")
    lines = out.splitlines()
    commit = next(line.split()[2] for line in lines if line.startswith("# branch.oid "))
    return commit, any(not line.startswith("#") for line in lines)


def check_ref(ref: str, url: str = "") -> str:
    """``ref`` if it is a Git branch, tag or commit name that ``git`` cannot read as anything
    else; InvalidInput otherwise.

    A ref comes from ``--ref`` or from a Source in the graph (anyone who can write a shared
    graph can set it), and is passed to ``git fetch``: one that starts with ``-`` would be
    an option (``--upload-pack=CMD`` runs CMD), one with ``:`` or a leading ``+`` a refspec
    that writes the cache's own refs. The rules are ``git check-ref-format
    --allow-onelevel``'s, checked here without spawning it. "" (the default branch) passes.

    >>> check_ref("v1.0"), check_ref("refs/pull/12/head"), check_ref("")
    ('v1.0', 'refs/pull/12/head', '')
    >>> check_ref("--upload-pack=touch x", "/r")
    Traceback (most recent call last):
    ckg.core.errors.InvalidInput: Git ref '--upload-pack=touch x' of /r refused: it starts with \
'-' \
(git would read it as an option)
    >>> check_ref("main:refs/heads/x")
    Traceback (most recent call last):
    ckg.core.errors.InvalidInput: Git ref 'main:refs/heads/x' refused: not a branch, tag or commit \
name
    """
    where = f" of {url}" if url else ""
    if ref.startswith("-"):
        raise InvalidInput(
            f"Git ref {ref!r}{where} refused: it starts with '-' (git would read it as an option)"
        )
    if ref and (
        ref.startswith(("+", "/")) or ref.endswith(("/", ".")) or ref == "@" or _BAD_REF.search(ref)
    ):
        raise InvalidInput(f"Git ref {ref!r}{where} refused: not a branch, tag or commit name")
    return ref


def check_url(url: str) -> str:
    """``url`` if it is a Git URL of an allowed scheme (:data:`GIT_URL_PREFIXES`) or a local
    path that no program can read as an option; InvalidInput otherwise.

    ``git`` itself refuses ``ssh://-oProxyCommand=...`` and its kin; refusing them here too
    keeps that guarantee from depending on the git version installed.

    >>> check_url("https://github.com/mlcommons/cm4mlops"), check_url("git@github.com:a/b")
    ('https://github.com/mlcommons/cm4mlops', 'git@github.com:a/b')
    >>> check_url("ssh://-oProxyCommand=touch%20x/r")
    Traceback (most recent call last):
    ckg.core.errors.InvalidInput: Git URL 'ssh://-oProxyCommand=touch%20x/r' refused: its host \
starts \
with '-' (ssh would read it as an option)
    >>> check_url("ext::sh -c touch% x")
    Traceback (most recent call last):
    ckg.core.errors.InvalidInput: Git URL 'ext::sh -c touch% x' refused: neither a local path nor \
https://, http://, git://, ssh://, git@, file://
    """
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        raise InvalidInput(f"Git URL {url!r} refused: it holds a control character")
    if not url.lower().startswith(GIT_URL_PREFIXES):
        if not url.startswith("/"):  # a local repository, resolved to an absolute path
            raise InvalidInput(
                f"Git URL {url!r} refused: neither a local path nor " + ", ".join(GIT_URL_PREFIXES)
            )
        return url
    # git@host:path is ssh's [user@]host:path; otherwise scheme://[user@]host[:port]/path.
    rest = url.partition("@")[2] if url.startswith("git@") else url.partition("://")[2]
    authority = rest.partition(":" if url.startswith("git@") else "/")[0]
    user, _, host = authority.rpartition("@")
    for part, name in ((host, "host"), (user, "user name")):
        if part.startswith("-"):
            raise InvalidInput(
                f"Git URL {url!r} refused: its {name} starts with '-' (ssh would read it as "
                "an option)"
            )
    return url


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


def _git_dir(dot_git: Path, common: bool = True) -> Path:
    """The Git folder a ``.git`` entry names: itself, or the ``gitdir:`` of a ``.git`` file;
    with ``common``, a worktree's shared folder (its ``commondir``), which holds the config
    and the refs (a worktree's ``HEAD`` is in its own)."""
    if dot_git.is_file():
        try:
            target = dot_git.read_text(errors="replace").strip().removeprefix("gitdir:").strip()
        except OSError:
            return dot_git
        dot_git = (dot_git.parent / target).resolve()
    shared = dot_git / "commondir"
    if common and shared.is_file():
        return (dot_git / shared.read_text(errors="replace").strip()).resolve()
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
    env = {
        **os.environ,
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_ASKPASS": "true",
        "GIT_ALLOW_PROTOCOL": _PROTOCOLS,
    }
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, env=env)
    if done.returncode:
        message = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise InvalidInput(f"git {args[0]} failed: {message}")
    return done.stdout.strip()
