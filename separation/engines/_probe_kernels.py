"""numba kernels: exact per-class l-inf nearest neighbours with query-specific pixel probes.

The support (training) set is read twice: row-major ``D (n, d)`` for exact distances (row
``perm[j]`` at class-sorted position ``j``), and a class-sorted copy ``DT`` for probing, block by
block: support block ``[j0, j1)`` is the column-major ``(d, j1 - j0)`` slab ``DT[j0 d : j1 d]``, so
the values a probe reads lie in one short stretch. For every query and every block of
same-class support points the kernel

1. knows a *pruning limit* ``lim``: a support point whose distance is ``>= lim`` cannot change
   what is being computed (the class minimum in ``all`` mode; the two smallest class minima and
   the predicted class in ``top2`` mode);
2. tests, vectorised over the block, whether one of a few *probe* pixels already has a term
   ``|q_k - y_k| >= lim`` (then the distance, the maximum of all terms, is ``>= lim``). Probes are
   chosen per query and class: the pixels where such a term is most likely, from per-class
   histograms of the support values;
3. computes the exact distance only for the points no probe ruled out, in stretches of pixels
   (``stops``), stopping after the first stretch whose terms reach ``lim`` (the index orders the
   pixels by decreasing spread where it keeps its own copy, so that stretch is usually the first).

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

from ._probe_terms import BIG_INT, bounds, exact_below, just_above, prefetch, probe_col, raw_of, term_prunes

# Block sizes (queries per parallel task, support points per block, probes between two "how many
# points are still alive" checks, ...) are arguments, set by ``CPUBlocks``: they change speed only.
PROBE_BUCKETS = 64  # resolution of the probe ranking
AHEAD = 4  # exact distances: rows asked for ahead of their turn


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
    u = just_above(ub[c])
    if u < lim:
        lim = u
    if own >= 0:
        m = ub[c]
        for cc in range(ub.shape[0]):
            if cc != own and ub[cc] < m:
                m = ub[cc]
        u = just_above(m)
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
    t = s if s > f else just_above(s)
    return lim if lim < t else t


@nb.njit(cache=True, nogil=True)
def _choose_probes(out, qlo8, qhi8, Hc, nc, t_raw, scratch):
    """Write into ``out`` the pixels where most class points lie >= ``t_raw`` bytes from the query.

    Pixels are ranked by that count, coarsened to ``PROBE_BUCKETS`` levels (a counting sort: cheap,
    and the order only steers the pruning, never the result); ties keep pixel order. ``scratch``:
    int32, at least ``d + PROBE_BUCKETS + 1``.
    """
    d = qlo8.shape[0]
    P = out.shape[0]
    if P == 0:
        return
    bucket = scratch[:d]
    cnt = scratch[d:d + PROBE_BUCKETS + 1]
    cnt[:] = 0
    scale = (np.int64(PROBE_BUCKETS) << 32) // (nc + 1)  # level = count * PROBE_BUCKETS / (nc + 1)
    t = np.int32(t_raw) if t_raw < 512 else np.int32(512)
    for k in range(d):
        # Hc[0, k] == 0 and Hc[256, k] == nc: thresholds outside (0, 256) read those rows
        a = min(max(np.int32(qlo8[k]) - t + 1, 0), 256)
        b = min(max(np.int32(qhi8[k]) + t, 0), 256)
        n_far = min(max(np.int64(Hc[a, k]) + nc - np.int64(Hc[b, k]), 0), nc)  # a > b overcounts
        bucket[k] = np.int32((PROBE_BUCKETS - 1) - ((n_far * scale) >> 32))  # 0 = most points far
    for k in range(d):
        cnt[bucket[k] + 1] += 1
    for v in range(PROBE_BUCKETS):
        cnt[v + 1] += cnt[v]
    for k in range(d):  # the first P places of the stable order
        lvl = bucket[k]
        pos = cnt[lvl]
        if pos < P:
            out[pos] = k
        cnt[lvl] = pos + 1


@nb.njit(cache=True, nogil=True)
def add_counts(Hc, slab):
    """``Hc[1 + v, k] += #{j : slab[k, j] == v}`` for a ``(d, m)`` uint8 slab (no temporaries)."""
    d, m = slab.shape
    for k in range(d):
        for j in range(m):
            Hc[1 + slab[k, j], k] += 1


@nb.njit(parallel=True, nogil=True, cache=True)
def scan(QX, QLO8, QHI8, DT, D, perm, H, hist_of, counts, blk_start, blk_cls, row_cls, seed_rows,
         best, bidx, top2, pmax, stats, own, query_block, probe_step, stops):
    """Update ``best``/``bidx`` ``(nq, n_classes)`` in place (see the module docstring).

    ``best[i, c]``/``bidx[i, c]``: the class-``c`` minimum and its smallest support position; in
    ``top2`` mode ``best`` holds upper bounds of every class minimum, exact for the two smallest.

    ``QX``: exact queries (uint8 with byte support, else float64); ``QLO8/QHI8``: byte floor/ceil
    of ``255 q`` for choosing probes; ``DT``: the class-sorted support, column-major (``(d, n)``);
    ``D``: the support as given, row-major (``(n, d)``), row ``perm[j]`` at sorted position ``j``;
    ``own`` ``(nq,)``: a class index whose blocks a query skips, for cross-class search (else -1);
    ``stops``: ends of the pixel stretches of an exact distance (the last is ``d``).
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
        alive_m = np.ones(max_block, np.uint8)
        cand = np.empty(max_block, np.int64)
        probes = np.zeros((q1 - q0, P), np.int64)  # always valid pixel indices
        plo = np.zeros(P, np.uint8)
        pw = np.zeros(P, np.uint8)
        pok = np.zeros(P, np.bool_)
        scratch = np.empty(d + PROBE_BUCKETS + 1, np.int32)
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
                dist = exact_below(q, D[perm[j]], ub[c], stops)  # exact where it is < ub[c]
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
                    _choose_probes(probes[li], QLO8[i], QHI8[i], H[h], counts[h], raw_of(lim), scratch)
                alive_m[:n] = 1
                alive = n
                t = 0
                pr = probes[li]
                while t < P:
                    te = min(P, t + probe_step)
                    useful = False
                    for tt in range(t, te):
                        k = pr[tt]
                        lo, w, ok = bounds(q[k], lim, DT)
                        if ok:
                            useful = True
                            probe_col(alive_m, DT[j0 * d + k * n:j0 * d + (k + 1) * n], q[k], lo, w, lim, n)
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
                na = 0
                for jj in range(n):
                    cand[na] = jj
                    na += alive_m[jj]
                for a in range(min(na, AHEAD)):
                    prefetch(D[perm[j0 + cand[a]]])
                for a in range(na):
                    if a + AHEAD < na:
                        prefetch(D[perm[j0 + cand[a + AHEAD]]])
                    jj = cand[a]
                    j = j0 + jj
                    row = D[perm[j]]
                    if lim < lim_mask:  # the limit dropped since the block test: re-test the probes
                        pruned = False
                        for tt in range(t):
                            k = pr[tt]
                            if pok[tt] and term_prunes(row[k], q[k], plo[tt], pw[tt], lim):
                                pruned = True
                                break
                        if pruned:
                            continue
                    stats[i, 1] += 1
                    dist = exact_below(q, row, lim, stops)
                    if dist < bi[c] and dist < lim:
                        bi[c] = dist
                        ii[c] = j
                        if dist < ub[c]:
                            ub[c] = dist
                        lim = _limit(bi, ub, c, top2, oc)
                        for tt in range(t):
                            plo[tt], pw[tt], pok[tt] = bounds(q[pr[tt]], lim, DT)
        if top2:  # the two smallest class minima are exact in the bounds (seeds included)
            for i in range(q0, q1):
                best[i, :] = ubm[i - q0]


__all__ = ["BIG_INT", "PROBE_BUCKETS", "add_counts", "scan"]
