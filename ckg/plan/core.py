"""The pure planner: a dependency graph in, a :class:`~ckg.plan.model.Plan` out.

The graph is a NetworkX ``DiGraph`` of artifacts (:func:`ckg.plan.graph.load_graph`), each
node carrying its meta and its dependency entries in declaration order, each entry the
artifacts it resolved to. Planning walks it from the target the way CM runs a script: build
the step's environment and variations, then for each entry (``deps``, ``prehook_deps``, then
the step, then ``posthook_deps`` and ``post_deps``) evaluate the guards against that
environment and visit what is left with the dependency's ``_variation`` tags. A script
reached again with the same variations is the same step. What is left is checked for cycles
(``nx.find_cycle``) and sorted (``nx.lexicographical_topological_sort`` keyed by CM's own
run order).

Nothing here reads files or the database.
"""

from collections.abc import Iterable, Mapping

import networkx as nx

from ckg.core.errors import CycleError, UsageError
from ckg.core.resolve import choose as choose_artifact
from ckg.core.resolve import place, sort_value
from ckg.mlc import groups, hand_down, inherited_tags, tags_from_env
from ckg.mlc.guards import blocked_by, describe
from ckg.plan.env import REFERENCE, GuardEnv, exported, plain_patterns, split_env
from ckg.plan.graph import as_list, entries_of, meta_of
from ckg.plan.model import AFTER_KINDS, KIND_ORDER, Plan, Step
from ckg.plan.variations import VariationError, apply, choose, merge_adr, static_name


def build_plan(
    graph: nx.DiGraph,
    target: str,
    *,
    variations: Iterable[str] = (),
    env: Mapping | None = None,
    adr: Mapping | None = None,
) -> Plan:
    """Plan the steps that run ``target`` under ``variations`` and ``env``.

    Parameters
    ----------
    graph : networkx.DiGraph
        From :func:`load_graph`; must hold every artifact reachable from ``target``.
    target : str
        The target artifact's uid.
    variations : iterable of str
        Variations of the target, with or without the leading ``_``; ``-name`` excludes.
    env : mapping
        User environment; it overrides every meta's ``env`` at every step (CM's ``const``).
        A key ``ALIAS:KEY`` (or ``UID:KEY``) sets ``KEY`` for that step only, as the
        step's own ``customize.py`` might at run time.
    adr : mapping
        The user's ``add_deps_recursive`` (``mlcr --adr.NAME.tags=...``): tags added to every
        dependency entry named ``NAME``, at any depth.

    Returns
    -------
    Plan

    Raises
    ------
    UsageError
        If ``target`` is not in the graph or a variation is not declared by it or conflicts
        within its group.
    CycleError
        If the steps left after the guards still form a cycle; the message is the cycle
        as step ids, ``a -> b -> a``, and ``exc.cycle`` is that list.

    Examples
    --------
    >>> from ckg.plan.graph import load_graph
    >>> g = load_graph([{"uid": "a", "alias": "app", "meta": {}},
    ...                 {"uid": "c", "alias": "cuda", "meta": {}}],
    ...                [{"src": "a", "dst": "c", "kind": "deps", "tags": ["get", "cuda"],
    ...                  "guard": {"enable_if_env": {"USE_CUDA": ["yes"]}}}])
    >>> [s.id for s in build_plan(g, "a").steps]
    ['app']
    >>> [s.id for s in build_plan(g, "a", env={"USE_CUDA": "yes"}).steps]
    ['cuda', 'app']
    """
    if target not in graph:
        raise UsageError(f"unknown target {target!r}: not an artifact in the graph")
    planner = _Planner(graph, env or {})
    requested = [v[1:] if v.startswith("_") else v for v in variations]
    root = planner.visit(target, requested, {}, (), merge_adr({}, adr or {}), None)
    return planner.finish(target, root.id)


class _Planner:
    """One planning walk: the steps made so far, the call graph, CM's run order."""

    def __init__(self, graph: nx.DiGraph, env: Mapping):
        self.graph = graph
        self.common, self.per_step = split_env(env)
        self.plan = Plan(target="")
        self.steps: dict[tuple, Step] = {}  # (uid, variations) -> step
        self.calls = nx.DiGraph()  # step id -> step id it calls, edge attr kind
        self.rank: dict[str, int] = {}  # step id -> position in CM's run order
        self.used_overrides: set[str] = set()
        self.choices: dict[tuple, list[str]] = {}  # (uid, requested) -> variations on
        # step id -> (the entry it follows, the key patterns set before it), in call order:
        # the steps still running, which a run re-enters as a new invocation
        self.following: dict[str, tuple[dict, tuple]] = {}
        # The guard (as "step kind guard") that a run decides on the way to the step being
        # visited, "" when every caller on the way surely runs it.
        self.at_run_time = ""
        self.decided_by: list[str] = []  # the steps on the way whose entry the run decides

    def visit(self, uid, requested, inherited, assumed, adr, caller) -> Step:
        """Make (or reuse) the step for ``uid`` with ``requested`` variations.

        ``inherited`` is the env its caller hands down; ``assumed`` the ``new_env_keys``
        patterns of what ran before it in its caller, keys that guards treat as set.
        """
        data = self.graph.nodes[uid]
        artifact, meta = data["artifact"], meta_of(self.graph, uid)
        declared = meta.get("variations") or {}
        choice = (uid, tuple(requested))
        if choice not in self.choices:
            self.choices[choice] = self._choose(artifact, meta, declared, requested, caller)
        names = self.choices[choice]
        key = (uid, tuple(sorted(names)))
        if key in self.steps:
            step = self.steps[key]
            if step.id in self.following:
                self._again(step, inherited, assumed, caller)
            else:
                self._link(caller, step)
            if not self.at_run_time:  # a caller that surely runs it: it surely runs
                step.at_run_time = ""
            return step
        chosen = apply(declared, names)
        wanted = caller[2]["version"].get("version", "") if caller else ""
        env = self._env(artifact, meta, chosen, inherited, wanted)
        step = Step(
            id=self._new_id(artifact, names),
            uid=uid,
            alias=artifact["alias"],
            kind=artifact["kind"],
            format=artifact["format"],
            path=artifact["path"],
            source_uid=artifact["source_uid"],
            variations=names,
            env=env,
            new_env_keys=[*(meta.get("new_env_keys") or []), *chosen.new_env_keys],
            meta=meta,
            reason="target" if caller is None else _reason(caller),
            version=dict(caller[2]["version"]) if caller else {},
            at_run_time=self.at_run_time,
        )
        self.steps[key] = step
        self.calls.add_node(step.id, step=step)
        self._link(caller, step)
        # The walk only reads adr maps: a step that adds nothing hands its caller's map down
        # as it is, instead of a deep copy per step (a plan's steps are hundreds).
        down_adr = adr
        if meta.get("add_deps_recursive") or chosen.add_deps_recursive:
            down_adr = merge_adr(merge_adr({}, adr), meta.get("add_deps_recursive") or {})
            merge_adr(down_adr, chosen.add_deps_recursive)
        local_ad = chosen.add_deps  # apply made it for this step alone
        if meta.get("add_deps"):
            local_ad = merge_adr(merge_adr({}, meta["add_deps"]), chosen.add_deps)
        handed = hand_down(env, meta)
        produced = dict.fromkeys(assumed)  # an ordered set of key patterns
        ran = False
        for entry in _in_cm_order(entries_of(self.graph, uid), declared, names):
            if entry["kind"] in AFTER_KINDS and not ran:
                self.rank[step.id], ran = len(self.rank), True
                produced.update(dict.fromkeys(plain_patterns(step.new_env_keys)))
            used = self._follow(step, entry, chosen.active, handed, produced, down_adr, local_ad)
            if used is not None:
                produced.update(dict.fromkeys(plain_patterns(used.new_env_keys)))
        if not ran:
            self.rank[step.id] = len(self.rank)
        return step

    def _choose(self, artifact, meta, declared, requested, caller) -> list[str]:
        owner = artifact["alias"] or artifact["uid"]
        default = meta.get("default_variation") or ""
        try:
            return choose(declared, requested, default_variation=default, owner=owner)
        except VariationError as exc:
            if caller is None:
                raise UsageError(str(exc)) from None
            self.plan.warnings.append(f"{caller[0].id}: {exc}; planned with its defaults")
            return choose(declared, [], default_variation=default, owner=owner)

    def _new_id(self, artifact, names) -> str:
        base = (artifact["alias"] or artifact["uid"]) + "".join(f" _{n}" for n in sorted(names))
        if base in self.calls:  # two artifacts share an alias: tell them apart by uid
            base = f"{base} @{artifact['uid']}"
        return base

    def _env(self, artifact, meta, chosen, inherited, wanted_version) -> dict:
        env = dict(inherited)
        for key, value in (meta.get("default_env") or {}).items():
            env.setdefault(key, value)
        env.update(meta.get("env") or {})
        env.update(chosen.env)
        for key, value in chosen.default_env.items():
            env.setdefault(key, value)
        version = wanted_version or meta.get("default_version") or ""
        env.update(((meta.get("versions") or {}).get(version) or {}).get("env") or {})
        env.update(self.common)
        for owner in (artifact["alias"], artifact["uid"]):
            if owner in self.per_step:
                env.update(self.per_step[owner])
                self.used_overrides.add(owner)
        env = {k: v if isinstance(v, list) else "" if v is None else str(v) for k, v in env.items()}
        for key, value in env.items():  # CM's <<<KEY>>> references, where KEY is known
            if isinstance(value, str) and "<<<" in value:
                env[key] = REFERENCE.sub(lambda m: env.get(m[1], m[0]), value)
        return env

    def _follow(self, step, entry, active, handed, produced, adr, local_ad) -> Step | None:
        """Evaluate one dependency entry of ``step``; the step it leads to, if any."""
        if entry["via_variation"] and entry["via_variation"] not in active:
            return None
        where = {"step": step.id, "kind": entry["kind"], "tags": entry["tags"]}
        # Keys that steps before it export, or (after the step's preprocess) its own
        # customize.py may set: only the run knows them, and decides a guard over them.
        # The user's --env is MLCFlow's const, put back after each of those: it is known.
        after_preprocess = entry["kind"] != "deps"
        users = {*self.common, *self.per_step.get(step.alias, ()), *self.per_step.get(step.uid, ())}
        patterns = tuple(produced)

        def run_sets(key: str) -> bool:
            return key not in users and (after_preprocess or exported(patterns, key))

        unknown = {key for condition in entry["guard"].values() for key in condition}
        why = blocked_by(entry["guard"], step.env, set(filter(run_sets, unknown)))
        if why:
            self.plan.skipped.append({**where, "why": why})
            return None
        if not entry["targets"]:
            self.plan.unresolved.append({**where, "names": entry["names"], "entry": entry["entry"]})
            return None
        extra: list[str] = []
        for prefix, keys in entry["tags_from_env"].items():  # update_tags_from_env*
            for key in keys:
                extra += as_list(tags_from_env({}, step.env, key, prefix))
        if entry["inherit"]:  # inherit_variation_tags: the caller's variations
            own = {"tags": ",".join(entry["tags"])}
            own["skip_inherit_variation_groups"] = entry["skip_inherit"]
            grouped = groups(step.meta.get("variations") or {})
            caller_tags = ",".join("_" + n for n in step.variations)
            extra += as_list(inherited_tags(caller_tags, grouped, own))
        dep_env: dict = {}  # update_deps puts an update's env into the entry's own env
        for name in entry["names"]:
            for added in (adr.get(name), local_ad.get(name)):
                extra += as_list((added or {}).get("tags"))
                dep_env.update((added or {}).get("env") or {})
        targets = self._narrow(step, entry["targets"], [t for t in extra if t[0] not in "_-"])
        if len(targets) > 1:
            matched = [self.graph.nodes[t]["artifact"]["alias"] for t in targets]
            self.plan.ambiguous.append({**where, "matched": matched, "chosen": matched[0]})
        wanted = [t for t in entry["tags"] + extra if t.startswith(("_", "-_"))]
        requested = [t[1:] if t.startswith("_") else "-" + t[2:] for t in wanted]
        caller = (step, entry["kind"], entry)
        self.following[step.id] = (entry, tuple(produced))
        outer = self.at_run_time, list(self.decided_by)
        decided = [describe(entry["guard"])] if why == "" else []
        tag_keys = sorted({k for keys in entry["tags_from_env"].values() for k in keys})
        if any(map(run_sets, tag_keys)):  # update_tags_from_env*: its variations too
            decided.append("tags from " + ", ".join(tag_keys))
        if decided:
            self.decided_by.append(step.id)
            if not self.at_run_time:
                self.at_run_time = f"{step.id} {entry['kind']} {'; '.join(decided)}"
        try:
            inherited = {**handed, **dep_env}
            return self.visit(targets[0], requested, inherited, tuple(produced), adr, caller)
        finally:
            del self.following[step.id]
            self.at_run_time, self.decided_by = outer

    def _again(self, step, inherited, assumed, caller) -> None:
        """``caller`` calls ``step`` while ``step`` still runs: a run invokes it again in
        the caller's env, where what ran since exports more keys. MLCFlow has no cycle
        check; the run ends when a guard of ``step``'s entry back into the chain skips it
        there (``get-compiler-flags``' ``get,compiler`` once a compiler set
        ``MLC_C_COMPILER_BIN``). Recorded in :attr:`Plan.again` with that guard; a chain
        that no guard breaks never ends and is refused."""
        entry, produced = self.following[step.id]
        artifact, declared = self.graph.nodes[step.uid]["artifact"], step.meta.get("variations")
        wanted = caller[2]["version"].get("version", "")
        env = self._env(artifact, step.meta, apply(declared or {}, step.variations), inherited,
                        wanted)  # fmt: skip
        why = blocked_by(entry["guard"], GuardEnv(env, [*assumed, *produced]))
        chain = list(self.following)
        if not why and set(self.decided_by) & set(chain[chain.index(step.id) :]):
            why = f"a guard decided at run time ({self.at_run_time})"  # inside the cycle
        if not why:
            path = [*chain[chain.index(step.id) :], step.id]
            exc = CycleError("dependency cycle that no guard breaks: " + " -> ".join(path))
            exc.cycle = path
            raise exc
        parent, kind, used = caller
        self.plan.again.append({
            "step": parent.id, "kind": kind, "tags": used["tags"], "again": step.id,
            "entry": {"kind": entry["kind"], "tags": entry["tags"]}, "why": why,
        })  # fmt: skip

    def _narrow(self, step, targets, plain_tags) -> list[str]:
        """Candidates carrying the extra plain tags, in the order they are chosen: the one
        rule for a target and a dependency (:func:`ckg.core.resolve.choose`)."""
        if len(targets) == 1:  # most entries: nothing to choose
            return targets
        nodes = self.graph.nodes
        kept = [t for t in targets if set(plain_tags) <= set(nodes[t]["artifact"]["tags"])]
        found = []
        for uid in kept or targets:
            a = nodes[uid]["artifact"]
            found.append({
                "uid": uid, "format": a.get("format"), "source_uid": a.get("source_uid"),
                "source_rank": a.get("source_rank"), "sort": sort_value(meta_of(self.graph, uid)),
                "place": place(a.get("source") or "", a.get("path") or ""),
            })  # fmt: skip
        return [c["uid"] for c in choose_artifact(found, own_source=step.source_uid).candidates]

    def _link(self, caller, step) -> None:
        if caller is None:
            return
        parent, kind, entry = caller
        self.calls.add_edge(parent.id, step.id, kind=kind)
        step.needed_by.append({"step": parent.id, "kind": kind, "tags": entry["tags"]})

    def finish(self, target, root) -> Plan:
        """Check for cycles, order the steps, report unused overrides."""
        try:
            cycle = nx.find_cycle(self.calls, source=root)
        except nx.NetworkXNoCycle:
            cycle = None
        if cycle:
            path = [a for a, _ in cycle] + [cycle[-1][1]]
            exc = CycleError("dependency cycle left after guards: " + " -> ".join(path))
            exc.cycle = path
            raise exc
        order = nx.DiGraph()
        order.add_nodes_from(self.calls)
        for parent, child, kind in self.calls.edges(data="kind"):
            order.add_edge(*((parent, child) if kind in AFTER_KINDS else (child, parent)))
        try:
            ids = list(nx.lexicographical_topological_sort(order, key=self.rank.__getitem__))
        except nx.NetworkXUnfeasible:
            self.plan.warnings.append(
                "a post-dependency is also needed before its caller; steps kept in CM's run order"
            )
            ids = sorted(self.calls, key=self.rank.__getitem__)
        self.plan.target = target
        self.plan.steps = [self.calls.nodes[i]["step"] for i in ids]
        for step in self.plan.steps:
            step.after = sorted(order.predecessors(step.id), key=self.rank.__getitem__)
        for owner in sorted(set(self.per_step) - self.used_overrides):
            self.plan.warnings.append(f"--env {owner}:...: no step {owner!r} in this plan")
        return self.plan


def _in_cm_order(entries: list[dict], declared: Mapping, names: list[str]) -> list[dict]:
    """Entries as CM runs them: by kind, the meta's own first, then each variation's in
    the order the variations were chosen (combinations last), each list by position."""
    if not names:
        return entries
    turn = {static_name(n, declared): i for i, n in enumerate(names)}

    def key(entry):
        via = entry["via_variation"]
        return (KIND_ORDER.get(entry["kind"], 0), turn.get(via, len(turn)) if via else -1)

    return sorted(entries, key=key)  # stable: positions stay in order within each list


def _reason(caller) -> str:
    parent, kind, entry = caller
    return f"dependency of {parent.id} via {kind} tags={','.join(entry['tags'])}"
