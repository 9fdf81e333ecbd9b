"""FAISS ``IndexFlat`` engine (``METRIC_Linf``, ``METRIC_L2``, ``METRIC_L1``), on GPU when FAISS has one.

FAISS computes in float32, so it serves as a fast candidate generator: each query takes its
``k`` best candidates, which are recomputed exactly; the answer is *certified* when the k-th
candidate, minus a rigorous float32 rounding bound, is still worse than the exact best (nothing
FAISS did not return can win or tie). Uncertified queries -- long runs of ties, say -- fall back
to the exact CPU engine. So this engine, too, equals the float64 brute force.
"""
from __future__ import annotations

import logging

import numpy as np

from .base import Engine, merge_better

log = logging.getLogger(__name__)
U32 = float(np.finfo(np.float32).eps) / 2


def _faiss():
    import faiss

    return faiss


def num_gpus() -> int:
    try:
        return int(_faiss().get_num_gpus())
    except (ImportError, AttributeError):  # no faiss, or one without GPU support
        return 0


def _exact(queries, database, cand, norm):
    """Exact distances (stored units, squared for l2) of each query to its candidates (nq, k)."""
    out = np.empty(cand.shape, dtype=np.float64)
    step = max(1, (32 << 20) // max(1, cand.shape[1] * queries.shape[1] * 8))
    for s in range(0, len(queries), step):
        q = queries[s:s + step].astype(np.float64)[:, None, :]
        c = cand[s:s + step]
        diff = np.abs(q - database[np.maximum(c, 0)].astype(np.float64))
        if norm == "linf":
            v = diff.max(axis=2)
        elif norm == "l1":
            v = diff.sum(axis=2)
        else:
            v = np.square(diff).sum(axis=2)
        v[c < 0] = np.inf
        out[s:s + step] = v
    return out


class FaissEngine(Engine, register="faiss"):
    """Exact search through FAISS flat indexes (GPU when ``faiss.get_num_gpus() > 0``)."""

    name = "faiss"
    unsupported = {"range_search": "FAISS range search is float32 with no exact recheck here"}

    def __init__(self, *, k: int = 8, use_gpu: bool | None = None):
        self.k = k
        self.use_gpu = use_gpu

    @classmethod
    def available(cls) -> bool:
        try:
            _faiss()
        except ImportError:
            return False
        return True

    def _index(self, d, norm):
        faiss = _faiss()
        metric = {"linf": faiss.METRIC_Linf, "l2": faiss.METRIC_L2, "l1": faiss.METRIC_L1}[norm]
        index = faiss.IndexFlat(d, metric)
        gpu = num_gpus() > 0 if self.use_gpu is None else self.use_gpu
        if gpu:
            index = faiss.index_cpu_to_all_gpus(index)
        return index

    def nearest(self, queries, database, *, norm):
        nd = len(database)
        k = min(self.k, nd)
        index = self._index(database.shape[1], norm)
        index.add(np.ascontiguousarray(database, dtype=np.float32))
        approx, cand = index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
        exact = _exact(queries, database, cand, norm)
        # choose the best candidate: smallest exact distance, then smallest index
        big = np.iinfo(np.int64).max
        key_i = np.where(cand < 0, big, cand)
        best_d = exact.min(axis=1)
        best_i = np.where(exact == best_d[:, None], key_i, big).min(axis=1)
        # certification: the k-th approximate distance minus its rounding bound must exceed the best
        dim = queries.shape[1]
        qmag = np.abs(queries.astype(np.float64))
        dmax = float(np.abs(database).max()) if nd else 0.0
        if norm == "linf":
            tol = 4 * U32 * (qmag.max(axis=1) + dmax) + 0.0
            kth = approx[:, -1].astype(np.float64)
        elif norm == "l1":
            tol = (dim + 4) * U32 * (qmag.sum(axis=1) + dim * dmax) * 2
            kth = approx[:, -1].astype(np.float64)
        else:
            qn = np.sqrt(np.square(queries.astype(np.float64)).sum(axis=1))
            dn = float(np.sqrt(np.square(database.astype(np.float64)).sum(axis=1)).max())
            tol = 2 * (dim + 4) * U32 * (qn + dn) ** 2 + 8 * U32 * (qn + dn) ** 2
            kth = approx[:, -1].astype(np.float64)
        if database.dtype == np.uint8 and norm == "linf":
            tol = np.zeros(len(queries))  # byte differences and their max are exact in float32
        certified = (k == nd) | (kth - tol > best_d)
        if norm == "l2":
            best_d = np.sqrt(best_d)
        todo = np.flatnonzero(~certified)
        if todo.size:
            log.debug("faiss: %d of %d queries not certified, exact fallback", todo.size, len(queries))
            from .cpu import CPUEngine

            best_d[todo], best_i[todo] = CPUEngine().nearest(queries[todo], database, norm=norm)
        return best_d, best_i


__all__ = ["FaissEngine", "merge_better", "num_gpus"]
