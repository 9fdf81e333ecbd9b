"""Float64 brute force: the exactness reference every other engine is tested against."""
from __future__ import annotations

import numpy as np

from .base import Engine


def pairwise_float64(a: np.ndarray, b: np.ndarray, norm: str) -> np.ndarray:
    """Exact ``(len(a), len(b))`` distance matrix in float64, by direct differences (no GEMM trick)."""
    diff = np.abs(a.astype(np.float64)[:, None, :] - b.astype(np.float64)[None, :, :])
    if norm == "linf":
        return diff.max(axis=2)
    if norm == "l1":
        return diff.sum(axis=2)
    return np.sqrt(np.square(diff).sum(axis=2))


class ReferenceEngine(Engine):
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

    def cross_class_k(self, x_query, y_query, x_db, y_db, *, norm, k):
        """k-NN of other classes by direct float64 differences, for every dtype (the ground truth)."""
        from .knn import cross_class_k

        return cross_class_k(x_query, y_query, x_db, y_db, norm=norm, k=k, kernel=False)


__all__ = ["ReferenceEngine", "pairwise_float64"]
