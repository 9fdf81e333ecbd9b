"""The exact int8 GEMM paths on bytes: l2 (exact at its size switches, equal to the float64
reference on every entry point and block size, nothing rechecked) and l1 pruned by that exact l2
(equal to the reference, ties at the bound included)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from separation.engines import CPUEngine, ReferenceEngine, _int_l2, gemm
from separation.engines.blocks import CPUBlocks
from separation.engines.conflicts import gemm_pairs, reference_pairs

from helpers.engine_variants import near_tie_l2, tied

BACKENDS = [pytest.param("int8", marks=pytest.mark.skipif(not _int_l2.int8_available(),
                                                       reason="this torch has no int8 GEMM on the CPU")),
            "float32"]


def _int64_dot(a, b):
    return a.to(torch.int64) @ b.to(torch.int64).T


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dim", [1, _int_l2.SHORT - 1, _int_l2.SHORT, 784])
def test_int_dot_is_exact_on_both_sides_of_the_short_switch(dim, backend):
    """Below SHORT features the product is taken in int64 (one feature gives wrong int8 GEMM results
    in this torch); from SHORT on the int8 GEMM: both equal an int64 product at the extreme bytes."""
    rng = np.random.default_rng(dim)
    q = torch.from_numpy(rng.choice(np.array([-128, 127, 0, -1], np.int8), (9, dim)))
    d = torch.from_numpy(rng.choice(np.array([-128, 127, 1], np.int8), (7, dim)))
    assert torch.equal(_int_l2.int_dot(q, d, backend).to(torch.int64), _int64_dot(q, d))


@pytest.mark.parametrize("backend, dim", [
    *[pytest.param("int8", dim, marks=BACKENDS[0].marks) for dim in (_int_l2.K_CHUNK, _int_l2.K_CHUNK + 1)],
    ("float32", _int_l2.F_CHUNK), ("float32", _int_l2.F_CHUNK + 1), ("float32", 3 * _int_l2.F_CHUNK + 7)])
def test_int_dot_is_exact_at_the_chunk_boundary(backend, dim):
    """The largest products (-128 * -128 = 16384): a chunk (K_CHUNK features for int32 sums,
    F_CHUNK for float32's 2**24) is still exact; one more feature is summed in int64 over chunks.
    Mixed signs and odd values make every partial sum a different integer."""
    chunk = _int_l2.K_CHUNK if backend == "int8" else _int_l2.F_CHUNK
    q = torch.full((2, dim), -128, dtype=torch.int8)
    q[1, 1::3] = 127
    d = torch.full((3, dim), -128, dtype=torch.int8)
    d[1, ::2] = 127
    d[2] = torch.from_numpy(np.random.default_rng(dim).integers(-128, 128, dim, dtype=np.int8))
    got = _int_l2.int_dot(q, d, backend)
    assert got.dtype == (torch.int32 if dim <= chunk else torch.int64)
    assert torch.equal(got.to(torch.int64), _int64_dot(q, d))
    assert int(got[0, 0]) == 16384 * dim


def test_float32_gemms_allowed_to_round_give_way_to_float64():
    """With torch's float32 matmul precision below "highest" (bf16 / tf32 allowed), the float32
    backend multiplies in float64 instead: still exact at the largest products, in int64."""
    q = torch.full((2, 3 * _int_l2.F_CHUNK), -128, dtype=torch.int8)
    d = q.clone()
    d[1, ::2] = 127
    before = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("medium")
    try:
        got = _int_l2.int_dot(q, d, "float32")
    finally:
        torch.set_float32_matmul_precision(before)
    assert got.dtype == torch.int64 and torch.equal(got, _int64_dot(q, d))


def test_an_unknown_backend_is_refused():
    q = torch.zeros((1, 16), dtype=torch.int8)
    with pytest.raises(ValueError, match="backend must be one of"):
        _int_l2.int_dot(q, q, "int4")


def test_packed_keys_fit_63_bits_or_the_call_is_refused():
    """A key is ``(squared distance << bits) | index``: 2**28 ImageNet-sized rows fit, 2**29 do not."""
    dim = 224 * 224 * 3
    assert _int_l2.index_bits(2**28 - 1, dim) == 28
    assert _int_l2.index_bits(2**28, dim) == 29  # (255**2 * dim) has 34 bits: 34 + 29 = 63
    with pytest.raises(ValueError, match="do not fit a 63-bit"):
        _int_l2.index_bits(2**29, dim)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dim", [784, 3072])
def test_the_largest_byte_norms_are_exact(dim, backend, monkeypatch):
    """Rows of 255 against rows of 0 and of 254: squared distances 65025 d and d, exactly, on the
    nearest-neighbour and the range search, with either GEMM."""
    monkeypatch.setattr(_int_l2, "gemm_backend", lambda: backend)
    q = np.full((3, dim), 255, np.uint8)
    db = np.concatenate([np.zeros((2, dim), np.uint8), np.full((2, dim), 254, np.uint8)])
    d, i = gemm.gemm_nearest(q, db, integer=True)
    assert np.array_equal(d, np.full(3, np.sqrt(dim))) and np.array_equal(i, [2, 2, 2])
    d, i = gemm.gemm_nearest(q, db[:2], integer=True)
    assert np.array_equal(d * d, np.full(3, 65025.0 * dim)) and np.array_equal(i, [0, 0, 0])
    yq, yd = np.zeros(3, int), np.ones(4, int)
    ii, jj, dd = gemm_pairs(q, yq, db, yd, same_set=False, radius=np.sqrt(65025 * dim) / 255, integer=True)
    assert len(ii) == 12 and np.array_equal(np.unique(dd), np.sqrt([dim, 65025 * dim]) / 255)


@pytest.mark.parametrize("backend", BACKENDS)
def test_near_ties_float32_cannot_resolve_are_decided_without_a_recheck(backend, monkeypatch):
    """Squared distances that differ by 1 at squared norms ~2e8 (float32 resolution ~16): the
    integer path (either GEMM) finds the nearer one and never calls the float path's exact recheck."""
    monkeypatch.setattr(_int_l2, "gemm_backend", lambda: backend)
    monkeypatch.setattr(gemm, "_exact_sq", lambda *a: pytest.fail("the integer path rechecked a pair"))
    q, db = near_tie_l2(12)
    d, i = gemm.gemm_nearest(q, db, integer=True)
    want = ReferenceEngine().nearest(q, db, norm="l2")
    assert np.array_equal(d, want[0]) and np.array_equal(i, want[1])


def _tiny_case(seed, n, nq, d, values, rows, l1="pooled"):
    """``(rng, x, y, xq, yq, engine, reference)``: tied bytes of 3 classes, GEMM blocks of ``rows``,
    the engine's ``l1`` path."""
    rng = np.random.default_rng(seed)
    x, y = tied(rng, n, d, 3, values=values)
    xq, yq = tied(rng, nq, d, 3, values=values)
    blocks = CPUBlocks(gemm_rows=rows) if rows else CPUBlocks()
    return rng, x, y, xq, yq, CPUEngine(l1=l1, blocks=blocks), ReferenceEngine()


def same(a, b):
    assert all(np.array_equal(u, v) for u, v in zip(a, b))


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 25), nq=st.integers(1, 12), d=st.integers(1, 12),
       values=st.sampled_from([2, 3, 256]), rows=st.sampled_from([1, 2, 3, 7, None]),
       backend=st.sampled_from(["int8", "float32"] if _int_l2.int8_available() else ["float32"]))
def test_every_entry_point_equals_the_reference_at_tiny_blocks(seed, n, nq, d, values, rows, backend):
    """cross_class (train--train and test--train), nearest, block_pair and the range search on
    the integer path (either GEMM), with 1-row blocks upward and many ties: equal to the float64
    reference."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_int_l2, "gemm_backend", lambda: backend)
        _every_entry_point(seed, n, nq, d, values, rows)


def _every_entry_point(seed, n, nq, d, values, rows):
    rng, x, y, xq, yq, eng, ref = _tiny_case(seed, n, nq, d, values, rows)
    same(eng.cross_class(x, y, x, y, norm="l2", same_set=True), ref.cross_class(x, y, x, y, norm="l2", same_set=True))
    same(eng.cross_class(xq, yq, x, y, norm="l2"), ref.cross_class(xq, yq, x, y, norm="l2"))
    same(eng.nearest(xq, x, norm="l2"), ref.nearest(xq, x, norm="l2"))
    same(eng.block_pair(xq, yq, x, y, norm="l2"), ref.block_pair(xq, yq, x, y, norm="l2"))
    radius = f"{int(rng.integers(0, 2 * values))}/255"
    same(eng.range_search(xq, yq, x, y, norm="l2", radius=radius),
         reference_pairs(xq, yq, x, y, same_set=False, norm="l2", radius=radius))
    same(eng.range_search(x, y, x, y, norm="l2", radius=radius, same_set=True),
         reference_pairs(x, y, x, y, same_set=True, norm="l2", radius=radius))


def test_which_path_runs():
    """Bytes on the CPU take the integer path by default; floats, ``l2="float32"`` or another
    device take the float32 path with its recheck; asking for the integer path where it cannot run
    is refused."""
    x = np.zeros((2, 3), np.uint8)
    assert gemm.use_integer(x, "cpu") and not gemm.use_integer(x.astype(np.float32), "cpu")
    assert not gemm.use_integer(x, "meta")
    assert CPUEngine()._integer() is None and CPUEngine(l2="float32")._integer() is False
    assert CPUEngine().integer_gemm == _int_l2.gemm_backend() in _int_l2.GEMM_BACKENDS
    assert CPUEngine(l2="float32")._integer("l1") is None  # l1 on bytes: always the int8 GEMM
    with pytest.raises(ValueError, match="needs byte data on the CPU"):
        gemm.gemm_nearest(x.astype(np.float64), x.astype(np.float64), integer=True)


def test_without_the_int8_gemm_bytes_take_the_exact_float32_gemm(monkeypatch):
    """A torch without ``_int_mm`` (older or other builds): the float32 backend of the same exact
    integer path, equal to the reference (ties included) on every norm that uses it."""
    monkeypatch.delattr(torch, "_int_mm")
    _int_l2.int8_available.cache_clear()
    _int_l2.gemm_backend.cache_clear()
    try:
        assert not _int_l2.int8_available() and CPUEngine().integer_gemm == "float32"
        rng = np.random.default_rng(3)
        x, y = tied(rng, 30, 5, 3, values=4)
        for norm in ("l2", "l1"):
            got = CPUEngine().cross_class(x, y, x, y, norm=norm, same_set=True)
            want = ReferenceEngine().cross_class(x, y, x, y, norm=norm, same_set=True)
            assert all(np.array_equal(u, v) for u, v in zip(got, want)), norm
    finally:
        monkeypatch.undo()
        _int_l2.int8_available.cache_clear()
        _int_l2.gemm_backend.cache_clear()


def test_an_unknown_l2_path_is_refused():
    from separation.core.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="l2 must be 'pooled', 'int8' or 'float32'"):
        CPUEngine(l2="int4")


def test_block_rows_switch_at_their_limits():
    """Rows per block of the integer path: ROWS_MAX for short rows, ROWS_BYTES of int8 rows once
    that is fewer (the switch at dim = ROWS_BYTES / ROWS_MAX), never below 256."""
    switch = _int_l2.ROWS_BYTES // _int_l2.ROWS_MAX
    assert _int_l2.block_rows(784) == _int_l2.block_rows(switch) == _int_l2.ROWS_MAX
    assert _int_l2.block_rows(switch + 1) == _int_l2.ROWS_BYTES // (switch + 1) < _int_l2.ROWS_MAX
    assert _int_l2.block_rows(224 * 224 * 3) == max(256, _int_l2.ROWS_BYTES // (224 * 224 * 3))
    assert _int_l2.block_rows(10**9) == 256


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 25), nq=st.integers(1, 12), d=st.integers(1, 12),
       values=st.sampled_from([2, 3, 256]), binary=st.booleans(), rows=st.sampled_from([1, 2, 3, 7, None]),
       l1=st.sampled_from(["bound", "pooled"]))
def test_l1_by_a_bound_equals_the_reference_at_tiny_blocks(seed, n, nq, d, values, binary, rows, l1):
    """l1 on bytes through the int8 GEMM's bound (``l1="bound"``) and the pooled bound: train--train,
    test--train, nearest, block_pair and the range search (at a radius equal to a pair's distance
    and one grey level below) equal the float64 reference with 1-row blocks upward. Binary images
    (bytes 0 and 255) make the l2 bound exact (``l1 == l2^2 / 255``): every pair sits at its bound,
    so ties at the bound must still be computed and decided by index."""
    _, x, y, xq, yq, eng, ref = _tiny_case(seed, n, nq, d, values, rows, l1)
    if binary:
        x, xq = np.where(x % 2 == 1, 255, 0).astype(np.uint8), np.where(xq % 2 == 1, 255, 0).astype(np.uint8)
    same(eng.cross_class(x, y, x, y, norm="l1", same_set=True), ref.cross_class(x, y, x, y, norm="l1", same_set=True))
    same(eng.cross_class(xq, yq, x, y, norm="l1"), ref.cross_class(xq, yq, x, y, norm="l1"))
    same(eng.nearest(xq, x, norm="l1"), ref.nearest(xq, x, norm="l1"))
    same(eng.block_pair(xq, yq, x, y, norm="l1"), ref.block_pair(xq, yq, x, y, norm="l1"))
    # the range search at a radius that is some pair's exact distance (a tie at the radius)
    k = int(np.abs(x[0].astype(np.int64) - xq[0]).sum())
    for radius in (f"{k}/255", f"{max(k - 1, 0)}/255"):
        same(eng.range_search(xq, yq, x, y, norm="l1", radius=radius),
             reference_pairs(xq, yq, x, y, same_set=False, norm="l1", radius=radius))
        same(eng.range_search(x, y, x, y, norm="l1", radius=radius, same_set=True),
             reference_pairs(x, y, x, y, same_set=True, norm="l1", radius=radius))


def test_l1_computes_few_pairs_exactly_where_the_bound_is_tight(monkeypatch):
    """On near-binary images (the MNIST case) the bound rules out most pairs: the exact l1 of far
    fewer than all pairs is computed (counted through the kernel's early-exit limit), and the
    answer equals the tiled kernel's, which computes every pair."""
    rng = np.random.default_rng(5)
    x = np.where(rng.random((400, 64)) < 0.3, 255, 0).astype(np.uint8)
    x[:, :8] = rng.integers(0, 256, (400, 8))  # some grey: the bound is no longer exact
    y = rng.integers(0, 4, 400)
    want = CPUEngine(l1="tiled").cross_class(x, y, x, y, norm="l1", same_set=True)
    got = CPUEngine(l1="bound").cross_class(x, y, x, y, norm="l1", same_set=True)
    assert all(np.array_equal(u, v) for u, v in zip(got, want))
    from separation.engines import _l1_bound

    counted = []
    block = _l1_bound.l1_block.py_func  # the same code, run by Python, to count what it computes

    def counting(Q, D, xy, qn, dn, *rest):
        l2 = qn[:, None] + dn[None, :] - 2 * xy.astype(np.int64)
        counted.append((int((l2 <= 255 * rest[2][:, None]).sum()), l2.size))
        return block(Q, D, xy, qn, dn, *rest)

    monkeypatch.setattr(_l1_bound, "l1_block", counting)
    again = CPUEngine(l1="bound").cross_class(x, y, x, y, norm="l1", same_set=True)
    assert all(np.array_equal(u, v) for u, v in zip(again, want))
    kept, total = map(sum, zip(*counted))
    assert 0 < kept < 0.25 * total, (kept, total)


@pytest.mark.parametrize("chunks, extra", [(1, -1), (1, 0), (1, 1), (2, 1)])
def test_exact_l1_sums_chunks_in_16_bits_with_an_early_exit_at_the_limit(chunks, extra):
    """``_l1`` (compiled) on both sides of its chunk length and with the largest terms (255 against
    0 everywhere: each 16-bit chunk sum at its maximum): the exact sum where it is within the limit,
    a partial sum above the limit where it is not, stopping after the first chunk past it."""
    from separation.engines import _l1_bound

    chunk = _l1_bound.CHECK
    assert chunk * 255 <= np.iinfo(np.int16).max  # one chunk's sum fits in 16 bits
    d = chunks * chunk + extra
    rng = np.random.default_rng(d)
    for a, b in ((np.full(d, 255, np.uint8), np.zeros(d, np.uint8)),
                 (rng.integers(0, 256, d).astype(np.uint8), rng.integers(0, 256, d).astype(np.uint8))):
        exact = int(np.abs(a.astype(np.int64) - b).sum())
        assert _l1_bound._l1(a, b, exact) == _l1_bound._l1(b, a, float(exact)) == exact
        if d >= chunk and exact > 0:  # past the limit within the first chunk: stops there
            first = int(np.abs(a[:chunk].astype(np.int64) - b[:chunk]).sum())
            if first > 0:
                assert _l1_bound._l1(a, b, first - 1) == first


def test_an_unknown_l1_path_is_refused():
    from separation.core.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="l1 must be 'pooled', 'bound' or 'tiled'"):
        CPUEngine(l1="exact")


@pytest.mark.parametrize("spare", [0, -1])
def test_float_operands_are_kept_whole_up_to_keep_bytes_and_converted_per_block_beyond(monkeypatch, spare):
    """The float32 path keeps a set's float32 copy whole when it has at most KEEP_BYTES bytes
    (``spare`` 0: exactly that many) and converts it block by block when it has one byte more
    (``spare`` -1): the same answer, equal to the reference, either way."""
    rng = np.random.default_rng(9)
    x, y = tied(rng, 40, 6, 3, values=5)
    monkeypatch.setitem(gemm.KEEP_BYTES, "cpu", 4 * x.size + spare)
    rows = gemm._Rows(x, torch.device("cpu"), False)
    assert (rows.op is not None) == (spare == 0)
    got = gemm.gemm_cross_class(x, y, x, y, same_set=True, block_rows=7, integer=False)
    same(got, ReferenceEngine().cross_class(x, y, x, y, norm="l2", same_set=True))
