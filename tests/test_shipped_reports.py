"""The committed reports/ are what the committed results/ render to (tables, benchmark pages and
README byte for byte), and every committed record is intact."""
from __future__ import annotations

import shutil

import pytest

from analysis import report
from separation.core.records import find_records

from helpers.paths import REPO
RESULTS, REPORTS = REPO / "results", REPO / "reports"

pytestmark = pytest.mark.skipif(not (RESULTS.is_dir() and REPORTS.is_dir()), reason="no results/ or reports/")


def test_every_shipped_record_is_intact_and_current():
    rs = find_records(RESULTS)
    assert rs.problems == []
    assert len(rs) >= 30
    assert [r.label for r in rs.records if r.legacy] == []  # migrated: python -m separation.records migrate


def test_shipped_tables_and_readme_render_identically(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)  # record labels in the pages are relative to the checkout
    out = tmp_path / "reports"
    out.mkdir()
    shutil.copy(REPORTS / "sources.json", out / "sources.json")  # the figures' entries, kept as rendered
    for cmd in ("separation", "methods", "dropout", "benchmarks", "readme"):
        assert report.main([cmd, "--results", "results", "--out", str(out)]) == 0, cmd
    shutil.copytree(REPORTS / "figures", out / "figures")  # the README lists the figure files
    assert report.main(["readme", "--results", "results", "--out", str(out)]) == 0
    names = sorted(p.relative_to(out).as_posix() for p in out.rglob("*")
                   if p.is_file() and p.parent.name in ("tables", "benchmarks") or p.name == "README.md")
    assert "README.md" in names and "tables/table1_separation.md" in names
    assert "benchmarks/separation_engines.md" in names
    differ = [n for n in names if (out / n).read_bytes() != (REPORTS / n).read_bytes()]
    assert differ == [], f"re-render with `python -m analysis.report all --data-root DATA`: {differ} changed"
