"""The memory a process may still use: the limits of its control groups (cgroup v1 and v2, the
group and every group above it, droppable page cache counted as free), read from files in the
kernel's layouts written by the test."""
from __future__ import annotations

from pathlib import Path

from separation.core.memory import cgroup_left


def _group(folder: Path, files: dict[str, str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text + "\n")


def test_cgroup_v1_limits_of_the_group_and_its_parents(tmp_path):
    proc = tmp_path / "cgroup"
    proc.write_text("9:name=systemd:/\n4:memory:/slurm/job_7/step_0\n3:cpuset:/\n")
    mem = tmp_path / "fs" / "memory"
    _group(mem, {"memory.limit_in_bytes": "9223372036854771712", "memory.usage_in_bytes": "123"})  # no limit
    _group(mem / "slurm" / "job_7", {"memory.limit_in_bytes": str(4 << 30), "memory.usage_in_bytes": str(3 << 30),
                                     "memory.stat": "cache 5\ntotal_inactive_file 1024\n"})
    _group(mem / "slurm" / "job_7" / "step_0", {"memory.limit_in_bytes": str(8 << 30),
                                                "memory.usage_in_bytes": str(1 << 30)})
    # the job's limit binds (1 GiB + its droppable cache), not the step's own 7 GiB
    assert cgroup_left(proc, tmp_path / "fs") == (1 << 30) + 1024
    (mem / "slurm" / "job_7" / "memory.limit_in_bytes").write_text("9223372036854771712\n")
    assert cgroup_left(proc, tmp_path / "fs") == 7 << 30


def test_cgroup_v2_limits_and_no_limit(tmp_path):
    proc = tmp_path / "cgroup"
    proc.write_text("0::/user.slice/run.scope\n")
    fs = tmp_path / "fs"
    _group(fs / "user.slice", {"memory.max": "max", "memory.current": "10"})
    _group(fs / "user.slice" / "run.scope", {"memory.max": str(2 << 30), "memory.current": str(3 << 30),
                                             "memory.stat": "anon 1\ninactive_file 4096\n"})
    assert cgroup_left(proc, fs) == 0  # over its limit (it can only drop its inactive cache, 4 KiB, first)
    (fs / "user.slice" / "run.scope" / "memory.current").write_text(str(1 << 30))
    assert cgroup_left(proc, fs) == (1 << 30) + 4096
    (fs / "user.slice" / "run.scope" / "memory.max").write_text("max\n")
    assert cgroup_left(proc, fs) is None
    assert cgroup_left(tmp_path / "missing", fs) is None

