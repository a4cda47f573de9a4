"""Layers without loops: the package's imports, read with ``ast`` (lazy ones inside functions and
``TYPE_CHECKING`` blocks included), form no cycle outside ``testing/``; the core does no I/O and
does not import LangChain; ``results.py`` does not reach up to the client."""

from __future__ import annotations

import ast
from pathlib import Path

import langchain_nanobanana

ROOT = Path(langchain_nanobanana.__file__).parent
PACKAGE = "langchain_nanobanana"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    """Every package module ``path`` imports, at any depth of the file."""
    found: set[str] = set()
    tree = ast.parse(path.read_text())
    this = module_name(path)
    is_package = path.name == "__init__.py"
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith(PACKAGE))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = this.split(".")
                base = base if is_package else base[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            if not target.startswith(PACKAGE):
                continue
            found.add(target)
            for alias in node.names:  # ``from pkg import module`` imports that module
                candidate = f"{target}.{alias.name}"
                if candidate in MODULES:
                    found.add(candidate)
    found.discard(this)
    return found


MODULES = {module_name(p): p for p in ROOT.rglob("*.py")}


def graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for name, path in MODULES.items():
        if ".testing" in name:
            continue
        targets = set()
        for target in imports_of(path):
            # ``import a.b.c`` also runs a/__init__ and a/b/__init__: count the deepest module
            while target not in MODULES and "." in target:
                target = target.rsplit(".", 1)[0]
            if target in MODULES and ".testing" not in target and target != name:
                targets.add(target)
        edges[name] = targets
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
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
        for succ in edges.get(node, ()):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                item = stack.pop()
                on_stack.discard(item)
                component.append(item)
                if item == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_the_walk_sees_lazy_imports() -> None:
    edges = graph()
    assert len(edges) > 20
    # a lazy import inside a function body is an edge too (not vacuous)
    assert any(
        isinstance(n, ast.ImportFrom)
        for p in MODULES.values()
        for f in ast.walk(ast.parse(p.read_text()))
        if isinstance(f, ast.FunctionDef)
        for n in ast.walk(f)
    )


def test_no_import_loop_outside_testing() -> None:
    edges = graph()
    # a package __init__ re-exporting its submodules is not a loop of responsibilities: drop the
    # package -> own-submodule edges (the submodule importing its package is what would loop)
    for name in list(edges):
        edges[name] = {t for t in edges[name] if not t.startswith(name + ".")}
    assert cycles(edges) == []


def test_the_core_imports_no_io_and_no_langchain() -> None:
    forbidden = ("requests", "urllib3", "socket", "sqlite3", "langchain_core", "http")
    for name, path in MODULES.items():
        if not name.startswith(f"{PACKAGE}._core"):
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom) and not node.level
                else []
            )
            for imported in names:
                assert imported.split(".")[0] not in forbidden, f"{name} imports {imported}"
        for target in imports_of(path):
            assert target.startswith(f"{PACKAGE}._core") or target in {
                f"{PACKAGE}.errors",
                f"{PACKAGE}.results",
                f"{PACKAGE}.models",
                f"{PACKAGE}._inputs",
            }, f"{name} imports {target}"


def test_results_do_not_import_the_client() -> None:
    assert f"{PACKAGE}.client" not in imports_of(MODULES[f"{PACKAGE}.results"])
