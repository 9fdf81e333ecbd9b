"""The exact optimal robust accuracy of randomized classifiers: the LP over every common-point set.

A randomized classifier gives each input a class distribution; its robust accuracy at a point is the
smallest probability of the point's label over the point's eps-ball (the adversary does not see the
coin). With ``q_i`` that probability for point ``i``, every *common-point set* ``S`` (points of
pairwise different classes whose balls share a point, :mod:`._common_point`) has
``sum_{i in S} q_i <= 1``, and any ``q`` with those constraints is reached by some classifier (at
each input, the points whose balls contain it form a common-point set). So the optimum is

    LP = max sum q,  0 <= q <= 1,  sum_{i in S} q_i <= 1 for every common-point set S,

and ``randomized_optimal_error = 1 - LP / N``. Every common-point set is a clique of the conflict
graph ``G``, so the LP splits over the components of ``G``.

**Reduction.** The pairwise LP (edges only) is solved exactly by a matching (``_independent``):
a half-integral optimum ``q0`` with ``A = {q0 = 1}``, ``H = {q0 = 1/2}``, the rest at 0. Then
``LP = |A| + LP(G[H])``. Lower bound: ``q = 1`` on ``A``, 0 off ``A`` and ``H``, an optimum of
``LP(G[H])`` on ``H`` is feasible (no vertex of ``H`` or ``A`` is adjacent to ``A``, so a set
meeting ``A`` weighs 1; any other is a common-point set of ``H`` plus zeros). Upper bound: by
complementary slackness an optimal dual of the pairwise LP puts nothing on edges between ``H`` and
the zeros, so its part on the other vertices covers them at cost ``|A|``; with an optimal dual of
``LP(G[H])`` it is a dual of the full LP of value ``|A| + LP(G[H])``. On ``G[H]`` each component
is solved alone; all ``q = 1/2`` is optimal unless it holds a common-point set of three points
(bipartite components never do).

**Solving** a component that does: **constraint generation** -- start from the pairwise optimum
``q = 1/2`` (l-inf: from the LP on the cliques of a greedy cover); find sets ``q`` violates --
first the fast ones (:mod:`._cuts`: violated edges, greedy common-point cliques), and only when
there are none the exact search (:func:`~._certificate.heavy_sets`: every maximal common-point
clique of the support heavier than ``1 - NEAR``, the nearly violated ones added too, which saves
rounds); add them as rows, solve the LP (HiGHS) on the rows so
far, repeat. Edges enter only when violated, so the LP holds a fraction of the graph.

**Certificate** (:mod:`._certificate`): the final ``q`` and the dual ``y``, both rounded to
rationals, are checked exactly -- ``q`` against every common-point set (edges in
integers, heavier sets enumerated with a margin far above rounding), ``y`` as a dual of the
generated family (which bounds the full LP from above, having fewer constraints). Equal values
prove the optimum; anything not proven by the deadline leaves the value None (``exact`` False).
"""
from __future__ import annotations

import dataclasses
import time
from fractions import Fraction

import numba as nb
import numpy as np
import scipy.sparse as sp

from ._certificate import Certificate, check_certificate, heavy_sets, rational
from ._cliques import cover
from ._cuts import greedy_sets, violated_edges
from ._graph import Graph, components, induced

#: A set is added when its weight exceeds 1 by more than this (HiGHS' feasibility tolerance is 1e-7).
VIOLATION = 1e-6
#: The exact search also adds the sets within this of violated (they would be next).
NEAR = 0.1
#: Sets added per round at most.
SETS_PER_ROUND = 20_000
#: Triangles handed to the oracle per kernel call.
TRIANGLE_BATCH = 4096


@dataclasses.dataclass
class RandomizedSolution:
    """``value``: the exact LP optimum (None: not proven by the deadline); ``lower`` / ``upper``:
    what is proven about it either way (floats, rounded outwards from the exact bounds);
    ``n_components``: components that needed constraint generation; ``n_sets``: common-point sets
    of three or more points added; ``largest_set``; ``rounds``: LP solves; ``undecided``: l1 sets
    the exact test could not decide (they make the result unproven)."""

    value: Fraction | None
    lower: float
    upper: float
    n_components: int = 0
    n_sets: int = 0
    largest_set: int = 0
    rounds: int = 0
    undecided: int = 0
    seconds: dict = dataclasses.field(default_factory=dict)

    @property
    def exact(self) -> bool:
        return self.value is not None


@nb.njit(cache=True, nogil=True)
def _triangles(indptr, indices, nodes, state, out):
    """Triangles ``v < a < b`` of the graph with ``v`` in ``nodes`` (sorted), from ``state`` =
    (position in ``nodes``, CSR position of ``a``) on, into ``out`` (``(m, 3)``, at least the
    largest degree + 1 rows): stops before a pair ``(v, a)`` whose triangles might not fit. Returns
    the rows written; ``state[0] == len(nodes)`` when every triangle has been given."""
    k = 0
    i, p = state[0], state[1]
    while i < len(nodes):
        v = nodes[i]
        if p < indptr[v]:
            p = indptr[v]
        end_v = indptr[v + 1]
        while p < end_v:
            a = indices[p]
            if a > v:
                if k + (end_v - p) > len(out):
                    state[0], state[1] = i, p
                    return k
                x, y = p + 1, indptr[a]
                while x < end_v and y < indptr[a + 1]:
                    if indices[x] == indices[y]:
                        out[k, 0], out[k, 1], out[k, 2] = v, a, indices[x]
                        k += 1
                        x += 1
                        y += 1
                    elif indices[x] < indices[y]:
                        x += 1
                    else:
                        y += 1
            p += 1
        i += 1
        p = 0
    state[0], state[1] = i, 0
    return k


def _has_common_triangle(h: Graph, nodes: np.ndarray, oracle, deadline: float) -> bool | None:
    """Whether the vertices ``nodes`` (sorted) of ``h`` hold a common-point set of three (an
    undecided triple counts: constraint generation then decides); None at the deadline."""
    width = int(h.degrees()[nodes].max()) + 1
    out = np.empty((max(width, TRIANGLE_BATCH), 3), h.indices.dtype)
    state = np.zeros(2, np.int64)
    while state[0] < len(nodes):
        k = _triangles(h.indptr, h.indices, nodes, state, out)
        for t in range(k):
            if oracle(out[t].tolist()) is not False:
                return True
            if time.perf_counter() > deadline:
                return None
    return False


def _rows_matrix(members: np.ndarray, starts: np.ndarray, extra: list[tuple[int, ...]], n: int) -> sp.csr_matrix:
    """The 0/1 rows of the sets ``members[starts[k]:starts[k + 1]]`` and then of ``extra``."""
    if extra:
        members = np.concatenate([members, np.fromiter((v for s in extra for v in s), members.dtype)])
        starts = np.concatenate([starts, starts[-1] + np.cumsum([len(s) for s in extra])])
    return sp.csr_matrix((np.ones(len(members)), members, starts), shape=(len(starts) - 1, n))


def _initial_rows(sub: Graph, norm: str, deadline: float) -> tuple[np.ndarray, np.ndarray]:
    """``(members, starts)``: the first rows of the LP -- for l-inf the cliques of the greedy cover
    (every edge in one, each a common-point set by Helly); none for l2 and l1, whose constraint
    generation starts from the pairwise optimum ``q = 1/2`` and adds edges only when violated."""
    if norm == "linf":
        found = cover(sub, deadline=deadline)
        if found is not None:
            return found[0].astype(np.int64), found[1]
        rows = np.repeat(np.arange(sub.n), sub.degrees())
        upper = rows < sub.indices
        members = np.stack([rows[upper], sub.indices[upper].astype(np.int64)], 1).ravel()
        return members, np.arange(0, len(members) + 1, 2, dtype=np.int64)
    return np.zeros(0, np.int64), np.zeros(1, np.int64)


def _violated(sub: Graph, q: np.ndarray, oracle, known: set, deadline: float, out: RandomizedSolution):
    """Sets ``q`` violates that are not rows yet: violated edges and greedy common-point cliques
    (:mod:`._cuts`); when there are none, the exact search (:func:`~._certificate.heavy_sets`),
    which adds the nearly violated sets too (weight above ``1 - NEAR``) and returns none only when
    none is violated. None at the deadline."""
    threshold = 1.0 + VIOLATION
    greedy = greedy_sets(sub, q, threshold, oracle, deadline=deadline, limit=SETS_PER_ROUND)
    if greedy is None:
        return None
    fresh = [s for s in violated_edges(sub, q, threshold) + greedy if s not in known]
    if fresh:
        return fresh
    found = heavy_sets(sub, q, 1.0 - NEAR, oracle, deadline=deadline, limit=SETS_PER_ROUND)
    if found is None:
        return None
    out.undecided += found.undecided
    if len(found.sets) < SETS_PER_ROUND and not any(q[list(s)].sum() > threshold for s in found.sets):
        return []  # every common-point set is kept: q is optimal for the full LP
    return [s for s in found.sets if s not in known]  # the nearly violated ones too: fewer rounds


def _component(sub: Graph, norm: str, oracle, deadline: float, out: RandomizedSolution):
    """Constraint generation on one component ``sub`` (``oracle`` on its local indices):
    ``(Certificate or None, upper)``, ``upper`` the least value of a relaxation (rounded up; the
    pairwise LP's ``n / 2`` at first). The certificate keeps the rows of positive dual only (the
    others add nothing to it)."""
    from scipy.optimize import linprog

    members, starts = _initial_rows(sub, norm, deadline)
    n_initial = len(starts) - 1
    extra: list[tuple[int, ...]] = []
    known: set[tuple[int, ...]] = set()
    upper = sub.n / 2
    q, res = np.full(sub.n, 0.5), None
    while time.perf_counter() < deadline:
        if n_initial + len(extra):
            a = _rows_matrix(members, starts, extra, sub.n)
            # interior point, then crossover to a vertex (the certificate's rationals want one):
            # faster than the dual simplex on these LPs of many two-point rows
            res = linprog(-np.ones(sub.n), A_ub=a, b_ub=np.ones(a.shape[0]), bounds=(0, 1), method="highs-ipm",
                          options={"time_limit": max(0.01, deadline - time.perf_counter())})
            out.rounds += 1
            if res.status != 0:
                return None, upper
            q = np.clip(res.x, 0.0, 1.0)
            upper = min(upper, float(-res.fun) * (1 + 1e-9) + 1e-9)  # the relaxation's value, rounded up
        fresh = _violated(sub, q, oracle, known, deadline, out)
        if fresh is None:
            return None, upper
        if not fresh:
            if res is None:  # q = 1/2 violates no set the oracle decides (l1 undecided): nothing proven
                return None, upper
            y = np.maximum(-np.asarray(res.ineqlin.marginals, np.float64), 0.0)
            used = np.flatnonzero(y > 0)
            rows = [tuple(members[starts[r]:starts[r + 1]].tolist()) if r < n_initial else extra[r - n_initial]
                    for r in used.tolist()]
            return Certificate(rows=rows, q=[rational(v) for v in q], y=[rational(v) for v in y[used]]), upper
        extra.extend(fresh)
        known.update(fresh)
        out.n_sets += sum(len(s) >= 3 for s in fresh)
        out.largest_set = max(out.largest_set, max(len(s) for s in fresh))
    return None, upper


def randomized_optimum(g: Graph, q0: np.ndarray, oracle, norm: str, *, deadline: float) -> RandomizedSolution:
    """The LP optimum over every common-point set of the conflict graph ``g`` (module docstring).

    Args:
        g: the conflict graph on ``n`` points.
        q0: ``(n,)`` a half-integral optimum of the pairwise LP (values 0, 1/2, 1).
        oracle: ``oracle(list of point indices) -> bool | None`` (:class:`~._common_point.CommonPoint`).
        norm: ``"linf"`` uses the greedy clique cover as the first rows (cliques are common-point sets).
        deadline: ``time.perf_counter()`` seconds; what is not proven by then leaves ``value`` None.
    """
    t0 = time.perf_counter()
    ones = int(np.count_nonzero(q0 == 1.0))
    half = np.flatnonzero(q0 == 0.5)
    base = Fraction(ones) + Fraction(len(half), 2)
    sol = RandomizedSolution(value=base, lower=float(base), upper=float(base))
    if len(half) < 3:
        sol.seconds["total"] = time.perf_counter() - t0
        return sol
    h = induced(g, half)
    n_comp, labels, _, bipartite = components(h)
    sizes = np.bincount(labels, minlength=n_comp)
    order = np.argsort(labels, kind="stable")
    ends = np.cumsum(sizes)

    def on_points(members, nodes):
        return oracle([int(half[nodes[v]]) for v in members])

    for comp in np.argsort(sizes, kind="stable"):
        if bipartite[comp] or sizes[comp] < 3:
            continue
        nodes = np.sort(order[ends[comp] - sizes[comp]:ends[comp]])
        if time.perf_counter() > deadline:
            sol.value, sol.lower = None, sol.lower - sizes[comp] / 2
            continue
        hot = _has_common_triangle(h, nodes, lambda m: oracle([int(half[v]) for v in m]), deadline)
        if hot is None:
            sol.value, sol.lower = None, sol.lower - sizes[comp] / 2
            continue
        if not hot:
            continue
        sub = induced(h, nodes)
        sol.n_components += 1
        local = (lambda m, nodes=nodes: on_points(m, nodes))
        cert, hi = _component(sub, norm, local, deadline, sol)
        proven = None if cert is None else check_certificate(cert, sub, local, deadline=deadline)
        part = Fraction(int(sizes[comp]), 2)
        if proven is None:
            sol.value = None
            sol.lower -= float(part)  # q = 0 there is feasible: a bound, not the optimum
            sol.upper -= float(part) - min(hi, float(part))
            continue
        sol.lower += float(proven.lower - part)
        sol.upper += float(proven.upper - part)
        if sol.value is not None and proven.exact:
            sol.value += proven.lower - part
        else:
            sol.value = None
    sol.seconds["total"] = time.perf_counter() - t0
    return sol


__all__ = ["NEAR", "RandomizedSolution", "SETS_PER_ROUND", "TRIANGLE_BATCH", "VIOLATION", "randomized_optimum"]
