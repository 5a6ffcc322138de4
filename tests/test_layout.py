"""The layout of docs/architecture.md, read from the code: every package on its floor, imports
only downward, no cycle between packages, a one-line docstring per package, and no top-level
package but ``ckg`` in the distribution.

Imports are read with ``ast``, at module level and inside functions alike: an import a
function makes when it runs ties the packages as much as one at the top does.
"""

import ast
import tomllib
from pathlib import Path

import networkx as nx
from setuptools import find_packages

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "ckg"

#: The floors, bottom to top; a module imports only from its own floor and those below.
FLOORS = ["core", "formats", "mlc", "store", "graph", "ingest", "plan", "run", "pareto",
          "results", "transfer", "tune", "top"]
#: The top floor: the only code that holds a KnowledgeGraph.
TOP = {"api", "cli", "serve", "entry"}
#: Old paths of public modules (documented as importable), kept one release: each imports
#: its new home alone, and sits on that module's floor.
ALIASES = {
    "ckg.values": "ckg.core.values",
    "ckg.cluster": "ckg.run.cluster",
    "ckg.cluster.certs": "ckg.run.cluster.certs",
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))
           if "__pycache__" not in p.parts}


def floor(module: str) -> str:
    """The floor of a ckg module: its package under ``ckg``; the API, CLI, web view, entry
    point and the root package itself are the top."""
    module = ALIASES.get(module, module)
    parts = module.split(".")
    if len(parts) == 1 or parts[1] in TOP:
        return "top"
    return parts[1]


def imports(module: str) -> list[tuple[str, int]]:
    """The ckg modules ``module`` imports (``from P import m`` imports module ``P.m`` when
    there is one), with the line; the root package ``ckg`` left out: Python runs it before
    any of its modules, so importing it adds no edge."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for a in node.names:
                child = f"{base}.{a.name}"
                found.append((child if child in MODULES else base, node.lineno))
    return [(name, line) for name, line in found
            if name.split(".")[0] == "ckg" and name != "ckg"]


EDGES = sorted({(src, dst, line) for src in MODULES for dst, line in imports(src)})


def test_every_module_is_on_a_floor():
    lost = sorted(m for m in MODULES if floor(m) not in FLOORS)
    assert not lost, f"modules on no floor (see docs/architecture.md): {lost}"
    missing = [f for f in FLOORS[:-1] if not (PACKAGE / f / "__init__.py").exists()]
    assert not missing, f"floors with no package: {missing}"


def test_no_import_runs_upward():
    order = {name: i for i, name in enumerate(FLOORS)}
    upward = sorted(
        f"{MODULES[src].relative_to(REPO)}:{line}: {src} ({floor(src)}) imports {dst} "
        f"({floor(dst)})"
        for src, dst, line in EDGES
        if order.get(floor(dst), 0) > order.get(floor(src), 0)
    )
    assert not upward, "imports running upward:\n" + "\n".join(upward)


def test_no_import_cycle_between_packages():
    def unit(module):  # a top-level package or module of ckg
        return ".".join(ALIASES.get(module, module).split(".")[:2])

    graph = nx.DiGraph((unit(s), unit(d)) for s, d, _ in EDGES if unit(s) != unit(d))
    cycles = sorted(" -> ".join(c + [c[0]]) for c in nx.simple_cycles(graph))
    assert not cycles, "import cycles between packages:\n" + "\n".join(cycles)


def test_the_root_package_imports_nothing_when_imported():
    # Every `import ckg.core.x` runs ckg/__init__ first: an import at its top would load
    # the floors above into every process (the script worker's among them).
    tree = ast.parse((PACKAGE / "__init__.py").read_text())
    top = [n.lineno for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))
           and any(name.startswith("ckg") for name in _names(n))]
    assert not top, f"ckg/__init__.py imports ckg modules at lines {top}"


def _names(node):
    return [node.module or ""] if isinstance(node, ast.ImportFrom) else \
        [a.name for a in node.names]


def test_an_alias_imports_its_new_home_alone():
    for old, new in ALIASES.items():
        got = {dst for dst, _ in imports(old)} if old in MODULES else set()
        assert got <= {new}, f"{old} imports {sorted(got)}"


def test_every_package_says_its_job_in_one_line():
    wrong = []
    for path in MODULES.values():
        if path.name != "__init__.py":
            continue
        doc = ast.get_docstring(ast.parse(path.read_text()))
        summary = (doc or "").split("\n\n")[0]
        if not doc or "\n" in summary or not summary.endswith("."):
            wrong.append(f"{path.relative_to(REPO)}: {summary.splitlines()[:2]}")
    assert not wrong, "package docstrings without a one-line summary:\n" + "\n".join(wrong)


def test_the_distribution_holds_no_top_level_package_but_ckg():
    find = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"][
        "packages"]["find"]
    packages = find_packages(str(REPO), include=find["include"], exclude=find.get("exclude", ()))
    assert "ckg" in packages
    assert {p.split(".")[0] for p in packages} == {"ckg"}, sorted(packages)
