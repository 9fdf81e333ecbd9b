"""The unit of work of a cluster run, in this process (no cluster): :mod:`separation.engines.block_tasks`
(one block pair, a pure function of its task) and :mod:`separation.engines.shards` (the data store
the workers read and the shard files they write). tests/test_dask_engine.py runs the same through
a real two-worker cluster."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import pickle
import re
import struct

import numpy as np
import pytest

from separation.engines import CPUEngine, get_engine
from separation.engines import block_tasks as bt
from separation.engines import shards
from separation.engines.reference import pairwise_float64

from helpers.engine_variants import SMALL, tied


def nearest_other(xq, yq, xd, yd, norm, offset=0):
    """float64 brute force: nearest other-label row of ``xd`` per row of ``xq``, ties to the
    smallest index, global indices (``+ offset``), ``inf`` / ``-1`` where there is none."""
    dist = np.where(yq[:, None] != yd[None, :], pairwise_float64(xq, xd, norm), np.inf)
    i = dist.argmin(axis=1) if dist.shape[1] else np.zeros(len(xq), np.int64)
    d = dist[np.arange(len(xq)), i] if dist.shape[1] else np.full(len(xq), np.inf)
    return d, np.where(np.isfinite(d), i + offset, -1)


@pytest.fixture(autouse=True)
def fresh_worker():
    bt.clear_prepared()
    yield
    bt.clear_prepared()


def make_task(tmp_path, kind, q_range, d_range, *, norm="l2", inner="cpu", x_db=None, y_db=None, x=None, y=None):
    query = shards.write_store(tmp_path / "data", x, y)
    database = query if x_db is None else shards.write_store(tmp_path / "data", x_db, y_db)
    task = bt.BlockTask("job0", kind, norm, inner, query, database, q_range, d_range, "")
    return dataclasses.replace(task, shard=str(tmp_path / f"{task.name}.shard"))


# -- what a task computes ---------------------------------------------------------------------------
@pytest.mark.parametrize("norm", ["linf", "l2", "l1"])
@pytest.mark.parametrize("inner", ["cpu", "reference", CPUEngine(linf="tiled", blocks=SMALL)],
                         ids=["cpu", "reference", "cpu-tiled-small"])
def test_each_kind_of_task_is_the_brute_force_on_its_blocks_with_global_indices(tmp_path, norm, inner):
    rng = np.random.default_rng(7)
    x, y = tied(rng, 40, 5, 3)
    y[30:40] = 1  # block (30, 40) has one label: its label-1 rows have no other-label row there
    xt, yt = tied(rng, 12, 5, 3)

    rows = make_task(tmp_path, "rows", (4, 12), (30, 40), norm=norm, inner=inner, x=xt, y=yt, x_db=x, y_db=y)
    d, i = bt.compute_block(rows)
    want_d, want_i = nearest_other(xt[4:12], yt[4:12], x[30:40], y[30:40], norm, offset=30)
    assert (want_i == -1).any() and (want_i >= 30).any()
    np.testing.assert_array_equal(d, want_d)
    np.testing.assert_array_equal(i, want_i)

    pair = make_task(tmp_path, "pair", (5, 20), (20, 38), norm=norm, inner=inner, x=x, y=y)
    da, ia, db, ib = bt.compute_block(pair)
    for got, want in zip((da, ia, db, ib), (*nearest_other(x[5:20], y[5:20], x[20:38], y[20:38], norm, 20),
                                            *nearest_other(x[20:38], y[20:38], x[5:20], y[5:20], norm, 5))):
        np.testing.assert_array_equal(got, want)

    diag = make_task(tmp_path, "pair", (10, 35), (10, 35), norm=norm, inner=inner, x=x, y=y)
    assert diag.diagonal and not pair.diagonal and not rows.diagonal
    d, i = bt.compute_block(diag)
    want_d, want_i = nearest_other(x[10:35], y[10:35], x[10:35], y[10:35], norm, offset=10)
    np.testing.assert_array_equal(d, want_d)
    np.testing.assert_array_equal(i, want_i)
    assert i.dtype == np.int64


def test_a_task_describes_itself_and_its_traffic(tmp_path):
    x = np.zeros((60, 5), np.uint8)
    rows = make_task(tmp_path, "rows", (5, 15), (20, 50), x=x, y=np.arange(60) % 2)
    assert rows.name == "rows-5-20" and not rows.diagonal
    assert rows.header() == {"job": "job0", "task": "rows-5-20", "kind": "rows", "norm": "l2",
                             "query": rows.query.fingerprint, "database": rows.database.fingerprint,
                             "q_range": [5, 15], "d_range": [20, 50]}
    assert (rows.read_bytes(), rows.result_bytes()) == ((10 + 30) * (5 + 8), 16 * 10)
    pair = dataclasses.replace(rows, kind="pair")
    assert (pair.read_bytes(), pair.result_bytes()) == ((10 + 30) * (5 + 8), 16 * 40)
    diag = dataclasses.replace(rows, kind="pair", d_range=(5, 15))
    assert diag.diagonal and (diag.read_bytes(), diag.result_bytes()) == (10 * 13, 16 * 10)
    wide = dataclasses.replace(rows, query=shards.write_store(tmp_path / "f", np.zeros((60, 5)), np.zeros(60)))
    assert wide.read_bytes() == 40 * (5 * 8 + 8)  # float64 points
    assert rows.spec_bytes() == len(pickle.dumps(rows)) > len(rows.shard) + len(rows.query.folder)


@pytest.mark.parametrize("same_set", [True, False])
def test_range_tasks_of_a_plan_merge_into_the_engines_pairs(tmp_path, same_set):
    """The ``range`` tasks of a cluster plan (square blocks ``I <= J`` of one set, or every query
    block against every database block), run here and merged in any order, are the inner engine's
    range search on the whole sets; ``max_pairs`` holds at its boundary, per task and in all."""
    from separation.core.errors import LimitError
    from separation.engines.block_plan import plan_blocks
    from separation.engines.range_merge import RangeMerge

    rng = np.random.default_rng(21)
    x, y = tied(rng, 50, 4, 3, values=4)
    xq, yq = (x, y) if same_set else tied(rng, 23, 4, 3, values=4)
    query = shards.write_store(tmp_path / "data", xq, yq)
    database = query if same_set else shards.write_store(tmp_path / "data", x, y)
    kind, q_rows, d_rows, spans = plan_blocks(len(xq), len(x), 4, pairs=same_set, threads=1, block_size=(9, 7))
    assert (kind, q_rows, d_rows) == (("pair", 9, 9) if same_set else ("rows", 9, 7))
    # radii as the tasks carry them: exact text (l2: a decimal just above sqrt(2)/255)
    for norm, radius in (("linf", "1/255"), ("l2", "0.005546"), ("l1", "2/255")):
        tasks = [dataclasses.replace(bt.BlockTask("job0", "range", norm, "cpu", query, database, a, b, "",
                                                  radius=radius, same_set=same_set),
                                     shard=str(tmp_path / f"{norm}-{a[0]}-{b[0]}.shard")) for a, b in spans]
        assert sum(t.diagonal for t in tasks) == (6 if same_set else 0)
        parts = {t.name: bt.compute_block(t) for t in tasks}
        assert {p[0].dtype for p in parts.values()} == {np.dtype(np.int32)}
        want = CPUEngine().range_search(xq, yq, x, y, norm=norm, radius=radius, same_set=same_set)
        n = len(want[0])
        assert n > 1
        for max_pairs in (None, n):
            merged = RangeMerge(max_pairs, radius)
            for k in rng.permutation(len(tasks)):
                merged.add(tasks[k], parts[tasks[k].name])
            assert merged.nbytes == 16 * n
            got = merged.arrays()
            assert all(np.array_equal(a, b) and a.dtype == b.dtype for a, b in zip(got, want)), norm
        merged = RangeMerge(n - 1, radius)
        with pytest.raises(LimitError, match=f"more than {n - 1:,} cross-class pairs"):
            for t in tasks:
                merged.add(t, parts[t.name])
        busiest = max(tasks, key=lambda t: len(parts[t.name][0]))
        most = len(parts[busiest.name][0])
        assert bt.run_block(dataclasses.replace(busiest, max_pairs=most))[0] is not None
        os.unlink(busiest.shard)
        over = dataclasses.replace(busiest, max_pairs=most - 1)
        assert bt.run_block(over) == (None, True) and not os.path.exists(over.shard)  # no shard
        with pytest.raises(LimitError, match=f"more than {most - 1:,}"):
            RangeMerge(most - 1, radius).add(over, None)
    head = tasks[0].header()
    assert (head["kind"], head["radius"], head["same_set"]) == ("range", radius, same_set)
    bt.run_block(tasks[0])
    assert shards.read_shard(tasks[0].shard, head) is not None
    assert shards.read_shard(tasks[0].shard, dataclasses.replace(tasks[0], radius="1/255").header()) is None
    assert RangeMerge(None, 0.1).arrays()[0].dtype == np.int64


# -- running a task on a worker: shards written once, then reused ----------------------------------
def test_run_block_writes_its_shard_once_then_returns_it(tmp_path, monkeypatch):
    rng = np.random.default_rng(1)
    x, y = tied(rng, 30, 4, 3)
    task = make_task(tmp_path, "pair", (0, 15), (15, 30), x=x, y=y)
    out, computed = bt.run_block(task)
    assert computed and all(np.array_equal(a, b) for a, b in zip(out, bt.compute_block(task)))
    assert shards.read_shard(task.shard, dict(task.header(), inner="cpu")) is not None  # and its provenance

    monkeypatch.setattr(bt, "compute_block", lambda t: pytest.fail("a valid shard was computed again"))
    again, computed = bt.run_block(task)
    assert not computed and all(np.array_equal(a, b) for a, b in zip(out, again))
    other = dataclasses.replace(task, job="job1")  # same file name, another job: not used
    monkeypatch.setattr(bt, "compute_block", lambda t: [np.zeros(1)])
    assert bt.run_block(other) == ([np.zeros(1)], True)


def test_run_block_limits_the_task_to_its_threads_after_its_fault_point(tmp_path, monkeypatch):
    """``$SEPARATION_FAULT=kill:block-task`` (tests/test_dask_engine.py) stops a worker at the start of
    its next task: the point is named ``block-task``."""
    seen = []
    monkeypatch.setattr(bt, "_limit_threads", lambda n: seen.append(n))
    monkeypatch.setattr(bt, "fault", lambda point: seen.append(point))
    x, y = tied(np.random.default_rng(2), 10, 3, 2)
    bt.run_block(dataclasses.replace(make_task(tmp_path, "rows", (0, 5), (5, 10), x=x, y=y), threads=3))
    assert seen == ["block-task", 3]


def test_thread_limits_are_clipped_to_what_numba_and_torch_allow():
    import numba
    import torch

    before = numba.get_num_threads(), torch.get_num_threads()
    try:
        bt._limit_threads(0)
        assert (numba.get_num_threads(), torch.get_num_threads()) == (1, 1)
        most = numba.config.NUMBA_NUM_THREADS
        bt._limit_threads(most + 1)
        assert (numba.get_num_threads(), torch.get_num_threads()) == (most, most + 1)
        bt._limit_threads(2)
        assert (numba.get_num_threads(), torch.get_num_threads()) == (min(2, numba.config.NUMBA_NUM_THREADS), 2)
    finally:
        numba.set_num_threads(before[0])
        torch.set_num_threads(before[1])


def test_a_worker_keeps_its_last_prepared_blocks(tmp_path, monkeypatch):
    """Database blocks A, B, A, C, A, C: A stays (used last), B goes when C comes: three preparations.
    Another engine on the same block prepares its own."""
    prepared = []
    real = CPUEngine.prepare
    monkeypatch.setattr(CPUEngine, "prepare", lambda self, x, y, norm: prepared.append(len(x)) or real(self, x, y,
                                                                                                         norm=norm))
    x, y = tied(np.random.default_rng(3), 40, 4, 3)
    spans = {"A": (10, 20), "B": (20, 31), "C": (31, 40)}
    for name in "ABACAC":
        task = make_task(tmp_path, "rows", (0, 10), spans[name], norm="linf", x=x, y=y)
        d, i = bt.compute_block(task)
        np.testing.assert_array_equal(i, nearest_other(x[:10], y[:10], *(a[slice(*spans[name])] for a in (x, y)),
                                                       "linf", spans[name][0])[1])
    assert bt.PREPARED_CACHE == 2 and prepared == [10, 11, 9]
    assert bt.clear_prepared() == 2 and bt.clear_prepared() == 0
    bt.compute_block(task)
    assert prepared == [10, 11, 9, 9]
    bt.compute_block(dataclasses.replace(task, inner=CPUEngine(linf="tiled")))
    assert prepared == [10, 11, 9, 9, 9]


def test_check_worker_says_whether_it_can_write_and_loads_the_engine(tmp_path):
    assert bt.check_worker(str(tmp_path / "new" / "shards")) == {"ok": True, "error": "", "engine": None}
    assert list((tmp_path / "new" / "shards").iterdir()) == []  # the probe file is gone
    assert bt.check_worker(str(tmp_path), inner="cpu") == {"ok": True, "error": "", "engine": "cpu"}
    (tmp_path / "file").write_text("x")
    bad = bt.check_worker(str(tmp_path / "file" / "shards"), inner="cpu")
    assert bad["ok"] is False and bad["engine"] is None
    assert bad["error"].startswith(("FileExistsError: ", "NotADirectoryError: ")) and "file" in bad["error"]
    assert bt.resolve_inner("cpu") == "cpu" and bt.resolve_inner("auto") == get_engine("auto").name


def test_check_worker_warms_up_the_bytes_l_inf_same_set_search(tmp_path, monkeypatch):
    """What a worker's first train--train task would otherwise wait for: the engine's l-inf search of
    a byte set against itself (its compiled kernels), on two labels."""
    calls = []

    class Recording(CPUEngine):
        def cross_class(self, xq, yq, xd, yd, **kw):
            calls.append((xq.dtype, xq.shape, yq.tolist(), yd.tolist(), xd is xq, kw))
            return super().cross_class(xq, yq, xd, yd, **kw)

    assert bt.check_worker(str(tmp_path), inner=Recording())["engine"] == "cpu"
    labels = [0, 1] * 4
    assert calls == [(np.uint8, (8, 4), labels, labels, True, {"norm": "linf", "same_set": True})]


# -- the data store -----------------------------------------------------------------------------------
def test_the_store_holds_the_data_once_by_content(tmp_path, monkeypatch):
    x = np.arange(24, dtype=np.uint8).reshape(6, 4)
    y = np.array([0, 1, 0, 1, 2, 2], np.int32)
    folder = tmp_path / "new" / "s"
    ref = shards.write_store(folder, x, y)
    assert (ref.n, ref.d, ref.dtype, ref.nbytes) == (6, 4, "|u1", 24)
    assert ref.x_path == str(folder / f"{ref.fingerprint[:40]}.x.npy")
    assert ref.y_path == str(folder / f"{ref.fingerprint[:40]}.y.npy")
    assert np.load(ref.y_path).dtype == np.int64  # labels are stored as int64
    gx, gy = shards.open_store(ref)
    assert np.array_equal(gx, x) and np.array_equal(gy, y) and gy.dtype == np.int64
    assert isinstance(gx, np.memmap) and isinstance(gy, np.memmap)
    assert sorted(os.listdir(folder)) == sorted(os.path.basename(p) for p in (ref.x_path, ref.y_path,
                                                                               ref.manifest_path))

    writes = []
    monkeypatch.setattr(shards, "_write_npy", lambda path, a: writes.append(path.name))
    assert shards.write_store(folder, x, y) == ref and writes == []  # already there
    np.save(ref.y_path, y[:3])  # a wrong file of that name is replaced
    shards.write_store(folder, x, y)
    assert writes == [os.path.basename(ref.y_path)]


def test_the_fingerprint_covers_dtype_shape_points_and_labels():
    x = np.arange(12, dtype=np.uint8).reshape(4, 3)
    y = np.array([0, 1, 0, 1])
    base = shards.fingerprint(x, y)
    assert base == shards.fingerprint(x, y, chunk_rows=1) == shards.fingerprint(x.copy(), y.astype(np.int32))
    assert base == hashlib.sha256(b"|u1:(4, 3):" + x.tobytes() + y.astype(np.int64).tobytes()).hexdigest()
    others = [shards.fingerprint(x.astype(np.float64), y), shards.fingerprint(x.reshape(3, 4), y[:3]),
              shards.fingerprint(x[::-1], y), shards.fingerprint(x, y[::-1])]
    assert len({base, *others}) == 5


def test_the_store_writes_in_chunks_and_leaves_no_temporary_file(tmp_path):
    a = np.arange(70, dtype=np.float32).reshape(10, 7)
    shards._write_npy(tmp_path / "a.npy", a, chunk_rows=3)
    assert np.array_equal(np.load(tmp_path / "a.npy"), a) and os.listdir(tmp_path) == ["a.npy"]


def test_a_store_a_worker_cannot_read_says_how_to_fix_it(tmp_path):
    x, y = np.zeros((4, 2), np.uint8), np.arange(4)
    ref = shards.write_store(tmp_path, x, y)
    missing = shards.StoreRef(str(tmp_path / "elsewhere"), "f" * 64, 4, 2, "|u1")
    with pytest.raises(shards.StoreError, match=r"this worker cannot read the data store .*elsewhere.* "
                                                r"\(FileNotFoundError: .*\); shard_dir must be a folder that the client "
                                                r"and every worker see \(a shared filesystem\)$"):
        shards.open_store(missing)
    for digit, (n, d, dtype) in enumerate([(5, 2, "|u1"), (4, 3, "|u1"), (4, 2, "<f8")]):
        wrong = shards.StoreRef(ref.folder, str(digit) * 64, n, d, dtype)  # the files of ref under this name
        os.link(ref.x_path, wrong.x_path)
        os.link(ref.y_path, wrong.y_path)
        with pytest.raises(shards.StoreError, match=rf"holds \(4, 2\) uint8, not \({n}, {d}\) "
                                                    rf"{re.escape(dtype)}; delete it and run again"):
            shards.open_store(wrong)
    np.save(ref.y_path, np.arange(5))
    with pytest.raises(shards.StoreError, match="delete it"):  # labels of another length
        shards.open_store(ref)


def test_open_stores_are_kept_per_process_eight_at_most(tmp_path):
    refs = [shards.write_store(tmp_path, np.full((2, 2), k, np.uint8), [0, 1]) for k in range(9)]
    first = shards.open_store(refs[0])
    assert all(a is b for a, b in zip(shards.open_store(refs[0]), first))
    for r in refs[1:]:
        shards.open_store(r)
    assert len(shards._OPEN) <= 8 and refs[0].fingerprint not in shards._OPEN
    assert refs[8].fingerprint in shards._OPEN


def _alter(path, rows, seed=0):
    """Foreign values in ``rows`` of the ``.npy`` file at ``path``, in place: same size, same dtype."""
    on_disk = np.load(path, mmap_mode="r+")
    before = np.array(on_disk[rows])
    on_disk[rows] = (before + 1 + np.random.default_rng(seed).integers(0, 3, before.shape)) % 4
    on_disk.flush()
    assert not np.array_equal(np.asarray(on_disk[rows]), before)
    del on_disk


def test_the_client_rewrites_a_store_whose_content_changed(tmp_path, monkeypatch):
    """Foreign data of exactly the same size and dtype in a store file (points, labels or the
    manifest) is found by its digests and written again; an intact store is left alone."""
    x, y = tied(np.random.default_rng(11), 50, 4, 3, values=4)
    folder = tmp_path / "data"
    ref = shards.write_store(folder, x, y)
    assert ref.digest == hashlib.sha256(open(ref.manifest_path, "rb").read()).hexdigest()
    writes = []
    real = shards._write_npy
    monkeypatch.setattr(shards, "_write_npy", lambda path, a: writes.append(path.name) or real(path, a))
    _alter(ref.x_path, slice(10, 20))
    assert shards.write_store(folder, x, y) == ref and writes == [os.path.basename(ref.x_path)]
    assert np.array_equal(np.load(ref.x_path), x)
    _alter(ref.y_path, slice(3, 4))
    assert shards.write_store(folder, x, y) == ref and writes[1:] == [os.path.basename(ref.y_path)]
    assert np.array_equal(np.load(ref.y_path), y)
    manifest = open(ref.manifest_path, "rb").read()
    open(ref.manifest_path, "wb").write(manifest.replace(b'"rows": ', b'"rows":  '))
    with pytest.raises(shards.StoreError, match=re.escape(f"the data store manifest {ref.manifest_path} is not the "
                                                          f"one this run wrote (changed on disk); delete the folder "
                                                          f"{ref.folder} and run again")):
        shards.open_store(ref, fresh=True)
    assert shards.write_store(folder, x, y) == ref and len(writes) == 2
    assert open(ref.manifest_path, "rb").read() == manifest
    assert all(np.array_equal(a, b) for a, b in zip(shards.read_rows(ref, 0, 50), (x, y)))


@pytest.mark.parametrize("kind", ["rows", "pair", "range"])
def test_a_worker_refuses_rows_that_changed_on_disk(tmp_path, kind):
    """The rows a task reads are checked against the store's digests on the copy it computes with:
    rows changed on disk (even in a file this worker has open) are a StoreError that names the file
    and the fix, and no shard is written."""
    x, y = tied(np.random.default_rng(12), 40, 5, 3, values=4)
    task = dataclasses.replace(make_task(tmp_path, kind, (0, 20), (20, 40), x=x, y=y), radius=0.5)
    want = bt.compute_block(task)  # the store is open in this process now
    for path, rows in ((task.query.x_path, slice(25, 27)), (task.query.y_path, slice(5, 6))):
        _alter(path, rows)
        with pytest.raises(shards.StoreError, match=rf"^the data store file {re.escape(path)} does not hold the "
                                                    r"data it was written with \(rows 0\.\.39 changed on disk\); "
                                                    r"delete it \(or the folder .*\) and run again: the client "
                                                    r"writes it anew$"):
            bt.run_block(task)
        assert not os.path.exists(task.shard)
        shards.write_store(tmp_path / "data", x, y)  # the client writes it again: the worker reads it anew
        got, computed = bt.run_block(task)
        assert computed and all(np.array_equal(a, b) for a, b in zip(got, want))
        os.unlink(task.shard)


def test_a_worker_verifies_the_digest_blocks_of_the_rows_it_reads(tmp_path, monkeypatch):
    monkeypatch.setattr(shards, "DIGEST_BYTES", 10)  # 5 bytes a row: blocks of 2 rows
    x, y = tied(np.random.default_rng(13), 41, 5, 3, values=4)
    ref = shards.write_store(tmp_path, x, y)
    assert shards.digest_rows(5, 1) == 2 and len(json.load(open(ref.manifest_path))["x"]) == 21
    for lo, hi in ((0, 41), (3, 8), (7, 7), (40, 41), (25, 26)):
        gx, gy = shards.read_rows(ref, lo, hi)
        assert np.array_equal(gx, x[lo:hi]) and np.array_equal(gy, y[lo:hi]) and gx.flags.c_contiguous
    _alter(ref.x_path, slice(25, 26))
    assert np.array_equal(shards.read_rows(ref, 0, 24)[0], x[:24])  # rows 24..25 are not read
    assert np.array_equal(shards.read_rows(ref, 26, 41)[0], x[26:])
    for lo, hi in ((24, 25), (25, 26), (20, 30)):
        with pytest.raises(shards.StoreError, match=r"\(rows 24\.\.25 changed on disk\)"):
            shards.read_rows(ref, lo, hi)
    assert shards.SHARD_VERSION >= 2  # shards of version 1 may come from a changed store: never read


# -- shard files ------------------------------------------------------------------------------------
def _reseal(data: bytes) -> bytes:
    body = data[:-32]
    return body + hashlib.sha256(body).digest()


def _with_header(data: bytes, **change) -> bytes:
    """The shard ``data`` with header items changed and a valid checksum (the documented layout)."""
    start = len(shards.MAGIC) + 8
    (hlen,) = struct.unpack("<Q", data[len(shards.MAGIC):start])
    head = dict(json.loads(data[start:start + hlen]), **change)
    hb = json.dumps(head, sort_keys=True).encode()
    return _reseal(shards.MAGIC + struct.pack("<Q", len(hb)) + hb + data[start + hlen:])


def test_a_shard_is_used_only_when_whole_and_written_for_the_task(tmp_path, caplog):
    path = tmp_path / "t.shard"
    arrays = [np.array([0.5, np.inf]), np.array([3, -1], np.int64), np.arange(3, dtype=np.float32)]
    size = shards.write_shard(path, {"job": "j", "task": "t"}, arrays)
    data = path.read_bytes()
    assert size == len(data) and data.startswith(shards.MAGIC)
    got = shards.read_shard(path, {"job": "j", "task": "t"})
    assert [(a.dtype, a.tolist()) for a in got] == [(a.dtype, a.tolist()) for a in arrays]
    assert got[0].flags.writeable
    assert shards.read_shard(path, {}) is not None
    assert shards.read_shard(tmp_path / "missing.shard", {}) is None
    assert shards.read_shard(tmp_path, {}) is None  # a folder: logged, not used

    cases = {
        "not a shard file, or truncated": [b"", data[:len(shards.MAGIC) + 8 + 31], b"X" + data[1:]],
        "truncated or corrupted (its checksum does not match)": [data[:-1] + bytes([data[-1] ^ 1])],
        "unreadable header": [_reseal(data.replace(b'{"arrays"', b'{"arrays"'[::-1], 1)),
                              _reseal(shards.MAGIC + struct.pack("<Q", 0) + bytes(32))],  # the shortest file
        f"shard layout 0, not {shards.SHARD_VERSION}": [_with_header(data, shard_version=0)],
        "written for another job ('j', expected 'k')": [data],
        "shorter than its header says": [_with_header(data, arrays=[["<f8", 2], ["<i8", 2], ["<f4", 4]])],
        "longer than its header says": [_with_header(data, arrays=[["<f8", 2], ["<i8", 2], ["<f4", 2]])],
    }
    for why, variants in cases.items():
        for bad in variants:
            path.write_bytes(bad)
            caplog.clear()
            with caplog.at_level(logging.WARNING, logger=shards.__name__):
                assert shards.read_shard(path, {"job": "k" if "job" in why else "j"}) is None
            assert f"{why}; it is computed again" in caplog.text, why


def test_points_read_in_place_are_not_copied_and_still_verified(tmp_path):
    """``write_store(..., x_file=)``: images ``(n, C, H, W)`` in their own ``.npy`` are read as rows
    ``(n, d)`` where they are (only labels and manifest are written); a change to that file is a
    StoreError naming it."""
    x4 = np.random.default_rng(3).integers(0, 256, (9, 3, 2, 2), dtype=np.uint8)
    np.save(tmp_path / "images.npy", x4)
    mm = np.load(tmp_path / "images.npy", mmap_mode="r")
    y = np.arange(9) % 3
    ref = shards.write_store(tmp_path / "data", mm.reshape(9, -1), y, x_file=str(tmp_path / "images.npy"))
    assert ref.x_path == str(tmp_path / "images.npy") and (ref.n, ref.d) == (9, 12)
    assert not list((tmp_path / "data").glob("*.x.npy")) and len(list((tmp_path / "data").glob("*.y.npy"))) == 1
    assert ref.fingerprint == shards.write_store(tmp_path / "copy", x4.reshape(9, -1), y).fingerprint
    gx, gy = shards.read_rows(ref, 2, 7)
    assert np.array_equal(gx, x4.reshape(9, -1)[2:7]) and np.array_equal(gy, y[2:7])
    gx, _ = shards.open_store(ref)
    assert np.array_equal(gx, x4.reshape(9, -1))
    _alter(str(tmp_path / "images.npy"), slice(4, 5))
    with pytest.raises(shards.StoreError, match=r"images\.npy does not hold the data it was written with"):
        shards.read_rows(ref, 0, 9)


def test_recent_holds_at_most_its_size_even_while_it_makes_a_value():
    """The memo behind prepared blocks and streamed reads: a value used again is not made again
    and becomes the most recent; the least recent goes before a new one is made (at the size
    switch: ``size`` held, never ``size + 1``); size 0 keeps one."""
    from separation.engines.block_pairs import Recent

    held = Recent(2)
    during = []

    def make(value):
        return lambda: during.append(len(held)) or value

    assert held.get("a", make("a")) == "a" and held.get("b", make("b")) == "b"
    assert held.get("a", make("not made")) == "a" and during == [0, 1]
    assert held.get("c", make("c")) == "c" and during == [0, 1, 1] and len(held) == 2
    assert held.get("a", make("not made")) == "a"  # a stayed: b was the least recent
    assert held.get("b", make("b again")) == "b again"
    assert held.clear() == 2 and len(held) == 0
    one = Recent(0)
    assert one.get(1, lambda: "x") == "x" and one.get(2, lambda: "y") == "y" and len(one) == 1
