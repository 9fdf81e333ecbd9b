"""l2 common points: whether the minimum enclosing ball of a few points has radius ``<= eps``, exactly.

Points come as their integer Gram matrix ``G`` (``(k, k)``; bytes: ``x . y`` over ``0..255``). The
ball's centre ``sum_i w_i x_i`` has weights ``w`` on the simplex, and the squared radius is the
largest ``max_i |x_i - c|^2``.

* **Fast, exact**: an active-set method (:func:`active_set_weights`, numba) finds the weights in
  floats; :func:`ball_certificates` rounds them to rationals and checks two certificates in
  integers: the ball around ``sum_i w_i x_i`` through the farthest point holds every point ("yes"
  when its radius is within the limit), and ``sum_i w_i |x_i|^2 - |sum_i w_i x_i|^2`` (the least
  mean squared distance to any centre) is at most the squared radius of *every* ball holding the
  points ("no" when it exceeds the limit). int64 where it cannot overflow, Python integers else.
* **At a tie** closer than floats resolve (:func:`meb_radius_sq`): the minimum enclosing ball is
  the circumscribed ball of an affinely independent support whose centre has non-negative
  barycentric weights and encloses the rest, the active set's support verified in rationals, or
  found by trying every support.
"""
from __future__ import annotations

import itertools
from fractions import Fraction
from typing import Sequence

import numba as nb
import numpy as np

#: Largest set whose minimum enclosing ball is found by trying every support when floats miss it.
ENUMERATE_MAX = 10
#: Denominator of the float weights of an l2 centre when they are rounded in Python integers.
BALL_DENOMINATOR = 2**40
#: Steps of the active-set method before it gives up (the exact search then decides).
MAX_PIVOTS = 64


def _solve_exact(a: list[list[Fraction]], b: list[Fraction]) -> list[Fraction] | None:
    """The solution of the square system ``a z = b`` in rationals, None when it is singular."""
    n = len(b)
    m = [row[:] + [rhs] for row, rhs in zip(a, b)]
    for c in range(n):
        piv = next((r for r in range(c, n) if m[r][c] != 0), None)
        if piv is None:
            return None
        m[c], m[piv] = m[piv], m[c]
        inv = 1 / m[c][c]
        m[c] = [v * inv for v in m[c]]
        for r in range(n):
            if r != c and m[r][c] != 0:
                f = m[r][c]
                m[r] = [v - f * w for v, w in zip(m[r], m[c])]
    return [m[r][n] for r in range(n)]


def _circumball(g: list[list[Fraction]], support: Sequence[int]) -> Fraction | None:
    """The squared radius of the ball around the circumcentre of the points ``support`` (in their
    affine hull) when that centre has non-negative barycentric weights and the ball holds every
    point of ``g``; else None. Exact."""
    size, k = len(support), len(g)
    a = [[2 * g[s][t] for t in support] + [Fraction(1)] for s in support] + [[Fraction(1)] * size + [Fraction(0)]]
    sol = _solve_exact(a, [g[s][s] for s in support] + [Fraction(1)])
    if sol is None or any(v < 0 for v in sol[:size]):
        return None
    lam = sol[:size]
    glam = [sum(lam[t] * g[i][support[t]] for t in range(size)) for i in range(k)]
    cc = sum(lam[t] * glam[support[t]] for t in range(size))
    r2 = cc - 2 * glam[support[0]] + g[support[0]][support[0]]
    return r2 if all(cc - 2 * glam[i] + g[i][i] <= r2 for i in range(k)) else None


@nb.njit(cache=True, nogil=True)
def _gauss(a, b):
    """The solution of the small square system ``a z = b`` (both overwritten), by Gaussian
    elimination with partial pivoting; ``(z, False)`` when a pivot vanishes (singular)."""
    n = len(b)
    if n == 0:
        return b, True
    scale = np.abs(a).max()
    for c in range(n):
        piv = c
        for r in range(c + 1, n):
            if abs(a[r, c]) > abs(a[piv, c]):
                piv = r
        if abs(a[piv, c]) <= 1e-12 * scale:
            return b, False
        if piv != c:
            for t in range(n):
                a[c, t], a[piv, t] = a[piv, t], a[c, t]
            b[c], b[piv] = b[piv], b[c]
        for r in range(c + 1, n):
            f = a[r, c] / a[c, c]
            if f != 0.0:
                for t in range(c, n):
                    a[r, t] -= f * a[c, t]
                b[r] -= f * b[c]
    for c in range(n - 1, -1, -1):
        v = b[c]
        for t in range(c + 1, n):
            v -= a[c, t] * b[t]
        b[c] = v / a[c, c]
    return b, True


@nb.njit(cache=True, nogil=True)
def _active_set(g, max_pivots):
    """:func:`active_set_weights` on the float Gram matrix ``g``: ``(weights, settled)``."""
    k = g.shape[0]
    support = np.empty(k, np.int64)
    lam = np.zeros(k)
    far, best = 0, -1.0
    for i in range(k):
        d = g[i, i] - 2 * g[0, i] + g[0, 0]
        if d > best:
            far, best = i, d
    support[0], m = far, 1
    for _ in range(max_pivots):
        # circumcentre x_0 + sum_t mu_t (x_t - x_0) of the support: M mu = diag(M) / 2 with M the
        # Gram matrix of the differences from its first point x_0
        o = support[0]
        a = np.empty((m - 1, m - 1))
        rhs = np.empty(m - 1)
        for s in range(1, m):
            for t in range(1, m):
                a[s - 1, t - 1] = g[support[s], support[t]] - g[support[s], o] - g[o, support[t]] + g[o, o]
            rhs[s - 1] = a[s - 1, s - 1] / 2
        mu, regular = _gauss(a, rhs)
        if not regular:
            return lam, False
        w = np.empty(m)
        w[0] = 1.0 - mu.sum()
        w[1:] = mu
        low = 0
        for s in range(1, m):
            if w[s] < w[low]:
                low = s
        if m > 1 and w[low] < 0:  # drop the most negative weight
            support[low:m - 1] = support[low + 1:m].copy()
            m -= 1
            continue
        lam[:] = 0.0
        for s in range(m):
            lam[support[s]] = w[s]
        gl = g @ lam
        centre = lam @ gl
        radius, far, best = 0.0, 0, -1.0
        for i in range(k):
            d = g[i, i] - 2 * gl[i] + centre
            if d > best:
                far, best = i, d
        for s in range(m):
            radius = max(radius, g[support[s], support[s]] - 2 * gl[support[s]] + centre)
        fresh = True
        for s in range(m):
            fresh = fresh and support[s] != far
        if not fresh or best <= radius * (1 + 1e-12):
            return lam, True
        support[m] = far
        m += 1
    return lam, False


def active_set_weights(gram: np.ndarray) -> np.ndarray | None:
    """``(k,)`` weights on the simplex of the minimum enclosing ball's centre, in floats: the
    circumcentre of a support set, which drops its most negative weight and takes in the farthest
    point outside until neither happens (at most :data:`MAX_PIVOTS` steps; None after, or when a
    support is affinely dependent: the exact search then decides)."""
    lam, settled = _active_set(np.asarray(gram, dtype=np.float64), MAX_PIVOTS)
    return lam if settled else None


def _radius_sq(gram: np.ndarray, weights: np.ndarray | None) -> Fraction | None:
    """:func:`meb_radius_sq` given the float weights of :func:`active_set_weights` (None: it gave up)."""
    k = len(gram)
    g = [[Fraction(int(gram[i][j])) for j in range(k)] for i in range(k)]
    if weights is not None:
        guess = _circumball(g, np.flatnonzero(weights > 1e-12).tolist())
        if guess is not None:
            return guess
    if k > ENUMERATE_MAX:
        return None
    best = None
    for size in range(1, k + 1):
        for support in itertools.combinations(range(k), size):
            r2 = _circumball(g, support)
            if r2 is not None and (best is None or r2 < best):
                best = r2
    return best


def meb_radius_sq(gram: np.ndarray) -> Fraction | None:
    """The squared radius of the minimum enclosing ball of the points with integer Gram matrix
    ``gram`` (``(k, k)``), exactly: the circumball of the support the active set finds in floats,
    verified in rationals (it is the minimum enclosing ball iff its centre has non-negative weights
    and it holds every point); if that fails, every support is tried, up to :data:`ENUMERATE_MAX`
    points (None above: undecided)."""
    return _radius_sq(gram, active_set_weights(gram))


@nb.njit(cache=True, nogil=True)
def _int64_certificates(gram, weights, den, cap):
    """:func:`ball_certificates` in int64 (``den`` a power of two with ``4 den^2 max(gram) <
    2**63``; ``cap = floor(limit_sq den^2)``): the weights rounded to integers summing to
    ``den``; 1 ("yes"), 0 ("no") or -1 (neither)."""
    k = len(weights)
    lam = np.empty(k, np.int64)
    total, top = 0, 0
    for i in range(k):
        lam[i] = max(0, int(np.rint(weights[i] * den)))
        total += lam[i]
        if lam[i] > lam[top]:
            top = i
    lam[top] += den - total
    if lam[top] < 0:
        return -1
    gl = np.zeros(k, np.int64)
    for i in range(k):
        for j in range(k):
            gl[i] += gram[i, j] * lam[j]
    centre, spread = 0, 0
    for i in range(k):
        centre += lam[i] * gl[i]
        spread += lam[i] * gram[i, i]
    farthest = 0
    for i in range(k):
        farthest = max(farthest, den * den * gram[i, i] + centre - 2 * den * gl[i])
    if farthest <= cap:
        return 1
    if den * spread - centre > cap:
        return 0
    return -1


def ball_certificates(gram: np.ndarray, weights: np.ndarray, limit_sq: Fraction) -> bool | None:
    """The two exact certificates of the module docstring at ``weights`` (floats, rounded to
    rationals): True when the ball around the weighted centre has squared radius ``<=
    limit_sq``, False when the lower bound exceeds it, None when neither. In int64 first (byte
    data: a non-negative int64 Gram matrix), with the weights on the finest grid that cannot
    overflow; then in Python integers, on multiples of ``1 / BALL_DENOMINATOR``."""
    gram = np.asarray(gram)
    if gram.dtype == np.int64 and gram.min() >= 0:
        bits = (60 - int(gram.max()).bit_length()) // 2
        if bits >= 8:
            den = 1 << bits
            cap = min(limit_sq.numerator * den * den // limit_sq.denominator, 1 << 62)
            verdict = _int64_certificates(gram, np.asarray(weights, np.float64), den, cap)
            if verdict >= 0:
                return bool(verdict)
    lam = [max(0, int(v)) for v in np.rint(np.asarray(weights, np.float64) * BALL_DENOMINATOR)]
    den = sum(lam)
    if den == 0:
        return None
    g = [[int(v) for v in row] for row in np.asarray(gram)]
    k = len(g)
    gl = [sum(g[i][j] * lam[j] for j in range(k) if lam[j]) for i in range(k)]
    centre = sum(lam[i] * gl[i] for i in range(k))  # |sum lam_i x_i|^2 times den^2
    scale = limit_sq.numerator * den * den
    farthest = max(den * den * g[i][i] - 2 * den * gl[i] + centre for i in range(k))
    if farthest * limit_sq.denominator <= scale:
        return True
    if (den * sum(lam[i] * g[i][i] for i in range(k)) - centre) * limit_sq.denominator > scale:
        return False
    return None


@nb.njit(cache=True, nogil=True)
def byte_gram(x, members):
    """``(k, k)`` int64: the Gram matrix of the byte rows ``x[members]`` (``x`` ``(n, d)`` uint8),
    exactly."""
    k = len(members)
    g = np.empty((k, k), np.int64)
    for a in range(k):
        for b in range(a, k):
            total = 0
            for j in range(x.shape[1]):
                total += np.int64(x[members[a], j]) * np.int64(x[members[b], j])
            g[a, b] = g[b, a] = total
    return g


def meb_within(gram: np.ndarray, limit_sq: Fraction) -> bool | None:
    """Whether the minimum enclosing ball of the points with integer Gram matrix ``gram`` has
    squared radius ``<= limit_sq``, exactly: by :func:`ball_certificates` at the weights of
    :func:`active_set_weights`, else by :func:`meb_radius_sq`; None: undecided."""
    weights = active_set_weights(gram)
    if weights is not None:
        verdict = ball_certificates(gram, weights, limit_sq)
        if verdict is not None:
            return verdict
    r2 = _radius_sq(gram, weights)
    return None if r2 is None else r2 <= limit_sq


__all__ = ["BALL_DENOMINATOR", "ENUMERATE_MAX", "MAX_PIVOTS", "active_set_weights", "ball_certificates", "byte_gram",
           "meb_radius_sq", "meb_within"]
