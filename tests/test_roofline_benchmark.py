"""The roofline benchmark script end to end on the embedded digits data: peaks, engines and
competitors measured, one record written, the page rendered from it (the full run is minutes on
MNIST; its page is reports/benchmarks/roofline.md)."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from helpers.paths import REPO

pytestmark = pytest.mark.slow


def test_the_roofline_script_writes_its_record_and_page(tmp_path):
    proc = subprocess.run([sys.executable, "benchmarks/roofline.py", "--dataset", "digits", "--subset", "200",
                           "--test-subset", "40", "--peak-seconds", "0.02", "--competitors", "torch.cdist",
                           "--range-radii", "linf=1/2", "l1=5",
                           "--out", str(tmp_path / "res"), "--page-out", str(tmp_path / "pages")],
                          cwd=REPO, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr
    rec = json.loads((tmp_path / "res" / "roofline" / "record.json").read_text())
    rows = rec["result"]["rows"]
    sections = {r["section"] for r in rows}
    assert "Measured peaks of this machine" in sections
    for norm in ("linf", "l2", "l1"):
        engines = [r for r in rows if r["section"] == f"Engines on digits ({norm}, train–train + test–train)"]
        assert [r["competitor"] for r in engines] == {
            "linf": ["cpu (probe)", "cpu (tiled)"], "l2": ["cpu (pooled bound)", "cpu (integer GEMM)",
                                                       "cpu (float32 GEMM + recheck)"],
            "l1": ["cpu (pooled bound)", "cpu (l2 bound)", "cpu (tiled)"]}[norm]
        assert engines and all(r["metrics"]["fraction of peak"] > 0 for r in engines)
        assert all(r["agrees"] in (None, True) for r in engines)  # every engine variant: the same distances
        tools = [r["competitor"] for r in rows if r["section"] == f"Same data, every tool ({norm}, train–train + test–train)"]
        assert tools == ["ours: cpu", "torch.cdist"]
    probe = next(r for r in rows if r["competitor"] == "cpu (probe)")
    assert 0 < probe["metrics"]["exact pairs"] < 1  # the probes ruled pairs out
    pooled = [r for r in rows if r["competitor"] == "cpu (pooled bound)"]
    assert len(pooled) == 2  # l2 and l1
    assert all(r["metrics"]["exact pairs"] is None for r in pooled)  # digits are floats: the pooled paths are for bytes
    for norm, radius in (("linf", "1/2"), ("l2", "6"), ("l1", "5")):  # l2: the default radius
        ranged = [r for r in rows if r["section"] == f"Range search for the bounds on digits ({norm}, train–train)"]
        assert [r["competitor"] for r in ranged] == ["nearest: cpu", "range: cpu"] + (
            ["range: cpu (integer GEMM)"] if norm == "l2" else [])
        assert {r["group"] for r in ranged} == {f"1347 points, radius {radius}"}  # the digits training split
        assert ranged[0]["metrics"]["pairs found"] is None and ranged[1]["metrics"]["pairs found"] > 0
        assert all(r["agrees"] in (None, True) for r in ranged) and (norm != "l2" or ranged[2]["agrees"] is True)
        assert (ranged[0]["metrics"]["exact pairs"] is None) == (norm != "linf")  # digits are floats: no pooled
        assert ranged[1]["metrics"]["exact pairs"] is None  # l-inf: its range kernel is not counted
    peaks = {r["group"] for r in rows if r["section"] == "Measured peaks of this machine"}
    assert {"int8 GEMM, int32 sums (torch._int_mm)", "memory: parallel copy"} <= peaks
    page = (tmp_path / "pages" / "roofline.md").read_text()
    assert page.startswith("# CPU engines against the measured roofline") and "fraction of peak" in page


def test_a_range_radius_needs_a_norm(tmp_path):
    proc = subprocess.run([sys.executable, "benchmarks/roofline.py", "--dataset", "digits", "--range-radii", "l3=1",
                           "--out", str(tmp_path)], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "expected NORM=RADIUS with NORM one of linf, l2, l1, got 'l3=1'" in proc.stderr
    assert not any(tmp_path.iterdir())


def test_an_unknown_competitor_is_one_error_line(tmp_path):
    proc = subprocess.run([sys.executable, "benchmarks/roofline.py", "--dataset", "digits", "--competitors", "annoy",
                           "--out", str(tmp_path)], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and proc.stderr.startswith("error: unknown competitor 'annoy'")
    assert not any(tmp_path.iterdir())
