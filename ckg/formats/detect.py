"""Find which artifact formats a file tree holds, folder by folder, without parsing anything.

One walk of the tree looks at file names only, so a tree of a few hundred artifacts is
scanned in milliseconds. One source may mix formats: each folder is classified on its own.

- ``cm``: every ``_cm.yaml`` / ``_cm.json``, and ``cmr.yaml`` repository descriptors.
- ``ck``: every ``<module>/<alias>/.cm/meta.json``, and ``.ckr.json`` repository descriptors.
- ``mlc``: every ``<automation>/<alias>/meta.yaml|meta.json`` whose automation folder is
  named ``script`` or sits beside a repository-root ``meta.yaml``; those root ``meta.yaml``
  files (the repository descriptors) are listed too. A lone ``meta.yaml`` elsewhere (a conda
  recipe, say) is not MLC.
- ``generic``: ``pyproject.toml``, ``setup.py``, ``setup.cfg``, ``requirements*.txt``,
  ``environment.yml``, ``CITATION.cff`` and ``README*`` files that are not inside a CM, MLC
  or CK artifact folder (those belong to the artifact).
- ``notebook``: every ``*.ipynb`` (``.ipynb_checkpoints`` folders are skipped), inside
  artifact folders too: a notebook is an artifact of its own.
- ``container``: ``Dockerfile*`` / ``*.dockerfile`` (not ``Dockerfile.md`` and the like); an
  OCI image layout's ``index.json`` (beside ``oci-layout``); a ``docker save`` folder's
  ``manifest.json`` (beside ``repositories`` or a ``<layer>/layer.tar``); and every ``*.tar``
  file, which :mod:`ckg.formats.container` opens to see whether it is an image archive.

The tree is walked by :func:`ckg.formats.files.walk`: a link is read only where it ends at a
regular file inside the source, FIFOs, devices and sockets are never opened, and names that
are not valid UTF-8 are left out; each such file or link is one warning in
:attr:`Detected.problems`.
"""

import os
import stat
from pathlib import Path

from ckg.core.records import Problem
from ckg.formats.files import link_target, special, walk

SKIP_DIRS = frozenset(
    {".git", ".hg", ".svn", "node_modules", "__pycache__", ".tox", ".venv", ".ipynb_checkpoints"}
)
CM_META = ("_cm.json", "_cm.yaml")
MLC_META = ("meta.json", "meta.yaml")
CM_DESCRIPTOR = "cmr.yaml"
CK_DESCRIPTOR = ".ckr.json"
MLC_DESCRIPTOR = "meta.yaml"
CKG_META = "ckg.yaml"  # ckg's own workflow format (ckg.formats.ckgyaml)
GENERIC_NAMES = frozenset(
    {"pyproject.toml", "setup.py", "setup.cfg", "environment.yml", "environment.yaml"}
    | {"citation.cff"}
)


class Detected(dict):
    """What :func:`detect_formats` finds: a dict of format to meta files, plus ``problems``.

    ``problems`` holds one warning per file, link or folder left out (a name that is not
    valid UTF-8, named with its bytes escaped as ``script/bad\\xff``; a link that leads out
    of the source; a FIFO, device or socket).
    """

    def __init__(self, found: dict[str, list[Path]], problems: list[Problem]):
        super().__init__(found)
        self.problems = problems


def _is_generic(name: str) -> bool:
    low = name.lower()
    return (
        low in GENERIC_NAMES
        or (low.startswith("requirements") and low.endswith(".txt"))
        or low.startswith("readme")
    )


def detect_formats(root: Path) -> Detected:
    """Map each format found under ``root`` to its meta files, sorted; absent formats omitted.

    Parameters
    ----------
    root : Path
        A local folder (an extracted archive, a checkout, or a plain folder).

    Returns
    -------
    Detected
        Keys among ``"cm"``, ``"mlc"``, ``"ck"``, ``"ckg"``, ``"generic"``, ``"notebook"``,
        ``"container"``; values are absolute paths
        of meta files (repository descriptors included). Its ``problems`` name what was
        left out.

    Examples
    --------
    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp()); (d / "script" / "hello").mkdir(parents=True)
    >>> _ = (d / "script" / "hello" / "_cm.yaml").write_text("alias: hello")
    >>> {k: [p.relative_to(d).as_posix() for p in v] for k, v in detect_formats(d).items()}
    {'cm': ['script/hello/_cm.yaml']}
    """
    root = Path(root)
    found: dict[str, list[str]] = {
        "cm": [],
        "mlc": [],
        "ck": [],
        "ckg": [],
        "generic": [],
        "notebook": [],
        "container": [],
    }
    artifact_dirs: set[str] = set()
    image_dirs: set[str] = set()
    mlc_candidates: dict[str, list[str]] = {}  # folder -> its meta.yaml/json file names
    problems: list[Problem] = []
    real_root = os.path.realpath(root)
    for dirpath, dirnames, filenames in walk(root, SKIP_DIRS, problems):
        ck_entry = ".cm" in dirnames  # CK's meta folder: its meta.json is the unit
        if ck_entry:
            dirnames.remove(".cm")
        names = set(filenames)
        cm = [n for n in CM_META if n in names]
        if cm:
            found["cm"].extend(os.path.join(dirpath, n) for n in cm)
            artifact_dirs.add(dirpath)
        if CKG_META in names:
            found["ckg"].append(os.path.join(dirpath, CKG_META))
            artifact_dirs.add(dirpath)
        if CM_DESCRIPTOR in names:
            found["cm"].append(os.path.join(dirpath, CM_DESCRIPTOR))
        if CK_DESCRIPTOR in names:
            found["ck"].append(os.path.join(dirpath, CK_DESCRIPTOR))
        ck_meta = os.path.join(dirpath, ".cm", "meta.json")
        if ck_entry and _ck_meta(ck_meta, real_root, root, problems):
            found["ck"].append(ck_meta)
            artifact_dirs.add(dirpath)
        mlc = [n for n in MLC_META if n in names]
        if mlc and not cm:
            mlc_candidates[dirpath] = mlc
        found["generic"].extend(os.path.join(dirpath, n) for n in filenames if _is_generic(n))
        found["notebook"].extend(
            os.path.join(dirpath, n) for n in filenames if n.lower().endswith(".ipynb")
        )
        units = _container_units(dirpath, dirnames, names)
        if {"index.json", "manifest.json"} & set(units):
            image_dirs.add(dirpath)  # its layer tars are read with it, not as archives
        found["container"].extend(os.path.join(dirpath, n) for n in units)

    descriptors = {d for d, ns in mlc_candidates.items() if MLC_DESCRIPTOR in ns}
    used_descriptors: set[str] = set()
    for folder, metas in mlc_candidates.items():
        automation = os.path.dirname(folder)
        repo = os.path.dirname(automation)
        if repo in descriptors or os.path.basename(automation) == "script":
            found["mlc"].extend(os.path.join(folder, n) for n in metas)
            artifact_dirs.add(folder)
            if repo in descriptors:
                used_descriptors.add(repo)
    found["mlc"].extend(os.path.join(d, MLC_DESCRIPTOR) for d in used_descriptors)

    found["generic"] = [f for f in found["generic"] if not _inside(f, artifact_dirs, str(root))]
    found["container"] = [
        f
        for f in found["container"]
        if not (f.endswith((".tar", ".TAR")) and _inside(f, image_dirs, str(root)))
    ]
    formats = {fmt: sorted(Path(f) for f in files) for fmt, files in found.items() if files}
    return Detected(formats, problems)


def _container_units(folder: str, dirnames: list[str], names: set[str]) -> list[str]:
    """The files of one folder that may describe a container image (see the module doc)."""
    units = [n for n in names if is_dockerfile(n) or n.lower().endswith(".tar")]
    if "oci-layout" in names and "index.json" in names:
        units.append("index.json")  # it names every image by digest: it changes with them
    elif "manifest.json" in names and (
        "repositories" in names
        or any(os.path.isfile(os.path.join(folder, d, "layer.tar")) for d in dirnames)
    ):
        units.append("manifest.json")
    return sorted(units)


#: Names that start like a Dockerfile but are its documentation or a template of one.
_NOT_DOCKERFILE = (
    ".md",
    ".txt",
    ".rst",
    ".json",
    ".yaml",
    ".yml",
    ".j2",
    ".jinja",
    ".tmpl",
    ".template",
    ".sh",
    ".py",
    ".tar",
)


def is_dockerfile(name: str) -> bool:
    """Whether a file name is a Dockerfile's.

    >>> [is_dockerfile(n) for n in ("Dockerfile.gpu", "app.dockerfile", "Dockerfile.md")]
    [True, True, False]
    """
    low = name.lower()
    return (low.startswith("dockerfile") or low.endswith(".dockerfile")) and not low.endswith(
        _NOT_DOCKERFILE
    )


def _ck_meta(path: str, real_root: str, root: Path, problems: list[Problem]) -> bool:
    """Whether CK's ``.cm/meta.json`` (in a folder the walk does not enter) is readable by
    :func:`ckg.formats.files.walk`'s rule; a link out or a special file is one more problem."""
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return False
    if stat.S_ISLNK(mode):
        why, mode = link_target(path, real_root)
    else:
        why = "" if stat.S_ISREG(mode) or stat.S_ISDIR(mode) else special(mode)
    if why:
        problems.append(Problem(os.path.relpath(path, root).replace(os.sep, "/"), why))
    return stat.S_ISREG(mode)


def _inside(path: str, dirs: set[str], root: str) -> bool:
    """Whether ``path`` lies in one of ``dirs`` (an artifact folder), checking each ancestor."""
    d = os.path.dirname(path)
    while len(d) >= len(root):
        if d in dirs:
            return True
        parent = os.path.dirname(d)
        if parent == d:
            break
        d = parent
    return False
