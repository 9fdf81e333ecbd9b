"""The image-scaling benchmark script end to end at small sizes: decoding rates by 1 and 2 worker
threads, separation on the cpu engine and a local 2-worker cluster with the same answers, one
record written and its page rendered from it (the full run is minutes; its page is
reports/benchmarks/image_scaling.md); ``--max-seconds`` at its boundary."""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import types

import pytest

from helpers.paths import REPO


def _script():
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        spec = importlib.util.spec_from_file_location("image_scaling", REPO / "benchmarks" / "image_scaling.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(REPO / "benchmarks"))
    return module


def _row(m, n, seconds, norm="l2", competitor="cpu"):
    return m.BenchmarkRow(m.SEPARATION, f"{n}+{n // 5} images, {norm}", competitor, seconds, True,
                          {"n": n, "n_test": n // 5, "d": 3072, "norm": norm})


def test_a_projection_carries_the_measured_growth_and_the_pairs_from_one_size():
    m = _script()
    rows = [_row(m, 1000, 2.0), _row(m, 4000, 16.0), _row(m, 4000, 1.0, "linf"), _row(m, 4000, 5.0, competitor="x"),
            m.BenchmarkRow(m.SEPARATION, "8000+1600 images, l2", "cpu", None, None,
                           {"n": 8000, "n_test": 1600, "d": 3072, "norm": "l2"}, error="not run")]
    seconds, how = m.projection(rows, 16000, "l2", "cpu")  # 2 s -> 16 s over 4x: n^1.5; the row not run is not used
    assert seconds == pytest.approx(128.0) and how.startswith("n^1.50 from 4000 images")
    seconds, how = m.projection(rows, 16000, "linf", "cpu")  # one size: the pairs
    assert seconds == pytest.approx(16.0) and how.startswith("n^2.00 from 4000 images")
    assert m.projection(rows, 16000, "l1", "cpu") is None


@pytest.mark.slow
def test_max_seconds_skips_exactly_the_runs_projected_over_it(tmp_path, monkeypatch):
    m = _script()
    calls, clock, search = [], [0.0], m.compute_separation
    measured = {200: 1.0, 400: 4.0}  # seconds of every run of that size: n^2, so 16 s at 800

    def timed(x, y, xt=None, yt=None, *, norm, engine):  # the real search, its time set by the test
        calls.append((len(x), norm, engine))
        clock.append(clock[-1] + measured.get(len(x), 0.0))
        return search(x, y, xt, yt, norm=norm, engine="cpu")

    monkeypatch.setattr(m, "compute_separation", timed)
    monkeypatch.setattr(m, "time", types.SimpleNamespace(perf_counter=lambda: clock[-1]))
    for limit, runs in ((16.0, True), (15.99, False)):
        calls.clear()
        rows = m.separation_rows(tmp_path / str(limit), [200, 400, 800], ["linf"], 2, max_seconds=limit)
        last = [r for r in rows if r.metrics["n"] == 800]
        assert [r.competitor for r in last] == ["cpu", "dask local:2"]
        assert all((r.seconds is not None) is runs and (r.error is None) is runs for r in last)
        assert sum(n == 800 for n, _, _ in calls) == (2 if runs else 0)
        if not runs:
            assert last[0].error.startswith("not run: 0.0 hours projected (n^2.00 from 400 images")
            assert "--max-seconds 15.99" in last[0].error and last[0].agrees is None
            assert not list((tmp_path / str(limit)).glob("*-800.npy"))  # nothing generated for a size not run


@pytest.mark.slow
def test_the_image_scaling_script_writes_its_record_and_page(tmp_path):
    proc = subprocess.run([sys.executable, "benchmarks/image_scaling.py", "--sizes", "200", "400", "--norms", "linf",
                           "--decode-images", "600", "--out", str(tmp_path / "res"), "--page-out", str(tmp_path / "pages")],
                          cwd=REPO, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr
    rec = json.loads((tmp_path / "res" / "image_scaling" / "record.json").read_text())
    rows = rec["result"]["rows"]
    decode = [r for r in rows if r["section"].startswith("Decoding")]
    assert [(r["group"], r["competitor"]) for r in decode] == [
        ("600 JPEG files of 500x375 to 32x32", "1 worker(s)"), ("600 JPEG files of 500x375 to 32x32", "2 worker(s)"),
        ("600 JPEG files of 64x64 to 32x32", "1 worker(s)"), ("600 JPEG files of 64x64 to 32x32", "2 worker(s)")]
    assert all(r["metrics"]["pixel bytes per image"] == 3072 < r["metrics"]["store bytes per image"] for r in decode)
    sep = [r for r in rows if r["section"].startswith("Separation")]
    assert [(r["group"], r["competitor"]) for r in sep] == [
        ("200+40 images, linf", "cpu"), ("200+40 images, linf", "dask local:2"),
        ("400+80 images, linf", "cpu"), ("400+80 images, linf", "dask local:2")]
    assert all(r["agrees"] is True for r in sep)
    notes = rec["result"]["notes"]
    growth = [n for n in notes if n.startswith("linf, cpu: time grew as n^") and "from 200 to 400 images" in n]
    assert len(growth) == 2 and "ImageNet-64 (64x64x3): " in growth[0] and "hours at n^2" in growth[0]
    page = (tmp_path / "pages" / "image_scaling.md").read_text()
    assert page.startswith("# Image collections at scale") and "images/s per worker" in page
    # --republish: the notes recomputed from the stored rows, nothing measured again
    again = subprocess.run([sys.executable, "benchmarks/image_scaling.py", "--republish", "--out", str(tmp_path / "res"),
                            "--page-out", str(tmp_path / "pages")], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    rec2 = json.loads((tmp_path / "res" / "image_scaling" / "record.json").read_text())
    assert rec2["result"]["rows"] == rows and rec2["result"]["notes"] == notes and rec2["meta"] == rec["meta"]
