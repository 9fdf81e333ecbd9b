"""Exact l-inf range search on bytes, narrowed first by the probe search.

A cross-class pair within the radius gives each of its two points another-class point within the
radius. So the probe-pruned nearest-neighbour search (:class:`~.probe.ProbeSearch`), asked only
for points strictly closer than the radius's byte limit plus one (its ``bound``: it prunes from
the start), finds the points that can be in a pair at all -- on images, at the radii of the
robustness bounds, a small share of them -- and the range kernel (:func:`~.conflicts.cpu_pairs`)
compares only those. The pairs are the same as a search of every point's; the indices map back in
increasing order, so the pairs stay sorted by ``(i, j)``.
"""
from __future__ import annotations

import numpy as np

from .conflicts import Layout, byte_limit, cpu_pairs


def within_reach(search, x: np.ndarray, y: np.ndarray, limit: int) -> np.ndarray:
    """The sorted indices of the rows of ``x`` (labels ``y``) with another-class point of the
    probe ``search``'s index (:meth:`~.cpu.CPUEngine.prepare`) within ``limit`` (bytes)."""
    dist, _ = search(x, y, bound=np.full(len(x), limit + 1.0))
    return np.flatnonzero(dist <= limit)


def probe_pairs(engine, xq, yq, xd, yd, *, same_set: bool, radius, max_pairs=None, progress=None):
    """Every cross-class pair ``(i, j, d)`` of byte rows ``xq`` / ``xd`` with exact l-inf distance
    ``d <= radius`` (pixel units), as :func:`~.conflicts.cpu_pairs`, comparing only the points the
    probe indexes of ``engine`` (a :class:`~.cpu.CPUEngine`) find within reach of the other side."""
    limit = byte_limit(radius, "linf", xd.shape[1])
    near_q = within_reach(engine.probe_index(xd, yd), xq, yq, limit)
    near_d = near_q if same_set else within_reach(engine.probe_index(xq, yq), xd, yd, limit)
    sub = (xq[near_q], yq[near_q], xd[near_d], yd[near_d])
    if progress is not None:  # the pairs of the points out of reach: done
        progress(Layout(yq, yd, same_set).work() - Layout(sub[1], sub[3], same_set).work())
    if len(near_q) == 0 or len(near_d) == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float64)
    i, j, d = cpu_pairs(*sub, same_set=same_set, norm="linf", radius=radius, max_pairs=max_pairs, progress=progress)
    return near_q[i], near_d[j], d


__all__ = ["probe_pairs", "within_reach"]
