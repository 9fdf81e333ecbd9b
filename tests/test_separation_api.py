"""compute_separation: results, summary, duplicates, inputs and the errors for bad input."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from separation import SeparationResult, compute_separation, nearest_neighbors


def _two_blobs(rng, n=40, d=12, gap=100):
    x = rng.integers(0, 50, size=(n, d)).astype(np.uint8)
    y = np.arange(n) % 2
    x[y == 1] += gap
    return x, y


def test_result_fields_and_summary(rng):
    x, y = _two_blobs(rng)
    xt, yt = x[:10].copy(), y[:10].copy()
    res = compute_separation(x, y, xt, yt, norm="linf", engine="cpu")
    assert res.train_distances.shape == (40,) and res.train_neighbors.dtype == np.int64
    assert np.all(y[res.train_neighbors] != y)
    # distances are exact multiples of 1/255 for 8-bit data
    np.testing.assert_array_equal(np.rint(res.train_distances * 255) / 255, res.train_distances)
    s = res.summary(eps=[0.1, 0.3])
    assert s.r == pytest.approx(res.train_distances.min() / 2)
    assert s.train.min == res.train_distances.min()
    assert set(s.train.per_class_min) == {"0", "1"}
    cp = s.train.closest_pair
    assert res.train_distances[cp.index] == cp.distance and cp.label != cp.neighbor_label
    assert s.test.eps["0.1"].ratio_to_2eps == pytest.approx(res.test_distances.min() / 0.2)
    assert s.test.eps_stat(0.1) is s.test.eps["0.1"] and s.test.eps_stat(0.7) is None
    frac = s.train.eps["0.3"].fraction_below_2eps
    assert frac == pytest.approx(np.mean(res.train_distances < 0.6))
    assert len(s.test_train_duplicates) == 10  # test points copied from train


def test_duplicates_are_reported_and_excluded(rng):
    x, y = _two_blobs(rng)
    x[5] = x[0]  # label 1 copy of a label 0 point: a cross-class exact duplicate
    res = compute_separation(x, y, norm="l2", engine="cpu")
    s = res.summary(near_duplicate_threshold=0.01)
    dups = s.train.cross_class_duplicates
    assert len(dups) == 1 and {dups[0].index, dups[0].neighbor} == {0, 5}
    assert s.train.min == 0.0
    assert s.train.n_excluded == 2
    assert s.train.min_excluding_duplicates > 0
    near = s.train.near_duplicates  # everything closer than 0.01: here the exact pair only
    assert [(p.index, p.neighbor) for p in near] == [(dups[0].index, dups[0].neighbor)]


def test_torch_and_float_inputs_agree_with_uint8(rng):
    x, y = _two_blobs(rng)
    a = compute_separation(x, y, norm="linf", engine="cpu")
    b = compute_separation(torch.from_numpy(x.astype(np.float32) / 255), torch.from_numpy(y),
                           norm="linf", engine="cpu")
    np.testing.assert_array_equal(a.train_distances, b.train_distances)
    np.testing.assert_array_equal(a.train_neighbors, b.train_neighbors)


def test_image_shaped_inputs(rng):
    x = rng.integers(0, 256, size=(30, 3, 4, 4)).astype(np.uint8)
    y = np.arange(30) % 3
    res = compute_separation(x, y, norm="l1")
    ref = compute_separation(x.reshape(30, -1), y, norm="l1", engine="reference")
    np.testing.assert_array_equal(res.train_distances, ref.train_distances)


def test_round_trip_arrays(rng):
    x, y = _two_blobs(rng)
    res = compute_separation(x, y, x[:5], y[:5], norm="linf")
    back = SeparationResult.from_arrays(res.arrays(), norm="linf", engine=res.engine)
    np.testing.assert_array_equal(back.test_neighbors, res.test_neighbors)
    assert back.summary() == res.summary()


def test_nearest_neighbors_units(rng):
    q = np.array([[0, 0], [255, 255]], dtype=np.uint8)
    d, i = nearest_neighbors(q, np.array([[255, 0]], dtype=np.uint8), norm="l1")
    np.testing.assert_array_equal(d, [1.0, 1.0])
    np.testing.assert_array_equal(i, [0, 0])


@pytest.mark.parametrize("kwargs, match", [
    (dict(norm="l3"), "Unknown norm 'l3'"),
    (dict(y_train=np.zeros(10)), "fewer than two classes"),
    (dict(y_train=np.arange(9) % 2), "9 labels but the data has 10"),
    (dict(x_train=np.full((10, 4), np.nan)), "NaN or inf"),
    (dict(x_train=np.full((10, 4), 2.0)), "must lie in \\[0, 1\\]"),
    (dict(x_train=np.zeros((0, 4))), "empty"),
    (dict(x_test=np.zeros((3, 5), np.uint8), y_test=np.zeros(3)), "same shape"),
    (dict(x_test=np.zeros((0, 4), np.uint8), y_test=np.zeros(0)), "empty"),
    (dict(x_test=np.zeros((3, 4), np.uint8)), "both x_test and y_test"),
    (dict(x_train=np.zeros((10, 4), np.int32)), "uint8"),
    (dict(engine="warp-drive"), "Unknown engine"),
])
def test_bad_input_errors(kwargs, match):
    args = dict(x_train=np.zeros((10, 4), np.uint8), y_train=np.arange(10) % 2, x_test=None, y_test=None)
    args.update(kwargs)
    x_train, y_train, x_test, y_test = (args.pop(k) for k in ("x_train", "y_train", "x_test", "y_test"))
    with pytest.raises((ValueError, TypeError), match=match):
        compute_separation(x_train, y_train, x_test, y_test, **args)


def test_a_test_point_copied_several_times_names_its_first_training_copy(rng):
    """Test--train duplicates: each test point once, with the smallest index among identical
    training rows (the documented tie rule), not whichever copy a hash order meets first."""
    x = rng.integers(0, 256, size=(30, 12), dtype=np.uint8)
    y = np.arange(30) % 3
    x[[4, 11, 23]] = x[17]  # four identical training rows: 4, 11, 17, 23
    xt = np.stack([x[23], x[2], rng.integers(0, 256, 12, dtype=np.uint8)])
    yt = np.array([0, 1, 2])
    res = compute_separation(x, y, xt, yt, norm="linf", engine="cpu")
    assert res.test_train_duplicates.tolist() == [[0, 4], [1, 2]]
    assert [(p.test_index, p.train_index) for p in res.summary().test_train_duplicates] == [(0, 4), (1, 2)]
