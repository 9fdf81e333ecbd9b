"""The l-inf clique LP bound: a greedy clique cover of the conflict graph (numba, stopped at a
deadline) and the LP ``max sum q, sum_K q <= 1`` over its cliques (HiGHS, under the time left).

The cover visits the edges ``(u, v)``, ``u < v``, in row order; an edge no clique covers yet starts
the clique ``{u, v}``, grown by the common neighbour of largest degree (ties: the smallest index)
while one is left. Memory: one flag per stored entry (2 bytes per edge) and the cliques (int32).
"""
from __future__ import annotations

import time

import numba as nb
import numpy as np
import scipy.sparse as sp

from ._graph import Graph, as_graph

#: The clique LP is skipped (None) above this many edges.
CLIQUE_MAX_EDGES = 2_000_000
#: Edge visits per cover kernel call between two looks at the clock.
COVER_CHUNK = 1 << 18


@nb.njit(cache=True, nogil=True)
def _find(indices, a, b, y):
    lo, hi = a, b
    while lo < hi:
        mid = (lo + hi) >> 1
        if indices[mid] < y:
            lo = mid + 1
        else:
            hi = mid
    return lo


@nb.njit(cache=True, nogil=True)
def _intersect(indices, a0, a1, b, nb_, out):
    """``indices[a0:a1] & b[:nb_]`` (both sorted) into ``out``; its length. A short ``b`` is
    looked up by bisection in the long row, a long one merged with it."""
    k = 0
    if 8 * nb_ < a1 - a0:
        lo = a0
        for j in range(nb_):
            lo = _find(indices, lo, a1, b[j])
            if lo < a1 and indices[lo] == b[j]:
                out[k] = b[j]
                k += 1
        return k
    i, j = a0, 0
    while i < a1 and j < nb_:
        x, y = indices[i], b[j]
        if x == y:
            out[k] = x
            k += 1
            i += 1
            j += 1
        elif x < y:
            i += 1
        else:
            j += 1
    return k


@nb.njit(cache=True, nogil=True)
def _cover(indptr, indices, covered, state, max_work, out, starts, buf_a, buf_b):
    """Cliques from CSR position ``state[0]`` (its row ``state[1]``) on; ``state[2]`` / ``state[3]``:
    entries of ``out`` / cliques written. Returns when done, after ``max_work`` edge visits, or
    when ``out`` / ``starts`` may be too short for the next clique (``len(buf_a) + 1`` entries)."""
    p, row, used, nk = state[0], state[1], state[2], state[3]
    end = len(indices)
    work = 0
    while p < end:
        while p >= indptr[row + 1]:
            row += 1
        u, v = row, indices[p]
        if v <= u or covered[p]:
            p += 1
            continue
        if work >= max_work or used + len(buf_a) + 1 > len(out) or nk + 2 > len(starts):
            break
        s0 = used
        out[used] = u
        out[used + 1] = v
        used += 2
        for t in range(indptr[v], indptr[v + 1]):
            buf_b[t - indptr[v]] = indices[t]
        cur = _intersect(indices, indptr[u], indptr[u + 1], buf_b, indptr[v + 1] - indptr[v], buf_a)
        work += indptr[u + 1] - indptr[u] + indptr[v + 1] - indptr[v]
        while cur > 0:
            best = buf_a[0]
            for t in range(1, cur):
                z = buf_a[t]
                dz, db = indptr[z + 1] - indptr[z], indptr[best + 1] - indptr[best]
                if dz > db or (dz == db and z < best):
                    best = z
            out[used] = best
            used += 1
            cur = _intersect(indices, indptr[best], indptr[best + 1], buf_a, cur, buf_b)
            buf_a[:cur] = buf_b[:cur]
            work += cur + indptr[best + 1] - indptr[best]
        out[s0:used] = np.sort(out[s0:used])
        for x in range(s0, used):
            a = out[x]
            for y in range(x + 1, used):
                covered[_find(indices, indptr[a], indptr[a + 1], out[y])] = True
        work += (used - s0) * (used - s0)
        nk += 1
        starts[nk] = used
        p += 1
    state[0], state[1], state[2], state[3] = p, row, used, nk
    return p >= end


def cover(g: Graph, *, deadline: float | None = None):
    """``(members, starts)`` of the greedy clique cover (clique ``k`` is
    ``members[starts[k]:starts[k + 1]]``, sorted), or None when ``deadline`` came first."""
    deg = g.degrees()
    width = int(deg.max()) + 1 if g.n else 1
    covered = np.zeros(len(g.indices), bool)
    out = np.empty(max(2 * width, min(len(g.indices), 1 << 20)), g.indices.dtype)
    starts = np.zeros(1 + max(2, min(g.m, 1 << 18)), np.int64)
    buf_a, buf_b = np.empty(width, g.indices.dtype), np.empty(width, g.indices.dtype)
    state = np.zeros(4, np.int64)
    while not _cover(g.indptr, g.indices, covered, state, COVER_CHUNK, out, starts, buf_a, buf_b):
        if deadline is not None and time.perf_counter() >= deadline:
            return None
        if state[2] + width + 1 > len(out):
            out = np.concatenate([out, np.empty(len(out), out.dtype)])
        if state[3] + 2 > len(starts):
            starts = np.concatenate([starts, np.zeros(len(starts), np.int64)])
    return out[:state[2]].copy(), starts[:state[3] + 1].copy()


def clique_cover(a) -> list[np.ndarray]:
    """Maximal cliques (greedily grown, each of size >= 2) that together cover every edge of ``a``."""
    members, starts = cover(as_graph(a))
    return [members[starts[k]:starts[k + 1]].astype(np.int64) for k in range(len(starts) - 1)]


def clique_bound(a, *, deadline: float) -> float | None:
    """``max sum q`` subject to ``sum_K q <= 1`` for the cliques ``K`` of the cover and
    ``0 <= q <= 1`` (HiGHS); None when the cover or the LP does not finish by ``deadline``
    (``time.perf_counter()`` seconds), or the graph has more than :data:`CLIQUE_MAX_EDGES` edges."""
    from scipy.optimize import linprog

    g = as_graph(a)
    if g.m > CLIQUE_MAX_EDGES:
        return None
    if g.m == 0:
        return float(g.n)
    found = cover(g, deadline=deadline)
    left = deadline - time.perf_counter()
    if found is None or left <= 0:
        return None
    members, starts = found
    A = sp.csr_matrix((np.ones(len(members)), members, starts), shape=(len(starts) - 1, g.n))
    res = linprog(-np.ones(g.n), A_ub=A, b_ub=np.ones(A.shape[0]), bounds=(0, 1), method="highs",
                  options={"time_limit": float(left)})
    return float(-res.fun) if res.status == 0 else None


def clique_lp(a, *, time_limit: float = 60.0) -> float | None:
    """:func:`clique_bound` with ``time_limit`` seconds from now (None at once when it is not positive)."""
    return clique_bound(a, deadline=time.perf_counter() + time_limit)


__all__ = ["CLIQUE_MAX_EDGES", "COVER_CHUNK", "clique_bound", "clique_cover", "clique_lp", "cover"]
