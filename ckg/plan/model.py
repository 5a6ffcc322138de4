"""What the planner returns: a :class:`Plan` of ordered :class:`Step` values.

Both are plain dataclasses: the runner reads them, the CLI renders them, ``to_dict`` gives
JSON and ``to_dot`` gives Graphviz text.
"""

import json
from dataclasses import asdict, dataclass, field

# The order CM runs an entry kind relative to its script: before it, or after it.
BEFORE_KINDS = ("deps", "prehook_deps", "ck")
AFTER_KINDS = ("posthook_deps", "post_deps")
KIND_ORDER = {kind: i for i, kind in enumerate(BEFORE_KINDS + AFTER_KINDS)}


@dataclass(slots=True)
class Step:
    """One script to run, with one set of variations, in the order of :attr:`Plan.steps`.

    Attributes
    ----------
    id : str
        Unique in the plan: the alias, then each chosen variation as ``_name``
        (``get-generic-python-lib _package.numpy``).
    uid, alias, kind, format, path, source_uid : str
        The Artifact node's properties; ``path`` is relative to its source's root.
    variations : list of str
        The variations on, without ``_``, in CM's order (requested, base, defaults).
    env : dict
        The environment built for this step: what its caller passed down (minus CM's local
        keys), ``default_env`` where unset, the meta's ``env``, the variations' ``env``, the
        version's ``env``, then the user's ``--env`` (global, then ``ALIAS:KEY`` ones).
        Values are strings, except the list values of ``+KEY`` entries. The outputs of
        dependencies (``new_env_keys`` read back after they run) are not in it.
    new_env_keys : list of str
        Patterns of the keys this step hands to its dependants (meta plus variations).
    meta : dict
        The whole meta of the artifact.
    reason : str
        ``"target"``, or ``"dependency of ID via KIND tags=...``" for its first caller.
    needed_by : list of dict
        Every caller: ``{"step": id, "kind": ..., "tags": [...]}``.
    after : list of str
        Ids of the steps that must have run before this one.
    version : dict
        ``version``, ``version_min``, ``version_max`` asked by the first caller, where set.
    at_run_time : str
        ``""`` when the step surely runs; else the guard that only the run decides (its
        keys are set by steps before it, or by a script's own customize.py), as
        ``"STEP KIND if ...; unless ..."``: the step runs if the run says so.
    """

    id: str
    uid: str
    alias: str
    kind: str
    format: str
    path: str
    source_uid: str
    variations: list[str]
    env: dict
    new_env_keys: list[str]
    meta: dict
    reason: str
    needed_by: list[dict] = field(default_factory=list)
    after: list[str] = field(default_factory=list)
    version: dict = field(default_factory=dict)
    at_run_time: str = ""


@dataclass(slots=True)
class Plan:
    """The ordered steps for a target, and what the planner could not settle.

    Attributes
    ----------
    target : str
        The target artifact's uid; the last step that is not a post-dependency is its step.
    steps : list of Step
        In run order: each step after everything listed in its ``after``.
    skipped : list of dict
        Entries the guards turned off: ``{"step", "kind", "tags", "why"}``.
    unresolved : list of dict
        Entries no artifact matches: ``{"step", "kind", "tags", "names", "entry"}``.
    ambiguous : list of dict
        Entries several artifacts match: ``{"step", "kind", "tags", "matched", "chosen"}``
        (aliases; the first by CM's ``sort`` then path is taken).
    warnings : list of str
        Everything else worth telling: variation conflicts in dependencies, unused
        ``ALIAS:KEY`` overrides, an order forced against a post-dependency.
    again : list of dict
        Calls of a step that is still running (a cycle), decided at run time: the run
        invokes ``again`` a second time, and there the guard ``why`` skips its ``entry``
        back into the cycle: ``{"step", "kind", "tags", "again", "entry", "why"}``.
    """

    target: str
    steps: list[Step] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)
    unresolved: list[dict] = field(default_factory=list)
    ambiguous: list[dict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    again: list[dict] = field(default_factory=list)

    def step(self, id_or_alias: str) -> Step:
        """The step with this id, or the first one with this alias."""
        for step in self.steps:
            if id_or_alias in (step.id, step.alias):
                return step
        raise KeyError(id_or_alias)

    def to_dict(self, *, with_meta: bool = False) -> dict:
        """JSON-ready dict; metas are left out unless ``with_meta``."""
        data = asdict(self)
        if not with_meta:
            for step in data["steps"]:
                step.pop("meta")
        return data

    def to_dot(self) -> str:
        """Graphviz text: one node per step, an arrow from each step to what it needs."""
        lines = ["digraph plan {", "  rankdir=LR;", "  node [shape=box];"]
        for step in self.steps:
            shape = ", style=bold" if step.reason == "target" else ""
            label = step.id + (f"\nat run time: {step.at_run_time}" if step.at_run_time else "")
            shape += ", style=dashed" if step.at_run_time else ""
            lines.append(f"  {json.dumps(step.id)} [label={json.dumps(label)}{shape}];")
        for step in self.steps:
            for caller in step.needed_by:
                label = json.dumps(caller["kind"])
                lines.append(
                    f"  {json.dumps(caller['step'])} -> {json.dumps(step.id)} [label={label}];"
                )
        lines.append("}")
        return "\n".join(lines)
