"""Exact l1 and l2 range search across classes on bytes, pruned by the pooled bounds.

What the CPU engine runs for l1 and l2 on bytes (``CPUEngine(l1="pooled")`` / ``l2="pooled"``,
the defaults): the points are sorted by class once (:class:`~.conflicts.Layout`), their bound's
data -- l1: byte codes of group sums (:mod:`._pooled_l1`); l2: pooled coordinates and their norms
(:mod:`._pooled_l2`) -- and their padded rows are computed once (:class:`~.gemm._Rows`), and
every block of ``rows`` queries against ``rows`` other-class points keeps the pairs whose exact
distance is within the radius, computed only where the bound allows it (l2: a float32 GEMM of the
pooled coordinates, less a rigorous bound on its rounding). The radius is turned into an integer
limit in byte units (l2: on the squared distance) in exact arithmetic
(:func:`~.conflicts.byte_limit`), so no float rounding decides a tie.
"""
from __future__ import annotations

import numpy as np

from ._bound_blocks import pooled_range_block, pooling
from .conflicts import Layout, PairSink, byte_limit, reported
from .gemm import _Rows, torch

#: rows of a block (queries and points alike): their bound's data and rows stay in cache
ROWS = 2048


def pooled_pairs(xq, yq, xd, yd, *, norm: str, same_set: bool, radius, max_pairs=None, progress=None,
                 block_rows=None, counts=None):
    """Every cross-class pair ``(i, j, d)`` of byte rows ``xq`` (nq, d) / ``xd`` (nd, d) with exact
    ``norm`` ("l1" or "l2") distance ``d <= radius`` (pixel units); ``same_set``: ``xq`` is ``xd``
    (each pair once, as :func:`~.conflicts.cpu_pairs`); ``block_rows``: rows per block (speed only);
    ``counts``: a dict the pairs searched (``"pairs"``) and those computed exactly (``"exact"``) are
    added to."""
    lay = Layout(yq, yd, same_set)
    sink = PairSink(max_pairs, radius, lay)
    limit = byte_limit(radius, norm, xd.shape[1])
    if limit < 0:
        return sink.arrays()
    D = np.ascontiguousarray(xd[lay.d_order])
    setup = pooling(True, True, norm, D)
    cpu = torch.device("cpu")
    d_rows = _Rows(D, cpu, True, **setup)
    q_rows = d_rows if same_set else _Rows(np.ascontiguousarray(xq[lay.q_order]), cpu, True, **setup)
    for qa, qb, d_blocks, work in lay.blocks(block_rows or ROWS):
        for da, db in d_blocks:
            (ii, jj, kk), exact = pooled_range_block(q_rows, d_rows, (qa, qb), (da, db), limit)
            sink.add(ii + qa, jj + da, reported(kk, norm))
            if counts is not None:
                counts["pairs"] += (qb - qa) * (db - da)
                counts["exact"] += exact
        if progress is not None:
            progress(work)
    return sink.arrays()


__all__ = ["ROWS", "pooled_pairs"]
