"""Exact l1 nearest neighbours and range search on bytes, pruned by a pooled lower bound.

The features are split into groups of at most :data:`GROUP` (learned as for l2, see
:func:`._pooled_l2.feature_groups`: on images, neighbouring pixels); a point's code of a group is
its sum over the group shifted right by :data:`SHIFT` bits (``S = 2^SHIFT q + r``, ``0 <= r <
2^SHIFT``: one byte). For every pair and any set of groups, by the triangle inequality,

    |x - y|_1  >=  sum_G |S_G(x) - S_G(y)|  >=  sum_G (2^SHIFT |q_G(x) - q_G(y)| - (2^SHIFT - 1)),

so the sum of absolute differences of the codes (:mod:`.sad`: an eighth of the bytes of an exact
distance, in whole 32-byte chunks: the groups of largest spread, a multiple of 32 of them) rules
out most pairs, and the exact l1 distance (:func:`.sad.l1_until`, with early exit) is computed
only for the pairs it cannot rule out: those whose bound does not exceed the best so far of their
row -- or of their column, for train--train blocks -- so ties are still decided by index. The bound
costs an eighth of an exact distance, so it always pays; the answer never depends on the groups.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._int_l2 import thread_chunks
from ._l1_bound import _better, keep_pair, seed_columns, two_pass
from ._pooled_l2 import exact_layout, feature_groups
from .sad import LANES, l1_until, padded, sad

#: features per group (a power of two)
GROUP = 8
#: bits a group's sum (at most 255 GROUP) is shifted right by to make its byte code
SHIFT = 3


class Codes:
    """The l1 bound's set-up for one search: the feature ``groups`` (learned from ``x`` (n, d)
    uint8), how many of them the codes hold (``used``) and the bound's ``slack``
    (``(2^SHIFT - 1) used``, in byte units)."""

    def __init__(self, x: np.ndarray):
        self.groups = feature_groups(x, GROUP)
        n_groups = len(self.groups)
        self.used = n_groups if n_groups < LANES else n_groups - n_groups % LANES
        self.slack = ((1 << SHIFT) - 1) * self.used

    def codes(self, x: np.ndarray) -> np.ndarray:
        """The byte codes of rows ``x`` (n, d): ``(n, k)`` uint8, ``k`` the multiple of
        :data:`LANES` that holds the used groups (zeros after them)."""
        out = np.zeros((len(x), max(LANES, self.used)), dtype=np.uint8)
        _codes(x, self.groups[:self.used], out)
        return out

    def rows(self, x: np.ndarray) -> np.ndarray:
        """Rows ``x`` in the groups' feature order (spread first: early exits come early), padded
        for :mod:`.sad`."""
        return padded(x[:, exact_layout(self.groups)])


@njit(parallel=True, cache=True)
def _codes(x, groups, out):  # pragma: no cover - numba
    for i in prange(x.shape[0]):
        for g in range(groups.shape[0]):
            s = 0
            for k in range(groups.shape[1]):
                f = groups[g, k]
                if f >= 0:
                    s += np.int64(x[i, f])
            out[i, g] = s >> SHIFT


@njit(parallel=True, cache=True)
def _bounds(Qc, Dc, chunks, per, cols, B, row_arg, col_min, col_arg):  # pragma: no cover - numba
    """``B`` (nq, nd): the codes' sums of absolute differences; each row's column of smallest
    (``row_arg``) and, with ``cols``, per row chunk t each column's row of smallest
    (``col_min``/``col_arg`` (T, nd))."""
    nq, nd = B.shape
    n = Qc.shape[1] // LANES
    for t in prange(chunks):
        for i in range(t * per, min(nq, (t + 1) * per)):
            lo = np.iinfo(np.int64).max
            jm = 0
            for j in range(nd):
                b = sad(Qc[i], Dc[j], 0, n)
                B[i, j] = b
                if b < lo:
                    lo, jm = b, j
                if cols and b < col_min[t, j]:
                    col_min[t, j], col_arg[t, j] = b, i
            row_arg[i] = jm


@njit(inline="always")
def _codes_limit(best, slack):  # pragma: no cover - numba
    """The largest code sum whose bound does not exceed ``best`` (a float64 l1 distance or inf):
    a pair with a larger one is ruled out."""
    return np.int64(np.iinfo(np.int32).max) if best == np.inf else (np.int64(best) + slack) >> SHIFT


@njit(inline="always")
def _offer(Q, D, i, j, gi, gj, t, rb, ri, col_best, col_idx, cols, limit):  # pragma: no cover - numba
    """Exact l1 of pair (i, j) folded into the row's ``(rb, ri)`` (returned) and, with ``cols``,
    into thread ``t``'s column bests; computed only as far as ``limit`` (the largest best of a
    side the bound leaves open). Returns whether a column best changed too."""
    s = l1_until(Q[i], D[j], limit)
    changed = False
    if s <= limit:
        if _better(s, gj, rb, ri):
            rb, ri = np.float64(s), gj
        if cols and _better(s, gi, col_best[t, j], col_idx[t, j]):
            col_best[t, j], col_idx[t, j] = s, gi
            changed = True
    return rb, ri, changed


@njit(parallel=True, cache=True)
def l1_block(Q, D, Qc, Dc, slack, q_gidx, d_gidx, row_best, row_idx, col_best, col_idx):  # pragma: no cover
    """Fold one block of byte rows into running bests (exact l1 in byte units, ties to the
    smaller global index). ``Q`` (nq, k) / ``D`` (nd, k) the rows and ``Qc``/``Dc`` their codes
    (:class:`Codes`); ``slack`` the bound's; ``row_best``/``row_idx`` (nq,) float64/int64 updated in
    place; ``col_best``/``col_idx`` (T, nd): one row per thread, each starting from the columns'
    bests (the caller folds them; shape ``(T, 0)``: rows only, in T chunks). Returns how many
    pairs it computed exactly.

    First every row, and every column, takes the pair of its smallest bound: a close partner, so
    the bound prunes from the start; then every pair the bound cannot rule out is computed (the
    test on the code sums: at most the :func:`_codes_limit` of the row's or the column's best)."""
    nq, nd = len(Qc), len(Dc)
    cols = col_best.shape[1] > 0
    chunks, per = thread_chunks(nq, col_best.shape[0])
    B = np.empty((nq, nd), dtype=np.int32)
    row_arg = np.zeros(nq, dtype=np.int64)
    col_min = np.full(col_best.shape, np.iinfo(np.int64).max)
    col_arg = np.zeros(col_best.shape, dtype=np.int64)
    _bounds(Qc, Dc, chunks, per, cols, B, row_arg, col_min, col_arg)
    seed_columns(Q, D, col_min, col_arg, q_gidx, col_best, col_idx, False)
    col_limit = np.empty(col_best.shape, dtype=np.int64)
    computed = col_best.shape[1]
    for t in prange(chunks):
        for j in range(col_best.shape[1]):
            col_limit[t, j] = _codes_limit(col_best[t, j], slack)
        for i in range(t * per, min(nq, (t + 1) * per)):
            rb, ri, gi = row_best[i], row_idx[i], q_gidx[i]
            if nd == 0:
                continue
            c = 0
            rl = _codes_limit(rb, slack)
            for k in range(-1, nd):  # the row's partner first
                j = row_arg[i] if k < 0 else k
                if k == row_arg[i]:
                    continue
                b = np.int64(B[i, j])
                if b > rl and (not cols or b > col_limit[t, j]):
                    continue
                limit = max(rb if b <= rl else -1.0, col_best[t, j] if cols and b <= col_limit[t, j] else -1.0)
                rb, ri, changed = _offer(Q, D, i, j, gi, d_gidx[j], t, rb, ri, col_best, col_idx, cols, limit)
                rl = _codes_limit(rb, slack)
                if changed:
                    col_limit[t, j] = _codes_limit(col_best[t, j], slack)
                c += 1
            row_best[i], row_idx[i] = rb, ri
            computed += c
    return computed


@njit(parallel=True, cache=True)
def _within(Q, D, Qc, Dc, slack, limit, tried, starts, ii, jj, kk, fill):  # pragma: no cover - numba
    """Per row, the pairs with exact l1 ``<= limit``: counted into ``starts[i + 1]`` (``fill``
    False) or written from ``starts[i]`` on (``fill`` True); ``tried[i]``: how many pairs of the
    row the bound left to compute exactly."""
    n = Qc.shape[1] // LANES
    step = 1 << SHIFT
    for i in prange(len(Qc)):
        p = starts[i] if fill else 0
        c = 0
        for j in range(len(Dc)):
            if step * sad(Qc[i], Dc[j], 0, n) - slack > limit:
                continue
            p = keep_pair(l1_until(Q[i], D[j], limit), limit, i, j, p, fill, ii, jj, kk)
            c += 1
        tried[i] = c
        if not fill:
            starts[i + 1] = p


def within(Q: np.ndarray, D: np.ndarray, Qc: np.ndarray, Dc: np.ndarray, slack: int, limit: int):
    """The pairs of a block of rows (:meth:`Codes.rows`, codes :meth:`Codes.codes`) whose exact l1
    distance is ``<= limit`` (byte units): ``((i, j, k) int64 sorted by (i, j), how many pairs were
    computed exactly)``; exact l1 only where the pooled bound allows it."""
    return two_pass(_within, len(Q), Q, D, Qc, Dc, np.int64(slack), np.int64(limit), counted=True)

__all__ = ["GROUP", "SHIFT", "Codes", "l1_block", "within"]
