"""Generic repositories and Python packages: one artifact each, dependencies, papers they implement.

A project root is the source root, or any folder holding ``pyproject.toml``, ``setup.py`` or
``setup.cfg`` (a package inside a larger repository). Every file that
:func:`ckg.formats.detect.detect_formats` lists as ``generic`` belongs to the nearest project
root above it. Each root with something to say becomes an ``Artifact`` of format
``generic``:

- kind ``package`` when a distribution name is declared (``[project].name``,
  ``[tool.poetry].name``, ``setup.cfg [metadata] name``, ``setup.py name="..."``), tagged
  ``package,python-package,<normalised name>``; else kind ``project`` tagged
  ``project,<folder name>``;
- ``meta`` holds name, version, description, ``requires-python`` and the files read; uid
  derived from source and path.

Dependencies are :class:`~ckg.core.records.Dependency` entries whose tags name what is needed in
the style of CM tags, so that the same resolver links them to ingested artifacts:

- ``pip``: ``[project].dependencies`` (optional dependencies with ``via_variation`` = the
  extra's name), Poetry's dependency tables, ``requirements*.txt`` lines and the ``pip:``
  list of ``environment.yml``; tags ``python-package,<normalised name>`` (PEP 503);
- ``conda``: the other ``environment.yml`` dependencies; tags ``conda-package,<name>``.

Dockerfiles and notebooks are artifacts of their own (:mod:`ckg.formats.container`,
:mod:`ckg.formats.notebook`).

``names`` keeps the requirement as written; ``==`` / ``===`` / conda ``=`` give ``version``,
``>=`` / ``>`` / ``~=`` ``version_min``, ``<=`` / ``<`` ``version_max``. Papers come from
``CITATION.cff`` (``doi``, ``identifiers``, ``preferred-citation``) and from arXiv and DOI
links or ``arXiv:`` ids in the root's ``README*``: a ``Paper`` node keyed by
:func:`ckg.formats.papers.paper_uid` (``arxiv:<id>``, ``doi:<doi>``) and
``(Artifact)-[:IMPLEMENTS]->(Paper)``.

Examples
--------
>>> import tempfile
>>> d = Path(tempfile.mkdtemp())
>>> _ = (d / "requirements.txt").write_text("numpy>=1.26\\n")
>>> _ = (d / "README.md").write_text("Code for https://arxiv.org/abs/1706.03762v5")
>>> r = read(d, "s")
>>> r.dependencies[0].tags, r.dependencies[0].version_min
(['python-package', 'numpy'], '1.26')
>>> [n.key for n in r.nodes if n.label == "Paper"]
['arxiv:1706.03762']
"""

import configparser
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

from ckg.core.records import Dependency, Edge, Node, Problem, Records
from ckg.formats.cmlike import derived_uid
from ckg.formats.detect import detect_formats
from ckg.formats.files import read_file
from ckg.formats.loaders import Loaded, digest, isolated, json_text, load_mapping, relpath
from ckg.formats.papers import paper_uid

PACKAGE_MARKERS = ("pyproject.toml", "setup.cfg", "setup.py")
_REQ = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*(\(?[^;]*?\)?)\s*(;.*)?$")
_SPEC = re.compile(r"(===|==|~=|!=|>=|<=|>|<|=)\s*([^\s,=<>!~]+)")
_CONDA = re.compile(r"^\s*(?:[\w.-]+::)?([A-Za-z0-9][A-Za-z0-9._-]*)\s*(.*)$")
_SETUP_NAME = re.compile(r"""\bname\s*=\s*["']([^"']+)["']""")
_README_LINKS = re.compile(
    r"(?:https?://)?(?:www\.|export\.)?arxiv\.org/(?:abs|pdf)/[\w./-]+?(?=[\s)\]>\"'`]|\.?$|\.\s)"
    r"|\barxiv:\s*\d{4}\.\d{4,5}(?:v\d+)?"
    r"|(?:https?://)?(?:dx\.)?doi\.org/10\.\d{4,9}/[^\s)\]>\"'`]+"
    r"|\bdoi:\s*10\.\d{4,9}/[^\s)\]>\"'`]+",
    re.I | re.M,
)


def normalise(name: str) -> str:
    """A Python distribution name as PEP 503 compares them.

    >>> normalise("Typing_Extensions")
    'typing-extensions'
    """
    return re.sub(r"[-_.]+", "-", name).lower()


def read(root: Path, source_uid: str, files: list[Path] | None = None) -> Records:
    """Records of the generic projects and packages under ``root``.

    ``files`` are paths :func:`ckg.formats.detect.detect_formats` lists under ``"generic"``
    (None: all of them); every project one of them belongs to is read with all its files.
    """
    root = Path(root)
    every = detect_formats(root).get("generic", [])
    roots = {root} | {f.parent for f in every if f.name in PACKAGE_MARKERS}
    groups: dict[Path, list[Path]] = defaultdict(list)
    for f in every:
        groups[_owner(f, roots)].append(f)
    # One artifact is made of many files: a project any given file belongs to is read
    # whole, so reading a few changed files gives the same artifact as reading them all.
    wanted = set(groups) if files is None else {_owner(Path(f), roots) for f in files}
    records = Records()
    for folder in sorted(wanted & set(groups)):
        project = _Project(root, source_uid, folder, sorted(groups[folder]))
        isolated(records, relpath(folder, root), project.read)
    return records


def _owner(path: Path, roots: set[Path]) -> Path:
    """The nearest project root above ``path``."""
    owner = path.parent
    while owner not in roots and owner != owner.parent:
        owner = owner.parent
    return owner


class _Project:
    """Reads the files of one project root into one artifact (kept small by splitting steps)."""

    def __init__(self, root: Path, source_uid: str, folder: Path, files: list[Path]):
        self.root, self.folder, self.files = root, folder, files
        self.out = Records()
        self.rel = relpath(folder, root)
        self.source_uid = source_uid
        self.uid = derived_uid(source_uid, self.rel)
        self.meta: dict[str, Any] = {}
        self.deps: list[Dependency] = []
        self.papers: dict[str, dict] = {}
        self.raws: list[bytes] = []
        self.positions: dict[tuple[str, str], int] = defaultdict(int)

    def read(self, out: Records) -> None:
        self.out = out
        by_name = {f.name.lower(): f for f in self.files if f.parent == self.folder}
        for name, reader in (
            ("pyproject.toml", self._pyproject),
            ("setup.cfg", self._setup_cfg),
            ("setup.py", self._setup_py),
        ):
            if name in by_name and (name == "pyproject.toml" or "name" not in self.meta):
                self._guarded(reader, by_name[name])
        for f in self.files:
            reader = self._reader_for(f)
            if reader is not None:
                self._guarded(reader, f)
        read_files = [
            relpath(f, self.root) for f in self.files if not f.name.lower().startswith("readme")
        ]
        if not (read_files or self.papers):
            return  # a README without paper links says nothing about a project
        self._emit(read_files)

    def _reader_for(self, f: Path):
        low = f.name.lower()
        if low.startswith("requirements") and low.endswith(".txt"):
            return self._requirements
        if low in ("environment.yml", "environment.yaml"):
            return self._environment
        if low == "citation.cff":
            return self._citation
        if low.startswith("readme") and f.parent == self.folder:
            return self._readme
        return None

    def _guarded(self, reader, path: Path) -> None:
        """Read one file; a file whose shape is odd costs one warning and adds nothing."""
        deps, papers = len(self.deps), dict(self.papers)
        try:
            reader(path)
        except (AttributeError, TypeError, ValueError, KeyError) as e:
            del self.deps[deps:]
            self.papers = papers
            self.out.warnings.append(
                Problem(relpath(path, self.root), f"unexpected structure: {e}")
            )

    def _emit(self, read_files: list[str]) -> None:
        name = self.meta.get("name")
        if name:
            kind, alias = "package", str(name)
            tags = ["package", "python-package", normalise(alias)]
        else:
            kind = "project"
            alias = self.folder.name or "project"
            tags = ["project", alias]
        self.meta["files"] = read_files
        props = {
            "uid": self.uid,
            "alias": alias,
            "kind": kind,
            "format": "generic",
            "tags": tags,
            "path": self.rel,
            "meta": json_text(self.meta),
            "digest": digest(*self.raws),
            "source_uid": self.source_uid,
            "variations": [],
        }
        self.out.nodes.append(Node("Artifact", self.uid, props))
        self.out.dependencies.extend(self.deps)
        for uid, paper in self.papers.items():
            self.out.nodes.append(Node("Paper", uid, {"uid": uid, **paper}))
            self.out.edges.append(Edge("IMPLEMENTS", "Artifact", self.uid, "Paper", uid))

    # --- files -------------------------------------------------------------------------

    def _load(self, path: Path) -> Loaded | None:
        doc = load_mapping(path, self.root)
        if isinstance(doc, Problem):
            self.out.warnings.append(doc)
            return None
        self.raws.append(doc.raw)
        return doc

    def _text(self, path: Path) -> str | None:
        """The file as text; NUL, which no graph holds in a name or tag read from it, reads
        as U+FFFD like bytes that are not UTF-8."""
        try:
            raw = read_file(path, self.root)
        except OSError as e:
            self.out.warnings.append(Problem(relpath(path, self.root), f"cannot read: {e}"))
            return None
        self.raws.append(raw)
        return raw.decode("utf-8", errors="replace").replace("\0", "\ufffd")

    def _add(self, kind: str, tags: list[str], raw: str, path: str, line: int | None, **kw) -> None:
        via = kw.pop("via_variation", "")
        position = self.positions[kind, via]
        self.positions[kind, via] += 1
        self.deps.append(
            Dependency(
                self.uid, kind, position, tags, [raw], via_variation=via, path=path, line=line, **kw
            )
        )

    def _pip(self, requirement: str, path: str, line: int | None, via: str = "") -> None:
        m = _REQ.match(requirement)
        if not m:
            self.out.warnings.append(Problem(path, f"not a requirement: {requirement!r}", line))
            return
        versions = _versions(m.group(3))
        tags = ["python-package", normalise(m.group(1))]
        self._add("pip", tags, requirement.strip(), path, line, via_variation=via, **versions)

    def _pyproject(self, path: Path) -> None:
        doc = self._load(path)
        if doc is None:
            return
        project = doc.data.get("project") or {}
        poetry = (doc.data.get("tool") or {}).get("poetry") or {}
        for key in ("name", "version", "description"):
            if project.get(key) or poetry.get(key):
                self.meta[key] = project.get(key) or poetry.get(key)
        if project.get("requires-python"):
            self.meta["requires_python"] = project["requires-python"]
        for req in project.get("dependencies") or []:
            self._pip(str(req), doc.rel, doc.line_of("project", "dependencies"))
        for extra, reqs in (project.get("optional-dependencies") or {}).items():
            for req in reqs or []:
                line = doc.line_of("project", "optional-dependencies", extra)
                self._pip(str(req), doc.rel, line, via=str(extra))
        for name, spec in (poetry.get("dependencies") or {}).items():
            if name.lower() != "python":
                version = spec.get("version", "") if isinstance(spec, dict) else str(spec)
                self._pip(
                    f"{name}{_poetry_spec(version)}", doc.rel, doc.line_of("tool", "poetry", name)
                )

    def _setup_cfg(self, path: Path) -> None:
        text = self._text(path)
        parser = configparser.ConfigParser(interpolation=None)
        try:
            parser.read_string(text or "")
        except configparser.Error as e:
            self.out.warnings.append(Problem(relpath(path, self.root), f"invalid setup.cfg: {e}"))
            return
        if parser.has_option("metadata", "name"):
            self.meta["name"] = parser.get("metadata", "name")
        if parser.has_option("options", "install_requires"):
            rel = relpath(path, self.root)
            for req in parser.get("options", "install_requires").splitlines():
                if req.strip():
                    self._pip(req, rel, None)

    def _setup_py(self, path: Path) -> None:
        # Never executed: a literal name="..." is all that can be read safely.
        m = _SETUP_NAME.search(self._text(path) or "")
        if m:
            self.meta["name"] = m.group(1)

    def _requirements(self, path: Path) -> None:
        text = self._text(path)
        rel = relpath(path, self.root)
        for n, line in enumerate((text or "").splitlines(), 1):
            req = line.split(" #", 1)[0].strip()
            # options (-r, -e, --index-url) and direct URLs name no package by itself
            if req and not req.startswith(("#", "-")) and "://" not in req:
                self._pip(req, rel, n)

    def _environment(self, path: Path) -> None:
        doc = self._load(path)
        if doc is None:
            return
        for i, dep in enumerate(doc.data.get("dependencies") or []):
            line = doc.line_of("dependencies", i)
            if isinstance(dep, dict):
                for req in dep.get("pip") or []:
                    self._pip(str(req), doc.rel, line)
                continue
            m = _CONDA.match(str(dep))
            if m:
                versions = _versions(m.group(2))
                tags = ["conda-package", m.group(1).lower()]
                self._add("conda", tags, str(dep), doc.rel, line, **versions)

    def _citation(self, path: Path) -> None:
        doc = self._load(path)
        if doc is None:
            return
        cff = doc.data
        preferred = cff.get("preferred-citation")
        for entry in (preferred, cff):
            if isinstance(entry, dict):
                links = [entry.get("doi"), entry.get("url")]
                links += [
                    i.get("value") for i in entry.get("identifiers") or [] if isinstance(i, dict)
                ]
                for link in links:
                    self._paper(link, entry.get("title"))
        if cff.get("title"):
            self.meta["citation_title"] = str(cff["title"])

    def _readme(self, path: Path) -> None:
        for m in _README_LINKS.finditer(self._text(path) or ""):
            self._paper(m.group(0).rstrip(".,;"), None)

    def _paper(self, link: Any, title: Any) -> None:
        uid = paper_uid(str(link)) if isinstance(link, str) else None
        if uid is None or not (uid.startswith(("arxiv:", "doi:"))):
            return  # software homepages and repository links are not papers
        paper = self.papers.setdefault(uid, {"url": _paper_url(uid)})
        if title and "title" not in paper:
            paper["title"] = str(title)


def _versions(spec: str) -> dict[str, str]:
    """Version bounds from a specifier such as ``>=1.2,<2`` (conda's ``=1.2`` pins too).

    >>> _versions(">=1.2, <2.0")
    {'version_min': '1.2', 'version_max': '2.0'}
    """
    out: dict[str, str] = {}
    for op, value in _SPEC.findall(spec.strip("() ")):
        key = {"==": "version", "===": "version", "=": "version", "<=": "version_max"}.get(op)
        key = key or {">=": "version_min", ">": "version_min", "~=": "version_min"}.get(op)
        key = key or ("version_max" if op == "<" else None)
        if key:
            out[key] = value.rstrip("*").rstrip(".") or value
    return out


def _poetry_spec(version: str) -> str:
    """Poetry's ``^1.2`` / ``~1.2`` / ``1.2`` as a PEP 440 lower bound or pin."""
    version = version.strip()
    if not version or version == "*":
        return ""
    if version[0] in "^~":
        return f">={version[1:]}"
    return version if version[0] in "<>=!" else f"=={version}"


def _paper_url(uid: str) -> str:
    kind, ident = uid.split(":", 1)
    return f"https://arxiv.org/abs/{ident}" if kind == "arxiv" else f"https://doi.org/{ident}"
