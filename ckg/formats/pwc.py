"""Papers with Code leaderboards in the sota-extractor JSON format.

A file is a list of tasks (or one task): ``task``, ``datasets``, ``subtasks`` (tasks again);
a dataset has ``dataset``, ``sota`` (``metrics``: the leaderboard's columns, ``rows``) and
``subdatasets``: datasets again, each named by ``subdataset`` (SemEval 2018's "General",
"Medical domain" and "Music domain"). A row has ``model_name``, ``paper_title``,
``paper_url``, ``paper_date``, ``code_links`` (``{title, url}``), ``uses_additional_data`` and
``metrics``, a map of column to the string as published (``"90.871"``, ``"9.9m"``, ``"-"``).

Each (row, column) is one cell: the columns are the leaderboard's declared ``metrics`` plus any
other a row carries, so a row that leaves a declared column out is accounted for as a cell
with no value. Cells become Results through :func:`ckg.formats.published.build`.

A sub-dataset is a dataset of its own, named after its parent: ``SemEval 2018 / General``,
part of ``SemEval 2018`` (``(:Dataset)-[:PART_OF]->(:Dataset)``). Its cells are placed as
``<task>/<parent> / <sub-dataset>/row <n>``, so that they never share a Result with the cells
of its parent or of its sister sub-datasets (a sub-dataset with no name is ``subdataset
<n>``, by its position).

Example
-------
>>> from pathlib import Path
>>> out = read(Path("../shared/corpora/pwc"), "src", files=["record.json"])  # doctest: +SKIP
>>> out.tally.results                                                       # doctest: +SKIP
24
"""

from collections.abc import Iterator
from pathlib import Path

from ckg.core.errors import InvalidInput
from ckg.core.records import Problem
from ckg.formats.published import UNREADABLE, ResultRecords, Row, build_file, parse_json, read_json


def is_pwc(data: object) -> bool:
    """Whether parsed JSON is a sota-extractor task list (or a single task)."""
    return not why_not(data)


def why_not(data: object) -> str:
    """Why parsed JSON is not a sota-extractor task list, or ``""`` when it is one.

    Decided by structure: a task is an object with ``task``; ``datasets`` and ``subtasks``,
    where present, are lists. Real task lists hold tasks with neither (a task with no
    leaderboard yet), so only one task of the file needs one of them.

    >>> why_not([{"task": "A", "datasets": []}, {"task": "B", "description": "no board"}])
    ''
    >>> why_not([{"name": "x"}])
    'item 0 has no "task" key'
    """
    tasks = data if isinstance(data, list) else [data]
    if not tasks:
        return "an empty list"
    boards = 0
    for index, task in enumerate(tasks):
        if not isinstance(task, dict) or "task" not in task:
            return f'item {index} has no "task" key'
        for key in ("datasets", "subtasks"):
            if key in task and task[key] is not None and not isinstance(task[key], list):
                return f'task {task["task"]!r}: "{key}" is not a list'
        boards += "datasets" in task or "subtasks" in task
    return "" if boards else 'no task has "datasets" or "subtasks"'


def detect(root: Path, candidates: list[Path]) -> list[Path]:
    """The JSON files among ``candidates`` (relative to ``root``) that are PwC leaderboards."""
    found = []
    for rel in candidates:
        if rel.suffix.lower() != ".json":
            continue
        # Keys may come in any order ("task" sorts last): sniff for the nested keys, then
        # parse only the files that have them.
        head = _head(root / rel)
        if not any(key in head for key in ('"datasets"', '"subtasks"', '"sota"')):
            continue
        doc = parse_json(root, rel)
        if not isinstance(doc, Problem) and is_pwc(doc.data):
            found.append(rel)
    return found


def read(root: Path, source_uid: str, files: list[str | Path] | None = None) -> ResultRecords:
    """Read leaderboard files under ``root`` (all ``*.json`` when ``files`` is None).

    A file that is not valid JSON or not in this format is one warning naming it.
    """
    root = Path(root)
    paths = [Path(f) for f in files] if files is not None else _json_files(root)
    out = ResultRecords()
    for rel in paths:
        name = rel.as_posix()
        data = read_json(root, rel, out)
        if data is UNREADABLE:
            continue
        reason = why_not(data)
        if reason:
            out.warnings.append(
                Problem(name, f"not a Papers with Code (sota-extractor) task list: {reason}")
            )
            continue
        build_file(name, rows(data, name), source_uid, out)
    return out


def read_file(path: Path, source_uid: str) -> ResultRecords:
    """Read one leaderboard file; raises InvalidInput when it is not one."""
    out = read(path.parent, source_uid, [path.name])
    if not out.nodes and out.warnings and not out.tally.rows:
        raise InvalidInput(str(out.warnings[0]))
    return out


def rows(data: object, path: str) -> Iterator[Row]:
    """Every cell of every leaderboard in a parsed file, tasks and subtasks alike."""
    for task in data if isinstance(data, list) else [data]:
        yield from _task_rows(task, path, parent="")


def _task_rows(task: dict, path: str, parent: str) -> Iterator[Row]:
    name = str(task.get("task") or "")
    for dataset in task.get("datasets") or []:
        yield from _dataset_rows(dataset, name, path, str(dataset.get("dataset") or ""), [])
    for sub in task.get("subtasks") or []:
        yield from _task_rows(sub, path, parent=name)


def _dataset_rows(
    dataset: dict, task: str, path: str, name: str, part_of: list[str]
) -> Iterator[Row]:
    """The cells of one dataset (``name``, its full name) and of its sub-datasets."""
    sota = dataset.get("sota") or {}
    # A column declared twice is still one cell of each row.
    declared = list(dict.fromkeys(str(m) for m in sota.get("metrics") or []))
    for index, row in enumerate(sota.get("rows") or []):
        where = f"{task}/{name}/row {index}"
        cells = row.get("metrics") or {}
        columns = declared + [c for c in cells if c not in declared]
        if not columns:
            yield Row(path, where, "", None, task=task, dataset=name, part_of=part_of)
            continue
        paper = str(row.get("paper_url") or "")
        title = str(row.get("paper_title") or "")
        code = [str(c.get("url") or "") for c in row.get("code_links") or [] if isinstance(c, dict)]
        extra = {"uses_additional_data": row.get("uses_additional_data")}
        for column in columns:
            yield Row(
                path,
                where,
                column,
                cells.get(column),
                task=task,
                dataset=name,
                model=str(row.get("model_name") or ""),
                paper=paper,
                # sota-extractor often repeats the URL as the title: that is no title.
                paper_title="" if title == paper else title,
                paper_date=str(row.get("paper_date") or ""),
                code_links=code,
                extra={k: v for k, v in extra.items() if v is not None},
                part_of=part_of,
            )
    for index, sub in enumerate(dataset.get("subdatasets") or []):
        own = str(sub.get("subdataset") or sub.get("dataset") or f"subdataset {index}")
        if name:
            yield from _dataset_rows(sub, task, path, f"{name} / {own}", [name, *part_of])
        else:  # a part of a dataset with no name is a dataset of its own
            yield from _dataset_rows(sub, task, path, own, part_of)


def _json_files(root: Path) -> list[Path]:
    return sorted(p.relative_to(root) for p in root.rglob("*.json") if p.is_file())


def _head(path: Path, size: int = 4096) -> str:
    try:
        with path.open("rb") as fh:
            return fh.read(size).decode("utf-8", "replace")
    except OSError:
        return ""
