"""numba kernel: register-tiled, cache-blocked exact l-inf / l1 nearest neighbours with pruning.

One kernel call compares a query block ``Q`` with a database block ``D`` (both C-contiguous
``(n, d)``, uint8 or float64, features already ordered by decreasing variance). It updates
per-query bests (``row_best``/``row_idx``, indices are *global* database indices) and, when
``symmetric`` is set, per-database bests (``col_best``/``col_idx``, one row per query block so
threads never write the same memory; the caller reduces them).

Exact early exit: partial maxima (or sums) only grow along the feature axis, so once no entry
of a 2x2 tile can still beat its point's best -- or tie it with a smaller index -- the tile is
abandoned. Results are identical to a full computation, ties included.

The l-inf loop keeps its accumulators in the input dtype (uint8: 32 lanes per AVX2 vector); the
l1 loop accumulates in ``acc_zero``'s dtype (int64 for bytes, float64 for floats).
"""
from __future__ import annotations

import numba as nb
import numpy as np
from numba.core import types
from numba.extending import overload
from numba.np.numpy_support import as_dtype


def _absdiff(a, b):
    """|a - b| in the inputs' own dtype, without the wrap-around of unsigned subtraction (numba
    compiles the overload below in its place)."""
    return max(a, b) - min(a, b)


@overload(_absdiff, inline="always")
def _absdiff_impl(a, b):
    """|a - b| in the inputs' own dtype (uint8 stays uint8: 32 lanes per AVX2 vector)."""
    if isinstance(a, types.Integer):
        cast = as_dtype(a).type

        def impl(a, b):
            return cast(max(a, b) - min(a, b))
    else:
        def impl(a, b):
            return abs(a - b)
    return impl


@nb.njit(inline="always")
def _vmax(m, v):
    return m if m > v else v


@nb.njit(inline="always")
def _better(d, g, best, bidx):
    return d < best or (d == best and g < bidx)


@nb.njit(inline="always")
def _offer(best, idx, k, d, g):
    """Take (distance d, global index g) for slot k if it beats what is there."""
    if _better(d, g, best[k], idx[k]):
        best[k] = d
        idx[k] = g


@nb.njit(inline="always")
def _hopeless(partial, g, best, bidx):
    """A partial distance that can no longer beat or win a tie against (best, bidx)."""
    return partial > best or (partial >= best and g > bidx)


@nb.njit(inline="always")
def _tile_done(p00, p01, p10, p11, i, i2, j, j2, gi, gi2, gj, gj2, row_best, row_idx, cb, ci,
               symmetric):
    """True when no entry of the 2x2 tile can still improve its row (or column) best."""
    if not (_hopeless(p00, gj, row_best[i], row_idx[i]) and _hopeless(p01, gj2, row_best[i], row_idx[i])
            and _hopeless(p10, gj, row_best[i2], row_idx[i2])
            and _hopeless(p11, gj2, row_best[i2], row_idx[i2])):
        return False
    if symmetric:
        return (_hopeless(p00, gi, cb[j], ci[j]) and _hopeless(p10, gi2, cb[j], ci[j])
                and _hopeless(p01, gi, cb[j2], ci[j2]) and _hopeless(p11, gi2, cb[j2], ci[j2]))
    return True


@nb.njit(parallel=True, fastmath=True, cache=True, nogil=True)
def nn_kernel(Q, D, q_gidx, d_gidx, row_best, row_idx, col_best, col_idx, symmetric, is_max,
              acc_zero, query_block, chunk, db_bytes):
    """``query_block``: query rows per parallel task; ``chunk``: features before the first
    early-exit check (it doubles after each check); ``db_bytes``: database block budget (about
    half of a core's L2 cache). They change speed only, never the result."""
    nq, d = Q.shape
    nd = D.shape[0]
    db = max(2, db_bytes // max(1, d * Q.itemsize))
    nblocks = (nq + query_block - 1) // query_block
    zero = Q[0, 0] - Q[0, 0]  # zero in the input dtype
    for blk in nb.prange(nblocks):
        q0 = blk * query_block
        q1 = min(nq, q0 + query_block)
        cb = col_best[blk]  # (nd,) when symmetric, else an empty row
        ci = col_idx[blk]
        for d0 in range(0, nd, db):
            d1 = min(nd, d0 + db)
            for i in range(q0, q1, 2):
                i2 = i + 1 if i + 1 < q1 else i
                qa = Q[i]
                qb = Q[i2]
                for j in range(d0, d1, 2):
                    j2 = j + 1 if j + 1 < d1 else j
                    da = D[j]
                    dbb = D[j2]
                    gj = d_gidx[j]
                    gj2 = d_gidx[j2]
                    gi = q_gidx[i]
                    gi2 = q_gidx[i2]
                    if is_max:
                        m00 = zero
                        m01 = zero
                        m10 = zero
                        m11 = zero
                        k0 = 0
                        ch = chunk
                        while k0 < d:
                            k1 = min(d, k0 + ch)
                            for k in range(np.uint64(k0), np.uint64(k1)):
                                m00 = _vmax(m00, _absdiff(qa[k], da[k]))
                                m01 = _vmax(m01, _absdiff(qa[k], dbb[k]))
                                m10 = _vmax(m10, _absdiff(qb[k], da[k]))
                                m11 = _vmax(m11, _absdiff(qb[k], dbb[k]))
                            if _tile_done(acc_zero + m00, acc_zero + m01, acc_zero + m10, acc_zero + m11,
                                          i, i2, j, j2, gi, gi2, gj, gj2, row_best, row_idx, cb, ci,
                                          symmetric):
                                break
                            k0 = k1
                            ch *= 2  # high-variance features come first: later chunks rarely prune
                        r00, r01, r10, r11 = acc_zero + m00, acc_zero + m01, acc_zero + m10, acc_zero + m11
                    else:
                        s00 = acc_zero
                        s01 = acc_zero
                        s10 = acc_zero
                        s11 = acc_zero
                        k0 = 0
                        ch = chunk
                        while k0 < d:
                            k1 = min(d, k0 + ch)
                            for k in range(np.uint64(k0), np.uint64(k1)):
                                s00 += _absdiff(qa[k], da[k])
                                s01 += _absdiff(qa[k], dbb[k])
                                s10 += _absdiff(qb[k], da[k])
                                s11 += _absdiff(qb[k], dbb[k])
                            if _tile_done(s00, s01, s10, s11, i, i2, j, j2, gi, gi2, gj, gj2,
                                          row_best, row_idx, cb, ci, symmetric):
                                break
                            k0 = k1
                            ch *= 2
                        r00, r01, r10, r11 = s00, s01, s10, s11
                    _offer(row_best, row_idx, i, r00, gj)
                    _offer(row_best, row_idx, i, r01, gj2)
                    _offer(row_best, row_idx, i2, r10, gj)
                    _offer(row_best, row_idx, i2, r11, gj2)
                    if symmetric:
                        _offer(cb, ci, j, r00, gi)
                        _offer(cb, ci, j, r10, gi2)
                        _offer(cb, ci, j2, r01, gi)
                        _offer(cb, ci, j2, r11, gi2)


__all__ = ["nn_kernel"]
