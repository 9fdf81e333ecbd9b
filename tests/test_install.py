"""The core install: separation, its records and the reports work without the extras (torch, the
cluster, faiss); what needs an extra says which one, in one line."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from helpers.paths import REPO

# the slow tier: commands run as processes with the extras hidden
pytestmark = pytest.mark.slow

#: The packages of the extras, hidden from the core install's processes.
HIDDEN = ("torch", "torchvision", "torchattacks", "dask", "distributed", "dask_jobqueue", "faiss", "triton")

BLOCKER = f'''
import importlib.abc, sys

HIDDEN = {HIDDEN!r}

class _Hide(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in HIDDEN:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None

sys.meta_path.insert(0, _Hide())
'''


@pytest.fixture(scope="module")
def core_env(tmp_path_factory):
    """An environment in which importing any extra fails, as in a core install."""
    site = tmp_path_factory.mktemp("site")
    (site / "sitecustomize.py").write_text(BLOCKER)
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(REPO)])}


def run(env, *argv, timeout=300):
    return subprocess.run([sys.executable, *argv], cwd=REPO, capture_output=True, text=True, env=env, timeout=timeout)


def test_the_blocker_hides_the_extras(core_env):
    p = run(core_env, "-c", "import torch")
    assert p.returncode == 1 and "No module named 'torch'" in p.stderr


def test_the_core_package_imports_without_the_extras(core_env):
    code = ("import separation, separation.core.records, separation.engines, lipschitz_construct, analysis.rendering, "
            "analysis.records, analysis.methods, analysis.evaluate_job, lipschitz_construct.bounds_job; "
            "from separation import compute_separation, conflict_pairs, ClassIndex, ThreatModel; print('ok')")
    p = run(core_env, "-c", code)
    assert p.returncode == 0 and p.stdout.strip() == "ok", p.stderr


def test_the_main_job_runs_without_the_extras(core_env, tmp_path):
    p = run(core_env, "-m", "separation.compute", "--dataset", "digits", "--norm", "linf", "--out", str(tmp_path),
            "--no-progress")
    assert p.returncode == 0, p.stderr
    assert "record:" in p.stdout
    p = run(core_env, "-m", "lipschitz_construct.bounds", "--dataset", "digits", "--eps", "0.25", "--out",
            str(tmp_path), "--no-progress")
    assert p.returncode == 0, p.stderr


@pytest.mark.parametrize("argv, extra", [
    (["-m", "separation.compute", "--dataset", "digits", "--norm", "l2", "--subset", "50"], "torch"),
    (["-m", "separation.compute", "--dataset", "digits", "--subset", "50", "--scheduler", "local:1"], "cluster"),
    (["-m", "separation.compute", "--dataset", "digits", "--subset", "50", "--engine", "faiss"], "faiss"),
    (["-m", "analysis.evaluate", "--model", "constructed", "--dataset", "digits", "--subset", "20"], "torch"),
    (["-m", "analysis.train", "--dataset", "digits"], "torch"),
    (["-m", "lipschitz_construct.verify", "--dataset", "digits", "--subset", "50"], "torch"),
], ids=["l2", "scheduler", "faiss", "evaluate", "train", "verify-gradient"])
def test_what_needs_an_extra_says_which_in_one_line(core_env, tmp_path, argv, extra):
    p = run(core_env, *argv, "--out" if "train" not in argv[1] else "--checkpoint-root", str(tmp_path / "o"))
    assert p.returncode == 2, p.stderr
    lines = [ln for ln in p.stderr.splitlines() if ln.strip() and not ln.startswith("INFO")]
    assert len(lines) == 1 and "Traceback" not in p.stderr, p.stderr
    assert lines[0].startswith("error: ") and f"separation-toolkit[{extra}]" in lines[0], lines[0]
    assert not (tmp_path / "o").exists()


def test_l1_on_bytes_runs_without_the_extras(core_env):
    """l1 on bytes prefers the int8 GEMM (torch); without torch the cpu engine runs its tiled kernel:
    the same answer as the reference, and l-inf never looks for torch."""
    code = ("import numpy as np; from separation.engines import CPUEngine, ReferenceEngine; "
            "x = np.random.default_rng(0).integers(0, 256, (60, 20)).astype(np.uint8); y = np.arange(60) % 3; "
            "got = [CPUEngine().cross_class(x, y, x, y, norm=n, same_set=True) for n in ('l1', 'linf')]; "
            "want = [ReferenceEngine().cross_class(x, y, x, y, norm=n, same_set=True) for n in ('l1', 'linf')]; "
            "print(all(np.array_equal(u, v) for g, w in zip(got, want) for u, v in zip(g, w)))")
    p = run(core_env, "-c", code)
    assert p.returncode == 0 and p.stdout.strip() == "True", p.stderr


def test_verify_without_gradient_steps_needs_no_extra(core_env, tmp_path):
    p = run(core_env, "-m", "lipschitz_construct.verify", "--dataset", "digits", "--subset", "60", "--gradient-steps",
            "0", "--pairs", "20", "--adversarial-pairs", "5", "--out", str(tmp_path), "--no-progress")
    assert p.returncode == 0, p.stderr


def test_reports_render_without_the_extras(core_env, tmp_path):
    p = run(core_env, "-m", "analysis.report", "all", "--out", str(tmp_path / "reports"), "--no-images")
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "reports" / "tables" / "table1_separation.md").is_file()
