"""What produced a run, recorded on the run itself so that no later ingest can change it.

For every executed step the runner keeps, beside its figures:

- the state of its source at run time: the Git commit and whether the tree had changes
  (``source_commit``, ``source_dirty``), for a source that is a Git checkout;
- a manifest of the artifact's folder as executed (relative path -> SHA-256 prefix of each
  file) and its digest (``artifact_digest``), so that two runs name the files that differ;
- the Python distributions of the interpreter that ran (every one, from
  ``importlib.metadata``), as a ``PackageSet`` node keyed by their digest: identical sets are
  one node, and a set never changes once written.

:func:`diff` compares two runs' provenance: the first question when two numbers disagree.
"""

import contextlib
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from ckg.core.records import Node

#: Folders and files of an artifact that are not its content: caches, VCS data, run output.
_SKIP_DIRS = frozenset({"__pycache__", ".git", ".hg", ".svn", ".venv", "node_modules"})
_SKIP_FILES = frozenset({"tmp-run.sh", "tmp-run-env.out", "tmp-run-state.json",
                         "tmp-state.json", "tmp-ver.out", "ckg-run.log"})
#: A manifest lists at most this many files; a larger folder is digested whole and says so.
MANIFEST_FILES = 2000
#: Under ``CKG_HOME``: the lists of installed distributions, one per environment.
PACKAGES_DIR = "packages"
PACKAGE_SETS_KEPT = 8
#: A folder changed this recently may change again unseen (the coarsest common time
#: resolution of a file system, FAT's, is 2 s).
_RACY_NS = 2_000_000_000


def source_state(root: str | Path) -> dict:
    """``{"source_commit", "source_dirty"}`` of a Git checkout at ``root``; ``{}`` when
    ``root`` is not one or git cannot tell."""
    root = Path(root)
    if not (root / ".git").exists() or _foreign_git(root / ".git"):
        return {}
    # fsmonitor is the one setting that makes ``git status`` start a program of its own
    git = ["git", "-c", "core.fsmonitor=false", "-C", str(root)]
    try:
        commit = subprocess.run([*git, "rev-parse", "HEAD"],
                                capture_output=True, text=True, timeout=30)
        status = subprocess.run([*git, "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return {}
    if commit.returncode != 0:
        return {}
    state = {"source_commit": commit.stdout.strip()}
    if status.returncode == 0:
        state["source_dirty"] = bool(status.stdout.strip())
    return state


def _foreign_git(git_dir: Path) -> str | None:
    """Why git must not be run on ``git_dir``: its configuration (which names programs git
    runs: filters, fsmonitor) is another user's or others may write it. Git's own
    ``safe.directory`` looks at the folder's owner only, not at who may write it."""
    from ckg.run.trust import Ownership

    owner = Ownership()
    for path in (git_dir, git_dir / "config"):
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            continue
        except OSError as error:
            return str(error)
        if (why := owner.fault(str(path), info)) or os.path.islink(path):
            return why or f"{path} is a symbolic link"
    return None


def folder_manifest(folder: str | Path) -> dict[str, str]:
    """Relative path -> first 16 hex digits of the SHA-256 of each file under ``folder``
    (sorted; caches, VCS folders and run outputs left out). Past :data:`MANIFEST_FILES`
    files the manifest stops and says so under the key ``"..."``.

    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp()); _ = (d / "a.py").write_text("x = 1\\n")
    >>> folder_manifest(d)
    {'a.py': '9e26bf369911c45c'}
    """
    folder = Path(folder)
    manifest: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
        for name in sorted(filenames):
            if name in _SKIP_FILES:
                continue
            path = Path(dirpath, name)
            if path.is_symlink() or not path.is_file():
                continue
            if len(manifest) >= MANIFEST_FILES:
                manifest["..."] = f"more than {MANIFEST_FILES} files"
                return manifest
            manifest[path.relative_to(folder).as_posix()] = _file_digest(path)
    return manifest


def manifest_digest(manifest: dict[str, str]) -> str:
    """One digest for a whole manifest (paths and contents)."""
    text = json.dumps(manifest, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def installed_packages(home: Path | None = None) -> list[str]:
    """``name==version`` of every distribution of this interpreter, sorted.

    Kept in ``home`` per environment, under a digest of the ``sys.path`` folders that exist
    and their modification times (listing the distributions costs tens of milliseconds): a
    distribution installed, upgraded or removed adds or removes an entry in one of them,
    which changes its time, as ``importlib.metadata`` itself assumes. A folder changed less
    than :data:`_RACY_NS` before the list was taken may change again within its time's
    resolution, unseen: such a list is not kept. The newest :data:`PACKAGE_SETS_KEPT`
    environments are kept (a ``ckg`` command, ``python -m``, a worker each have theirs).
    """
    taken = time.time_ns()
    folders = _site_folders()
    key = hashlib.sha256(json.dumps(folders).encode()).hexdigest()[:32]
    path = Path(home) / PACKAGES_DIR / f"{key}.json" if home else None
    if path is not None:
        try:
            return json.loads(path.read_bytes())["packages"]
        except (OSError, ValueError, KeyError, TypeError):
            pass
    import importlib.metadata

    found = set()
    for dist in importlib.metadata.distributions():
        name = dist.metadata.get("Name") if dist.metadata else None
        if name:
            found.add(f"{name}=={dist.version}")
    packages = sorted(found, key=str.casefold)
    if path is not None and all(mtime < taken - _RACY_NS for _, mtime in folders):
        path.parent.mkdir(mode=0o700, exist_ok=True)
        partial = path.with_name(f".{path.name}.{os.getpid()}")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with open(fd, "w") as out:
            out.write(json.dumps({"folders": folders, "packages": packages}))
        os.replace(partial, path)
        with contextlib.suppress(OSError):  # another command pruning at the same time
            kept = sorted((entry.stat().st_mtime_ns, entry.path)
                          for entry in os.scandir(path.parent) if entry.name.endswith(".json"))
            for _, old in kept[:-PACKAGE_SETS_KEPT]:
                os.unlink(old)
    return packages


def _site_folders() -> list[list]:
    """``[folder, mtime_ns]`` of each ``sys.path`` entry that exists, in order ("" is the
    working folder, which ``importlib.metadata`` searches too)."""
    folders = []
    for entry in sys.path:
        folder = entry or os.getcwd()
        try:
            folders.append([folder, os.stat(folder).st_mtime_ns])
        except OSError:
            continue
    return folders


def package_set_node(packages: list[str]) -> Node:
    """The ``PackageSet`` node of a list of distributions, keyed by its digest.

    >>> package_set_node(["numpy==2.0.0"]).props["count"]
    1
    """
    digest = hashlib.sha256("\n".join(packages).encode()).hexdigest()[:24]
    return Node("PackageSet", f"pkgs:{digest}", {
        "uid": f"pkgs:{digest}", "packages": list(packages), "count": len(packages),
        "python": sys.version.split()[0], "executable": sys.executable,
    })
