"""Named queries: parameterized Cypher files in the package's ``ckg/graph/queries/`` folder.

A named query is a ``.cypher`` file whose leading ``//`` comment is its documentation::

    // One-line description.
    // More description lines.
    //
    // Parameters:
    //   task      Task name as ingested, e.g. "Question Answering".
    //   metric    (optional) Metric, canonical name or alias.
    //   tags      (list) Tags that must all be present.
    //
    // Example:
    //   ckg query compare-papers -p task="Question Answering" -p dataset=SQuAD1.1 -p metric=f1
    //
    // Table: metric, model, value, unit, paper, date
    MATCH ...

The name is the file name without ``.cypher``. Parameter options in brackets: ``optional``
(null when not given), ``list`` (a comma-separated string is split), ``default <JSON>``. A
parameter named ``metric`` is mapped as ckg names metrics when it imports them
(:func:`ckg.core.metrics.canonical_name`), so ``F1`` finds ``f1`` and ``ANS-EM`` finds ``ans_em``;
``Table:`` names the columns a terminal too narrow for every column shows first (optional);
one named ``paper`` is keyed as papers are (:func:`ckg.formats.papers.paper_uid`), so
``arXiv:1810.04805v2`` finds ``arxiv:1810.04805``.
Every ``$name`` the Cypher uses must be declared and vice versa (checked when loaded).

Examples
--------
>>> q = load("compare-papers")
>>> [(p.name, p.optional) for p in q.params]
[('dataset', False), ('task', True), ('metric', True), ('direction', True)]
>>> q.bind({"task": "QA"})  # doctest: +ELLIPSIS
Traceback (most recent call last):
ckg.core.errors.UsageError: query compare-papers needs parameter 'dataset' (...)
>>> q.bind({"dataset": "SQuAD1.1", "metric": "F1"})
{'dataset': 'SQuAD1.1', 'task': None, 'metric': 'f1', 'direction': None}
"""

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from ckg.core import metrics
from ckg.core.errors import InvalidInput, NotFound, UsageError, did_you_mean
from ckg.formats.papers import paper_uid

#: The queries ckg ships, inside the package so that an installed ckg has them too;
#: ``CKG_QUERIES`` (os.pathsep-separated) adds folders.
QUERIES_DIR = Path(__file__).resolve().parent / "queries"
_PARAM_LINE = re.compile(r"^\s+\$?(?P<name>[A-Za-z_]\w*)\s+(?:\((?P<opts>[^)]*)\)\s*)?(?P<doc>.*)$")
_PARAM_USE = re.compile(r"\$([A-Za-z_]\w*)")
_NAME = re.compile(r"^[A-Za-z0-9][\w.-]*$")


@dataclass(frozen=True, slots=True)
class Param:
    """One declared parameter: ``optional`` ones default to ``default`` (null unless given)."""

    name: str
    description: str = ""
    optional: bool = False
    is_list: bool = False
    default: object = None


@dataclass(frozen=True, slots=True)
class NamedQuery:
    """A parsed query file: its name, header documentation and Cypher text."""

    name: str
    description: str
    cypher: str
    params: tuple[Param, ...] = ()
    example: str = ""
    details: str = ""
    path: Path | None = field(default=None, compare=False)
    table: tuple[str, ...] = ()

    def bind(self, given: dict | None) -> dict:
        """The parameters to send: ``given`` checked, defaults filled, lists split, metric mapped.

        Raises
        ------
        UsageError
            When a required parameter is missing (named) or an unknown one is given.
        """
        given = dict(given or {})
        known = {p.name for p in self.params}
        unknown = sorted(set(given) - known)
        if unknown:
            raise UsageError(
                f"query {self.name} has no parameter {unknown[0]!r} "
                f"(parameters: {', '.join(sorted(known)) or 'none'})"
            )
        bound = {}
        for param in self.params:
            if param.name not in given:
                if not param.optional:
                    raise UsageError(
                        f"query {self.name} needs parameter {param.name!r} ({param.description})"
                    )
                bound[param.name] = param.default
                continue
            value = given[param.name]
            if param.is_list and isinstance(value, str):
                value = [v.strip() for v in value.split(",") if v.strip()]
            elif param.is_list and not isinstance(value, list):
                value = [value]
            if param.name == "metric" and isinstance(value, str):
                value = metrics.canonical_name(value)
            elif param.name == "paper" and isinstance(value, str):
                value = paper_uid(value) or value
            elif param.name == "direction" and value not in (None, "min", "max"):
                raise UsageError(f"query {self.name}: direction must be min or max, not {value!r}")
            bound[param.name] = value
        return bound


def parse(text: str, name: str, path: Path | None = None) -> NamedQuery:
    """Parse a query file's text; raises InvalidInput when header and Cypher disagree."""
    lines = text.splitlines()
    header = []
    for line in lines:
        if not line.startswith("//"):
            break
        header.append(line[2:].removeprefix(" ") if line.startswith("// ") else line[2:])
    cypher = "\n".join(lines[len(header) :]).strip()
    where = path or name
    if not cypher:
        raise InvalidInput(f"{where}: no Cypher after the header comment")
    section, description, details, example = "text", "", [], []
    params: list[Param] = []
    table: tuple[str, ...] = ()
    for line in header:
        stripped = line.strip()
        if stripped.lower().startswith("table:"):
            table = tuple(c.strip() for c in stripped[6:].split(",") if c.strip())
        elif stripped.lower() in ("parameters:", "params:"):
            section = "params"
        elif stripped.lower() in ("example:", "examples:"):
            section = "example"
        elif section == "text" and stripped:
            if description:
                details.append(stripped)
            else:
                description = stripped
        elif section == "params" and stripped:
            params.append(_param(line, where))
        elif section == "example" and stripped:
            example.append(stripped)
    if not description:
        raise InvalidInput(f"{where}: the header comment must start with a one-line description")
    returned = set(re.findall(r"\bAS\s+(\w+)", _strip_strings(cypher), re.IGNORECASE))
    unknown = [c for c in table if c not in returned]
    if unknown:
        raise InvalidInput(f"{where}: Table: names {unknown[0]!r}, which the query does not return")
    used = set(_PARAM_USE.findall(_strip_strings(cypher)))
    declared = {p.name for p in params}
    if used != declared:
        missing, extra = sorted(used - declared), sorted(declared - used)
        raise InvalidInput(
            f"{where}: parameters used but not declared: {missing or 'none'}; "
            f"declared but not used: {extra or 'none'}"
        )
    return NamedQuery(
        name,
        description,
        cypher,
        tuple(params),
        "\n".join(example),
        " ".join(details),
        path,
        table,
    )


def _param(line: str, where: object) -> Param:
    match = _PARAM_LINE.match(line)
    if not match:
        raise InvalidInput(f"{where}: cannot read parameter line {line.strip()!r}")
    optional, is_list, default = False, False, None
    for opt in (match.group("opts") or "").split(","):
        opt = opt.strip()
        if opt == "optional":
            optional = True
        elif opt == "list":
            is_list = True
        elif opt.startswith("default"):
            optional = True
            raw = opt.removeprefix("default").strip(" :=")
            try:
                default = json.loads(raw)
            except ValueError:
                default = raw
        elif opt:
            raise InvalidInput(f"{where}: unknown parameter option {opt!r}")
    return Param(match.group("name"), match.group("doc").strip(), optional, is_list, default)


def _strip_strings(cypher: str) -> str:
    """Cypher without string literals and comments, so a '$' inside them is no parameter."""
    cypher = re.sub(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"", "''", cypher)
    return re.sub(r"//[^\n]*", "", cypher)


def folders() -> list[Path]:
    """Where named queries are looked up: ``$CKG_QUERIES`` folders, then QUERIES_DIR."""
    extra = [Path(p).expanduser() for p in os.environ.get("CKG_QUERIES", "").split(os.pathsep) if p]
    return [*extra, QUERIES_DIR]


def load(name_or_path: str | Path) -> NamedQuery:
    """A named query by name (``compare-papers``) or by ``.cypher`` file path.

    Raises NotFound listing the known names when there is no such query.
    """
    text = str(name_or_path)
    if text.endswith(".cypher"):
        path = Path(text).expanduser()
        if not path.is_file():
            raise NotFound(f"no query file {text}")
        return parse(path.read_text(encoding="utf-8"), path.stem, path)
    if _NAME.match(text):
        for folder in folders():
            path = folder / f"{text}.cypher"
            if path.is_file():
                return parse(path.read_text(encoding="utf-8"), text, path)
    names = [q.name for q in all_queries()]
    raise NotFound(f"no named query {text!r}{did_you_mean(text, names)}; known: {', '.join(names)}")


def find(text: str) -> NamedQuery | None:
    """The named query or query file ``text`` names, or None when it is Cypher text.

    A single word is taken for a name (no Cypher statement is one word), so a misspelt name
    raises NotFound listing the known ones instead of reaching the engine as Cypher.
    """
    if text.endswith(".cypher") or _NAME.match(text):
        return load(text)
    return None


def all_queries() -> list[NamedQuery]:
    """Every named query, by name (a name in an earlier folder hides a later one)."""
    found: dict[str, NamedQuery] = {}
    for folder in folders():
        for path in sorted(folder.glob("*.cypher")):
            found.setdefault(path.stem, parse(path.read_text(encoding="utf-8"), path.stem, path))
    return sorted(found.values(), key=lambda q: q.name)


def run(store, query: NamedQuery | str, params: dict | None = None) -> list[dict]:
    """Run a named query (or one given by name or path, :func:`load`) on ``store``.

    Raises
    ------
    NotFound
        No query of that name or path.
    UsageError
        A parameter the query needs is missing (:meth:`NamedQuery.bind`).
    """
    if not isinstance(query, NamedQuery):
        query = load(query)
    return store.run(query.cypher, query.bind(params))


#: Parameters whose value names a node, and the node's label and the property that holds it.
_NAMING_PARAMS = {
    "dataset": ("Dataset", "name"),
    "task": ("Task", "name"),
    "metric": ("Metric", "name"),
    "model": ("Model", "name"),
    "paper": ("Paper", "uid"),
    "artifact": ("Artifact", "alias"),
}

#: How a graph comes to hold nodes of a label a query reads.
_HOW_TO_FILL = {
    "Result": "ckg ingest a source of published results (Papers with Code JSON, MLPerf "
    "cm-result.json) or ckg results import a table",
    "Run": "ckg run records runs",
    "Artifact": "ckg ingest a repository, archive or folder",
}


def why_empty(store, query: NamedQuery, params: dict | None = None) -> str:
    """Why ``query`` found no rows in ``store``, as a hint for the reader: a kind of node it
    reads that the graph holds none of yet, else a value that names no node in the graph
    (with close names), else that nothing matched."""
    bound = query.bind(params)
    for label, how in _HOW_TO_FILL.items():
        if f":{label}" in query.cypher:
            rows = store.run(f"MATCH (n:{label}) RETURN count(n) AS n")
            if not rows[0]["n"]:
                return f"the graph holds no {label} yet: {how}"
    for name, (label, key) in _NAMING_PARAMS.items():
        value = bound.get(name)
        if not isinstance(value, str):
            continue
        names = [
            r["v"] for r in store.run(f"MATCH (n:{label}) RETURN DISTINCT n.{key} AS v") if r["v"]
        ]
        if value not in names and not (label == "Artifact" and _is_uid(store, value)):
            return f"no {label} {value!r} in the graph{did_you_mean(value, names)}"
    return "nothing matched those parameters"


def _is_uid(store, value: str) -> bool:
    return bool(store.run("MATCH (a:Artifact {uid: $v}) RETURN a.uid AS uid", {"v": value}))
