"""The minimum-degree greedy independent set, in numba, interruptible at a deadline.

Repeatedly keep the vertex of least remaining degree (ties: the smallest index), then drop it and
its neighbours. The remaining vertices sit in an indexed binary heap keyed by ``(degree, index)``
(O(n) memory; a decrement moves the vertex up), so a run takes O((n + m) log n) time. The set kept
so far is independent at every moment: a run stopped at its deadline still gives a witness, only
not a maximal one.
"""
from __future__ import annotations

import time

import numba as nb
import numpy as np

from ._graph import Graph, as_graph

#: Edge visits per kernel call between two looks at the clock (about a millisecond).
WORK_CHUNK = 1 << 20


@nb.njit(cache=True, nogil=True, inline="always")
def _less(deg, a, b):
    return deg[a] < deg[b] or (deg[a] == deg[b] and a < b)


@nb.njit(cache=True, nogil=True)
def _sift_up(heap, pos, deg, i):
    v = heap[i]
    while i > 0:
        parent = (i - 1) >> 1
        p = heap[parent]
        if not _less(deg, v, p):
            break
        heap[i] = p
        pos[p] = i
        i = parent
    heap[i] = v
    pos[v] = i


@nb.njit(cache=True, nogil=True)
def _sift_down(heap, pos, deg, i, size):
    v = heap[i]
    while True:
        c = 2 * i + 1
        if c >= size:
            break
        if c + 1 < size and _less(deg, heap[c + 1], heap[c]):
            c += 1
        if not _less(deg, heap[c], v):
            break
        heap[i] = heap[c]
        pos[heap[i]] = i
        i = c
    heap[i] = v
    pos[v] = i


@nb.njit(cache=True, nogil=True)
def _remove(heap, pos, deg, i, size):
    """Remove the entry at heap position ``i``; the new size."""
    size -= 1
    pos[heap[i]] = -1
    if i < size:
        last = heap[size]
        heap[i] = last
        pos[last] = i
        _sift_down(heap, pos, deg, i, size)
        _sift_up(heap, pos, deg, pos[last])
    return size


@nb.njit(cache=True, nogil=True)
def _init(indptr, indices, alive, deg, heap, pos):
    """Degrees within the alive vertices, and the heap of the alive vertices; its size."""
    size = 0
    for v in range(len(indptr) - 1):
        if alive[v]:
            c = 0
            for p in range(indptr[v], indptr[v + 1]):
                if alive[indices[p]]:
                    c += 1
            deg[v] = c
            heap[size] = v
            pos[v] = size
            size += 1
    for i in range(size // 2 - 1, -1, -1):
        _sift_down(heap, pos, deg, i, size)
    return size


@nb.njit(cache=True, nogil=True)
def _run(indptr, indices, alive, deg, heap, pos, state, keep, max_work):
    """Greedy steps until the heap is empty or ``max_work`` edges were visited; True when done."""
    size = state[0]
    work = 0
    while size > 0 and work < max_work:
        v = heap[0]
        size = _remove(heap, pos, deg, 0, size)
        keep[v] = True
        alive[v] = False
        work += 1 + indptr[v + 1] - indptr[v]
        for p in range(indptr[v], indptr[v + 1]):
            w = indices[p]
            if alive[w]:
                alive[w] = False
                size = _remove(heap, pos, deg, pos[w], size)
                work += indptr[w + 1] - indptr[w]
                for q in range(indptr[w], indptr[w + 1]):
                    x = indices[q]
                    if alive[x]:
                        deg[x] -= 1
                        _sift_up(heap, pos, deg, pos[x])
    state[0] = size
    return size == 0


def greedy_on(g: Graph, active: np.ndarray | None = None, *, deadline: float | None = None):
    """``(keep (n,) bool, finished)``: the greedy set of the subgraph induced by ``active`` (all
    vertices when None), run until ``deadline`` (``time.perf_counter()`` seconds; None: to the end).
    Unfinished, ``keep`` is independent but not maximal."""
    n = g.n
    alive = np.ones(n, bool) if active is None else np.array(active, bool)
    deg = np.zeros(n, np.int64)
    heap = np.empty(n, np.int64)
    pos = np.full(n, -1, np.int64)
    keep = np.zeros(n, bool)
    state = np.array([_init(g.indptr, g.indices, alive, deg, heap, pos)], np.int64)
    while not _run(g.indptr, g.indices, alive, deg, heap, pos, state, keep, WORK_CHUNK):
        if deadline is not None and time.perf_counter() >= deadline:
            return keep, False
    return keep, True


def greedy_independent(a, *, deadline: float | None = None) -> np.ndarray:
    """A maximal independent set (``(n,)`` bool) of the graph ``a`` (:class:`Graph` or symmetric
    scipy CSR) by minimum remaining degree, ties to the smallest index (see :func:`greedy_on`)."""
    return greedy_on(as_graph(a), deadline=deadline)[0]


__all__ = ["WORK_CHUNK", "greedy_independent", "greedy_on"]
