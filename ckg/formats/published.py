"""Published results to records: the part the pwc, mlperf and tables importers share.

Each of those importers reads its format into :class:`Row` values (one published number, or
one cell that should have held one) and hands them to :func:`build`, which normalises the
value (:mod:`ckg.core.values`) and the metric name (:mod:`ckg.core.metrics`) and makes the nodes and
edges of DESIGN.md:

``(Paper)-[:REPORTS]->(Result)``, ``(Result)-[:FOR_TASK]->(Task)``,
``(Result)-[:ON_DATASET]->(Dataset)``, ``(Result)-[:OF_MODEL]->(Model)``,
``(Result)-[:OF_METRIC]->(Metric)`` and ``(Result)-[:ON]->(Platform)``; a dataset that is
part of another (a Papers with Code sub-dataset) adds ``(Dataset)-[:PART_OF]->(Dataset)``.

Accounting: every row becomes a ``Result`` or a warning, never nothing. A readable value
is a Result; an unreadable one is a Result whose ``value`` is null, keeping ``raw``, plus one
warning; a cell that publishes no value (``-``, ``N/A``, empty) or a row with no metric is one
warning and no Result. A pair of figures under a column that names both (``78.9/78.6`` under
``Pearson/Spearman``, :func:`ckg.core.values.read_cell`) is two Results. :class:`Tally` counts
each case.

Each Result names the cell it was read from (``cell``: the row's place, then the column) and
is keyed by it (:func:`result_uid`), so no two cells of a file are one Result; two cells that
a reader placed at the same spot are both kept, the second with ``(2)`` after its place, and
one warning names both.
"""

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from ckg.core import metrics
from ckg.core.records import Edge, Node, Problem, Records
from ckg.core.values import read_cell
from ckg.formats.loaders import Loaded, json_text, parse, read_text
from ckg.formats.papers import paper_uid, repo_url


@dataclass(slots=True)
class Row:
    """One published number as a source states it, before normalisation.

    ``where`` locates it for warnings and for the Result's stable uid (file, then a pointer
    such as ``Question Answering/SQuAD1.1/row 12``); ``extra`` holds primitive properties
    the format adds to the Result (scenario, division, ``uses_additional_data``);
    ``part_of`` the datasets that ``dataset`` is part of, nearest first; ``column`` the column
    a figure of a pair was read from, where ``metric`` names that figure.
    """

    path: str
    where: str
    metric: str
    raw: object
    task: str = ""
    dataset: str = ""
    model: str = ""
    paper: str = ""  # a link or identifier, see ckg.formats.papers.paper_uid
    paper_title: str = ""
    paper_date: str = ""
    code_links: list[str] = field(default_factory=list)
    unit: str = ""  # a unit stated beside the value (unit column, Result_Units)
    platform: str = ""  # uid of a Platform node the importer also returns
    line: int | None = None
    extra: dict = field(default_factory=dict)
    part_of: list[str] = field(default_factory=list)
    column: str = ""


@dataclass(slots=True)
class Tally:
    """How the rows of one import were accounted for."""

    results: int = 0
    unreadable: int = 0  # Results whose value is null, each with a warning
    missing: int = 0  # cells publishing no value: a warning, no Result
    no_metric: int = 0  # rows naming no metric: a warning, no Result

    @property
    def rows(self) -> int:
        """Every row seen: results plus those that only left a warning."""
        return self.results + self.missing + self.no_metric


@dataclass(slots=True)
class ResultRecords(Records):
    """:class:`ckg.core.records.Records` of an import of published results, plus its tally."""

    tally: Tally = field(default_factory=Tally)


#: What :func:`read_json` returns for a file it could not read (JSON ``null`` is a document).
UNREADABLE = object()


def read_json(root: Path, rel: Path, out: Records) -> object:
    """The JSON document at ``root / rel``, or UNREADABLE with one warning naming the file.

    Read by the guarded loader, salvaged (:mod:`ckg.formats.loaders`): what one bad value
    cost is a warning added to ``out``, and the rest of the document is read.
    """
    doc = parse_json(root, rel)
    if isinstance(doc, Problem):
        why = doc.message.removeprefix("invalid JSON: ")
        out.warnings.append(Problem(doc.path, f"not readable as JSON: {why}", doc.line))
        return UNREADABLE
    out.warnings.extend(doc.warnings)
    return doc.data


def parse_json(root: Path, rel: Path) -> Loaded | Problem:
    """``root / rel`` read as JSON whatever its suffix, salvaged (:func:`read_json`)."""
    read = read_text(root / rel, root)
    if isinstance(read, Problem):
        return read
    raw, text = read
    return parse(text, rel.as_posix(), ".json", raw=raw, salvage=True)


def merge(out: ResultRecords, part: ResultRecords) -> None:
    """Add the records and the tally of ``part`` to ``out``."""
    out.extend(part)
    for name in ("results", "unreadable", "missing", "no_metric"):
        setattr(out.tally, name, getattr(out.tally, name) + getattr(part.tally, name))


def build_file(
    path: str,
    rows: Iterable[Row],
    source_uid: str,
    out: ResultRecords,
    part: ResultRecords | None = None,
) -> None:
    """:func:`build` of one file's ``rows``, so that a value of an odd shape (a list where a
    record belongs) costs one warning naming the file, not the import: the file's records
    go to ``part`` (the records its rows' generator also adds to, or new ones), merged
    into ``out`` only when all was built."""
    part = ResultRecords() if part is None else part
    try:
        build(rows, source_uid, part)
    except (AttributeError, TypeError, KeyError) as exc:
        out.warnings.append(Problem(path, f"unexpected structure: {exc}"))
    else:
        merge(out, part)


def primitive(value: object) -> object:
    """``value`` if a graph property holds it as it is (text, number, flag, null, a list of
    text), else its JSON text: a file can put a mapping where a name belongs.

    >>> primitive("v4.0"), primitive(["a", "b"]), primitive({"a": [1]}), primitive([1, "a"])
    ('v4.0', ['a', 'b'], '{"a":[1]}', '[1,"a"]')
    """
    if value is None or type(value) in _PRIMITIVES:
        return value
    if type(value) is list and all(type(item) is str for item in value):
        return value
    return json_text(value)


_PRIMITIVES = frozenset({str, int, float, bool})


def norm_name(text: object) -> str:
    """A Task, Dataset or Model name: the published text with whitespace collapsed.

    >>> norm_name("  SQuAD1.1 \\n dev ")
    'SQuAD1.1 dev'
    """
    return re.sub(r"\s+", " ", str(text or "")).strip()


def result_uid(source_uid: str, path: str, where: str, metric: str) -> str:
    """A Result's key: stable across re-ingestion of the same source, unique per cell."""
    digest = hashlib.sha256("\0".join((source_uid, path, where, metric)).encode()).hexdigest()
    return f"result:{digest[:24]}"


def build(rows: Iterable[Row], source_uid: str, out: ResultRecords | None = None) -> ResultRecords:
    """Normalise ``rows`` into nodes, edges and warnings (added to ``out`` when given)."""
    out = out if out is not None else ResultRecords()
    nodes: dict[tuple[str, str], Node] = {}
    records = out

    def node(label: str, key: str, props: dict) -> None:
        found = nodes.get((label, key))
        clean = {k: v for k, v in props.items() if v not in (None, "", [])}
        if found is None:
            nodes[(label, key)] = Node(label, key, clean)
        else:
            found.props.update(clean)

    parsed = [
        (replace(row, metric=name, column=row.metric) if name else row, value)
        for row in rows
        for name, value in read_cell(row.raw, row.metric, unit=row.unit or None)
    ]
    scaled = _fraction_boards(parsed)
    placed: dict[str, Row] = {}  # uid -> the cell it was made for
    parts: set[tuple[str, str]] = set()
    for row, value in parsed:
        if not norm_name(row.metric):
            out.tally.no_metric += 1
            records.warnings.append(
                Problem(row.path, f"{row.where}: no metric named, row skipped", row.line)
            )
            continue
        if value.missing:
            out.tally.missing += 1
            records.warnings.append(
                Problem(row.path, f"{cell_name(row)}: no value ({value.raw!r})", row.line)
            )
            continue
        row, uid = _place(row, source_uid, placed, records)
        if not value.ok:
            out.tally.unreadable += 1
            records.warnings.append(
                Problem(row.path, f"{cell_name(row)}: {value.warning}", row.line)
            )
        out.tally.results += 1
        metric = metrics.resolve(norm_name(row.metric))
        extra = {key: primitive(value) for key, value in row.extra.items()}
        if _board(row) in scaled and value.value is not None:
            stderr = value.stderr * 100 if value.stderr is not None else None
            value = replace(value, value=value.value * 100, stderr=stderr, unit="%")
            extra["scale"] = SCALED
        task, dataset, model = norm_name(row.task), norm_name(row.dataset), norm_name(row.model)
        within = [norm_name(d) for d in row.part_of]
        paper = paper_uid(row.paper)
        node(
            "Result",
            uid,
            {
                "uid": uid,
                "metric": metric.name,
                "metric_label": norm_name(row.metric),
                "value": value.value,
                "unit": value.unit,
                "stderr": value.stderr,
                "raw": value.raw,
                "stripped": list(value.stripped),
                "cell": cell_name(row),
                "column": row.column,
                "source_uid": source_uid,
                "path": row.path,
                "task": task,
                "dataset": dataset,
                "parent_dataset": within[0] if dataset and within else "",
                "model": model,
                "paper_uid": paper,
                "date": row.paper_date,
                **extra,
            },
        )
        node(
            "Metric",
            metric.name,
            {
                "name": metric.name,
                "direction": metric.direction,
                "unit": metric.unit,
                "aliases": list(metric.aliases),
                "base": metric.base,
                "description": metric.description,
            },
        )
        records.edges.append(Edge("OF_METRIC", "Result", uid, "Metric", metric.name))
        for label, rel, name in (
            ("Task", "FOR_TASK", task),
            ("Dataset", "ON_DATASET", dataset),
            ("Model", "OF_MODEL", model),
        ):
            if name:
                node(label, name, {"name": name})
                records.edges.append(Edge(rel, "Result", uid, label, name))
        for part, whole in zip([dataset, *within][:-1], within, strict=True) if dataset else ():
            if (part, whole) not in parts:
                parts.add((part, whole))
                node("Dataset", whole, {"name": whole})
                records.edges.append(Edge("PART_OF", "Dataset", part, "Dataset", whole))
        if paper:
            code = sorted({u for u in map(repo_url, row.code_links) if u})
            props = {
                "uid": paper,
                "url": _paper_link(row.paper, paper),
                "title": row.paper_title,
                "date": row.paper_date,
                "code_urls": code,
                "reported_dates": [f"{row.paper_date} ({row.path})"] if row.paper_date else [],
            }
            found = nodes.get(("Paper", paper))
            if found is None:
                node("Paper", paper, props)
            else:
                _merge_paper(found, props)
            records.edges.append(Edge("REPORTS", "Paper", paper, "Result", uid))
        if row.platform:
            records.edges.append(Edge("ON", "Result", uid, "Platform", row.platform))
    records.nodes.extend(nodes.values())
    return out


def cell_name(row: Row) -> str:
    """The cell a row was read from, as warnings and ``Result.cell`` name it.

    >>> cell_name(Row("f.json", "QA/SQuAD1.1/row 3", "Pearson", "1", column="Pearson/Spearman"))
    'QA/SQuAD1.1/row 3: Pearson/Spearman'
    """
    return f"{row.where}: {row.column or row.metric}"


def _place(row: Row, source_uid: str, placed: dict[str, Row], out: Records) -> tuple[Row, str]:
    """The row and the uid of its Result: its own, or, where a cell read before holds that
    uid (a reader placed two cells at one spot: a task or dataset named twice in a file),
    one made from its place with ``(2)``, ``(3)`` ... after it, and a warning naming both."""
    key = f"{row.column}:{row.metric}" if row.column else row.metric
    uid = result_uid(source_uid, row.path, row.where, key)
    first, n = placed.get(uid), 1
    while uid in placed:
        n += 1
        uid = result_uid(source_uid, row.path, f"{row.where} ({n})", key)
    if first is not None:
        row = replace(row, where=f"{row.where} ({n})")
        out.warnings.append(
            Problem(
                row.path,
                (
                    f"{cell_name(first)} ({first.model or 'no model'}: {first.raw!r}) and the cell "
                    f"after it at that place ({row.model or 'no model'}: {row.raw!r}) would be one "
                    f"Result: kept apart, the second as {cell_name(row)}"
                ),
                row.line,
            )
        )
    placed[uid] = row
    return row, uid


def _merge_paper(kept: Node, props: dict) -> None:
    """One Paper seen twice: the earliest date (the first version), every date with where it
    was read, code links joined, the first title and link kept."""
    dates = [d for d in (kept.props.get("date"), props.get("date")) if d]
    if dates:
        kept.props["date"] = min(dates)
    reported = list(kept.props.get("reported_dates") or [])
    reported += [d for d in props.get("reported_dates") or [] if d not in reported]
    kept.props["reported_dates"] = sorted(reported)
    code = set(kept.props.get("code_urls") or []) | set(props.get("code_urls") or [])
    if code:
        kept.props["code_urls"] = sorted(code)
    for key in ("title", "url"):
        if not kept.props.get(key) and props.get(key):
            kept.props[key] = props[key]


def settle_papers(out: Records) -> None:
    """Make each Paper one node across the files of one import, dated by one rule.

    A paper that several files date differently keeps its earliest date, lists every date
    with its file in ``reported_dates``, and gets one warning naming them: both engines then
    store the same date, whatever order they write in.
    """
    kept: dict[str, Node] = {}
    others = []
    for n in out.nodes:
        if n.label != "Paper":
            others.append(n)
        elif n.key in kept:
            _merge_paper(kept[n.key], n.props)
        else:
            kept[n.key] = n
    for paper in kept.values():
        dates = {d.split(" (", 1)[0] for d in paper.props.get("reported_dates") or []}
        if len(dates) > 1:
            out.warnings.append(
                Problem(
                    paper.key,
                    f"dated {'; '.join(paper.props['reported_dates'])}: kept the "
                    f"earliest, {paper.props['date']}",
                )
            )
    out.nodes[:] = others + list(kept.values())


#: Said on a Result whose leaderboard published fractions of a percentage metric.
SCALED = "x100: its leaderboard is on a 0-1 scale"


def _board(row: Row) -> tuple:
    return (
        row.path,
        norm_name(row.task),
        norm_name(row.dataset),
        metrics.canonical_name(norm_name(row.metric)),
    )


def _fraction_boards(parsed: list) -> set[tuple]:
    """Leaderboards (file, task, dataset, metric) that publish a percentage metric where
    higher is better as fractions: every value in [0, 1], none written with ``%``, at least
    two of them. Accuracy 0.93 is 93 %, never 0.93 %. Error rates are left alone, since
    0.21 % is a plausible error.

    >>> from ckg.core.values import parse_value
    >>> rows = [Row("f", "r1", "Accuracy", "0.93"), Row("f", "r2", "Accuracy", "0.87")]
    >>> _fraction_boards([(r, parse_value(r.raw, r.metric)) for r in rows])
    {('f', '', '', 'accuracy')}
    """
    values: dict[tuple, list] = {}
    for row, value in parsed:
        if value.value is not None and norm_name(row.metric):
            values.setdefault(_board(row), []).append((row, value))
    boards = set()
    for board, cells in values.items():
        metric = metrics.resolve(board[3])
        if metric.unit != "%" or metric.direction != "max" or len(cells) < 2:
            continue
        if all(0 <= v.value <= 1 and "%" not in str(r.raw) for r, v in cells):
            boards.add(board)
    return boards


def _paper_link(link: str, uid: str) -> str:
    """A clickable link for a paper: arXiv's abstract page for arXiv ids, else the DOI or URL."""
    if uid.startswith("arxiv:"):
        return f"https://arxiv.org/abs/{uid.removeprefix('arxiv:')}"
    if uid.startswith("doi:"):
        return f"https://doi.org/{uid.removeprefix('doi:')}"
    return uid if uid.startswith("https://") else link
