"""The image-scaling benchmark script end to end at small sizes: decoding rates by 1 and 2 worker
threads, separation on the cpu engine and a local 2-worker cluster with the same answers, one
record written and its page rendered from it (the full run is minutes; its page is
reports/benchmarks/image_scaling.md)."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from helpers.paths import REPO

pytestmark = pytest.mark.slow


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
