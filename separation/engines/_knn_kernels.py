"""numba kernel: exact k nearest neighbours on bytes (l-inf, l1, squared l2 in integers).

For every query the ``k`` best (distance, index) pairs are kept sorted by distance, then index.
The database is scanned in increasing index, so a later point with a distance equal to the current
k-th never displaces it (ties go to the smallest index); the partial distance of a point stops as
soon as it reaches the k-th best (early exit).
"""
from __future__ import annotations

import numba as nb
import numpy as np

#: larger than any byte distance (l1 of 2^24 features, squared l2 of 2^15 features)
BIG = np.int64(1) << np.int64(62)
LINF, L1, L2SQ = 0, 1, 2


@nb.njit(parallel=True, nogil=True, cache=True)
def knn_bytes(Q, D, k, norm, out_d, out_i):
    """Fill ``out_d (m, k)`` (int64 distances, squared for l2; BIG where fewer than k points) and
    ``out_i (m, k)`` (indices, -1 there) for uint8 queries ``Q (m, d)`` and database ``D (n, d)``."""
    m, d = Q.shape
    n = D.shape[0]
    for a in nb.prange(m):
        q = Q[a]
        bd = out_d[a]
        bi = out_i[a]
        for t in range(k):
            bd[t] = BIG
            bi[t] = -1
        for j in range(n):
            row = D[j]
            lim = bd[k - 1]
            acc = np.int64(0)
            for f in range(d):
                diff = np.int64(q[f]) - np.int64(row[f])
                if diff < 0:
                    diff = -diff
                if norm == 0:
                    if diff > acc:
                        acc = diff
                elif norm == 1:
                    acc += diff
                else:
                    acc += diff * diff
                if acc >= lim:
                    break
            if acc >= lim:
                continue
            p = k - 1  # insert after every kept entry with distance <= acc (they have smaller indices)
            while p > 0 and bd[p - 1] > acc:
                bd[p] = bd[p - 1]
                bi[p] = bi[p - 1]
                p -= 1
            bd[p] = acc
            bi[p] = j


__all__ = ["BIG", "L1", "L2SQ", "LINF", "knn_bytes"]
