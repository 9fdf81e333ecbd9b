"""Maximum independent sets of conflict graphs, and their LP bounds, without a generic LP solver
where none is needed.

For a graph ``G`` on ``n`` vertices (edges ``(u, v)``):

* the **pairwise LP** ``max sum q, q_u + q_v <= 1, 0 <= q <= 1`` has value ``n - nu(H) / 2``,
  ``nu(H)`` the maximum matching of the bipartite double cover ``H`` (left and right copy of every
  vertex, ``u_L - v_R`` and ``v_L - u_R`` for every edge); a minimum vertex cover of ``H`` (König)
  gives a half-integral optimum ``q`` in ``{0, 1/2, 1}``;
* by Nemhauser--Trotter persistence some maximum independent set contains every ``q = 1`` vertex
  and no ``q = 0`` vertex, so ``alpha(G) = |{q = 1}| + alpha(G[{q = 1/2}])``;
* each component of ``G[{q = 1/2}]`` is solved exactly: bipartite ones by König
  (``alpha = n_c - nu_c``, Hopcroft--Karp through scipy's ``maximum_bipartite_matching``), the
  others by a MILP (scipy ``milp``, HiGHS) under a time limit; where that limit is reached, the
  best independent set found (the MILP's incumbent or a minimum-degree greedy) is kept and the
  optimum is unknown.
"""
from __future__ import annotations

import dataclasses
import heapq
import time

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import breadth_first_order, connected_components, maximum_bipartite_matching

#: Non-bipartite components up to this many vertices are solved together in one MILP.
SMALL_COMPONENT = 64
#: Components with more edges than this skip the MILP (HiGHS' set-up alone would outlast any
#: sensible time limit) and keep the greedy set: their optimum is left open.
MILP_MAX_EDGES = 150_000
#: The clique LP is skipped (None) above this many edges (the greedy clique cover runs in Python).
CLIQUE_MAX_EDGES = 2_000_000


def adjacency(n: int, u: np.ndarray, v: np.ndarray) -> sp.csr_matrix:
    """The symmetric 0/1 adjacency matrix (CSR, int8) of the edges ``(u, v)``."""
    rows = np.concatenate([u, v])
    cols = np.concatenate([v, u])
    a = sp.csr_matrix((np.ones(len(rows), np.int8), (rows, cols)), shape=(n, n))
    a.sum_duplicates()
    a.data[:] = 1
    return a


def _rows_neighbors(a: sp.csr_matrix, rows: np.ndarray) -> np.ndarray:
    return a[rows].indices if len(rows) else np.zeros(0, np.int32)


def konig(b: sp.csr_matrix):
    """Maximum matching of the bipartite graph with biadjacency ``b`` (left = rows, right =
    columns) and König's sets: ``(matching size, zl, zr)`` with ``zl``/``zr`` the left/right
    vertices reachable from an unmatched left vertex by alternating paths. A minimum vertex cover
    is ``(left - zl) | zr``; a maximum independent set ``zl | (right - zr)``."""
    b = b.tocsr()
    nl, nr = b.shape
    match_l = maximum_bipartite_matching(b, perm_type="column")  # row i -> its column, or -1
    match_r = np.full(nr, -1, np.int64)
    ok = match_l >= 0
    match_r[match_l[ok]] = np.flatnonzero(ok)
    zl = np.zeros(nl, bool)
    zr = np.zeros(nr, bool)
    front = np.flatnonzero(~ok)
    zl[front] = True
    while front.size:
        nb = np.unique(_rows_neighbors(b, front))
        nb = nb[~zr[nb]]
        zr[nb] = True
        nxt = match_r[nb]
        nxt = nxt[nxt >= 0]
        nxt = np.unique(nxt[~zl[nxt]])
        zl[nxt] = True
        front = nxt
    return int(ok.sum()), zl, zr


def half_integral_lp(a: sp.csr_matrix):
    """``(lp value, q)`` of the pairwise LP on the graph ``a``: ``q`` in ``{0, 0.5, 1}``, optimal."""
    n = a.shape[0]
    nu, zl, zr = konig(a)
    x = ((~zl).astype(np.float64) + zr.astype(np.float64)) / 2  # an optimal fractional vertex cover
    return n - nu / 2, 1.0 - x


def two_coloring(a: sp.csr_matrix, labels: np.ndarray, n_comp: int):
    """``(parity (n,), bipartite (n_comp,))``: BFS depth parity of every vertex (from one root
    per component) and whether each component is bipartite (no edge joins equal parities)."""
    n = a.shape[0]
    roots = np.unique(labels, return_index=True)[1]
    hub = sp.csr_matrix((np.ones(len(roots), np.int8), (np.full(len(roots), n), roots)), shape=(n + 1, n + 1))
    g = sp.bmat([[a, None], [None, sp.csr_matrix((1, 1), dtype=np.int8)]], format="csr") + hub
    order, pred = breadth_first_order(g, n, directed=False, return_predecessors=True)
    depth = np.zeros(n + 1, np.int64)
    for v in order[1:]:  # parents come first in BFS order
        depth[v] = depth[pred[v]] + 1
    parity = (depth[:n] & 1).astype(bool)
    coo = sp.triu(a, k=1).tocoo()
    bad = parity[coo.row] == parity[coo.col]
    bipartite = np.ones(n_comp, bool)
    bipartite[labels[coo.row[bad]]] = False
    return parity, bipartite


def greedy_independent(a: sp.csr_matrix) -> np.ndarray:
    """A maximal independent set (boolean mask) by minimum remaining degree (ties: smallest index)."""
    n = a.shape[0]
    alive = np.ones(n, bool)
    keep = np.zeros(n, bool)
    deg = np.asarray(a[:, alive].sum(axis=1)).ravel() if n else np.zeros(0)
    heap = [(int(deg[v]), int(v)) for v in np.flatnonzero(alive)]
    heapq.heapify(heap)
    indptr, indices = a.indptr, a.indices
    while heap:
        dv, v = heapq.heappop(heap)
        if not alive[v] or dv != deg[v]:
            continue
        keep[v] = True
        alive[v] = False
        for w in indices[indptr[v]:indptr[v + 1]]:
            if alive[w]:
                alive[w] = False
                for x in indices[indptr[w]:indptr[w + 1]]:
                    if alive[x]:
                        deg[x] -= 1
                        heapq.heappush(heap, (int(deg[x]), int(x)))
    return keep


def is_independent(a: sp.csr_matrix, keep: np.ndarray) -> bool:
    coo = sp.triu(a, k=1).tocoo()
    return not np.any(keep[coo.row] & keep[coo.col])


def milp_independent(a: sp.csr_matrix, time_limit: float):
    """``(mask, proven optimal)``: the best independent set HiGHS finds within ``time_limit``
    seconds (None when it found none)."""
    from scipy.optimize import Bounds, LinearConstraint, milp

    n = a.shape[0]
    coo = sp.triu(a, k=1).tocoo()
    m = len(coo.row)
    rows = np.repeat(np.arange(m), 2)
    cols = np.stack([coo.row, coo.col], axis=1).ravel()
    A = sp.csr_matrix((np.ones(2 * m), (rows, cols)), shape=(m, n))
    res = milp(-np.ones(n), integrality=np.ones(n), bounds=Bounds(0, 1),
               constraints=LinearConstraint(A, -np.inf, 1),
               options={"time_limit": max(0.01, float(time_limit)), "mip_rel_gap": 0.0, "disp": False})
    if res.x is None:
        return None, False
    keep = np.asarray(res.x) > 0.5
    if not is_independent(a, keep):  # never expected: HiGHS' feasibility tolerance is far below 0.5
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
    n_milp: int = 0  # components solved by MILP
    n_unsolved: int = 0  # MILP components that hit the time limit
    seconds: dict = dataclasses.field(default_factory=dict)


def _subgraph(a: sp.csr_matrix, nodes: np.ndarray) -> sp.csr_matrix:
    return a[nodes][:, nodes].tocsr()


def solve(a: sp.csr_matrix, *, time_limit: float = 60.0) -> Solution:
    """Maximum independent set of the graph ``a`` (symmetric CSR) -- see the module docstring."""
    t0 = time.perf_counter()
    n = a.shape[0]
    seconds: dict[str, float] = {}
    n_comp, labels = connected_components(a, directed=False)
    sizes = np.bincount(labels, minlength=n_comp)
    lp_value, q = half_integral_lp(a)
    seconds["lp"] = time.perf_counter() - t0
    keep = q == 1.0
    half = np.flatnonzero(q == 0.5)
    sol = Solution(keep, float(lp_value), True, int((sizes > 1).sum()), int(sizes.max()) if n else 0, len(half))
    if len(half):
        t1 = time.perf_counter()
        h = _subgraph(a, half)
        hc, hl = connected_components(h, directed=False)
        parity, bip = two_coloring(h, hl, hc)
        on_bip = bip[hl]
        if on_bip.any():  # all bipartite components in one matching: left = even, right = odd
            nodes = np.flatnonzero(on_bip)
            left, right = nodes[~parity[nodes]], nodes[parity[nodes]]
            _, zl, zr = konig(h[left][:, right])
            keep[half[left[zl]]] = True
            keep[half[right[~zr]]] = True
        seconds["bipartite"] = time.perf_counter() - t1
        t1 = time.perf_counter()
        hsizes = np.bincount(hl, minlength=hc)
        hard = [c for c in np.argsort(hsizes, kind="stable") if not bip[c]]
        small = [c for c in hard if hsizes[c] <= SMALL_COMPONENT]
        groups = ([(len(small), np.flatnonzero(np.isin(hl, small)))] if small else []) + \
                 [(1, np.flatnonzero(hl == c)) for c in hard if hsizes[c] > SMALL_COMPONENT]
        sol.n_milp = len(hard)
        deadline = time.perf_counter() + time_limit
        for count, nodes in groups:
            g = _subgraph(h, nodes)
            left_s = deadline - time.perf_counter()
            small_enough = g.nnz // 2 <= MILP_MAX_EDGES
            best, proven = (milp_independent(g, left_s) if left_s > 0 and small_enough else (None, False))
            if not proven:
                greedy = greedy_independent(g)
                if best is None or greedy.sum() > best.sum():
                    best = greedy
                sol.n_unsolved += count
                sol.exact = False
            keep[half[nodes[best]]] = True
        seconds["milp"] = time.perf_counter() - t1
    seconds["total"] = time.perf_counter() - t0
    sol.keep = keep
    sol.seconds = seconds
    return sol


def clique_cover(a: sp.csr_matrix) -> list[np.ndarray]:
    """Maximal cliques (greedily grown, each of size >= 2) that together cover every edge."""
    a = a.tocsr()
    nbr = [set(a.indices[a.indptr[v]:a.indptr[v + 1]].tolist()) for v in range(a.shape[0])]
    deg = np.diff(a.indptr)
    covered: set[tuple[int, int]] = set()
    out = []
    coo = sp.triu(a, k=1).tocoo()
    for u, v in zip(coo.row.tolist(), coo.col.tolist()):
        if (u, v) in covered:
            continue
        clique = [u, v]
        cand = nbr[u] & nbr[v]
        while cand:
            w = max(cand, key=lambda z: (deg[z], -z))
            clique.append(w)
            cand &= nbr[w]
        clique.sort()
        for x in range(len(clique)):
            for y in range(x + 1, len(clique)):
                covered.add((clique[x], clique[y]))
        out.append(np.array(clique, np.int64))
    return out


def clique_lp(a: sp.csr_matrix, *, time_limit: float = 60.0) -> float | None:
    """``max sum q`` subject to ``sum_K q <= 1`` for the cliques of :func:`clique_cover` and
    ``0 <= q <= 1`` (HiGHS); None when it is not solved within ``time_limit`` seconds (or the graph
    has more than :data:`CLIQUE_MAX_EDGES` edges)."""
    from scipy.optimize import linprog

    n = a.shape[0]
    if a.nnz // 2 > CLIQUE_MAX_EDGES:
        return None
    cliques = clique_cover(a)
    if not cliques:
        return float(n)
    rows = np.concatenate([np.full(len(k), r) for r, k in enumerate(cliques)])
    A = sp.csr_matrix((np.ones(len(rows)), (rows, np.concatenate(cliques))), shape=(len(cliques), n))
    res = linprog(-np.ones(n), A_ub=A, b_ub=np.ones(len(cliques)), bounds=(0, 1), method="highs",
                  options={"time_limit": max(0.01, float(time_limit))})
    return float(-res.fun) if res.status == 0 else None


__all__ = ["CLIQUE_MAX_EDGES", "MILP_MAX_EDGES", "SMALL_COMPONENT", "Solution", "adjacency", "clique_cover", "clique_lp", "greedy_independent",
           "half_integral_lp", "is_independent", "konig", "milp_independent", "solve", "two_coloring"]
