"""The pooled l2 search on bytes (``CPUEngine(l2="pooled")``, the default): the learned feature
groups, the pooled coordinates, the exact squared distance at its chunk switch, the bound at its
ties and at float32's limit, the switch to the integer GEMM where the bound does not pay, and the
answers equal to the float64 reference on every entry point and block size."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from separation.engines import CPUEngine, ReferenceEngine, _pooled_l2
from separation.engines.blocks import CPUBlocks
from separation.engines.conflicts import byte_limit, reference_pairs

from helpers.engine_variants import blobs, near_tie_l2, tied


def same(got, want):
    assert len(got) == len(want)
    for u, v in zip(got, want):
        assert np.array_equal(u, v), (u, v)


def all_entry_points(eng, xq, yq, xd, yd, ref=ReferenceEngine()):
    """nearest, test--train, train--train, a block pair and the range search, each equal to the
    reference."""
    same(eng.nearest(xq, xd, norm="l2"), ref.nearest(xq, xd, norm="l2"))
    same(eng.cross_class(xq, yq, xd, yd, norm="l2"), ref.cross_class(xq, yq, xd, yd, norm="l2"))
    same(eng.cross_class(xd, yd, xd, yd, norm="l2", same_set=True),
         ref.cross_class(xd, yd, xd, yd, norm="l2", same_set=True))
    same(eng.block_pair(xq, yq, xd, yd, norm="l2"), ref.block_pair(xq, yq, xd, yd, norm="l2"))
    range_at_a_tie(eng, xq, yq, xd, yd)


def radius_of(k: int) -> str:
    """An exact radius (pixel units) whose squared byte limit ``floor((255 R)^2)`` is ``k``."""
    a = math.isqrt(k * 10**12)
    return f"{a + (a * a != k * 10**12)}/{255 * 10**6}"


def range_at_a_tie(eng, xq, yq, xd, yd):
    """The range search (test--train and train--train) at a radius equal to the exact distance of
    query 0's nearest other-class point -- a pair at the radius, which is within -- and one squared
    grey level below, equal to the reference's pairs."""
    other = xd[yd != yq[0]].astype(np.int64)
    k = int(((other - xq[0]) ** 2).sum(axis=1).min()) if len(other) else 0
    for limit in (k, k - 1):
        if limit < 0:
            continue
        radius = radius_of(limit)
        assert byte_limit(radius, "l2", xd.shape[1]) == min(limit, 255 * 255 * xd.shape[1])
        same(eng.range_search(xq, yq, xd, yd, norm="l2", radius=radius),
             reference_pairs(xq, yq, xd, yd, same_set=False, norm="l2", radius=radius))
        same(eng.range_search(xd, yd, xd, yd, norm="l2", radius=radius, same_set=True),
             reference_pairs(xd, yd, xd, yd, same_set=True, norm="l2", radius=radius))


def test_feature_groups_partition_the_features_and_pair_what_differs_least():
    """Every feature in exactly one group of at most GROUP; features that are copies of each other
    (their difference never varies) end up together; the groups are the same on every call."""
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (300, 25)).astype(np.uint8)
    x = np.repeat(base, _pooled_l2.GROUP, axis=1)[:, rng.permutation(25 * _pooled_l2.GROUP)]
    groups = _pooled_l2.feature_groups(x)
    assert groups.shape == (25, _pooled_l2.GROUP)
    assert np.array_equal(np.sort(groups.ravel()), np.arange(x.shape[1]))
    for g in groups:  # the four copies of one base feature
        assert (x[:, g] == x[:, g[:1]]).all()
    assert np.array_equal(groups, _pooled_l2.feature_groups(x))
    odd = _pooled_l2.feature_groups(rng.integers(0, 256, (50, 7)).astype(np.uint8))
    assert np.array_equal(np.sort(odd[odd >= 0]), np.arange(7)) and (odd >= 0).sum(axis=1).max() <= _pooled_l2.GROUP
    assert np.array_equal(_pooled_l2.exact_layout(odd), odd[odd >= 0])


@pytest.mark.parametrize("d", [_pooled_l2.WINDOW, _pooled_l2.WINDOW + 1, 2 * _pooled_l2.WINDOW + 3])
def test_a_pixel_is_paired_with_its_copy_up_to_window_places_away(d):
    """The pairing looks WINDOW features ahead: copies WINDOW apart are paired (d = WINDOW + 1 is
    the first size where the first and the last feature are that far apart)."""
    rng = np.random.default_rng(d)
    x = rng.integers(0, 256, (200, d)).astype(np.uint8)
    if d > _pooled_l2.WINDOW:
        x[:, _pooled_l2.WINDOW] = x[:, 0]
        groups = _pooled_l2.feature_groups(x)
        home = [g for g in groups if 0 in g][0]
        assert _pooled_l2.WINDOW in home
    groups = _pooled_l2.feature_groups(x)
    assert np.array_equal(np.sort(groups[groups >= 0]), np.arange(d))


def test_pooled_coordinates_are_the_group_sums_shifted():
    """Each coordinate is its group's sum less 128 * GROUP: exact integers in float32, at the
    extremes (all 0, all 255) included, for a group smaller than GROUP as well."""
    x = np.array([[0] * 7, [255] * 7, list(range(7))], dtype=np.uint8)
    groups = np.array([[0, 1, 2, 3], [4, 5, 6, -1]])
    got = _pooled_l2.pooled(x, groups)
    want = np.stack([x[:, :4].sum(1, dtype=np.int64), x[:, 4:].sum(1, dtype=np.int64)], axis=1) - 128 * _pooled_l2.GROUP
    assert got.dtype == np.float32 and np.array_equal(got, want.astype(np.float32))


@pytest.mark.parametrize("second, kept", [(0, 1), (1, 1), (40, 2), (None, 2)])
def test_the_bound_keeps_the_groups_that_hold_its_share_of_the_spread(second, kept):
    """Two groups in order of decreasing spread: the second is dropped where its sums hardly vary
    (never, or by one grey level: far below 1 - SPREAD of the total), kept where they vary more;
    where nothing varies at all (None: constant data) every group is kept."""
    rng = np.random.default_rng(0)
    groups = np.array([[0, 1, 2, 3], [4, 5, 6, 7]])
    x = np.zeros((200, 8), dtype=np.uint8)
    if second is not None:
        x[:, :4] = rng.integers(0, 256, (200, 4))
        x[:, 4] = rng.integers(0, second + 1, 200)
    assert _pooled_l2.bound_groups(x, groups) == kept


def grouped(x):
    """Every feature four times in a row, plus (or, near 255, less) a fixed offset per copy: two
    points then differ by the same amount across a group, so the pooled bound equals the squared
    distance; and the group sums are odd, so float32 GEMMs of many groups round."""
    off = np.tile([0, 1, 2, 4], x.shape[1])
    out = np.repeat(x.astype(np.int64), _pooled_l2.GROUP, axis=1)
    return (out + off if out.max() + off.max() <= 255 else out - off).astype(np.uint8)


@pytest.mark.parametrize("precision", ["highest", "medium"])
def test_ties_at_the_bound_are_computed_and_go_to_the_smaller_index(precision):
    """Bounds equal to the exact squared distances (see :func:`grouped`) and many ties. A pair
    whose bound equals the best so far must still be computed (ties go to the smaller index), on
    every entry point, one row per block and many; with float32 GEMMs allowed to round (matmul
    precision "medium") the pooled GEMM runs in float64, with no rounding margin at all."""
    rng = np.random.default_rng(1)
    x, y = tied(rng, 40, 6, 3, values=3)
    xq, yq = tied(rng, 17, 6, 3, values=3)
    x, xq = grouped(x), grouped(xq)
    before = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision(precision)
    try:
        for rows in (None, 1, 5):
            all_entry_points(CPUEngine(blocks=CPUBlocks(gemm_rows=rows)), xq, yq, x, y)
    finally:
        torch.set_float32_matmul_precision(before)


def test_near_ties_beyond_float32_need_the_rounding_bound():
    """Two candidates per query whose squared distances differ by 4 while the pooled squared
    norms are ~2e8, where float32's GEMM is off by hundreds: with the bound tight (see
    :func:`grouped`), only the rigorous rounding bound keeps the nearer one from being ruled out."""
    q, db = near_tie_l2(24, d=768, seed=2)
    q, db = grouped(q), grouped(db)
    yq, yd = np.zeros(len(q), int), 1 + np.arange(len(db)) % 2
    for rows in (None, 5):
        all_entry_points(CPUEngine(blocks=CPUBlocks(gemm_rows=rows)), q, yq, db, yd)


def test_float32_gemms_allowed_to_round_give_way_to_float64():
    """With torch's float32 matmul precision below "highest", the pooled GEMM runs in float64
    (exact on these integers): still equal to the reference at float32's limit."""
    q, db = near_tie_l2(8, d=512, seed=4)
    q, db = grouped(q), grouped(db)
    before = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("medium")
    try:
        all_entry_points(CPUEngine(), q, np.zeros(len(q), int), db, 1 + np.arange(len(db)) % 2)
    finally:
        torch.set_float32_matmul_precision(before)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 30), m=st.integers(1, 30), d=st.integers(1, 70),
       values=st.sampled_from([2, 3, 256]), rows=st.sampled_from([None, 1, 3]))
def test_equal_to_the_reference_on_random_bytes(seed, n, m, d, values, rows):
    rng = np.random.default_rng(seed)
    xq, xd = (rng.integers(0, values, (k, d)).astype(np.uint8) for k in (n, m))
    yq, yd = rng.integers(0, 3, n), rng.integers(0, 3, m)
    all_entry_points(CPUEngine(blocks=CPUBlocks(gemm_rows=rows)), xq, yq, xd, yd)


def test_the_bound_rules_out_most_pairs_on_images_and_says_so():
    """On smooth images (random blobs, as pixels of neighbouring places agree) most pairs are
    ruled out by the bound: the engine's ``pooled_pairs`` counts every cross-class pair searched
    and far fewer computed exactly; the answer equals the integer GEMM's, which computes all."""
    x, y = blobs(7)
    eng = CPUEngine()
    got = eng.cross_class(x, y, x, y, norm="l2", same_set=True)
    same(got, CPUEngine(l2="int8").cross_class(x, y, x, y, norm="l2", same_set=True))
    pairs = int(sum((y[:, None] != y[None, :]).ravel())) // 2
    assert eng.pooled_pairs["pairs"] == pairs
    assert 0 < eng.pooled_pairs["exact"] < 0.3 * pairs, eng.pooled_pairs
    # the range search within the median nearest distance (stored units: bytes): its pairs, most others ruled out
    radius = float(np.median(got[0])) / 255
    eng = CPUEngine()
    found = eng.range_search(x, y, x, y, norm="l2", radius=radius, same_set=True)
    same(found, CPUEngine(l2="int8").range_search(x, y, x, y, norm="l2", radius=radius, same_set=True))
    assert eng.pooled_pairs["pairs"] == pairs and len(found[0]) <= eng.pooled_pairs["exact"] < 0.3 * pairs


def test_pruning_gives_way_at_its_limits():
    """:class:`Pruning` stays on up to MAX_EXACT of the pairs computed exactly, and until MIN_PAIRS
    pairs have been searched; one pair more in either, after MIN_PAIRS, turns it off for good."""
    p = _pooled_l2.Pruning()
    p.add(_pooled_l2.MIN_PAIRS - 1, _pooled_l2.MIN_PAIRS - 1)  # every pair exact, but too few to judge
    assert p.active
    p = _pooled_l2.Pruning()
    n = _pooled_l2.MIN_PAIRS
    p.add(n, int(_pooled_l2.MAX_EXACT * n))
    assert p.active
    p.add(0, 1)
    assert not p.active
    p.add(n, 0)
    assert not p.active


def test_where_the_bound_does_not_pay_the_search_goes_on_with_the_integer_gemm(monkeypatch):
    """Random bytes (no image structure): the bound rules out little, so after MIN_PAIRS pairs
    (here one small block) the rest of the search runs on the integer GEMM, every pair of it
    counted as computed; the answer is the reference's."""
    monkeypatch.setattr(_pooled_l2, "MIN_PAIRS", 25)
    rng = np.random.default_rng(3)
    x, y = rng.integers(0, 256, (60, 32)).astype(np.uint8), rng.integers(0, 3, 60)
    eng = CPUEngine(blocks=CPUBlocks(gemm_rows=5))
    same(eng.cross_class(x, y, x, y, norm="l2", same_set=True),
         ReferenceEngine().cross_class(x, y, x, y, norm="l2", same_set=True))
    pairs = int(sum((y[:, None] != y[None, :]).ravel())) // 2
    assert eng.pooled_pairs["pairs"] == pairs
    assert eng.pooled_pairs["exact"] > (1 - 25 / pairs - 0.2) * pairs  # nearly all: the GEMM's included


@pytest.mark.parametrize("search", ["nearest", "range"])
def test_which_l2_path_runs(search):
    """``l2="pooled"`` (default) on bytes runs the pooled search, nearest neighbours and range
    search alike (its pairs counted); floats and ``l2="int8"`` do not (their counts stay at zero)."""
    rng = np.random.default_rng(5)
    x, y = rng.integers(0, 256, (20, 8)).astype(np.uint8), np.arange(20) % 2
    for eng, data, counted in ((CPUEngine(), x, True), (CPUEngine(l2="int8"), x, False),
                               (CPUEngine(), x / 255.0, False)):
        if search == "nearest":
            eng.cross_class(data, y, data, y, norm="l2", same_set=True)
        else:
            eng.range_search(data, y, data, y, norm="l2", radius=1, same_set=True)
        assert (eng.pooled_pairs["pairs"] > 0) == counted


@pytest.mark.parametrize("precision", ["highest", "medium"])
def test_the_float32_recheck_gemm_is_ieee_float32_or_float64(precision):
    """Every rounding bound assumes IEEE float32 GEMMs; with torch's matmul precision below
    "highest" the float32 recheck path's GEMM (``_approx_sq``) runs in float64 instead. The data
    (odd integers below 4096, 3072 features) make a float32 GEMM round, so the two differ where they
    should."""
    from separation.engines import _gemm_rounding

    rng = np.random.default_rng(11)
    q, d = (torch.from_numpy(rng.integers(0, 2048, (6, 3072)) * 2 + 1).float() for _ in range(2))
    qn, dn = q.double().square().sum(1), d.double().square().sum(1)
    wide = (q.double() @ d.double().T).float().mul_(-2.0).add_(qn.float()[:, None]).add_(dn.float()[None, :])
    before = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision(precision)
    try:
        assert _gemm_rounding.ieee_float32() == (precision == "highest")
        got = _gemm_rounding._approx_sq(q, d, qn, dn)
    finally:
        torch.set_float32_matmul_precision(before)
    assert torch.equal(got, wide) == (precision == "medium")
