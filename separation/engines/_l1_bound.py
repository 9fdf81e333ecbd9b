"""Exact l1 on bytes, pruned by the exact l2 of the integer GEMM: nearest neighbours and range search.

Every term of a byte pair is at most 255, so ``|x - y|_1 >= |x - y|_2^2 / 255``: the int8 GEMM
(:mod:`._int_l2`) gives each pair's exact squared l2 distance and with it the integer lower bound
``ceil(l2^2 / 255)`` on its l1 distance. The kernel below computes the exact l1 distance (integer
sums, stopping once past what it could still improve) only for pairs whose bound does not exceed
the best so far of their row -- or of their column, for train--train blocks -- so ties are still
decided by index; :func:`within` (the range search) computes it only where the bound is within the
radius. On near-binary images (MNIST) the bound is close to the distance itself and few pairs are
computed exactly.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._int_l2 import thread_chunks
from .sad import l1_until, l2_until

#: features summed between two early-exit checks (at most 128: a chunk's sum fits in 16 bits)
CHECK = 64


@njit(inline="always")
def _better(d, g, best, bidx):  # pragma: no cover - numba
    return d < best or (d == best and g < bidx)


@njit(inline="always")
def _l1(q, row, limit):  # pragma: no cover - numba
    """Exact l1 distance of two byte rows (int64), or a partial sum above ``limit`` once past it.
    Chunks of ``CHECK`` terms are summed in 16 bits (at most 64 x 255: exact) -- a loop the compiler
    vectorises -- with the early exit between chunks."""
    d = q.shape[0]
    full = d - d % CHECK
    s = np.int64(0)
    for k0 in range(0, full, CHECK):
        acc = np.int16(0)
        for k in range(k0, k0 + CHECK):
            acc += abs(np.int16(q[k]) - np.int16(row[k]))
        s += acc
        if s > limit:
            return s
    for k in range(full, d):
        s += abs(np.int64(q[k]) - np.int64(row[k]))
    return s


@njit(inline="always")
def _sq(qn, dn, xy, i, j):  # pragma: no cover - numba
    """The exact squared l2 distance of pair (i, j) of a block, as float64 (exact below 2**53)."""
    return np.float64(qn[i] + dn[j] - 2 * np.int64(xy[i, j]))


@njit(parallel=True, cache=True)
def l1_block(Q, D, xy, qn, dn, q_gidx, d_gidx, row_best, row_idx, col_best, col_idx):  # pragma: no cover
    """Fold one block of byte rows into running bests (exact l1 in byte units, ties to the smaller
    global index). ``Q`` (nq, d) / ``D`` (nd, d) uint8; ``xy`` (nq, nd) their exact shifted dot
    products and ``qn``/``dn`` shifted squared norms (:mod:`._int_l2`: ``qn[i] + dn[j] - 2 xy[i, j]``
    is the squared l2 distance); ``row_best``/``row_idx`` (nq,) float64/int64 updated in place;
    ``col_best``/``col_idx`` (T, nd): one row per thread, each starting from the columns' bests
    (the caller folds them; shape ``(T, 0)``: rows only, in T chunks)."""
    nq, nd = xy.shape
    cols = col_best.shape[1] > 0
    n_chunks, per = thread_chunks(nq, col_best.shape[0])
    for t in prange(n_chunks):
        for i in range(t * per, min(nq, (t + 1) * per)):
            rb, ri, gi = row_best[i], row_idx[i], q_gidx[i]
            for j in range(nd):
                # the bound ceil(l2 / 255) > best  <=>  l2 > 255 best (best an integer or inf)
                l2 = _sq(qn, dn, xy, i, j)
                cb = col_best[t, j] if cols else -1.0
                if l2 > 255.0 * rb and l2 > 255.0 * cb:
                    continue
                limit = max(rb, cb)
                s = _l1(Q[i], D[j], limit)
                if s > limit:
                    continue
                gj = d_gidx[j]
                if _better(s, gj, rb, ri):
                    rb, ri = s, gj
                if cols and _better(s, gi, col_best[t, j], col_idx[t, j]):
                    col_best[t, j], col_idx[t, j] = s, gi
            row_best[i], row_idx[i] = rb, ri


@njit(parallel=True, cache=True)
def _within(Q, D, xy, qn, dn, limit, starts, ii, jj, kk, fill):  # pragma: no cover - numba
    """Per row, the pairs with exact l1 ``<= limit``: counted into ``starts[i + 1]`` (``fill``
    False) or written from ``starts[i]`` on (``fill`` True)."""
    nq, nd = xy.shape
    thr = 255.0 * limit
    for i in prange(nq):
        p = starts[i] if fill else 0
        for j in range(nd):
            if _sq(qn, dn, xy, i, j) > thr:  # ceil(l2^2 / 255) > limit
                continue
            p = keep_pair(_l1(Q[i], D[j], limit), limit, i, j, p, fill, ii, jj, kk)
        if not fill:
            starts[i + 1] = p


@njit(inline="always")
def keep_pair(s, limit, i, j, p, fill, ii, jj, kk):  # pragma: no cover - numba
    """A range kernel's pair (i, j) at distance ``s``: kept if ``s <= limit`` -- written at slot
    ``p`` when ``fill`` -- and the next slot returned."""
    if s <= limit:
        if fill:
            ii[p], jj[p], kk[p] = i, j, s
        p += 1
    return p


def two_pass(kernel, nq: int, *args, counted: bool = False):
    """``(i, j, k)`` int64 of the pairs a range ``kernel(*args, starts, ii, jj, kk, fill)`` keeps
    from a block of ``nq`` rows, sorted by ``(i, j)``: counted per row first, then written.
    ``counted``: the kernel takes a ``tried`` (nq,) int64 before ``starts`` and sets each row's
    pairs computed exactly; returns ``((i, j, k), their total)``."""
    tried = np.zeros(nq, dtype=np.int64)
    if counted:
        args = (*args, tried)
    starts = np.zeros(nq + 1, dtype=np.int64)
    empty = np.empty(0, dtype=np.int64)
    kernel(*args, starts, empty, empty, empty, False)
    np.cumsum(starts, out=starts)
    n = int(starts[-1])
    ii, jj, kk = (np.empty(n, dtype=np.int64) for _ in range(3))
    if n:
        kernel(*args, starts, ii, jj, kk, True)
    return ((ii, jj, kk), int(tried.sum())) if counted else (ii, jj, kk)


def within(Q: np.ndarray, D: np.ndarray, xy: np.ndarray, qn: np.ndarray, dn: np.ndarray, limit: int):
    """The pairs of a block of byte rows whose exact l1 distance is ``<= limit`` (byte units):
    ``(i, j, k)`` int64, sorted by ``(i, j)``; exact l1 only where the l2 bound allows it."""
    return two_pass(_within, len(Q), Q, D, xy, qn, dn, np.int64(limit))


@njit(parallel=True, cache=True)
def seed_columns(Q, D, col_min, col_arg, q_gidx, col_best, col_idx, squared):  # pragma: no cover - numba
    """Start each column ``j`` of a block from its pair of smallest bound: row ``col_arg[t, j]`` of
    the thread ``t`` with the smallest ``col_min[t, j]``. Its exact distance (padded byte rows
    ``Q``/``D``: squared l2 with ``squared``, else l1; computed as far as the column's best) is
    folded into every thread's column best ``col_best``/``col_idx`` (T, nd)."""
    for j in prange(col_best.shape[1]):
        t = np.argmin(col_min[:, j])
        i = col_arg[t, j]
        limit = col_best[0, j]
        s = l2_until(Q[i], D[j], limit) if squared else l1_until(Q[i], D[j], limit)
        if _better(s, q_gidx[i], col_best[0, j], col_idx[0, j]):
            for u in range(col_best.shape[0]):
                col_best[u, j], col_idx[u, j] = s, q_gidx[i]


def fold_columns(col_best: np.ndarray, col_idx: np.ndarray, best: np.ndarray, idx: np.ndarray) -> None:
    """Fold the per-thread column bests ``(T, nd)`` into ``best``/``idx`` ``(nd,)`` in place:
    smallest distance, then smallest index."""
    m = col_best.min(axis=0)
    i = np.where(col_best == m[None, :], col_idx, np.iinfo(np.int64).max).min(axis=0)
    better = (m < best) | ((m == best) & (i < idx))
    best[better], idx[better] = m[better], i[better]


__all__ = ["CHECK", "fold_columns", "keep_pair", "l1_block", "seed_columns", "two_pass", "within"]
