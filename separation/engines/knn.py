"""Exact k nearest neighbours, and the k nearest points of *other* classes.

Every engine answers k-NN the same way, in stored units (bytes for 8-bit data): byte data through
the integer kernel (:mod:`._knn_kernels`, early exit against the k-th best), float data through the
float64 brute force's own formula (:func:`~separation.engines.exact.pairwise_float64`), so
results equal the reference bit for bit. Rows are sorted by distance, then index; ``inf`` / ``-1``
pad rows with fewer than ``k`` candidates.
"""
from __future__ import annotations

import numpy as np

from . import _knn_kernels
from .exact import pairwise_float64

_NORM_CODES = {"linf": _knn_kernels.LINF, "l1": _knn_kernels.L1, "l2": _knn_kernels.L2SQ}


def merge_topk(d: np.ndarray, i: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best of each row of candidate ``(d, i)`` ``(m, c)``, by distance then index."""
    key_i = np.where(i >= 0, i, np.iinfo(np.int64).max)
    order = np.lexsort((key_i, d), axis=1)[:, :k]
    out_d = np.take_along_axis(d, order, axis=1)
    out_i = np.take_along_axis(i, order, axis=1)
    if out_d.shape[1] < k:
        pad = k - out_d.shape[1]
        out_d = np.concatenate([out_d, np.full((len(d), pad), np.inf)], axis=1)
        out_i = np.concatenate([out_i, np.full((len(d), pad), -1, dtype=np.int64)], axis=1)
    out_i = np.where(np.isfinite(out_d), out_i, -1)
    return out_d, out_i


def nearest_k(queries: np.ndarray, database: np.ndarray, *, norm: str, k: int, kernel: bool = True,
              block_bytes: int = 64 << 20) -> tuple[np.ndarray, np.ndarray]:
    """Exact k-NN: ``(distances (m, k) float64, indices (m, k) int64)`` in stored units; bytes go
    through the integer kernel unless ``kernel=False`` (the float64 brute force for every dtype)."""
    m = len(queries)
    if kernel and queries.dtype == np.uint8 and database.dtype == np.uint8:
        from ..core.progress import compiling_notice

        compiling_notice(_knn_kernels.knn_bytes, "k-nearest-neighbour")
        out_d = np.empty((m, k), dtype=np.int64)
        out_i = np.empty((m, k), dtype=np.int64)
        _knn_kernels.knn_bytes(np.ascontiguousarray(queries), np.ascontiguousarray(database), k,
                               _NORM_CODES[norm], out_d, out_i)
        dist = out_d.astype(np.float64)
        dist[out_d >= _knn_kernels.BIG] = np.inf
        if norm == "l2":
            dist = np.sqrt(dist)
        return dist, np.where(np.isfinite(dist), out_i, -1)
    d = queries.shape[1]
    n = len(database)
    qb = max(1, min(m, block_bytes // max(1, 8 * d * max(1, min(n, 4096)))))
    db = max(1, min(n, block_bytes // max(1, 8 * d * qb)))
    best_d = np.full((m, k), np.inf)
    best_i = np.full((m, k), -1, dtype=np.int64)
    for q0 in range(0, m, qb):
        bd, bi = best_d[q0:q0 + qb], best_i[q0:q0 + qb]
        for d0 in range(0, n, db):
            dist = pairwise_float64(queries[q0:q0 + qb], database[d0:d0 + db], norm)
            idx = np.broadcast_to(np.arange(d0, d0 + dist.shape[1]), dist.shape)
            bd, bi = merge_topk(np.concatenate([bd, dist], axis=1), np.concatenate([bi, idx], axis=1), k)
        best_d[q0:q0 + qb], best_i[q0:q0 + qb] = bd, bi
    return best_d, best_i


def cross_class_k(x_query: np.ndarray, y_query: np.ndarray, x_db: np.ndarray, y_db: np.ndarray, *,
                  norm: str, k: int, kernel: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest database points of a label other than the query's: ``(m, k)`` distances
    (stored units) and database indices, ties to the smallest index."""
    best_d = np.full((len(x_query), k), np.inf)
    best_i = np.full((len(x_query), k), -1, dtype=np.int64)
    for c in np.unique(y_db):
        db_idx = np.flatnonzero(y_db == c)
        q_idx = np.flatnonzero(y_query != c)
        if not q_idx.size:
            continue
        d, i = nearest_k(x_query[q_idx], x_db[db_idx], norm=norm, k=min(k, len(db_idx)), kernel=kernel)
        i = np.where(i >= 0, db_idx[np.maximum(i, 0)], -1)
        md, mi = merge_topk(np.concatenate([best_d[q_idx], d], axis=1),
                            np.concatenate([best_i[q_idx], i], axis=1), k)
        best_d[q_idx], best_i[q_idx] = md, mi
    return best_d, best_i


__all__ = ["cross_class_k", "merge_topk", "nearest_k"]
