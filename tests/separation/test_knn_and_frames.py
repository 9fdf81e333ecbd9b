"""k nearest other-class neighbours (every engine equal to a brute force), the class x class matrix,
the random-label control, and the DataFrame views of a separation result."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from separation import compute_separation, k_nearest_other_class, load_dataset
from separation.engines.reference import pairwise_float64

from helpers.engine_variants import VARIANT_NAMES, variants
from helpers.paths import FIXTURES


def brute_knn(xq, yq, xd, yd, norm, k):
    """Sort every row by (distance, index) over the other-class points: the definition."""
    d = pairwise_float64(xq, xd, norm)
    d[yq[:, None] == yd[None, :]] = np.inf
    out_d = np.full((len(xq), k), np.inf)
    out_i = np.full((len(xq), k), -1)
    for a in range(len(xq)):
        order = np.lexsort((np.arange(len(xd)), d[a]))[:k]
        keep = np.isfinite(d[a, order])
        out_d[a, :keep.sum()] = d[a, order][keep]
        out_i[a, :keep.sum()] = order[keep]
    return out_d, out_i


@st.composite
def instances(draw):
    n, d = draw(st.integers(2, 60)), draw(st.integers(1, 20))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    levels = draw(st.sampled_from([2, 3, 256]))  # few levels: ties everywhere
    x = rng.integers(0, levels, (n, d)).astype(np.uint8)
    y = rng.integers(0, draw(st.integers(2, 4)), n)
    y[:2] = [0, 1]
    if draw(st.booleans()):
        x = x / 256.0  # dyadic floats: exact in float64
    return x, y, draw(st.integers(1, 7)), draw(st.sampled_from(["linf", "l2", "l1"]))


@pytest.mark.parametrize("name", VARIANT_NAMES)
@settings(max_examples=25, deadline=None)
@given(inst=instances())
def test_k_nearest_other_class_equals_the_brute_force(name, inst):
    x, y, k, norm = inst
    eng = variants()[name]
    if not eng.supports(norm, x.dtype):
        return
    d, i = k_nearest_other_class(x, y, k=k, norm=norm, engine=eng)
    bd, bi = brute_knn(x, y, x, y, norm, k)  # bytes: distances in grey levels, reported as k / 255
    np.testing.assert_array_equal(i, bi)
    np.testing.assert_array_equal(d, bd / (255.0 if x.dtype == np.uint8 else 1.0))


def test_knn_first_column_is_the_separation_and_test_side():
    ds = load_dataset("digits").subset(300, seed=1)
    res = compute_separation(ds.x_train, ds.y_train, ds.x_test, ds.y_test, norm="l2", k=4)
    np.testing.assert_array_equal(res.train_knn_distances[:, 0], res.train_distances)
    np.testing.assert_array_equal(res.train_knn_neighbors[:, 0], res.train_neighbors)
    np.testing.assert_array_equal(res.test_knn_neighbors[:, 0], res.test_neighbors)
    assert (np.diff(res.train_knn_distances, axis=1) >= 0).all()
    with pytest.raises(ValueError, match="k must be an integer >= 1"):
        compute_separation(ds.x_train, ds.y_train, k=0)


def test_class_matrix_equals_the_brute_force():
    ds = load_dataset("digits").subset(250, seed=2)
    res = compute_separation(ds.x_train, ds.y_train, ds.x_test, ds.y_test, norm="linf", class_distances=True)
    m = res.class_matrix()
    d = pairwise_float64(ds.x_train.reshape(len(ds.x_train), -1), ds.x_train.reshape(len(ds.x_train), -1), "linf")
    for row in m.itertuples():
        a, b = ds.y_train == row[1], ds.y_train == row[2]
        assert row.distance == d[np.ix_(a, b)].min()
        assert d[row.index, row.neighbor] == row.distance and ds.y_train[row.neighbor] == row.other_class
    square = m.pivot(index="class", columns="other_class", values="distance")
    assert square.shape == (10, 10) and np.isnan(np.diag(square.to_numpy())).all()
    assert square.min().min() == res.train_distances.min()  # the closest pair of classes is the separation
    test = res.class_matrix("test")
    assert test.distance.min() == res.test_distances.min()
    with pytest.raises(ValueError, match="class_distances=True"):
        compute_separation(ds.x_train, ds.y_train).class_matrix()


def test_to_frame_rows_and_repr():
    ds = load_dataset("digits").subset(120, seed=0)
    res = compute_separation(ds.x_train, ds.y_train, ds.x_test, ds.y_test, test_test=True)
    f = res.to_frame()
    assert list(f.columns) == ["split", "index", "label", "distance", "neighbor", "neighbor_label"]
    assert f.groupby("split").size().to_dict() == {"test": 120, "test-test": 120, "train": 120}
    tr = f[f.split == "train"]
    np.testing.assert_array_equal(tr.distance, res.train_distances)
    assert (tr.label != tr.neighbor_label).all()
    tt = f[f.split == "test-test"]
    np.testing.assert_array_equal(tt.neighbor_label, ds.y_test[res.test_test_neighbors])
    text = repr(res)
    assert len(text) < 300 and "train n=120" in text and "array" not in text
    assert "<table>" in res._repr_html_()


def test_random_labels_keep_class_sizes_and_shrink_the_separation():
    ds = load_dataset("digits")
    rnd = ds.with_random_labels(3)
    assert np.array_equal(np.bincount(rnd.y_train), np.bincount(ds.y_train))
    assert not np.array_equal(rnd.y_train, ds.y_train)
    assert np.array_equal(rnd.y_train, ds.with_random_labels(3).y_train)  # seeded
    real = compute_separation(ds.x_train, ds.y_train, norm="linf")
    control = compute_separation(rnd.x_train, rnd.y_train, norm="linf")
    assert control.train_distances.mean() < real.train_distances.mean()


def test_random_labels_and_k_from_the_command_line(tmp_path, capsys):
    from separation import compute
    from separation.result import load_result

    argv = ["--dataset", "digits", "--subset", "200", "--out", str(tmp_path), "--no-progress"]
    assert compute.main(argv) == 0
    assert compute.main(argv + ["--random-labels", "5", "--k", "3", "--class-matrix"]) == 0
    folders = sorted(p.name for p in (tmp_path / "digits").iterdir())
    assert len(folders) == 2 and any("random-labels5-k3" in f for f in folders)
    rec_folder = next(p for p in (tmp_path / "digits").iterdir() if "random" in p.name)
    res = load_result(rec_folder)
    assert res.train_knn_distances.shape == (200, 3) and res.class_matrix().shape[0] == 90
    from separation.core.records import load_record

    assert "--random-labels 5 " in load_record(rec_folder).command() + " "
    with pytest.raises(SystemExit) as exc:  # argparse: usage line and exit 2
        compute.main(argv + ["--k", "0"])
    assert exc.value.code == 2 and "'0' must be >= 1" in capsys.readouterr().err


def test_load_records_gives_the_report_rows():
    from analysis.rendering import load_records

    fixtures = FIXTURES / "records"
    sep = load_records("separation", fixtures)
    assert len(sep) == 4 and set(sep.norm) == {"linf", "l2"}
    mnist = sep[(sep.dataset == "mnist") & (sep.norm == "linf")].iloc[0]
    assert mnist.train_min == pytest.approx(0.7373) and mnist.test_min == pytest.approx(0.8122)
    train = load_records("training", fixtures)
    assert sorted(train.run) == ["at", "natural", "natural-drop0.5", "trades-b6", "trades-b6-drop0.5"]
    assert train.set_index("run").loc["natural", "test_acc"] == pytest.approx(0.975)
    assert len(load_records("construct", fixtures)) == 1 and len(load_records("evaluate", fixtures)) == 1
    with pytest.raises(ValueError, match="unknown record kind"):
        load_records("nope", fixtures)


@pytest.mark.parametrize("kernel", [True, False])
@pytest.mark.parametrize("norm", ["linf", "l2", "l1"])
def test_k_beyond_the_database_is_padded_with_inf_and_minus_one(kernel, norm):
    """Fewer database points than k (or none): the missing neighbours are at distance inf with
    index -1, in the byte kernel and in the float64 brute force alike."""
    from separation.engines.knn import nearest_k

    q = np.array([[0, 0], [10, 20]], np.uint8)
    db = np.array([[3, 4], [10, 20]], np.uint8)
    d, i = nearest_k(q, db, norm=norm, k=3, kernel=kernel)
    empty_d, empty_i = nearest_k(q, db[:0], norm=norm, k=2, kernel=kernel)
    assert np.isposinf(empty_d).all() and (empty_i == -1).all() and empty_i.shape == (2, 2)
    want = pairwise_float64(q, db, norm)
    np.testing.assert_array_equal(i, [[0, 1, -1], [1, 0, -1]])
    np.testing.assert_allclose(d[:, :2], np.take_along_axis(want, i[:, :2], axis=1), rtol=1e-12)
    assert np.isposinf(d[:, 2]).all()
