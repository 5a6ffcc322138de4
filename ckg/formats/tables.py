"""Users' own result tables: CSV, TSV, YAML or JSON rows.

Two shapes, recognised by their columns (names match ignoring case, spaces and ``_``):

- **long**: one result per row, with ``metric`` and ``value`` columns::

      paper,task,dataset,model,metric,value,unit,platform
      arXiv:1512.03385,Image Classification,ImageNet,ResNet-50,Top 1 Accuracy,76.1 (±0.2),,
      ,Image Classification,ImageNet,ResNet-50,Latency,12,ms,my-laptop

- **wide**: no ``metric`` column; every column that is not one of the identity columns below
  is a metric, and its name may carry the unit (``Latency (ms)``, ``Samples/s``)::

      model,dataset,Top-1 Accuracy,Latency (ms),Params
      ResNet-50,ImageNet,76.1%,12,25.6M

Identity columns: ``paper`` (a link, arXiv id or DOI; also ``paper_url``, ``arxiv``, ``doi``),
``title``, ``date``, ``task``, ``dataset``, ``model`` (also ``model_name``, ``method``),
``platform`` (a Platform uid such as ``platform:...`` from ``ckg run``, or any name, which makes
a Platform of that name), ``code`` (a repository URL), ``unit`` and ``stderr``. Other columns
of a long table are kept as the Result's ``attributes`` (JSON text).

YAML and JSON tables are a list of rows, or a mapping with a ``results`` list whose other keys
(``paper``, ``task``, ...) apply to every row. A row may also hold a ``metrics`` mapping of
metric to value, as a wide row. When a folder is ingested, CSV and TSV files are recognised by
their header, YAML and JSON tables only when their file name contains ``result``.

Files are read by the guarded loaders (:mod:`ckg.formats.loaders`, salvaged): one bad value
costs one warning naming the file and the row or line, and the rest of the file is read. A
key written twice in a row, or a column named twice, keeps its first value (the rule a table
already follows for two columns that fill one field, such as ``paper`` and ``paper_url``);
a CSV record with a field past :mod:`csv`'s limit is skipped.
"""

import csv
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path

from ckg.core.errors import InvalidInput
from ckg.core.records import Node, Problem
from ckg.formats.files import open_file
from ckg.formats.loaders import csv_records, load, read_text
from ckg.formats.published import ResultRecords, Row, build, norm_name

SUFFIXES = {".csv": ",", ".tsv": "\t"}
DATA_SUFFIXES = (".yaml", ".yml", ".json")
#: Column name (as :func:`_col` makes it) -> the field it fills.
IDENTITY = {
    "paper": "paper",
    "paperurl": "paper",
    "arxiv": "paper",
    "doi": "paper",
    "url": "paper",
    "title": "paper_title",
    "papertitle": "paper_title",
    "date": "paper_date",
    "paperdate": "paper_date",
    "task": "task",
    "dataset": "dataset",
    "model": "model",
    "modelname": "model",
    "method": "model",
    "platform": "platform",
    "system": "platform",
    "code": "code",
    "codeurl": "code",
    "repository": "code",
    "metric": "metric",
    "value": "value",
    "unit": "unit",
    "units": "unit",
    "stderr": "stderr",
    "std": "stderr",
    "error": "stderr",
}


def _col(name: object) -> str:
    return re.sub(r"[\s_-]+", "", str(name).casefold())


def is_table_header(columns: list[str]) -> bool:
    """Whether a header names a results table: ``metric`` and ``value``, or an identity pair."""
    fields = {IDENTITY.get(_col(c)) for c in columns}
    return (
        {"metric", "value"} <= fields
        or ("model" in fields or "paper" in fields)
        and bool({"task", "dataset"} & fields)
    )


def detect(root: Path, candidates: list[Path]) -> list[Path]:
    """Files among ``candidates`` that are results tables (see the module docstring)."""
    found = []
    for rel in candidates:
        suffix = rel.suffix.lower()
        if suffix in SUFFIXES:
            try:
                with io.TextIOWrapper(
                    open_file(root / rel, root), encoding="utf-8", errors="replace", newline=""
                ) as fh:
                    header = next(csv.reader(fh, delimiter=SUFFIXES[suffix]), [])
            except (OSError, csv.Error):  # csv.Error: a header field past csv's limit
                continue
            if is_table_header(header):
                found.append(rel)
        elif suffix in DATA_SUFFIXES and "result" in rel.name.lower():
            found.append(rel)
    return found


def read(root: Path, source_uid: str, files: list[str | Path] | None = None) -> ResultRecords:
    """Read result tables under ``root``: the ``files`` given, or all :func:`detect` finds.

    A file that is not a results table is one warning naming it.
    """
    root = Path(root)
    if files is None:
        files = detect(root, sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file()))
    out = ResultRecords()
    for rel in map(Path, files):
        rows = read_rows(root, rel, out.warnings)
        if isinstance(rows, Problem):
            out.warnings.append(rows)
            continue
        if rows and not any(_has_number(row.raw) for row in rows):
            # A file of another format read as a wide table makes one junk "metric" per
            # key and a null Result per row: refuse it loudly instead.
            columns = sorted({row.metric for row in rows if row.metric})[:6]
            out.warnings.append(
                Problem(
                    rel.as_posix(),
                    f"read as a results table, but none of its {len(rows)} cells holds a number "
                    f"(columns {', '.join(columns) or 'none'}): left out; is it in another format?",
                )
            )
            continue
        build(_with_platforms(rows, out), source_uid, out)
    return out


def _has_number(raw: object) -> bool:
    """Whether a cell could hold a published figure (a number, or text with a digit)."""
    if isinstance(raw, bool) or raw is None:
        return False
    if isinstance(raw, int | float):
        return True
    return isinstance(raw, str) and any(ch.isdigit() for ch in raw)


def read_rows(root: Path, rel: Path, warnings: list[Problem]) -> list[Row] | Problem:
    """The :class:`Row` values of the table file ``root / rel``, or one Problem naming it
    when it is not a table; what a bad value cost is added to ``warnings``."""
    name = rel.as_posix()
    suffix = rel.suffix.lower()
    found: list[Problem] = []
    try:
        if suffix in SUFFIXES:
            read = read_text(root / rel, root)
            if isinstance(read, Problem):
                return read
            table = csv_records(read[1], SUFFIXES[suffix], name, found)
            if isinstance(table, Problem):
                return table
            rows = list(_csv_rows(*table, name))
        elif suffix in DATA_SUFFIXES:
            doc = load(root / rel, root, salvage=True)
            if isinstance(doc, Problem):
                return doc
            found += doc.warnings
            rows = list(_data_rows(doc.data, name))
        else:
            raise InvalidInput("not a results table (expected .csv, .tsv, .yaml, .yml or .json)")
    except InvalidInput as exc:
        return Problem(name, str(exc))
    warnings += found
    return rows


def _csv_rows(header: list[str], records: Iterator, name: str) -> Iterator[Row]:
    if not header or not is_table_header(header):
        raise InvalidInput(
            "not a results table: the header needs metric and value columns, "
            "or model or paper with task or dataset"
        )
    for line, record in records:
        if not any(cell.strip() for cell in record.values()):
            continue
        yield from _record_rows(record, name, f"line {line}", line)


def _data_rows(data: object, name: str) -> Iterator[Row]:
    defaults: dict = {}
    if isinstance(data, dict) and isinstance(data.get("results"), list):
        defaults = {k: v for k, v in data.items() if k != "results"}
        data = data["results"]
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise InvalidInput("not a results table: expected a list of rows or a 'results' list")
    for index, record in enumerate(data):
        yield from _record_rows({**defaults, **record}, name, f"row {index}", None)


def _record_rows(record: dict, name: str, where: str, line: int | None) -> Iterator[Row]:
    """One Row for a long record, one per metric column for a wide one."""
    fields: dict[str, object] = {}
    others: dict[str, object] = {}
    for column, cell in record.items():
        target = IDENTITY.get(_col(column))
        if target and target not in fields:
            fields[target] = cell
        elif column == "metrics" and isinstance(cell, dict):
            continue
        else:
            others[str(column)] = cell
    common = {
        "task": _text(fields.get("task")),
        "dataset": _text(fields.get("dataset")),
        "model": _text(fields.get("model")),
        "paper": _text(fields.get("paper")),
        "paper_title": _text(fields.get("paper_title")),
        "paper_date": _text(fields.get("paper_date")),
        "code_links": [_text(fields["code"])] if fields.get("code") else [],
        "platform": _text(fields.get("platform")),
        "line": line,
    }
    if "metric" in fields or "value" in fields:
        extra = {"attributes": json.dumps(others, default=str)} if others else {}
        value = fields.get("value")
        if fields.get("stderr") not in (None, "") and value not in (None, ""):
            value = f"{value} ± {fields['stderr']}"
        yield Row(
            name,
            where,
            _text(fields.get("metric")),
            value,
            unit=_text(fields.get("unit")),
            extra=extra,
            **common,
        )
        return
    metrics = record.get("metrics") if isinstance(record.get("metrics"), dict) else {}
    cells = {**others, **metrics}
    if not cells:
        yield Row(name, where, "", None, **common)
    for column, cell in cells.items():
        yield Row(name, where, str(column), cell, **common)


def _with_platforms(rows: list[Row], out: ResultRecords) -> Iterator[Row]:
    """Turn platform names into Platform nodes (a ``platform:`` uid is linked as given)."""
    made: set[str] = set()
    for row in rows:
        name = row.platform
        if name and not name.startswith("platform:"):
            row.platform = f"platform:named:{norm_name(name)}"
            if row.platform not in made:
                made.add(row.platform)
                out.nodes.append(
                    Node("Platform", row.platform, {"uid": row.platform, "name": name})
                )
        elif name and name not in made:
            made.add(name)
            out.nodes.append(Node("Platform", name, {"uid": name}))
        yield row


def _text(value: object) -> str:
    return "" if value is None else str(value).strip()
