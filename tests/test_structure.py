"""The code's shape: small modules, no private names crossing packages, the paper's constants in
one place, reporting without torch."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("separation", "lipschitz_construct", "analysis")
MAX_LINES = 400


def modules():
    for pkg in PACKAGES:
        yield from sorted((REPO / pkg).rglob("*.py"))


def dotted(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_no_module_above_the_size_limit():
    big = {p.relative_to(REPO).as_posix(): n for p in modules()
           if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert big == {}, f"split these modules (> {MAX_LINES} lines): {big}"


def _imports(path: Path):
    """(module imported, names) of every import in ``path``, relative imports resolved."""
    here = dotted(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield a.name, []
        elif isinstance(node, ast.ImportFrom):
            mod = node.module or ""
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                mod = ".".join(base + ([mod] if mod else []))
            yield mod, [a.name for a in node.names]


def test_no_private_name_is_imported_from_another_package():
    crossing = []
    for path in list(modules()) + sorted((REPO / "benchmarks").glob("*.py")):
        top = dotted(path).split(".")[0]
        for mod, names in _imports(path):
            parts = mod.split(".")
            if parts[0] not in PACKAGES or parts[0] == top:
                continue
            private = [p for p in parts if p.startswith("_")] + [n for n in names if n.startswith("_")]
            if private:
                crossing.append(f"{path.relative_to(REPO)}: {mod} {names}")
    assert crossing == []


def _literal(node):
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None


def test_the_paper_constants_are_spelled_only_in_separation_paper():
    from separation import paper

    eps_values = {v for v in paper.PAPER_EPS.values() if v not in (0.1,)}  # 0.1 is too common to police
    norm_tuples = {paper.NORMS, paper.TABLE1_NORMS, paper.ATTACK_NORMS}
    found = []
    for path in modules():
        if path.name == "paper.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, float) and node.value in eps_values:
                found.append(f"{path.relative_to(REPO)}:{node.lineno}: {node.value}")
            lit = _literal(node) if isinstance(node, ast.Tuple) else None
            if isinstance(lit, tuple) and all(isinstance(v, str) for v in lit) and lit in norm_tuples:
                found.append(f"{path.relative_to(REPO)}:{node.lineno}: {_literal(node)}")
            keys = {k.value for k in node.keys if isinstance(k, ast.Constant)} if isinstance(node, ast.Dict) else set()
            if {"mnist", "cifar10"} <= keys:
                vals = [_literal(v) for v in node.values]
                if any(isinstance(v, float) for v in vals):
                    found.append(f"{path.relative_to(REPO)}:{node.lineno}: an eps table")
    assert found == [], "use separation.paper: " + "; ".join(found)


@pytest.mark.parametrize("module", ["analysis.reporting", "analysis.report", "separation.records",
                                    "lipschitz_construct.records", "analysis.records", "analysis.grids"])
def test_reading_records_does_not_import_torch(module):
    code = f"import sys, {module}; assert 'torch' not in sys.modules, sorted(m for m in sys.modules if 'torch' in m)[:5]"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


def test_every_module_lists_its_public_names():
    import importlib

    lacking, dangling = [], []
    for path in modules():
        name = dotted(path)
        if path.name == "__main__.py" or "_triton" in name:
            continue
        tree = ast.parse(path.read_text())
        if not any(isinstance(n, ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in n.targets)
                   for n in tree.body):
            lacking.append(name)
            continue
        mod = importlib.import_module(name)
        dangling += [f"{name}.{n}" for n in mod.__all__ if not hasattr(mod, n)]
    assert lacking == [] and dangling == []
