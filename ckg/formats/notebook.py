"""Jupyter notebooks: one artifact per ``.ipynb``, read with ``nbformat`` and ``ast``.

Each notebook :func:`ckg.formats.detect.detect_formats` lists under ``"notebook"`` becomes an
``Artifact`` of format ``notebook`` and kind ``notebook``, alias the file's stem, tagged
``notebook,jupyter-notebook,<language>,<stem>`` (no language when the notebook names none),
``path`` its folder (the notebook's file name is ``meta.file``). ``meta`` holds:

- ``kernel`` (name, display name, language) and ``language``, from the notebook metadata;
- ``parameters``: the assignments of the cell tagged ``parameters`` (papermill's convention),
  literal values as values, any other expression as its source text. Code is parsed with
  :mod:`ast`, never executed;
- ``imports``: top-level modules imported (standard library, relative imports and modules
  beside the notebook left out) and ``packages``, each import mapped to the distribution that
  installs it: :func:`importlib.metadata.packages_distributions` for what is installed here,
  then :data:`KNOWN_DISTRIBUTIONS` for common names that differ (``sklearn`` is
  ``scikit-learn``), else the import name itself; ``pip_installs`` lists what
  ``%pip install`` / ``!pip install`` lines name;
- ``data_files``: literal paths the code reads (``open("x")`` without a write mode, and
  readers such as ``pd.read_csv("x")``, ``np.load("x")``, ``Image.open("x")``);
- ``metrics``: numbers the saved outputs record: values glued with scrapbook
  (``application/scrapbook.scrap.json+json``) or papermill's ``record``
  (``application/papermill.record+json``);
- ``cells``, ``code_cells`` and ``unparsed_cells`` (code cells :mod:`ast` could not read, IPython
  magics aside).

Each package is a :class:`~ckg.core.records.Dependency` of kind ``pip`` tagged
``python-package,<normalised distribution>`` (as :mod:`ckg.formats.generic` writes them), so an
ingested package artifact is linked by ``DEPENDS_ON``; ``meta.pip`` lists these entries as a
CM meta lists its ``deps``. A file ``nbformat`` cannot read or
parse is one warning naming it; the rest of the source is read.

Examples
--------
>>> import tempfile, nbformat
>>> d = Path(tempfile.mkdtemp())
>>> nb = nbformat.v4.new_notebook(cells=[
...     nbformat.v4.new_code_cell("lr = 0.1", metadata={"tags": ["parameters"]}),
...     nbformat.v4.new_code_cell("import sklearn, os\\nimport pandas as pd\\n"
...                               "df = pd.read_csv('data/train.csv')")])
>>> nbformat.write(nb, d / "train.ipynb")
>>> meta = json.loads(read(d, "s").nodes[0].props["meta"])
>>> meta["parameters"], meta["packages"]["sklearn"], meta["data_files"]
({'lr': 0.1}, 'scikit-learn', ['data/train.csv'])
"""

import ast
import functools
import json
import re
import shlex
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from ckg.core.records import Dependency, Node, Problem, Records
from ckg.formats.cmlike import derived_uid
from ckg.formats.detect import detect_formats
from ckg.formats.generic import normalise
from ckg.formats.loaders import digest, json_text, parse, read_text, relpath

#: Import names whose distribution has another name, for what is not installed here
#: (:func:`importlib.metadata.packages_distributions` answers for what is).
KNOWN_DISTRIBUTIONS = {
    "sklearn": "scikit-learn",
    "cv2": "opencv-python",
    "PIL": "Pillow",
    "yaml": "PyYAML",
    "bs4": "beautifulsoup4",
    "skimage": "scikit-image",
    "dateutil": "python-dateutil",
    "dotenv": "python-dotenv",
    "attr": "attrs",
    "Crypto": "pycryptodome",
    "google.protobuf": "protobuf",
    "tensorflow_datasets": "tensorflow-datasets",
    "mpl_toolkits": "matplotlib",
}
#: Calls whose first argument is a file the notebook reads (by the called name's last part).
READERS = frozenset(
    {
        "read_csv",
        "read_table",
        "read_json",
        "read_parquet",
        "read_excel",
        "read_feather",
        "read_pickle",
        "read_hdf",
        "read_orc",
        "read_sas",
        "read_stata",
        "read_fwf",
        "load",
        "loadtxt",
        "genfromtxt",
        "fromfile",
        "load_npz",
        "imread",
        "File",
        "load_dataset",
        "read_file",
        "read_text",
    }
)
SCRAP_TYPES = ("application/scrapbook.scrap.json+json", "application/papermill.record+json")
_PIP_INSTALL = re.compile(r"^\s*[%!]\s*(?:python\s+-m\s+)?pip3?\s+install\s+(.*)$")


def read(root: Path, source_uid: str, files: list[Path] | None = None) -> Records:
    """Records of the notebooks ``files`` (all that detection finds under ``root`` when None)."""
    root = Path(root)
    if files is None:
        files = detect_formats(root).get("notebook", [])
    out = Records()
    for path in files:
        path = Path(path)
        path = path if path.is_absolute() else root / path
        read_one(root, source_uid, path, out)
    return out


def read_one(root: Path, source_uid: str, path: Path, out: Records, **extra) -> str | None:
    """Add the artifact of one notebook to ``out`` and return its uid (None: a warning).

    ``extra`` are further artifact properties (an image's notebooks say which image).
    """
    rel = relpath(path, root)
    # The guarded loader parses the JSON, not nbformat's plain json.loads: one hostile value
    # (nested past the parser, a number of 5,000 digits) costs a warning, not the notebook.
    read = read_text(path, root)
    doc = (
        read
        if isinstance(read, Problem)
        else parse(read[1], rel, ".json", raw=read[0], salvage=True)
    )
    if isinstance(doc, Problem):
        why = doc.message.removeprefix("invalid JSON: ")
        out.warnings.append(Problem(rel, f"not a readable Jupyter notebook: {why}", doc.line))
        return None
    out.warnings.extend(doc.warnings)
    try:
        nb = _notebook(doc.data)
        meta = describe(nb, path.parent)
    except Exception as exc:  # nbformat raises many kinds (schema, version, structure)
        why = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        out.warnings.append(Problem(rel, f"not a readable Jupyter notebook: {why[:200]}"))
        return None
    meta["file"] = path.name
    wanted = {**meta["packages"], **{name: name for name in meta["pip_installs"]}}
    # The entries as a CM meta lists its deps, so that the planner can show each one.
    meta["pip"] = [
        {"tags": ["python-package", normalise(dist)], "names": [name]}
        for name, dist in sorted(wanted.items())
    ]
    folder = relpath(path.parent, root)
    uid = derived_uid(source_uid, rel)
    language = [meta["language"]] if meta["language"] else []
    props = {
        "uid": uid,
        "alias": path.stem,
        "kind": "notebook",
        "format": "notebook",
        "tags": list(dict.fromkeys(["notebook", "jupyter-notebook", *language, path.stem])),
        "path": folder,
        "meta": json_text(meta),
        "digest": digest(doc.raw),
        "source_uid": source_uid,
        "variations": [],
        **extra,
    }
    out.nodes.append(Node("Artifact", uid, props))
    for position, entry in enumerate(meta["pip"]):
        out.dependencies.append(
            Dependency(uid, "pip", position, entry["tags"], entry["names"], path=rel)
        )
    return uid


def _notebook(data: Any):
    """What ``nbformat.reads(text, as_version=4)`` makes of the parsed notebook ``data``.

    Not validated against the schema: Jupyter opens notebooks with small schema slips (a
    kernelspec without a name), and so does ckg; what cannot be read is refused.
    """
    import nbformat
    from nbformat.reader import get_version

    major, minor = get_version(data)
    if major not in nbformat.versions:
        raise nbformat.NBFormatError(f"unsupported nbformat version {major}")
    return nbformat.convert(nbformat.versions[major].to_notebook_json(data, minor=minor), 4)


def describe(nb, folder: Path | None = None) -> dict[str, Any]:
    """What a notebook (an ``nbformat`` v4 node) says about itself; see the module doc.

    ``folder`` is where the notebook lies: modules found there are its own, not packages.
    """
    spec = nb.metadata.get("kernelspec") or {}
    info = nb.metadata.get("language_info") or {}
    language = str(spec.get("language") or info.get("name") or "").lower()
    code = [c for c in nb.cells if c.cell_type == "code"]
    imports: set[str] = set()
    data: list[str] = []
    pip: list[str] = []
    parameters: dict[str, Any] = {}
    unparsed = 0
    python = language in ("", "python")
    for cell in code if python else []:
        source, installs = _python_source(cell.source)
        pip += installs
        try:
            tree = ast.parse(source)
        except (SyntaxError, ValueError):
            unparsed += 1
            continue
        imports |= _imports(tree)
        data += _data_files(tree)
        if "parameters" in (cell.metadata.get("tags") or ()):
            parameters.update(_assignments(tree, source))
    own = {m for m in imports if folder and _is_local(m, folder)}
    third_party = sorted(m for m in imports - own if m not in sys.stdlib_module_names)
    return {
        "kernel": {
            "name": str(spec.get("name") or ""),
            "display_name": str(spec.get("display_name") or ""),
            "language": language,
        },
        "language": language,
        "nbformat": f"{nb.nbformat}.{nb.nbformat_minor}",
        "parameters": parameters,
        "imports": third_party,
        "packages": {m: distribution(m) for m in third_party},
        "pip_installs": sorted(set(pip)),
        "data_files": list(dict.fromkeys(data)),
        "metrics": glued_metrics(nb),
        "cells": len(nb.cells),
        "code_cells": len(code),
        "unparsed_cells": unparsed,
    }


def distribution(module: str) -> str:
    """The distribution that installs top-level ``module``.

    >>> distribution("yaml"), distribution("numpy"), distribution("not_installed_pkg")
    ('PyYAML', 'numpy', 'not_installed_pkg')
    """
    installed = _installed().get(module)
    if installed:
        return sorted(installed)[0]
    return KNOWN_DISTRIBUTIONS.get(module, module)


@functools.cache
def _installed() -> dict[str, list[str]]:
    return metadata.packages_distributions()


def glued_metrics(nb) -> dict[str, float]:
    """Numbers the notebook's saved outputs glued (scrapbook) or recorded (papermill).

    Later outputs win, as a re-glued name replaces the earlier value.
    """
    found: dict[str, float] = {}
    for cell in nb.cells:
        for output in cell.get("outputs") or ():
            bundle = output.get("data") or {}
            for mime in SCRAP_TYPES:
                if mime in bundle:
                    found.update(_numbers(bundle[mime]))
    return found


def _numbers(scrap) -> dict[str, float]:
    """Name -> number of one scrap: scrapbook's ``{"name", "data"}`` or papermill's mapping."""
    if isinstance(scrap, str):
        try:
            scrap = json.loads(scrap)
        except ValueError:
            return {}
    if not isinstance(scrap, dict):
        return {}
    if "name" in scrap and "data" in scrap:
        scrap = {scrap["name"]: scrap["data"]}
    return {
        str(k): float(v)
        for k, v in scrap.items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    }


def _python_source(source: str) -> tuple[str, list[str]]:
    """A cell's source with IPython magics and shell lines blanked (so lines keep their
    numbers), and the packages its ``%pip install`` / ``!pip install`` lines name."""
    lines = source.splitlines()
    if lines and lines[0].lstrip().startswith("%%"):
        return "", []  # a cell magic: the body is another language (bash, html, ...)
    installs: list[str] = []
    kept = []
    for line in lines:
        stripped = line.lstrip()
        if stripped.startswith(("%", "!")) or (stripped.endswith("?") and "#" not in line):
            m = _PIP_INSTALL.match(line)
            if m:
                installs += [w for w in _words(m.group(1)) if not w.startswith("-")]
            kept.append("")
        else:
            kept.append(line)
    names = [re.split(r"[<>=!~\[;@ ]", w, maxsplit=1)[0] for w in installs]
    return "\n".join(kept), [n for n in names if n and "/" not in n and "." != n[0]]


def _words(text: str) -> list[str]:
    """A command line's words as a shell splits them (quotes removed)."""
    try:
        return shlex.split(text, comments=True)
    except ValueError:
        return text.split()


def _imports(tree: ast.AST) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module.split(".")[0])
    return found


def _data_files(tree: ast.AST) -> list[str]:
    """Literal paths passed to readers; ``open`` only when its mode reads."""
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
        if name == "open":
            mode = _literal(node.args[1]) if len(node.args) > 1 else _keyword(node, "mode")
            if isinstance(mode, str) and set(mode) & set("wax+"):
                continue
        elif name not in READERS:
            continue
        first = _literal(node.args[0]) if node.args else None
        if first is None:
            first = next(
                (
                    _literal(k.value)
                    for k in node.keywords
                    if k.arg in ("filepath_or_buffer", "path", "fname", "file", "filename")
                ),
                None,
            )
        if isinstance(first, str) and first.strip():
            found.append(first)
    return found


def _assignments(tree: ast.Module, source: str) -> dict[str, Any]:
    """``name = value`` statements of a parameters cell: literal values, else source text."""
    found: dict[str, Any] = {}
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
            target, value = stmt.targets[0], stmt.value
        elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
            target, value = stmt.target, stmt.value
        else:
            continue
        if isinstance(target, ast.Name):
            literal = _literal(value, missing=_MISSING)
            found[target.id] = (
                ast.get_source_segment(source, value) if literal is _MISSING else literal
            )
    return found


_MISSING = object()


def _literal(node: ast.AST, missing: Any = None) -> Any:
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return missing


def _keyword(call: ast.Call, name: str) -> Any:
    return next((_literal(k.value) for k in call.keywords if k.arg == name), None)


def _is_local(module: str, folder: Path) -> bool:
    """Whether ``module`` is a file or package beside the notebook."""
    return (folder / f"{module}.py").is_file() or (folder / module / "__init__.py").is_file()
