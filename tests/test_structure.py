"""The code's shape: small modules, no private names crossing packages, the paper's constants in
one place, reporting without torch."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.paths import REPO
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


def test_the_paper_constants_are_spelled_only_in_separation_core_paper():
    from separation.core import paper

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
    assert found == [], "use separation.core.paper: " + "; ".join(found)


@pytest.mark.parametrize("module", ["analysis.rendering", "analysis.report", "separation.core.records",
                                    "lipschitz_construct.records", "analysis.records", "analysis.training.grid_file",
                                    "analysis.evaluate_job", "analysis.training.grid_job", "analysis.methods",
                                    "lipschitz_construct.bounds_job", "lipschitz_construct.verify_job"])
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


# -- the architecture: layers, leaf commands, one error contract -----------------------------------
def _graph():
    sys.path.insert(0, str(REPO / "tests" / "scripts"))
    try:
        import import_graph
    finally:
        sys.path.pop(0)
    modules = import_graph.module_files()
    return import_graph, modules, import_graph.imports(modules)


def test_no_module_imports_a_command():
    ig, modules, graph = _graph()
    cmds = set(ig.commands(modules))
    assert cmds >= {"separation.compute", "separation.records", "lipschitz_construct.verify",
                    "lipschitz_construct.bounds", "analysis.evaluate", "analysis.train", "analysis.grid",
                    "analysis.report"}
    assert sorted((a, c) for a, t in graph.items() for c in t if c in cmds) == []


def test_commands_are_leaves_that_call_the_library():
    """A command module parses and hands over: a few lines, and Ctrl-C handled from its first line."""
    ig, modules, _ = _graph()
    for name in ig.commands(modules):
        text = modules[name].read_text()
        assert len(text.splitlines()) <= 50, name
        code = [ln for ln in text.split('"""', 2)[-1].splitlines() if ln.strip() and not ln.startswith("#")]
        assert code[0] == "from separation.core.cli import interruptible_startup", name
        assert code[1] == "interruptible_startup(__name__)", name


def test_no_import_cycles_and_no_upward_edges():
    """Layers from the ground up: separation.core, separation.engines, separation, lipschitz_construct,
    analysis; every import (function-level ones included) stays within its layer or goes down."""
    ig, _, graph = _graph()
    assert ig.cycles(graph) == []
    assert ig.upward_edges(graph) == []


def test_the_foundation_names_nothing_above_it():
    """No string in separation.core names a module above it (record kinds register themselves
    through the package's entry points)."""
    upper = ("lipschitz_construct", "analysis", "separation.engines", "separation.search", "separation.range_search",
             "separation.separation_record", "separation.separation_job", "separation.compute")
    found = []
    for path in sorted((REPO / "separation" / "core").rglob("*.py")):
        tree = ast.parse(path.read_text())
        docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                      if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef)) and n.body
                      and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
                hit = [u for u in upper if u + "." in node.value or node.value == u]
                if hit:
                    found.append(f"{path.relative_to(REPO)}:{node.lineno}: {node.value[:60]!r}")
    assert found == []


def test_no_broad_exception_is_caught_to_look_tidy():
    """Expected failures are ToolkitErrors; nothing catches Exception (or a bare except) except to
    clean up and re-raise."""
    found = []
    for path in modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ExceptHandler):
                continue
            names = ast.unparse(node.type) if node.type is not None else "bare"
            broad = node.type is None or any(b in names for b in ("Exception", "BaseException"))
            broad = broad and names not in ("ToolkitError",) and "Error" not in names.replace("Exception", "")
            reraises = any(isinstance(n, ast.Raise) and n.exc is None for n in ast.walk(node))
            if broad and not reraises:
                found.append(f"{path.relative_to(REPO)}:{node.lineno}: except {names}")
    assert found == []


def test_record_kinds_and_their_jobs_are_registered_through_entry_points():
    """Every record kind has a job whose parser generates its command lines."""
    from separation.core.records import JOBS_GROUP, KINDS_GROUP
    from separation.core.records.kinds import entry_point, names

    kinds = names(KINDS_GROUP)
    assert set(kinds) == {"separation", "duplicates", "benchmark", "lipschitz_construct", "bounds", "evaluate", "training"}
    for kind in kinds:
        cls = entry_point(KINDS_GROUP, kind)
        assert cls.KIND == kind
        if kind != "benchmark":
            assert entry_point(JOBS_GROUP, kind)().record_type is cls


def test_the_version_is_written_in_one_place():
    import importlib.metadata as md

    import separation

    assert separation.__version__ == md.version("separation-toolkit")
    hits = [p for p in modules() if '__version__ = "' in p.read_text()]
    assert hits == []
