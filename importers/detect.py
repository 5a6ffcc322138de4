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
  file, which :mod:`importers.container` opens to see whether it is an image archive.

Files and folders whose names are not valid UTF-8 are left out (:func:`utf8_name`), each
with a warning in :attr:`Detected.problems`.
"""

import os
from pathlib import Path

from ckg.records import Problem

SKIP_DIRS = frozenset(
    {".git", ".hg", ".svn", "node_modules", "__pycache__", ".tox", ".venv", ".ipynb_checkpoints"}
)
CM_META = ("_cm.json", "_cm.yaml")
MLC_META = ("meta.json", "meta.yaml")
CM_DESCRIPTOR = "cmr.yaml"
CK_DESCRIPTOR = ".ckr.json"
MLC_DESCRIPTOR = "meta.yaml"
CKG_META = "ckg.yaml"  # ckg's own workflow format (importers.ckgyaml)
GENERIC_NAMES = frozenset(
    {"pyproject.toml", "setup.py", "setup.cfg", "environment.yml", "environment.yaml"}
    | {"citation.cff"}
)


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


class Detected(dict):
    """What :func:`detect_formats` finds: a dict of format to meta files, plus ``problems``.

    ``problems`` holds one warning per file or folder left out because its name is not
    valid UTF-8, named with its bytes escaped (``script/bad\\xff``).
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
        "cm": [], "mlc": [], "ck": [], "ckg": [], "generic": [], "notebook": [], "container": []
    }
    artifact_dirs: set[str] = set()
    image_dirs: set[str] = set()
    mlc_candidates: dict[str, list[str]] = {}  # folder -> its meta.yaml/json file names
    problems: list[Problem] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS and d != ".cm"]
        _leave_out_non_utf8(root, dirpath, dirnames, problems)
        _leave_out_non_utf8(root, dirpath, filenames, problems)
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
        if os.path.isfile(ck_meta):
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
        f for f in found["container"]
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
_NOT_DOCKERFILE = (".md", ".txt", ".rst", ".json", ".yaml", ".yml", ".j2", ".jinja", ".tmpl",
                   ".template", ".sh", ".py", ".tar")


def is_dockerfile(name: str) -> bool:
    """Whether a file name is a Dockerfile's.

    >>> [is_dockerfile(n) for n in ("Dockerfile.gpu", "app.dockerfile", "Dockerfile.md")]
    [True, True, False]
    """
    low = name.lower()
    return (low.startswith("dockerfile") or low.endswith(".dockerfile")) and not low.endswith(
        _NOT_DOCKERFILE)


def _leave_out_non_utf8(root: Path, folder: str, names: list[str], out: list[Problem]) -> None:
    """Remove from ``names`` (in place, as :func:`os.walk` wants) those :func:`utf8_name`
    refuses, with one warning each naming the path with its bytes escaped."""
    for name in [n for n in names if not utf8_name(n)]:
        names.remove(name)
        rel = os.path.relpath(os.path.join(folder, name), root).replace(os.sep, "/")
        escaped = rel.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        out.append(Problem(escaped, "name is not valid UTF-8; skipped"))


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
