"""The pure planner: a dependency graph in, a :class:`~ckg.plan.model.Plan` out.

The graph is a NetworkX ``DiGraph`` of artifacts (:func:`load_graph`), each node carrying
its meta and its dependency entries in declaration order, each entry the artifacts it
resolved to. Planning walks it from the target the way CM runs a script: build the step's
environment and variations, then for each entry (``deps``, ``prehook_deps``, then the step,
then ``posthook_deps`` and ``post_deps``) evaluate the guards against that environment and
visit what is left with the dependency's ``_variation`` tags. A script reached again with the
same variations is the same step. What is left is checked for cycles (``nx.find_cycle``)
and sorted (``nx.lexicographical_topological_sort`` keyed by CM's own run order).

Nothing here reads files or the database.
"""

import fnmatch
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from functools import lru_cache

import networkx as nx

from ckg.errors import CycleError, UsageError
from ckg.plan.guards import GUARD_KEYS, blocked_by, parse_guard
from ckg.plan.model import AFTER_KINDS, KIND_ORDER, Plan, Step
from ckg.plan.variations import VariationError, apply, choose, merge_adr, static_name

# Keys CM keeps to one script: not handed down to its dependencies (``local_env_keys``).
LOCAL_ENV_KEYS = tuple(
    prefix + name
    for prefix in ("CM_", "MLC_")
    for name in (
        "VERSION",
        "VERSION_MIN",
        "VERSION_MAX",
        "VERSION_MAX_USABLE",
        "DETECTED_VERSION",
        "INPUT",
        "OUTPUT",
        "OUTBASENAME",
        "OUTDIRNAME",
        "NAME",
        "EXTRA_CACHE_TAGS",
        "TMP_*",
        "GIT_*",
        "RENEW_CACHE_ENTRY",
    )
)


def _as_list(value) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [t.strip() for t in value.split(",") if t.strip()]
    return [str(t).strip() for t in value if str(t).strip()]


def entry_from_meta(meta: Mapping, entry_id: str) -> dict:
    """The properties of a dependency entry, read from its artifact's meta by entry id.

    The id is ``uid#kind#via_variation#position`` (:func:`ckg.resolve.entry_id`); the
    entry is ``meta[kind][position]``, or ``meta["variations"][via][kind][position]``.
    An id that points nowhere in the meta gives an entry without tags or guards.

    >>> meta = {"variations": {"cuda": {"deps": [{"tags": "get,cuda", "names": "cuda"}]}}}
    >>> e = entry_from_meta(meta, "abc#deps#cuda#0")
    >>> e["kind"], e["via_variation"], e["tags"], e["names"]
    ('deps', 'cuda', ['get', 'cuda'], ['cuda'])
    """
    parts = entry_id.split("#", 2)
    _, kind, rest = parts if len(parts) == 3 else ("", "deps", "#")
    via, _, position = rest.rpartition("#")
    section = meta if not via else (meta.get("variations") or {}).get(via) or {}
    entries = section.get(kind) if isinstance(section, Mapping) else None
    index = int(position) if position.isdigit() else -1
    raw = entries[index] if isinstance(entries, list) and 0 <= index < len(entries) else {}
    raw = raw if isinstance(raw, Mapping) else {}
    prefixed = raw.get("update_tags_from_env_with_prefix") or {}
    tags_from_env = {
        prefix: _as_list(keys) for prefix, keys in prefixed.items() if isinstance(prefix, str)
    }
    for key in _as_list(raw.get("update_tags_from_env")):
        tags_from_env.setdefault("", []).append(key)
    return {
        "kind": kind,
        "position": max(index, 0),
        "tags_from_env": tags_from_env,
        "via_variation": via,
        "tags": _as_list(raw.get("tags")),
        "names": _as_list(raw.get("names")),
        "guard": {k: raw[k] for k in GUARD_KEYS if k in raw},
        **{k: str(raw[k]) for k in ("version", "version_min", "version_max") if raw.get(k)},
    }


def load_graph(
    artifacts: Iterable[Mapping], edges: Iterable[Mapping], unresolved: Iterable[Mapping] = ()
) -> nx.DiGraph:
    """Build the planner's graph from Artifact rows and dependency rows.

    Parameters
    ----------
    artifacts : iterable of mapping
        Artifact properties: ``uid``, ``alias``, ``meta`` (dict or JSON text), and
        optionally ``kind``, ``format``, ``path``, ``source_uid``, ``tags``.
    edges : iterable of mapping
        One per ``DEPENDS_ON`` relationship: ``src``, ``dst`` and its properties
        (``kind``, ``position``, ``tags``, ``names``, ``guard``, ``via_variation``, ``entry``,
        ``version``, ``version_min``, ``version_max``). A row with only ``src``, ``dst``
        and ``entry`` is completed from the meta of ``src`` (:func:`entry_from_meta`).
    unresolved : iterable of mapping
        One per ``UnresolvedDependency`` reached by ``NEEDS``: ``src`` and its properties,
        or ``src`` and ``entry`` only.

    Returns
    -------
    networkx.DiGraph
        A node per artifact (attributes ``artifact``, ``meta``, ``rows``), an edge
        ``src -> dst`` wherever some entry of ``src`` resolved to ``dst``.
        :func:`entries_of` turns a node's rows into its dependency entries, in run order,
        each with ``targets`` (uids, empty when unresolved).

    Examples
    --------
    >>> g = load_graph([{"uid": "a", "alias": "app", "meta": {}},
    ...                 {"uid": "b", "alias": "lib", "meta": {}}],
    ...                [{"src": "a", "dst": "b", "kind": "deps", "position": 0, "tags": ["lib"]}])
    >>> sorted(g.edges), entries_of(g, "a")[0]["targets"]
    ([('a', 'b')], ['b'])
    """
    graph = nx.DiGraph()
    for row in artifacts:
        meta = row.get("meta") or {}
        artifact = {k: row.get(k) or "" for k in ("uid", "alias", "kind", "format", "path")}
        artifact["source_uid"] = row.get("source_uid") or ""
        artifact["tags"] = _as_list(row.get("tags"))
        graph.add_node(row["uid"], artifact=artifact, meta=meta, rows=[], entries=None)
    for row, dst in [(e, e.get("dst")) for e in edges] + [(u, None) for u in unresolved]:
        if row["src"] in graph:
            graph.nodes[row["src"]]["rows"].append((row, dst))
            if dst is not None:
                graph.add_edge(row["src"], dst)
    return graph


def entries_of(graph: nx.DiGraph, uid: str) -> list[dict]:
    """The dependency entries of a node in run order, built from its rows on first use.

    Rows without ``kind`` are completed from the meta, so metas of artifacts the walk never
    reaches are never decoded.
    """
    data = graph.nodes[uid]
    if data["entries"] is not None:
        return data["entries"]
    entries: dict[str, dict] = {}
    for row, dst in data["rows"]:
        from_meta = entry_from_meta(meta_of(graph, uid), row["entry"]) if row.get("entry") else {}
        if "kind" not in row:
            row = {**from_meta, **row}
        kind = row.get("kind") or "deps"
        via = row.get("via_variation") or ""
        position = int(row.get("position") or 0)
        entry_id = row.get("entry") or f"{uid}#{kind}#{via}#{position}"
        entry = entries.get(entry_id)
        if entry is None:
            entry = entries[entry_id] = {
                "entry": entry_id,
                "kind": kind,
                "position": position,
                "tags": _as_list(row.get("tags")),
                "names": _as_list(row.get("names")),
                "guard": parse_guard(row.get("guard")),
                "via_variation": via,
                "version": {
                    k: row[k] for k in ("version", "version_min", "version_max") if row.get(k)
                },
                "tags_from_env": from_meta.get("tags_from_env") or {},
                "targets": [],
            }
        if dst is not None:
            entry["targets"].append(dst)
    data["entries"] = sorted(
        entries.values(),
        key=lambda e: (KIND_ORDER.get(e["kind"], 0), e["via_variation"], e["position"]),
    )
    return data["entries"]


def meta_of(graph: nx.DiGraph, uid: str) -> dict:
    """The node's meta as a dict, decoded from JSON text once, on first use."""
    data = graph.nodes[uid]
    if isinstance(data["meta"], str):
        data["meta"] = json.loads(data["meta"]) if data["meta"] else {}
    return data["meta"]


def split_env(env: Mapping) -> tuple[dict, dict]:
    """User env as ``(global, {alias_or_uid: {key: value}})``; ``ALIAS:KEY`` is per step.

    >>> split_env({"USE_CUDA": "yes", "get-openssl:CM_REQUIRE_INSTALL": "yes"})
    ({'USE_CUDA': 'yes'}, {'get-openssl': {'CM_REQUIRE_INSTALL': 'yes'}})
    """
    common: dict = {}
    per_step: dict = {}
    for key, value in env.items():
        owner, sep, name = key.partition(":")
        if sep:
            per_step.setdefault(owner, {})[name] = value
        else:
            common[key] = value
    return common, per_step


def build_plan(
    graph: nx.DiGraph,
    target: str,
    *,
    variations: Iterable[str] = (),
    env: Mapping | None = None,
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
    root = planner.visit(target, requested, {}, (), {}, None)
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
            self._link(caller, step)
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
        )
        self.steps[key] = step
        self.calls.add_node(step.id, step=step)
        self._link(caller, step)
        down_adr = merge_adr(merge_adr({}, adr), meta.get("add_deps_recursive") or {})
        merge_adr(down_adr, chosen.add_deps_recursive)
        local_ad = merge_adr(merge_adr({}, meta.get("add_deps") or {}), chosen.add_deps)
        handed = _hand_down(env, meta)
        produced = dict.fromkeys(assumed)  # an ordered set of key patterns
        ran = False
        for entry in _in_cm_order(entries_of(self.graph, uid), declared, names):
            if entry["kind"] in AFTER_KINDS and not ran:
                self.rank[step.id], ran = len(self.rank), True
                produced.update(dict.fromkeys(_patterns(step.new_env_keys)))
            used = self._follow(step, entry, chosen.active, handed, produced, down_adr, local_ad)
            if used is not None:
                produced.update(dict.fromkeys(_patterns(used.new_env_keys)))
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
                env[key] = _REFERENCE.sub(lambda m: env.get(m[1], m[0]), value)
        return env

    def _follow(self, step, entry, active, handed, produced, adr, local_ad) -> Step | None:
        """Evaluate one dependency entry of ``step``; the step it leads to, if any."""
        if entry["via_variation"] and entry["via_variation"] not in active:
            return None
        where = {"step": step.id, "kind": entry["kind"], "tags": entry["tags"]}
        why = blocked_by(entry["guard"], GuardEnv(step.env, produced))
        if why:
            self.plan.skipped.append({**where, "why": why})
            return None
        if not entry["targets"]:
            self.plan.unresolved.append({**where, "names": entry["names"], "entry": entry["entry"]})
            return None
        extra: list[str] = []
        for prefix, keys in entry["tags_from_env"].items():  # CM's update_tags_from_env*
            for key in keys:
                value = str(step.env.get(key) or "").strip()
                extra += _as_list(value) if not prefix else [prefix + value] if value else []
        for name in entry["names"]:
            for added in (adr.get(name), local_ad.get(name)):
                extra += _as_list((added or {}).get("tags"))
        targets = self._narrow(entry["targets"], [t for t in extra if t[0] not in "_-"])
        if len(targets) > 1:
            matched = [self.graph.nodes[t]["artifact"]["alias"] for t in targets]
            self.plan.ambiguous.append({**where, "matched": matched, "chosen": matched[0]})
        wanted = [t for t in entry["tags"] + extra if t.startswith(("_", "-_"))]
        requested = [t[1:] if t.startswith("_") else "-" + t[2:] for t in wanted]
        caller = (step, entry["kind"], entry)
        return self.visit(targets[0], requested, handed, tuple(produced), adr, caller)

    def _narrow(self, targets, plain_tags) -> list[str]:
        """Candidates carrying the extra plain tags, in CM's order (``sort``, then path)."""
        nodes = self.graph.nodes
        kept = [t for t in targets if set(plain_tags) <= set(nodes[t]["artifact"]["tags"])]

        def order(uid):
            return (meta_of(self.graph, uid).get("sort", 0), nodes[uid]["artifact"]["path"])

        return sorted(kept or targets, key=order)

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


def _hand_down(env: Mapping, meta: Mapping) -> dict:
    """The env a step passes to its dependencies: all but CM's local keys."""
    local = _matcher(LOCAL_ENV_KEYS + tuple(meta.get("local_env_keys") or ()))
    return {k: v for k, v in env.items() if not local(k)}


@lru_cache(maxsize=256)
def _matcher(patterns: tuple[str, ...]):
    """One compiled test for a tuple of shell-style key patterns."""
    if not patterns:
        return lambda key: False
    return re.compile("|".join(fnmatch.translate(p) for p in patterns)).match


def _exported(patterns: tuple[str, ...], key: str) -> bool:
    """Whether ``key`` matches one of the (already plain) key patterns.

    CM's patterns are nearly all ``PREFIX*``: those are a ``startswith``, the rest fnmatch.
    """
    prefixes = tuple(p[:-1] for p in patterns if p.endswith("*") and not _GLOB.search(p[:-1]))
    if key.startswith(prefixes) or key in patterns:
        return True
    return any(fnmatch.fnmatchcase(key, p) for p in patterns if _GLOB.search(p))


_GLOB = re.compile(r"[*?\[]")
_REFERENCE = re.compile(r"<<<(.*?)>>>")


def _patterns(new_env_keys) -> tuple[str, ...]:
    """``new_env_keys`` as plain key patterns: ``+PATH`` (append) and ``+ CFLAGS`` -> names."""
    return tuple(p.lstrip("+ ").strip() for p in new_env_keys if isinstance(p, str))


class GuardEnv(Mapping):
    """A step's env as its guards see it: keys that steps before it export count as set.

    CM evaluates a guard after the dependencies before it have run and merged their
    ``new_env_keys`` outputs into the env. Their values are unknown before a run; a key
    absent from ``env`` that matches one of those patterns reads as :attr:`UNKNOWN`, which is
    a set, non-false value (so ``skip_if_env: {CM_C_COMPILER_BIN: [on]}`` skips after a
    compiler was found). ``patterns`` are plain key patterns, ``+`` prefixes removed.

    >>> env = GuardEnv({"A": "no"}, ["CM_LLVM_*", "PATH"])
    >>> env["CM_LLVM_BIN"], env["A"], "PATH" in env, "B" in env
    ('<set at run time>', 'no', True, False)
    """

    UNKNOWN = "<set at run time>"

    def __init__(self, env: Mapping, patterns: Iterable[str]):
        self.env = env
        self.patterns = patterns

    def __getitem__(self, key):
        if key in self.env:
            return self.env[key]
        if _exported(tuple(self.patterns), key):
            return self.UNKNOWN
        raise KeyError(key)

    def __iter__(self) -> Iterator:
        return iter(self.env)

    def __len__(self) -> int:
        return len(self.env)
