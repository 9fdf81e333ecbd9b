"""The Dask engine on a real two-process LocalCluster: bit for bit the CPU engine's answer (ties,
cross-class duplicates, uneven classes and blocks), tasks on both workers, resume after a killed
client, a killed worker retried, foreign and truncated shards never used, bad input refused."""
from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from separation import ClassIndex, compute_separation, nearest_neighbors
from separation.engines import CPUEngine, DaskEngine, FaissEngine, ReferenceEngine
from separation.engines.blocks import CPUBlocks
from separation.engines.shards import read_shard, write_shard

from helpers.engine_variants import tied

# the slow tier: Dask clusters of worker processes
pytestmark = pytest.mark.slow

distributed = pytest.importorskip("distributed")

from helpers.paths import REPO
NORMS = ["linf", "l2", "l1"]
# small kernel blocks: every multi-block path of the inner kernels runs on these small arrays
SMALL = CPUBlocks(probe_query_block=4, probe_support_block=8, probe_seeds=3, probe_query_chunk=16,
                  tiled_query_block=4, tiled_chunk=2, tiled_db_bytes=64, gemm_rows=7)
INNERS = {"cpu": CPUEngine(blocks=SMALL), "cpu-tiled": CPUEngine(linf="tiled", blocks=SMALL)}


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                                  silence_logs=logging.ERROR) as cluster, distributed.Client(cluster) as c:
        yield c


@pytest.fixture(scope="module")
def shard_root(tmp_path_factory):
    return tmp_path_factory.mktemp("shards")


def same(a, b):
    return all(np.array_equal(x, y) for x, y in zip(a, b))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n=st.integers(2, 45), m=st.integers(1, 20), d=st.integers(1, 6), classes=st.integers(1, 4),
       block=st.integers(4, 17), inner=st.sampled_from(sorted(INNERS)), seed=st.integers(0, 2**16))
def test_equals_the_cpu_engine_bit_for_bit(client, shard_root, n, m, d, classes, block, inner, seed):
    rng = np.random.default_rng(seed)
    x, y = tied(rng, n, d, classes)
    xq, yq = tied(rng, m, d, classes + 1)
    eng = DaskEngine(client, inner=INNERS[inner], block_size=block, shard_dir=shard_root / "prop")
    cpu, ref = INNERS[inner], ReferenceEngine()
    for norm in NORMS:
        want = cpu.cross_class(x, y, x, y, norm=norm, same_set=True)
        assert same(want, ref.cross_class(x, y, x, y, norm=norm, same_set=True)), norm
        assert same(eng.cross_class(x, y, x, y, norm=norm, same_set=True), want), norm
        assert same(eng.cross_class(xq, yq, x, y, norm=norm), cpu.cross_class(xq, yq, x, y, norm=norm)), norm


@pytest.mark.parametrize("block_size", [None, 13, (11, 29)])
def test_separation_with_uneven_classes_and_blocks_runs_on_both_workers(client, shard_root, block_size):
    rng = np.random.default_rng(1)
    x, y = tied(rng, 157, 9, 5, values=4)
    y[:100] = 0  # one large class, four small ones
    xt, yt = tied(rng, 41, 9, 5, values=4)
    eng = DaskEngine(client, inner="cpu", block_size=block_size, shard_dir=shard_root / "uneven")
    for norm in NORMS:
        with distributed.get_task_stream(client) as ts:
            got = compute_separation(x, y, xt, yt, norm=norm, engine=eng, test_test=True)
        want = compute_separation(x, y, xt, yt, norm=norm, engine="cpu", test_test=True)
        for k, v in want.arrays().items():
            assert np.array_equal(got.arrays()[k], v), (norm, k)
        assert len({t["worker"] for t in ts.data if t["key"].startswith("separation-")}) == 2
    assert [p.schedule for p in eng.passes[:3]] == ["rows", "rows", "rows"]  # l-inf probe: rows
    assert eng.passes[3].schedule == "pair" and eng.passes[3].computed == eng.passes[3].shards  # l2: pairs
    run = eng.cluster_run()
    assert run.workers == 2 and run.threads == 2 and run.inner == "cpu" and run.shards == sum(p.shards for p in run.passes)


def test_float_points_and_the_class_index(client, shard_root):
    rng = np.random.default_rng(2)
    x = rng.integers(0, 5, (60, 7)) / 4.0  # dyadic: sums are exact, every engine agrees bit for bit
    y = rng.integers(0, 3, 60)
    q = rng.integers(0, 5, (11, 7)) / 4.0
    eng = DaskEngine(client, inner="cpu", block_size=9, shard_dir=shard_root / "float")
    for norm in NORMS:
        assert same(nearest_neighbors(q, x, norm=norm, engine=eng), nearest_neighbors(q, x, norm=norm, engine="cpu"))
        a, b = ClassIndex(x, y, norm=norm, engine=eng), ClassIndex(x, y, norm=norm, engine="cpu")
        assert same(a.distances(q, return_indices=True), b.distances(q, return_indices=True)), norm
        assert same(a.top2(q), b.top2(q)) and same(a.other_class(q, y[:11]), b.other_class(q, y[:11]))
    from lipschitz_construct import LocallyLipschitzClassifier

    xb, yb = tied(np.random.default_rng(6), 50, 5, 3, values=256)  # no duplicates: r > 0
    clf = [LocallyLipschitzClassifier(norm="linf", engine=e).fit(xb[:40], yb[:40]) for e in (eng, "cpu")]
    assert clf[0].r_ == clf[1].r_ > 0 and same([clf[0].scores(xb[40:])], [clf[1].scores(xb[40:])])


@pytest.mark.realdata
def test_mnist_subset_equals_the_cpu_engine(client, shard_root, mnist):
    ds = mnist.subset(3000, seed=0)
    eng = DaskEngine(client, inner="cpu", shard_dir=shard_root / "mnist")
    for norm in ("linf", "l2"):
        got = compute_separation(ds.x_train, ds.y_train, ds.x_test[:600], ds.y_test[:600], norm=norm, engine=eng)
        want = compute_separation(ds.x_train, ds.y_train, ds.x_test[:600], ds.y_test[:600], norm=norm, engine="cpu")
        for k, v in want.arrays().items():
            assert np.array_equal(got.arrays()[k], v), (norm, k)


def _shards(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.shard"))


def _wait_idle(client, timeout=60):
    """Until the scheduler has no task waiting or running and no worker thread still runs one (a
    task that erred may stay held by the exception that reports it)."""
    end = time.time() + timeout
    while time.time() < end:
        scheduled = client.run_on_scheduler(lambda dask_scheduler: sum(
            ts.state in ("waiting", "queued", "processing", "no-worker") for ts in dask_scheduler.tasks.values()))
        # a forgotten task's thread runs on (and writes its shard) until it finishes
        running = sum(client.run(lambda dask_worker: len(dask_worker.state.executing)).values())
        if scheduled == 0 and running == 0:
            return
        time.sleep(0.2)
    raise AssertionError("the cluster did not go idle")


KILLED_CLIENT = """
import os, signal, sys
import numpy as np
from separation.engines import CPUEngine, DaskEngine, FaissEngine, ReferenceEngine

data = np.load(sys.argv[1])
engine = DaskEngine(sys.argv[2], inner=CPUEngine(linf="tiled"), shard_dir=sys.argv[3], block_size=40)
seen = []
def progress(n):
    seen.append(n)
    if len(seen) == 3:
        os.kill(os.getpid(), signal.SIGKILL)  # the client dies mid-run
engine.cross_class(data["x"], data["y"], data["x"], data["y"], norm="linf", same_set=True, progress=progress)
"""


def test_a_killed_client_resumes_computing_only_the_missing_shards(client, tmp_path):
    rng = np.random.default_rng(3)
    x, y = tied(rng, 1000, 48, 6, values=20)
    np.savez(tmp_path / "data.npz", x=x, y=y)
    (tmp_path / "client.py").write_text(KILLED_CLIENT)
    proc = subprocess.run([sys.executable, str(tmp_path / "client.py"), str(tmp_path / "data.npz"),
                           client.scheduler.address, str(tmp_path / "shards")], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == -9, proc.stderr
    _wait_idle(client)
    done = len(_shards(tmp_path / "shards"))
    total = 25 * 26 // 2  # 25 blocks of 40 rows: 325 block pairs
    assert 3 <= done < total
    eng = DaskEngine(client, inner=CPUEngine(linf="tiled"), shard_dir=tmp_path / "shards", block_size=40)
    got = eng.cross_class(x, y, x, y, norm="linf", same_set=True)
    p = eng.passes[-1]
    assert (p.shards, p.computed, p.reused) == (total, total - done, done)
    assert same(got, CPUEngine().cross_class(x, y, x, y, norm="linf", same_set=True))
    again = eng.cross_class(x, y, x, y, norm="linf", same_set=True)
    assert eng.passes[-1].computed == 0 and same(again, got)


def test_foreign_truncated_and_corrupted_shards_are_never_used(client, tmp_path):
    rng = np.random.default_rng(4)
    xa, ya = tied(rng, 90, 6, 3)
    xb, yb = tied(rng, 90, 6, 3)
    eng = DaskEngine(client, inner="cpu", shard_dir=tmp_path / "s", block_size=30)
    want_a = eng.cross_class(xa, ya, xa, ya, norm="l2", same_set=True)
    want_b = eng.cross_class(xb, yb, xb, yb, norm="l2", same_set=True)
    jobs = sorted((tmp_path / "s" / "jobs").iterdir(), key=lambda p: p.stat().st_mtime)
    job_a, job_b = jobs
    files_b = _shards(job_b)
    for f in files_b:  # same names, other data: every shard of job b now holds job a's numbers
        f.write_bytes((job_a / f.name).read_bytes())
    assert same(eng.cross_class(xb, yb, xb, yb, norm="l2", same_set=True), want_b)
    assert eng.passes[-1].computed == len(files_b) == 6
    files_a = _shards(job_a)
    files_a[0].write_bytes(files_a[0].read_bytes()[:-5])  # truncated
    data = bytearray(files_a[1].read_bytes())
    data[len(data) // 2] ^= 1  # one flipped bit
    files_a[1].write_bytes(bytes(data))
    files_a[2].write_bytes(b"not a shard")
    assert same(eng.cross_class(xa, ya, xa, ya, norm="l2", same_set=True), want_a)
    assert eng.passes[-1].computed == 3 and eng.passes[-1].reused == 3


def test_shard_files_check_their_header_and_checksum(tmp_path):
    path = tmp_path / "one.shard"
    arrays = [np.arange(5.0), np.arange(5, dtype=np.int64)]
    write_shard(path, {"job": "j", "task": "t"}, arrays)
    assert same(read_shard(path, {"job": "j", "task": "t"}), arrays)
    assert read_shard(path, {"job": "other"}) is None
    assert read_shard(tmp_path / "missing.shard", {}) is None
    path.write_bytes(path.read_bytes()[:40])
    assert read_shard(path, {"job": "j"}) is None


def test_a_killed_worker_is_retried(client, tmp_path):
    rng = np.random.default_rng(5)
    x, y = tied(rng, 300, 8, 4, values=5)
    before = set(client.scheduler_info(n_workers=-1)["workers"])
    victim = min(before)
    eng = DaskEngine(client, inner="cpu", shard_dir=tmp_path / "s", block_size=25)
    # the victim dies (SIGKILL) at its next block task; its nanny starts a fresh worker
    client.run(lambda: os.environ.__setitem__("SEPARATION_FAULT", "kill:block-task"), workers=[victim])
    got = eng.cross_class(x, y, x, y, norm="l2", same_set=True)
    assert same(got, CPUEngine().cross_class(x, y, x, y, norm="l2", same_set=True))
    client.wait_for_workers(2, timeout=60)
    assert victim not in set(client.scheduler_info(n_workers=-1)["workers"])
    assert eng.passes[-1].computed == eng.passes[-1].shards


def test_bad_input_is_refused_with_a_clear_message(client, tmp_path):
    from separation.engines.dask_engine import parse_scheduler

    with pytest.raises(ValueError, match="local:N with N >= 1"):
        parse_scheduler("local:0")
    with pytest.raises(ValueError, match="not an address"):
        parse_scheduler("nowhere")
    t0 = time.perf_counter()
    with pytest.raises(ConnectionError, match="cannot reach a Dask scheduler at tcp://127.0.0.1:9"):
        DaskEngine("tcp://127.0.0.1:9", timeout=1)
    assert time.perf_counter() - t0 < 30
    (tmp_path / "file").write_text("x")
    with pytest.raises(PermissionError, match="2 of 2 workers cannot write shard_dir"):
        DaskEngine(client, shard_dir=tmp_path / "file" / "shards")
    for bad in (0, (3,), (2, 0), 1.5, True):
        with pytest.raises(ValueError, match="block_size"):
            DaskEngine(client, block_size=bad, shard_dir=tmp_path)
    with pytest.raises(TypeError, match="inner"):
        DaskEngine(client, inner=3, shard_dir=tmp_path)
    with pytest.raises(ValueError, match="DaskEngine"):
        compute_separation(np.zeros((4, 2), np.uint8), [0, 1, 0, 1], engine="dask")


# -- range search on the cluster ----------------------------------------------------------------------
def _radii(eng, x, y):
    """0, exactly a tied distance in the bulk, one ulp below it, and above every distance."""
    _, _, d = eng.range_search(x, y, x, y, norm="l1", radius=float(x.shape[1]), same_set=True)
    mid = float(np.unique(d)[len(np.unique(d)) // 3]) if len(d) else 0.5
    return [0.0, mid, float(np.nextafter(mid, 0)), 2.0 * x.shape[1]]


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n=st.integers(2, 45), m=st.integers(1, 20), d=st.integers(1, 6), classes=st.integers(1, 4),
       block=st.one_of(st.integers(3, 17), st.tuples(st.integers(3, 17), st.integers(3, 17))),
       floats=st.booleans(), seed=st.integers(0, 2**16))
def test_range_search_equals_the_cpu_engine_field_for_field(client, shard_root, n, m, d, classes, block, floats,
                                                            seed):
    rng = np.random.default_rng(seed)
    (x, y), (xq, yq) = tied(rng, n, d, classes, values=4), tied(rng, m, d, classes + 1, values=4)
    if floats:  # dyadic: ties everywhere, sums exact
        x, xq = x / 4.0, xq / 4.0
    eng = DaskEngine(client, inner="cpu", block_size=block, shard_dir=shard_root / "range")
    cpu = CPUEngine(blocks=SMALL)
    for norm in NORMS:
        for radius in _radii(cpu, x, y):
            want = cpu.range_search(x, y, x, y, norm=norm, radius=radius, same_set=True)
            got = eng.range_search(x, y, x, y, norm=norm, radius=radius, same_set=True)
            assert all(np.array_equal(a, b) and a.dtype == b.dtype for a, b in zip(got, want)), (norm, radius)
            want = cpu.range_search(xq, yq, x, y, norm=norm, radius=radius)
            got = eng.range_search(xq, yq, x, y, norm=norm, radius=radius)
            assert all(np.array_equal(a, b) and a.dtype == b.dtype for a, b in zip(got, want)), (norm, radius)
    assert eng.passes[-1].schedule == "range"


def test_range_search_resumes_counts_its_work_and_stops_at_max_pairs(client, tmp_path):
    from separation import conflict_pairs
    from separation.core.errors import LimitError
    from separation.engines.conflicts import Layout

    rng = np.random.default_rng(9)
    x, y = tied(rng, 70, 5, 3, values=4)
    eng = DaskEngine(client, inner=CPUEngine(linf="tiled"), block_size=12, shard_dir=tmp_path / "s")
    for norm in NORMS:
        radius = _radii(CPUEngine(), x, y)[1]
        want = CPUEngine().range_search(x, y, x, y, norm=norm, radius=radius, same_set=True)
        seen = []
        got = eng.range_search(x, y, x, y, norm=norm, radius=radius, same_set=True, progress=seen.append)
        assert same(got, want) and len(want[0]) > 1 and sum(seen) == Layout(y, y, True).work()
        p = eng.passes[-1]
        assert (p.name, p.schedule, p.shards, p.computed) == ("same-set", "range", 6 * 7 // 2, 21)
        assert same(conflict_pairs(x, y, norm=norm, radius=radius, engine=eng), want)  # the public function
        assert eng.passes[-1].computed == 0 and eng.passes[-1].reused == 21  # shards of the same job
        n = len(want[0])
        assert same(eng.range_search(x, y, x, y, norm=norm, radius=radius, same_set=True, max_pairs=n), want)
        with pytest.raises(LimitError, match=f"more than {n - 1:,} cross-class pairs"):
            eng.range_search(x, y, x, y, norm=norm, radius=radius, same_set=True, max_pairs=n - 1)
    one = DaskEngine(client, inner="cpu", block_size=100, shard_dir=tmp_path / "one")  # one task: its worker stops
    with pytest.raises(LimitError, match="more than 3 cross-class pairs lie within radius"):
        one.range_search(x, y, x, y, norm="linf", radius=1.0, same_set=True, max_pairs=3)
    assert not _shards(tmp_path / "one")
    if FaissEngine.available():  # an inner engine without a range search: refused before any task
        with pytest.raises(ValueError, match="The faiss engine has no range_search"):
            DaskEngine(client, inner="faiss", shard_dir=tmp_path / "f").range_search(x, y, x, y, norm="l2",
                                                                                     radius=0.1)


def test_robustness_bounds_on_the_cluster(client, shard_root):
    from lipschitz_construct import robustness_bounds

    x, y = tied(np.random.default_rng(10), 60, 5, 3, values=5)
    eng = DaskEngine(client, inner="cpu", block_size=16, shard_dir=shard_root / "bounds")
    got, want = (robustness_bounds(x, y, eps=[0.5 / 255, 1 / 255, 2 / 255], engine=e, progress=False)
                 for e in (eng, "cpu"))
    assert np.array_equal(got.n_conflicts, want.n_conflicts) and got.n_conflicts[-1] > 0
    assert np.array_equal(got.upper_error, want.upper_error) and got.separation == want.separation
    assert eng.passes[-1].schedule == "range"


def test_exact_ties_on_the_cluster_equal_the_cpu_and_reference_engines(client, shard_root):
    """The tasks carry the exact radius: at the ties 251/255 (l-inf), 16/255 (l1), 0.6 = 153/255 and
    sqrt(900)/255 (l2) the cluster finds the pair, as cpu and reference do, and 1e-12 below none."""
    from fractions import Fraction

    from lipschitz_construct import robustness_bounds
    from separation import conflict_pairs

    x = np.array([[0, 0, 0], [251, 0, 0], [0, 9, 7], [153, 0, 0], [18, 24, 0]], np.uint8)
    y = np.array([0, 1, 1, 1, 1])
    eng = DaskEngine(client, inner="cpu", block_size=2, shard_dir=shard_root / "exact")
    tiny = Fraction(1, 10**12)
    for norm, tie, k in (("linf", Fraction(251, 255), 251), ("l1", Fraction(16, 255), 16), ("linf", "0.6", 153),
                         ("l2", Fraction(30, 255), 900)):
        for radius, found in ((tie, True), (Fraction(tie) - tiny, False)):
            got = conflict_pairs(x, y, norm=norm, radius=radius, engine=eng)
            for other in ("cpu", "reference"):
                assert same(got, conflict_pairs(x, y, norm=norm, radius=radius, engine=other)), (norm, radius, other)
            at = np.round((got.d * 255) ** (2 if norm == "l2" else 1)).astype(int)
            assert (k in at.tolist()) == found, (norm, radius)
    got, want = (robustness_bounds(x, y, eps=[Fraction(251, 510) - tiny, "251/510"], engine=e, progress=False)
                 for e in (eng, "cpu"))
    assert got.n_conflicts.tolist() == want.n_conflicts.tolist() and got.n_conflicts[1] == got.n_conflicts[0] + 1


# -- the data store: a changed store is never used, connections are bounded --------------------------
def _alter_rows(path, rows, seed=0):
    """Foreign values in ``rows`` of the store file ``path`` in place (same size, same dtype)."""
    on_disk = np.load(path, mmap_mode="r+")
    before = np.array(on_disk[rows])
    on_disk[rows] = (before + 1 + np.random.default_rng(seed).integers(0, 3, before.shape)) % 6
    on_disk.flush()
    assert not np.array_equal(np.asarray(on_disk[rows]), before)


def test_a_store_changed_on_disk_between_runs_never_changes_an_answer(client, tmp_path):
    """50 rows of the store altered (same size and dtype) after a run: the next runs (new jobs that
    read the store) still equal the CPU engine -- the client finds the change and writes the store
    again -- and so do runs after the store is deleted, from the shards left."""
    rng = np.random.default_rng(8)
    x, y = tied(rng, 120, 6, 3, values=6)
    cpu = CPUEngine()
    eng = DaskEngine(client, inner="cpu", block_size=25, shard_dir=tmp_path / "s")
    assert same(eng.cross_class(x, y, x, y, norm="l2", same_set=True), cpu.cross_class(x, y, x, y, norm="l2",
                                                                                      same_set=True))
    (store,) = (tmp_path / "s" / "data").glob("*.x.npy")
    (labels,) = (tmp_path / "s" / "data").glob("*.y.npy")
    for k, norm in enumerate(("linf", "l1")):
        _alter_rows(store, slice(30, 80), seed=k)
        assert same(eng.cross_class(x, y, x, y, norm=norm, same_set=True),
                    cpu.cross_class(x, y, x, y, norm=norm, same_set=True)), norm
        assert eng.passes[-1].computed == eng.passes[-1].shards
        assert np.array_equal(np.load(store), x)
    _alter_rows(labels, slice(0, 50))
    want = cpu.range_search(x, y, x, y, norm="l2", radius=3 / 255, same_set=True)
    assert same(eng.range_search(x, y, x, y, norm="l2", radius=3 / 255, same_set=True), want)
    shutil.rmtree(tmp_path / "s" / "data")
    for norm in NORMS:
        assert same(eng.cross_class(x, y, x, y, norm=norm, same_set=True),
                    cpu.cross_class(x, y, x, y, norm=norm, same_set=True)), norm
        assert eng.passes[-1].computed == 0
    assert same(eng.range_search(x, y, x, y, norm="l2", radius=3 / 255, same_set=True), want)


def test_a_store_changed_while_workers_read_it_fails_the_run_with_a_clear_error(client, tmp_path, monkeypatch):
    from separation.engines import dask_engine
    from separation.engines.shards import StoreError

    real = dask_engine.write_store

    def write_then_alter(folder, x, y, **kw):  # the client's write, then a change on disk before any task reads
        ref = real(folder, x, y, **kw)
        _alter_rows(ref.x_path, slice(7, 9))
        return ref

    monkeypatch.setattr(dask_engine, "write_store", write_then_alter)
    x, y = tied(np.random.default_rng(14), 60, 4, 3, values=6)
    # one folder per call: a cancelled task of the first call still running (Dask cannot stop its
    # thread) must not meet the second call's rewrite of the store, which is briefly the true data
    for k, call in enumerate((lambda eng: eng.cross_class(x, y, x, y, norm="l2", same_set=True),
                              lambda eng: eng.range_search(x, y, x, y, norm="linf", radius=0.1, same_set=True))):
        eng = DaskEngine(client, inner="cpu", block_size=20, shard_dir=tmp_path / f"s{k}")
        with pytest.raises(StoreError, match=rf"^the data store file .*/s{k}/data/[0-9a-f]{{40}}\.x\.npy does not hold "
                                             r"the data it was written with \(rows 0\.\.59 changed on disk\); delete it"):
            call(eng)
        _wait_idle(client)  # every task of the failed run has ended (retries included)
        assert not _shards(tmp_path / f"s{k}")  # nothing computed from the changed rows


@pytest.mark.parametrize("reply, what", [(b"", "TimeoutError: nothing answered as a Dask scheduler there"),
                                         (b"SSH-2.0-OpenSSH_9.6\r\n" * 4,
                                          "MemoryError: what answered is not a Dask scheduler")])
def test_a_server_that_is_not_a_scheduler_is_a_cluster_error_within_the_timeout(reply, what):
    """A socket that accepts and stays silent (or answers something else) at the scheduler address:
    a ClusterError after about the timeout, not a wait without end in Dask's handshake."""
    import re
    import socket
    import threading

    from separation.core.errors import ClusterError

    server = socket.create_server(("127.0.0.1", 0))
    accepted = []

    def serve():
        while True:
            try:
                conn, _ = server.accept()
            except OSError:  # closed: the test is over
                return
            accepted.append(conn)
            conn.sendall(reply)

    threading.Thread(target=serve, daemon=True).start()
    address = f"tcp://127.0.0.1:{server.getsockname()[1]}"
    t0 = time.perf_counter()
    try:
        with pytest.raises(ClusterError, match="^" + re.escape(f"cannot reach a Dask scheduler at {address} within "
                                                               f"2 s ({what}); check the address")):
            DaskEngine(address, timeout=2)
        assert time.perf_counter() - t0 < 10 and accepted
    finally:
        server.close()
        for conn in accepted:
            conn.close()


# -- the command line -------------------------------------------------------------------------------
def _cpu_and_cluster_records(main, common, client, tmp_path):
    """Run ``main`` with the cpu engine and on the cluster: the two records, in one folder each
    (the same folder name: the engine is not in the key), and their arrays equal."""
    from helpers.records import only_record

    from separation.core.records import load_record

    assert main(common + ["--engine", "cpu", "--out", str(tmp_path / "cpu")]) == 0
    assert main(common + ["--scheduler", client.scheduler.address, "--shard-dir", str(tmp_path / "sh"),
                          "--out", str(tmp_path / "dask")]) == 0
    a, b = only_record(tmp_path / "cpu"), only_record(tmp_path / "dask")
    assert a.relative_to(tmp_path / "cpu") == b.relative_to(tmp_path / "dask")
    ra, rb = load_record(a), load_record(b)
    arrays = ra.load_arrays()
    assert arrays and all(np.array_equal(v, rb.load_arrays()[k]) for k, v in arrays.items())
    return ra, rb


def test_the_command_line_on_a_cluster_writes_the_cpu_record_plus_workers_and_shards(client, tmp_path):
    from separation.compute import main

    ra, rb = _cpu_and_cluster_records(main, ["--dataset", "digits", "--norm", "l2", "--no-progress"], client,
                                      tmp_path)
    run = rb.result.cluster
    assert ra.result.cluster is None and run.workers == 2 and run.inner == "cpu"
    assert run.shards == run.computed > 0 and [p.name for p in run.passes] == ["same-set", "cross-set"]
    assert rb.result.engine == "dask" and rb.result.train == ra.result.train and rb.result.test == ra.result.test


def test_the_bounds_command_on_a_cluster_writes_the_cpu_record(client, tmp_path, capsys):
    """``lipschitz_construct.bounds --scheduler``: the conflicts come from range tasks on the cluster
    (shards left behind), and the record equals the cpu engine's field for field, except the engine."""
    import dataclasses

    from lipschitz_construct.bounds import main

    common = ["--dataset", "digits", "--norm", "l2", "--eps", "0.6", "0.75", "--randomized", "--no-progress"]
    ra, rb = _cpu_and_cluster_records(main, common, client, tmp_path)
    assert (ra.result.engine, rb.result.engine) == ("cpu", "dask") and _shards(tmp_path / "sh")

    def untimed(result):  # every field but the engine and the per-radius seconds
        return dataclasses.replace(result, engine="", points=[dataclasses.replace(p, seconds={}) for p in result.points])

    assert untimed(rb.result) == untimed(ra.result) and rb.config == ra.config
    assert rb.result.points[-1].n_conflicts > 0
    capsys.readouterr()
    assert main(common + ["--engine", "dask", "--out", str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "--engine dask needs --scheduler" in err[0]
    assert not (tmp_path / "bad").exists()


@pytest.mark.slow
def test_the_command_line_starts_a_local_cluster(tmp_path):
    from separation.compute import main

    assert main(["--dataset", "digits", "--subset", "300", "--scheduler", "local:2", "--block-size", "64",
                 "--shard-dir", str(tmp_path / "sh"), "--out", str(tmp_path / "out"), "--no-progress"]) == 0
    assert len(_shards(tmp_path / "sh")) == 25 + 25  # 5 x 5 blocks of 60 rows in each pass


def test_the_command_line_refuses_bad_cluster_options_before_any_work(client, tmp_path, capsys, monkeypatch):
    from separation.compute import main
    from separation.engines import dask_engine

    out = tmp_path / "out"
    common = ["--dataset", "digits", "--out", str(out), "--no-progress"]
    with pytest.raises(SystemExit) as exc:
        main(common + ["--scheduler", "local:0"])
    assert exc.value.code == 2 and "local:N with N >= 1" in capsys.readouterr().err
    monkeypatch.setattr(dask_engine, "CONNECT_TIMEOUT", 1.0)
    (tmp_path / "file").write_text("x")
    for extra, message in ((["--scheduler", "tcp://127.0.0.1:9"], "cannot reach a Dask scheduler"),
                           (["--scheduler", client.scheduler.address, "--shard-dir", str(tmp_path / "file" / "s")],
                            "--shard-dir"),
                           (["--engine", "dask"], "--engine dask needs --scheduler"),
                           (["--engine", "cpu", "--scheduler", "local:1"], "drop --engine cpu")):
        assert main(common + extra) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], err
    assert not out.exists()


@pytest.mark.gpu
def test_the_cuda_block_kernel_equals_the_reference():
    from separation.engines import CUDAEngine

    rng = np.random.default_rng(7)
    (xa, ya), (xb, yb) = tied(rng, 300, 40, 4, values=6), tied(rng, 170, 40, 4, values=6)
    for norm in NORMS:
        got = CUDAEngine().block_pair(xa, ya, xb, yb, norm=norm)
        ref = ReferenceEngine()
        assert same(got, (*ref.cross_class(xa, ya, xb, yb, norm=norm), *ref.cross_class(xb, yb, xa, ya, norm=norm)))


@pytest.mark.parametrize("norm", NORMS)
def test_separation_on_a_decoded_store_equals_the_in_memory_result_everywhere(client, shard_root, tmp_path, norm):
    """An image folder decoded into its store (memory-mapped, read-only): train--train,
    test--train and test--test on every available engine and on the 2-worker cluster (small
    blocks, its workers reading the decoded store in place) equal the in-memory result of an
    independent Pillow decode, array by array."""
    from PIL import Image

    from separation import load_dataset
    from separation.core.decoded_store import StoreOptions

    rng = np.random.default_rng(21)
    truth = {"train": [], "val": []}
    for split, n in (("train", 5), ("val", 3)):
        for c in ("a", "b", "c"):
            for i in range(n):
                path = tmp_path / "imgs" / split / c / f"{i}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(rng.integers(0, 4, (6, 5, 3), dtype=np.uint8) * 60).save(path)
                with Image.open(path) as im:
                    truth[split].append(np.asarray(im.convert("RGB")).transpose(2, 0, 1))
    ds = load_dataset("imagefolder", root=tmp_path / "imgs", store=StoreOptions(root=tmp_path / "stores", chunk=4))
    assert isinstance(ds.x_train, np.memmap)
    x_train, x_test = np.stack(truth["train"]), np.stack(truth["val"])
    want = compute_separation(x_train, ds.y_train, x_test, ds.y_test, norm=norm, engine="reference",
                              test_test=True).arrays()
    engines = [CPUEngine(), CPUEngine(blocks=SMALL), ReferenceEngine()] + ([FaissEngine()] if FaissEngine.available() else [])
    engines.append(DaskEngine(client, inner="cpu", block_size=4, shard_dir=shard_root / f"decoded-{norm}"))
    for eng in engines:
        got = compute_separation(ds.x_train, ds.y_train, ds.x_test, ds.y_test, norm=norm, engine=eng,
                                 test_test=True).arrays()
        assert got.keys() == want.keys()
        assert all(np.array_equal(got[k], want[k]) for k in want), eng
    data = shard_root / f"decoded-{norm}" / "data"  # the workers read the decoded store in place: no copy
    assert not list(data.glob("*.x.npy")) and len(list(data.glob("*.y.npy"))) == 2
