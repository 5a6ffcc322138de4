"""Git: a repository fetched into a cache folder, and a local repository's ``origin``.

:func:`checkout` fetches one ref of a Git URL or a local repository with ``git`` (shallow:
one commit deep) into ``CKG_HOME/cache/git`` and checks it out. :func:`git_origin` reads a
local repository's ``origin`` remote from its config, so that a paper's code link finds a
local clone too.
"""

import hashlib
import os
import re
import subprocess
from pathlib import Path

from ckg.errors import InvalidInput

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


def checkout(url: str, ref: str, cache: Path) -> tuple[Path, str, str]:
    """Fetch ``ref`` of ``url`` one commit deep into a cache folder and check it out.

    Parameters
    ----------
    url : str
        A Git URL, or the absolute path of a local repository.
    ref : str
        Branch, tag or commit; "" for the remote's default branch.
    cache : Path
        Folder holding one clone per URL (``CKG_HOME/cache/git``).

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
    _git(repo, "checkout", "-q", "--force", "--detach", want)
    _git(repo, "clean", "-q", "-ffdx")
    commit = _git(repo, "rev-parse", "HEAD")
    origin = url if remote == url else git_origin(Path(url))
    return repo, commit, origin


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
    ckg.errors.InvalidInput: Git ref '--upload-pack=touch x' of /r refused: it starts with '-' \
(git would read it as an option)
    >>> check_ref("main:refs/heads/x")
    Traceback (most recent call last):
    ckg.errors.InvalidInput: Git ref 'main:refs/heads/x' refused: not a branch, tag or commit name
    """
    where = f" of {url}" if url else ""
    if ref.startswith("-"):
        raise InvalidInput(
            f"Git ref {ref!r}{where} refused: it starts with '-' (git would read it as an option)"
        )
    if ref and (ref.startswith(("+", "/")) or ref.endswith(("/", ".")) or ref == "@"
                or _BAD_REF.search(ref)):
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
    ckg.errors.InvalidInput: Git URL 'ssh://-oProxyCommand=touch%20x/r' refused: its host starts \
with '-' (ssh would read it as an option)
    >>> check_url("ext::sh -c touch% x")
    Traceback (most recent call last):
    ckg.errors.InvalidInput: Git URL 'ext::sh -c touch% x' refused: neither a local path nor \
https://, http://, git://, ssh://, git@, file://
    """
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        raise InvalidInput(f"Git URL {url!r} refused: it holds a control character")
    if not url.lower().startswith(GIT_URL_PREFIXES):
        if not url.startswith("/"):  # a local repository, resolved to an absolute path
            raise InvalidInput(f"Git URL {url!r} refused: neither a local path nor "
                               + ", ".join(GIT_URL_PREFIXES))
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
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true",
           "GIT_ALLOW_PROTOCOL": _PROTOCOLS}
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, env=env)
    if done.returncode:
        message = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise InvalidInput(f"git {args[0]} failed: {message}")
    return done.stdout.strip()
