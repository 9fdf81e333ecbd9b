"""Violated constraints found fast, for the constraint generation of :mod:`._randomized`.

Each round of the constraint generation needs sets ``S`` (edges of the conflict graph, or larger
common-point sets) that the current LP solution ``q`` violates, ``sum_{i in S} q_i > 1``. The exact
search (:func:`~._certificate.heavy_sets`, every maximal heavy common-point clique) is needed only
to prove that none is left; while many are, these two find plenty at a fraction of its cost:

* :func:`violated_edges`: every edge heavier than the threshold (vectorised);
* :func:`greedy_sets`: from every edge between a vertex of the support and one of its
  :data:`SEEDS` heaviest neighbours, a clique of the conflict graph grown one vertex at a time
  (heaviest first) while the geometric oracle says its balls still share a point; kept when
  heavier than the threshold.
"""
from __future__ import annotations

import time
from typing import Callable, Sequence

import numpy as np

from ._certificate import neighbour_sets
from ._graph import Graph

#: Greedy cliques grown from each vertex: one from each of its heaviest neighbours.
SEEDS = 4


def violated_edges(g: Graph, q: np.ndarray, threshold: float) -> list[tuple[int, int]]:
    """The edges ``(a, b)``, ``a < b``, of ``g`` with ``q[a] + q[b] > threshold``."""
    rows = np.repeat(np.arange(g.n), g.degrees())
    cols = g.indices.astype(np.int64)
    hit = (rows < cols) & (q[rows] + q[cols] > threshold)
    return list(zip(rows[hit].tolist(), cols[hit].tolist()))


def greedy_sets(g: Graph, q: np.ndarray, threshold: float, oracle: Callable[[Sequence[int]], bool | None], *,
                deadline: float, limit: int) -> list[tuple[int, ...]] | None:
    """Common-point cliques of ``g`` (sorted tuples of three or more vertices, at most ``limit``)
    heavier than ``threshold`` under the weights ``q``, grown greedily from the edges at each
    vertex of positive weight (module docstring); an undecided oracle answer counts as "no". None when
    ``deadline`` (``time.perf_counter()`` seconds) came first."""
    w = np.asarray(q, np.float64)
    nb = neighbour_sets(g, w > 0)
    found: set[tuple[int, ...]] = set()
    for v in sorted(nb, key=lambda t: (-w[t], t)):
        if time.perf_counter() > deadline:
            return None
        ranked = sorted(nb[v], key=lambda t: (-w[t], t))
        for seed in ranked[:SEEDS]:
            members, weight, common = [v, seed], float(w[v] + w[seed]), nb[v] & nb[seed]
            for u in ranked:
                if u in common and oracle(members + [u]) is True:
                    members.append(u)
                    weight += float(w[u])
                    common = common & nb[u]
                    if not common:
                        break
            if len(members) >= 3 and weight > threshold:
                found.add(tuple(sorted(members)))
                if len(found) >= limit:
                    return sorted(found)
    return sorted(found)


__all__ = ["SEEDS", "greedy_sets", "violated_edges"]
