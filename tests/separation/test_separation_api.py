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
    assert s.test.eps_stat(0.1) is s.test.eps["0.1"]
    with pytest.raises(ValueError, match=r"^eps=0\.7 was not computed for this record; its radii are 0\.1"):
        s.test.eps_stat(0.7)
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


def test_per_class_distances_use_the_norm_asked_for():
    """``class_distances=True`` in l2 and l1: each point's distance to every class, against scipy."""
    from scipy.spatial.distance import cdist

    rng = np.random.default_rng(7)
    x, y = rng.integers(0, 256, (40, 6), dtype=np.uint8), np.arange(40) % 3
    for norm, metric in (("l2", "euclidean"), ("l1", "cityblock")):
        res = compute_separation(x, y, norm=norm, class_distances=True, engine="reference", progress=False)
        full = cdist(x.astype(float), x.astype(float), metric) / 255.0
        want = np.stack([full[:, y == c].min(axis=1) for c in range(3)], axis=1)
        np.testing.assert_allclose(res.train_class_distances, want, rtol=1e-12, atol=0)


def test_nearest_neighbors_names_its_queries_in_errors():
    with pytest.raises(ValueError, match="^queries is empty"):
        nearest_neighbors(np.zeros((0, 2), np.uint8), np.zeros((3, 2), np.uint8), norm="linf")


def test_k_nearest_other_class_against_another_database():
    """Queries against a separate database: the k nearest database points of another label,
    against the float64 brute force."""
    from scipy.spatial.distance import cdist

    from separation import k_nearest_other_class

    rng = np.random.default_rng(5)
    xq, yq = rng.integers(0, 256, (9, 5), dtype=np.uint8), np.arange(9) % 3
    xd, yd = rng.integers(0, 256, (20, 5), dtype=np.uint8), np.arange(20) % 3
    d, i = k_nearest_other_class(xq, yq, xd, yd, k=3, norm="l1", engine="reference")
    full = np.where(yq[:, None] != yd[None, :], cdist(xq.astype(float), xd.astype(float), "cityblock"), np.inf)
    want_i = np.lexsort((np.broadcast_to(np.arange(20), full.shape), full), axis=1)[:, :3]
    np.testing.assert_array_equal(i, want_i)
    np.testing.assert_allclose(d, np.take_along_axis(full, want_i, axis=1) / 255.0, rtol=1e-12)


def test_a_test_set_of_another_width_is_named_in_the_error():
    x, y = np.zeros((4, 3), np.uint8), np.array([0, 1, 0, 1])
    with pytest.raises(ValueError, match=r"^x_test has 2 features per point but x_train has 3: "):
        compute_separation(x, y, np.zeros((2, 2), np.uint8), np.array([0, 1]), norm="linf")


def test_progress_true_draws_the_bars(capsys):
    x, y = np.arange(12, dtype=np.uint8).reshape(6, 2), np.array([0, 1] * 3)
    compute_separation(x, y, x, y, norm="linf", engine="reference", progress=True)
    err = capsys.readouterr().err
    assert "train-train (reference, linf)" in err and "test-train (reference, linf)" in err and "pair" in err
    compute_separation(x, y, x, y, norm="linf", engine="reference", progress=False)
    assert "train-train" not in capsys.readouterr().err


def test_the_memory_check_counts_the_test_points(monkeypatch):
    """The estimate checked before any work includes the test set (sizes as passed)."""
    import separation.search as compute

    seen = []
    real = compute.separation_bytes
    monkeypatch.setattr(compute, "separation_bytes", lambda *a, **k: seen.append(a[:3]) or real(*a, **k))
    x, y = np.zeros((6, 2), np.uint8), np.array([0, 1] * 3)
    compute_separation(x, y, x[:5], y[:5], norm="linf", engine="reference", progress=False)
    compute_separation(x, y, norm="linf", engine="reference", progress=False)
    assert seen == [(6, 5, 2), (6, 0, 2)]


def test_every_part_of_the_work_is_timed_by_name():
    """``seconds`` holds one wall time per part that ran, each between 0 and the whole call's."""
    import time

    rng = np.random.default_rng(8)
    x, y = rng.integers(0, 256, (30, 4), dtype=np.uint8), np.arange(30) % 3
    t0 = time.perf_counter()
    res = compute_separation(x, y, x[:7], y[:7], norm="l1", engine="reference", test_test=True, k=2,
                             class_distances=True, progress=False)
    wall = time.perf_counter() - t0
    assert set(res.seconds) == {"train_train", "test_train", "test_test", "knn", "class_distances"}
    assert all(0 <= s <= wall for s in res.seconds.values()), res.seconds


def test_queries_of_another_width_are_named_in_the_error():
    with pytest.raises(ValueError, match=r"^queries have 2 features per point but database has 3\.$"):
        nearest_neighbors(np.zeros((2, 2), np.uint8), np.zeros((3, 3), np.uint8), norm="linf")
