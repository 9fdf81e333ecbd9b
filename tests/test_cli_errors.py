"""Every command line: bad output folders and Ctrl-C give one line and the right exit code, before
(or instead of) a half-written result."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from helpers.paths import REPO


def run(*argv: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *argv], cwd=REPO, capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})


def one_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith("INFO")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.slow
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


# -- the one error contract: expected failures exit 2 in one line, bugs exit 1 with their traceback --
COMMANDS = [
    ["separation.compute", "--dataset", "digits", "--subset", "60"],
    ["lipschitz_construct.verify", "--dataset", "digits", "--subset", "60", "--pairs", "5",
     "--adversarial-pairs", "2", "--gradient-steps", "1"],
    ["lipschitz_construct.bounds", "--dataset", "digits", "--subset", "60", "--eps", "0.3"],
    ["separation.find_duplicates", "--dataset", "digits", "--subset", "60"],
    ["analysis.evaluate", "--model", "constructed", "--dataset", "digits", "--subset", "20", "--attacks", "none",
     "--lipschitz", "none"],
]


@pytest.mark.slow
@pytest.mark.parametrize("argv", COMMANDS, ids=lambda a: a[0])
def test_a_bug_is_exit_1_with_its_traceback_and_nothing_written(tmp_path, argv):
    """An internal TypeError in a command's work (injected where the work starts) is a bug, not a bad
    call: the traceback, a line asking to report it, exit 1, no record."""
    out = tmp_path / "out"
    p = run(*argv, "--out", str(out), "--no-progress", env={"SEPARATION_FAULT": "bug:before-work"})
    assert p.returncode == 1, p.stderr
    assert "Traceback (most recent call last)" in p.stderr
    assert "TypeError: fault injected at before-work" in p.stderr
    assert p.stderr.rstrip().splitlines()[-1].startswith("error: this is a bug in the toolkit")
    assert not list(out.rglob("record.json"))


@pytest.mark.slow
@pytest.mark.parametrize("argv", COMMANDS, ids=lambda a: a[0])
def test_a_bad_call_is_exit_2_in_one_line_and_verbose_adds_the_traceback(tmp_path, argv):
    argv = [*argv[:argv.index("--subset") + 1], "99999", *argv[argv.index("--subset") + 2:]]
    p = run(*argv, "--out", str(tmp_path / "out"))
    assert p.returncode == 2
    assert one_line(p.stderr).startswith("error: --subset 99999 is larger than the")
    verbose = run(*argv, "--out", str(tmp_path / "out"), "--verbose")
    assert verbose.returncode == 2 and "Traceback (most recent call last)" in verbose.stderr
    assert verbose.stderr.rstrip().splitlines()[-1].startswith("error: --subset 99999")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("module", ["separation.compute", "lipschitz_construct.verify", "lipschitz_construct.bounds",
                                    "analysis.evaluate", "analysis.train", "analysis.grid", "analysis.report",
                                    "separation.records", "separation.find_duplicates"])
def test_ctrl_c_during_start_up_is_exit_130_without_a_traceback(module):
    """A SIGINT from the command's first line on (its imports included) ends it with one line."""
    p = run(module, "--help", env={"SEPARATION_FAULT": "sigint:startup"})
    assert p.returncode == 130
    assert one_line(p.stderr).startswith("interrupted: no record was written")


def test_a_swallowed_ctrl_c_still_stops_the_command_before_its_record(tmp_path, monkeypatch):
    """A library that catches the KeyboardInterrupt (as distributed's gc callback does) cannot make a
    command finish as if nothing happened: it ends as interrupted, with no record."""
    import signal

    from separation.core import cli
    from separation.separation_job import SeparationJob

    class Swallowing(SeparationJob):
        def compute(self, args, data, config):
            try:
                signal.raise_signal(signal.SIGINT)
            except KeyboardInterrupt:
                pass  # swallowed, as a library callback would
            return super().compute(args, data, config)

    monkeypatch.setitem(cli._state, "interrupted", False)
    old = signal.signal(signal.SIGINT, cli._on_sigint)
    try:
        code = Swallowing().main(["--dataset", "digits", "--subset", "50", "--out", str(tmp_path), "--no-progress"])
    finally:
        signal.signal(signal.SIGINT, old)
    assert code == 130
    assert not list(tmp_path.rglob("record.json"))


@pytest.mark.slow
@pytest.mark.parametrize("argv", COMMANDS, ids=lambda a: a[0])
def test_a_record_folder_blocked_by_a_file_is_refused_before_any_work(tmp_path, argv):
    """``--out/<dataset>`` an existing file: refused in one line before the work (it used to fail
    only after the computation, or with a traceback)."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "digits").write_text("a file where the dataset's folder goes")
    p = run(*argv, "--out", str(out), "--no-progress", env={"SEPARATION_FAULT": "bug:before-work"})
    assert p.returncode == 2, p.stderr  # refused before the work: the injected fault is never reached
    line = one_line(p.stderr)
    assert line.startswith(f"error: --out {out / 'digits'}") and "is a file" in line and "pass" in line
    assert sorted(p.name for p in out.iterdir()) == ["digits"]
