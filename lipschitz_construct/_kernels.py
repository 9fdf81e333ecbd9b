"""numba kernels: exact per-class l-inf nearest neighbours with query-specific pixel probes.

The support (training) set is stored sorted by class, twice: row-major ``D (n, d)`` for exact
distances and column-major ``DT (d, n)`` for probing. For every query and every block of
same-class support points the kernel

1. knows a *pruning limit* ``lim``: a support point whose distance is ``>= lim`` cannot change
   what is being computed (the class minimum in ``all`` mode; the two smallest class minima and
   the predicted class in ``top2`` mode);
2. computes, vectorised over the block, a lower bound ``lb = max_{k in probes} |q_k - y_k|`` over
   a few *probe* pixels chosen for this query and class (the pixels where a large difference is
   most likely, from per-class histograms of the support values);
3. computes the exact distance only for the points with ``lb < lim``.

The lower bound is a maximum over a subset of the terms of the exact maximum, so pruning never
changes a result: the output equals a float64 brute force (see the tests). Three flavours:

``u8``     uint8 queries and uint8 support: integer arithmetic, distances in raw byte units;
``f64u8``  float64 queries, uint8 support: probes on ``floor/ceil(255 q)`` (a rigorous lower
           bound, pruned with a safety margin), exact distances ``max |q - y / 255.0|`` in float64
           -- the same numbers ``separation`` computes;
``f64``    float64 queries and support: float64 throughout.
"""
from __future__ import annotations

import numba as nb
import numpy as np
from numba import types
from numba.extending import overload

QUERY_BLOCK = 16  # queries per parallel task; they share each support block while it is in cache
SUPPORT_BLOCK = 2048  # support points per block (blocks never straddle classes)
MAX_PROBES = 64
PROBE_STEP = 8  # probes between two "how many points are still alive" checks
SEEDS_PER_CLASS = 8
BIG_INT = np.iinfo(np.int64).max // 4
#: relative / absolute safety margin when a float limit is turned into a byte-unit threshold
MARGIN_REL = 1e-12
MARGIN_ABS = 1e-9
#: probe keys pack (count, pixel) into one int64: at most this many features
KEY_SHIFT = 1 << 16


# -- flavour-specific pieces, chosen by argument types at compile time ------------------------------
def _probe_col(m, col, lo, hi, n):  # pragma: no cover - replaced by the overload in jitted code
    raise NotImplementedError


@overload(_probe_col)
def _ov_probe_col(m, col, lo, hi, n):
    if m.dtype == types.uint8:
        def impl(m, col, lo, hi, n):  # byte bounds: lo <= 255 q <= hi, gap to y (0 if inside)
            for jj in range(n):
                y = col[jj]
                m[jj] = max(m[jj], np.uint8(max(lo, y) - min(hi, y)))
        return impl

    def impl_f(m, col, lo, hi, n):  # float support: the exact term |q_k - y_k|
        for jj in range(n):
            m[jj] = max(m[jj], abs(lo - col[jj]))
    return impl_f


def _exact(q, row):  # pragma: no cover
    raise NotImplementedError


@overload(_exact)
def _ov_exact(q, row):
    if q.dtype == types.uint8:
        def impl_u8(q, row):
            acc = np.uint8(0)
            for k in range(q.shape[0]):
                a = q[k]
                b = row[k]
                acc = max(acc, np.uint8(max(a, b) - min(a, b)))
            return np.int64(acc)
        return impl_u8
    if row.dtype == types.uint8:
        def impl_f64u8(q, row):  # the value separation compares with: float64(y) / 255
            acc = 0.0
            for k in range(q.shape[0]):
                acc = max(acc, abs(q[k] - np.float64(row[k]) / 255.0))
            return acc
        return impl_f64u8

    def impl_f64(q, row):
        acc = 0.0
        for k in range(q.shape[0]):
            acc = max(acc, abs(q[k] - row[k]))
        return acc
    return impl_f64


def _just_above(v):  # pragma: no cover
    raise NotImplementedError


@overload(_just_above)
def _ov_just_above(v):
    if isinstance(v, types.Integer):
        return lambda v: v + 1
    return lambda v: np.nextafter(v, np.inf)


def _probe_limit(lim, m):  # pragma: no cover
    raise NotImplementedError


@overload(_probe_limit)
def _ov_probe_limit(lim, m):
    """(threshold in the units of ``m``, whether probing can prune anything): prune iff m >= t."""
    if isinstance(lim, types.Integer):
        def impl_int(lim, m):
            if lim > 255:
                return np.uint8(255), False
            return np.uint8(max(lim, 0)), True
        return impl_int
    if m.dtype == types.uint8:
        def impl_bytes(lim, m):
            # lb >= t  =>  255 d >= lb >= 255 lim (1 + rel) + abs  =>  the computed d is > lim
            t = np.ceil(lim * 255.0 * (1.0 + MARGIN_REL) + MARGIN_ABS)
            if not (t <= 255.0):
                return np.uint8(255), False
            return np.uint8(max(t, 0.0)), True
        return impl_bytes

    def impl_float(lim, m):
        return lim, lim < np.inf
    return impl_float


def _raw_of(lim):  # pragma: no cover
    raise NotImplementedError


@overload(_raw_of)
def _ov_raw_of(lim):
    """A limit in byte units (for choosing probes)."""
    if isinstance(lim, types.Integer):
        return lambda lim: lim

    def impl(lim):
        if not (lim < 2.0):
            return BIG_INT
        return np.int64(np.floor(lim * 255.0))
    return impl


# -- shared pieces ---------------------------------------------------------------------------------
@nb.njit(cache=True, nogil=True)
def _limit(bi, c, top2):
    """Prune a class-``c`` support point iff its distance is >= the returned value."""
    bc = bi[c]
    if not top2:
        return bc
    f = bi[0]
    s = bi[1]
    if s < f:
        f, s = s, f
    for cc in range(2, bi.shape[0]):
        v = bi[cc]
        if v < f:
            s = f
            f = v
        elif v < s:
            s = v
    # the two smallest class minima and the (smallest-index) argmin class can only change through a
    # distance < s -- or == s when s ties the smallest one
    lim = s if s > f else _just_above(s)
    return bc if bc < lim else lim


@nb.njit(cache=True, nogil=True)
def _choose_probes(out, qlo8, qhi8, Hc, nc, t_raw, keys):
    """Write into ``out`` the pixels where most class points lie >= ``t_raw`` bytes from the query."""
    d = qlo8.shape[0]
    P = out.shape[0]
    if P == 0:
        return
    for k in range(d):
        a = np.int64(qlo8[k]) - t_raw + 1
        b = np.int64(qhi8[k]) + t_raw
        lo_cnt = Hc[k, min(max(a, 0), 256)]
        hi_cnt = nc - Hc[k, min(max(b, 0), 256)]
        keys[k] = (lo_cnt + hi_cnt) * KEY_SHIFT + (KEY_SHIFT - 1 - k)
    part = np.partition(keys, d - P)
    top = np.sort(part[d - P:])
    for t in range(P):
        out[t] = KEY_SHIFT - 1 - (top[P - 1 - t] % KEY_SHIFT)


@nb.njit(parallel=True, nogil=True, cache=True)
def scan(QX, QLO, QHI, QLO8, QHI8, DT, D, H, hist_of, counts, blk_start, blk_cls, row_cls,
         seed_rows, best, bidx, top2, pmax, mproto, stats):
    """Update ``best``/``bidx`` ``(nq, n_classes)`` in place (see the module docstring).

    ``QX`` exact queries; ``QLO/QHI`` probe bounds in the support's units (uint8 support: byte
    floor/ceil of ``255 q``; float support: ``q``); ``QLO8/QHI8`` byte bounds for probe choice;
    ``mproto``: an empty array of the lower-bound dtype (uint8 for byte probes, float64 else).
    """
    nq, d = QX.shape
    nblk = blk_cls.shape[0]
    P = min(pmax, d)
    nqb = (nq + QUERY_BLOCK - 1) // QUERY_BLOCK
    for b in nb.prange(nqb):
        q0 = b * QUERY_BLOCK
        q1 = min(nq, q0 + QUERY_BLOCK)
        m = np.zeros(SUPPORT_BLOCK, mproto.dtype)
        probes = np.zeros((q1 - q0, P), np.int64)  # always valid pixel indices
        keys = np.empty(d, np.int64)
        # 1) seeds: a few exact distances per class give every limit a finite start
        for i in range(q0, q1):
            q = QX[i]
            bi = best[i]
            ii = bidx[i]
            for s in range(seed_rows.shape[0]):
                j = seed_rows[s]
                c = row_cls[j]
                dist = _exact(q, D[j])
                if dist < bi[c]:
                    bi[c] = dist
                    ii[c] = j
        # 2) blocks of one class each, in class order
        for bb in range(nblk):
            j0 = blk_start[bb]
            j1 = blk_start[bb + 1]
            n = j1 - j0
            c = blk_cls[bb]
            new_class = bb == 0 or blk_cls[bb - 1] != c
            for i in range(q0, q1):
                li = i - q0
                q = QX[i]
                bi = best[i]
                ii = bidx[i]
                lim = _limit(bi, c, top2)
                if lim <= 0:  # every distance is >= 0: nothing in this block can matter
                    continue
                plim, can_prune = _probe_limit(lim, m)
                if new_class:
                    h = hist_of[c]
                    _choose_probes(probes[li], QLO8[i], QHI8[i], H[h], counts[h], _raw_of(lim), keys)
                m[:n] = 0
                t = 0
                alive = n
                if can_prune:
                    pr = probes[li]
                    while t < P:
                        te = min(P, t + PROBE_STEP)
                        for tt in range(t, te):
                            k = pr[tt]
                            _probe_col(m, DT[k, j0:j1], QLO[i, k], QHI[i, k], n)
                        t = te
                        alive = 0
                        for jj in range(n):
                            alive += m[jj] < plim
                        if alive * 16 <= n:
                            break
                stats[i, 0] += t
                if alive == 0:
                    continue
                for jj in range(n):
                    if can_prune and m[jj] >= plim:
                        continue
                    j = j0 + jj
                    stats[i, 1] += 1
                    dist = _exact(q, D[j])
                    if dist < bi[c]:
                        bi[c] = dist
                        ii[c] = j
                        lim = _limit(bi, c, top2)
                        plim, can_prune = _probe_limit(lim, m)
