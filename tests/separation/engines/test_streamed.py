"""The CPU engine out of core in one process: points over ``CPUBlocks.stream_bytes`` are searched
block pair by block pair (``separation.engines.streamed``), equal to the float64 reference on every
norm, pass and block size, switched exactly at the boundary, reading memory-mapped points from
their file."""
from __future__ import annotations

import numpy as np
import pytest

from separation import compute_separation
from separation.core.errors import DataError, LimitError
from separation.core.memory import separation_bytes
from separation.engines import CPUBlocks, CPUEngine, ReferenceEngine
from separation.engines.base import cross_pairs
from separation.core.arrays import mapped_file
from separation.engines.streamed import row_reader

NORMS = ("linf", "l2", "l1")


def _data(dtype=np.uint8, n=61, m=23, d=12, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n, d), dtype=np.uint8)
    q = rng.integers(0, 256, (m, d), dtype=np.uint8)
    y, yq = rng.integers(0, 3, n), rng.integers(0, 3, m)
    x[7] = x[30]  # an exact duplicate (a tie of distance 0 when the labels differ)
    x[31] = np.clip(x[8].astype(np.int16) + 1, 0, 255)  # a near pair across two blocks
    q[3] = x[50]
    if dtype != np.uint8:  # dyadic floats off the byte grid: every sum is exact in float64
        x, q = x / 256.0, q / 256.0
    return x, y, q, yq


def _engine(stream_bytes):
    return CPUEngine(blocks=CPUBlocks(stream_bytes=stream_bytes, tiled_query_block=3, probe_support_block=4,
                                      gemm_rows=5, probe_query_chunk=7))


@pytest.mark.parametrize("dtype", [np.uint8, np.float64])
@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("rows", [1, 2, 16, 30])
def test_streamed_nearest_equals_the_reference_at_every_block_size(norm, rows, dtype):
    """Equal to the float64 reference, distances and indices (ties included), bytes and floats."""
    x, y, q, yq = _data(dtype)
    row = x.shape[1] * x.itemsize
    ref = ReferenceEngine()
    for qx, qy, same in ((x, y, True), (q, yq, False)):
        want = ref.cross_class(qx, qy, x, y, norm=norm, same_set=same)
        eng = _engine(2 * rows * row)  # blocks of `rows` rows
        got = eng.cross_class(qx, qy, x, y, norm=norm, same_set=same)
        assert eng.streamed["passes"] == 1 and eng.streamed["blocks"] > 1
        assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("rows", [1, 3, 16])
def test_streamed_range_search_equals_the_reference(norm, rows):
    x, y, q, yq = _data()
    radius = {"linf": 0.55, "l2": 1.6, "l1": 3.5}[norm]
    ref = ReferenceEngine()
    for qx, qy, same in ((x, y, True), (q, yq, False)):
        want = ref.range_search(qx, qy, x, y, norm=norm, radius=radius, same_set=same)
        eng = _engine(2 * rows * x.shape[1])
        got = eng.range_search(qx, qy, x, y, norm=norm, radius=radius, same_set=same)
        assert eng.streamed["passes"] == 1 and len(want[0]) > 10
        assert all(np.array_equal(a, b) for a, b in zip(got, want))


def test_streaming_switches_on_one_byte_over_stream_bytes():
    x, y, _, _ = _data()
    want = ReferenceEngine().cross_class(x, y, x, y, norm="linf", same_set=True)
    for stream_bytes, streamed in ((x.nbytes, 0), (x.nbytes - 1, 1)):
        eng = _engine(stream_bytes)
        got = eng.cross_class(x, y, x, y, norm="linf", same_set=True)
        eng.range_search(x, y, x, y, norm="linf", radius=0.5, same_set=True)
        assert eng.streamed["passes"] == 2 * streamed
        assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])
    # a row larger than stream_bytes: blocks of one row, which are not streamed again
    eng = _engine(1)
    got = eng.cross_class(x, y, x, y, norm="l2", same_set=True)
    assert eng.streamed == {"passes": 1, "blocks": len(x) * (len(x) + 1) // 2}
    assert np.array_equal(got[1], ReferenceEngine().cross_class(x, y, x, y, norm="l2", same_set=True)[1])


def test_the_range_limit_counts_the_pairs_of_every_block():
    x, y, _, _ = _data()
    n = len(ReferenceEngine().range_search(x, y, x, y, norm="linf", radius=0.6, same_set=True)[0])
    eng = _engine(2 * 8 * x.shape[1])
    assert len(eng.range_search(x, y, x, y, norm="linf", radius=0.6, same_set=True, max_pairs=n)[0]) == n
    with pytest.raises(LimitError, match="pairs"):
        eng.range_search(x, y, x, y, norm="linf", radius=0.6, same_set=True, max_pairs=n - 1)


@pytest.mark.parametrize("norm", NORMS)
def test_progress_counts_every_pair_once(norm):
    x, y, q, yq = _data()
    for qx, qy, same in ((x, y, True), (q, yq, False)):
        seen = []
        _engine(2 * 5 * x.shape[1]).cross_class(qx, qy, x, y, norm=norm, same_set=same, progress=seen.append)
        assert sum(seen) == cross_pairs(qy, y)
        seen = []
        _engine(2 * 5 * x.shape[1]).range_search(qx, qy, x, y, norm=norm, radius=0.5, same_set=same,
                                                 progress=seen.append)
        assert sum(seen) == (cross_pairs(qy, y) // 2 if same else cross_pairs(qy, y))


def test_memory_mapped_points_are_read_from_their_file(tmp_path):
    x, y, q, yq = _data(n=200, d=10)
    np.save(tmp_path / "x.npy", x.reshape(200, 2, 5))
    xm = np.load(tmp_path / "x.npy", mmap_mode="r")
    flat = xm.reshape(200, 10)
    path, offset = mapped_file(flat)
    assert path == str(tmp_path / "x.npy") and offset == 128  # the .npy header
    assert mapped_file(flat[50:])[1] == 128 + 50 * 10
    assert mapped_file(flat[:, :5]) is None and mapped_file(x) is None  # not contiguous; not mapped
    read = row_reader(flat[50:], y[50:])
    rows, labels = read(3, 9)
    assert np.array_equal(rows, x[53:59]) and np.array_equal(labels, y[53:59])
    assert not isinstance(rows, np.memmap) and rows.flags.writeable
    # the whole separation on the mapped file, streamed, equals the in-memory answer
    eng = _engine(2 * 16 * 10)
    got = compute_separation(flat, y, q, yq, norm="linf", engine=eng, test_test=True, progress=False)
    want = compute_separation(x, y, q, yq, norm="linf", engine="reference", test_test=True, progress=False)
    assert eng.streamed["passes"] == 2  # train--train and test--train (the 23 test points fit)
    for name in ("train_distances", "train_neighbors", "test_distances", "test_neighbors", "test_test_distances"):
        assert np.array_equal(getattr(got, name), getattr(want, name)), name


def test_a_file_truncated_while_mapped_is_one_data_error(tmp_path):
    x, y, _, _ = _data(n=64, d=16)
    np.save(tmp_path / "x.npy", x)
    xm = np.load(tmp_path / "x.npy", mmap_mode="r")
    read = row_reader(xm, y)
    with open(tmp_path / "x.npy", "r+b") as f:
        f.truncate(128 + 40 * 16)
    assert np.array_equal(read(0, 40)[0], x[:40])
    with pytest.raises(DataError, match="shorter than the array mapped from it"):
        read(30, 50)


def test_the_memory_estimate_follows_the_blocks_not_the_points():
    big = separation_bytes(7_000_000, 10_000, 3072, 1, n_classes=10, norm="linf", engine="cpu",
                           stream_bytes=1 << 30)
    assert big == 3 * (1 << 30) + (64 << 20) + 8 * 6 * 7_010_000
    edge = 1000 * 3072  # the switch: points of exactly stream_bytes are held whole
    held = separation_bytes(1000, 0, 3072, 1, n_classes=10, norm="l2", engine="cpu", stream_bytes=edge)
    assert held == separation_bytes(1000, 0, 3072, 1, n_classes=10, norm="l2", engine="cpu")
    assert separation_bytes(1000, 0, 3072, 1, n_classes=10, norm="l2", engine="cpu",
                            stream_bytes=edge - 1) == 3 * (edge - 1) + (64 << 20) + 8 * 6 * 1000


@pytest.mark.parametrize("dtype", [np.uint8, np.float64])
def test_a_bound_searches_only_strictly_closer_points(dtype):
    """The probe search's ``bound`` (the answer of the database blocks before, whose rows win every
    tie): strictly closer points are found exactly, the others give (inf, -1); with every bound
    finite (no seed distances) and with one infinite one (seeds)."""
    x, y, q, yq = _data(dtype)
    want_d, want_i = ReferenceEngine().cross_class(q, yq, x, y, norm="linf")
    search = _engine(1 << 40).prepare(x, y, norm="linf")
    step = 1 if dtype == np.uint8 else 1 / 256
    for bound in (want_d + step, np.where(np.arange(len(q)) % 3 == 0, want_d, want_d + step),
                  np.where(np.arange(len(q)) == 5, np.inf, want_d)):
        d, i = search(q, yq, bound=bound)
        closer = want_d < bound
        assert closer.any()
        assert np.array_equal(d[closer], want_d[closer]) and np.array_equal(i[closer], want_i[closer])
        assert np.all(np.isinf(d[~closer])) and np.all(i[~closer] == -1)


def test_the_automatic_stream_bytes_is_an_eighth_of_the_available_memory(monkeypatch):
    """The default (``stream_bytes=None``) as the guide states it: an eighth of the memory available
    when a search starts, at least 64 MiB, at most 1 GiB (1 GiB where it cannot be read)."""
    for have, want in ((64 << 30, 1 << 30), (8 << 30, 1 << 30), ((8 << 30) + 8, 1 << 30), ((8 << 30) - 8, (1 << 30) - 1),
                       (1 << 30, 128 << 20), (512 << 20, 64 << 20), (256 << 20, 64 << 20), (None, 1 << 30)):
        monkeypatch.setattr("separation.core.memory.available_bytes", lambda have=have: have)
        assert CPUEngine().stream_bytes == want, have
    assert CPUEngine(blocks=CPUBlocks(stream_bytes=5)).stream_bytes == 5
    x, y, _, _ = _data()
    monkeypatch.setattr("separation.core.memory.available_bytes", lambda: 0)  # 64 MiB: these points are held
    eng = _engine(None)
    eng.cross_class(x, y, x, y, norm="l1", same_set=True)
    assert eng.streamed["passes"] == 0
