"""Plotly figures as plain dicts, laid out on the server, drawn by the bundled plotly.js.

- :func:`dependency_graph` turns the trees of :func:`ckg.graph.lookup.deps` into a networkx DiGraph
  (dependant -> dependency), with each node's level: the artifact 0, what it depends on 1, 2,
  ..., its dependants -1. :func:`graph_figure` draws it in layers, one row per level.
- :func:`front_figure` draws a two-objective front: every point, front 1 highlighted, and the
  step line that bounds what front 1 dominates.

Every text shown comes from strangers' metas; plotly.js reads a few HTML tags inside text,
so texts are HTML-escaped first (:func:`plain_text`) and plotly shows them as written.
"""

import html

import networkx as nx
import numpy as np

from ckg.pareto.plot import axis_title, front_line, in_shown_units, log_scale

#: Colours of node roles and of fronts (the same red as ckg's PNG plots).
COLOURS = {"root": "#d1495b", "dependency": "#2e86ab", "dependant": "#6a994e",
           "missing": "#9aa5b1", "dominated": "#9aa5b1"}  # fmt: skip


def plain_text(text) -> str:
    """``text`` as plotly.js shows it literally: its HTML-like tags escaped.

    >>> plain_text('<img src=x onerror=alert(1)>')
    '&lt;img src=x onerror=alert(1)&gt;'
    """
    return html.escape("" if text is None else str(text), quote=False)


def dependency_graph(tree: dict, dependants: dict | None = None) -> nx.DiGraph:
    """A DiGraph of ``tree`` (``deps``) and ``dependants`` (``deps(..., reverse=True)``).

    Nodes are artifact uids, or ``missing:<tags>`` for an unresolved dependency; each has
    ``alias``, ``kind``, ``role`` (root, dependency, dependant, missing) and ``level``.
    A node keeps the level where it first appears.

    >>> tree = {"uid": "a", "alias": "app", "kind": "script", "children": [
    ...     {"uid": "b", "alias": "lib", "kind": "script", "status": "ok", "children": []},
    ...     {"uid": None, "alias": "get,x", "kind": None, "status": "missing", "children": []}]}
    >>> up = {"uid": "a", "alias": "app", "children": [{"uid": "c", "alias": "user"}]}
    >>> g = dependency_graph(tree, up)
    >>> sorted(g.nodes(data="level"))
    [('a', 0), ('b', 1), ('c', -1), ('missing:get,x', 1)]
    >>> sorted(g.edges)
    [('a', 'b'), ('a', 'missing:get,x'), ('c', 'a')]
    """
    graph = nx.DiGraph()
    graph.add_node(tree["uid"], alias=tree.get("alias"), kind=tree.get("kind"), role="root",
                   level=0)  # fmt: skip
    _add_children(graph, tree, 1, reverse=False)
    if dependants:
        _add_children(graph, dependants, -1, reverse=True)
    return graph


def _add_children(graph: nx.DiGraph, node: dict, level: int, *, reverse: bool) -> None:
    parent = node["uid"]
    for child in node.get("children", []):
        missing = child.get("status") == "missing"
        key = f"missing:{child.get('alias')}" if missing else child["uid"]
        if key not in graph:
            role = "missing" if missing else "dependant" if reverse else "dependency"
            graph.add_node(key, alias=child.get("alias"), kind=child.get("kind"), role=role,
                           level=level)  # fmt: skip
        graph.add_edge(*((key, parent) if reverse else (parent, key)))
        if not child.get("repeat"):
            _add_children(graph, child, level + (-1 if reverse else 1), reverse=reverse)


def layered_positions(graph: nx.DiGraph, width: int = 8) -> dict:
    """Node -> (x, y): dependants on top, then the artifact, then each level of what it
    depends on; a level of more than ``width`` nodes wraps onto several rows. Nodes are
    ordered by alias, so the picture is the same every time.

    >>> g = nx.DiGraph()
    >>> g.add_nodes_from([("r", {"alias": "r", "level": 0}), ("a", {"alias": "a", "level": 1}),
    ...                   ("b", {"alias": "b", "level": 1}), ("c", {"alias": "c", "level": 1})])
    >>> layered_positions(g, width=2)
    {'r': (0.0, 0), 'a': (-0.5, -1), 'b': (0.5, -1), 'c': (0.0, -2)}
    """
    levels: dict[int, list] = {}
    for key, data in graph.nodes(data=True):
        levels.setdefault(data["level"], []).append(key)
    positions, y = {}, 0
    for level in sorted(levels):
        keys = sorted(levels[level], key=lambda k: (str(graph.nodes[k]["alias"]), str(k)))
        for start in range(0, len(keys), width):
            row = keys[start:start + width]
            for i, key in enumerate(row):
                positions[key] = (i - (len(row) - 1) / 2, y)
            y -= 1
    return positions


def graph_figure(graph: nx.DiGraph, link) -> dict:
    """The figure of a :func:`dependency_graph`: edges as lines, nodes as markers labelled
    with their alias (above and below in turn, so neighbours' labels do not collide); a
    node's ``customdata`` is the page ``link(uid)`` (None for an unresolved one)."""
    where = layered_positions(graph)
    ex, ey = [], []
    for a, b in graph.edges:
        ex += [where[a][0], where[b][0], None]
        ey += [where[a][1], where[b][1], None]
    keys = list(graph.nodes)
    data = [graph.nodes[k] for k in keys]
    rows = len({y for _, y in where.values()})
    half = max(abs(x) for x, _ in where.values()) + 0.7
    return {
        "data": [
            {"type": "scatter", "mode": "lines", "x": ex, "y": ey, "hoverinfo": "skip",
             "line": {"color": "#c5ccd3", "width": 1}, "name": "depends on"},
            {"type": "scatter", "mode": "markers+text", "name": "artifacts",
             "x": [where[k][0] for k in keys], "y": [where[k][1] for k in keys],
             "text": [plain_text(d["alias"]) for d in data],
             "textposition": [_label_side(where[k][0]) for k in keys],
             "hovertext": [plain_text(f"{d['alias']} ({d['kind'] or d['role']})") for d in data],
             "hoverinfo": "text",
             "customdata": [None if d["role"] == "missing" else link(k)
                            for k, d in zip(keys, data, strict=True)],
             "marker": {"size": 12, "color": [COLOURS[d["role"]] for d in data]}},
        ],  # fmt: skip
        "layout": {
            "showlegend": False, "hovermode": "closest", "dragmode": "pan",
            "height": 120 + 80 * rows, "margin": {"l": 10, "r": 10, "t": 30, "b": 30},
            "xaxis": {"visible": False, "range": [-half, half]},
            "yaxis": {"visible": False, "range": [min(y for _, y in where.values()) - 0.5, 0.5]},
        },  # fmt: skip
    }


def _label_side(x: float) -> str:
    """Above for every other node of a row, below for the rest (x steps by 1 in a row)."""
    return "top center" if round(x * 2) % 4 in (0, 1) else "bottom center"


def front_figure(table, objectives, units: dict[str, str], link=None) -> dict:
    """Every point of a ranked table (``Front.table``) over its first two objectives, front 1
    red with its step line; ``link(row)`` gives a point's page (its ``customdata``). Values
    are shown in the units of the CLI's tables and plots (µs, not 7.4e-05 s)."""
    x_obj, y_obj = objectives[:2]
    table, units = in_shown_units(table, objectives[:2], units)
    x = table[x_obj.name].to_numpy(dtype=float)
    y = table[y_obj.name].to_numpy(dtype=float)
    first = table["front_rank"].to_numpy() == 1
    fx, fy = front_line(x[first], y[first], [x_obj, y_obj])
    rows = table.to_dict("records")
    hover = [plain_text(f"{r['label']} (front {r['front_rank']})") for r in rows]
    return {
        "data": [
            {"type": "scatter", "mode": "lines", "x": _finite(fx), "y": _finite(fy),
             "line": {"color": COLOURS["root"], "shape": "hv"}, "name": "front 1"},
            {"type": "scatter", "mode": "markers", "x": _finite(x), "y": _finite(y),
             "hovertext": hover, "hoverinfo": "text+x+y", "name": "points",
             "customdata": [link(r) if link else None for r in rows],
             "marker": {"size": 10, "color": [COLOURS["root"] if f else COLOURS["dominated"]
                                              for f in first]}},
        ],  # fmt: skip
        "layout": {
            "height": 480, "hovermode": "closest",
            "margin": {"l": 70, "r": 20, "t": 20, "b": 60},
            "legend": {"orientation": "h", "y": -0.2},
            "xaxis": {"title": {"text": plain_text(axis_title(x_obj, units))},
                      "type": "log" if log_scale(x) else "linear"},
            "yaxis": {"title": {"text": plain_text(axis_title(y_obj, units))},
                      "type": "log" if log_scale(y) else "linear"},
        },  # fmt: skip
    }


def _finite(values: np.ndarray) -> list:
    """Numbers JSON can carry: NaN and infinities as gaps (None)."""
    return [float(v) if np.isfinite(v) else None for v in values]
