"""Whether the closed eps-balls around a set of points share a point of [0, 1]^d, decided exactly.

A *common-point set* is a set of points whose balls (intersected with the pixel box) meet: no
classifier, even a randomized one, gives more than total probability 1 to their labels at the
shared point. :class:`CommonPoint` decides it for one norm and one radius:

* **l-inf**: balls are boxes, and pairwise intersecting boxes share a point (Helly), so a set is
  common-point iff every pair is within ``2 eps`` -- a clique of the conflict graph. No geometry.
* **l2**: iff the minimum enclosing ball of the points has radius ``<= eps`` (its centre lies in
  their convex hull, so in the box), decided exactly by :mod:`._balls`.
* **l1**: iff ``min_z max_i ||z - x_i||_1 <= eps`` (clipping ``z`` to the box never moves it away).
  The LP is solved by HiGHS and decided by two exact certificates: a rational ``z`` whose exact
  largest distance is ``<= eps`` proves "yes"; rational weights ``w`` on the simplex whose exact
  ``sum_j min_z sum_i w_i |z - x_ij|`` (a weighted median per coordinate) exceeds ``eps`` prove
  "no". When neither does (a tie closer than HiGHS resolves), the answer is None: undecided.

Points are held exactly as integers with one unit: bytes as ``0..255`` (unit 1/255); floats as
integers times a power of two (every float is a dyadic rational).
"""
from __future__ import annotations

import math
from fractions import Fraction
from typing import Sequence

import numpy as np

from ._balls import byte_gram, meb_within

#: Grid on which the l1 solver's centre is rounded before its exact check (lcm(1..16)).
CENTRE_GRID = 720720
#: Largest denominator of the l1 dual weights after rounding.
WEIGHT_DENOMINATOR = 10_000
#: Answers kept per oracle (then forgotten all at once).
CACHE_SIZE = 1_000_000


def integer_rows(x: np.ndarray) -> tuple[np.ndarray, Fraction]:
    """``(rows, unit)``: ``x`` (``(n, d)`` uint8 or floats) as exact integers with ``x = rows * unit``;
    bytes stay int64 (unit 1/255), floats become Python ints (object) over a power of two."""
    x = np.asarray(x)
    if x.dtype == np.uint8:
        return x.astype(np.int64), Fraction(1, 255)
    v = x.astype(np.float64)
    _, exp = np.frexp(v)
    # v = m * 2**(exp - 53) with an integer m: scale by the largest such power of two
    shift = int(53 - exp[v != 0].min()) if np.any(v != 0) else 0
    rows = np.array([[int(Fraction(float(t)) * 2**shift) for t in row] for row in v], dtype=object)
    return rows, Fraction(1, 2**shift) if shift >= 0 else Fraction(2**-shift)


def _weighted_median_cost(rows: np.ndarray, w: Sequence[int]) -> int:
    """``sum_j min_c sum_i w_i |c - rows[i, j]|`` with ``c`` over the column's values (exact ints)."""
    k = len(rows)
    best = None
    for c in range(k):
        cost = sum(int(w[i]) * np.abs(rows[c] - rows[i]) for i in range(k))
        best = cost if best is None else np.minimum(best, cost)
    return int(np.sum(best))


def _l1_quick(rows: np.ndarray, limit: Fraction) -> bool | None:
    """The two certificates of :func:`l1_within` at guesses that need no LP: "no" from equal
    weights (the mean distance to any point is at least the median cost over ``k``), "yes" from
    the coordinatewise median and midrange (``2 z`` integers); None when neither settles it."""
    k = len(rows)
    if Fraction(_weighted_median_cost(rows, [1] * k), k) > limit:
        return False
    srt = np.sort(rows, axis=0)
    for twice_z in (srt[(k - 1) // 2] + srt[k // 2], srt[0] + srt[-1]):
        if Fraction(max(int(np.sum(np.abs(twice_z - 2 * rows[i]))) for i in range(k)), 2) <= limit:
            return True
    return None


def l1_within(rows: np.ndarray, limit: Fraction) -> bool | None:
    """Whether some point is within l1 distance ``limit`` of every row of ``rows`` (``(k, d)``
    integers), by the two exact certificates of the module docstring (first at the guesses of
    :func:`_l1_quick`, then at the LP's optimum); None: undecided."""
    from scipy.optimize import linprog
    import scipy.sparse as sp

    quick = _l1_quick(rows, limit)
    if quick is not None:
        return quick
    # where every row has the same value, z takes it: those columns add nothing to any distance
    rows = rows[:, np.flatnonzero(rows.min(axis=0) != rows.max(axis=0))]
    k, d = rows.shape
    p = rows.astype(np.float64)
    # variables: z (d), e (k * d), t; rows: z - e <= p, -z - e <= -p, sum_j e_ij - t <= 0
    eye = sp.identity(d, format="csr")
    blocks_z = sp.vstack([eye] * k)
    e = sp.identity(k * d, format="csr")
    top = sp.hstack([blocks_z, -e, sp.csr_matrix((k * d, 1))])
    mid = sp.hstack([-blocks_z, -e, sp.csr_matrix((k * d, 1))])
    sums = sp.hstack([sp.csr_matrix((k, d)), sp.kron(sp.identity(k), np.ones((1, d))), -np.ones((k, 1))])
    a = sp.vstack([top, mid, sums], format="csr")
    b = np.concatenate([p.ravel(), -p.ravel(), np.zeros(k)])
    c = np.zeros(d + k * d + 1)
    c[-1] = 1.0
    bounds = [(float(lo), float(hi)) for lo, hi in zip(p.min(0), p.max(0))] + [(0, None)] * (k * d + 1)
    # presolve only slows this small, dense-in-structure LP down (4x on Fashion-MNIST sets)
    res = linprog(c, A_ub=a, b_ub=b, bounds=bounds, method="highs", options={"presolve": False})
    if res.status != 0:  # pragma: no cover - the LP is always feasible and bounded
        return None
    z = np.rint(res.x[:d] * CENTRE_GRID).astype(object)
    scaled = rows.astype(object) * CENTRE_GRID
    upper = max(sum(abs(int(v)) for v in (z - scaled[i])) for i in range(k))
    if Fraction(upper, CENTRE_GRID) <= limit:
        return True
    w = np.maximum(-np.asarray(res.ineqlin.marginals[-k:], dtype=np.float64), 0.0)
    if w.sum() <= 0:
        return None
    wf = [Fraction(float(v) / float(w.sum())).limit_denominator(WEIGHT_DENOMINATOR) for v in w]
    total = sum(wf)
    den = math.lcm(*(f.denominator for f in wf)) * total.denominator
    ints = [int(f / total * den) for f in wf]  # exact: the weights normalised to sum 1, times den
    if Fraction(_weighted_median_cost(rows.astype(object) if rows.dtype == object else rows, ints), den) > limit:
        return False
    return None


class CommonPoint:
    """``oracle(members)``: whether the closed ``eps``-balls (``norm``) around the points
    ``x[members]`` share a point of the box -- True, False, or None (l1 only: undecided).
    Pairwise conflicts (``d <= 2 eps``) are assumed: callers ask about cliques of the conflict graph."""

    def __init__(self, x: np.ndarray, norm: str, eps: Fraction):
        self.norm = norm
        self.eps = Fraction(eps)
        self._x = np.asarray(x).reshape(len(x), -1)
        self._bytes = self._x.dtype == np.uint8
        self._byte_limit = self.eps * 255  # the radius in byte units (unit 1/255)
        self.calls = 0
        self._cache: dict[tuple[int, ...], bool | None] = {}

    def _decide(self, key: tuple[int, ...]) -> bool | None:
        if self._bytes and self.norm == "l2":
            gram = byte_gram(self._x, np.array(key, np.int64))
            return meb_within(gram, self._byte_limit * self._byte_limit)
        rows, unit = integer_rows(self._x[np.array(key, np.int64)])
        limit = self.eps / unit
        if self.norm == "l2":
            return meb_within(np.dot(rows, rows.T), limit * limit)
        return l1_within(rows, limit)

    def __call__(self, members: Sequence[int]) -> bool | None:
        if self.norm == "linf" or len(members) <= 2:
            return True
        key = tuple(sorted(members))
        if key in self._cache:
            return self._cache[key]
        self.calls += 1
        answer = self._decide(key)
        if len(self._cache) >= CACHE_SIZE:
            self._cache.clear()
        self._cache[key] = answer
        return answer


__all__ = ["CACHE_SIZE", "CENTRE_GRID", "CommonPoint", "WEIGHT_DENOMINATOR", "integer_rows", "l1_within"]
