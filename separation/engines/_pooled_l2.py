"""Exact l2 nearest neighbours on bytes, pruned by a pooled lower bound.

The features are split into groups of at most :data:`GROUP`; a point's pooled coordinates are
its sums over the groups. For every pair, by Cauchy--Schwarz within each group,

    |x - y|^2  >=  sum_G (S_G(x) - S_G(y))^2 / |G|  >=  |S(x) - S(y)|^2 / GROUP,

so a float32 GEMM on the pooled coordinates (a quarter of the features), with a rigorous bound on
its rounding, rules out most pairs; the exact squared distance (integer sums) is computed only for
the pairs the bound cannot rule out: those whose bound does not exceed the best exact distance so
far of their row -- or of their column, for train--train blocks -- so ties are still decided by
index. The answer never depends on the groups, only the speed does: they are learned from a sample
(:func:`feature_groups`), pairing features whose difference varies least, which on images are
neighbouring pixels.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._int_l2 import thread_chunks
from ._l1_bound import _better, keep_pair, seed_columns, two_pass
from .sad import l2_until

#: features per group (the bound divides by it)
GROUP = 4
#: a feature is paired only with one of the next WINDOW features (in the order of the rows): this
#: covers the pixel below on images up to 256 values wide, at a cost linear in the features
WINDOW = 256
#: sample rows for learning the groups: at most SAMPLE_VALUES values in all (at least 64 rows)
SAMPLE_VALUES = 1 << 20
#: the share of the group sums' total variance the groups of the bound hold (:func:`bound_groups`)
SPREAD = 0.999


#: the share of pairs computed exactly above which the pooled search gives way to the integer
#: GEMM. On full MNIST (2 threads) an exact distance cost about 65 ns of wall time a pair against
#: 13 ns for the whole integer GEMM, so the break-even is near 12%; but the share of a search's
#: first blocks, before the running bests have come down, is up to twice the share of the whole
#: search (there 7%), so only a share well above it, as on data that are not images, stops the bound
MAX_EXACT = 0.3
#: pairs searched before :class:`Pruning` judges the share (four blocks of 2048 x 2048)
MIN_PAIRS = 1 << 24


class Pruning:
    """What the pooled bound has ruled out in one search, and whether it still pays.

    Where the bound cannot rule out most pairs (data that are not images, far apart classes), an
    exact distance per pair costs more than the full integer GEMM: once more than
    :data:`MAX_EXACT` of at least :data:`MIN_PAIRS` pairs have been computed exactly,
    :attr:`active` turns False for the rest of the search (the caller then runs the integer GEMM;
    the answer is the same)."""

    def __init__(self):
        self.max_exact, self.min_pairs = MAX_EXACT, MIN_PAIRS
        self.pairs = self.exact = 0
        self.active = True

    def add(self, pairs: int, exact: int) -> None:
        """Count a block: ``pairs`` searched, ``exact`` of them computed exactly."""
        self.pairs += pairs
        self.exact += exact
        if self.pairs >= self.min_pairs and self.exact > self.max_exact * self.pairs:
            self.active = False


def _pair_costs(sample: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(i, j, cost)`` of every feature pair ``i < j <= i + WINDOW`` of ``sample`` (rows, m):
    the variance of ``x_i - x_j`` over the rows, ``var_i + var_j - 2 cov_ij``, from covariances
    computed by a GEMM one band of :data:`WINDOW` features at a time."""
    s = sample.astype(np.float32)
    s -= s.mean(axis=0)
    m = s.shape[1]
    var = (s * s).mean(axis=0)
    ii, jj, cc = [], [], []
    for a in range(0, m, WINDOW):
        b, e = min(m, a + WINDOW), min(m, a + 2 * WINDOW + 1)
        cov = (s[:, a:b].T @ s[:, a:e]) / len(s)
        i, j = np.nonzero(np.triu(np.ones((b - a, e - a), dtype=bool), 1) &
                          ~np.triu(np.ones((b - a, e - a), dtype=bool), WINDOW + 1))
        ii.append(a + i)
        jj.append(a + j)
        cc.append(var[a + i] + var[a + j] - 2 * cov[i, j])
    if not ii:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty, np.empty(0, dtype=np.float32)
    return np.concatenate(ii), np.concatenate(jj), np.concatenate(cc)


@njit(cache=True)
def _greedy(ii, jj, order, m):  # pragma: no cover - numba
    """Greedy matching: pairs in ``order``, each feature in at most one; -1 where unmatched."""
    mate = np.full(m, -1, dtype=np.int64)
    for k in order:
        a, b = ii[k], jj[k]
        if mate[a] < 0 and mate[b] < 0:
            mate[a], mate[b] = b, a
    return mate


def _merge(sample: np.ndarray, groups: list[list[int]]) -> list[list[int]]:
    """Groups merged two by two: each with the group whose sum differs least from its own."""
    sums = np.stack([sample[:, g].sum(axis=1) for g in groups], axis=1)
    ii, jj, cc = _pair_costs(sums)
    mate = _greedy(ii, jj, np.argsort(cc, kind="stable"), len(groups))
    out = []
    for a, g in enumerate(groups):
        b = mate[a]
        if b < 0:
            out.append(g)
        elif a < b:
            out.append(g + groups[b])
    return out


def feature_groups(x: np.ndarray, size: int = GROUP) -> np.ndarray:
    """Groups of at most ``size`` (a power of two) features of ``x`` (n, d): ``(n_groups, size)``
    int64 feature indices, -1 for the empty places of a smaller group; every feature in one group.

    Learned from evenly spaced rows of ``x`` by rounds of greedy matching (features, then pairs,
    ...: log2 ``size`` rounds), each pairing what differs least (see :func:`_pair_costs`), and put in order of
    decreasing variance of their sums (the order :func:`exact_layout` gives the exact distances,
    whose early exit then comes early); deterministic."""
    n, d = x.shape
    rows = max(64, SAMPLE_VALUES // max(1, d))
    sample = x[:: max(1, n // rows)][:rows].astype(np.float32)
    groups = [[f] for f in range(d)]
    for _ in range(size.bit_length() - 1):
        groups = _merge(sample, groups)
    spread = [sample[:, g].sum(axis=1, dtype=np.float64).var() for g in groups]
    groups = [groups[k] for k in np.argsort(-np.asarray(spread), kind="stable")]
    out = np.full((len(groups), size), -1, dtype=np.int64)
    for k, g in enumerate(groups):
        out[k, :len(g)] = g
    return out


def bound_groups(x: np.ndarray, groups: np.ndarray) -> int:
    """How many of ``groups`` (in :func:`feature_groups`' order of decreasing spread) the pooled
    bound uses: the fewest whose sums hold :data:`SPREAD` of the total variance of all group sums
    over evenly spaced rows of ``x`` (n, d) -- the bound over any set of groups holds, and groups
    that hardly vary (an image's border) add a GEMM's work but almost nothing to it; all where
    nothing varies."""
    n, d = x.shape
    rows = max(64, SAMPLE_VALUES // max(1, d))
    spread = pooled(x[:: max(1, n // rows)][:rows], groups).astype(np.float64).var(axis=0)
    total = spread.sum()
    if len(groups) == 0 or total == 0:
        return len(groups)
    return min(len(groups), int(np.searchsorted(np.cumsum(spread), SPREAD * total)) + 1)


def exact_layout(groups: np.ndarray) -> np.ndarray:
    """The feature order of the rows the exact distances read: group by group (``(d,)`` int64)."""
    return groups[groups >= 0]


def pooled(x: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Pooled coordinates of byte rows ``x`` (n, d): ``(n, n_groups)`` float32, each group's sum
    minus ``128 * GROUP`` (integers of size at most 512: exact in float32)."""
    out = np.empty((len(x), len(groups)), dtype=np.float32)
    _pool(x, groups, out)
    return out


@njit(parallel=True, cache=True)
def _pool(x, groups, out):  # pragma: no cover - numba
    for i in prange(x.shape[0]):
        for g in range(groups.shape[0]):
            s = -128 * GROUP
            for k in range(groups.shape[1]):
                f = groups[g, k]
                if f >= 0:
                    s += np.int64(x[i, f])
            out[i, g] = s


@njit(inline="always")
def _offer(Q, D, i, j, lb, gi, gj, t, rb, ri, col_best, col_idx, cols):  # pragma: no cover - numba
    """Exact distance of pair (i, j), whose lower bound is ``lb``, folded into the row's ``(rb,
    ri)`` (returned) and, with ``cols``, into thread ``t``'s column bests; computed only as far
    as a side the bound leaves open could still use it."""
    cb = col_best[t, j] if cols else -1.0
    limit = max(rb if lb <= rb else -1.0, cb if lb <= cb else -1.0)
    s = l2_until(Q[i], D[j], limit)
    if s <= limit:
        if _better(s, gj, rb, ri):
            rb, ri = np.float64(s), gj
        if cols and _better(s, gi, col_best[t, j], col_idx[t, j]):
            col_best[t, j], col_idx[t, j] = s, gi
    return rb, ri


@njit(parallel=True, cache=True)
def _partners(xy, qn, dn, chunks, per, cols, row_arg, col_min, col_arg):  # pragma: no cover - numba
    """Each row's column of smallest bound (``row_arg``) and, with ``cols``, per row chunk t each
    column's row of smallest bound (``col_min``/``col_arg`` (T, nd))."""
    nq, nd = xy.shape
    for t in prange(chunks):
        for i in range(t * per, min(nq, (t + 1) * per)):
            lo = np.inf
            jm = 0
            a = qn[i]
            for j in range(nd):
                two = 2.0 * np.float64(xy[i, j])
                v = dn[j] - two
                if v < lo:
                    lo, jm = v, j
                if cols:
                    w = a - two
                    if w < col_min[t, j]:
                        col_min[t, j], col_arg[t, j] = w, i
            row_arg[i] = jm


@njit(parallel=True, cache=True)
def l2_block(Q, D, xy, qn, dn, tol, q_gidx, d_gidx, row_best, row_idx, col_best, col_idx):  # pragma: no cover
    """Fold one block of byte rows into running bests (exact squared l2 in byte units, ties to the
    smaller global index). ``Q`` (nq, k) / ``D`` (nd, k) uint8 rows padded to whole chunks
    (:func:`.sad.padded`); ``xy`` (nq, nd) float32 dot
    products of their pooled coordinates, ``qn``/``dn`` the exact pooled squared norms (float64)
    and ``tol`` (nq,) a bound on the rounding of ``qn[i] + dn[j] - 2 xy[i, j]`` in row i, so
    ``(qn[i] + dn[j] - 2 xy[i, j] - tol[i]) / GROUP`` is a lower bound on the pair's squared
    distance; ``row_best``/``row_idx`` (nq,) float64/int64 updated in place; ``col_best``/
    ``col_idx`` (T, nd): one row per thread, each starting from the columns' bests (the caller
    folds them; shape ``(T, 0)``: rows only, in T chunks). Returns how many pairs it computed.

    First every row, and every column, takes the pair of its smallest bound: a close partner, so
    the bound prunes from the start; then every pair the bound cannot rule out is computed."""
    nq, nd = xy.shape
    cols = col_best.shape[1] > 0
    chunks, per = thread_chunks(nq, col_best.shape[0])
    row_arg = np.zeros(nq, dtype=np.int64)
    col_min = np.full(col_best.shape, np.inf)
    col_arg = np.zeros(col_best.shape, dtype=np.int64)
    _partners(xy, qn, dn, chunks, per, cols, row_arg, col_min, col_arg)
    seed_columns(Q, D, col_min, col_arg, q_gidx, col_best, col_idx, True)
    scale = 1.0 / GROUP
    computed = col_best.shape[1]
    for t in prange(chunks):
        for i in range(t * per, min(nq, (t + 1) * per)):
            rb, ri, gi = row_best[i], row_idx[i], q_gidx[i]
            if nd == 0:
                continue
            base = qn[i] - tol[i]
            jm = row_arg[i]
            lb = (base + (dn[jm] - 2.0 * np.float64(xy[i, jm]))) * scale
            rb, ri = _offer(Q, D, i, jm, lb, gi, d_gidx[jm], t, rb, ri, col_best, col_idx, cols)
            c = 1
            for j in range(nd):
                lb = (base + (dn[j] - 2.0 * np.float64(xy[i, j]))) * scale
                if j == jm or (lb > rb and (not cols or lb > col_best[t, j])):
                    continue
                rb, ri = _offer(Q, D, i, j, lb, gi, d_gidx[j], t, rb, ri, col_best, col_idx, cols)
                c += 1
            row_best[i], row_idx[i] = rb, ri
            computed += c
    return computed


@njit(parallel=True, cache=True)
def _within(Q, D, xy, qn, dn, tol, limit, tried, starts, ii, jj, kk, fill):  # pragma: no cover - numba
    """Per row, the pairs with exact squared l2 ``<= limit``: counted into ``starts[i + 1]``
    (``fill`` False) or written from ``starts[i]`` on (``fill`` True); ``tried[i]``: how many
    pairs of the row the bound left to compute exactly."""
    nq, nd = xy.shape
    top = GROUP * np.float64(limit)
    for i in prange(nq):
        p = starts[i] if fill else 0
        base = qn[i] - tol[i]
        c = 0
        for j in range(nd):
            if base + (dn[j] - 2.0 * np.float64(xy[i, j])) > top:  # the bound exceeds the limit
                continue
            p = keep_pair(l2_until(Q[i], D[j], limit), limit, i, j, p, fill, ii, jj, kk)
            c += 1
        tried[i] = c
        if not fill:
            starts[i + 1] = p


def within(Q: np.ndarray, D: np.ndarray, xy: np.ndarray, qn: np.ndarray, dn: np.ndarray, tol: np.ndarray,
           limit: int):
    """The pairs of a block of byte rows (padded, in :func:`exact_layout`) whose exact squared l2
    distance is ``<= limit`` (byte units): ``((i, j, k) int64 sorted by (i, j), how many pairs were
    computed exactly)``; exact only where the pooled bound allows it (``xy``, ``qn``, ``dn``,
    ``tol``: as for :func:`l2_block`)."""
    return two_pass(_within, len(Q), Q, D, xy, qn, dn, tol, np.int64(limit), counted=True)

__all__ = ["GROUP", "MAX_EXACT", "MIN_PAIRS", "WINDOW", "Pruning", "SPREAD", "bound_groups", "exact_layout",
           "feature_groups", "l2_block", "pooled", "within"]
