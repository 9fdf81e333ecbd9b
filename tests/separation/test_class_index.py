"""separation.ClassIndex: exact per-class distances with every engine, equal to scipy's brute force."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from separation import ClassIndex, compute_separation

from helpers.engine_variants import VARIANT_NAMES, variants

SCIPY = {"linf": "chebyshev", "l2": "euclidean", "l1": "cityblock"}


def brute(q, x, y, norm):
    """Per-class distance and smallest nearest position, from scipy's matrix (pixel units)."""
    full = cdist(q.reshape(len(q), -1).astype(float), x.reshape(len(x), -1).astype(float), SCIPY[norm]) / 255.0
    classes = np.unique(y)
    dist = np.stack([full[:, y == c].min(axis=1) for c in classes], axis=1)
    idx = np.stack([np.flatnonzero(y == c)[full[:, y == c].argmin(axis=1)] for c in classes], axis=1)
    return dist, idx


@pytest.mark.parametrize("engine", VARIANT_NAMES)
@pytest.mark.parametrize("norm", ["linf", "l2", "l1"])
def test_distances_indices_top2_and_other_class(engine, norm, rng):
    x = rng.integers(0, 4, (70, 2, 3, 3)).astype(np.uint8)  # few levels: ties everywhere
    y = rng.integers(0, 4, 70) * 10 + 5
    q = np.concatenate([x[:6], rng.integers(0, 4, (25, 2, 3, 3)).astype(np.uint8)])
    index = ClassIndex(x, y, norm=norm, engine=variants()[engine])
    np.testing.assert_array_equal(index.classes_, np.unique(y))
    want_d, want_i = brute(q, x, y, norm)
    d, i = index.distances(q, return_indices=True)
    np.testing.assert_allclose(d, want_d, rtol=1e-15, atol=0)
    np.testing.assert_array_equal(i, want_i)
    pred, d1, d2 = index.top2(q)
    s = np.sort(want_d, axis=1)
    np.testing.assert_array_equal(pred, np.argmin(want_d, axis=1))
    np.testing.assert_allclose(d1, s[:, 0], rtol=1e-15, atol=0)
    np.testing.assert_allclose(d2, s[:, 1], rtol=1e-15, atol=0)
    # the nearest point of another label is the separation's neighbour
    yq = np.concatenate([y[:6], rng.integers(0, 4, 25) * 10 + 5])
    od, oi = index.other_class(q, yq)
    sep = compute_separation(x, y, q, yq, norm=norm, engine="reference")
    np.testing.assert_array_equal(oi, sep.test_neighbors)
    np.testing.assert_allclose(od, sep.test_distances, rtol=1e-15, atol=0)


def test_float_queries_against_byte_support_and_points(rng):
    x = rng.integers(0, 256, (40, 7)).astype(np.uint8)
    y = np.arange(40) % 3
    index = ClassIndex(x, y, norm="linf", engine="cpu")
    qf = rng.random((9, 7))
    want = np.stack([cdist(qf, x[y == c] / 255.0, "chebyshev").min(axis=1) for c in range(3)], axis=1)
    np.testing.assert_array_equal(index.distances(qf), want)
    np.testing.assert_array_equal(index.points([[0, 5]]), x[[[0, 5]]] / 255.0)
    assert "ClassIndex(norm='linf'" in repr(index) and index.n_features_in_ == 7


def test_a_label_outside_the_index_counts_as_other(rng):
    x = rng.integers(0, 256, (12, 3)).astype(np.uint8)
    y = np.arange(12) % 2
    index = ClassIndex(x, y, norm="l1", engine="cpu")
    d_any, i_any = index.other_class(x[:3], [7, 7, 7])  # label 7 is no class: every point is "other"
    full = cdist(x[:3].astype(float), x.astype(float), "cityblock") / 255.0
    np.testing.assert_array_equal(i_any, full.argmin(axis=1))
    np.testing.assert_array_equal(d_any, full.min(axis=1))


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_one_class_has_no_other_class(norm):
    index = ClassIndex(np.eye(3), [4, 4, 4], norm=norm)
    d, i = index.other_class(np.eye(3), [4, 4, 4])
    assert np.isinf(d).all() and (i == -1).all()
    _, d1, d2 = index.top2(np.eye(3))
    assert (d1 == 0).all() and np.isinf(d2).all()


def test_bad_queries_are_explained():
    index = ClassIndex(np.eye(3), [0, 1, 2])
    with pytest.raises(ValueError, match="4 features per point but the index holds 3"):
        index.distances(np.zeros((1, 4)))
    with pytest.raises(ValueError, match="same length"):
        index.other_class(np.eye(3), [0, 1])
    with pytest.raises(ValueError, match="Unknown norm"):
        ClassIndex(np.eye(3), [0, 1, 2], norm="l0")
