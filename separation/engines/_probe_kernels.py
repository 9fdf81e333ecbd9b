"""numba kernels: exact per-class l-inf nearest neighbours with query-specific pixel probes.

The support (training) set is read twice: as given, row-major ``D (n, d)``, for exact distances
(through the permutation ``perm`` that sorts it by class), and as one class-sorted column-major
copy ``DT (d, n)`` for probing. For every query and every block of
same-class support points the kernel

1. knows a *pruning limit* ``lim``: a support point whose distance is ``>= lim`` cannot change
   what is being computed (the class minimum in ``all`` mode; the two smallest class minima and
   the predicted class in ``top2`` mode);
2. tests, vectorised over the block, whether one of a few *probe* pixels already has a term
   ``|q_k - y_k| >= lim`` (then the distance, the maximum of all terms, is ``>= lim``). Probes are
   chosen per query and class: the pixels where such a term is most likely, from per-class
   histograms of the support values;
3. computes the exact distance only for the points no probe ruled out.

A probe test evaluates exactly the terms the exact distance is the maximum of (for byte support
as an equivalent interval test on the byte value ``y``, found with the same float64 expression),
so pruning never changes a result: the output equals a float64 brute force (see the tests).
Flavours, chosen by the argument types:

``u8``     uint8 queries and uint8 support: integer arithmetic, distances in raw byte units;
``f64u8``  float64 queries, uint8 support: terms ``|q - float64(y) / 255|`` -- the numbers
           ``separation`` computes for such inputs;
``f64``    float64 queries and support: float64 throughout.
"""
from __future__ import annotations

import numba as nb
import numpy as np
from numba import types
from numba.extending import overload

# Block sizes (queries per parallel task, support points per block, probes between two "how many
# points are still alive" checks, ...) are arguments, set by ``CPUBlocks``: they change speed only.
BIG_INT = np.iinfo(np.int64).max // 4
PROBE_BUCKETS = 64  # resolution of the probe ranking


# -- flavour-specific pieces, chosen by argument types at compile time ------------------------------
def _bounds(qk, lim, DT):  # pragma: no cover - replaced by the overloads in jitted code
    raise NotImplementedError


@overload(_bounds)
def _ov_bounds(qk, lim, DT):
    """For byte support: the interval ``[lo, lo + w)`` of byte values ``y`` whose term at this pixel
    is ``< lim`` (every other ``y`` proves ``d >= lim``), and whether the pixel can prune anything."""
    if DT.dtype != types.uint8:
        return lambda qk, lim, DT: (np.uint8(0), np.uint8(0), True)  # float support: unused
    if isinstance(lim, types.Integer):
        def impl_u8(qk, lim, DT):  # |qk - y| < lim  <=>  qk - lim < y < qk + lim
            if lim > 255:
                return np.uint8(0), np.uint8(0), False
            lo = max(np.int64(qk) - lim + 1, 0)
            hi = min(np.int64(qk) + lim - 1, 255)
            w = hi - lo + 1
            if w >= 256:
                return np.uint8(0), np.uint8(0), False
            return np.uint8(lo), np.uint8(max(w, 0)), True
        return impl_u8

    def impl_f64u8(qk, lim, DT):
        # the term is |g(y)| with g(y) = qk - float64(y) / 255.0, non-increasing in y (correctly
        # rounded operations are monotone): {|g| < lim} = {g < lim} & {g > -lim} = [a, b]
        if not (lim < np.inf):
            return np.uint8(0), np.uint8(0), False
        lo_, hi_ = 0, 256  # a = first y with g(y) < lim
        while lo_ < hi_:
            mid = (lo_ + hi_) // 2
            if qk - np.float64(mid) / 255.0 < lim:
                hi_ = mid
            else:
                lo_ = mid + 1
        a = lo_
        lo_, hi_ = -1, 255  # b = last y with g(y) > -lim
        while lo_ < hi_:
            mid = (lo_ + hi_ + 1) // 2
            if qk - np.float64(mid) / 255.0 > -lim:
                lo_ = mid
            else:
                hi_ = mid - 1
        b = lo_
        w = b - a + 1
        if w >= 256:
            return np.uint8(0), np.uint8(0), False
        if w <= 0:
            return np.uint8(0), np.uint8(0), True
        return np.uint8(a), np.uint8(w), True
    return impl_f64u8


def _probe_col(alive, col, qk, lo, w, lim, n):  # pragma: no cover
    raise NotImplementedError


@overload(_probe_col)
def _ov_probe_col(alive, col, qk, lo, w, lim, n):
    """``alive[j] &= (term of support point j at this pixel < lim)``, vectorised over the block."""
    if col.dtype == types.uint8:
        def impl(alive, col, qk, lo, w, lim, n):
            for jj in range(n):
                alive[jj] &= np.uint8(col[jj] - lo) < w
        return impl

    def impl_f(alive, col, qk, lo, w, lim, n):
        for jj in range(n):
            alive[jj] &= abs(qk - col[jj]) < lim
    return impl_f


def _term_prunes(y, qk, lo, w, lim):  # pragma: no cover
    raise NotImplementedError


@overload(_term_prunes)
def _ov_term_prunes(y, qk, lo, w, lim):
    """Scalar version of one probe test: does this term prove ``d >= lim``?"""
    if y == types.uint8:
        return lambda y, qk, lo, w, lim: np.uint8(y - lo) >= w
    return lambda y, qk, lo, w, lim: abs(qk - y) >= lim


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
def _limit(bi, ub, c, top2, own):
    """Prune a class-``c`` support point iff its distance is >= the returned value.

    ``bi[c]``: the smallest distance met so far *in scan order* (index order within a class), so a
    later point that only ties it loses on its index and can go. ``ub``: upper bounds of every
    class minimum (seed points included, met out of order): a point that ties one may still win on
    a smaller index, so those bounds only prune *strictly* larger distances. ``own >= 0``
    (cross-class search): only the classes other than ``own`` matter.
    """
    lim = bi[c]
    u = _just_above(ub[c])
    if u < lim:
        lim = u
    if own >= 0:
        m = ub[c]
        for cc in range(ub.shape[0]):
            if cc != own and ub[cc] < m:
                m = ub[cc]
        u = _just_above(m)
        return lim if lim < u else u
    if not top2 or ub.shape[0] < 2:  # one class: its minimum is all that matters
        return lim
    f = ub[0]
    s = ub[1]
    if s < f:
        f, s = s, f
    for cc in range(2, ub.shape[0]):
        v = ub[cc]
        if v < f:
            s = f
            f = v
        elif v < s:
            s = v
    # the two smallest class minima and the (smallest-index) argmin class can only change through a
    # distance < s -- or == s when s ties the smallest one
    t = s if s > f else _just_above(s)
    return lim if lim < t else t


@nb.njit(cache=True, nogil=True)
def _choose_probes(out, qlo8, qhi8, Hc, nc, t_raw, scratch):
    """Write into ``out`` the pixels where most class points lie >= ``t_raw`` bytes from the query.

    Pixels are ranked by that count, coarsened to ``PROBE_BUCKETS`` levels (a counting sort: cheap,
    and the order only steers the pruning, never the result); ties keep pixel order.
    """
    d = qlo8.shape[0]
    P = out.shape[0]
    if P == 0:
        return
    bucket = scratch[:d]
    order = scratch[d:2 * d]
    cnt = scratch[2 * d:2 * d + PROBE_BUCKETS + 1]
    cnt[:] = 0
    for k in range(d):
        a = np.int64(qlo8[k]) - t_raw + 1
        b = np.int64(qhi8[k]) + t_raw
        # Hc[0, k] == 0 and Hc[256, k] == nc: only thresholds inside (0, 256) read the table
        below = Hc[a, k] if 0 < a < 256 else (0 if a <= 0 else nc)
        above = nc - Hc[b, k] if 0 < b < 256 else (nc if b <= 0 else 0)
        n_far = below + above
        n_far = min(max(n_far, 0), nc)  # a > b (a threshold below one grey level) overcounts
        lvl = (PROBE_BUCKETS - 1) - (n_far * PROBE_BUCKETS) // (nc + 1)  # 0 = most points far
        bucket[k] = lvl
        cnt[lvl + 1] += 1
    for v in range(PROBE_BUCKETS):
        cnt[v + 1] += cnt[v]
    for k in range(d):
        lvl = bucket[k]
        order[cnt[lvl]] = k
        cnt[lvl] += 1
    for t in range(P):
        out[t] = order[t]


@nb.njit(parallel=True, nogil=True, cache=True)
def scan(QX, QLO8, QHI8, DT, D, perm, H, hist_of, counts, blk_start, blk_cls, row_cls, seed_rows,
         best, bidx, top2, pmax, stats, own, query_block, probe_step):
    """Update ``best``/``bidx`` ``(nq, n_classes)`` in place (see the module docstring).

    ``best[i, c]``/``bidx[i, c]``: the class-``c`` minimum and its smallest support position; in
    ``top2`` mode ``best`` holds upper bounds of every class minimum, exact for the two smallest.

    ``QX``: exact queries (uint8 with byte support, else float64); ``QLO8/QHI8``: byte floor/ceil
    of ``255 q`` for choosing probes; ``DT``: the class-sorted support, column-major (``(d, n)``);
    ``D``: the support as given, row-major (``(n, d)``), row ``perm[j]`` at sorted position ``j``;
    ``own`` ``(nq,)``: a class index whose blocks a query skips, for cross-class search (else -1).
    ``query_block``: queries per parallel task (they share each support block while it is in
    cache); ``probe_step``: probes between two counts of the points still alive.
    """
    nq, d = QX.shape
    nblk = blk_cls.shape[0]
    P = min(pmax, d)
    nqb = (nq + query_block - 1) // query_block
    max_block = 0
    for bb in range(nblk):
        max_block = max(max_block, blk_start[bb + 1] - blk_start[bb])
    for b in nb.prange(nqb):
        q0 = b * query_block
        q1 = min(nq, q0 + query_block)
        alive_m = np.ones(max_block, np.bool_)
        probes = np.zeros((q1 - q0, P), np.int64)  # always valid pixel indices
        plo = np.zeros(P, np.uint8)
        pw = np.zeros(P, np.uint8)
        pok = np.zeros(P, np.bool_)
        scratch = np.empty(2 * d + PROBE_BUCKETS + 1, np.int64)
        # 1) seeds: a few exact distances per class give every limit a finite start (as upper
        #    bounds only: seeds come out of index order)
        ubm = np.empty((q1 - q0, best.shape[1]), best.dtype)
        for i in range(q0, q1):
            q = QX[i]
            ub = ubm[i - q0]
            ub[:] = best[i]
            for s in range(seed_rows.shape[0]):
                j = seed_rows[s]
                c = row_cls[j]
                dist = _exact(q, D[perm[j]])
                if dist < ub[c]:
                    ub[c] = dist
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
                ub = ubm[li]
                oc = own[i]
                if oc == c:
                    continue
                lim = _limit(bi, ub, c, top2, oc)
                if lim <= 0:  # every distance is >= 0: nothing in this block can matter
                    continue
                if new_class:
                    h = hist_of[c]
                    _choose_probes(probes[li], QLO8[i], QHI8[i], H[h], counts[h], _raw_of(lim), scratch)
                alive_m[:n] = True
                alive = n
                t = 0
                pr = probes[li]
                while t < P:
                    te = min(P, t + probe_step)
                    useful = False
                    for tt in range(t, te):
                        k = pr[tt]
                        lo, w, ok = _bounds(q[k], lim, DT)
                        if ok:
                            useful = True
                            _probe_col(alive_m, DT[k, j0:j1], q[k], lo, w, lim, n)
                    t = te
                    if not useful:
                        break
                    alive = 0
                    for jj in range(n):
                        alive += alive_m[jj]
                    if alive * 32 <= n:  # few enough left: exact distances are cheaper
                        break
                stats[i, 0] += t
                if alive == 0:
                    continue
                lim_mask = lim
                for jj in range(n):
                    if not alive_m[jj]:
                        continue
                    j = j0 + jj
                    row = D[perm[j]]
                    if lim < lim_mask:  # the limit dropped since the block test: re-test the probes
                        pruned = False
                        for tt in range(t):
                            k = pr[tt]
                            if pok[tt] and _term_prunes(row[k], q[k], plo[tt], pw[tt], lim):
                                pruned = True
                                break
                        if pruned:
                            continue
                    stats[i, 1] += 1
                    dist = _exact(q, row)
                    if dist < bi[c]:
                        bi[c] = dist
                        ii[c] = j
                        if dist < ub[c]:
                            ub[c] = dist
                        lim = _limit(bi, ub, c, top2, oc)
                        for tt in range(t):
                            plo[tt], pw[tt], pok[tt] = _bounds(q[pr[tt]], lim, DT)
        if top2:  # the two smallest class minima are exact in the bounds (seeds included)
            for i in range(q0, q1):
                best[i, :] = ubm[i - q0]


__all__ = ["BIG_INT", "PROBE_BUCKETS", "scan"]
