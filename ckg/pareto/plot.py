"""Plots of Pareto fronts: PNG (or SVG, PDF) through matplotlib's Agg backend, HTML through plotly.

Two objectives: every point as a dot, the first front drawn as the step line that bounds what
it dominates, its points labelled, axes named with units, and an arrow to the better corner.
Three or more: a matrix of pairwise scatters (PNG) or a 3-D / scatter-matrix view (HTML),
the first front highlighted. Both libraries are imported only when a plot is drawn.

Values are shown in the prefixed unit the tables use (:func:`ckg.core.values.human_unit`: latency
in µs, not 1e-5 s), on a log axis where they span more than two decades; an HTML plot holds
plotly.js itself, so it draws offline.
"""

from pathlib import Path

import numpy as np

from ckg.core.errors import InvalidInput, UsageError, require_extra
from ckg.pareto import Objective

IMAGE_SUFFIXES = (".png", ".svg", ".pdf")
#: At most this many labels are written on a plot (front 1 first, then the rest).
MAX_LABELS = 30


def plot_front(
    table,
    objectives: list[Objective],
    path: str | Path,
    *,
    units: dict[str, str] | None = None,
    title: str = "",
) -> Path:
    """Draw a ranked table (:func:`ckg.pareto.front_table` or ``Front.table``) to ``path``.

    Parameters
    ----------
    table : pandas.DataFrame
        Columns ``front_rank``, ``label`` and one per objective, named as the objective.
    objectives : list of Objective
    path : str or Path
        ``.png``, ``.svg``, ``.pdf`` or ``.html``.
    units : mapping, optional
        Unit of each objective, shown on its axis.

    Raises
    ------
    UsageError
        A file suffix that is none of the above.
    MissingExtra
        When the library that draws it (``ckg[plots]``) is not installed.
    InvalidInput
        Fewer than two points to draw.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix != ".html" and suffix not in IMAGE_SUFFIXES:
        raise UsageError(f"--plot writes .png, .svg, .pdf or .html, not {path.name!r}")
    module = "plotly" if suffix == ".html" else "matplotlib"
    require_extra("plots", module, what=f"--plot {path.name}")
    if len(table) < 2:
        raise InvalidInput(f"{len(table)} point(s) to plot: a front needs two or more")
    table, units = in_shown_units(table, objectives, units or {})
    if suffix == ".html":
        _plotly(table, objectives, path, units, title)
    else:
        _matplotlib(table, objectives, path, units, title)
    return path


def in_shown_units(table, objectives, units: dict[str, str]):
    """The table with each objective in the unit a table shows it in, and those units."""
    from ckg.core.values import human_unit

    table, shown = table.copy(), dict(units)
    for obj in objectives:
        factor, shown[obj.name] = human_unit(list(table[obj.name]), units.get(obj.name) or "")
        if factor != 1:
            table[obj.name] = table[obj.name].astype(float) / factor
    return table, shown


def axis_title(obj: Objective, units: dict[str, str]) -> str:
    """``latency (s), lower is better``."""
    unit = units.get(obj.name) or ""
    better = "lower" if obj.direction == "min" else "higher"
    return f"{obj.name}" + (f" ({unit})" if unit else "") + f", {better} is better"


def front_line(x: np.ndarray, y: np.ndarray, objectives: list[Objective]):
    """Points of front 1 in order of the first objective, best first, for a post-step line."""
    order = np.argsort(x if objectives[0].direction == "min" else -x, kind="stable")
    return x[order], y[order]


def log_scale(values: np.ndarray) -> bool:
    """Whether an axis of these values reads better on a log scale: all positive, spanning
    more than two decades."""
    finite = values[np.isfinite(values)]
    return len(finite) > 1 and finite.min() > 0 and finite.max() / finite.min() > 100


def shared_prefix(labels: list[str]) -> tuple[str, list[str]]:
    """``("resnet50", ["sys-a", "sys-b"])`` when every label is ``resnet50 @ ...``."""
    heads = {str(t).partition(" @ ")[0] for t in labels}
    if len(heads) == 1 and all(" @ " in str(t) for t in labels):
        return heads.pop(), [str(t).partition(" @ ")[2] for t in labels]
    return "", [str(t) for t in labels]


# --- matplotlib ---------------------------------------------------------------------------


def _matplotlib(table, objectives, path, units, title) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    first = table["front_rank"].to_numpy() == 1
    if len(objectives) == 2:
        fig, ax = plt.subplots(figsize=(9, 6.5), dpi=120)
        common = _pair(ax, table, objectives, first, units, labels=True)
        default = f"Pareto front: {objectives[0].name} vs {objectives[1].name}"
        ax.set_title(title or default + (f" ({common})" if common else ""))
    else:
        d = len(objectives)
        fig, axes = plt.subplots(d - 1, d - 1, figsize=(4.2 * (d - 1), 4 * (d - 1)), dpi=110)
        axes = np.atleast_2d(axes)
        for i in range(1, d):
            for j in range(d - 1):
                ax = axes[i - 1, j]
                if j >= i:
                    ax.axis("off")
                    continue
                _pair(ax, table, [objectives[j], objectives[i]], first, units, labels=False)
        if d > 2:
            key = axes[0, d - 2]
            handles, names = axes[0, 0].get_legend_handles_labels()
            key.legend(handles, names, loc="center", fontsize=10, frameon=False)
        fig.suptitle(title or "Pareto front: " + ", ".join(o.name for o in objectives))
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _pair(ax, table, objs, first, units, *, labels: bool) -> str:
    """One scatter of two objectives; returns the label prefix all points share, if any."""
    x = table[objs[0].name].to_numpy(dtype=float)
    y = table[objs[1].name].to_numpy(dtype=float)
    whole = "" if labels else " (all objectives)"
    ax.scatter(x[~first], y[~first], s=22, color="#9aa5b1", label="dominated" + whole, zorder=2)
    ax.scatter(x[first], y[first], s=46, color="#d1495b", label="front 1" + whole, zorder=3)
    if labels or len(objs) == 2:
        from ckg.pareto import nondominated

        on_pair = nondominated(np.column_stack([x, y]), [o.direction for o in objs])
        fx, fy = front_line(x[on_pair], y[on_pair], objs)
        line = "front line" if labels else "front of the two objectives shown"
        ax.step(fx, fy, where="post", color="#d1495b", linewidth=1.4, zorder=1, label=line)
    for values, scale in ((x, ax.set_xscale), (y, ax.set_yscale)):
        if log_scale(values):
            scale("log")
    common = ""
    if labels:
        common, texts = shared_prefix(list(table["label"]))
        _annotate(ax, x, y, texts, table["front_rank"].to_numpy())
    ax.set_xlabel(axis_title(objs[0], units))
    ax.set_ylabel(axis_title(objs[1], units))
    ax.grid(True, alpha=0.3)
    _better_arrow(ax, objs)
    if labels:
        ax.legend(loc="best", fontsize=8)
    return common


def _annotate(ax, x, y, texts, ranks) -> None:
    """Label front 1 first, then later fronts, skipping labels that would overlap one placed."""
    ax.autoscale_view()
    where = ax.transData.transform(np.column_stack([x, y]))
    pixels = 7 * ax.figure.dpi / 72 * 1.15  # height of a 7-point line, in display pixels
    placed: list[tuple[float, float, float]] = []
    for i in np.argsort(ranks, kind="stable"):
        text = texts[i][:36]
        if not text or len(placed) >= MAX_LABELS or not np.isfinite(where[i]).all():
            continue
        px, py = where[i]
        width = 0.62 * len(text) * pixels  # a character of 7-point type is ~0.6 em wide
        if any(abs(py - qy) < pixels and px < qx + qw and qx < px + width for qx, qy, qw in placed):
            continue
        placed.append((px, py, width))
        ax.annotate(text, (x[i], y[i]), xytext=(4, 3), textcoords="offset points", fontsize=7,
                    color="#222222" if ranks[i] == 1 else "#777777")  # fmt: skip


def _better_arrow(ax, objs) -> None:
    """An arrow, in axes coordinates, pointing to the corner where both objectives are best."""
    cx = 0.04 if objs[0].direction == "min" else 0.96
    cy = 0.04 if objs[1].direction == "min" else 0.96
    sx = cx + (0.14 if cx < 0.5 else -0.14)
    sy = cy + (0.14 if cy < 0.5 else -0.14)
    ax.annotate("better", xy=(cx, cy), xytext=(sx, sy), xycoords="axes fraction",
                textcoords="axes fraction", fontsize=9, color="#2e7d32", ha="center", va="center",
                arrowprops={"arrowstyle": "->", "color": "#2e7d32", "lw": 1.6})  # fmt: skip


# --- plotly -------------------------------------------------------------------------------


def _plotly(table, objectives, path, units, title) -> None:
    import plotly.graph_objects as go

    first = table["front_rank"].to_numpy() == 1
    hover = [
        f"{label}<br>front {rank}"
        for label, rank in zip(table["label"], table["front_rank"], strict=True)
    ]
    color = np.where(first, "#d1495b", "#9aa5b1")
    names = [o.name for o in objectives]
    if len(objectives) == 2:
        x = table[names[0]].to_numpy(dtype=float)
        y = table[names[1]].to_numpy(dtype=float)
        fx, fy = front_line(x[first], y[first], objectives)
        fig = go.Figure()
        fig.add_trace(go.Scatter(x=fx, y=fy, mode="lines", line_shape="hv", name="front 1",
                                 line={"color": "#d1495b"}))  # fmt: skip
        fig.add_trace(go.Scatter(x=x, y=y, mode="markers", text=hover, hoverinfo="text+x+y",
                                 marker={"color": color, "size": 9}, name="points"))  # fmt: skip
        fig.update_layout(
            xaxis_title=axis_title(objectives[0], units),
            yaxis_title=axis_title(objectives[1], units),
            xaxis_type="log" if log_scale(x) else "linear",
            yaxis_type="log" if log_scale(y) else "linear",
        )
    elif len(objectives) == 3:
        x, y, z = (table[n].to_numpy(dtype=float) for n in names)
        fig = go.Figure(go.Scatter3d(x=x, y=y, z=z, mode="markers", text=hover,
                                     marker={"color": color, "size": 4}))  # fmt: skip
        fig.update_layout(scene={f"{a}axis_title": axis_title(o, units)
                                 for a, o in zip("xyz", objectives, strict=True)})  # fmt: skip
    else:
        dims = [{"label": axis_title(o, units), "values": table[o.name]} for o in objectives]
        fig = go.Figure(go.Splom(dimensions=dims, text=hover, marker={"color": color}))
    fig.update_layout(title=title or "Pareto front: " + ", ".join(names))
    fig.write_html(str(path), include_plotlyjs=True)  # inside the file: it draws offline
