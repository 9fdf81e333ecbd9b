"""The l-inf probe index's layout: pixels ordered by spread, exact distances that stop in stages,
probe slabs per support block, the index reused for a second pass over the same training set.
Every case is checked against a float64 brute force (ties to the smallest index)."""
from __future__ import annotations

import dataclasses
import pickle

import numpy as np
import pytest

from separation.engines import CPUEngine, ReferenceEngine, probe
from separation.engines.blocks import CPUBlocks
from separation.engines.probe import EXACT_FIRST, ProbeSearch

from helpers.engine_variants import SMALL, tied

#: d at and around the stages where an exact distance may stop (64, 128, ...)
DIMS = [EXACT_FIRST - 1, EXACT_FIRST, EXACT_FIRST + 1, 2 * EXACT_FIRST, 2 * EXACT_FIRST + 1]


def brute_all(q, x, y, n_classes):
    """``(dist (m, C), idx (m, C))``: each class's nearest point, ties to the smallest index.
    Bytes against bytes: the byte distance k, reported as k / 255; otherwise float64 terms with
    bytes read as value / 255."""
    if q.dtype == x.dtype == np.uint8:
        dist = np.abs(q[:, None, :].astype(np.int64) - x[None, :, :]).max(axis=2) / 255.0
    else:
        qf = q.astype(np.float64) / (255.0 if q.dtype == np.uint8 else 1.0)
        xf = x.astype(np.float64) / (255.0 if x.dtype == np.uint8 else 1.0)
        dist = np.abs(qf[:, None, :] - xf[None, :, :]).max(axis=2)
    out_d, out_i = np.full((len(q), n_classes), np.inf), np.full((len(q), n_classes), -1)
    for c in range(n_classes):
        cols = np.flatnonzero(y == c)
        k = dist[:, cols].argmin(axis=1)
        out_d[:, c], out_i[:, c] = dist[np.arange(len(q)), cols[k]], cols[k]
    return out_d, out_i


def spread_data(rng, n, d, n_classes):
    """Bytes whose large differences sit in a few scattered pixels (the rest alike), so stopping
    after the first stage decides most points, and near-ties differ in one late pixel."""
    x = rng.integers(100, 104, (n, d)).astype(np.uint8)
    loud = rng.choice(d, size=min(d, 5), replace=False)
    x[:, loud] = rng.choice(np.array([0, 255, 128], np.uint8), (n, len(loud)))
    x[::3, -1] = rng.integers(0, 256, len(x[::3]))  # a large term in the last pixel only
    y = np.arange(n) % n_classes
    return x, y


@pytest.mark.parametrize("layout", ["sorted", "given"])
@pytest.mark.parametrize("d", DIMS)
def test_every_mode_equals_the_brute_force_around_the_exact_stops(d, layout):
    """all / top2 / other_class on bytes with d at the stages' boundaries, tiny blocks, both layouts
    (the sorted copy reorders pixels; the given one does not): the brute force's answers."""
    rng = np.random.default_rng(d)
    x, y = spread_data(rng, 40, d, 3)
    blocks = dataclasses.replace(SMALL, probe_layout=layout)
    search = ProbeSearch(x, y, 3, blocks=blocks)
    assert (search.features is not None) == (layout == "sorted")
    assert search.stops[-1] == d and np.all(np.diff(search.stops) > 0)
    q = np.concatenate([x[::4], rng.integers(0, 256, (5, d)).astype(np.uint8)])
    want_d, want_i = brute_all(q, x, y, 3)
    got_d, got_i = search.all(q)
    assert np.array_equal(got_d, want_d) and np.array_equal(got_i, want_i)
    pred, first, second = search.top2(q)
    srt = np.sort(want_d, axis=1)
    assert np.array_equal(first, srt[:, 0]) and np.array_equal(second, srt[:, 1])
    assert np.array_equal(pred, want_d.argmin(axis=1))
    own = np.arange(len(q)) % 3
    dist, idx = search.other_class(q, own)
    masked = np.where(np.arange(3)[None, :] == own[:, None], np.inf, want_d)
    c = masked.argmin(axis=1)  # ties between classes: the smaller index wins
    best = masked.min(axis=1)
    tie_i = np.where(masked == best[:, None], want_i, np.iinfo(np.int64).max).min(axis=1)
    assert np.array_equal(dist, best) and np.array_equal(idx, tie_i), c


@pytest.mark.parametrize("d", [EXACT_FIRST + 1, 2 * EXACT_FIRST + 1])
def test_float_queries_on_byte_support_equal_the_brute_force_around_the_stops(d):
    """The f64u8 and f64 flavours stop in the same stages: float queries against byte and float
    support give the brute force's class minima."""
    rng = np.random.default_rng(10 + d)
    x, y = spread_data(rng, 30, d, 3)
    q = rng.random((7, d))
    want = brute_all(q, x, y, 3)
    for support in (x, x.astype(np.float64) / 255.0):
        got = ProbeSearch(support, y, 3, blocks=SMALL).all(q)
        assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1]), support.dtype


def test_the_index_is_built_once_for_two_passes_over_the_same_training_set(monkeypatch):
    """train--train then test--train on one engine: one probe index; a training set changed in
    place (same object, new content) or new labels get a new one, and every answer is the
    reference's."""
    built = []
    init = probe.ProbeSearch.__init__

    def spy(self, *args, **kwargs):
        built.append(1)
        init(self, *args, **kwargs)

    monkeypatch.setattr(probe.ProbeSearch, "__init__", spy)
    rng = np.random.default_rng(7)
    x, y = tied(rng, 30, 6, 3, values=5)
    xq, yq = tied(rng, 8, 6, 3, values=5)
    eng, ref = CPUEngine(blocks=SMALL), ReferenceEngine()

    def check(q, lq, same_set):
        got = eng.cross_class(q, lq, x, y, norm="linf", same_set=same_set)
        want = ref.cross_class(q, lq, x, y, norm="linf", same_set=same_set)
        assert all(np.array_equal(u, v) for u, v in zip(got, want))

    check(x, y, True)
    check(xq, yq, False)
    assert len(built) == 1
    x[0] = 255 - x[0]  # same array object, different content
    check(xq, yq, False)
    assert len(built) == 2
    y[:] = y[::-1].copy()
    check(x, y, True)
    assert len(built) == 3
    clone = pickle.loads(pickle.dumps(eng))  # as sent to a Dask worker: without the index
    assert len(clone._last_probe) == 0 and len(eng._last_probe) == 1
    check(x, y, True)
    assert len(built) == 3


@pytest.mark.parametrize("chunk_rows", [1, 2, 7, 1000])
def test_the_pixel_order_is_by_decreasing_variance_however_the_sample_is_read(chunk_rows):
    """The sorted layout's pixel order: decreasing variance over the sampled rows, the same when
    the float64 sums are taken one row, a few rows or all rows at a time."""
    rng = np.random.default_rng(1)
    d = 11
    x = (rng.random((50, d)) * np.linspace(1, 250, d)[rng.permutation(d)]).astype(np.uint8)
    got = ProbeSearch._spread_order(x, rows=4096, chunk_bytes=8 * d * chunk_rows)
    assert np.array_equal(got, np.argsort(-x.astype(np.float64).var(axis=0), kind="stable"))
    sample = x[::5]  # rows=10: every fifth point
    got = ProbeSearch._spread_order(x, rows=10, chunk_bytes=8 * d * chunk_rows)
    assert np.array_equal(got, np.argsort(-sample.astype(np.float64).var(axis=0), kind="stable"))


def test_probe_slabs_hold_each_block_column_major():
    """Block ``[j0, j1)`` of the class-sorted support sits at ``DT[j0 * d : j1 * d]`` as a
    ``(d, j1 - j0)`` array in the index's pixel order; the histograms count every class's values."""
    rng = np.random.default_rng(3)
    x = rng.integers(0, 256, (23, 9)).astype(np.uint8)
    y = rng.integers(0, 3, 23)
    y[:3] = [0, 1, 2]
    search = ProbeSearch(x, y, 3, blocks=CPUBlocks(probe_support_block=4, probe_layout="sorted"))
    srt = x[search.order][:, search.features]
    d = x.shape[1]
    for j0, j1 in zip(search.blk_start[:-1], search.blk_start[1:]):
        assert np.array_equal(search.DT[j0 * d:j1 * d].reshape(d, j1 - j0), srt[j0:j1].T)
    for c in range(3):
        rows = srt[y[search.order] == c]
        for k in range(d):
            assert np.array_equal(search.H[c, 1:, k], np.cumsum(np.bincount(rows[:, k], minlength=256)))
