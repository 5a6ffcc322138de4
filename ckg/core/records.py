"""What importers, the runner and the Pareto code hand to the store: plain records.

Importers return :class:`Records`; they never write. The store turns them into
batched ``UNWIND $rows MERGE`` statements (see :meth:`ckg.store.base.GraphStore.write_records`).
Property values are primitives or lists of primitives; nested data goes in as JSON text.
"""

from dataclasses import dataclass, field


@dataclass(slots=True)
class Node:
    """One node: its label, the value of its key property, and its other properties."""

    label: str
    key: str
    props: dict = field(default_factory=dict)


@dataclass(slots=True)
class Edge:
    """One relationship between two nodes named by label and key value."""

    type: str
    src_label: str
    src_key: str
    dst_label: str
    dst_key: str
    props: dict = field(default_factory=dict)


@dataclass(slots=True)
class Problem:
    """Something wrong with one input that did not stop the rest: file, line, message."""

    path: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {self.message}"


@dataclass(slots=True)
class Dependency:
    """One dependency entry as a meta file writes it, before it is resolved to artifacts.

    The ingest stage resolves it (CM's tag rules): each matching artifact gets a
    ``DEPENDS_ON`` edge carrying these fields plus ``entry`` (a stable id of the entry) and
    ``matches`` (how many artifacts matched: more than one means ambiguous); an entry that
    matches nothing becomes an ``UnresolvedDependency`` node linked by ``NEEDS``.
    """

    artifact_uid: str
    kind: str  # deps, prehook_deps, posthook_deps, post_deps, or ck for CK v1's dict entries
    position: int  # index in its list, so that order is kept
    tags: list[str] = field(default_factory=list)  # as written: plain, -excluded, _variation
    names: list[str] = field(default_factory=list)
    guard: str = ""  # JSON of enable_if_env / skip_if_env / *_any_env; "" when unconditional
    via_variation: str = ""  # the variation that adds this entry; "" when always present
    version: str = ""
    version_min: str = ""
    version_max: str = ""
    path: str = ""
    line: int | None = None


@dataclass(slots=True)
class Records:
    """Nodes, edges, unresolved dependency entries and warnings from one importer or run."""

    nodes: list[Node] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    dependencies: list[Dependency] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)

    def extend(self, other: "Records") -> "Records":
        self.nodes.extend(other.nodes)
        self.edges.extend(other.edges)
        self.dependencies.extend(other.dependencies)
        self.warnings.extend(other.warnings)
        return self
