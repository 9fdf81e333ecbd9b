"""The import graph of the toolkit's packages, its layers and its commands (used by
``tests/test_structure.py``; run it to print the numbers)::

    python tests/scripts/import_graph.py

Layers, from the ground up: ``separation.core`` (the foundation), ``separation.engines``, the rest of
``separation``, ``lipschitz_construct``, ``analysis``. A module may import its own layer and the
layers below it; an import of a higher layer is an *upward edge*. Every import counts, including
those inside functions. A *command* is a module run as ``python -m`` (a ``main`` and an
``if __name__ == "__main__"`` block); no module imports a command.
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("separation", "lipschitz_construct", "analysis")
LAYERS = ("separation.core", "separation.engines", "separation", "lipschitz_construct", "analysis")


def module_files() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in sorted((REPO / pkg).rglob("*.py")):
            parts = list(path.relative_to(REPO).with_suffix("").parts)
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            out[name] = path
    return out


def layer(module: str) -> int:
    """The layer index of a module (the most specific layer prefix)."""
    best = -1
    for i, prefix in enumerate(LAYERS):
        if module == prefix or module.startswith(prefix + "."):
            if best < 0 or len(prefix) > len(LAYERS[best]):
                best = i
    return best


def _resolve(module: str, path: Path, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    base = package.split(".")
    base = base[:len(base) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def imports(modules: dict[str, Path]) -> dict[str, set[str]]:
    """module -> the toolkit modules it imports (``from a import b`` counts as ``a.b`` when ``b`` is a module)."""
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        edges = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(name, path, node)
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            else:
                continue
            for t in targets:
                while t and t not in modules:
                    t = t.rpartition(".")[0]
                if t and t != name and t.split(".")[0] in PACKAGES:
                    edges.add(t)
        graph[name] = edges
    return graph


def commands(modules: dict[str, Path]) -> list[str]:
    out = []
    for name, path in modules.items():
        tree = ast.parse(path.read_text())
        has_main = any(isinstance(n, ast.FunctionDef) and n.name == "main" for n in tree.body)
        runs = any(isinstance(n, ast.If) and "__main__" in ast.unparse(n.test) for n in tree.body)
        if has_main and runs:
            out.append(name)
    return sorted(out)


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]
    sys.setrecursionlimit(10000)

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def upward_edges(graph: dict[str, set[str]]) -> list[tuple[str, str]]:
    return sorted((a, b) for a, targets in graph.items() for b in targets if layer(b) > layer(a))


def main() -> int:
    modules = module_files()
    graph = imports(modules)
    lines = {n: len(p.read_text().splitlines()) for n, p in modules.items()}
    longest = max(lines, key=lines.get)
    cmds = commands(modules)
    print(f"modules: {len(modules)}; longest: {longest} ({lines[longest]} lines)")
    print("commands: " + ", ".join(f"{c} ({lines[c]} lines)" for c in cmds))
    imported = sorted({(a, c) for a, t in graph.items() for c in t if c in cmds})
    print(f"imports of a command: {len(imported)}" + "".join(f"\n  {a} -> {c}" for a, c in imported))
    cyc = cycles(graph)
    print(f"import cycles: {len(cyc)}" + "".join(f"\n  {' <-> '.join(c)}" for c in cyc))
    up = upward_edges(graph)
    print(f"upward edges: {len(up)}" + "".join(f"\n  {a} -> {b}" for a, b in up))
    return 0


if __name__ == "__main__":
    sys.exit(main())
