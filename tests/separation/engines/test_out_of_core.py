"""Out of core: the block tasks of a cluster run read their rows from the store with positioned
reads (the files are never mapped), so a worker's memory is bounded by its blocks, not by the
store; so does the CPU engine in one process on memory-mapped points over its ``stream_bytes`` --
both checked under a real address-space limit smaller than the store."""
from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import numpy as np
import pytest

from separation.core.memory import separation_bytes
from separation.engines import CPUEngine, shards

from helpers.paths import REPO

#: Runs in a fresh process: one warm-up task, then RLIMIT_AS = its address space + GROWTH_MB,
#: then every (query block, database block) task of the store, merged; prints the answer.
_WORKER = """
import dataclasses, json, resource, sys
import numpy as np
from separation.engines import block_tasks as bt, shards

ref = shards.StoreRef(**json.loads(sys.argv[1]))
nq, block, growth_mb, shard_dir = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]

def task(b0):
    t = bt.BlockTask("job", "rows", "linf", "cpu", ref, ref, (0, nq), (b0, min(ref.n, b0 + block)), "")
    return dataclasses.replace(t, shard=f"{shard_dir}/{t.name}.shard")

bt.run_block(task(0))  # kernels loaded and threads started before the limit
page = resource.getpagesize()
limit = int(open("/proc/self/statm").read().split()[0]) * page + (growth_mb << 20)
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
try:
    np.load(ref.x_path, mmap_mode="r")
    mapped = True
except (OSError, ValueError, MemoryError):
    mapped = False
d, i = np.full(nq, np.inf), np.full(nq, -1, np.int64)
for b0 in range(0, ref.n, block):
    (bd, bi), _ = bt.run_block(task(b0))
    better = bd < d  # blocks in increasing order: a tie keeps the smaller index
    d[better], i[better] = bd[better], bi[better]
print(json.dumps({"mapped": mapped, "d": d.tolist(), "i": i.tolist()}))
"""


#: Runs in a fresh process: the points memory-mapped, one streamed warm-up search, then RLIMIT_AS =
#: its address space + GROWTH_MB, then the whole separation in this process (the CPU engine
#: streaming blocks of stream_bytes / 2); prints the answer.
_IN_PROCESS = """
import json, resource, sys
import numpy as np
from separation import compute_separation
from separation.engines import CPUBlocks, CPUEngine

x_path, y_path, stream_bytes, growth_mb = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
x, y = np.load(x_path, mmap_mode="r"), np.load(y_path)
warm = CPUEngine(blocks=CPUBlocks(stream_bytes=64 << 10))  # kernels compiled and threads started
compute_separation(np.array(x[:512]), y[:512], norm="linf", engine=warm, progress=False)
page = resource.getpagesize()
limit = int(open("/proc/self/statm").read().split()[0]) * page + (growth_mb << 20)
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
try:
    np.array(x)
    copied = True
except MemoryError:
    copied = False
engine = CPUEngine(blocks=CPUBlocks(stream_bytes=stream_bytes))
res = compute_separation(x, y, norm="linf", engine=engine, progress=False)
print(json.dumps({"copied": copied, "streamed": engine.streamed, "d": (res.train_distances * 255).tolist(),
                  "i": res.train_neighbors.tolist()}))
"""


def _twins(n: int, d: int):
    """``(n, d)`` random bytes where each row's twin (one byte value off at most) has the other label."""
    rng = np.random.default_rng(7)
    x = rng.integers(0, 256, (n, d), dtype=np.uint8)
    x[1::2] = np.clip(x[0::2].astype(np.int16) + rng.integers(-1, 2, (n // 2, d)), 0, 255).astype(np.uint8)
    y = np.zeros(n, np.int64)
    y[0::2] = np.arange(n // 2) % 2
    y[1::2] = 1 - y[0::2]
    return x, y


@pytest.mark.slow
def test_the_cpu_engine_separates_memory_mapped_points_four_times_its_allowed_growth(tmp_path):
    """64 MiB of memory-mapped points (65,536 rows of 1,024 bytes); a process whose address space
    may grow by 16 MiB only (it cannot copy the points) computes the whole train--train
    separation in itself, streaming blocks of 2 MiB, equal to the in-memory cpu engine's."""
    x, y = _twins(65536, 1024)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    done = subprocess.run([sys.executable, "-c", _IN_PROCESS, str(tmp_path / "x.npy"), str(tmp_path / "y.npy"),
                           str(4 << 20), "16"], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["copied"] is False  # a copy of the points does not fit in what the process may still grow
    assert out["streamed"] == {"passes": 1, "blocks": 32 * 32}
    want_d, want_i = CPUEngine().cross_class(x, y, x, y, norm="linf", same_set=True)
    assert np.array_equal(out["d"], want_d) and np.array_equal(out["i"], want_i)
    assert np.array_equal(want_i[:4], [1, 0, 3, 2])


@pytest.mark.slow
def test_a_store_four_times_the_allowed_address_space_computes_block_by_block(tmp_path):
    """A 128 MiB store (131,072 rows of 1,024 bytes); a worker process that may grow its address
    space by 32 MiB only (so it cannot even map the store) runs every block task of 256 query rows
    against 2,048-row database blocks, and its merged answer equals the in-memory cpu engine's."""
    x, y = _twins(131072, 1024)
    ref = shards.write_store(tmp_path / "data", x, y)
    assert ref.nbytes == 4 * (32 << 20)
    (tmp_path / "shards").mkdir()
    done = subprocess.run([sys.executable, "-c", _WORKER, json.dumps(dataclasses.asdict(ref)), "256", "2048", "32",
                           str(tmp_path / "shards")], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["mapped"] is False  # the store is larger than what the worker may still map
    want_d, want_i = CPUEngine().cross_class(x[:256], y[:256], x, y, norm="linf")
    assert np.array_equal(out["d"], want_d) and np.array_equal(out["i"], want_i)
    assert np.array_equal(want_i[:4], [1, 0, 3, 2])


def test_rows_are_read_without_mapping_and_checked_against_the_header(tmp_path):
    a = np.arange(7 * 5, dtype=np.uint8).reshape(7, 5)
    np.save(tmp_path / "a.npy", a)
    for lo, hi in ((0, 7), (2, 5), (6, 7), (3, 3)):
        got = shards.npy_rows(str(tmp_path / "a.npy"), (7, 5), np.uint8, lo, hi)
        assert np.array_equal(got, a[lo:hi]) and got.flags.writeable and not isinstance(got, np.memmap)
    with pytest.raises(shards.StoreError, match=r"holds \(7, 5\) uint8, not \(7, 6\) \|u1; delete it"):
        shards.npy_rows(str(tmp_path / "a.npy"), (7, 6), np.uint8, 0, 1)
    data = (tmp_path / "a.npy").read_bytes()
    (tmp_path / "a.npy").write_bytes(data[:-3])
    with pytest.raises(shards.StoreError, match="shorter than its header says"):
        shards.npy_rows(str(tmp_path / "a.npy"), (7, 5), np.uint8, 5, 7)
    with pytest.raises(shards.StoreError, match="cannot read the data store"):
        shards.npy_rows(str(tmp_path / "missing.npy"), (7, 5), np.uint8, 0, 1)


def test_the_memory_check_of_a_cluster_run_does_not_grow_with_the_points():
    """The client streams the points into the store: its estimate is the per-point outputs and
    one write chunk, whereas the in-process engines count their copy of the training points."""
    small = separation_bytes(70_000, 0, 3072, 1, n_classes=10, norm="linf", engine="dask")
    large = separation_bytes(7_000_000, 0, 3072, 1, n_classes=10, norm="linf", engine="dask")
    assert large - small == 8 * 6 * (7_000_000 - 70_000)
    assert separation_bytes(7_000_000, 0, 3072, 1, n_classes=10, norm="linf", engine="cpu") > 7_000_000 * 3072
