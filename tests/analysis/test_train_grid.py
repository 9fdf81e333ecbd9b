"""The grid runner on sklearn's digits: trains every run, then skips finished ones."""
from __future__ import annotations


import pytest
import yaml

from analysis.grid import main
from analysis.training.grid_runs import format_table
from analysis.training.grid_file import load_grid
from separation.core.records import load_record

from helpers.grids import TINY_BASE, TINY_RUNS

pytest.importorskip("sklearn")

GRID = {"grid": "tiny", "base": TINY_BASE, "vary": {"dropout": [0.0, 0.5]}, "runs": TINY_RUNS}


def test_grid_trains_then_skips(tmp_path, capsys):
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(GRID))
    names = load_grid(path).names()
    assert names == ["natural", "natural-drop0.5", "rst-l0.5", "rst-l0.5-drop0.5"]
    roots = ["--checkpoint-root", str(tmp_path / "ck"), "--results-root", str(tmp_path / "res"),
             "--no-progress"]
    assert main([str(path), *roots, "--only", "natural,rst-l0.5-drop0.5"]) == 0
    table = capsys.readouterr().out
    assert "| natural | natural | 0 |" in table and "rst-l0.5-drop0.5" in table
    folders = {p.name.rpartition("-")[0]: p.name for p in (tmp_path / "res" / "tiny").iterdir()}
    assert set(folders) == {"natural", "rst-l0.5-drop0.5"}  # <run name>-<key>: one folder per configuration
    for name in ("natural", "rst-l0.5-drop0.5"):
        rec = load_record(tmp_path / "res" / "tiny" / folders[name])
        assert rec.KIND == "training" and rec.config.name == name
        assert (tmp_path / "ck" / "tiny" / folders[name] / "last.pt").is_file()
    assert main([str(path), *roots, "--list"]) == 0
    listing = dict(line.split("\t") for line in capsys.readouterr().out.strip().splitlines())
    assert listing == {"natural": "finished", "natural-drop0.5": "to do", "rst-l0.5": "to do",
                       "rst-l0.5-drop0.5": "finished"}
    assert main([str(path), *roots, "--table"]) == 0
    table = capsys.readouterr().out
    assert "| rst-l0.5 | (not finished) |" in table and "| natural | natural | 0 |" in table
    # finished runs are skipped: their records stay byte-identical
    before = (tmp_path / "res" / "tiny" / folders["natural"] / "record.json").read_bytes()
    assert main([str(path), *roots, "--only", "natural"]) == 0
    assert (tmp_path / "res" / "tiny" / folders["natural"] / "record.json").read_bytes() == before
    assert main([str(path), *roots, "--only", "nope"]) == 2


def test_format_table_handles_missing_runs():
    text = format_table([("a", None)])
    assert "(not finished)" in text and text.count("\n") == 2
