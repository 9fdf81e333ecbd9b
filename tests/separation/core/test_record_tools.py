"""Hostile record folders: the record tools skip, report and go on (exit 1 when anything was
skipped), never a traceback, never a hang; a command whose record folder holds such a file
recomputes and writes a proper record."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from helpers.paths import FIXTURES, REPO
from separation.core.errors import RecordError
from separation.core.records import find_records, load_record, read_json

SCHEMA1 = FIXTURES / "schema1" / "separation" / "digits" / "linf" / "record.json"


def _schema1():
    return json.loads(SCHEMA1.read_text())


HOSTILE = {
    "config is a list": lambda b: {**b, "config": []},
    "result is a string": lambda b: {**b, "result": "x"},
    "meta is a string": lambda b: {**b, "meta": "x"},
    "no config": lambda b: {k: v for k, v in b.items() if k != "config"},
    "splits is a number": lambda b: {**b, "config": {**b["config"], "splits": 5}},
    "timing is a list": lambda b: {**b, "timing": [1, 2]},
    "kind is a number": lambda b: {**b, "kind": 5},
    "schema is a string": lambda b: {**b, "schema": "1"},
}


def _write_hostile(root):
    base = _schema1()
    for name, make in HOSTILE.items():
        d = root / name.replace(" ", "_")
        d.mkdir(parents=True)
        (d / "record.json").write_text(json.dumps(make(base)))
    d = root / "bad_arrays"
    d.mkdir()
    (d / "record.json").write_text(json.dumps(base))
    (d / "arrays.npz").write_bytes(b"not a zip file at all")
    d = root / "deep"
    d.mkdir()
    (d / "record.json").write_text("[" * 200_000 + "]" * 200_000)
    d = root / "huge_integer"
    d.mkdir()
    (d / "record.json").write_text('{"kind": "separation", "schema": 2, "x": ' + "9" * 5000 + "}")
    d = root / "fifo"
    d.mkdir()
    os.mkfifo(d / "record.json")
    d = root / "dev_zero"
    d.mkdir()
    os.symlink("/dev/zero", d / "record.json")
    return len(HOSTILE) + 5


def run(*argv, timeout=120):
    return subprocess.run([sys.executable, "-m", *argv], cwd=REPO, capture_output=True, text=True, timeout=timeout)


def test_unusual_files_are_refused_before_they_are_read(tmp_path):
    os.mkfifo(tmp_path / "fifo")
    os.symlink("/dev/zero", tmp_path / "zero")
    (tmp_path / "deep").write_text("[" * 200_000 + "]" * 200_000)
    (tmp_path / "big").write_bytes(b" " * 64)
    t0 = time.perf_counter()
    for name, match in (("fifo", "not a regular file"), ("zero", "not a regular file"),
                        ("deep", "nested too deeply"), ("big", "has 64 bytes; a record's JSON is at most 10")):
        with pytest.raises(RecordError, match=match):
            read_json(tmp_path / name, max_bytes=10 if name == "big" else 64 << 20)
    assert time.perf_counter() - t0 < 10


def test_the_record_tools_skip_report_and_go_on(tmp_path):
    root = tmp_path / "r"
    n = _write_hostile(root)
    good = root / "good"  # a usable record beside them is still found
    good.mkdir()
    (good / "record.json").write_bytes(SCHEMA1.read_bytes())
    rs = find_records(root)
    assert [r.label.rsplit("/", 1)[-1] for r in rs.records] == ["good"] and load_record(good).legacy
    assert len(rs.problems) == n
    for cmd in (["separation.records", "verify", str(root)], ["separation.records", "migrate", str(root)],
                ["analysis.report", "status", "--results", str(root)]):
        p = run(*cmd)
        assert p.returncode == 1, (cmd, p.stderr)
        assert "Traceback" not in p.stderr, cmd
    verify = run("separation.records", "verify", str(root)).stdout
    assert verify.count("PROBLEM") == n and f"1 record(s), {n} problem(s)" in verify
    migrate = run("separation.records", "migrate", str(root)).stdout
    assert "migrated good" in migrate or "0 record(s) migrated" in migrate  # the good one was migrated above


def test_import_benchmark_refuses_a_bad_file_in_one_line(tmp_path):
    bad = tmp_path / "b.json"
    bad.write_text('{"rows": 3')
    p = run("separation.records", "import-benchmark", str(bad), "--out", str(tmp_path / "o"))
    assert p.returncode == 2 and p.stderr.startswith("error: ") and p.stderr.count("\n") == 1
    bad.write_text('{"rows": [1], "meta": {}}')
    p = run("separation.records", "import-benchmark", str(bad), "--out", str(tmp_path / "o"))
    assert p.returncode == 2 and "without the expected fields" in p.stderr and "Traceback" not in p.stderr
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["fifo", "dev_zero", "deep"])
def test_a_command_whose_record_file_is_hostile_recomputes_it(tmp_path, kind):
    """A FIFO or a link to /dev/zero where the record would be neither hangs nor is read without
    bound: the record is recomputed and written in its place."""
    from separation.separation_job import SeparationJob

    argv = ["--dataset", "digits", "--subset", "40", "--out", str(tmp_path), "--no-progress"]
    assert SeparationJob().main(argv) == 0
    [folder] = [p.parent for p in tmp_path.rglob("record.json")]
    (folder / "record.json").unlink()
    if kind == "fifo":
        os.mkfifo(folder / "record.json")
    elif kind == "dev_zero":
        os.symlink("/dev/zero", folder / "record.json")
    else:
        (folder / "record.json").write_text("[" * 200_000 + "]" * 200_000)
    p = run("separation.compute", *argv, timeout=120)
    assert p.returncode == 0, p.stderr
    assert "not reusing" in p.stderr
    assert load_record(folder).config.data.subset == 40
