"""The mutation report's sampler: only mutants not yet run, a fixed number per module, seeded."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent / "scripts" / "mutation_report.py"


def load(tmp_path):
    spec = importlib.util.spec_from_file_location("mutation_report", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    mod.REPO = tmp_path
    return mod


def test_sample_draws_not_yet_run_mutants_per_module(tmp_path, capsys):
    mod = load(tmp_path)
    assert mod.main(["--sample", "2"]) == 2  # no results yet: says so, exit code 2
    assert "run `mutmut run` once first" in capsys.readouterr().err
    meta = tmp_path / "mutants" / "pkg"
    meta.mkdir(parents=True)
    codes = {f"pkg.a.x_f__mutmut_{i}": (None if i % 2 else 1) for i in range(1, 11)}
    codes |= {f"pkg.b.x_g__mutmut_{i}": None for i in range(1, 4)} | {"pkg.c.x_h__mutmut_1": 0}
    (meta / "a.py.meta").write_text(json.dumps({"exit_code_by_key": codes}))
    picked = mod.sample(2, 0)
    assert len(picked) == 4 and len(set(picked)) == 4
    assert all(codes[n] is None for n in picked)
    assert sum(n.startswith("pkg.a.") for n in picked) == 2 and sum(n.startswith("pkg.b.") for n in picked) == 2
    assert mod.sample(2, 0) == picked and set(mod.sample(5, 1)) == {n for n, c in codes.items() if c is None}
    assert mod.main(["--sample", "2"]) == 0
    assert capsys.readouterr().out.split() == picked
