"""Every command line: bad output folders and Ctrl-C give one line and the right exit code, before
(or instead of) a half-written result."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def run(*argv: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *argv], cwd=REPO, capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})


def one_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith("INFO")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize("argv, flag", [
    (["separation.compute", "--dataset", "digits", "--out", "FILE"], "--out"),
    (["lipschitz_construct.verify", "--dataset", "digits", "--out", "FILE"], "--out"),
    (["analysis.evaluate", "--model", "constructed", "--dataset", "digits", "--out", "FILE"], "--out"),
    (["analysis.train", "--dataset", "digits", "--checkpoint-root", "FILE"], "--checkpoint-root"),
    (["analysis.train", "--dataset", "digits", "--checkpoint-root", "DIR", "--results-root", "FILE"],
     "--results-root"),
    (["analysis.grid", "configs/mnist_cpu.yaml", "--checkpoint-root", "FILE"], "--checkpoint-root"),
    (["analysis.grid", "configs/mnist_cpu.yaml", "--checkpoint-root", "DIR", "--results-root", "FILE"],
     "--results-root"),
])
def test_an_output_path_that_is_a_file(tmp_path, argv, flag):
    f = tmp_path / "afile"
    f.write_text("not a folder")
    argv = [str(f) if a == "FILE" else str(tmp_path / "ok") if a == "DIR" else a for a in argv]
    p = run(*argv)
    assert p.returncode == 2
    line = one_line(p.stderr)
    assert line.startswith(f"error: {flag} {f}") and "pass a" in line
    assert not (tmp_path / "ok").exists()


@pytest.mark.slow
@pytest.mark.parametrize("argv", [
    ["separation.compute", "--dataset", "digits", "--subset", "200"],
    ["lipschitz_construct.verify", "--dataset", "digits", "--subset", "200"],
    ["analysis.evaluate", "--model", "constructed", "--dataset", "digits", "--subset", "100", "--attacks", "pgd",
     "--lipschitz", "ascent"],
])
def test_ctrl_c_is_exit_130_without_a_traceback_or_a_record(tmp_path, argv):
    out = tmp_path / "out"
    p = run(*argv, "--out", str(out), "--no-progress", env={"SEPARATION_FAULT": "sigint:after-arrays"})
    assert p.returncode == 130
    assert one_line(p.stderr).startswith("interrupted: no record was written")
    assert not list(out.rglob("record.json"))
    again = run(*argv, "--out", str(out), "--no-progress")
    assert again.returncode == 0, again.stderr
    assert len(list(out.rglob("record.json"))) == 1
