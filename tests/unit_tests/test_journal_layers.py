"""The journal's layers (read from the source with ``ast``, nothing imported): no import loop
runs through ``journal/`` (``testing/`` aside; imports under ``if TYPE_CHECKING:`` do not count),
the journal imports nothing above ``errors`` (never the client or the faces), and the client
leaves the journal's protocol steps to ``journal/protocol.py``.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "langchain_nanobanana"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, name: str, modules: set[str]) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def _graph() -> dict[str, set[str]]:
    files = {_module_name(p): p for p in PACKAGE.rglob("*.py") if "testing" not in p.parts}
    modules = set(files)
    return {
        name: _imports(path, name, modules) - {"langchain_nanobanana"}
        for name, path in files.items()
    }


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        on.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_loops_through_the_journal() -> None:
    loops = [c for c in _cycles(_graph()) if any(".journal" in m for m in c)]
    assert loops == []


def test_the_journal_does_not_reach_up_to_the_client_or_the_faces() -> None:
    graph = _graph()
    for name, targets in graph.items():
        if name.startswith("langchain_nanobanana.journal"):
            up = {t for t in targets if not t.startswith("langchain_nanobanana.journal")}
            assert up <= {"langchain_nanobanana.errors"}, name


def test_the_client_leaves_the_protocol_to_the_journal() -> None:
    sources = [PACKAGE / "client.py", PACKAGE / "_client_base.py", PACKAGE / "_client_async.py"]
    assert all(path.exists() for path in sources)
    for path in sources:
        source = path.read_text(encoding="utf-8")
        for step in (
            ".begin(",
            ".submitted(",
            ".succeeded(",
            ".failed(",
            ".release(",
            ".interrupted(",
        ):
            assert f"journal{step}" not in source, (path.name, step)
