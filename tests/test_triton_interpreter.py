"""The CUDA engine's Triton kernels, run on the CPU by Triton's interpreter (``TRITON_INTERPRET=1``,
CPU tensors), equal the float64 reference: the GPU code is tested without a GPU."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("triton")
SCRIPT = Path(__file__).resolve().parent / "scripts" / "triton_interpreter_check.py"


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_triton_kernels_under_the_interpreter_equal_the_reference(seed):
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    p = subprocess.run([sys.executable, str(SCRIPT), str(seed)], capture_output=True, text=True, env=env,
                       timeout=900)
    assert p.returncode == 0, p.stderr[-3000:]
    out = json.loads(p.stdout.strip().splitlines()[-1])
    assert out["failures"] == []
    assert out["calls"].get("pair_kernel", 0) > 0 and out["calls"].get("nn_kernel", 0) > 0  # really ran
