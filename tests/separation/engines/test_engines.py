"""Every engine must return exactly what the float64 brute force returns (distances and indices).

The engines run with their default sizes and with sizes so small (``engine_variants``) that
multi-block, multi-chunk, remainder and class-spanning-block paths all run on a few dozen points.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from separation import compute_separation, nearest_neighbors
from separation.engines import ENGINES, available_engines, get_engine
from separation.engines.reference import pairwise_float64

from helpers.engine_variants import VARIANT_NAMES, assert_same, variants

NORMS = ["linf", "l2", "l1"]


def _reference(x, y, xt, yt, norm):
    return compute_separation(x, y, xt, yt, norm=norm, engine="reference")


@st.composite
def labelled_arrays(draw, dyadic_float=False):
    """Up to 90 points of up to 60 features: with the small engine variants that is many blocks
    per class, and chunks that end before the last feature. Few levels give ties everywhere."""
    n = draw(st.integers(2, 90))
    m = draw(st.integers(1, 30))
    d = draw(st.integers(1, 60))
    k = draw(st.integers(2, 5))
    levels = draw(st.sampled_from([2, 3, 256]))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    x = rng.integers(0, levels, size=(n, d)).astype(np.uint8)
    y = rng.integers(0, k, size=n)
    y[:2] = [0, 1]  # at least two classes
    if draw(st.booleans()):  # uneven classes: one class holds most points
        y[2:] = np.where(rng.random(n - 2) < 0.8, 0, y[2:])
    xt = rng.integers(0, levels, size=(m, d)).astype(np.uint8)
    yt = rng.integers(0, k, size=m)
    if draw(st.booleans()):  # a cross-class exact duplicate
        x[-1] = x[0]
        y[-1] = (y[0] + 1) % k
    if dyadic_float:  # floats off the byte grid whose differences and sums are exact in float64
        scale = draw(st.sampled_from([0.5, 0.75, 1.0]))
        x, xt = x / 256.0 * scale, xt / 512.0
    if m > 1 and draw(st.booleans()):  # test points identical to training points (after scaling)
        xt[0] = x[0]
        xt[-1] = x[-1]
    return x, y, xt, yt


@pytest.mark.parametrize("engine", VARIANT_NAMES)
@pytest.mark.parametrize("norm", NORMS)
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=labelled_arrays())
def test_engine_matches_reference_uint8(engine, norm, data):
    x, y, xt, yt = data
    res = compute_separation(x, y, xt, yt, norm=norm, engine=variants()[engine])
    assert_same(res, _reference(x, y, xt, yt, norm))


@pytest.mark.parametrize("engine", VARIANT_NAMES)
@pytest.mark.parametrize("norm", NORMS)
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=labelled_arrays(dyadic_float=True))
def test_engine_matches_reference_dyadic_float(engine, norm, data):
    x, y, xt, yt = data
    res = compute_separation(x, y, xt, yt, norm=norm, engine=variants()[engine])
    assert_same(res, _reference(x, y, xt, yt, norm))


@pytest.mark.parametrize("engine", VARIANT_NAMES)
@pytest.mark.parametrize("norm", NORMS)
def test_engine_on_arbitrary_floats(engine, norm, rng):
    """Floats whose sums round: distances within a rigorous float64 bound of the reference, and
    the neighbour is a point of another class at that distance."""
    x = rng.random((60, 23)) * 0.9
    y = rng.integers(0, 3, 60)
    xt = rng.random((15, 23))
    yt = rng.integers(0, 3, 15)
    res = compute_separation(x, y, xt, yt, norm=norm, engine=variants()[engine])
    ref = _reference(x, y, xt, yt, norm)
    tol = 0 if norm == "linf" else 4 * 23 * np.finfo(np.float64).eps
    for q, yq, d, nbr, rd in ((x, y, res.train_distances, res.train_neighbors, ref.train_distances),
                              (xt, yt, res.test_distances, res.test_neighbors, ref.test_distances)):
        np.testing.assert_allclose(d, rd, rtol=tol, atol=0)
        assert np.all(y[nbr] != yq)
        own = np.array([pairwise_float64(q[i:i + 1], x[j:j + 1], norm)[0, 0] for i, j in enumerate(nbr)])
        np.testing.assert_allclose(own, rd, rtol=tol, atol=0)


@pytest.mark.parametrize("engine", VARIANT_NAMES)
@pytest.mark.parametrize("norm", NORMS)
def test_nearest_matches_reference(engine, norm, rng):
    q = rng.integers(0, 3, size=(57, 19)).astype(np.uint8)
    db = rng.integers(0, 3, size=(91, 19)).astype(np.uint8)
    d, i = nearest_neighbors(q, db, norm=norm, engine=variants()[engine])
    rd, ri = nearest_neighbors(q, db, norm=norm, engine="reference")
    np.testing.assert_array_equal(i, ri)
    np.testing.assert_array_equal(d, rd)


@pytest.mark.slow
@pytest.mark.parametrize("engine", [e for e in ("cpu", "faiss") if e in VARIANT_NAMES])
def test_larger_blocks_and_real_sized_features(engine, rng):
    """Default sizes: several GEMM blocks (l2) and 784 features (MNIST-like), all norms."""
    x = rng.integers(0, 256, size=(700, 784)).astype(np.uint8)
    x[rng.random(x.shape) < 0.7] = 0  # sparse like digits
    y = rng.integers(0, 10, size=700)
    xt, yt = x[:133].copy(), rng.integers(0, 10, size=133)
    for norm in NORMS:
        assert_same(compute_separation(x, y, xt, yt, norm=norm, engine=variants()[engine]),
                    _reference(x, y, xt, yt, norm))


@pytest.mark.parametrize("engine", VARIANT_NAMES)
@pytest.mark.parametrize("norm", NORMS)
def test_all_ties_go_to_the_smallest_index(engine, norm):
    """Every distance is equal: rows and columns of every block must keep the smallest index."""
    x = np.zeros((11, 3), dtype=np.uint8)
    y = np.array([3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5])
    res = compute_separation(x, y, x[:4], y[:4], norm=norm, engine=variants()[engine])
    first_other = [int(np.flatnonzero(y != c)[0]) for c in y]
    np.testing.assert_array_equal(res.train_distances, 0)
    np.testing.assert_array_equal(res.train_neighbors, first_other)
    np.testing.assert_array_equal(res.test_neighbors, first_other[:4])
    np.testing.assert_array_equal(res.test_train_duplicates, [[0, 0], [1, 0], [2, 0], [3, 0]])


@pytest.mark.parametrize("engine", VARIANT_NAMES)
def test_classes_of_one_point(engine):
    x = np.array([[0, 0], [10, 0], [0, 10], [10, 10], [5, 5]], dtype=np.uint8)
    y = np.array([0, 1, 2, 3, 4])
    res = compute_separation(x, y, norm="linf", engine=variants()[engine])
    ref = _reference(x, y, None, None, "linf")
    np.testing.assert_array_equal(res.train_neighbors, ref.train_neighbors)
    np.testing.assert_array_equal(res.train_neighbors, [4, 4, 4, 4, 0])


def test_engine_registry_and_errors():
    assert {"reference", "cpu", "faiss", "cuda"} <= set(ENGINES)
    assert "cpu" in available_engines()
    with pytest.raises(ValueError, match="Unknown engine 'nope'"):
        get_engine("nope")
    if "cuda" not in available_engines():
        with pytest.raises(ValueError, match="not available"):  # an InvalidInputError
            get_engine("cuda")
    assert get_engine("auto").name in available_engines()
