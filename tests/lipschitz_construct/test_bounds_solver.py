"""What the exact solver claims, checked against real solves: HiGHS really stopped by its time
limit on a hard instance (the code must then claim no optimum, at every level), every path's
optimum against an independent brute force over all vertex sets (bipartite, MILP, mixed, several
components), and every size switch at its boundary (SMALL_COMPONENT, MILP_MAX_EDGES,
PRESOLVE_MAX_WORK, CLIQUE_MAX_EDGES). No solver is replaced by a stub here."""
from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from scipy.optimize import linprog

from lipschitz_construct import _cliques
from lipschitz_construct import _independent as ind
from lipschitz_construct._graph import as_graph
from lipschitz_construct import robustness_bounds


def brute_alpha(n: int, edges) -> int:
    """The largest independent set, by trying all ``2**n`` vertex sets (vectorized)."""
    masks = np.arange(1 << n, dtype=np.int64)
    ok = np.ones(len(masks), bool)
    for u, v in edges:
        ok &= ((masks >> u) & (masks >> v) & 1) == 0
    return int(max(bin(int(m)).count("1") for m in masks[ok]))


def pairwise_lp(n: int, edges) -> float:
    if not edges:
        return float(n)
    A = np.zeros((len(edges), n))
    for k, (u, v) in enumerate(edges):
        A[k, [u, v]] = 1
    return -linprog(-np.ones(n), A_ub=A, b_ub=np.ones(len(edges)), bounds=(0, 1), method="highs").fun


def graph(n: int, edges):
    e = np.array(edges, int).reshape(-1, 2)
    return ind.adjacency(n, e[:, 0], e[:, 1])


def random_edges(rng, n, p):
    return [(u, v) for u in range(n) for v in range(u + 1, n) if rng.random() < p]


def bipartite_edges(rng, n, p):
    side = rng.random(n) < 0.5
    return [(u, v) for u in range(n) for v in range(u + 1, n) if side[u] != side[v] and rng.random() < p]


def odd_wheel_edges(rng, n, p):
    """An odd cycle through every vertex (so no vertex is fixed by the LP) plus random chords."""
    m = n - (n % 2 == 0)
    if m < 3:
        return random_edges(rng, n, p)
    ring = {(min(k, (k + 1) % m), max(k, (k + 1) % m)) for k in range(m)}
    return sorted(ring | set(random_edges(rng, n, p)))


def disjoint(*parts):
    """The disjoint union of ``(n, edges)`` parts, vertices shuffled: ``(n, edges)``."""
    n, edges = 0, []
    for m, e in parts:
        edges += [(u + n, v + n) for u, v in e]
        n += m
    perm = np.random.default_rng(n).permutation(n)
    return n, [(min(perm[u], perm[v]), max(perm[u], perm[v])) for u, v in edges]


def check_exact(n, edges, *, milp=None):
    """The solver's claimed optimum is the brute-force one, its set independent, its LP linprog's."""
    a = graph(n, edges)
    sol = ind.solve(a)
    assert sol.exact and sol.n_unsolved == 0
    assert ind.is_independent(a, sol.keep) and int(sol.keep.sum()) == brute_alpha(n, edges)
    assert sol.lp_value == pytest.approx(pairwise_lp(n, edges), abs=1e-9)
    if milp is not None:
        assert (sol.n_milp > 0) == milp, sol
    return sol


@pytest.mark.parametrize("make, milp", [(bipartite_edges, False), (odd_wheel_edges, True)])
def test_each_path_claims_the_brute_force_optimum(rng, make, milp):
    """Bipartite graphs (König only, no MILP) and graphs every vertex of which is left at 1/2 on an
    odd cycle (the MILP path): the optimum claimed is the brute-force one."""
    for _ in range(40):
        n = int(rng.integers(3, 15))
        check_exact(n, make(rng, n, rng.uniform(0.1, 0.7)), milp=milp)


def test_mixed_graphs_of_several_components_claim_the_brute_force_optimum(rng):
    """Unions of bipartite, odd and random parts (the LP fixes some vertices, some 1/2 components
    are bipartite, others need the MILP; several of each): the optimum is the brute-force one."""
    kinds = (bipartite_edges, odd_wheel_edges, random_edges)
    seen_both = 0
    for _ in range(30):
        parts = []
        for _ in range(int(rng.integers(2, 5))):
            m = int(rng.integers(2, 6))
            parts.append((m, kinds[int(rng.integers(0, 3))](rng, m, rng.uniform(0.2, 0.9))))
        n, edges = disjoint(*parts)
        sol = check_exact(n, edges)
        seen_both += sol.n_milp > 0 and sol.n_half > 0
    assert seen_both >= 5


def test_the_bounds_on_data_claim_the_brute_force_optimum(rng):
    """Through robustness_bounds: points on a line with distinct labels (interval graphs) and in the
    plane (unit-square graphs, odd cycles), the claimed optimum against brute force."""
    for d in (1, 2):
        for _ in range(10):
            n = int(rng.integers(4, 14))
            x = rng.integers(0, 30, size=(n, d)).astype(np.uint8)
            y = rng.integers(0, 4, n)
            y[:2] = [0, 1]
            eps = [Fraction(3, 255), "8/255"]  # exact: byte distances 6 and 16 are ties
            b = robustness_bounds(x, y, norm="linf", eps=eps, time_limit=30)
            dist = np.abs(x[:, None].astype(int) - x[None].astype(int)).max(2)
            for e, p in zip(eps, b.points, strict=True):
                edges = [(u, v) for u in range(n) for v in range(u + 1, n)
                         if y[u] != y[v] and dist[u, v] <= 2 * Fraction(e) * 255]
                assert p.solved and round(n * (1 - p.optimal_error)) == brute_alpha(n, edges)


def dense_random(n: int = 300, p: float = 0.5, seed: int = 1):
    rng = np.random.default_rng(seed)
    u, v = np.triu_indices(n, 1)
    pick = rng.random(len(u)) < p
    return ind.adjacency(n, u[pick], v[pick])


def test_a_milp_stopped_by_its_time_limit_claims_no_optimum():
    """A real HiGHS run on G(300, 1/2) (alpha about 15, LP bound 150) stopped after 10 ms: no proof,
    whatever it found; the solver flags it; given time, the same call proves nothing false either."""
    a = dense_random()
    keep, proven = ind.milp_independent(a, 0.01)
    assert not proven and (keep is None or ind.is_independent(a, keep))
    sol = ind.solve(a, time_limit=0.01)
    assert not sol.exact and sol.n_unsolved == 1 and sol.n_milp == 1 and sol.n_half == 300
    assert ind.is_independent(a, sol.keep) and 5 <= sol.keep.sum() <= 40


def test_bounds_stopped_by_the_time_limit_claim_no_optimum():
    """300 random points of 16 bytes, each its own class: at the median distance the conflict graph
    is dense and random-like. With 10 ms the bounds report no optimum (NaN, solved False), only the
    LP bound and a certified witness."""
    rng = np.random.default_rng(3)
    x = rng.integers(0, 256, size=(300, 16)).astype(np.uint8)
    y = np.arange(300)
    b = robustness_bounds(x, y, norm="linf", eps=0.4, time_limit=0.01)
    p = b.points[0]
    assert p.n_conflicts > 20_000 and p.n_half_integral == 300 and p.n_unsolved_components == 1
    assert not p.solved and np.isnan(p.optimal_error) and np.isnan(b.optimal_error[0])
    assert p.lower_error == 0.5 and p.upper_error > 0.8
    clf, mask = b.witness(0.4)
    assert np.array_equal(clf.predict(x[mask]), y[mask])


def square_of_cycle(n: int):
    """The cycle ``C_n`` with the chords ``(k, k + 2)``: 4-regular, non-bipartite (triangles), every
    vertex at 1/2 in the LP, ``alpha = floor(n / 3)`` (powers of cycles: floor(n / (k + 1)))."""
    return n, sorted({(min(k, (k + s) % n), max(k, (k + s) % n)) for k in range(n) for s in (1, 2)})


@pytest.fixture
def milp_sizes(monkeypatch):
    """The vertex counts of the MILPs solve() runs (the real solver runs)."""
    sizes, real = [], ind.milp_independent
    monkeypatch.setattr(ind, "milp_independent", lambda g, t: sizes.append(g.n) or real(g, t))
    return sizes


@pytest.mark.parametrize("big, calls", [(ind.SMALL_COMPONENT, [ind.SMALL_COMPONENT + 3]),
                                        (ind.SMALL_COMPONENT + 1, [3, ind.SMALL_COMPONENT + 1])])
def test_a_component_of_small_component_vertices_joins_the_group_and_one_more_is_alone(big, calls, milp_sizes):
    n, edges = disjoint((3, [(0, 1), (0, 2), (1, 2)]), square_of_cycle(big))
    sol = ind.solve(graph(n, edges))
    assert milp_sizes == calls and sol.n_milp == 2 and sol.exact
    assert sol.keep.sum() == 1 + big // 3 and ind.is_independent(graph(n, edges), sol.keep)


@pytest.mark.parametrize("n", [ind.SMALL_COMPONENT, ind.SMALL_COMPONENT + 1])
@pytest.mark.parametrize("over", [0, 1])
def test_a_group_of_milp_max_edges_is_solved_and_one_edge_more_is_not(monkeypatch, milp_sizes, n, over):
    """The switch is on the edges of a MILP's group (the small components together, or one large
    component): at exactly MILP_MAX_EDGES the MILP runs and proves; one above it is skipped and the
    optimum left open, with the greedy witness."""
    tri = (3, [(0, 1), (0, 2), (1, 2)])
    n_all, edges = disjoint(tri, square_of_cycle(n))
    group_edges = 2 * n + (3 if n <= ind.SMALL_COMPONENT else 0)
    monkeypatch.setattr(ind, "MILP_MAX_EDGES", group_edges - over)
    a = graph(n_all, edges)
    sol = ind.solve(a)
    assert ind.is_independent(a, sol.keep)
    if over:
        assert n + (3 if n <= ind.SMALL_COMPONENT else 0) not in milp_sizes
        assert not sol.exact and sol.n_unsolved == (2 if n <= ind.SMALL_COMPONENT else 1)
    else:
        assert sol.exact and sol.keep.sum() == 1 + n // 3


@pytest.mark.parametrize("over", [0, 1])
def test_edge_rows_with_presolve_up_to_presolve_max_work_and_clique_rows_above(monkeypatch, rng, over):
    """Squared degrees summing to exactly PRESOLVE_MAX_WORK: one MILP row per edge, with HiGHS'
    presolve; one above: one row per clique of a cover of every edge, without. Either way the
    claimed optimum is the brute-force one."""
    for _ in range(15):
        n = int(rng.integers(5, 14))
        edges = odd_wheel_edges(rng, n, rng.uniform(0.2, 0.8))
        a = graph(n, edges)
        deg = np.diff(a.indptr)
        monkeypatch.setattr(ind, "PRESOLVE_MAX_WORK", int((deg * deg).sum()) - over)
        A, presolve = ind.milp_formulation(as_graph(a), deadline=np.inf)
        rows = [tuple(A.indices[A.indptr[k]:A.indptr[k + 1]]) for k in range(A.shape[0])]
        assert presolve == (not over)
        if presolve:
            assert sorted(tuple(sorted(r)) for r in rows) == sorted(edges)
        else:
            inside = {(min(u, v), max(u, v)) for r in rows for u in r for v in r if u != v}
            assert inside == set(edges)  # every row a clique, every edge in a row
        check_exact(n, edges, milp=True)


@pytest.mark.parametrize("over", [0, 1])
def test_the_clique_lp_at_clique_max_edges_is_solved_and_one_edge_more_is_not(monkeypatch, over):
    n, edges = disjoint((3, [(0, 1), (0, 2), (1, 2)]), (5, [(k, (k + 1) % 5) for k in range(5)]))
    monkeypatch.setattr(_cliques, "CLIQUE_MAX_EDGES", len(edges) - over)
    value = ind.clique_lp(graph(n, edges), time_limit=30)
    assert value is None if over else value == pytest.approx(1 + 2.5)


def test_the_clique_cover_covers_every_edge_with_maximal_cliques(rng):
    for _ in range(30):
        n = int(rng.integers(2, 25))
        edges = random_edges(rng, n, rng.uniform(0.1, 0.9))
        a = graph(n, edges)
        cliques = ind.clique_cover(a)
        covered = {(int(k[s]), int(k[t])) for k in cliques for s in range(len(k)) for t in range(s + 1, len(k))}
        assert covered >= set(edges) and covered <= set(edges)
        dense = a.toarray().astype(bool)
        for k in cliques:  # maximal: no vertex outside is adjacent to all of it
            assert not np.any(np.all(dense[:, k], axis=1) & ~np.isin(np.arange(n), k))


def test_greedy_is_the_minimum_degree_rule_and_stops_independent_at_its_deadline():
    """The greedy set equals a plain Python run of its rule (min remaining degree, ties to the
    smallest index); stopped at a deadline already past it is independent (not maximal)."""
    from lipschitz_construct._graph import as_graph
    from lipschitz_construct._greedy import greedy_on

    a = dense_random(120, 0.1, seed=4)
    adj = [set(a.indices[a.indptr[v]:a.indptr[v + 1]].tolist()) for v in range(120)]
    alive, keep = set(range(120)), set()
    while alive:
        v = min(alive, key=lambda z: (len(adj[z] & alive), z))
        keep.add(v)
        alive -= adj[v] | {v}
    assert set(np.flatnonzero(ind.greedy_independent(a)).tolist()) == keep
    big = dense_random(3000, 0.5, seed=5)  # the first vertex kept already visits more than a chunk
    part, finished = greedy_on(as_graph(big), deadline=0.0)
    assert not finished and part.sum() == 1 and ind.is_independent(big, part)
