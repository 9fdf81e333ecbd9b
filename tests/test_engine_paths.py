"""Paths that random small inputs rarely reach, each on data built to reach it.

- l2 near-ties that float32 cannot resolve: the exact recheck must decide them;
- the l-inf probe kernel with its default block size on real data with more than one support
  block per class;
- duplicates: which indices are reported, not only how many.
"""
from __future__ import annotations

import numpy as np
import pytest

from separation import compute_separation, nearest_neighbors
from separation.engines import CPUEngine, CUDAEngine, FaissEngine, available_engines
from separation.engines.blocks import CPUBlocks

from engine_variants import SMALL


def near_tie_l2(n: int, d: int = 3072, seed: int = 0, spread: int = 3):
    """Queries and a database where each query has two candidates whose squared distances differ
    by exactly 1 while the squared norms are ~2e8: float32's resolution there is ~16, and its
    GEMM error tens of units. The candidates are close to the query (squared distance ~1e4), so a
    relative slack on the distance alone cannot cover that error: only the rigorous bound does.
    The second candidate is a permutation of the first (same distance) with one byte moved by one."""
    rng = np.random.default_rng(seed)
    q = np.full((n, d), 250, np.uint8)
    q[:, :8] = rng.integers(240, 256, (n, 8))
    db = []
    for i in range(n):
        a = np.clip(q[i].astype(np.int64) + rng.integers(-spread, spread + 1, d), 0, 255)
        b = a.copy()
        b[8:] = a[8 + rng.permutation(d - 8)]
        k = 8 + np.flatnonzero(b[8:] == 250)[0]
        b[k] = 251  # exactly one squared unit farther than a
        db += [b, a]  # the farther one first: a float32 tie would pick it
    return q, np.array(db, dtype=np.uint8)


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
    q, db = near_tie_l2(24, d=2048, seed=2, spread=12)
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


def test_block_sizes_are_validated_field_by_field():
    import dataclasses

    assert CPUBlocks(gemm_rows=None).gemm_rows is None  # the default: from a memory budget
    for f in dataclasses.fields(CPUBlocks):
        if f.name == "probe_layout":
            with pytest.raises(ValueError, match=r"^CPUBlocks\.probe_layout must be one of auto, sorted, given, "
                                                 r"got 'tiled'\.$"):
                CPUBlocks(probe_layout="tiled")
            continue
        minimum = 0 if f.name in ("probe_seeds", "probe_max", "probe_hist_bytes") else 1
        assert getattr(CPUBlocks(**{f.name: minimum}), f.name) == minimum
        for bad in ([None] if f.name != "gemm_rows" else []) + [True, minimum - 1, 2.0]:
            with pytest.raises(ValueError, match=rf"^CPUBlocks\.{f.name} must be an integer >= {minimum}, got "):
                CPUBlocks(**{f.name: bad})


def test_engines_name_themselves():
    from separation.engines import ReferenceEngine

    assert repr(ReferenceEngine()) == "ReferenceEngine(name='reference')"
