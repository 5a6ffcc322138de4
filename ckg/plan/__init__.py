"""Plan what running a target takes: its dependency subgraph, guards evaluated, in order.

:func:`plan` is the entry point for the API and the runner; :func:`build_plan` is the pure
core (a NetworkX graph from :func:`load_graph` in, a :class:`Plan` out) that tests and
benchmarks drive without a store.

Examples
--------
>>> import ckg
>>> with ckg.open() as kg:                                    # doctest: +SKIP
...     p = plan(kg.store, "app-image-classification-onnx-py", env={"USE_CUDA": "yes"})
>>> [s.alias for s in p.steps]                                # doctest: +SKIP
['detect-os', 'get-python3', 'get-cuda', ...]
"""

import sys
from collections.abc import Iterable, Mapping

from ckg.core.redact import secret_values
from ckg.graph.subgraph import fetch_subgraph, find_target
from ckg.plan import memo
from ckg.plan.model import Plan, Step

__all__ = ["Plan", "Step", "build_plan", "load_graph", "plan"]


def __getattr__(name: str):
    # NetworkX (about 0.15 s to import) loads only when a plan is actually built, not when
    # a remembered one is used (see :mod:`ckg.plan.memo`).
    if name == "build_plan":
        from ckg.plan.core import build_plan

        return build_plan
    if name == "load_graph":
        from ckg.plan.graph import load_graph

        return load_graph
    raise AttributeError(f"module 'ckg.plan' has no attribute {name!r}")


def plan(
    store_or_graph,
    target: str,
    variations: Iterable[str] = (),
    env: Mapping | None = None,
    adr: Mapping | None = None,
    *,
    home=None,
) -> Plan:
    """The ordered steps that run ``target``, from the graph store or a loaded graph.

    Parameters
    ----------
    store_or_graph : GraphStore or networkx.DiGraph
        Where the artifacts are. With a store, the target is looked up and its subgraph
        fetched with one query each; a DiGraph from :func:`load_graph` is used as is, and
        ``target`` must then be a uid.
    target : str
        Uid, alias, or tags (``get,python3,_cuda``: ``_name`` tags are variations).
    variations : iterable of str
        More variations of the target (``cuda`` or ``_cuda``; ``-name`` excludes).
    env : mapping
        User environment (overrides every meta); ``ALIAS:KEY`` keys set one step only.
    adr : mapping
        The user's ``add_deps_recursive``: ``{NAME: {"tags": "..."}}`` adds tags to every
        dependency entry named ``NAME``.
    home : Path, optional
        ckg's home, under which plans from a store are remembered (:mod:`ckg.plan.memo`);
        none are when None.

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
    nx = sys.modules.get("networkx")  # a DiGraph can only exist once networkx is imported
    if nx is not None and isinstance(store_or_graph, nx.DiGraph):
        from ckg.plan.core import build_plan

        return build_plan(store_or_graph, target, variations=variations, env=env, adr=adr)
    store = store_or_graph
    uid, in_target = find_target(store, target)
    rows = fetch_subgraph(store, uid)
    wanted = [*in_target, *variations]
    key = memo.plan_key(rows, uid, wanted, env, adr)
    secrets = secret_values(env)
    remembered = memo.load(home, key, secrets) if home else None
    if remembered is not None:
        return remembered
    from ckg.plan.core import build_plan
    from ckg.plan.graph import load_graph

    result = build_plan(load_graph(*rows), uid, variations=wanted, env=env, adr=adr)
    if home:
        memo.save(home, key, result, secrets)
    return result
