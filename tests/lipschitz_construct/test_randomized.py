"""The exact randomized optimum (``robustness_bounds(..., randomized=True)``) against independent
oracles: an LP over *every* common-point set enumerated by brute force (l-inf: boxes intersected
coordinate by coordinate, no Helly; l2: minimum enclosing balls by SLSQP; l1: LP feasibility), exact
ties decided on both sides, the certificate checked by its own routine, and the order of the
three quantities on real data."""
from __future__ import annotations

import itertools
import time
from fractions import Fraction

import numpy as np
import pytest
from scipy.optimize import linprog, minimize

from lipschitz_construct import robustness_bounds
from lipschitz_construct._certificate import Certificate, check_certificate
from lipschitz_construct._balls import meb_radius_sq
from lipschitz_construct._common_point import CommonPoint
from lipschitz_construct._graph import from_pairs
from lipschitz_construct._independent import half_integral_lp
from lipschitz_construct._randomized import randomized_optimum
from separation.core.datasets import load_dataset

TINY = Fraction(1, 10**12)


# -- independent oracles ----------------------------------------------------------------------------
def _byte_distance(a, b, norm):
    d = np.abs(a.astype(np.int64) - b.astype(np.int64))
    return {"linf": int(d.max()), "l1": int(d.sum()), "l2": int((d * d).sum())}[norm]


def _conflict(a, b, norm, eps):
    k, reach = _byte_distance(a, b, norm), 2 * eps * 255
    return k <= reach * reach if norm == "l2" else k <= reach


def _common_point_margin(p, norm, eps):
    """``(common point?, distance from the tie)`` in byte units, by a method of its own."""
    lim = float(eps * 255)
    p = p.astype(np.float64)
    if norm == "linf":  # boxes [x - eps, x + eps] meet iff they meet on every coordinate
        gap = float((p.max(0) - p.min(0)).max()) - 2 * lim
        return gap <= 0, abs(gap) + (1.0 if gap == 0 else 0.0)
    k, d = p.shape
    if norm == "l1":
        n = d + k * d + 1
        a, b = [], []
        for i in range(k):
            for j in range(d):
                for sign in (1, -1):
                    r = np.zeros(n)
                    r[j], r[d + i * d + j] = sign, -1
                    a.append(r)
                    b.append(sign * p[i, j])
            r = np.zeros(n)
            r[d + i * d:d + (i + 1) * d], r[-1] = 1, -1
            a.append(r)
            b.append(0.0)
        c = np.zeros(n)
        c[-1] = 1
        t = linprog(c, A_ub=np.array(a), b_ub=b, bounds=[(None, None)] * d + [(0, None)] * (k * d + 1)).fun
        return t <= lim, abs(t - lim)
    x0 = np.append(p.mean(0), ((p - p.mean(0)) ** 2).sum(1).max())
    cons = [{"type": "ineq", "fun": lambda z, i=i: z[-1] - ((z[:-1] - p[i]) ** 2).sum()} for i in range(k)]
    r2 = minimize(lambda z: z[-1], x0, constraints=cons, method="SLSQP", options={"ftol": 1e-12, "maxiter": 500}).fun
    return r2 <= lim * lim, abs(r2 - lim * lim) / max(1.0, lim * lim)


def brute_force_lp(x, y, norm, eps):
    """``(LP value, pairs, min distance of any set from a tie)``: the LP over every common-point set."""
    n = len(x)
    pairs = [(i, j) for i, j in itertools.combinations(range(n), 2)
             if y[i] != y[j] and _conflict(x[i], x[j], norm, eps)]
    adj = {i: set() for i in range(n)}
    for i, j in pairs:
        adj[i].add(j)
        adj[j].add(i)
    sets, closest = [], np.inf
    for size in range(2, n + 1):
        grown = False
        for s in itertools.combinations(range(n), size):
            if all(b in adj[a] for a, b in itertools.combinations(s, 2)):
                ok, margin = (True, np.inf) if size == 2 else _common_point_margin(x[list(s)], norm, eps)
                closest = min(closest, margin)
                if ok:
                    sets.append(s)
                    grown = True
        if not grown:
            break
    if not sets:
        return float(n), pairs, closest
    a = np.zeros((len(sets), n))
    for r, s in enumerate(sets):
        a[r, list(s)] = 1
    res = linprog(-np.ones(n), A_ub=a, b_ub=np.ones(len(sets)), bounds=(0, 1), method="highs")
    return -res.fun, pairs, closest


def solve(x, norm, eps, pairs, deadline=30.0):
    n = len(x)
    u = np.array([p[0] for p in pairs], np.int32)
    v = np.array([p[1] for p in pairs], np.int32)
    g = from_pairs(n, u, v)
    _, q0 = half_integral_lp(g)
    return randomized_optimum(g, q0, CommonPoint(x, norm, eps), norm, deadline=time.perf_counter() + deadline)


# -- agreement with the brute force -----------------------------------------------------------------
def pentagon_instance(rng):
    """Five points of five classes on a circle of radius 100 (sides about 118, diagonals about 190),
    small noise in 0--3 more coordinates, and 1--3 inner points of random classes: ``(x uint8, y)``."""
    d = 2 + int(rng.integers(0, 4))
    phi = rng.uniform(0, 2 * np.pi)
    angles = phi + 2 * np.pi * np.arange(5) / 5
    ring = np.stack([128 + 100 * np.cos(angles), 128 + 100 * np.sin(angles)], 1)
    inner = 128 + rng.uniform(-50, 50, size=(int(rng.integers(1, 4)), 2))
    flat = np.concatenate([ring, inner])
    noise = rng.integers(0, 21, size=(len(flat), d - 2))
    x = np.concatenate([np.rint(flat), noise], 1).astype(np.uint8)
    y = np.concatenate([np.arange(5), rng.integers(0, 7, size=len(inner))])
    return x, y


@pytest.mark.parametrize("norm", ["linf", "l2", "l1"])
def test_the_randomized_optimum_equals_the_lp_over_every_common_point_set(norm):
    """Small random byte instances around a pentagon (odd cycles, triangles with the inner points:
    fractional answers): the value is proven and equals the brute force."""
    rng = np.random.default_rng({"linf": 1, "l2": 2, "l1": 3}[norm])
    fractional = checked = 0
    while checked < 8:
        x, y = pentagon_instance(rng)
        reach = {"linf": (100, 150), "l2": (110, 170), "l1": (150, 230)}[norm]  # 2 eps, bytes: about the sides
        eps = Fraction(int(rng.integers(*reach)), 510)
        want, pairs, closest = brute_force_lp(x, y, norm, eps)
        if closest < 1e-6:  # too near a tie for the float oracles: they would not be a fair judge
            continue
        sol = solve(x, norm, eps, pairs)
        assert sol.exact, (norm, x.tolist(), eps)
        assert float(sol.value) == pytest.approx(want, abs=1e-7), (norm, x.tolist(), eps)
        assert sol.lower == pytest.approx(want, abs=1e-7) and sol.upper == pytest.approx(want, abs=1e-7)
        checked += 1
        fractional += want != round(want)
    assert fractional >= 2  # the instances exercise the LP, not only integral answers


# -- exact ties ---------------------------------------------------------------------------------------
TRIANGLE = np.array([[0, 0], [4, 0], [2, 3]], np.uint8)  # acute; circumradius^2 = 169/36 (bytes^2)
L1_QUAD = np.array([[0, 3, 0, 2], [3, 1, 3, 2], [2, 0, 0, 3], [2, 3, 4, 3]], np.uint8)  # pairs <= 8, centre 17/4


def test_l2_minimum_enclosing_ball_is_exact_at_its_tie():
    a2, b2, c2 = 16, 13, 13  # squared sides
    area2 = Fraction(2 * (a2 * b2 + b2 * c2 + c2 * a2) - a2 * a2 - b2 * b2 - c2 * c2, 16)  # Heron, squared
    circum2 = Fraction(a2 * b2 * c2) / (16 * area2)  # R^2 = a^2 b^2 c^2 / (16 K^2)
    gram = TRIANGLE.astype(np.int64) @ TRIANGLE.astype(np.int64).T
    assert meb_radius_sq(gram) == circum2 == Fraction(169, 36)
    tie = Fraction(13, 6 * 255)
    assert CommonPoint(TRIANGLE, "l2", tie)([0, 1, 2]) is True
    assert CommonPoint(TRIANGLE, "l2", tie - TINY)([0, 1, 2]) is False


def test_l1_common_point_is_exact_at_its_tie():
    """Four points whose l1 balls meet pairwise at radius 4/255 but share a point only from 17/1020 on."""
    assert max(_byte_distance(a, b, "l1") for a, b in itertools.combinations(L1_QUAD, 2)) == 8
    tie = Fraction(17, 4 * 255)
    assert CommonPoint(L1_QUAD, "l1", tie)([0, 1, 2, 3]) is True
    assert CommonPoint(L1_QUAD, "l1", tie - TINY)([0, 1, 2, 3]) is False


def test_l1_common_points_equal_the_independent_lp_through_every_path():
    """``l1_within`` against the oracle's own LP on random byte sets (3-5 points, some columns
    constant across the set), at radii on both sides of each set's optimum: every answer right,
    and each way of deciding taken -- equal-weight "no", median/midrange "yes", the LP."""
    from lipschitz_construct import _common_point as cp

    rng = np.random.default_rng(11)
    paths = set()
    for case in range(60):
        k, d = int(rng.integers(3, 6)), int(rng.integers(2, 9))
        x = rng.integers(0, 256, (k, d)).astype(np.uint8)
        const = rng.random(d) < 0.3
        x[:, const] = x[0, const]  # columns equal across the set
        _, t_margin = _common_point_margin(x, "l1", Fraction(0))
        t = t_margin / 255  # the optimum min_z max_i |z - x_i|_1, in pixel units (eps 0: margin = t)
        for factor in (Fraction(95, 100), Fraction(105, 100), Fraction(3, 2)):
            eps = Fraction(t).limit_denominator(10**6) * factor
            want, margin = _common_point_margin(x, "l1", eps)
            if margin < 1e-6:
                continue
            rows, unit = cp.integer_rows(x)
            paths.add({True: "yes", False: "no", None: "lp"}[cp._l1_quick(rows, eps / unit)])
            assert cp.l1_within(rows, eps / unit) is want, (case, factor)
    assert paths == {"yes", "no", "lp"}


@pytest.mark.parametrize("x, norm, tie, below, at", [
    (TRIANGLE, "l2", Fraction(13, 1530), Fraction(1, 2), Fraction(2, 3)),
    (L1_QUAD, "l1", Fraction(17, 1020), Fraction(2, 3), Fraction(3, 4)),
])
def test_the_randomized_optimum_moves_exactly_at_the_common_point_tie(x, norm, tie, below, at):
    """Every pair conflicts on both sides of the tie; the whole set shares a point only from the tie
    on. Below it: the triangle's pairwise LP (q = 1/2 each); the four l1 points' triples, which share
    points well before the tie (centres 1/4 and 3/4 byte below it), at q = 1/3 each. At it: one unit
    of probability for the whole set. The deterministic optimum (one point) does not move."""
    for t in itertools.combinations(range(len(x)), 3):
        if len(x) == 4:
            assert _common_point_margin(x[list(t)], norm, tie)[0]
    y = np.arange(len(x))
    b = robustness_bounds(x, y, norm=norm, eps=[tie - TINY, tie], randomized=True, engine="reference")
    assert list(b.n_conflicts) == [len(x) * (len(x) - 1) // 2] * 2
    assert list(b.randomized_optimal_error) == pytest.approx([float(below), float(at)], abs=1e-15)
    assert list(b.optimal_error) == pytest.approx([1 - 1 / len(x)] * 2, abs=1e-15)
    assert b.points[1].largest_common_point_set == len(x)  # the whole set, generated
    assert b.points[0].largest_common_point_set == (3 if len(x) == 4 else 0)  # l1: the triples; l2: none


def test_linf_cliques_share_a_point_without_geometry():
    """l-inf: three points pairwise within 2 eps share a point (Helly for boxes): 1/3 robust accuracy."""
    x = np.array([[0, 0], [10, 3], [5, 10]], np.uint8)
    b = robustness_bounds(x, np.arange(3), norm="linf", eps=[Fraction(10, 510)], randomized=True, engine="reference")
    assert b.randomized_optimal_error[0] == 1 - 1 / 3 and b.lower_error[0] == 0.5


# -- the certificate ----------------------------------------------------------------------------------
def _triangle_instance():
    x, norm, eps = TRIANGLE, "l2", Fraction(13, 1530)
    g = from_pairs(3, np.array([0, 0, 1], np.int32), np.array([1, 2, 2], np.int32))
    return g, CommonPoint(x, norm, eps)


def test_the_certificate_check_proves_a_valid_certificate_and_rejects_altered_ones():
    g, oracle = _triangle_instance()
    later = time.perf_counter() + 30
    third = Fraction(1, 3)
    good = Certificate(rows=[(0, 1, 2)], q=[third] * 3, y=[Fraction(1)])
    proven = check_certificate(good, g, oracle, deadline=later)
    assert proven.exact and proven.lower == 1
    # a primal above the optimum: found heavy, scaled down, no longer meets the dual
    heavy = check_certificate(Certificate(rows=[(0, 1, 2)], q=[Fraction(1, 2)] * 3, y=[Fraction(1)]), g, oracle,
                              deadline=later)
    assert heavy.lower == 1 and heavy.upper == 1  # 3/2 scaled by its heaviest set (3/2): still a proof
    # a dual that covers too little: the gap is filled at cost, the bounds no longer meet
    weak = check_certificate(Certificate(rows=[(0, 1, 2)], q=[third] * 3, y=[Fraction(1, 2)]), g, oracle,
                             deadline=later)
    assert weak.upper == Fraction(2) and not weak.exact
    # a row that is not a constraint (below the tie the three balls share no point) proves nothing
    below = CommonPoint(TRIANGLE, "l2", Fraction(13, 1530) - TINY)
    assert check_certificate(good, g, below, deadline=later) is None
    # a row that is not a clique of the graph proves nothing
    path = from_pairs(3, np.array([0, 1], np.int32), np.array([1, 2], np.int32))
    assert check_certificate(good, path, oracle, deadline=later) is None


def test_a_solver_that_ran_out_of_time_claims_nothing():
    """The triangle at its tie needs constraint generation; with the deadline already past, no value
    is claimed, and the bounds still hold the optimum (1)."""
    sol = solve(TRIANGLE, "l2", Fraction(13, 1530), [(0, 1), (0, 2), (1, 2)], deadline=-1.0)
    assert sol.value is None and not sol.exact
    assert sol.lower <= 1 <= sol.upper


def test_an_unproven_randomized_optimum_is_bracketed_by_the_lp_and_the_witness():
    """Past its deadline the randomized optimum is NaN, and its bracket lies between the pairwise
    LP bound and the deterministic witness (a randomized classifier too), at every eps."""
    ds = load_dataset("digits")
    b = robustness_bounds(ds.x_train[:700], ds.y_train[:700], norm="l2", eps=["1", "1.1"], randomized=True,
                          time_limit=1e-6, progress=False)
    for p in b.points:
        assert np.isnan(p.randomized_optimal_error)
        lo, hi = p.randomized_bracket
        assert p.lower_error <= lo <= hi <= p.upper_error < 1.0 - p.lower_error


# -- real data: the order of the three quantities -----------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("norm, eps", [("linf", ["0.2", "0.3", "0.4", "0.45"]), ("l2", ["0.5", "0.8", "0.9", "1", "1.1"])])
def test_lower_le_randomized_le_deterministic_and_monotone_on_digits(norm, eps):
    """700 training points of the embedded digits: every randomized optimum proven, between the
    pairwise LP and the deterministic optimum (where that is proven), growing with eps, 0 below half
    the separation; somewhere strictly inside (l-inf 0.45: the deterministic optimum is not proven
    in 20 s, the randomized one is, and beats the LP)."""
    ds = load_dataset("digits")
    b = robustness_bounds(ds.x_train[:700], ds.y_train[:700], norm=norm, eps=eps, randomized=True, time_limit=20,
                          progress=False)
    rand, opt = b.randomized_optimal_error, b.optimal_error
    assert np.all(np.isfinite(rand)), rand
    assert np.all(b.lower_error <= rand) and np.all(rand[np.isfinite(opt)] <= opt[np.isfinite(opt)])
    assert np.all(np.diff(rand) >= 0)
    assert b.threshold_eps is not None and b.eps[0] < b.threshold_eps and rand[0] == 0
    assert any(b.lower_error[k] < rand[k] for k in range(len(eps)))
