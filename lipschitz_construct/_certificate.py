"""Heavy common-point sets, and the exact check of a certificate of the randomized optimum.

:func:`heavy_sets` enumerates the maximal common-point cliques of a weighted graph whose weight
reaches a threshold (Bron--Kerbosch over the vertices of positive weight, pruned by weight, each
extension asked of the geometric oracle: common-point sets are closed under taking subsets).

:func:`check_certificate` proves bounds on the LP ``max sum q, sum_S q <= 1 (every common-point set
S), 0 <= q <= 1`` of one component from a :class:`Certificate` -- rational primal values ``q``, the
generated rows and rational duals ``y`` -- by exact arithmetic only:

* **upper**: every row must be a clique of the graph and (3+ points) a common-point set; then for
  ``z_i = max(0, 1 - sum_{rows S containing i} y_S)`` the value ``sum y + sum z`` is the objective of
  a feasible dual of the LP over the rows alone, which has fewer constraints than the full LP;
* **lower**: ``q`` is checked against every edge (in integers) and every common-point set whose
  weight (in floats) is within :data:`MARGIN` of 1 or above; any set lighter than that in floats
  is lighter than 1 exactly. ``sum q`` divided by the largest weight found (at least 1) is then the
  value of a feasible point.

Equal bounds prove the optimum exactly.
"""
from __future__ import annotations

import dataclasses
import math
import sys
import time
from fractions import Fraction
from typing import Callable, Sequence

import numpy as np

from ._graph import Graph

#: Sets whose float weight is at least ``1 - MARGIN`` are checked exactly.
MARGIN = 1e-6
#: Largest denominator when an LP value is rounded to a rational.
RATIONAL_DENOMINATOR = 10**6


class _Deadline(Exception):
    """The enumeration ran past its deadline."""


def rational(v: float) -> Fraction:
    """The rational of denominator at most :data:`RATIONAL_DENOMINATOR` nearest to ``v``."""
    return Fraction(float(v)).limit_denominator(RATIONAL_DENOMINATOR)


def neighbour_sets(g: Graph, keep: np.ndarray | None = None) -> dict[int, set[int]]:
    """``{v: neighbours of v}`` over the vertices with ``keep[v]`` (all when None), both ends kept."""
    vertices = range(g.n) if keep is None else np.flatnonzero(keep).tolist()
    mask = np.ones(g.n, bool) if keep is None else keep
    out = {}
    for v in vertices:
        row = g.indices[g.indptr[v]:g.indptr[v + 1]]
        out[int(v)] = set(row[mask[row]].tolist())
    return out


@dataclasses.dataclass
class Found:
    """The sets :func:`heavy_sets` found (sorted tuples) and how many extensions the oracle left undecided."""

    sets: list[tuple[int, ...]]
    undecided: int = 0


def heavy_sets(g: Graph, q: np.ndarray, threshold: float, oracle: Callable[[Sequence[int]], bool | None], *,
               deadline: float, limit: int | None = None, min_size: int = 3) -> Found | None:
    """The maximal common-point cliques of ``g`` on the vertices with ``q > 0``, of ``min_size``
    or more vertices and weight ``sum q >= threshold`` (at most ``limit`` of them); None when
    ``deadline`` (``time.perf_counter()`` seconds) came first."""
    w = np.asarray(q, np.float64)
    nb = neighbour_sets(g, w > 0)
    order = sorted(nb, key=lambda v: (len(nb[v]), v))
    rank = {v: k for k, v in enumerate(order)}
    found = Found([])

    def expand(r: list[int], wr: float, p: list[int], x: list[int]) -> None:
        if time.perf_counter() > deadline:
            raise _Deadline
        rest = float(w[p].sum()) if p else 0.0
        extended = False
        for idx, u in enumerate(p):
            if wr + rest < threshold:
                break
            r2 = r + [u]
            ok = True if len(r2) < 3 else oracle(r2)
            if ok is None:
                found.undecided += 1
            if ok:
                extended = True
                nu = nb[u]
                expand(r2, wr + w[u], [t for t in p[idx + 1:] if t in nu], [t for t in x if t in nu])
                x.append(u)
            rest -= w[u]
            if limit is not None and len(found.sets) >= limit:
                return
        if not extended and len(r) >= min_size and wr >= threshold:
            if not any(oracle(r + [t]) for t in x):
                found.sets.append(tuple(sorted(r)))

    try:
        depth = sys.getrecursionlimit()
        sys.setrecursionlimit(max(depth, 10_000))
        for v in order:
            p = sorted((u for u in nb[v] if rank[u] > rank[v]), key=lambda u: (-w[u], u))
            x = [u for u in nb[v] if rank[u] < rank[v]]
            expand([v], float(w[v]), p, x)
            if limit is not None and len(found.sets) >= limit:
                break
    except _Deadline:
        return None
    finally:
        sys.setrecursionlimit(depth)
    return found


@dataclasses.dataclass
class Certificate:
    """What constraint generation ends with on one component: ``rows`` (sets of its vertices:
    edges, cliques, common-point sets), the primal ``q`` (one rational per vertex) and the dual
    ``y`` (one rational per row)."""

    rows: list[tuple[int, ...]]
    q: list[Fraction]
    y: list[Fraction]


@dataclasses.dataclass
class Proven:
    """Exact bounds on the LP value of a component; ``exact`` when they meet."""

    lower: Fraction
    upper: Fraction

    @property
    def exact(self) -> bool:
        return self.lower == self.upper


def _scaled(values: Sequence[Fraction]) -> tuple[np.ndarray, int]:
    """``(integers (object array), den)`` with ``values = integers / den`` exactly."""
    den = math.lcm(*(v.denominator for v in values)) if values else 1
    return np.array([v.numerator * (den // v.denominator) for v in values], dtype=object), den


def _is_clique(g: Graph, members: Sequence[int]) -> bool:
    for a in range(len(members)):
        row = g.indices[g.indptr[members[a]]:g.indptr[members[a] + 1]]
        for b in range(a + 1, len(members)):
            k = np.searchsorted(row, members[b])
            if k >= len(row) or row[k] != members[b]:
                return False
    return True


def check_certificate(cert: Certificate, g: Graph, oracle: Callable[[Sequence[int]], bool | None], *,
                      deadline: float) -> Proven | None:
    """Exact bounds on the component's LP value from ``cert`` (module docstring), ``g`` the
    component's graph and ``oracle`` the common-point test on its local indices; None when the
    deadline came first or a row is not a valid constraint (then the dual proves nothing)."""
    n = g.n
    if len(cert.q) != n or len(cert.y) != len(cert.rows):
        return None
    for s, ys in zip(cert.rows, cert.y):
        if ys != 0 and (len(set(s)) != len(s) or not _is_clique(g, s) or (len(s) >= 3 and oracle(list(s)) is not True)):
            return None
    # upper: a feasible dual of the LP over the rows
    y = [max(v, Fraction(0)) for v in cert.y]
    yi, yden = _scaled(y)
    cover = np.zeros(n, dtype=object)
    for s, v in zip(cert.rows, yi):
        if v:
            for i in s:
                cover[i] += v
    upper = Fraction(int(sum(yi)) + int(sum(max(0, yden - int(c)) for c in cover)), yden)
    # lower: a feasible primal point
    q = [min(max(v, Fraction(0)), Fraction(1)) for v in cert.q]
    qi, qden = _scaled(q)
    heaviest = Fraction(1)
    rows = np.repeat(np.arange(n), np.diff(g.indptr))
    upper_half = rows < g.indices
    if upper_half.any():
        pair = qi[rows[upper_half]] + qi[g.indices[upper_half]]
        heaviest = max(heaviest, Fraction(int(pair.max()), qden))
    found = heavy_sets(g, np.array([float(v) for v in q]), 1.0 - MARGIN, oracle, deadline=deadline)
    if found is None:
        return None
    if found.undecided:
        return Proven(Fraction(0), upper)
    for s in found.sets:
        heaviest = max(heaviest, Fraction(int(sum(qi[list(s)])), qden))
    lower = Fraction(int(sum(qi)), qden) / heaviest
    return Proven(lower, upper)


__all__ = ["Certificate", "Found", "MARGIN", "Proven", "RATIONAL_DENOMINATOR", "check_certificate", "heavy_sets",
           "neighbour_sets", "rational"]
