"""ckg's own workflow format, ``ckg.yaml``: its schema, its command template, parameter grids,
and the reader of a source's ``ckg.yaml`` files.

A ``ckg.yaml`` names a command template and its parameters::

    alias: digits-classifiers
    tags: [demo, sklearn, classification]
    deps:                       # CM syntax: tags, names, enable_if_env, ...
      - tags: get,dataset,digits
    params:                     # every parameter the command takes, with its default
      model: logreg
      C: 1.0
    grid:                       # the sweep `ckg demo` runs: a mapping (one Cartesian product)
      - {model: [logreg], C: [0.01, 1.0]}     # or a list of them (their union)
      - {model: [knn]}
    run: "{python} train.py --model {model} --C {C}"
    metrics: ckg-result.json    # the file the command writes its figures to
    timeout: 120                # seconds
    env: {OMP_NUM_THREADS: "1"}
    new_env_keys: [DIGITS_*]    # what dependants receive from tmp-run-env.out
    reproduces:                 # published results runs reproduce (see ckg.results.reproduce)
      - {paper: arXiv:1234.5678, dataset: digits, metric: accuracy, model: knn,
         params: {model: knn}}

In ``run``, ``{name}`` is a parameter (shell-quoted), and ``{python}`` (this interpreter),
``{artifact_dir}`` (the folder of ``ckg.yaml``) and ``{workdir}`` (the run's working folder)
are always defined; ``{{`` and ``}}`` are literal braces.

Each ``ckg.yaml`` becomes an ``Artifact`` with format ``ckg`` and kind ``workflow`` (or the
meta's ``kind``), its meta as JSON and the digest of its bytes, and a
:class:`~ckg.core.records.Dependency` per ``deps`` entry, written in CM's syntax so the same
resolution rules apply. A file that cannot be read, or whose ``run``, ``params`` or ``grid``
is malformed, is one warning naming file and line; the rest of the source is read.
"""

import itertools
import shlex
import string
from collections.abc import Iterator, Mapping
from pathlib import Path

from ckg.core.errors import InvalidInput
from ckg.core.records import Dependency, Node, Problem, Records
from ckg.formats.cmlike import as_list, derived_uid, guard_json, split_tags
from ckg.formats.loaders import Loaded, digest, json_text, load_mapping, relpath
from ckg.formats.reproduces import check_block

FILENAME = "ckg.yaml"
BUILTINS = ("python", "artifact_dir", "workdir")
KNOWN_KEYS = frozenset(
    {"alias", "uid", "tags", "deps", "params", "grid", "run", "metrics", "timeout", "env"}
    | {"new_env_keys", "description", "kind", "name", "reproduces"}
)

SKIP_DIRS = frozenset({".git", ".hg", ".svn", "node_modules", "__pycache__", ".tox", ".venv"})


def check_meta(meta: Mapping, where: str) -> list[str]:
    """Validate a ``ckg.yaml`` mapping; return warnings for keys ckg does not know.

    Raises
    ------
    InvalidInput
        When ``run`` is missing or names an undeclared parameter, or ``params``, ``grid``,
        ``timeout``, ``env`` or ``reproduces`` have the wrong shape; the message starts with
        ``where``.

    Examples
    --------
    >>> check_meta({"alias": "x", "run": "echo {n}", "params": {"n": 1}}, "ckg.yaml")
    []
    >>> check_meta({"alias": "x", "run": "echo {m}"}, "ckg.yaml")
    Traceback (most recent call last):
    ckg.core.errors.InvalidInput: ckg.yaml: run uses {m}, which is not in params
    """
    if not isinstance(meta.get("alias"), str) or not meta["alias"]:
        raise InvalidInput(f"{where}: alias must be a non-empty string")
    if not isinstance(meta.get("run"), str) or not meta["run"].strip():
        raise InvalidInput(f"{where}: run must be a command template string")
    params = meta.get("params") or {}
    if not isinstance(params, dict):
        raise InvalidInput(f"{where}: params must map names to default values")
    for name in template_fields(meta["run"], where):
        if name not in params and name not in BUILTINS:
            raise InvalidInput(f"{where}: run uses {{{name}}}, which is not in params")
    for point in expand_grid(meta.get("grid") or {}, where=where):
        unknown = sorted(set(point) - set(params))
        if unknown:
            raise InvalidInput(f"{where}: grid names {', '.join(unknown)}, not in params")
    timeout = meta.get("timeout")
    if timeout is not None and (not isinstance(timeout, (int, float)) or timeout <= 0):
        raise InvalidInput(f"{where}: timeout must be a positive number of seconds")
    if not isinstance(meta.get("env") or {}, dict):
        raise InvalidInput(f"{where}: env must map names to values")
    check_block(meta.get("reproduces"), params, where)
    return [f"{where}: unknown key {key!r}" for key in meta if key not in KNOWN_KEYS]


def template_fields(template: str, where: str = "run") -> list[str]:
    """The ``{name}`` fields of a command template, in order.

    >>> template_fields("{python} x.py --n {n} {{literal}}")
    ['python', 'n']
    """
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise InvalidInput(f"{where}: bad template {template!r}: {exc}") from None
    fields = []
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if not name.isidentifier() or spec or conversion:
            raise InvalidInput(f"{where}: template field {{{name}}} must be a plain name")
        fields.append(name)
    return fields


def render(template: str, values: Mapping) -> str:
    """Fill ``template`` with shell-quoted ``values``.

    >>> render("echo {msg} {n}", {"msg": "a b", "n": 3})
    "echo 'a b' 3"
    """
    quoted = {name: shlex.quote(_text(values[name])) for name in template_fields(template)}
    return template.format_map(quoted)


def expand_grid(grid, *, where: str = "grid") -> Iterator[dict]:
    """Points of a grid: a mapping of name -> values (Cartesian product) or a list of them.

    A scalar value counts as a one-value list. Points come in the order written, the last
    name varying fastest.

    >>> list(expand_grid({"a": [1, 2], "b": "x"}))
    [{'a': 1, 'b': 'x'}, {'a': 2, 'b': 'x'}]
    >>> list(expand_grid([{"a": 1}, {"a": [2, 3]}]))
    [{'a': 1}, {'a': 2}, {'a': 3}]
    """
    blocks = grid if isinstance(grid, list) else [grid]
    for block in blocks:
        if not isinstance(block, dict):
            raise InvalidInput(f"{where}: a grid is a mapping of name -> values, or a list")
        names = list(block)
        axes = [v if isinstance(v, list) else [v] for v in block.values()]
        for combo in itertools.product(*axes):
            yield dict(zip(names, combo, strict=True))


def detect(root: Path, candidates: list[Path]) -> list[Path]:
    """The ``ckg.yaml`` files among ``candidates`` (paths relative to ``root``).

    >>> detect(Path("/r"), [Path("a/ckg.yaml"), Path("a/meta.yaml")])
    [PosixPath('a/ckg.yaml')]
    """
    return [rel for rel in candidates if Path(rel).name == FILENAME]


def find(root: Path) -> list[Path]:
    """Every ``ckg.yaml`` under ``root`` (absolute paths, sorted), VCS folders skipped."""
    found = []
    for path in Path(root).rglob(FILENAME):
        if not SKIP_DIRS.intersection(path.relative_to(root).parts):
            found.append(path)
    return sorted(found)


def read(root: Path, source_uid: str, files: list[Path] | None = None) -> Records:
    """Records of every ``ckg.yaml`` workflow under ``root``.

    Parameters
    ----------
    root : Path
        The source's folder.
    source_uid : str
        Stored on every artifact.
    files : list of Path, optional
        The ``ckg.yaml`` files to read (absolute, or relative to ``root``); None finds them.

    Examples
    --------
    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp()); (d / "w").mkdir()
    >>> _ = (d / "w" / "ckg.yaml").write_text("alias: w\\nrun: echo hi\\n")
    >>> [(n.props["alias"], n.props["format"], n.props["path"]) for n in read(d, "s1").nodes]
    [('w', 'ckg', 'w')]
    """
    root = Path(root)
    out = Records()
    for path in find(root) if files is None else files:
        path = Path(path)
        _read_one(root, source_uid, path if path.is_absolute() else root / path, out)
    return out


def _read_one(root: Path, source_uid: str, path: Path, out: Records) -> None:
    doc = load_mapping(path, root)
    if isinstance(doc, Problem):
        out.warnings.append(doc)
        return
    meta = doc.data
    try:
        for message in check_meta(meta, doc.rel):
            out.warnings.append(Problem(doc.rel, message.split(": ", 1)[1]))
    except InvalidInput as exc:
        out.warnings.append(Problem(doc.rel, str(exc).split(": ", 1)[1], _line(doc, exc)))
        return
    folder = relpath(path.parent, root)
    uid = str(meta.get("uid") or derived_uid(source_uid, folder))
    tags = split_tags(meta.get("tags", [])) or []
    out.nodes.append(
        Node(
            "Artifact",
            uid,
            {
                "uid": uid,
                "alias": meta["alias"],
                "kind": str(meta.get("kind") or "workflow"),
                "format": "ckg",
                "tags": tags,
                "path": folder,
                "meta": json_text(meta),
                "digest": digest(doc.raw),
                "source_uid": source_uid,
                "variations": [],
            },
        )
    )
    for position, entry in enumerate(meta.get("deps") or []):
        if not isinstance(entry, dict):
            out.warnings.append(
                Problem(doc.rel, "deps entry is not a mapping", doc.line_of("deps", position))
            )
            continue
        out.dependencies.append(
            Dependency(
                artifact_uid=uid,
                kind="deps",
                position=position,
                tags=split_tags(entry.get("tags")) or [],
                names=as_list(entry.get("names")),
                guard=guard_json(entry),
                path=doc.rel,
                line=doc.line_of("deps", position),
            )
        )


def _line(doc: Loaded, exc: InvalidInput) -> int | None:
    """The line of the first top-level key the error message names."""
    text = str(exc)
    for key in ("run", "params", "grid", "timeout", "env", "alias"):
        if f" {key} " in text or f": {key}" in text:
            return doc.line_of(key)
    return None


def _text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    return str(value)
