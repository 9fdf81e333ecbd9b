"""numba kernel: every database point within a radius of each query (l-inf / l1), with exact early exit.

``range_kernel`` compares each query row of ``Q`` with the database rows of up to two index ranges
(``[s1, e1)`` and ``[s2, e2)``: the rows of the other classes in a class-sorted database) and keeps
every pair whose distance is ``<= limit``. Features are ordered by decreasing variance by the
caller, so the partial maximum (or sum) -- which only grows along the feature axis -- passes the
limit early for most pairs; such a pair is abandoned: it cannot be within the radius. Nothing
within the limit is ever abandoned (the comparison is ``partial > limit``), so the output is a
full range search.

Query ``i`` writes its pairs to the flat buffers from ``offsets[i]`` on, at most ``caps[i]`` of
them; ``counts`` holds the true number of pairs of each query, so the caller reruns the queries
whose count exceeds their slots with exactly as many slots as they need (memory grows with the
pairs found; the result is the same).

Bytes are compared as integers (the limit is an integer in byte units: exact); floats as float64.
"""
from __future__ import annotations

import numba as nb
import numpy as np

from ._kernels import _absdiff


@nb.njit(inline="always")
def _pair_distance(q, row, d, is_max, acc_zero, limit, chunk):
    """The distance of two rows, or a value ``> limit`` as soon as one is certain."""
    acc = acc_zero
    k0 = 0
    ch = chunk
    while k0 < d:
        k1 = min(d, k0 + ch)
        if is_max:
            m = q[0] - q[0]
            for k in range(np.uint64(k0), np.uint64(k1)):
                v = _absdiff(q[k], row[k])
                m = m if m > v else v
            if acc_zero + m > acc:
                acc = acc_zero + m
        else:
            for k in range(np.uint64(k0), np.uint64(k1)):
                acc += _absdiff(q[k], row[k])
        if acc > limit:
            return acc
        k0 = k1
        ch *= 2
    return acc


@nb.njit(parallel=True, cache=True, nogil=True)
def range_kernel(Q, D, s1, e1, s2, e2, limit, is_max, acc_zero, chunk, offsets, caps, out_j, out_d, counts):
    """For query ``i``: the rows ``j`` of ``D`` in ``[s1[i], e1[i])`` and ``[s2[i], e2[i])`` with
    distance ``<= limit`` go to ``out_j`` / ``out_d`` at ``offsets[i] + 0, 1, ...`` (at most
    ``caps[i]`` of them); ``counts[i]`` is their number (it may exceed ``caps[i]``)."""
    nq, d = Q.shape
    for i in nb.prange(nq):
        q = Q[i]
        c = 0
        base = offsets[i]
        cap = caps[i]
        for part in range(2):
            lo = s1[i] if part == 0 else s2[i]
            hi = e1[i] if part == 0 else e2[i]
            for j in range(lo, hi):
                dist = _pair_distance(q, D[j], d, is_max, acc_zero, limit, chunk)
                if dist <= limit:
                    if c < cap:
                        out_j[base + c] = j
                        out_d[base + c] = dist
                    c += 1
        counts[i] = c


__all__ = ["range_kernel"]
