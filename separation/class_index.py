"""``ClassIndex``: exact distances from queries to every class of a labelled point set.

The computation behind both the separation of a dataset (the nearest point of *another* class)
and the nearest-class classifier of :mod:`lipschitz_construct` (the nearest point of *every* class,
or just the two nearest classes). Any engine answers it; the CPU engine uses its one-pass,
probe-pruned l-inf kernel. All answers are exact: equal to a float64 brute force, ties to the
smallest index.
"""
from __future__ import annotations

import time

import numpy as np

from .core.errors import InvalidInputError
from .core.arrays import as_labels, as_points, check_norm, common_storage
from .engines import Engine, get_engine


class ClassIndex:
    """An exact per-class nearest-point index of ``x`` with labels ``y``.

    Args:
        x: ``(n, *shape)`` uint8 (0..255) or float in [0, 1]; numpy or torch.
        y: ``(n,)`` integer labels (at least one class).
        norm: ``"linf"``, ``"l2"`` or ``"l1"``; distances are in [0, 1] pixel units.
        engine: ``"auto"`` (the fastest available), an engine name or an
            :class:`~separation.engines.Engine`.

    Attributes: ``classes_`` (sorted labels: column ``c`` of every answer is ``classes_[c]``),
    ``support_`` (the points as stored: uint8 or float64, ``(n, d)``), ``labels_`` (class index
    ``0..C-1`` of each point), ``n_features_in_``, ``engine_`` (the engine's name), ``build_seconds_``,
    ``stats_`` (what the last query cost, engine-specific; may be empty).
    """

    def __init__(self, x, y, *, norm: str = "linf", engine: str | Engine = "auto"):
        t0 = time.perf_counter()
        self.norm = check_norm(norm)
        X = as_points(x, "x")
        labels = as_labels(y, len(X), "y")
        (X,), self.divisor_ = common_storage(X)
        eng = get_engine(engine)
        if not eng.supports(norm, X.dtype):
            raise InvalidInputError(f"Engine {eng.name!r} does not support norm {norm!r}; use engine='auto' "
                             "or another engine.")
        self.classes_ = np.unique(labels)
        self.labels_ = np.searchsorted(self.classes_, labels).astype(np.int64)
        self.support_ = X
        self.n_features_in_ = int(X.shape[1])
        self.engine_ = eng.name
        self._search = eng.class_search(X, self.labels_, len(self.classes_), norm=norm)
        self.build_seconds_ = time.perf_counter() - t0

    def __repr__(self) -> str:
        return (f"ClassIndex(norm={self.norm!r}, engine={self.engine_!r}, points={len(self.support_)}, "
                f"classes={len(self.classes_)}, features={self.n_features_in_})")

    @property
    def stats_(self) -> dict:
        return dict(getattr(self._search, "last_stats", {}) or {})

    def _queries(self, q, name: str = "queries") -> np.ndarray:
        arr = as_points(q, name)
        if arr.shape[1] != self.n_features_in_:
            raise InvalidInputError(f"{name} have {arr.shape[1]} features per point but the index holds "
                             f"{self.n_features_in_}; pass points of the indexed shape.")
        return arr

    def distances(self, q, *, return_indices: bool = False):
        """``dist(q, X_c)`` for every class: ``(m, C)`` float64 in [0, 1] units; with
        ``return_indices`` also ``(m, C)`` positions in ``x`` of a nearest point of each class."""
        dist, idx = self._search.all(self._queries(q))
        return (dist, idx) if return_indices else dist

    def top2(self, q):
        """``(class column of the nearest class (m,), smallest (m,), second smallest (m,))``; the
        nearest class is the smallest column among ties. Cheaper than :meth:`distances`."""
        return self._search.top2(self._queries(q))

    def other_class(self, q, labels):
        """The nearest point with a label other than ``labels`` ``(m,)`` (any label not in
        ``classes_`` counts as other): ``(distances (m,), positions in x (m,))``, ties to the
        smallest position; ``inf`` / ``-1`` when no other class exists."""
        qq = self._queries(q)
        lab = as_labels(labels, len(qq), "labels")
        pos = np.clip(np.searchsorted(self.classes_, lab), 0, len(self.classes_) - 1)
        own = np.where(self.classes_[pos] == lab, pos, -1).astype(np.int64)
        return self._search.other_class(qq, own)

    def points(self, positions) -> np.ndarray:
        """The indexed points at ``positions`` (any shape) as float64 in [0, 1]: ``(*shape, d)``."""
        pts = self.support_[np.asarray(positions)]
        return pts.astype(np.float64) / self.divisor_ if self.support_.dtype == np.uint8 else pts.copy()


__all__ = ["ClassIndex"]
