"""numba kernels: register-tiled, cache-blocked exact l-inf / l1 nearest neighbours with pruning.

One kernel call compares a query block ``Q`` with a database block ``D`` (both C-contiguous
``(n, d)``, uint8 or float64, features already ordered by decreasing variance). It updates
per-query bests (``row_best``/``row_idx``, indices are *global* database indices) and, when
``symmetric`` is set, per-database bests (``col_best``/``col_idx``, one row per query block so
threads never write the same memory; the caller reduces them).

Exact early exit: partial maxima (or sums) only grow along the feature axis, so once all four
entries of a 2x2 tile exceed the largest best any of its points could still improve, the tile
is abandoned. Results are identical to a full computation.
"""
from __future__ import annotations

import numba as nb
import numpy as np

QUERY_BLOCK = 32  # query rows per parallel task
CHUNK = 64  # features between two early-exit checks
L2_CACHE_BYTES = 256 * 1024  # database block budget (half of the 512 KiB L2 per core)


@nb.njit(inline="always")
def _absdiff(a, b):
    return a - b if a > b else b - a


@nb.njit(inline="always")
def _better(d, g, best, bidx):
    return d < best or (d == best and g < bidx)


def _make(kind: str):
    if kind == "max":
        @nb.njit(inline="always")
        def acc(m, v):
            return m if m > v else v
    else:
        @nb.njit(inline="always")
        def acc(m, v):
            return m + v

    @nb.njit(parallel=True, fastmath=True, cache=True, nogil=True)
    def kernel(Q, D, q_gidx, d_gidx, row_best, row_idx, col_best, col_idx, symmetric, zero):
        nq, d = Q.shape
        nd = D.shape[0]
        db = max(2, L2_CACHE_BYTES // max(1, d * Q.itemsize))
        nblocks = (nq + QUERY_BLOCK - 1) // QUERY_BLOCK
        for blk in nb.prange(nblocks):
            q0 = blk * QUERY_BLOCK
            q1 = min(nq, q0 + QUERY_BLOCK)
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
                        thr = max(row_best[i], row_best[i2])
                        if symmetric:
                            thr = max(thr, max(cb[j], cb[j2]))
                        m00 = zero
                        m01 = zero
                        m10 = zero
                        m11 = zero
                        for k0 in range(0, d, CHUNK):
                            k1 = min(d, k0 + CHUNK)
                            for k in range(k0, k1):
                                a0 = qa[k]
                                a1 = qb[k]
                                b0 = da[k]
                                b1 = dbb[k]
                                m00 = acc(m00, _absdiff(a0, b0))
                                m01 = acc(m01, _absdiff(a0, b1))
                                m10 = acc(m10, _absdiff(a1, b0))
                                m11 = acc(m11, _absdiff(a1, b1))
                            if min(min(m00, m01), min(m10, m11)) > thr:
                                break
                        gj = d_gidx[j]
                        gj2 = d_gidx[j2]
                        if _better(m00, gj, row_best[i], row_idx[i]):
                            row_best[i] = m00
                            row_idx[i] = gj
                        if _better(m01, gj2, row_best[i], row_idx[i]):
                            row_best[i] = m01
                            row_idx[i] = gj2
                        if _better(m10, gj, row_best[i2], row_idx[i2]):
                            row_best[i2] = m10
                            row_idx[i2] = gj
                        if _better(m11, gj2, row_best[i2], row_idx[i2]):
                            row_best[i2] = m11
                            row_idx[i2] = gj2
                        if symmetric:
                            gi = q_gidx[i]
                            gi2 = q_gidx[i2]
                            if _better(m00, gi, cb[j], ci[j]):
                                cb[j] = m00
                                ci[j] = gi
                            if _better(m10, gi2, cb[j], ci[j]):
                                cb[j] = m10
                                ci[j] = gi2
                            if _better(m01, gi, cb[j2], ci[j2]):
                                cb[j2] = m01
                                ci[j2] = gi
                            if _better(m11, gi2, cb[j2], ci[j2]):
                                cb[j2] = m11
                                ci[j2] = gi2

    return kernel


linf_kernel = _make("max")
l1_kernel = _make("sum")
