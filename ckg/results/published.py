"""Published results in the graph: import them, read them back as DataFrames, compare papers.

- :func:`import_results` reads result files or folders (Papers with Code, MLPerf, tables; see
  :mod:`ckg.formats.results`), writes them with a ``Source`` node each
  (:func:`~ckg.ingest.results.write_source`, which ``ckg ingest`` of a results file calls
  too), and links papers to the ingested code that implements them
  (:func:`ckg.ingest.link.link_code`).
- :func:`results` returns every result matching task, dataset, metric, model as a pandas
  DataFrame; :func:`compare` runs the ``compare-papers`` named query and ranks its rows;
  :func:`plot` draws a comparison as PNG (matplotlib) or HTML (plotly).

A dataset asked for by name includes its parts (``(:Dataset)-[:PART_OF]->(:Dataset)``: Papers
with Code sub-datasets, named ``<dataset> / <part>``): :func:`results` lists them, and
:func:`compare` ranks each part on its own, its ``dataset`` column saying which part a row is of.

Examples
--------
>>> import ckg                                                             # doctest: +SKIP
>>> with ckg.open() as kg:                                                  # doctest: +SKIP
...     kg.import_results(["../shared/corpora/pwc"])
...     kg.compare(task="Question Answering", dataset="SQuAD1.1", metric="F1").head(3)
"""

from dataclasses import dataclass, field
from itertools import accumulate
from pathlib import Path

from ckg.core import metrics
from ckg.core.errors import InvalidInput, NotFound, UsageError, did_you_mean, require_extra
from ckg.core.records import Problem
from ckg.graph import named
from ckg.graph.browse import (
    SUBMISSION,
    compared_page,
    has_named,
    names_of,
    published,
    submissions,
)
from ckg.ingest.link import link_code
from ckg.ingest.results import read_path, write_source

#: Columns of :func:`results`, in order.
COLUMNS = [
    "task",
    "dataset",
    "model",
    "metric",
    "value",
    "unit",
    "stderr",
    "raw",
    "paper",
    "paper_title",
    "date",
    "platform",
    "scenario",
    "source_uid",
    "result",
]


@dataclass
class ImportReport:
    """What :func:`import_results` read: per-cell accounting and every warning."""

    sources: list[str] = field(default_factory=list)
    results: int = 0
    unreadable: int = 0
    missing: int = 0
    no_metric: int = 0
    linked: int = 0
    warnings: list[Problem] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "sources": self.sources,
            "results": self.results,
            "unreadable": self.unreadable,
            "missing": self.missing,
            "no_metric": self.no_metric,
            "implementations_linked": self.linked,
            "warnings": [str(w) for w in self.warnings],
        }


def import_results(store, home: Path, paths: list[str | Path]) -> ImportReport:
    """Read each path (:func:`read_path`, downloads cached under ``home``), write its
    records into ``store``, then link papers to code."""
    if not paths:
        raise UsageError("name at least one results file or folder")
    report = ImportReport()
    for path in paths:
        source, records = read_path(path, Path(home) / "cache")
        write_source(store, source, records)
        report.sources.append(source.key)
        report.warnings.extend(records.warnings)
        for name in ("results", "unreadable", "missing", "no_metric"):
            setattr(report, name, getattr(report, name) + getattr(records.tally, name))
    report.linked = link_code(store)
    return report


def link_artifact(store, artifact: str, paper: str) -> dict:
    """Record that ``artifact`` (uid or alias) implements ``paper``: an ``IMPLEMENTS`` edge.

    ``paper`` is a Paper uid or any link ckg reads as one (:func:`ckg.formats.papers.paper_uid`).

    Returns
    -------
    dict
        ``artifact``, ``alias``, ``paper``, ``title``, and ``added`` (false when the edge was
        there already).

    Raises
    ------
    NotFound
        No such artifact, or no such paper (import its results first); close uids are named.
    UsageError
        The alias names several artifacts.

    Examples
    --------
    >>> link_artifact(kg.store, "sklearn-digits", "example.org/sklearn-digits")  # doctest: +SKIP
    {'artifact': 'ckg-example-sklearn-digits', 'alias': 'sklearn-digits', ...}
    """
    from ckg.graph.lookup import artifact as find_artifact
    from ckg.graph.lookup import implements
    from ckg.results.reproduce import paper_key

    node = find_artifact(store, artifact)
    uid, title = paper_key(store, paper)
    added = not implements(store, node["uid"], uid)
    if added:
        store.upsert_edges("IMPLEMENTS", "Artifact", "Paper",
                           [{"src": node["uid"], "dst": uid, "props": {}}])
    return {"artifact": node["uid"], "alias": node.get("alias"), "paper": uid, "title": title,
            "added": added}


def results(store, task=None, dataset=None, metric=None, model=None):
    """Every result matching the filters given, as a DataFrame with :data:`COLUMNS`.

    ``metric`` may be a canonical name or an alias (``Top-1 Accuracy``); ``dataset`` takes its
    parts in too (sub-datasets, ``(:Dataset)-[:PART_OF]->(:Dataset)``).
    """
    import pandas as pd

    params = {
        "task": task,
        "dataset": dataset,
        "metric": metrics.canonical_name(metric) if metric else None,
        "model": model,
    }
    return pd.DataFrame(published(store, **params), columns=COLUMNS)


def compare(store, task: str, dataset: str, metric: str, direction: str | None = None, *,
            start: int = 0, stop: int | None = None):
    """Results for one task, dataset and metric across papers, best first, ranked: rows
    ``start`` to ``stop`` (excluded; to the last when None) of the whole ranking, ranked as
    in it (read and ranked in the store: a page of a long leaderboard reads only its rows),
    their number in all in the frame's ``attrs["total"]``.

    ``direction`` (``min`` or ``max``) ranks a metric whose direction neither the registry
    nor its name tells; it also overrides a known one. The frame's ``attrs`` say which
    direction ranked it and why, and which ``datasets`` its rows are on: a dataset with
    parts (sub-datasets) brings each part's results, ranked within that part (``rank``
    starts again at 1 for each), column ``dataset`` naming it. A row without a paper (a
    benchmark's submission) has the :data:`ckg.graph.browse.SUBMISSION` columns
    (``submitter``, ``system``, ``division``, ``scenario``, ``version``) filled.

    Raises NotFound, naming close names, when the task, dataset or metric is not in the graph;
    UsageError when the metric's direction is unknown and none is given.
    """
    import pandas as pd

    known = metrics.resolve(metric)
    name = known.name
    for label, value in (("Task", task), ("Dataset", dataset), ("Metric", name)):
        _check_exists(store, label, value)
    if direction not in (None, "min", "max"):
        raise UsageError(f"direction must be min or max, not {direction!r}")
    if direction:
        why = "given: " + ("lower" if direction == "min" else "higher") + " is better"
    elif known.direction:
        direction, why = known.direction, known.why
    else:
        raise UsageError(
            f"metric {name!r} has no known direction ({known.why}): rank it with "
            "--higher-is-better or --lower-is-better"
        )
    params = {"task": task, "dataset": dataset, "metric": name, "direction": direction}
    if start < 0 or (stop is not None and stop < start):
        raise UsageError(f"rows {start} to {stop} are no range of a comparison")
    parts: list[str] = []
    if start == 0 and stop is None:
        frame = pd.DataFrame(named.run(store, "compare-papers", params))
        total = len(frame)
        if total:
            # The query orders by dataset then value: a part's rows are together, best first.
            frame.insert(0, "rank", frame.groupby("dataset", sort=False).cumcount() + 1)
            parts = list(dict.fromkeys(frame["dataset"]))
    else:
        limit = stop - start if stop is not None else 2**62
        rows, counts = compared_page(store, params, start, limit)
        frame, total, parts = pd.DataFrame(rows), sum(counts.values()), list(counts)
        if len(frame):  # a part's ranks count from its first row, before the page or in it
            first = dict(zip(parts, accumulate([0, *counts.values()]), strict=False))
            frame.insert(0, "rank", [at - first[part] + 1 for at, part in
                                     enumerate(frame["dataset"], start)])
    if len(frame):
        # A result without a paper, a benchmark's submission (MLPerf: every row resnet50), is
        # told apart by where it was measured: read for those rows alone (the named query
        # returning them for every row cost compare-papers 10% of its time).
        paperless = list(frame["result"][frame["paper"].isna()])
        found = submissions(store, paperless) if paperless else {}
        for column in SUBMISSION:
            frame[column] = [found.get(uid, {}).get(column) for uid in frame["result"]]
    frame.attrs.update(task=task, dataset=dataset, metric=name, direction=direction, why=why,
                       datasets=parts, total=total)
    return frame


#: Results in one panel of a ``--plot`` image, and the most panels side by side: drawn in
#: one column, the 217 results of SQuAD1.1 F1 made an image 6,610 px tall with its axis at
#: the bottom only. Past them the image shows the first results, and its title says so.
PANEL_ROWS, MOST_PANELS = 40, 3


def plot(frame, path: str | Path) -> Path:
    """Draw a :func:`compare` frame best on top, a dot per result on an axis that spans the
    values (not from zero, so 78 % and 91 % look apart): ``.png``, ``.svg``, ``.pdf`` or an
    ``.html`` that holds plotly.js itself. An image shows at most :data:`PANEL_ROWS` results
    a panel, each panel with its axis, in up to :data:`MOST_PANELS` panels side by side."""
    path = Path(path)
    if frame.empty:
        raise InvalidInput("nothing to plot: the comparison has no rows")
    labels = [_plot_label(m, d) for m, d in zip(frame["model"], frame["date"], strict=True)]
    if len(frame.attrs.get("datasets") or ()) > 1:  # a dataset and its parts: say which
        labels = [f"{label} [{part}]" for label, part in zip(labels, frame["dataset"],
                                                            strict=True)]
    values = [float(v) for v in frame["value"]]
    unit = next((u for u in frame["unit"] if u), "")
    direction = frame.attrs.get("direction")
    better = {"max": ", higher is better", "min": ", lower is better"}.get(direction, "")
    title = f"{frame.attrs.get('metric', '')} on {frame.attrs.get('dataset', '')}"
    xlabel = f"{frame.attrs.get('metric', 'value')}" + (f" ({unit})" if unit else "") + better
    start, end = _span(values)
    suffix = path.suffix.lower()
    if suffix == ".html":
        require_extra("plots", "plotly", what=f"--plot {path.name}")
        import plotly.graph_objects as go

        fig = go.Figure(go.Scatter(x=values, y=labels, mode="markers", marker={"size": 10}))
        fig.update_layout(title=title, xaxis_title=xlabel, yaxis={"autorange": "reversed"},
                          xaxis={"range": [start, end]})  # fmt: skip
        fig.write_html(str(path), include_plotlyjs=True)  # inside the file: it draws offline
        return path
    if suffix not in (".png", ".svg", ".pdf"):
        raise UsageError(f"--plot writes .png, .svg, .pdf or .html, not {path.name}")
    require_extra("plots", "matplotlib", what=f"--plot {path.name}")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = min(len(values), PANEL_ROWS * MOST_PANELS)
    if shown < len(values):
        title += f": the first {shown} of {len(values)} (--csv lists all)"
        start, end = _span(values[:shown])
    panels = -(-shown // PANEL_ROWS)
    per = -(-shown // panels)  # as many in each panel
    fig, axes = plt.subplots(1, panels, figsize=(7 * panels, max(2.0, 0.25 * per + 1.2)),
                             squeeze=False)  # fmt: skip
    for first, ax in zip(range(0, shown, per), axes[0], strict=True):
        part = values[first : min(first + per, shown)]
        rows = range(len(part))
        ax.hlines(rows, start, part, color="#c8ced6", linewidth=1)
        ax.plot(part, rows, "o", color="#d1495b")
        ax.set_yticks(list(rows), labels[first : first + len(part)])
        ax.set_ylim(per - 0.5, -0.5)  # best on top, rows as far apart in every panel
        ax.set_xlim(start, end)
        ax.set_xlabel(xlabel)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _span(values: list[float]) -> tuple[float, float]:
    """The x axis of a comparison plot: the values' range and 8 % of it on each side.

    >>> _span([78.0, 91.0]), _span([5.0])
    ((76.96, 92.04), (4.75, 5.25))
    """
    low, high = min(values), max(values)
    pad = (high - low) * 0.08 or abs(high) * 0.05 or 1.0
    return low - pad, high + pad


def _plot_label(model, date) -> str:
    """A result's name on a plot: its model, and the year where the date is known.

    >>> _plot_label("BERT", "2018-10-11"), _plot_label("BERT", None), _plot_label(None, None)
    ('BERT (2018)', 'BERT', '(no model)')
    """
    name = model if isinstance(model, str) and model else "(no model)"  # NaN in a frame
    return f"{name} ({date[:4]})" if isinstance(date, str) and date else name


def _check_exists(store, label: str, name: str) -> None:
    if has_named(store, label, name):
        return
    hint = did_you_mean(name, names_of(store, label), cutoff=0.5)
    raise NotFound(f"no {label.lower()} {name!r} in the graph{hint}")
