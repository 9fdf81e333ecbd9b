"""Every engine must return exactly what the float64 brute force returns (distances and indices)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from separation import compute_separation, nearest_neighbors
from separation.engines import ENGINES, available_engines, get_engine
from separation.engines.reference import ReferenceEngine, pairwise_float64

# every engine that runs here (cuda only on a GPU machine), each against the float64 reference
CPU_ENGINES = [e for e in ("cpu", "faiss", "cuda") if e in available_engines()]
NORMS = ["linf", "l2", "l1"]


def _reference(x, y, xt, yt, norm):
    return compute_separation(x, y, xt, yt, norm=norm, engine="reference")


def assert_same(res, ref, norm):
    """l-inf / l1 on bytes: bit-exact; l2: 1e-6 relative (documented); indices always equal."""
    for a, b in ((res.train_distances, ref.train_distances), (res.test_distances, ref.test_distances)):
        if norm == "l2":
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=0)
        else:
            np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(res.train_neighbors, ref.train_neighbors)
    np.testing.assert_array_equal(res.test_neighbors, ref.test_neighbors)


@st.composite
def labelled_arrays(draw, float_data=False):
    n = draw(st.integers(2, 70))
    m = draw(st.integers(1, 30))
    d = draw(st.integers(1, 40))
    k = draw(st.integers(2, 5))
    levels = draw(st.sampled_from([2, 3, 256]))  # few levels: many ties and duplicates
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    x = rng.integers(0, levels, size=(n, d)).astype(np.uint8)
    y = rng.integers(0, k, size=n)
    y[:2] = [0, 1]  # at least two classes
    xt = rng.integers(0, levels, size=(m, d)).astype(np.uint8)
    yt = rng.integers(0, k, size=m)
    if m > 1 and draw(st.booleans()):  # test points identical to training points
        xt[0] = x[0]
        xt[-1] = x[-1]
    if draw(st.booleans()):  # a cross-class exact duplicate
        x[-1] = x[0]
        y[-1] = (y[0] + 1) % k
    if float_data:
        x = x.astype(np.float64) / 255.0 * draw(st.floats(0.1, 1.0))
        xt = xt.astype(np.float64) / 300.0
    return x, y, xt, yt


@pytest.mark.parametrize("engine", CPU_ENGINES)
@pytest.mark.parametrize("norm", NORMS)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=labelled_arrays())
def test_engine_matches_reference_uint8(engine, norm, data):
    x, y, xt, yt = data
    assert_same(compute_separation(x, y, xt, yt, norm=norm, engine=engine), _reference(x, y, xt, yt, norm), norm)


@pytest.mark.parametrize("engine", CPU_ENGINES)
@pytest.mark.parametrize("norm", NORMS)
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=labelled_arrays(float_data=True))
def test_engine_matches_reference_float(engine, norm, data):
    x, y, xt, yt = data
    res = compute_separation(x, y, xt, yt, norm=norm, engine=engine)
    ref = _reference(x, y, xt, yt, norm)
    rtol = 0 if norm == "linf" else 1e-9 if norm == "l1" else 1e-6
    for q, yq, d, nbr, rd in ((x, y, res.train_distances, res.train_neighbors, ref.train_distances),
                              (xt, yt, res.test_distances, res.test_neighbors, ref.test_distances)):
        np.testing.assert_allclose(d, rd, rtol=rtol, atol=0)
        # float sums of exactly tied pairs may round apart in another summation order, so the
        # neighbour must be *a* nearest other-class point: right label, distance equal to the min
        assert np.all(y[nbr] != yq)
        own = np.array([pairwise_float64(q[i:i + 1], x[j:j + 1], norm)[0, 0] for i, j in enumerate(nbr)])
        np.testing.assert_allclose(own, rd, rtol=max(rtol, 1e-12), atol=0)


@pytest.mark.parametrize("engine", CPU_ENGINES)
@pytest.mark.parametrize("norm", NORMS)
def test_nearest_matches_reference(engine, norm, rng):
    q = rng.integers(0, 3, size=(57, 19)).astype(np.uint8)
    db = rng.integers(0, 3, size=(91, 19)).astype(np.uint8)
    d, i = nearest_neighbors(q, db, norm=norm, engine=engine)
    rd, ri = nearest_neighbors(q, db, norm=norm, engine="reference")
    np.testing.assert_array_equal(i, ri)
    np.testing.assert_allclose(d, rd, rtol=1e-12 if norm == "l2" else 0)


@pytest.mark.parametrize("engine", CPU_ENGINES)
def test_larger_blocks_and_real_sized_features(engine, rng):
    """Several kernel/GEMM blocks, odd sizes, 784 features (MNIST-like), all norms."""
    x = rng.integers(0, 256, size=(700, 784)).astype(np.uint8)
    x[rng.random(x.shape) < 0.7] = 0  # sparse like digits
    y = rng.integers(0, 10, size=700)
    xt, yt = x[:133].copy(), rng.integers(0, 10, size=133)
    for norm in NORMS:
        assert_same(compute_separation(x, y, xt, yt, norm=norm, engine=engine),
                    _reference(x, y, xt, yt, norm), norm)


@pytest.mark.parametrize("engine", CPU_ENGINES)
def test_classes_of_one_point_and_all_ties(engine):
    x = np.zeros((5, 3), dtype=np.uint8)  # every distance is 0: ties everywhere
    y = np.array([0, 1, 2, 3, 4])
    res = compute_separation(x, y, x, y, norm="linf", engine=engine)
    np.testing.assert_array_equal(res.train_distances, 0)
    np.testing.assert_array_equal(res.train_neighbors, [1, 0, 0, 0, 0])  # smallest other-class index
    np.testing.assert_array_equal(res.test_neighbors, [1, 0, 0, 0, 0])
    assert len(res.test_train_duplicates) == 5


def test_reference_engine_is_plain_float64():
    a = np.array([[0, 10], [255, 0]], dtype=np.uint8)
    d, i = ReferenceEngine().nearest(a.astype(np.float64), a.astype(np.float64)[::-1], norm="linf")
    np.testing.assert_array_equal(d, [0, 0])
    np.testing.assert_array_equal(i, [1, 0])


def test_engine_registry_and_errors():
    assert {"reference", "cpu", "faiss", "cuda"} <= set(ENGINES)
    assert "cpu" in available_engines()
    with pytest.raises(ValueError, match="Unknown engine 'nope'"):
        get_engine("nope")
    if "cuda" not in available_engines():
        with pytest.raises(RuntimeError, match="not available"):
            get_engine("cuda")
    assert get_engine("auto").name in available_engines()
