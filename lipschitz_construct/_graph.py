"""Compact conflict graphs and the linear-time numba kernels the bounds run on them.

A :class:`Graph` is an undirected simple graph in CSR form: ``indptr`` int64 ``(n + 1,)``,
``indices`` int32 ``(2 m,)`` (int64 from 2**31 vertices), row ``v`` listing v's neighbours in
increasing order: 8 bytes per edge. Every array larger than O(n) is allocated in numpy, outside the
kernels (so ``tracemalloc`` counts it); the kernels themselves allocate O(n) at most.

scipy's csgraph functions convert their input to a float64 CSR (24 bytes per stored entry, twice
per edge); nothing here calls them. Only scipy's Hopcroft--Karp matching is used (on a CSR of this
graph's own arrays, see :meth:`Graph.csr`), for it reads the int32 indices as they are.
"""
from __future__ import annotations

import numba as nb
import numpy as np
import scipy.sparse as sp


class Graph:
    """An undirected simple graph (see the module docstring): ``indptr``, ``indices``, ``n``, ``m``."""

    __slots__ = ("indptr", "indices")

    def __init__(self, indptr: np.ndarray, indices: np.ndarray):
        self.indptr, self.indices = indptr, indices

    @property
    def n(self) -> int:
        return len(self.indptr) - 1

    @property
    def m(self) -> int:
        return len(self.indices) // 2

    def degrees(self) -> np.ndarray:
        """``(n,)`` int64: the degree of every vertex."""
        return np.diff(self.indptr)

    def csr(self) -> sp.csr_matrix:
        """The 0/1 adjacency matrix on these index arrays (int8 data: 2 bytes per edge more)."""
        a = sp.csr_matrix((np.ones(len(self.indices), np.int8), self.indices, self.indptr), shape=(self.n, self.n))
        a.has_sorted_indices = True
        return a


def _index_dtype(n: int):
    return np.int32 if n < 2**31 else np.int64


@nb.njit(cache=True, nogil=True)
def _count(u, v, level, k, counts):
    for p in range(len(u)):
        if level[p] <= k and u[p] != v[p]:
            counts[u[p] + 1] += 1
            counts[v[p] + 1] += 1


@nb.njit(cache=True, nogil=True)
def _fill(u, v, level, k, indptr, indices):
    """Lower neighbours first, then upper ones: rows come out sorted when the pairs are sorted."""
    cursor = indptr[:-1].copy()
    for side in range(2):
        for p in range(len(u)):
            if level[p] <= k and u[p] != v[p]:
                a, b = min(u[p], v[p]), max(u[p], v[p])
                row, col = (b, a) if side == 0 else (a, b)
                indices[cursor[row]] = col
                cursor[row] += 1


@nb.njit(cache=True, nogil=True)
def _canonical(indptr, indices):
    """Sort every row and drop repeated neighbours, in place; the new ``indptr``."""
    n = len(indptr) - 1
    out = np.zeros(n + 1, np.int64)
    w = 0
    for r in range(n):
        a, b = indptr[r], indptr[r + 1]
        ordered = True
        for p in range(a + 1, b):
            if indices[p] <= indices[p - 1]:
                ordered = False
                break
        if not ordered:
            indices[a:b] = np.sort(indices[a:b])
        for p in range(a, b):
            if p == a or indices[p] != indices[p - 1]:
                indices[w] = indices[p]
                w += 1
        out[r + 1] = w
    return out


def from_pairs(n: int, u: np.ndarray, v: np.ndarray, level: np.ndarray | None = None, k: int = 0) -> Graph:
    """The graph on ``n`` vertices of the edges ``(u[p], v[p])`` with ``level[p] <= k`` (every edge
    when ``level`` is None). Pairs sorted by ``(u, v)`` with ``u < v`` (a range search's order) give
    sorted rows at once; any other order is sorted, repeated edges and loops dropped. Memory: the
    result (8 bytes per edge) and ``n`` counts."""
    if level is None:
        level = np.zeros(len(u), np.uint8)
    counts = np.zeros(n + 1, np.int64)
    _count(u, v, level, k, counts)
    np.cumsum(counts, out=counts)
    indices = np.empty(int(counts[-1]), _index_dtype(n))
    _fill(u, v, level, k, counts, indices)
    indptr = _canonical(counts, indices)
    if indptr[-1] < len(indices):
        indices = indices[:indptr[-1]].copy()
    return Graph(indptr, indices)


def as_graph(a) -> Graph:
    """A :class:`Graph` of a :class:`Graph` or of a symmetric scipy sparse adjacency matrix (its pattern)."""
    if isinstance(a, Graph):
        return a
    a = sp.csr_matrix(a)
    indices = a.indices.astype(_index_dtype(a.shape[0]), copy=True)
    indptr = _canonical(a.indptr.astype(np.int64), indices)
    return Graph(indptr, indices[:indptr[-1]])


@nb.njit(cache=True, nogil=True)
def _bfs(indptr, indices, labels, parity, bipartite, queue):
    """Components (labelled in order of their smallest vertex), BFS-depth parity from that vertex
    (the root is odd), and whether each component is bipartite; the number of components."""
    n = len(indptr) - 1
    nc = 0
    for s in range(n):
        if labels[s] >= 0:
            continue
        labels[s] = nc
        parity[s] = True
        bipartite[nc] = True
        head, tail = 0, 1
        queue[0] = s
        while head < tail:
            x = queue[head]
            head += 1
            for p in range(indptr[x], indptr[x + 1]):
                w = indices[p]
                if labels[w] < 0:
                    labels[w] = nc
                    parity[w] = not parity[x]
                    queue[tail] = w
                    tail += 1
                elif parity[w] == parity[x]:
                    bipartite[nc] = False
        nc += 1
    return nc


def components(g: Graph):
    """``(n_comp, labels (n,) int32, parity (n,) bool, bipartite (n_comp,) bool)``: connected
    components (isolated vertices included), the BFS-depth parity of every vertex from its
    component's smallest vertex (odd there), and whether the component is bipartite (no edge joins
    equal parities: then the parities are its two sides)."""
    n = g.n
    labels = np.full(n, -1, np.int32)
    parity = np.zeros(n, bool)
    bipartite = np.zeros(n, bool)
    nc = _bfs(g.indptr, g.indices, labels, parity, bipartite, np.empty(n, np.int32))
    return nc, labels, parity, bipartite[:nc].copy()


@nb.njit(cache=True, nogil=True)
def _sub_count(indptr, indices, rows, colpos, counts):
    for r in range(len(rows)):
        x = rows[r]
        c = 0
        for p in range(indptr[x], indptr[x + 1]):
            if colpos[indices[p]] >= 0:
                c += 1
        counts[r + 1] = c


@nb.njit(cache=True, nogil=True)
def _sub_fill(indptr, indices, rows, colpos, out_ptr, out_idx):
    for r in range(len(rows)):
        x = rows[r]
        w = out_ptr[r]
        for p in range(indptr[x], indptr[x + 1]):
            c = colpos[indices[p]]
            if c >= 0:
                out_idx[w] = c
                w += 1


def submatrix(g: Graph, rows: np.ndarray, cols: np.ndarray):
    """``(indptr, indices)`` of the rows ``rows`` and columns ``cols`` (both sorted) of the
    adjacency matrix, the columns renumbered ``0..len(cols) - 1`` (rows stay sorted)."""
    colpos = np.full(g.n, -1, g.indices.dtype)
    colpos[cols] = np.arange(len(cols), dtype=g.indices.dtype)
    counts = np.zeros(len(rows) + 1, np.int64)
    _sub_count(g.indptr, g.indices, rows, colpos, counts)
    np.cumsum(counts, out=counts)
    out = np.empty(int(counts[-1]), g.indices.dtype)
    _sub_fill(g.indptr, g.indices, rows, colpos, counts, out)
    return counts, out


def induced(g: Graph, nodes: np.ndarray) -> Graph:
    """The subgraph on the sorted vertices ``nodes``, renumbered ``0..len(nodes) - 1``."""
    return Graph(*submatrix(g, nodes, nodes))


@nb.njit(cache=True, nogil=True)
def _reach(indptr, indices, match_l, match_r, zl, zr, queue):
    """Left / right vertices reachable from an unmatched left vertex by alternating paths."""
    tail = 0
    for x in range(len(match_l)):
        if match_l[x] < 0:
            zl[x] = True
            queue[tail] = x
            tail += 1
    head = 0
    while head < tail:
        x = queue[head]
        head += 1
        for p in range(indptr[x], indptr[x + 1]):
            w = indices[p]
            if not zr[w]:
                zr[w] = True
                y = match_r[w]
                if y >= 0 and not zl[y]:
                    zl[y] = True
                    queue[tail] = y
                    tail += 1


def konig_sets(indptr: np.ndarray, indices: np.ndarray, n_right: int):
    """``(matching size, zl, zr)`` of the bipartite graph with biadjacency CSR ``(indptr, indices)``
    (rows: left, columns: right): a maximum matching (scipy's Hopcroft--Karp) and König's sets, the
    left / right vertices reachable from an unmatched left vertex by alternating paths."""
    from scipy.sparse.csgraph import maximum_bipartite_matching

    n_left = len(indptr) - 1
    b = sp.csr_matrix((np.ones(len(indices), np.int8), indices, indptr), shape=(n_left, n_right))
    match_l = maximum_bipartite_matching(b, perm_type="column")  # row -> its column, or -1
    del b
    match_r = np.full(n_right, -1, np.int64)
    ok = match_l >= 0
    match_r[match_l[ok]] = np.flatnonzero(ok)
    zl, zr = np.zeros(n_left, bool), np.zeros(n_right, bool)
    _reach(indptr, indices, match_l.astype(np.int64), match_r, zl, zr, np.empty(n_left, np.int64))
    return int(ok.sum()), zl, zr


@nb.njit(cache=True, nogil=True)
def _independent(indptr, indices, keep):
    for x in range(len(indptr) - 1):
        if keep[x]:
            for p in range(indptr[x], indptr[x + 1]):
                if keep[indices[p]]:
                    return False
    return True


def is_independent(g: Graph, keep: np.ndarray) -> bool:
    """Whether no edge joins two vertices of the mask ``keep`` ``(n,)``."""
    return bool(_independent(g.indptr, g.indices, np.asarray(keep, bool)))


__all__ = ["Graph", "as_graph", "components", "from_pairs", "induced", "is_independent", "konig_sets", "submatrix"]
