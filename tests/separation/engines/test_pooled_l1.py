"""The pooled l1 search on bytes (``CPUEngine(l1="pooled")``, the default): the sums of absolute
and squared differences (vpsadbw / vpmaddwd and the portable forms) at their chunk and early-exit
switches and at the largest sums, the byte codes and their bound at its limits, and the answers -- nearest neighbours
and range search -- equal to the float64 reference on every entry point and block size."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numba import njit

from separation.engines import CPUEngine, ReferenceEngine, _pooled_l1, sad
from separation.engines.blocks import CPUBlocks

from helpers.engine_variants import blobs, tied


@njit
def _sads(a, b, start, n):
    return sad.sad(a, b, start, n), sad.sad_portable(a, b, start, n)


@njit
def _ssds(a, b, start, n):
    return sad.ssd(a, b, start, n), sad.ssd_portable(a, b, start, n)


@njit
def _until(a, b, limit):
    return sad.l1_until(a, b, limit), sad.l2_until(a, b, limit)


def l1(a, b):
    return int(np.abs(a.astype(np.int64) - b.astype(np.int64)).sum())


def sq(a, b):
    return int(((a.astype(np.int64) - b.astype(np.int64)) ** 2).sum())


def same(got, want):
    assert len(got) == len(want)
    for u, v in zip(got, want):
        assert np.array_equal(u, v), (u, v)


@pytest.mark.parametrize("chunks", [1, 2, 5])
def test_both_forms_of_each_sum_are_exact_over_their_chunks(chunks):
    """``sad`` / ``ssd`` (vpsadbw / vpmaddwd where the CPU has AVX2) and their portable forms sum
    exactly the chunks asked for, from the chunk asked for, at the largest byte differences too
    (either sign)."""
    rng = np.random.default_rng(chunks)
    a, b = (rng.integers(0, 256, (chunks + 2) * sad.LANES).astype(np.uint8) for _ in range(2))
    a[: sad.LANES // 2], b[: sad.LANES // 2] = 255, 0  # a whole chunk of the largest differences
    a[sad.LANES // 2: sad.LANES], b[sad.LANES // 2: sad.LANES] = 0, 255
    for start in (0, 1):
        part = slice(start * sad.LANES, (start + chunks) * sad.LANES)
        assert _sads(a, b, start, chunks) == (l1(a[part], b[part]),) * 2
        assert _ssds(a, b, start, chunks) == (sq(a[part], b[part]),) * 2
    assert _sads(a, b, 0, 0) == _ssds(a, b, 0, 0) == (0, 0)


@pytest.mark.slow
def test_sums_past_32_bits_stay_exact():
    """Rows long enough that their l1 distance passes 2**32 (every byte 255 against 0); ssd at
    MAX_SSD_CHUNKS chunks, its 32-bit lanes' limit, and l2_until over rows far longer (the sum
    of its calls is int64)."""
    n = (1 << 32) // (255 * sad.LANES) + 1
    a, b = np.full(n * sad.LANES, 255, dtype=np.uint8), np.zeros(n * sad.LANES, dtype=np.uint8)
    want = 255 * n * sad.LANES
    assert want > 1 << 32
    assert _sads(a, b, 0, n) == (want, want)
    m = sad.MAX_SSD_CHUNKS
    assert _ssds(a, b, 0, m) == (m * sad.LANES * 255 ** 2,) * 2
    assert _until(a, b, 1 << 62)[1] == n * sad.LANES * 255 ** 2 > 1 << 32


@pytest.mark.parametrize("chunks", [1, sad.CHECK_CHUNKS - 1, sad.CHECK_CHUNKS, sad.CHECK_CHUNKS + 1])
def test_the_early_exit_sums_are_exact_up_to_their_limit_and_stop_past_it(chunks):
    """Rows shorter than CHECK_CHUNKS chunks (the remainder only), of CHECK_CHUNKS (one check) and
    one more (a check, then the remainder): the exact distance at a limit equal to it, a partial
    sum above the limit just below it; a limit passed within the first stretch stops there."""
    rng = np.random.default_rng(chunks)
    a, b = (rng.integers(0, 256, chunks * sad.LANES).astype(np.uint8) for _ in range(2))
    for k, dist in enumerate((l1, sq)):
        want = dist(a, b)
        assert _until(a, b, want)[k] == want
        assert _until(a, b, want - 1)[k] > want - 1
        first = dist(a[: sad.CHECK_CHUNKS * sad.LANES], b[: sad.CHECK_CHUNKS * sad.LANES])
        assert _until(a, b, first - 1)[k] == first


@pytest.mark.parametrize("d, width", [(0, 32), (1, 32), (32, 32), (33, 64)])
def test_padded_rows_fill_whole_chunks_with_zeros(d, width):
    x = np.arange(3 * d, dtype=np.uint8).reshape(3, d)
    p = sad.padded(x)
    assert p.shape == (3, width) and p.flags.c_contiguous
    assert np.array_equal(p[:, :d], x) and not p[:, d:].any()


@pytest.mark.parametrize("n_groups, used", [(31, 31), (32, 32), (33, 32), (63, 32), (64, 64)])
def test_codes_hold_whole_chunks_of_groups_and_their_slack(n_groups, used):
    """Fewer than LANES groups: all of them, zero-padded to a chunk; else the largest multiple of
    LANES; each code the group's sum shifted right by SHIFT; the slack (2^SHIFT - 1) per group."""
    rng = np.random.default_rng(n_groups)
    x = rng.integers(0, 256, (40, n_groups * _pooled_l1.GROUP)).astype(np.uint8)
    codes = _pooled_l1.Codes(x)
    assert len(codes.groups) == n_groups and codes.used == used
    assert codes.slack == ((1 << _pooled_l1.SHIFT) - 1) * used
    c = codes.codes(x)
    assert c.shape == (40, max(32, used))
    sums = np.stack([x[:, g[g >= 0]].astype(np.int64).sum(axis=1) for g in codes.groups[:used]], axis=1)
    assert np.array_equal(c[:, :used], sums >> _pooled_l1.SHIFT) and not c[:, used:].any()
    rows = codes.rows(x)
    assert rows.shape[1] % sad.LANES == 0 and l1(rows[0], rows[1]) == l1(x[0], x[1])


def test_the_bound_holds_at_its_limits():
    """Group sums that differ by a whole multiple of 2^SHIFT in the codes but by the least the
    remainders allow (one sum ``2^SHIFT q + 2^SHIFT - 1``, the other ``2^SHIFT (q + 1)``): the bound
    ``2^SHIFT sad - slack`` equals the exact distance, never more; random pairs stay under it."""
    step = 1 << _pooled_l1.SHIFT
    codes = _pooled_l1.Codes(np.random.default_rng(0).integers(0, 256, (60, 32 * _pooled_l1.GROUP)).astype(np.uint8))
    x = np.zeros((2, 32 * _pooled_l1.GROUP), dtype=np.uint8)
    first = codes.groups[:, 0]
    x[0, first] = step - 1  # every group's sum one below the next code
    x[1, first] = step
    c = codes.codes(x)
    bound = step * l1(c[0], c[1]) - codes.slack
    assert bound == l1(x[0], x[1]) == 32
    rng = np.random.default_rng(1)
    r = rng.integers(0, 256, (50, x.shape[1])).astype(np.uint8)
    rc = codes.codes(r)
    for i in range(0, 50, 2):
        assert step * l1(rc[i], rc[i + 1]) - codes.slack <= l1(r[i], r[i + 1])


def all_entry_points(eng, xq, yq, xd, yd, radius, ref=ReferenceEngine()):
    """nearest, test--train, train--train, a block pair and range search, each equal to the reference."""
    same(eng.nearest(xq, xd, norm="l1"), ref.nearest(xq, xd, norm="l1"))
    same(eng.cross_class(xq, yq, xd, yd, norm="l1"), ref.cross_class(xq, yq, xd, yd, norm="l1"))
    same(eng.cross_class(xd, yd, xd, yd, norm="l1", same_set=True),
         ref.cross_class(xd, yd, xd, yd, norm="l1", same_set=True))
    same(eng.block_pair(xq, yq, xd, yd, norm="l1"), ref.block_pair(xq, yq, xd, yd, norm="l1"))
    for q, y, same_set in ((xq, yq, False), (xd, yd, True)):
        same(eng.range_search(q, y, xd, yd, norm="l1", radius=radius, same_set=same_set),
             ref.range_search(q, y, xd, yd, norm="l1", radius=radius, same_set=same_set))


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 30), m=st.integers(1, 30), d=st.integers(1, 300),
       values=st.sampled_from([2, 3, 256]), rows=st.sampled_from([None, 1, 3]), radius=st.sampled_from([0.0, 2.0, 50.0]))
def test_equal_to_the_reference_on_random_bytes(seed, n, m, d, values, rows, radius):
    rng = np.random.default_rng(seed)
    xq, xd = (rng.integers(0, values, (k, d)).astype(np.uint8) for k in (n, m))
    yq, yd = rng.integers(0, 3, n), rng.integers(0, 3, m)
    all_entry_points(CPUEngine(blocks=CPUBlocks(gemm_rows=rows)), xq, yq, xd, yd, radius)


def test_ties_go_to_the_smaller_index_and_radius_ties_are_in():
    """Byte-identical points across classes and many equal distances: the nearest is the smaller
    index; a pair exactly at the radius (an integer distance over 255) is within it."""
    rng = np.random.default_rng(11)
    x, y = tied(rng, 60, 40, 3)
    all_entry_points(CPUEngine(blocks=CPUBlocks(gemm_rows=4)), x[:20], y[:20], x, y, radius=3 / 255)


def test_the_bound_rules_out_most_pairs_on_images_and_says_so():
    """On smooth images (random blobs) most pairs are ruled out by the bound: ``pooled_pairs``
    counts every cross-class pair searched and far fewer computed exactly; the answer equals the
    tiled kernel's, which computes all."""
    x, y = blobs(7)
    eng = CPUEngine()
    got = eng.cross_class(x, y, x, y, norm="l1", same_set=True)
    same(got, CPUEngine(l1="tiled").cross_class(x, y, x, y, norm="l1", same_set=True))
    pairs = int(sum((y[:, None] != y[None, :]).ravel())) // 2
    assert eng.pooled_pairs["pairs"] == pairs
    assert 0 < eng.pooled_pairs["exact"] < 0.3 * pairs, eng.pooled_pairs
    # the range search within the median nearest distance (stored units: bytes): its pairs, most others ruled out
    radius = float(np.median(got[0])) / 255
    eng = CPUEngine()
    found = eng.range_search(x, y, x, y, norm="l1", radius=radius, same_set=True)
    same(found, CPUEngine(l1="tiled").range_search(x, y, x, y, norm="l1", radius=radius, same_set=True))
    assert eng.pooled_pairs["pairs"] == pairs and len(found[0]) <= eng.pooled_pairs["exact"] < 0.3 * pairs


def test_which_l1_path_runs():
    """``l1="pooled"`` (default) on bytes runs the pooled search (its pairs counted); floats,
    ``l1="bound"`` and ``l1="tiled"`` do not; every one gives the reference's answer."""
    rng = np.random.default_rng(5)
    x, y = rng.integers(0, 256, (20, 8)).astype(np.uint8), np.arange(20) % 2
    for eng, data, counted in ((CPUEngine(), x, True), (CPUEngine(l1="bound"), x, False),
                               (CPUEngine(l1="tiled"), x, False), (CPUEngine(), x / 256.0, False)):
        same(eng.cross_class(data, y, data, y, norm="l1", same_set=True),
             ReferenceEngine().cross_class(data, y, data, y, norm="l1", same_set=True))
        assert (eng.pooled_pairs["pairs"] > 0) == counted
        before = eng.pooled_pairs["pairs"]  # the range search takes the same path
        eng.range_search(data, y, data, y, norm="l1", radius=1, same_set=True)
        assert (eng.pooled_pairs["pairs"] > before) == counted


@pytest.mark.parametrize("columns", [False, True])
def test_a_pair_exactly_at_its_bound_is_computed_and_wins_its_tie(columns):
    """A query ``a``, a point ``far`` whose bound is exactly its distance (every used group's sum
    one above ``a``'s, across a code step) and a point ``near`` at the same distance with a much
    smaller bound (one feature 32 grey levels away): the row starts from ``near`` (its smallest
    bound), so ``far`` -- the smaller index -- sits exactly at the limit and must still be
    computed to win the tie; with column bests too (``columns``), every side is searched. The range
    search at a limit equal to the distance keeps both pairs, one below it neither."""
    import numba

    step = 1 << _pooled_l1.SHIFT
    codes = _pooled_l1.Codes(np.random.default_rng(0).integers(0, 256, (60, 32 * _pooled_l1.GROUP)).astype(np.uint8))
    first = codes.groups[:, 0]
    a, far, near = (np.zeros(32 * _pooled_l1.GROUP, dtype=np.uint8) for _ in range(3))
    a[first], far[first] = step - 1, step
    near[first] = step - 1
    near[first[0]] += 32
    X = np.stack([a, far, near])
    rows, c = codes.rows(X), codes.codes(X)
    assert step * l1(c[0], c[1]) - codes.slack == l1(a, far) == l1(a, near) == 32
    assert l1(c[0], c[2]) < l1(c[0], c[1])
    threads = numba.get_num_threads()
    n_cols = 2 if columns else 0
    row_best, row_idx = np.full(1, np.inf), np.full(1, np.iinfo(np.int64).max)
    col_best = np.full((threads, n_cols), np.inf)
    col_idx = np.full((threads, n_cols), np.iinfo(np.int64).max)
    _pooled_l1.l1_block(rows[:1], rows[1:], c[:1], c[1:], np.int64(codes.slack), np.array([7]), np.array([0, 1]),
                        row_best, row_idx, col_best, col_idx)
    assert (row_best[0], row_idx[0]) == (32, 0)
    if columns:
        assert (col_best[:, 0] == 32).all() and (col_idx[:, 0] == 7).all()
    for limit, want, tried in ((32, [0, 1], 2), (31, [], 1)):  # one below: far's bound rules it out
        (ii, jj, kk), computed = _pooled_l1.within(rows[:1], rows[1:], c[:1], c[1:], codes.slack, limit)
        assert jj.tolist() == want and kk.tolist() == [32] * len(want) and ii.tolist() == [0] * len(want)
        assert computed == tried
