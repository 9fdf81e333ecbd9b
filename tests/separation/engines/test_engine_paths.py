"""Paths that random small inputs rarely reach, each on data built to reach it.

- l2 near-ties that float32 cannot resolve: the exact recheck must decide them;
- the l-inf probe kernel with its default block size on real data with more than one support
  block per class;
- duplicates: which indices are reported, not only how many;
- block pairs (the units of work of a cluster run), both ways at once.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from separation import compute_separation, nearest_neighbors
from separation.engines import CPUEngine, CUDAEngine, FaissEngine, ReferenceEngine, available_engines
from separation.engines.blocks import CPUBlocks

from helpers.engine_variants import SMALL, VARIANT_NAMES, near_tie_l2, tied, variants


def exact_sq(q, db):
    return ((q[:, None, :].astype(np.int64) - db[None].astype(np.int64)) ** 2).sum(2)


def test_near_ties_beyond_float32_are_decided_exactly():
    q, db = near_tie_l2(60)
    ex = exact_sq(q, db)
    want = ex.argmin(axis=1)
    # the premise: float32 arithmetic alone gets some of these wrong
    import torch

    Q, D = torch.from_numpy(q).float(), torch.from_numpy(db).float()
    f32 = ((Q ** 2).sum(1)[:, None] + (D ** 2).sum(1)[None, :] - 2 * Q @ D.T).numpy()
    assert (f32.argmin(axis=1) != want).any(), "float32 resolves every pair: the test proves nothing"
    engines = [CPUEngine(), CPUEngine(blocks=CPUBlocks(gemm_rows=7)),
               CUDAEngine(device="cpu", use_triton=False)]
    if "faiss" in available_engines():
        engines.append(FaissEngine(k=2, use_gpu=False))
    for eng in engines:
        d, i = nearest_neighbors(q, db, norm="l2", engine=eng)
        np.testing.assert_array_equal(i, want, err_msg=repr(eng))
        np.testing.assert_array_equal(d, np.sqrt(ex.min(axis=1)) / 255.0)


@pytest.mark.parametrize("rows", [None, 5, 16])
def test_near_ties_in_train_train_and_test_train(rows):
    """The same near-ties through compute_separation: class-pair blocks (rows and columns of the
    train--train GEMM) and the test--train pass."""
    q, db = near_tie_l2(16, d=2048, seed=1)
    x = np.concatenate([q, db])
    y = np.concatenate([np.zeros(len(q), int), 1 + np.arange(len(db)) % 3])
    eng = CPUEngine(blocks=CPUBlocks(gemm_rows=rows))
    res = compute_separation(x, y, q, np.full(len(q), 2), norm="l2", engine=eng)
    ref = compute_separation(x, y, q, np.full(len(q), 2), norm="l2", engine="reference")
    np.testing.assert_array_equal(res.train_neighbors, ref.train_neighbors)
    np.testing.assert_array_equal(res.train_distances, ref.train_distances)
    np.testing.assert_array_equal(res.test_neighbors, ref.test_neighbors)


@pytest.mark.parametrize("rows", [None, 5])
def test_near_ties_on_the_column_side_of_train_train_blocks(rows):
    """The mirror image: the near-tie pairs in the earlier class (rows of the class-pair GEMM), their
    queries in the later one (columns). Each pair point also gets a decoy of the later class one
    grey level away, and the queries are farther than twice the rows' rounding bound: no row's own
    candidates include its query, only the columns' bound sends the pair to the exact recheck."""
    q, db = near_tie_l2(24, d=2048, seed=0, spread=12)
    ex = exact_sq(q, db)
    import torch

    Q, D = torch.from_numpy(q).float(), torch.from_numpy(db).float()
    f32 = ((Q ** 2).sum(1)[:, None] + (D ** 2).sum(1)[None, :] - 2 * Q @ D.T).numpy()
    assert (f32.argmin(axis=1) != ex.argmin(axis=1)).any(), "float32 resolves every pair: the test proves nothing"
    decoys = db.copy()
    decoys[:, 0] = np.where(decoys[:, 0] < 255, decoys[:, 0] + 1, decoys[:, 0] - 1)
    x = np.concatenate([db, q, decoys])
    y = np.concatenate([np.zeros(len(db), int), np.ones(len(q) + len(decoys), int)])
    eng = CPUEngine(blocks=CPUBlocks(gemm_rows=rows))
    res = compute_separation(x, y, q, np.zeros(len(q), int), norm="l2", engine=eng)
    ref = compute_separation(x, y, q, np.zeros(len(q), int), norm="l2", engine="reference")
    np.testing.assert_array_equal(res.train_neighbors, ref.train_neighbors)
    np.testing.assert_array_equal(res.train_distances, ref.train_distances)


def reference_both_ways(xa, ya, xb, yb, norm):
    ref = ReferenceEngine()
    return (*ref.cross_class(xa, ya, xb, yb, norm=norm), *ref.cross_class(xb, yb, xa, ya, norm=norm))


def assert_same_arrays(got, want, msg):
    assert len(got) == len(want), msg
    for a, b in zip(got, want):
        assert a.dtype == b.dtype, msg
        np.testing.assert_array_equal(a, b, err_msg=msg)


@settings(max_examples=40, deadline=None)
@given(na=st.integers(1, 30), nb=st.integers(1, 30), d=st.integers(1, 6), classes=st.integers(1, 4),
       dyadic=st.booleans(), variant=st.sampled_from(VARIANT_NAMES), seed=st.integers(0, 2**16))
def test_block_pairs_equal_the_reference_both_ways(na, nb, d, classes, dyadic, variant, seed):
    """Every engine's block pair (small blocks, ties, cross-class duplicates, bytes and floats)
    equals two reference cross-class searches: ``a`` against ``b`` and ``b`` against ``a``."""
    rng = np.random.default_rng(seed)
    (xa, ya), (xb, yb) = tied(rng, na, d, classes), tied(rng, nb, d, classes)
    if dyadic:
        xa, xb = xa / 4.0, xb / 4.0
    eng = variants()[variant]
    for norm in ("linf", "l2", "l1"):
        assert_same_arrays(eng.block_pair(xa, ya, xb, yb, norm=norm), reference_both_ways(xa, ya, xb, yb, norm),
                           f"{variant} {norm}")


@pytest.mark.parametrize("variant", VARIANT_NAMES)
def test_block_pairs_of_every_variant_on_fixed_data(variant):
    """The same, for every variant on one fixed draw (the property test samples variants): two
    blocks of 3 classes with ties, bytes and dyadic floats, every norm."""
    rng = np.random.default_rng(14)
    (xa, ya), (xb, yb) = tied(rng, 23, 5, 3, values=4), tied(rng, 17, 5, 3, values=4)
    eng = variants()[variant]
    for xa_, xb_ in ((xa, xb), (xa / 4.0, xb / 4.0)):
        for norm in ("linf", "l2", "l1"):
            assert_same_arrays(eng.block_pair(xa_, ya, xb_, yb, norm=norm),
                               reference_both_ways(xa_, ya, xb_, yb, norm), f"{variant} {norm}")


@pytest.mark.parametrize("variant", VARIANT_NAMES)
def test_blank_images_in_block_pairs_are_at_distance_zero(variant):
    """All-zero points of both labels (blank images): every squared norm is 0, so the GEMM bound and
    threshold are 0 too, and the pairs at distance 0 must still reach the exact recheck."""
    xa, xb = np.zeros((4, 6), np.uint8), np.zeros((3, 6), np.uint8)
    ya, yb = np.array([0, 1, 0, 1]), np.array([1, 0, 1])
    eng = variants()[variant]
    for norm in ("linf", "l2", "l1"):
        got = eng.block_pair(xa, ya, xb, yb, norm=norm)
        assert_same_arrays(got, reference_both_ways(xa, ya, xb, yb, norm), f"{variant} {norm}")
        assert not np.any(got[0]) and not np.any(got[2])


@pytest.mark.parametrize("rows", [None, 5])
def test_near_ties_in_block_pairs(rows):
    """l2 near-ties beyond float32 in a block pair, with the pairs in either block: one side's
    answers come from the rows of the GEMM, the other side's from its columns."""
    q, db = near_tie_l2(12, d=2048, seed=3)
    yq, ydb = np.zeros(len(q), int), 1 + np.arange(len(db)) % 2
    engines = [CPUEngine(blocks=CPUBlocks(gemm_rows=rows)), CUDAEngine(device="cpu", use_triton=False)]
    for eng in engines:
        for xa, ya, xb, yb in ((q, yq, db, ydb), (db, ydb, q, yq)):
            assert_same_arrays(eng.block_pair(xa, ya, xb, yb, norm="l2"),
                               reference_both_ways(xa, ya, xb, yb, "l2"), repr(eng))


@pytest.mark.parametrize("l2, block_fn", [("pooled", "pooled_block"), ("int8", "_int_block"), ("float32", "_block")])
def test_gemm_block_rows_set_the_blocks(monkeypatch, l2, block_fn):
    """``gemm_rows`` reaches every GEMM entry point of every l2 path: with 5 rows, 12 queries and
    11 database points (or 12 points of one class and 11 of another) run as 3 x 3 blocks of at
    most 5 rows (so the multi-block tests above do run blocks)."""
    from separation.engines import gemm

    shapes = []
    block = getattr(gemm, block_fn)

    def spy(Qt, Dt, *args, **kwargs):
        shapes.append((len(Qt), len(Dt)))
        return block(Qt, Dt, *args, **kwargs)

    monkeypatch.setattr(gemm, block_fn, spy)
    rng = np.random.default_rng(4)
    q, db = rng.integers(0, 256, (12, 6)).astype(np.uint8), rng.integers(0, 256, (11, 6)).astype(np.uint8)
    blocks = sorted((a, b) for a in (5, 5, 2) for b in (5, 5, 1))
    eng = CPUEngine(l2=l2, blocks=CPUBlocks(gemm_rows=5))
    calls = {"nearest": lambda: eng.nearest(q, db, norm="l2"),
             "cross_class": lambda: eng.cross_class(q, np.zeros(12, int), db, np.ones(11, int), norm="l2"),
             "train-train": lambda: eng.cross_class(np.concatenate([q, db]), np.repeat([0, 1], [12, 11]),
                                                    np.concatenate([q, db]), np.repeat([0, 1], [12, 11]),
                                                    norm="l2", same_set=True),
             "block_pair": lambda: eng.block_pair(q, np.zeros(12, int), db, np.ones(11, int), norm="l2")}
    for name, call in calls.items():
        shapes.clear()
        call()
        assert sorted(shapes) == blocks, name
    shapes.clear()
    CPUEngine(l2=l2).nearest(q, db, norm="l2")
    assert shapes == [(12, 11)]


def bound_cases():
    """(name, queries, database) for the float32 rounding bound: near-ties at large norms, random
    bytes from 1 to 3072 features, saturated bytes and floats just below 1 (tiny distances between
    large norms: the worst cancellation)."""
    rng = np.random.default_rng(11)
    q, db = near_tie_l2(10, d=2048, seed=5)
    yield "near-ties", q, db
    for d in (1, 3, 64, 784, 3072):
        yield f"bytes-d{d}", rng.integers(0, 256, (20, d), dtype=np.uint8), rng.integers(0, 256, (30, d), dtype=np.uint8)
        yield f"saturated-d{d}", np.full((20, d), 255, np.uint8), (255 - rng.integers(0, 2, (30, d))).astype(np.uint8)
        yield f"floats-d{d}", (1 - 1e-3 * rng.random((20, d))).astype(np.float32), \
            (1 - 1e-3 * rng.random((30, d))).astype(np.float32)


@pytest.mark.parametrize("name, q, db", [pytest.param(*case, id=case[0]) for case in bound_cases()])
def test_gemm_rounding_bound_holds_for_rows_and_columns(name, q, db):
    """The float32 GEMM's error on every pair is within the tolerance of its row and of its column:
    the premise of the exact recheck. (Measured errors stay below 0.15 of the bound on these data.)"""
    import torch
    from separation.engines import gemm

    Qt, Dt = torch.from_numpy(q), torch.from_numpy(db)
    qn, dn = gemm._norms(Qt), gemm._norms(Dt)
    approx = gemm._approx_sq(Qt.float(), Dt.float(), qn, dn).double().numpy()
    err = np.abs(approx - ((q[:, None, :].astype(np.float64) - db[None].astype(np.float64)) ** 2).sum(2))
    row_tol, col_tol = gemm._tolerance(qn, dn, q.shape[1]).numpy(), gemm._tolerance(dn, qn, q.shape[1]).numpy()
    assert (err <= row_tol[:, None]).all() and (err <= col_tol[None, :]).all()
    assert (err / row_tol[:, None]).max() < 0.15 and (err / col_tol[None, :]).max() < 0.15


def test_gemm_limit_keeps_every_possible_nearest_and_little_more():
    """The float32 threshold is at least ``min(min d2 + 2 tol, best + tol)`` -- no pair that can be
    the nearest is dropped -- and at most 16 float32 units of round-off above it."""
    import torch
    from separation.engines import gemm

    rng = np.random.default_rng(12)
    d2_min = torch.from_numpy(rng.random(2000).astype(np.float32) * 10.0 ** rng.integers(-3, 9, 2000))
    tol = torch.from_numpy(rng.random(2000) * 10.0 ** rng.integers(-6, 4, 2000))
    best = torch.from_numpy(np.where(rng.random(2000) < 0.3, np.inf, d2_min.double().numpy() * rng.uniform(0.5, 2, 2000)))
    lim = gemm._limit(d2_min, best, tol).double()
    want = torch.minimum(d2_min.double() + 2 * tol, best + tol)
    assert (lim >= want).all()
    assert (lim <= want * (1 + 16 * gemm.U32)).all()


@pytest.mark.parametrize("dtype", ["uint8", "float32"])
def test_gemm_rechecks_few_pairs_exactly(monkeypatch, dtype):
    """Pruning works: on random data (no near-ties) about one pair per query is recomputed exactly
    in one block, and with 43 database blocks only the blocks that improve the best so far (about
    ln 43 + 1 ~ 4.3 per query) -- not every block's row minimum."""
    from separation.engines import gemm

    exact = gemm._exact_sq
    pairs = []
    monkeypatch.setattr(gemm, "_exact_sq", lambda Q, D, rows, cols: pairs.append(len(rows)) or exact(Q, D, rows, cols))
    rng = np.random.default_rng(13)
    for d in (3, 64, 784):
        if dtype == "uint8":
            q, db = rng.integers(0, 256, (100, d), dtype=np.uint8), rng.integers(0, 256, (300, d), dtype=np.uint8)
        else:
            q, db = rng.random((100, d), dtype=np.float32), rng.random((300, d), dtype=np.float32)
        pairs.clear()
        gemm.gemm_nearest(q, db, integer=False)
        assert 100 <= sum(pairs) <= 110, (d, sum(pairs))
        pairs.clear()
        gemm.gemm_nearest(q, db, block_rows=7, integer=False)
        assert 100 <= sum(pairs) <= 700, (d, sum(pairs))


def test_top2_search_prunes_more_than_all_class_minima():
    """The probe search's top-2 mode needs only the two smallest class minima exactly: on six
    well-separated clusters it computes fewer exact distances per query than ``all``."""
    from separation.engines.probe import ProbeSearch

    rng = np.random.default_rng(0)
    centers = rng.integers(0, 256, (6, 8))
    x = np.clip(centers.repeat(40, 0) + rng.integers(-3, 4, (240, 8)), 0, 255).astype(np.uint8)
    search = ProbeSearch(x, np.repeat(np.arange(6), 40), 6)
    search.all(x[::7])
    every = search.last_stats["exact_rows_per_query"]
    search.top2(x[::7])
    assert search.last_stats["exact_rows_per_query"] < every


@pytest.mark.parametrize("variant", VARIANT_NAMES)
def test_progress_counts_every_differently_labelled_pair_once(variant):
    """The progress a cross-class search reports adds up to its number of (query, database point)
    pairs of different labels, counted by hand: train--train (each pair once per direction) and
    test--train, for every norm."""
    rng = np.random.default_rng(5)
    x, y = tied(rng, 23, 4, 3, values=6)
    xq, yq = tied(rng, 9, 4, 4, values=6)
    eng = variants()[variant]
    for norm in ("linf", "l2", "l1"):
        for (q, lq), same_set in (((x, y), True), ((xq, yq), False)):
            done = []
            eng.cross_class(q, lq, x, y, norm=norm, same_set=same_set, progress=done.append)
            assert all(isinstance(k, int) and k >= 0 for k in done), (norm, done)
            assert sum(done) == sum(int(u != v) for u in lq for v in y), (variant, norm, same_set, done)


def test_the_cpu_engine_runs_the_probe_kernel_for_linf_only(monkeypatch):
    """``linf="probe"`` (the default) answers l-inf searches with the probe index built with the
    engine's block sizes; ``linf="tiled"``, l2 and l1 never build one."""
    from separation.engines import base, probe

    built = []
    init = probe.ProbeSearch.__init__

    def spy(self, *args, **kwargs):
        built.append(kwargs.get("blocks"))
        init(self, *args, **kwargs)

    monkeypatch.setattr(probe.ProbeSearch, "__init__", spy)
    rng = np.random.default_rng(6)
    x, y = tied(rng, 20, 5, 3, values=5)
    for eng, norm, probes in ((CPUEngine(blocks=SMALL), "linf", True), (CPUEngine(linf="tiled", blocks=SMALL), "linf", False),
                              (CPUEngine(blocks=SMALL), "l2", False), (CPUEngine(blocks=SMALL), "l1", False)):
        built.clear()
        eng.nearest(x[:7], x[7:], norm=norm)
        assert built == ([SMALL] if probes else []), (eng, norm)
        search = eng.class_search(x, y, 3, norm=norm)
        assert isinstance(search, probe.ProbeSearch if probes else base.PerClassSearch), (eng, norm)
        assert built == ([SMALL, SMALL] if probes else []), (eng, norm)


def test_cpu_block_pairs_take_the_symmetric_kernel_where_it_visits_pairs_once(monkeypatch):
    """l1 and tiled l-inf block pairs run one kernel that updates both blocks; the probe search
    (per-query pruning) runs the two one-way cross-class searches of the default instead."""
    calls = []
    cross = CPUEngine.cross_class
    monkeypatch.setattr(CPUEngine, "cross_class", lambda self, *a, **k: calls.append(1) or cross(self, *a, **k))
    rng = np.random.default_rng(8)
    x, y = tied(rng, 24, 4, 3, values=5)
    for eng, norm, two_way in ((CPUEngine(blocks=SMALL), "linf", True), (CPUEngine(linf="tiled", blocks=SMALL), "linf", False),
                               (CPUEngine(blocks=SMALL), "l1", False)):
        calls.clear()
        eng.block_pair(x[:11], y[:11], x[11:], y[11:], norm=norm)
        assert len(calls) == (2 if two_way else 0), (eng, norm)


def test_merge_topk_pads_missing_candidates_and_breaks_ties_by_index():
    from separation.engines.knn import merge_topk

    d = np.array([[2.0, 1.0, 2.0], [np.inf, 3.0, 3.0]])
    i = np.array([[7, 9, 4], [-1, 5, 2]])
    out_d, out_i = merge_topk(d, i, 5)
    np.testing.assert_array_equal(out_d, [[1, 2, 2, np.inf, np.inf], [3, 3, np.inf, np.inf, np.inf]])
    np.testing.assert_array_equal(out_i, [[9, 4, 7, -1, -1], [2, 5, -1, -1, -1]])
    assert out_i.dtype == np.int64


@pytest.mark.parametrize("engine", [ReferenceEngine(), CPUEngine()], ids=["reference", "cpu"])
def test_k_nearest_other_class_when_every_query_has_the_first_label(engine):
    """A database class with no query of another label is skipped, and the later classes are
    still searched."""
    rng = np.random.default_rng(9)
    q, db = rng.integers(0, 256, (5, 4), dtype=np.uint8), rng.integers(0, 256, (9, 4), dtype=np.uint8)
    ydb = np.arange(9) % 3
    d, i = engine.cross_class_k(q, np.zeros(5, int), db, ydb, norm="l1", k=3)
    ex = np.abs(q[:, None].astype(np.int64) - db[None].astype(np.int64)).sum(2)
    ex[:, ydb == 0] = np.iinfo(np.int64).max
    want = np.lexsort((np.broadcast_to(np.arange(9), ex.shape), ex), axis=1)[:, :3]
    np.testing.assert_array_equal(i, want)
    np.testing.assert_array_equal(d, np.take_along_axis(ex, want, axis=1))


def test_the_byte_k_nearest_search_uses_the_compiled_kernel(monkeypatch):
    """Bytes go through the integer k-NN kernel by default (the float64 brute force is the
    reference's path); the answer is the reference's."""
    import separation.engines.knn as knn

    calls = []
    kernel = knn._knn_kernels.knn_bytes
    monkeypatch.setattr(knn._knn_kernels, "knn_bytes", lambda *a: calls.append(1) or kernel(*a))
    rng = np.random.default_rng(10)
    x, y = tied(rng, 20, 4, 3, values=5)
    got = CPUEngine().cross_class_k(x[:8], y[:8], x[8:], y[8:], norm="l1", k=2)
    assert calls
    assert_same_arrays(got, ReferenceEngine().cross_class_k(x[:8], y[:8], x[8:], y[8:], norm="l1", k=2), "k-NN")


@pytest.mark.parametrize("cuda, faiss, gpus, want", [(True, True, 1, "cuda"), (True, False, 0, "cuda"),
                                                     (False, True, 1, "faiss"), (False, True, 0, "cpu"),
                                                     (False, False, 1, "cpu")])
def test_auto_picks_cuda_then_faiss_on_a_gpu_then_cpu(monkeypatch, cuda, faiss, gpus, want):
    import separation.engines as engines

    monkeypatch.setattr(engines.registry, "cuda_available", lambda: cuda)
    monkeypatch.setattr(engines.FaissEngine, "available", staticmethod(lambda: faiss))
    monkeypatch.setattr(engines.registry, "num_gpus", lambda: gpus)
    assert engines.auto_engine_name() == want


def test_cpu_conflict_pairs_take_the_gemm_for_l2_only(monkeypatch):
    """The CPU range search answers l2 with the host GEMM (and its exact recheck), l-inf and l1
    with the numba kernel; both give the pairs of the reference."""
    from separation.engines import conflicts

    calls = []
    gemm_pairs = conflicts.gemm_pairs
    monkeypatch.setattr(conflicts, "gemm_pairs", lambda *a, **k: calls.append(1) or gemm_pairs(*a, **k))
    rng = np.random.default_rng(15)
    x, y = tied(rng, 30, 4, 3, values=5)
    for norm, radius in (("l2", 2.5 / 255), ("linf", 1.5 / 255), ("l1", 3.5 / 255)):
        calls.clear()
        got = conflicts.cpu_pairs(x, y, x, y, same_set=True, norm=norm, radius=radius)
        want = conflicts.reference_pairs(x, y, x, y, same_set=True, norm=norm, radius=radius)
        assert len(calls) == (norm == "l2"), norm
        assert len(got[0]) > 0
        assert_same_arrays(got, want, norm)


def test_conflict_pairs_defaults_are_linf_auto_and_no_progress(capsys):
    from separation import conflict_pairs

    rng = np.random.default_rng(16)
    x, y = tied(rng, 25, 4, 3, values=5)
    got = conflict_pairs(x, y, radius=1.5 / 255)
    want = conflict_pairs(x, y, norm="linf", radius=1.5 / 255, engine="reference")
    assert len(got.i) > 0
    np.testing.assert_array_equal(got.i, want.i)
    np.testing.assert_array_equal(got.j, want.j)
    np.testing.assert_array_equal(got.d, want.d)
    assert capsys.readouterr().err == ""


def test_get_engine_errors_say_how_to_fix_the_call(monkeypatch):
    import re

    import separation.engines as engines

    assert type(engines.get_engine()) is type(engines.get_engine("auto"))  # the default is "auto"
    with pytest.raises(ValueError, match="^" + re.escape("The dask engine needs a cluster: pass "
                                                          "engine=DaskEngine(client_or_address) (or --engine dask "
                                                          "--scheduler ADDRESS|local:N on the command line).") + "$"):
        engines.get_engine("dask")
    with pytest.raises(ValueError, match="^Unknown engine 'gpu'. Use 'auto' or one of " + ", ".join(engines.ENGINES) + r"\.$"):
        engines.get_engine("gpu")
    monkeypatch.setattr(engines.FaissEngine, "available", staticmethod(lambda: False))
    with pytest.raises(ValueError, match=re.escape("Engine 'faiss' is not available here: it needs faiss: pip install "
                                                   "'separation-toolkit[faiss]' (in a clone: pip install -e '.[faiss]'), "
                                                   "or faiss-gpu: the 'gpu' extra. Use engine='auto'.")):
        engines.get_engine("faiss")
    monkeypatch.setattr(engines.CUDAEngine, "available", staticmethod(lambda: False))
    with pytest.raises(ValueError, match=re.escape("Engine 'cuda' is not available here: it needs a CUDA GPU "
                                                   "visible to torch (and torch: pip install 'separation-toolkit[torch]' "
                                                   "(in a clone: pip install -e '.[torch]')). Use engine='auto'.")):
        engines.get_engine("cuda")
    monkeypatch.setattr(engines.CPUEngine, "available", classmethod(lambda cls: False))
    with pytest.raises(ValueError, match=re.escape("Engine 'cpu' is not available here: install numba (a "
                                                   "dependency of this package: reinstall it). Use engine='auto'.")):
        engines.get_engine("cpu")


def test_faiss_reports_its_gpus(monkeypatch):
    """``num_gpus`` is what faiss says; 0 where faiss cannot tell (or is missing)."""
    from types import SimpleNamespace

    from separation.engines import faiss_engine

    monkeypatch.setattr(faiss_engine, "_faiss", lambda: SimpleNamespace(get_num_gpus=lambda: 2))
    assert faiss_engine.num_gpus() == 2
    monkeypatch.setattr(faiss_engine, "_faiss", lambda: SimpleNamespace())
    assert faiss_engine.num_gpus() == 0


@pytest.mark.skipif("faiss" not in available_engines(), reason="faiss is not installed")
@pytest.mark.parametrize("norm", ["l2", "l1", "linf"])
def test_faiss_answers_stay_exact_whatever_float32_rounding_faiss_makes(monkeypatch, norm):
    """A FAISS that errs as far as float32 rounding allows -- every distance raised by the classic
    bound ((d+2) u (|q| + |x|)^2 for squared l2 through the dot product, (d+1) u (sum|q| + sum|x|)
    for l1, 2 u (max|q| + max|x|) for l-inf of floats converted to float32) and a tie broken towards
    the larger index -- must not be certified: the engine falls back to the exact search and returns
    index 0 of the tie (l2, l1: stored bytes, so the errors are large; l-inf of bytes is exact in
    float32, so l-inf takes floats)."""
    from separation.engines import faiss_engine
    from separation.engines.reference import pairwise_float64

    u = float(np.finfo(np.float32).eps) / 2

    class RoundedFaiss:
        def add(self, x):
            self.x = x.astype(np.float64)

        def search(self, q, k):
            q = q.astype(np.float64)
            exact = pairwise_float64(q, self.x, norm) ** (2 if norm == "l2" else 1)
            d = q.shape[1]
            if norm == "l2":
                err = (d + 2) * u * (np.linalg.norm(q, axis=1) + np.linalg.norm(self.x, axis=1).max()) ** 2
            elif norm == "l1":
                err = (d + 1) * u * (q.sum(axis=1) + self.x.sum(axis=1).max())
            else:
                err = 2 * u * (q.max(axis=1) + self.x.max())
            order = np.lexsort((-np.arange(len(self.x))[None, :].repeat(len(q), 0), exact), axis=1)[:, :k]
            return (np.take_along_axis(exact, order, axis=1) + err[:, None]).astype(np.float32), order

    monkeypatch.setattr(faiss_engine.FaissEngine, "_index", lambda self, d, norm: RoundedFaiss())
    if norm == "linf":
        q = np.full((1, 4), 0.5)
        db = np.array([[0.75, 0.5, 0.5, 0.5], [0.25, 0.5, 0.5, 0.5], [0, 0, 0, 0]])
    else:
        q = np.full((1, 4), 100, np.uint8)
        db = np.array([[101, 100, 100, 100], [99, 100, 100, 100], [0, 0, 0, 0]], np.uint8)
    d, i = FaissEngine(k=1, use_gpu=False).nearest(q, db, norm=norm)
    assert (i.tolist(), d.tolist()) == ([0], [0.25 if norm == "linf" else 1.0])


def test_the_gemm_functions_with_their_defaults():
    """The public GEMM functions called with their defaults: a plain query--database search (not
    train--train) in default-sized blocks, equal to the reference."""
    from separation.engines.gemm import gemm_cross_class, gemm_nearest

    rng = np.random.default_rng(8)
    x, y = tied(rng, 19, 5, 3, values=7)
    xq, yq = tied(rng, 8, 5, 3, values=7)
    ref = ReferenceEngine()
    assert_same_arrays(gemm_nearest(xq, x), ref.nearest(xq, x, norm="l2"), "nearest")
    assert_same_arrays(gemm_cross_class(xq, yq, x, y), ref.cross_class(xq, yq, x, y, norm="l2"), "cross_class")


def test_which_block_pairs_visit_each_pair_once():
    """A cluster run splits train--train work into pairs visited once only where the kernel is
    symmetric: GEMM l2 and l1 and the tiled l-inf kernel of the CPU engine, but not its probe
    search, which prunes per query; on the CUDA engine without Triton only l2."""
    cpu, torch_path = CPUEngine(), CUDAEngine(device="cpu", use_triton=False)
    for dtype in (np.dtype(np.uint8), np.dtype(np.float64)):
        assert cpu.pairs_once("l2", dtype) and cpu.pairs_once("l1", dtype) and not cpu.pairs_once("linf", dtype)
        assert CPUEngine(linf="tiled").pairs_once("linf", dtype)
        assert torch_path.pairs_once("l2", dtype)
        assert not torch_path.pairs_once("linf", dtype) and not torch_path.pairs_once("l1", dtype)
        assert not ReferenceEngine().pairs_once("l2", dtype)


def test_duplicate_indices_are_the_first_ones():
    """Test points identical to several training points report the smallest training index;
    each cross-class duplicate pair of the training set is reported once, with its indices."""
    x = np.array([[1, 1], [9, 9], [1, 1], [9, 9], [1, 1], [5, 5]], dtype=np.uint8)
    y = np.array([0, 1, 1, 0, 2, 0])
    xt = np.array([[9, 9], [1, 1], [7, 7]], dtype=np.uint8)
    yt = np.array([1, 1, 0])
    res = compute_separation(x, y, xt, yt, norm="linf", engine="cpu")
    np.testing.assert_array_equal(res.test_train_duplicates, [[0, 1], [1, 0]])
    s = res.summary()
    assert [(d.test_index, d.train_index) for d in s.test_train_duplicates] == [(0, 1), (1, 0)]
    pairs = {(p.index, p.neighbor) for p in s.train.cross_class_duplicates}
    assert pairs == {(0, 2), (1, 3), (4, 0)}  # 2 -> 0 is the pair (0, 2) seen from the other side
    test_dups = [(p.index, p.neighbor) for p in s.test.cross_class_duplicates]
    assert test_dups == [(0, 3), (1, 0)]  # test #0 (label 1) = train #3 (label 0); #1 = train #0


@pytest.mark.realdata
def test_probe_kernel_default_blocks_on_mnist_classes_with_several_blocks(mnist):
    """Two MNIST classes with > 2048 training points each: several default-size support blocks
    per class. Checked against scipy (an implementation independent of this package)."""
    from scipy.spatial.distance import cdist

    keep = np.flatnonzero(mnist.y_train < 2)[:5000]
    x, y = mnist.x_train[keep], mnist.y_train[keep]
    assert min(np.bincount(y)) > 2048
    rng = np.random.default_rng(0)
    qi = rng.choice(len(mnist.x_test), 150, replace=False)
    q, yq = mnist.x_test[qi], mnist.y_test[qi] % 2
    res = compute_separation(x, y, q, yq, norm="linf", engine="cpu")
    full = cdist(q.reshape(len(q), -1).astype(float), x.reshape(len(x), -1).astype(float), "chebyshev")
    full[yq[:, None] == y[None, :]] = np.inf
    np.testing.assert_array_equal(res.test_neighbors, full.argmin(axis=1))
    np.testing.assert_array_equal(res.test_distances, full.min(axis=1) / 255.0)
    # train--train on a slice of each class, with small blocks too
    sub = np.concatenate([np.flatnonzero(y == 0)[:300], np.flatnonzero(y == 1)[:300]])
    a = compute_separation(x[sub], y[sub], norm="linf", engine=CPUEngine(blocks=SMALL))
    b = compute_separation(x[sub], y[sub], norm="linf", engine="reference")
    np.testing.assert_array_equal(a.train_neighbors, b.train_neighbors)
    np.testing.assert_array_equal(a.train_distances, b.train_distances)


def test_probe_query_block_shrinks_only_below_four_tasks_per_thread(monkeypatch):
    """``probe_query_block`` queries per task while that leaves >= 4 tasks per thread, fewer below:
    at the boundary, one query either side, the kernel gets what is asked and answers exactly."""
    import numba

    from separation.engines import _probe_kernels
    from separation.engines.probe import ProbeSearch

    rng = np.random.default_rng(3)
    x, y = rng.integers(0, 256, (40, 6), dtype=np.uint8), np.arange(40) % 3
    threads, block = numba.get_num_threads(), 5
    seen, scan = [], _probe_kernels.scan

    def spy(*args):
        seen.append(args[-3])  # (..., query_block, probe_step, stops)
        return scan(*args)

    monkeypatch.setattr(_probe_kernels, "scan", spy)
    search = ProbeSearch(x, y, 3, blocks=CPUBlocks(probe_query_block=block))
    edge = 4 * threads * block
    for m, want in ((edge + 1, block), (edge - 4 * threads + 1, block), (edge - 4 * threads, block - 1)):
        q = rng.integers(0, 256, (m, 6), dtype=np.uint8)
        dist, idx = search.all(q)
        assert seen[-1] == want
        full = np.abs(q[:, None, :].astype(int) - x[None, :, :].astype(int)).max(axis=2)
        for c in range(3):
            np.testing.assert_array_equal(dist[:, c], full[:, y == c].min(axis=1) / 255.0)


def test_block_sizes_are_validated_field_by_field():
    import dataclasses

    assert CPUBlocks(gemm_rows=None).gemm_rows is None  # the default: from a memory budget
    assert CPUBlocks(stream_bytes=None).stream_bytes is None  # the default: from the available memory
    for f in dataclasses.fields(CPUBlocks):
        if f.name == "probe_layout":
            with pytest.raises(ValueError, match=r"^CPUBlocks\.probe_layout must be one of auto, sorted, given, "
                                                 r"got 'tiled'\.$"):
                CPUBlocks(probe_layout="tiled")
            continue
        minimum = 0 if f.name in ("probe_seeds", "probe_max", "probe_hist_bytes") else 1
        assert getattr(CPUBlocks(**{f.name: minimum}), f.name) == minimum
        for bad in ([None] if f.name not in ("gemm_rows", "stream_bytes") else []) + [True, minimum - 1, 2.0]:
            with pytest.raises(ValueError, match=rf"^CPUBlocks\.{f.name} must be an integer >= {minimum}, got "):
                CPUBlocks(**{f.name: bad})


def test_engines_name_themselves():
    from separation.engines import ReferenceEngine

    assert repr(ReferenceEngine()) == "ReferenceEngine(name='reference')"


def test_the_cpu_engine_orders_features_by_decreasing_variance():
    """High-variance features first: the tiled kernel's partial distances grow fastest and prune
    earliest (the order changes speed only: distances are sums or maxima over all features)."""
    rng = np.random.default_rng(6)
    spread = np.array([1, 40, 3, 255, 0, 90])
    x = (rng.random((500, 6)) * spread).astype(np.uint8)
    order = CPUEngine()._order(x)
    np.testing.assert_array_equal(order, [3, 5, 1, 2, 0, 4])
    assert CPUEngine(reorder_features=False)._order(x) is None


def test_cuda_available_asks_torch(monkeypatch):
    import torch

    from separation.engines.cuda import cuda_available

    for answer in (True, False):
        monkeypatch.setattr(torch.cuda, "is_available", lambda answer=answer: answer)
        assert cuda_available() is answer


@pytest.mark.parametrize("module, device, budget", [("conflicts", "cpu", 64 << 20), ("conflicts", "cuda", 1 << 30),
                                                    ("gemm", "cpu", 96 << 20), ("gemm", "cuda", 1 << 30)])
def test_gemm_blocks_keep_one_float32_block_within_the_memory_budget(module, device, budget):
    """Rows per GEMM block (nearest-neighbour and conflict searches): 256 to 8192, as many as fit one
    ``(rows, max(dim, 2048))`` float32 block into the budget wherever 256 rows do."""
    import importlib
    import types

    block_rows = importlib.import_module(f"separation.engines.{module}")._block_rows
    dev = types.SimpleNamespace(type=device)
    for dim in (1, 784, 3072, 12288, 150528):
        rows = block_rows(dim, dev)
        assert 256 <= rows <= 8192
        assert rows == 256 or 4 * rows * max(dim, 2048) <= budget
        assert rows == 8192 or 4 * (rows + 1) * max(dim, 2048) > budget
