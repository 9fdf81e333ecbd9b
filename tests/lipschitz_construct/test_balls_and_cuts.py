"""The fast parts of the randomized optimum against independent oracles: the l2 ball certificates
(int64 and Python integers) against a brute-force minimum enclosing ball in rationals, on both
sides of every radius and at the tie; the fast cuts against their definitions."""
from __future__ import annotations

import itertools
import time
from fractions import Fraction

import numpy as np
import pytest

from lipschitz_construct import _balls
from lipschitz_construct._common_point import CommonPoint
from lipschitz_construct._cuts import greedy_sets, violated_edges
from lipschitz_construct._graph import from_pairs

TINY = Fraction(1, 10**9)


def _solve(a, b):
    """Rational Gaussian elimination; None when singular (the test's own)."""
    n = len(b)
    m = [list(r) + [v] for r, v in zip(a, b)]
    for c in range(n):
        piv = next((r for r in range(c, n) if m[r][c] != 0), None)
        if piv is None:
            return None
        m[c], m[piv] = m[piv], m[c]
        for r in range(n):
            if r != c and m[r][c] != 0:
                f = m[r][c] / m[c][c]
                m[r] = [x - f * y for x, y in zip(m[r], m[c])]
    return [m[r][n] / m[r][r] for r in range(n)]


def brute_force_meb(points: np.ndarray) -> Fraction:
    """The squared radius of the smallest ball holding ``points`` (integer coordinates): the least
    circumscribed ball, in coordinates, of any subset that holds every point."""
    p = [[Fraction(int(v)) for v in row] for row in points]
    best = None
    for size in range(1, len(p) + 1):
        for s in itertools.combinations(range(len(p)), size):
            o = p[s[0]]
            diffs = [[a - b for a, b in zip(p[t], o)] for t in s[1:]]
            mu = _solve([[sum(x * y for x, y in zip(u, v)) for v in diffs] for u in diffs],
                        [sum(x * x for x in u) / 2 for u in diffs])
            if mu is None:
                continue
            c = [o[j] + sum(m * u[j] for m, u in zip(mu, diffs)) for j in range(len(o))]
            r2 = max(sum((a - b) ** 2 for a, b in zip(c, q)) for q in p)
            if sum((a - b) ** 2 for a, b in zip(c, o)) == r2 and (best is None or r2 < best):
                best = r2
    return best


def _random_sets(seed: int, count: int):
    rng = np.random.default_rng(seed)
    for case in range(count):
        k, d = int(rng.integers(3, 7)), int(rng.integers(2, 6))
        x = rng.integers(0, 256, (k, d))
        if case % 5 == 0:
            x[-1] = x[0]  # a duplicate: an affinely dependent set
        elif case % 7 == 0:  # collinear where the midpoint is on the grid
            x[1] = (x[0] + x[2]) // 2 if ((x[0] + x[2]) % 2 == 0).all() else x[1]
        yield x


@pytest.mark.parametrize("pivots", [_balls.MAX_PIVOTS, 1])
def test_l2_balls_are_decided_exactly_on_both_sides_and_at_the_tie_through_every_path(pivots, monkeypatch):
    """``meb_within`` against the brute force at the exact squared radius, just below it and far on
    either side; ``ball_certificates`` decides the far cases in int64 (int64 Gram) and in Python
    integers (object Gram) alike and leaves the tie undecided (the exact search then decides).
    With one pivot allowed the active set gives up on every set, and the exact search decides."""
    monkeypatch.setattr(_balls, "MAX_PIVOTS", pivots)
    paths = set()
    for x in _random_sets(3, 80):
        want = brute_force_meb(x)
        gram = x.astype(np.int64) @ x.astype(np.int64).T
        assert want > 0
        for limit, answer in ((want, True), (want - TINY, False), (want * Fraction(9, 10), False),
                              (want * Fraction(11, 10), True)):
            assert _balls.meb_within(gram, limit) is answer, (x.tolist(), limit)
        w = _balls.active_set_weights(gram)
        if w is None:
            paths.add("gave up")
            continue
        assert w.min() >= 0 and w.sum() == pytest.approx(1.0)
        for limit, answer in ((want * Fraction(9, 10), False), (want * Fraction(11, 10), True)):
            for g, tier in ((gram, "int64"), (gram.astype(object), "python")):
                assert _balls.ball_certificates(g, w, limit) is answer
                paths.add((tier, answer))
        if _balls.ball_certificates(gram, w, want) is None:
            paths.add("tie")
    if pivots == 1:  # every set needs a second step: the exact search answered each one above
        assert paths == {"gave up"}
    else:
        assert paths == {("int64", True), ("int64", False), ("python", True), ("python", False), "tie"}


def test_float_points_are_decided_exactly_too():
    """Dyadic float pixels (Python-integer Gram matrix): the acute triangle of squared sides
    16, 13, 13 in units of 1/8 has circumradius 13/48, decided on both sides of the tie."""
    x = np.array([[0.25, 0.5], [0.75, 0.5], [0.5, 0.125]])
    assert brute_force_meb((x * 8).astype(np.int64)) == Fraction(169, 36)
    for eps, answer in ((Fraction(13, 48), True), (Fraction(13, 48) - TINY, False), (Fraction(3, 10), True),
                        (Fraction(2, 10), False)):
        assert CommonPoint(x, "l2", eps)([0, 1, 2]) is answer, eps


def _graph_and_weights(seed: int, n: int = 30, p: float = 0.3):
    rng = np.random.default_rng(seed)
    pairs = [(a, b) for a, b in itertools.combinations(range(n), 2) if rng.random() < p]
    u, v = (np.array(t, np.int32) for t in zip(*pairs))
    q = rng.choice([0.0, 0.25, 0.5, 0.75, 1.0], n)
    return from_pairs(n, u, v), q, set(pairs)


def test_violated_edges_are_exactly_the_heavy_edges():
    for seed in range(5):
        g, q, pairs = _graph_and_weights(seed)
        want = sorted((a, b) for a, b in pairs if q[a] + q[b] > 1.0)
        assert sorted(violated_edges(g, q, 1.0)) == want and want


def test_greedy_sets_are_heavy_common_point_cliques():
    """Every set found is a clique of three or more, heavier than the threshold, and common-point
    by the oracle (here: a fixed family of allowed sets and their subsets); with an oracle that
    allows no triple none is found; ``limit`` and ``deadline`` are kept."""
    rng = np.random.default_rng(7)
    for seed in range(5):
        g, q, pairs = _graph_and_weights(seed, p=0.5)
        allowed = [frozenset(rng.choice(30, 5, replace=False).tolist()) for _ in range(40)]

        def oracle(members):
            return any(set(members) <= a for a in allowed)

        found = greedy_sets(g, q, 1.0, oracle, deadline=time.perf_counter() + 60, limit=10**6)
        assert found == sorted(set(found))
        for s in found:
            assert len(s) >= 3 and list(s) == sorted(s) and oracle(s)
            assert all((a, b) in pairs for a, b in itertools.combinations(s, 2))
            assert q[list(s)].sum() > 1.0
        assert greedy_sets(g, q, 1.0, lambda m: False, deadline=time.perf_counter() + 60, limit=10) == []
        if len(found) > 1:
            assert len(greedy_sets(g, q, 1.0, oracle, deadline=time.perf_counter() + 60, limit=1)) == 1
        assert greedy_sets(g, q, 1.0, oracle, deadline=time.perf_counter() - 1, limit=10) is None
    # a heavy common triangle is found
    g = from_pairs(4, np.array([0, 0, 1, 2], np.int32), np.array([1, 2, 2, 3], np.int32))
    found = greedy_sets(g, np.full(4, 0.5), 1.0, lambda m: True, deadline=time.perf_counter() + 60, limit=10)
    assert found == [(0, 1, 2)]
