"""Plan what running a target takes: its dependency subgraph, guards evaluated, in order.

:func:`plan` is the entry point for the API and the runner; :func:`build_plan` is the pure
core (a NetworkX graph from :func:`load_graph` in, a :class:`Plan` out) that tests and
benchmarks drive without a store.

Examples
--------
>>> import ckg
>>> with ckg.open() as kg:                                    # doctest: +SKIP
...     p = plan(kg, "app-image-classification-onnx-py", env={"USE_CUDA": "yes"})
>>> [s.alias for s in p.steps]                                # doctest: +SKIP
['detect-os', 'get-python3', 'get-cuda', ...]
"""

from collections.abc import Iterable, Mapping

import networkx as nx

from ckg.plan.core import build_plan
from ckg.plan.fetch import fetch_subgraph, find_target
from ckg.plan.graph import load_graph
from ckg.plan.model import Plan, Step

__all__ = ["Plan", "Step", "build_plan", "load_graph", "plan"]


def plan(
    kg_or_graph,
    target: str,
    variations: Iterable[str] = (),
    env: Mapping | None = None,
) -> Plan:
    """The ordered steps that run ``target``, from the graph store or a loaded graph.

    Parameters
    ----------
    kg_or_graph : KnowledgeGraph, GraphStore or networkx.DiGraph
        Where the artifacts are. With a store, the target is looked up and its subgraph
        fetched with one query each; a DiGraph from :func:`load_graph` is used as is, and
        ``target`` must then be a uid.
    target : str
        Uid, alias, or tags (``get,python3,_cuda``: ``_name`` tags are variations).
    variations : iterable of str
        More variations of the target (``cuda`` or ``_cuda``; ``-name`` excludes).
    env : mapping
        User environment (overrides every meta); ``ALIAS:KEY`` keys set one step only.

    Returns
    -------
    Plan

    Raises
    ------
    UsageError
        Unknown or ambiguous target, an undeclared or conflicting variation.
    CycleError
        The dependencies left after the guards form a cycle.
    """
    if isinstance(kg_or_graph, nx.DiGraph):
        return build_plan(kg_or_graph, target, variations=variations, env=env)
    store = getattr(kg_or_graph, "store", kg_or_graph)
    uid, in_target = find_target(store, target)
    graph = load_graph(*fetch_subgraph(store, uid))
    return build_plan(graph, uid, variations=[*in_target, *variations], env=env)
