"""Maximum independent sets of conflict graphs, and their LP bounds, without a generic LP solver
where none is needed.

For a graph ``G`` on ``n`` vertices (edges ``(u, v)``):

* the **pairwise LP** ``max sum q, q_u + q_v <= 1, 0 <= q <= 1`` has value ``n - nu(H) / 2``,
  ``nu(H)`` the maximum matching of the bipartite double cover ``H`` (left and right copy of every
  vertex, ``u_L - v_R`` and ``v_L - u_R`` for every edge: the biadjacency matrix is ``G``'s own);
  a minimum vertex cover of ``H`` (König) gives a half-integral optimum ``q`` in ``{0, 1/2, 1}``;
* by Nemhauser--Trotter persistence some maximum independent set contains every ``q = 1`` vertex
  and no ``q = 0`` vertex, so ``alpha(G) = |{q = 1}| + alpha(G[{q = 1/2}])``;
* each component of ``G[{q = 1/2}]`` is solved exactly: bipartite ones by König
  (``alpha = n_c - nu_c``, Hopcroft--Karp through scipy's ``maximum_bipartite_matching``), the
  others by a MILP (scipy ``milp``, HiGHS) within the time left.

**Time.** :func:`solve` has one deadline. The matchings (polynomial) always run; then the greedy
set of every non-bipartite component (:mod:`._greedy`, stopped at the deadline: still independent),
then one MILP per group of components, each given the time left divided by the groups left (time
a group does not use goes to the next). A group with no time left, or more than
:data:`MILP_MAX_EDGES` edges, is not tried. A group not proven optimal keeps the better of its
greedy set and the MILP's incumbent, and the optimum is unknown (``exact`` False).
**Formulation** (:func:`milp_formulation`): HiGHS' presolve finds the cliques of a sparse graph
itself and proves far faster with it (Fashion-MNIST ℓ∞ train at ε = 0.35, 5,256 vertices and 44,017
edges: proven in 42 s; without it, not in 60 s), but it does not look at the clock, and its work
grows with the squared degrees (measured at a 0.5 s limit: 0.2 s over at ``sum deg² = 1.4e6``,
0.5 s at 8.1e6, 4.9 s at 1.9e7, 15.5 s at 4.2e7). Up to :data:`PRESOLVE_MAX_WORK` the MILP has one
row per edge and runs with presolve; above it, one row per clique of a greedy clique cover
(:mod:`._cliques`; every edge lies in one) and no presolve, which keeps dense graphs within the limit.
**Memory.** Graphs are :class:`~._graph.Graph` (8 bytes per edge); the subgraph of the ``1/2``
vertices and the bipartite part add at most 13 bytes per edge; the rest is O(n).
"""
from __future__ import annotations

import dataclasses
import time

import numpy as np
import scipy.sparse as sp

from ._cliques import CLIQUE_MAX_EDGES, clique_bound, clique_cover, clique_lp, cover
from ._graph import Graph, as_graph, components, from_pairs, induced, konig_sets, submatrix
from ._graph import is_independent as _is_independent
from ._greedy import greedy_independent, greedy_on

#: Non-bipartite components up to this many vertices are solved together in one MILP.
SMALL_COMPONENT = 64
#: Groups with more edges than this skip the MILP (its set-up alone would outlast any sensible time
#: limit) and keep the greedy set: their optimum is left open.
MILP_MAX_EDGES = 150_000
#: Graphs whose squared degrees sum to at most this get HiGHS' presolve (module docstring).
PRESOLVE_MAX_WORK = 8_000_000

_compiled = False


def compile_kernels() -> None:
    """Compile (or load from numba's cache) every graph kernel once per process, on a tiny graph:
    compilation must not eat a time limit."""
    global _compiled
    if _compiled:
        return
    u, v = np.array([0, 0, 1, 2], np.int32), np.array([1, 2, 2, 3], np.int32)
    g = from_pairs(4, u, v, np.zeros(4, np.uint8), 0)
    from_pairs(4, v, u)
    components(g)
    half_integral_lp(g)
    konig_sets(*submatrix(g, np.array([0, 3]), np.array([1, 2])), 2)
    greedy_on(g, deadline=time.perf_counter())
    _is_independent(g, np.zeros(4, bool))
    clique_cover(g)
    _compiled = True


def adjacency(n: int, u: np.ndarray, v: np.ndarray) -> sp.csr_matrix:
    """The symmetric 0/1 adjacency matrix (CSR, int8 data, sorted int32 indices) of the edges ``(u, v)``."""
    dt = np.int32 if n < 2**31 else np.int64
    return from_pairs(n, np.asarray(u).astype(dt), np.asarray(v).astype(dt)).csr()


def is_independent(a, keep: np.ndarray) -> bool:
    """Whether no edge of ``a`` (:class:`~._graph.Graph` or symmetric scipy CSR) joins two kept vertices."""
    return _is_independent(as_graph(a), keep)


def half_integral_lp(a):
    """``(lp value, q (n,))`` of the pairwise LP on the graph ``a``: ``q`` in ``{0, 0.5, 1}``, optimal."""
    g = as_graph(a)
    nu, zl, zr = konig_sets(g.indptr, g.indices, g.n)
    x = ((~zl).astype(np.float64) + zr.astype(np.float64)) / 2  # an optimal fractional vertex cover
    return g.n - nu / 2, 1.0 - x


def milp_formulation(g: Graph, deadline: float):
    """``(A (rows, n) CSR, presolve)`` of the MILP ``max sum x, A x <= 1, x in {0, 1}^n`` on ``g``:
    edge rows with presolve up to :data:`PRESOLVE_MAX_WORK`, else clique rows without (module
    docstring); None when the clique cover did not finish by ``deadline``."""
    deg = g.degrees()
    if int((deg * deg).sum()) <= PRESOLVE_MAX_WORK:
        rows = np.repeat(np.arange(g.n, dtype=np.int32), deg)
        upper = rows < g.indices  # each edge once, as (row, larger column)
        u, v = rows[upper], g.indices[upper]
        starts = np.arange(0, 2 * len(u) + 1, 2, dtype=np.int64)
        return sp.csr_matrix((np.ones(2 * len(u)), np.stack([u, v], 1).ravel(), starts),
                             shape=(len(u), g.n)), True
    found = cover(g, deadline=deadline) if g.m else (np.zeros(0, np.int32), np.zeros(1, np.int64))
    if found is None:
        return None
    members, starts = found
    return sp.csr_matrix((np.ones(len(members)), members, starts), shape=(len(starts) - 1, g.n)), False


def milp_independent(a, time_limit: float):
    """``(mask, proven optimal)``: the best independent set HiGHS finds within ``time_limit``
    seconds (at least 10 ms; None when it found none, or the clique cover took all the time), on
    the rows of :func:`milp_formulation`. Proven: HiGHS says optimal, or its dual bound leaves no
    room above the set found."""
    from scipy.optimize import Bounds, LinearConstraint, milp

    deadline = time.perf_counter() + time_limit
    g = as_graph(a)
    formulation = milp_formulation(g, deadline)
    if formulation is None:
        return None, False
    A, presolve = formulation
    res = milp(-np.ones(g.n), integrality=np.ones(g.n), bounds=Bounds(0, 1),
               constraints=LinearConstraint(A, -np.inf, 1),
               options={"time_limit": max(0.01, deadline - time.perf_counter()), "mip_rel_gap": 0.0,
                        "disp": False, "presolve": presolve})
    if res.x is None:
        return None, False
    keep = np.asarray(res.x) > 0.5
    if not _is_independent(g, keep):  # never expected: HiGHS' feasibility tolerance is far below 0.5
        return None, False
    bound = -res.mip_dual_bound if res.mip_dual_bound is not None else np.inf
    proven = res.status == 0 or (np.isfinite(bound) and np.floor(bound + 1e-6) <= keep.sum())
    return keep, bool(proven)


@dataclasses.dataclass
class Solution:
    """A maximum (or the best found) independent set of a graph and what is known about it."""

    keep: np.ndarray  # (n,) bool
    lp_value: float  # the pairwise LP optimum (an upper bound on alpha)
    exact: bool  # keep is a maximum independent set
    n_components: int = 0  # components with an edge
    largest_component: int = 0
    n_half: int = 0  # vertices with q = 1/2 (after the Nemhauser--Trotter reduction)
    n_milp: int = 0  # non-bipartite components (a MILP each, the small ones together)
    n_unsolved: int = 0  # of those, the ones not proven optimal in time
    seconds: dict = dataclasses.field(default_factory=dict)
    q: np.ndarray | None = None  # (n,) a half-integral optimum of the pairwise LP


def _groups(labels: np.ndarray, sizes: np.ndarray, bipartite: np.ndarray):
    """``[(components, sorted vertices)]``: the non-bipartite components of at most
    :data:`SMALL_COMPONENT` vertices together, then each larger one alone, by increasing size."""
    order = np.argsort(labels, kind="stable")
    ends = np.cumsum(sizes)
    hard = [int(c) for c in np.argsort(sizes, kind="stable") if not bipartite[c]]
    small = ~bipartite & (sizes <= SMALL_COMPONENT)
    out = [(int(small.sum()), np.flatnonzero(small[labels]))] if small.any() else []
    return out + [(1, order[ends[c] - sizes[c]:ends[c]]) for c in hard if sizes[c] > SMALL_COMPONENT], len(hard)


def _hard_components(h: Graph, labels, sizes, bipartite, sol: Solution, keep_h: np.ndarray, deadline: float):
    """The non-bipartite components of ``h``: greedy sets, then MILPs in the time left (module docstring)."""
    groups, sol.n_milp = _groups(labels, sizes, bipartite)
    if not groups:
        return
    greedy, _ = greedy_on(h, ~bipartite[labels], deadline=deadline)
    deg = h.degrees()
    for k, (count, nodes) in enumerate(groups):
        best, proven = None, False
        share = (deadline - time.perf_counter()) / (len(groups) - k)
        if share > 0 and int(deg[nodes].sum()) // 2 <= MILP_MAX_EDGES:
            best, proven = milp_independent(induced(h, nodes), share)
        if not proven:
            if best is None or greedy[nodes].sum() > best.sum():
                best = greedy[nodes]
            sol.n_unsolved += count
            sol.exact = False
        keep_h[nodes[best]] = True


def solve(a, *, time_limit: float = 60.0, deadline: float | None = None) -> Solution:
    """Maximum independent set of the graph ``a`` (:class:`~._graph.Graph` or symmetric scipy CSR)
    -- see the module docstring. ``deadline`` (``time.perf_counter()`` seconds) bounds the greedy
    sets and the MILPs; None: ``time_limit`` seconds from the call."""
    compile_kernels()
    t0 = time.perf_counter()
    deadline = t0 + time_limit if deadline is None else deadline
    g = as_graph(a)
    n = g.n
    seconds: dict[str, float] = {}
    n_comp, labels, _, _ = components(g)
    sizes = np.bincount(labels, minlength=n_comp)
    del labels
    lp_value, q = half_integral_lp(g)
    seconds["lp"] = time.perf_counter() - t0
    keep = q == 1.0
    half = np.flatnonzero(q == 0.5)
    sol = Solution(keep, float(lp_value), True, int((sizes > 1).sum()), int(sizes.max()) if n else 0, len(half))
    if len(half):
        t1 = time.perf_counter()
        h = induced(g, half)
        hc, hl, parity, bip = components(h)
        keep_h = np.zeros(len(half), bool)
        nodes = np.flatnonzero(bip[hl])
        if len(nodes):  # all bipartite components in one matching: left = even, right = odd
            left, right = nodes[~parity[nodes]], nodes[parity[nodes]]
            _, zl, zr = konig_sets(*submatrix(h, left, right), len(right))
            keep_h[left[zl]] = True
            keep_h[right[~zr]] = True
        seconds["bipartite"] = time.perf_counter() - t1
        t1 = time.perf_counter()
        _hard_components(h, hl, np.bincount(hl, minlength=hc), bip, sol, keep_h, deadline)
        keep[half[keep_h]] = True
        seconds["milp"] = time.perf_counter() - t1
    seconds["total"] = time.perf_counter() - t0
    sol.keep = keep
    sol.seconds = seconds
    sol.q = q
    return sol


__all__ = ["CLIQUE_MAX_EDGES", "MILP_MAX_EDGES", "PRESOLVE_MAX_WORK", "SMALL_COMPONENT", "Solution", "adjacency",
           "clique_bound", "clique_cover", "clique_lp", "compile_kernels", "greedy_independent", "half_integral_lp",
           "is_independent", "milp_formulation", "milp_independent", "solve"]
