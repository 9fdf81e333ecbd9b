"""The engine interface: exact nearest-neighbour search on stored-unit arrays.

Every engine answers two questions on ``(n, d)`` arrays (uint8 raw bytes or float64):

* :meth:`Engine.nearest` -- for each query, the exact nearest database point;
* :meth:`Engine.cross_class` -- for each query, the exact nearest database point *with another label*.

Distances come back as float64 in *stored units* (raw byte values for uint8); callers scale them.
Ties are broken towards the smallest database index, in every engine, so that all engines return
the same indices as the float64 brute-force reference.
"""
from __future__ import annotations

import abc

import numpy as np

INF = np.inf


def merge_better(best_d, best_i, d, i):
    """In place: where (d, i) beats (best_d, best_i) -- smaller distance, then smaller index -- take it."""
    better = (d < best_d) | ((d == best_d) & (i < best_i))
    best_d[better] = d[better]
    best_i[better] = i[better]
    return best_d, best_i


def cross_pairs(y_query, y_db) -> int:
    """Number of (query, database point) pairs with different labels: the unit of progress."""
    classes, inv = np.unique(np.concatenate([y_query, y_db]), return_inverse=True)
    nq = np.bincount(inv[:len(y_query)], minlength=len(classes))
    nd = np.bincount(inv[len(y_query):], minlength=len(classes))
    return int((nq * (len(y_db) - nd)).sum())


class Engine(abc.ABC):
    """Exact nearest-neighbour engine. Subclasses implement :meth:`nearest`; they may override
    :meth:`cross_class` with something faster (e.g. computing each pair of classes once)."""

    name: str = "engine"
    norms: tuple[str, ...] = ("linf", "l2", "l1")

    @classmethod
    def available(cls) -> bool:
        return True

    def supports(self, norm: str, dtype: np.dtype) -> bool:
        return norm in self.norms

    @abc.abstractmethod
    def nearest(self, queries: np.ndarray, database: np.ndarray, *, norm: str):
        """Exact 1-NN. Returns ``(distances float64 (nq,), indices int64 (nq,))`` in stored units."""

    def cross_class(self, x_query, y_query, x_db, y_db, *, norm: str, same_set: bool = False,
                    progress=None):
        """Nearest database point of a *different* label for every query.

        ``same_set`` says that the queries are the database itself (train--train), which lets
        engines compute each pair of classes once. Returns ``(distances, indices)``; a query with no
        differently-labelled database point gets ``inf`` and index ``-1``.
        """
        nq = x_query.shape[0]
        best_d = np.full(nq, INF)
        best_i = np.full(nq, -1, dtype=np.int64)
        classes = np.unique(y_db)
        for c in classes:
            db_idx = np.flatnonzero(y_db == c)
            q_idx = np.flatnonzero(y_query != c)
            if q_idx.size:
                d, i = self.nearest(x_query[q_idx], x_db[db_idx], norm=norm)
                sub_d, sub_i = best_d[q_idx], best_i[q_idx]
                merge_better(sub_d, sub_i, d, db_idx[i])
                best_d[q_idx], best_i[q_idx] = sub_d, sub_i
            if progress is not None:
                progress(int(q_idx.size) * int(db_idx.size))
        return best_d, best_i

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"
