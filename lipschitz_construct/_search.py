"""Exact distance from queries to every class support: the computation behind the classifier.

Two backends answer the same two questions on ``(m, d)`` query arrays:

* ``all``  -- for every class ``i``, ``dist(q, X_i)`` and the index of a nearest point of ``X_i``;
* ``top2`` -- only the smallest and second-smallest class distance and the argmin class (ties to the
  smaller class index). Enough for :meth:`predict` and :meth:`certified_radius`, and much cheaper.

:class:`FusedLinfSearch` is the probe-pruned numba kernel of :mod:`separation.engines.probe` (l-inf, CPU);
:class:`EngineSearch` calls :func:`separation.nearest_neighbors` once per class with any
``separation`` engine and norm. Both are exact; distances are float64 in [0, 1] pixel units.
"""
from __future__ import annotations

import logging
import time

import numpy as np


from separation.engines.probe import FusedLinfSearch, top2_from_all  # noqa: F401

log = logging.getLogger(__name__)

class EngineSearch:
    """One :func:`separation.nearest_neighbors` call per class, with any engine and norm."""

    def __init__(self, support: np.ndarray, labels: np.ndarray, n_classes: int, *, norm: str, engine):
        t0 = time.perf_counter()
        self.norm = norm
        self.engine = engine
        self.name = getattr(engine, "name", str(engine))
        self.class_index = [np.flatnonzero(labels == c) for c in range(n_classes)]
        self.class_support = [np.ascontiguousarray(support[i]) for i in self.class_index]
        self.n_classes = n_classes
        self.build_seconds = time.perf_counter() - t0
        self.last_stats: dict[str, float] = {}

    def all(self, q: np.ndarray):
        from separation import nearest_neighbors

        t0 = time.perf_counter()
        dist = np.empty((len(q), self.n_classes))
        idx = np.empty((len(q), self.n_classes), dtype=np.int64)
        for c, (gi, Xc) in enumerate(zip(self.class_index, self.class_support)):
            d, i = nearest_neighbors(q, Xc, norm=self.norm, engine=self.engine)
            dist[:, c] = d
            idx[:, c] = gi[i]
        self.last_stats = {"kind": self.name, "seconds": time.perf_counter() - t0}
        return dist, idx

    def top2(self, q: np.ndarray):
        dist, _ = self.all(q)
        return top2_from_all(dist)
