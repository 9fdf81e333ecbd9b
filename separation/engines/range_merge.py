"""The client side of a cluster range search: the pairs of its ``range`` block tasks, merged.

Each task (:func:`~separation.engines.block_tasks.compute_range`) sends ``[i, j, d]`` sorted by
``(i, j)``, global indices as int32 (below 2**31 rows) and float64 distances: 16 bytes per pair.
:class:`RangeMerge` keeps those arrays as they come (no Python object per pair), stops past
``max_pairs``, and assembles them query block by query block into the result, so the peak is the
parts (16 bytes per pair) plus the result (24 bytes per pair).
"""
from __future__ import annotations

import numpy as np

from .block_pairs import block_pairs_count
from .conflicts import too_many_pairs


class RangeMerge:
    """Pairs of ``range`` tasks as they arrive; :meth:`arrays` -> ``(i int64, j int64, d float64)``
    sorted by ``(i, j)``. ``max_pairs``: more pairs in all raise a LimitError (``radius`` is for
    its message). ``progress`` (with the labels ``y_query``, ``y_db``) gets the number of
    differently-labelled pairs each task compared."""

    def __init__(self, max_pairs: int | None, radius: float, y_query=None, y_db=None, progress=None):
        self.max_pairs, self.radius = max_pairs, radius
        self.yq, self.yd, self.progress = y_query, y_db, progress
        self.parts: dict[tuple[int, int], list] = {}
        self.n = 0
        self.nbytes = 0

    def add(self, task, vectors) -> None:
        """The ``[i, j, d]`` of one task (its query rows ``task.q_range``, database ``task.d_range``);
        None: the task alone found more than ``max_pairs``."""
        if vectors is None:
            raise too_many_pairs(self.max_pairs, self.radius)
        i, j, d = vectors
        self.n += len(i)
        if self.max_pairs is not None and self.n > self.max_pairs:
            raise too_many_pairs(self.max_pairs, self.radius)
        self.nbytes += i.nbytes + j.nbytes + d.nbytes
        if len(i):
            self.parts.setdefault(tuple(task.q_range), []).append((task.d_range[0], i, j, d))
        if self.progress is not None:
            n = block_pairs_count(task, self.yq, self.yd)
            self.progress(n // 2 if task.diagonal else n)  # within one block: each pair once

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """All pairs sorted by ``(i, j)`` (the parts are released as they are copied)."""
        out_i, out_j, out_d = np.empty(self.n, np.int64), np.empty(self.n, np.int64), np.empty(self.n)
        pos = 0
        for key in sorted(self.parts):
            # one query block: its tasks in database order, each sorted by (i, j) within disjoint
            # database rows, so a stable sort on i gives the (i, j) order
            chunk = sorted(self.parts.pop(key), key=lambda part: part[0])
            i, j, d = (np.concatenate([part[k] for part in chunk]) for k in (1, 2, 3))
            del chunk
            order = np.argsort(i, kind="stable")
            end = pos + len(i)
            out_i[pos:end], out_j[pos:end], out_d[pos:end] = i[order], j[order], d[order]
            pos = end
        return out_i, out_j, out_d


__all__ = ["RangeMerge"]
