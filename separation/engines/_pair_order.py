"""numba kernels that put the pairs of a range search in ``(i, j)`` order without a global sort.

A global ``lexsort`` of ``m`` pairs needs an int64 permutation and a gathered copy of every array
(about 50 bytes per pair beside the pairs). Here the pairs are placed by a counting sort on ``i``
(:func:`scatter_rows`: each pair goes to the next free slot of its row, the slots of row ``r`` being
``starts[r]:starts[r + 1]``), then each row's ``j`` are sorted in place with their distances
(:func:`sort_rows`; a row is a query's neighbours, short). No array beyond the outputs is allocated.
"""
from __future__ import annotations

import numba as nb
import numpy as np


@nb.njit(cache=True, nogil=True)
def scatter_rows(i, j, d, cursor, out_i, out_j, out_d):
    """Pair ``p`` to slot ``cursor[i[p]]`` (which then moves on by one) of the outputs."""
    for p in range(len(i)):
        r = i[p]
        q = cursor[r]
        cursor[r] = q + 1
        out_i[q] = r
        out_j[q] = j[p]
        out_d[q] = d[p]


@nb.njit(cache=True, nogil=True)
def sort_rows(starts, out_j, out_d):
    """Sort ``out_j[starts[r]:starts[r + 1]]`` (with ``out_d``) for every row ``r``; rows already in
    order are only checked."""
    for r in range(len(starts) - 1):
        a, b = starts[r], starts[r + 1]
        ordered = True
        for p in range(a + 1, b):
            if out_j[p] < out_j[p - 1]:
                ordered = False
                break
        if ordered:
            continue
        if b - a <= 32:  # insertion sort
            for p in range(a + 1, b):
                jj, dd = out_j[p], out_d[p]
                q = p - 1
                while q >= a and out_j[q] > jj:
                    out_j[q + 1] = out_j[q]
                    out_d[q + 1] = out_d[q]
                    q -= 1
                out_j[q + 1] = jj
                out_d[q + 1] = dd
        else:
            order = np.argsort(out_j[a:b], kind="mergesort")
            js = out_j[a:b][order]
            ds = out_d[a:b][order]
            out_j[a:b] = js
            out_d[a:b] = ds


__all__ = ["scatter_rows", "sort_rows"]
