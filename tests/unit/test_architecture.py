"""The shape of the code, checked: every import arrow points down, no circles, no SQL in services.

Read from the source with ``ast`` (imports inside functions count too), so a lazy import
cannot hide a circle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = "modelfaucet"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in sorted((SRC / PACKAGE).rglob("*.py")):
        if "migrations" in path.parts:
            continue
        name = _module_name(path)
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")
                    base = base[: len(base) - (node.level - 1)]
                    target = ".".join([*base, node.module] if node.module else base)
                else:
                    target = node.module or ""
                found.add(target)
                found.update(f"{target}.{alias.name}" for alias in node.names)
        graph[name] = found
    modules = set(graph)
    return {name: {t for t in targets if t in modules and t != name} for name, targets in graph.items()}


GRAPH = _imports()


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _package_parents(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    # A package's __init__ importing nothing is not an arrow; drop package self-edges.
    return {name: {t for t in targets if not name.startswith(t + ".")} for name, targets in graph.items()}


def test_there_is_no_import_circle_anywhere() -> None:
    assert _cycles(_package_parents(GRAPH)) == []


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


@pytest.mark.parametrize(
    ("layer", "may_import"),
    [
        ("domain", {"domain"}),
        ("services", {"services", "domain", "adapters", "config"}),
        ("adapters", {"adapters", "domain", "services", "config"}),
        ("http", {"http", "services", "domain", "adapters", "config", "logs"}),
        ("cli", {"cli", "services", "domain", "adapters", "config", "http", "logs"}),
    ],
)
def test_each_layer_imports_only_the_layers_below_it(layer: str, may_import: set[str]) -> None:
    wrong = sorted(
        f"{module} -> {target}"
        for module, targets in GRAPH.items()
        if _layer(module) == layer
        for target in targets
        if _layer(target) not in may_import and target != PACKAGE  # the root holds only __version__
    )
    assert wrong == []


def test_adapters_use_only_the_ports_and_records_of_services() -> None:
    allowed = {f"{PACKAGE}.services.{port}" for port in ("repositories", "unit_of_work", "signals")}
    wrong = sorted(
        f"{module} -> {target}"
        for module, targets in GRAPH.items()
        if _layer(module) == "adapters"
        for target in targets
        if _layer(target) == "services" and target not in allowed
    )
    assert wrong == []


def test_services_contain_no_sql() -> None:
    offenders = []
    for path in sorted((SRC / PACKAGE / "services").glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
                names += [f"{node.module}.{alias.name}" for alias in node.names]
            for name in names:
                if name.startswith("sqlalchemy") or name.endswith("db.tables") or name.endswith(".tables"):
                    offenders.append(f"{path.name}: {name}")
        if "ctx.db" in path.read_text():
            offenders.append(f"{path.name}: ctx.db")
    assert offenders == []
