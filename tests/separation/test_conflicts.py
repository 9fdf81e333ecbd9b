"""separation.conflict_pairs: the exact cross-class range search behind the robustness bounds.

Every engine and every block / buffer path is compared with a float64 brute force written here
(integers for bytes, compared with the exact radius in Python integers), ties at exactly the
radius included: ``"251/255"`` and ``Fraction(8, 255)`` are ties, the float ``251 / 255`` (the
decimal 0.984313725490196, below 251/255) is not."""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from separation import ConflictPairs, conflict_pairs, conflict_pairs_between
from separation.engines import CPUEngine, CUDAEngine, ReferenceEngine
from separation.engines.blocks import CPUBlocks
from separation.engines.conflicts import byte_limit, cpu_pairs, reported

NORMS = ("linf", "l2", "l1")


def exact(radius) -> Fraction:
    """The radius as the rational it spells, read here: text and Fractions as they are, a float as
    the decimal of its shortest repr (0.6 is 3/5)."""
    return Fraction(radius) if isinstance(radius, (str, Fraction)) else Fraction(repr(float(radius)))


def within(k, norm, radius) -> np.ndarray:
    """Integer byte distances ``k`` (l2: squared) with ``k / 255 <= R`` (l2 ``sqrt(k) / 255 <= R``),
    decided in Python integers: ``k q <= 255 p`` (l2 ``k q**2 <= (255 p)**2``) for ``R = p / q``."""
    if isinstance(radius, float) and radius == np.inf:
        return np.ones(np.shape(k), bool)
    r = exact(radius)
    k = np.asarray(k).astype(object)
    if norm == "l2":
        return np.asarray(k * r.denominator ** 2 <= (255 * r.numerator) ** 2, bool)
    return np.asarray(k * r.denominator <= 255 * r.numerator, bool)


def brute(xq, yq, xd, yd, norm, radius, same_set):
    """All cross-class pairs within ``radius``: integers for bytes (reported as k/255, sqrt(k)/255)
    compared exactly (:func:`within`), float64 differences otherwise, compared with the float
    nearest to the radius."""
    xq, xd = xq.reshape(len(xq), -1), xd.reshape(len(xd), -1)
    if xq.dtype == np.uint8:
        diff = np.abs(xq.astype(np.int64)[:, None, :] - xd.astype(np.int64)[None, :, :])
        k = diff.max(2) if norm == "linf" else diff.sum(2) if norm == "l1" else np.square(diff).sum(2)
        d = reported(k, norm)
        near = within(k, norm, radius)
    else:
        diff = np.abs(xq.astype(np.float64)[:, None, :] - xd.astype(np.float64)[None, :, :])
        d = diff.max(2) if norm == "linf" else diff.sum(2) if norm == "l1" else np.sqrt(np.square(diff).sum(2))
        near = d <= (radius if radius == np.inf else float(exact(radius)))
    ok = (yq[:, None] != yd[None, :]) & near
    if same_set:
        ok &= np.arange(len(xq))[:, None] < np.arange(len(xd))[None, :]
    i, j = np.nonzero(ok)
    return i, j, d[i, j]


def engines():
    return {"cpu": "cpu", "reference": "reference", "cpu-small-gemm": CPUEngine(blocks=CPUBlocks(gemm_rows=3)),
            "torch-on-cpu": CUDAEngine(device="cpu"), "reference-instance": ReferenceEngine()}


def _data(rng, kind, n=40, d=6):
    if kind == "bytes":
        return (rng.integers(0, 5, size=(n, d)) * 50).astype(np.uint8)
    return rng.integers(0, 9, size=(n, d)) / 8.0  # dyadic floats: sums are exact in any order


def _radii(x, y, norm):
    """Radii at a pair's float distance, one ulp below it, and around the bulk; for bytes also
    exact ties (``k/255``; l2 the decimals of 12 digits just above and below ``sqrt(k)/255``, and
    ``sqrt(k)/255`` itself where ``k`` is a square) and ``1e-12`` below them."""
    i, j, d = brute(x, y, x, y, norm, np.inf, True)
    ds = np.unique(d)
    picks = [0.0, ds[0], ds[len(ds) // 4], ds[len(ds) // 2], np.nextafter(ds[len(ds) // 4], 0), ds[-1]]
    out: list = [float(r) for r in picks]
    if x.dtype == np.uint8:
        ks = np.unique(np.rint((ds * 255) ** (2 if norm == "l2" else 1)).astype(np.int64))
        for k in (int(ks[0]), int(ks[len(ks) // 4]), int(ks[len(ks) // 2]), int(ks[-1])):
            if norm != "l2":
                ties = [Fraction(k, 255)]
            else:
                root, scale = math.isqrt(k * 10**24), 255 * 10**12
                ties = [Fraction(root + (root * root < k * 10**24), scale), Fraction(root, scale)]
                ties += [Fraction(math.isqrt(k), 255)] if math.isqrt(k) ** 2 == k else []
            out += [t for tie in ties for t in (tie, tie - Fraction(1, 10**12)) if t >= 0]
    return out


def _same(a, b):
    return all(np.array_equal(u, v) for u, v in zip(a, b))


@pytest.mark.parametrize("kind", ["bytes", "floats"])
@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("name", list(engines()))
def test_every_engine_equals_brute_force_ties_included(kind, norm, name, rng):
    x = _data(rng, kind)
    y = rng.integers(0, 3, len(x))
    for radius in _radii(x, y, norm):
        got = conflict_pairs(x, y, norm=norm, radius=radius, engine=engines()[name])
        want = brute(x, y, x, y, norm, radius, True)
        assert isinstance(got, ConflictPairs) and got.i.dtype == got.j.dtype == np.int64
        assert _same(got, want), (radius, len(got.i), len(want[0]))
        q = slice(5, 23)
        got2 = conflict_pairs_between(x[q], y[q], x, y, norm=norm, radius=radius, engine=engines()[name])
        assert _same(got2, brute(x[q], y[q], x, y, norm, radius, False))


def test_a_pair_at_exactly_the_radius_is_included_and_one_ulp_less_excludes_it():
    x = np.array([[0, 0], [3, 4], [10, 0]], np.uint8)  # l2 distance 5 grey levels between 0 and 1
    y = np.array([0, 1, 1])
    r = Fraction(5, 255)
    for engine in ("cpu", "reference", CUDAEngine(device="cpu")):
        for tie in (r, "5/255", "1/51"):
            i, j, d = conflict_pairs(x, y, norm="l2", radius=tie, engine=engine)
            assert list(zip(i, j)) == [(0, 1)] and d[0] == 5 / 255.0
        # the float 5/255 spells 0.0196078431372549, below 5/255: the balls do not meet
        assert repr(5 / 255) == "0.0196078431372549" and Fraction(repr(5 / 255)) < r
        for below in (5 / 255, np.nextafter(5 / 255, 0), r - Fraction(1, 10**15)):
            assert len(conflict_pairs(x, y, norm="l2", radius=below, engine=engine).i) == 0
        i, j, _ = conflict_pairs(x, y, norm="linf", radius=Fraction(4, 255), engine=engine)
        assert list(zip(i, j)) == [(0, 1)]


def _engines_all():
    return {**engines(), "torch-on-cpu-no-triton": CUDAEngine(device="cpu", use_triton=False)}


@pytest.mark.parametrize("name", list(_engines_all()))
def test_exact_byte_ties_251_255_8_255_and_decimal_0_6(name):
    """l-inf byte distance 251 is within ``251/255`` and not within the decimal just below it, nor
    within the float 251/255 (the decimal 0.984313725490196); l1 and l-inf distance 16 within
    ``16/255`` (2 x 8/255); byte distance 153 within the decimal 0.6 (153/255 = 3/5 exactly); l2
    squared distance 900 within ``30/255`` and not within 30/255 - 1e-12."""
    eng = _engines_all()[name]
    y = np.array([0, 1])
    pair = np.array([[0, 0], [251, 0]], np.uint8)
    for radius, n in (("251/255", 1), (Fraction(251, 255), 1), (Fraction(251, 255) - Fraction(1, 10**12), 0),
                      ("0.9843137254", 0), (251 / 255, 0), ("0.98431372549019608", 1)):
        assert len(conflict_pairs(pair, y, norm="linf", radius=radius, engine=eng).i) == n, radius
    assert Fraction(repr(251 / 255)) < Fraction(251, 255)  # the float's decimal is below the tie
    for norm, a in (("linf", [16, 0]), ("l1", [9, 7])):
        pair = np.array([[0, 0], a], np.uint8)
        for radius, n in ((2 * Fraction(8, 255), 1), ("16/255", 1), (Fraction(16, 255) - Fraction(1, 10**12), 0)):
            assert len(conflict_pairs(pair, y, norm=norm, radius=radius, engine=eng).i) == n, (norm, radius)
    pair = np.array([[0, 0], [153, 0]], np.uint8)
    for radius, n in ((0.6, 1), ("0.6", 1), ("0.5999999999", 0), (np.nextafter(0.6, 0), 0)):
        assert len(conflict_pairs(pair, y, norm="linf", radius=radius, engine=eng).i) == n, radius
    pair = np.array([[0, 0, 0], [18, 24, 0]], np.uint8)  # squared distance 324 + 576 = 900: sqrt 30
    for radius, n in ((Fraction(30, 255), 1), ("2/17", 1), (Fraction(30, 255) - Fraction(1, 10**12), 0),
                      (30 / 255, int(Fraction(repr(30 / 255)) >= Fraction(30, 255)))):
        got = conflict_pairs(pair, y, norm="l2", radius=radius, engine=eng)
        assert len(got.i) == n, radius
        assert n == 0 or got.d[0] == 30 / 255


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("name", list(engines()))
def test_a_pair_at_exactly_its_float64_distance_is_found_in_any_summation_order(norm, name):
    """Random (not dyadic) floats: an engine that sums the coordinates in another order than the
    float64 reference may land one ulp above a pair's distance; its candidate test must still keep
    the pair whose reference distance is exactly the radius."""
    rng = np.random.default_rng(11)
    x, y = rng.random((24, 37)), np.arange(24) % 2
    _, _, d = brute(x, y, x, y, norm, np.inf, True)
    for radius in rng.choice(np.unique(d), 12, replace=False):
        got = conflict_pairs(x, y, norm=norm, radius=float(radius), engine=engines()[name])
        assert _same(got, brute(x, y, x, y, norm, float(radius), True)), radius


@pytest.mark.parametrize("between", [False, True])
def test_the_progress_bar_counts_each_pair_comparison_once(monkeypatch, between):
    """The bar's total: each unordered pair of differently-labelled points once within one set,
    each (query, database) pair of different labels between two sets; the engine's progress
    reaches it. The bar is the toolkit's (separation.core.progress.progress_bar, tqdm.std)."""
    import tqdm.std

    totals, done = [], []

    class Bar(tqdm.std.tqdm):
        def __init__(self, *a, **kw):
            totals.append(kw["total"])
            super().__init__(*a, **dict(kw, disable=True))

        def update(self, n=1):
            done.append(n)

    monkeypatch.setattr(tqdm.std, "tqdm", Bar)
    x, y = np.zeros((7, 2), np.uint8), np.array([0, 0, 0, 1, 1, 2, 2])
    if between:
        conflict_pairs_between(x[:3], y[4:], x, y, radius=0.1, engine="reference", progress=True)
        assert totals == [sum(int((y != c).sum()) for c in y[4:])]  # 5 + 5 + 5
    else:
        conflict_pairs(x, y, radius=0.1, engine="reference", progress=True)
        assert totals == [3 * 2 + 3 * 2 + 2 * 2]
    assert sum(done) == totals[0]


def test_byte_limit_is_the_largest_integer_exactly_within_the_radius(rng):
    """The integer oracle: the largest ``k`` with ``k / 255 <= R`` (l2 ``sqrt(k) / 255 <= R``) in
    Python integers, for random floats, exact ties ``k / 255`` (l2 ``sqrt(k) / 255`` for squares),
    1e-12 below them, their floats and text."""
    for norm, top in (("linf", 255), ("l1", 255 * 3), ("l2", 255 * 255 * 3)):
        ks = np.arange(top + 1)
        rep = reported(ks, norm)
        radii = list(rng.uniform(0, float(rep[-1]) * 1.1, 40)) + [float(rep[7]), float(rep[-1]), 0.0]
        for k in rng.integers(0, top + 1, 30):
            root = math.isqrt(int(k))
            tie = Fraction(int(k), 255) if norm != "l2" else Fraction(root, 255)
            radii += [tie, tie - Fraction(1, 10**12), float(tie), str(tie), repr(float(tie))]
        for radius in radii:
            inside = np.flatnonzero(within(ks, norm, radius))
            assert byte_limit(radius, norm, 3) == (int(inside.max()) if len(inside) else -1), (norm, radius)
    assert byte_limit(Fraction(251, 255), "linf", 1) == 251 and byte_limit(251 / 255, "linf", 1) == 250
    assert byte_limit("0.6", "linf", 1) == byte_limit(0.6, "linf", 1) == 153
    assert byte_limit(Fraction(30, 255), "l2", 2) == 900
    assert byte_limit(Fraction(30, 255) - Fraction(1, 10**9), "l2", 2) == 899
    assert byte_limit(10, "l1", 3) == 765 and byte_limit(Fraction(1, 10**9), "l2", 3) == 0


@pytest.mark.parametrize("norm", ["linf", "l1"])
def test_kernel_buffers_and_chunks_do_not_change_the_result(norm, rng):
    x = _data(rng, "bytes", n=50, d=9)
    y = rng.integers(0, 4, len(x))
    radius = _radii(x, y, norm)[3]
    want = brute(x, y, x, y, norm, radius, True)
    for chunk, cap, qc in ((1, 1, 3), (2, 2, 7), (64, 1000, 4096)):
        got = conflict_pairs(x, y, norm=norm, radius=radius, engine="reference")
        assert _same(got, want)
        i, j, d = cpu_pairs(x.reshape(50, -1), y, x.reshape(50, -1), y, same_set=True, norm=norm, radius=radius,
                            query_chunk=qc, first_cap=cap, chunk=chunk)
        assert _same((i, j, d), want)


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 30), st.integers(1, 5), st.integers(0, 2**32 - 1), st.sampled_from(NORMS),
       st.floats(0, 1.2))
def test_property_cpu_equals_brute_force(n, d, seed, norm, frac):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, size=(n, d)).astype(np.uint8)
    y = rng.integers(0, 3, n)
    if np.unique(y).size < 2:
        y[0], y[-1] = 0, 1
    radius = frac * (1.0 if norm == "linf" else d ** (0.5 if norm == "l2" else 1.0))
    assert _same(conflict_pairs(x, y, norm=norm, radius=radius), brute(x, y, x, y, norm, radius, True))


def test_inputs_like_separation_torch_and_8bit_floats(rng):
    import torch

    x = _data(rng, "bytes", n=30, d=8).reshape(30, 2, 2, 2)
    y = rng.integers(0, 2, 30)
    ref = conflict_pairs(x, y, norm="linf", radius=0.5)
    assert _same(conflict_pairs(torch.from_numpy(x), torch.from_numpy(y), norm="linf", radius=0.5), ref)
    assert _same(conflict_pairs(x.astype(np.float32) / 255, y, norm="linf", radius=0.5), ref)


@pytest.mark.parametrize("norm", ["linf", "l2"])
@pytest.mark.parametrize("engine", ["reference", "cpu", "torch-on-cpu"])
def test_max_pairs_stops_with_a_memory_error(rng, engine, norm):
    """Every engine's pair search (the torch one on CPU too, l2 through the GEMM) stops past max_pairs."""
    x = _data(rng, "bytes", n=30)
    y = np.arange(30) % 2
    eng = CUDAEngine(device="cpu", use_triton=False) if engine == "torch-on-cpu" else engine
    radius = 3.0  # above every distance of 6 coordinates in [0, 1]: all 15 x 15 cross-class pairs
    with pytest.raises(MemoryError, match="max_pairs"):
        conflict_pairs(x, y, norm=norm, radius=radius, max_pairs=10, engine=eng)
    assert len(conflict_pairs(x, y, norm=norm, radius=radius, max_pairs=225, engine=eng).i) == 225


def test_bad_query_labels_are_named_in_the_error():
    x = np.zeros((4, 2), np.uint8)
    with pytest.raises(ValueError, match=r"^y_query has 3 labels but the data has 4 points"):
        conflict_pairs_between(x, np.array([0, 1, 0]), x, np.array([0, 1, 0, 1]), radius=0.1)


@pytest.mark.parametrize("call, match", [
    (lambda x, y: conflict_pairs(x, y, norm="linf", radius=-0.1), "finite number >= 0"),
    (lambda x, y: conflict_pairs(x, y, norm="linf", radius=float("nan")), "finite number >= 0"),
    (lambda x, y: conflict_pairs(x, np.zeros(len(y), int), norm="linf", radius=0.1), "two classes"),
    (lambda x, y: conflict_pairs(x, y[:-1], norm="linf", radius=0.1), "same length"),
    (lambda x, y: conflict_pairs(x, y, norm="l3", radius=0.1), "Unknown norm"),
    (lambda x, y: conflict_pairs_between(x, y, x[:, :3], y, norm="linf", radius=0.1), "features"),
    (lambda x, y: conflict_pairs_between(x, y, x[:0], y[:0], norm="linf", radius=0.1), "^x_db is empty"),
    (lambda x, y: conflict_pairs(x, y, norm="linf", radius=0.1, engine="nope"), "Unknown engine"),
])
def test_bad_input_is_a_clear_error(call, match, rng):
    x = _data(rng, "bytes", n=10)
    y = np.arange(10) % 2
    with pytest.raises(ValueError, match=match):
        call(x, y)


@pytest.mark.realdata
def test_mnist_subset_cpu_equals_reference(mnist):
    x, y = mnist.x_train[:600], mnist.y_train[:600]
    for norm, radius in (("linf", 0.995), ("l2", 5.5)):
        got = conflict_pairs(x, y, norm=norm, radius=radius)
        want = conflict_pairs(x, y, norm=norm, radius=radius, engine="reference")
        assert _same(got, want) and len(got.i) > 0
        r = float(got.d[len(got.d) // 2])  # a radius at exactly a pair's distance
        assert _same(conflict_pairs(x, y, norm=norm, radius=r), conflict_pairs(x, y, norm=norm, radius=r,
                                                                               engine="reference"))


def test_a_radius_that_is_not_a_number_is_named_with_its_value():
    x, y = np.zeros((4, 2), np.uint8), np.array([0, 1, 0, 1])
    for radius in (None, True, "0.1x", "1/0", [0.1]):
        with pytest.raises(TypeError, match=r"^radius must be a number \(in \[0, 1\] pixel units\) such as 0\.3 or "
                                            r"8/255, got "):
            conflict_pairs(x, y, norm="linf", radius=radius)
    x = np.array([[0, 0], [26, 0], [25, 1]], np.uint8)
    for radius in ("0.1", Fraction(1, 10), 0.1):  # 0.1 * 255 = 25.5: byte distance 25 is within, 26 is not
        assert list(zip(*conflict_pairs(x, np.array([0, 1, 1]), norm="linf", radius=radius)[:2])) == [(0, 2)]


def test_bad_queries_are_named_x_query_in_the_error():
    x, y = np.zeros((4, 2), np.uint8), np.array([0, 1, 0, 1])
    with pytest.raises(ValueError, match="^x_query is empty"):
        conflict_pairs_between(x[:0], y[:0], x, y, radius=0.1)

