"""The float64 reference is itself checked against an independent implementation:
``scipy.spatial.distance.cdist`` (chebyshev, euclidean, cityblock), on several database blocks,
with ties across block boundaries (the smallest index must win)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import cdist

from separation import compute_separation, nearest_neighbors
from separation.engines import ReferenceEngine, pairwise_float64

SCIPY = {"linf": "chebyshev", "l2": "euclidean", "l1": "cityblock"}
NORMS = tuple(SCIPY)


def scipy_nearest(q, db, norm):
    """(distance, smallest index among ties) per query, from scipy's full distance matrix."""
    full = cdist(q.astype(np.float64), db.astype(np.float64), SCIPY[norm])
    return full.min(axis=1), full.argmin(axis=1)  # argmin: first occurrence


def scipy_cross_class(q, yq, db, ydb, norm):
    full = cdist(q.astype(np.float64), db.astype(np.float64), SCIPY[norm])
    full[yq[:, None] == ydb[None, :]] = np.inf
    d = full.min(axis=1)
    i = np.where(np.isfinite(d), full.argmin(axis=1), -1)
    return d, i


@pytest.mark.parametrize("norm", NORMS)
def test_pairwise_float64_equals_scipy(norm, rng):
    a = rng.integers(0, 256, (23, 17)).astype(np.uint8)
    b = rng.integers(0, 256, (31, 17)).astype(np.uint8)
    np.testing.assert_allclose(pairwise_float64(a, b, norm), cdist(a.astype(float), b.astype(float), SCIPY[norm]),
                               rtol=1e-13, atol=0)
    f, g = rng.random((9, 5)), rng.random((4, 5))
    np.testing.assert_allclose(pairwise_float64(f, g, norm), cdist(f, g, SCIPY[norm]), rtol=1e-13, atol=0)


# block_bytes=1: every query block and every database block holds one point, so each tie
# between two database points is decided across a block boundary
@pytest.mark.parametrize("block_bytes", [1, 8 * 5 * 3, 64 << 20])
@pytest.mark.parametrize("norm", NORMS)
def test_reference_nearest_with_ties_across_blocks(norm, block_bytes, rng):
    q = rng.integers(0, 3, (37, 5)).astype(np.uint8)  # 3 levels: ties everywhere
    db = rng.integers(0, 3, (29, 5)).astype(np.uint8)
    d, i = ReferenceEngine(block_bytes=block_bytes).nearest(q, db, norm=norm)
    sd, si = scipy_nearest(q, db, norm)
    np.testing.assert_array_equal(i, si)
    np.testing.assert_allclose(d, sd, rtol=1e-14, atol=0)
    assert (np.bincount(si, minlength=len(db)) > 0).sum() < len(q)  # the data really has ties


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(2, 60), m=st.integers(1, 25), d=st.integers(1, 12),
       k=st.integers(2, 5), levels=st.sampled_from([2, 3, 256]), block_bytes=st.sampled_from([1, 200, 1 << 20]),
       as_float=st.booleans(), norm=st.sampled_from(NORMS))
def test_reference_cross_class_equals_scipy(seed, n, m, d, k, levels, block_bytes, as_float, norm):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, levels, (n, d)).astype(np.uint8)
    y = rng.integers(0, k, n)
    y[:2] = [0, 1]
    xt = np.concatenate([x[: min(m, n)], rng.integers(0, levels, (m, d)).astype(np.uint8)])[:m]
    yt = rng.integers(0, k, m)
    if as_float:  # dyadic values: every float64 difference and sum is exact, so ties stay ties
        x, xt = x / 256.0, xt / 256.0
    res = compute_separation(x, y, xt, yt, norm=norm, engine=ReferenceEngine(block_bytes=block_bytes))
    scale = 1.0 if as_float else 255.0
    for q, yq, dist, nbr in ((x, y, res.train_distances, res.train_neighbors),
                             (xt, yt, res.test_distances, res.test_neighbors)):
        sd, si = scipy_cross_class(q, yq, x, y, norm)
        np.testing.assert_array_equal(nbr, si)
        np.testing.assert_allclose(dist, sd / scale, rtol=1e-13, atol=0)


@pytest.mark.parametrize("engine", ["reference", "cpu"])
@pytest.mark.parametrize("norm", NORMS)
def test_test_test_distances_equal_scipy(engine, norm, rng):
    """``test_test=True``: each test point's nearest test point of another class, by scipy."""
    x, y = rng.integers(0, 4, (30, 5)).astype(np.uint8), rng.integers(0, 3, 30)
    xt, yt = rng.integers(0, 4, (25, 5)).astype(np.uint8), rng.integers(0, 3, 25)
    res = compute_separation(x, y, xt, yt, norm=norm, engine=engine, test_test=True)
    sd, si = scipy_cross_class(xt, yt, xt, yt, norm)
    np.testing.assert_array_equal(res.test_test_neighbors, si)
    np.testing.assert_allclose(res.test_test_distances, sd / 255.0, rtol=1e-13, atol=0)


def test_nearest_neighbors_public_function_equals_scipy(rng):
    q = rng.integers(0, 4, (50, 9)).astype(np.uint8)
    db = rng.integers(0, 4, (70, 9)).astype(np.uint8)
    for norm in NORMS:
        d, i = nearest_neighbors(q, db, norm=norm, engine="reference")
        sd, si = scipy_nearest(q, db, norm)
        np.testing.assert_array_equal(i, si)
        np.testing.assert_allclose(d, sd / 255.0, rtol=1e-14, atol=0)


def scipy_k_nearest_other(q, yq, db, ydb, norm, k):
    """(m, k) distances and indices of the k nearest other-label rows: by distance, then index."""
    D = cdist(q.astype(np.float64), db.astype(np.float64), SCIPY[norm])
    D[yq[:, None] == ydb[None, :]] = np.inf
    order = np.lexsort((np.broadcast_to(np.arange(len(db)), D.shape), D), axis=1)[:, :k]
    dist = np.take_along_axis(D, order, 1)
    return dist, np.where(np.isinf(dist), -1, order)


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("k", [1, 3, 12])
def test_reference_k_nearest_other_class_equals_scipy(norm, k, rng, monkeypatch):
    """Few grey levels: many exact ties, broken by index; k beyond the other-class count pads.
    The reference is the ground truth: it never goes through the compiled byte kernel."""
    import separation.engines.knn as knn

    def no_kernel(*a, **k):
        raise AssertionError("the reference used the compiled k-NN kernel")

    monkeypatch.setattr(knn._knn_kernels, "knn_bytes", no_kernel)
    q = rng.choice(np.array([0, 3, 255], np.uint8), (9, 4))
    db = rng.choice(np.array([0, 3, 255], np.uint8), (14, 4))
    yq, ydb = rng.integers(0, 3, 9), np.arange(14) % 3
    d, i = ReferenceEngine().cross_class_k(q, yq, db, ydb, norm=norm, k=k)
    want_d, want_i = scipy_k_nearest_other(q, yq, db, ydb, norm, k)
    np.testing.assert_allclose(d, want_d, rtol=1e-12)
    np.testing.assert_array_equal(i, want_i)


class _DefaultsEngine(ReferenceEngine):
    """The reference with the base class's defaults for the block-pair, prepare and k-NN hooks."""

    block_pair = ReferenceEngine.__mro__[1].block_pair
    prepare = ReferenceEngine.__mro__[1].prepare
    cross_class_k = ReferenceEngine.__mro__[1].cross_class_k


@pytest.mark.parametrize("norm", NORMS)
def test_the_base_class_hooks_equal_scipy(norm, rng):
    eng = _DefaultsEngine(block_bytes=256)
    xa, xb = rng.integers(0, 4, (11, 3)).astype(np.uint8), rng.integers(0, 4, (7, 3)).astype(np.uint8)
    ya, yb = rng.integers(0, 2, 11), rng.integers(0, 2, 7)
    assert eng.pairs_once(norm, np.dtype(np.uint8)) is False
    da, ia, db, ib = eng.block_pair(xa, ya, xb, yb, norm=norm)
    for (d, i), (q, yq, x, y) in (((da, ia), (xa, ya, xb, yb)), ((db, ib), (xb, yb, xa, ya))):
        want_d, want_i = scipy_cross_class(q, yq, x, y, norm)
        np.testing.assert_allclose(d, want_d, rtol=1e-12)
        np.testing.assert_array_equal(i[np.isfinite(d)], want_i[np.isfinite(d)])
    search = eng.prepare(xb, yb, norm=norm)
    np.testing.assert_array_equal(np.stack(search(xa, ya)), np.stack(eng.cross_class(xa, ya, xb, yb, norm=norm)))
    d, i = eng.cross_class_k(xa, ya, xb, yb, norm=norm, k=4)
    want_d, want_i = scipy_k_nearest_other(xa, ya, xb, yb, norm, 4)
    np.testing.assert_allclose(d, want_d, rtol=1e-12)
    np.testing.assert_array_equal(i, want_i)


def test_the_kernels_absolute_difference_stays_in_the_input_dtype_without_wrapping():
    """``_absdiff``, in Python and compiled by numba (its overload), equals |a - b| computed in
    int64 / float64; bytes stay bytes (the l-inf kernel's accumulators are uint8)."""
    import numba

    from separation.engines._kernels import _absdiff

    compiled = numba.njit(lambda a, b: _absdiff(a, b))
    vals = np.array([0, 1, 2, 127, 128, 254, 255], np.uint8)
    for a in vals:
        for b in vals:
            want = abs(int(a) - int(b))
            assert _absdiff(a, b) == want and _absdiff(a, b).dtype == np.uint8
            assert compiled(a, b) == want
    assert compiled.nopython_signatures[0].return_type == numba.uint8
    floats = np.array([-3.5, 0.0, 0.25, 1.0])
    for a in floats:
        for b in floats:
            assert _absdiff(a, b) == compiled(a, b) == abs(float(a) - float(b))
