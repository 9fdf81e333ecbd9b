"""Float64 brute force: the exactness reference every other engine is tested against."""
from __future__ import annotations

import numpy as np

from .base import Engine
from .conflicts import reference_pairs
from .exact import pairwise_float64


class ReferenceEngine(Engine, register="reference"):
    """Direct float64 differences in small blocks. Slow; exact; the ground truth of the test suite."""

    name = "reference"

    def __init__(self, *, block_bytes: int = 64 << 20):
        self.block_bytes = block_bytes

    def nearest(self, queries, database, *, norm):
        d = queries.shape[1]
        nq, nd = len(queries), len(database)
        best_d = np.empty(nq)
        best_i = np.empty(nq, dtype=np.int64)
        qb = max(1, min(nq, self.block_bytes // max(1, 8 * d * nd)))
        db = max(1, min(nd, self.block_bytes // max(1, 8 * d * qb)))
        for q0 in range(0, nq, qb):
            q = queries[q0:q0 + qb]
            bd = np.full(len(q), np.inf)
            bi = np.zeros(len(q), dtype=np.int64)
            for d0 in range(0, nd, db):
                dist = pairwise_float64(q, database[d0:d0 + db], norm)
                j = dist.argmin(axis=1)  # argmin returns the first (smallest) index among ties
                m = dist[np.arange(len(q)), j]
                better = m < bd  # strictly: an earlier block already has the smaller index
                bd[better] = m[better]
                bi[better] = j[better] + d0
            best_d[q0:q0 + qb] = bd
            best_i[q0:q0 + qb] = bi
        return best_d, best_i

    def range_search(self, x_query, y_query, x_db, y_db, *, norm, radius, same_set=False, max_pairs=None,
                     progress=None):
        """float64 brute force in blocks of about ``block_bytes`` (:func:`~.conflicts.reference_pairs`)."""
        return reference_pairs(x_query, y_query, x_db, y_db, same_set=same_set, norm=norm, radius=radius,
                               max_pairs=max_pairs, progress=progress, block_bytes=self.block_bytes)

    def cross_class_k(self, x_query, y_query, x_db, y_db, *, norm, k):
        """k-NN of other classes by direct float64 differences, for every dtype (the ground truth)."""
        from .knn import cross_class_k

        return cross_class_k(x_query, y_query, x_db, y_db, norm=norm, k=k, kernel=False)


__all__ = ["ReferenceEngine"]
