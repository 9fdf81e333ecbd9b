"""The size switches of the numba range search (``cpu_pairs``) at their boundaries, against the
float64 reference engine: a query with exactly ``FIRST_CAP`` pairs (one pass) and one more (a
second pass with exactly its slots), exactly ``QUERY_CHUNK`` queries (one chunk) and one more, a
second pass split at ``PASS_SLOTS``; and the sink's counting sort (rows in any order, int32 parts)."""
from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

import separation.engines._conflict_kernels as kernels
from separation import conflict_pairs, conflict_pairs_between
from separation.engines import CPUEngine, conflicts
from separation.engines.conflicts import FIRST_CAP, QUERY_CHUNK, Layout, PairSink, cpu_pairs


#: the cpu engine with every point on the numba range kernel (its defaults for bytes narrow l-inf by the
#: probe search first and search l1 on the pooled bound)
KERNEL_ENGINE = CPUEngine(l1="tiled", linf="tiled")


def same(a, b):
    return all(np.array_equal(u, v) and u.dtype == v.dtype for u, v in zip(a, b))


@pytest.fixture
def kernel_calls(monkeypatch):
    """The ``(queries, caps)`` of every range-kernel call (the real kernel runs)."""
    calls, real = [], kernels.range_kernel

    def spy(Q, D, s1, e1, s2, e2, limit, is_max, zero, chunk, offsets, caps, out_j, out_d, counts):
        calls.append((len(Q), caps.copy()))
        return real(Q, D, s1, e1, s2, e2, limit, is_max, zero, chunk, offsets, caps, out_j, out_d, counts)

    monkeypatch.setattr(kernels, "range_kernel", spy)
    return calls


def star(partners: int, far: int = 5):
    """Point 0 (class 0) at 0 with ``partners`` points of class 1 at 1 (within 1/255 of it, exactly) and
    ``far`` points of class 1 at 200: point 0 has exactly ``partners`` pairs at radius 1/255."""
    x = np.concatenate([[0], np.ones(partners), np.full(far, 200)]).astype(np.uint8)[:, None]
    y = np.concatenate([[0], np.ones(partners + far)]).astype(np.int64)
    return x, y


@pytest.mark.parametrize("norm", ["linf", "l1"])
@pytest.mark.parametrize("partners, passes", [(FIRST_CAP, 1), (FIRST_CAP + 1, 2)])
def test_a_query_with_first_cap_pairs_fits_and_one_more_takes_a_second_pass(norm, partners, passes, kernel_calls):
    x, y = star(partners)
    got = conflict_pairs(x, y, norm=norm, radius=Fraction(1, 255), engine=KERNEL_ENGINE)
    want = conflict_pairs(x, y, norm=norm, radius=Fraction(1, 255), engine="reference")
    assert same(got, want) and len(got.i) == partners and set(got.i.tolist()) == {0}
    assert len(kernel_calls) == passes
    assert kernel_calls[0][1].tolist() == [FIRST_CAP] * len(y)
    if passes == 2:  # the second pass: the one query, with exactly its slots
        assert kernel_calls[1][0] == 1 and kernel_calls[1][1].tolist() == [partners]
    xq, yq = x[:1], y[:1]  # query x database: the same pairs, one query
    kernel_calls.clear()
    got = conflict_pairs_between(xq, yq, x, y, norm=norm, radius=Fraction(1, 255), engine=KERNEL_ENGINE)
    assert same(got, conflict_pairs_between(xq, yq, x, y, norm=norm, radius=Fraction(1, 255), engine="reference"))
    assert len(got.i) == partners and len(kernel_calls) == passes


@pytest.mark.parametrize("n, chunks", [(QUERY_CHUNK, 1), (QUERY_CHUNK + 1, 2)])
def test_query_chunk_queries_are_one_chunk_and_one_more_are_two(n, chunks, kernel_calls):
    rng = np.random.default_rng(n)
    x = rng.integers(0, 256, size=(n, 2)).astype(np.uint8)
    y = rng.integers(0, 3, n)
    got = conflict_pairs(x, y, norm="linf", radius=Fraction(3, 255), engine=KERNEL_ENGINE)
    assert same(got, conflict_pairs(x, y, norm="linf", radius=Fraction(3, 255), engine="reference"))
    assert len(got.i) > 100
    first = [q for q, caps in kernel_calls if caps.tolist() == [FIRST_CAP] * q]
    assert first == ([QUERY_CHUNK] if chunks == 1 else [QUERY_CHUNK, 1])
    xq, yq = x[:n - 3], y[:n - 3]  # query x database: n - 3 queries, one chunk
    got = conflict_pairs_between(xq, yq, x, y, norm="linf", radius=Fraction(3, 255), engine=KERNEL_ENGINE)
    assert same(got, conflict_pairs_between(xq, yq, x, y, norm="linf", radius=Fraction(3, 255), engine="reference"))


@pytest.mark.parametrize("slots, batches", [(3 * (FIRST_CAP + 1), [3]), (3 * (FIRST_CAP + 1) - 1, [2, 1])])
def test_a_second_pass_is_split_at_pass_slots(monkeypatch, kernel_calls, slots, batches):
    """Three queries of 65 pairs each: their second pass is one kernel call when exactly their
    slots fit in PASS_SLOTS, two when one slot less does (the first pass is split the same way)."""
    x = np.concatenate([[0, 0, 0], np.ones(FIRST_CAP + 1), [200]]).astype(np.uint8)[:, None]
    y = np.concatenate([[0, 0, 0], np.ones(FIRST_CAP + 2)]).astype(np.int64)
    monkeypatch.setattr(conflicts, "PASS_SLOTS", slots)
    got = conflict_pairs(x, y, norm="linf", radius=Fraction(1, 255), engine=KERNEL_ENGINE)
    assert same(got, conflict_pairs(x, y, norm="linf", radius=Fraction(1, 255), engine="reference"))
    assert len(got.i) == 3 * (FIRST_CAP + 1)
    second = [q for q, caps in kernel_calls if caps.tolist() == [FIRST_CAP + 1] * q]
    assert second == batches
    assert all(caps.sum() <= slots or q == 1 for q, caps in kernel_calls)


def test_the_sink_sorts_rows_given_in_any_order_and_keeps_int32_parts(rng):
    """Pairs added in shuffled chunks come out sorted by (i, j), i < j for one set, int64 / float64;
    the chunks are held as int32 indices (16 bytes per pair) until then, and released."""
    n = 300
    y = rng.integers(0, 3, n)
    lay = Layout(y, y, True)
    ii, jj = np.triu_indices(n, 1)
    ok = y[lay.q_order[ii]] != y[lay.d_order[jj]]
    ii, jj = ii[ok], jj[ok]
    d = rng.random(len(ii))
    perm = rng.permutation(len(ii))
    sink = PairSink(None, 1.0, lay)
    for part in np.array_split(perm, 7):
        sink.add(jj[part], ii[part], d[part])  # either end first: one set is unordered
    assert all(p[0].dtype == np.int32 and p[1].dtype == np.int32 for p in sink.parts)
    i, j, dd = sink.arrays()
    assert sink.parts == [] and i.dtype == j.dtype == np.int64 and dd.dtype == np.float64
    a, b = np.minimum(lay.q_order[ii], lay.d_order[jj]), np.maximum(lay.q_order[ii], lay.d_order[jj])
    order = np.lexsort((b, a))
    assert np.array_equal(i, a[order]) and np.array_equal(j, b[order]) and np.array_equal(dd, d[order])
    with pytest.raises(MemoryError, match="more than 5 cross-class pairs"):
        PairSink(5, 1.0, lay).add(ii[:6], jj[:6], d[:6])


def test_cpu_pairs_with_every_row_of_a_chunk_over_its_slots(rng):
    """Every query over FIRST_CAP (a dense cluster): all rerun, in batches; equal to the reference."""
    x = np.concatenate([rng.integers(0, 2, size=(300, 3)), rng.integers(250, 256, size=(5, 3))]).astype(np.uint8)
    y = np.arange(len(x)) % 4
    got = cpu_pairs(x, y, x, y, same_set=True, norm="linf", radius=Fraction(1, 255))
    assert same(got, conflict_pairs(x, y, norm="linf", radius=Fraction(1, 255), engine="reference"))
    assert len(got[0]) > FIRST_CAP * 200
