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
        A ``git`` command failed (unknown ref, unreachable remote).
    """
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
    return repo, commit, origin


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
