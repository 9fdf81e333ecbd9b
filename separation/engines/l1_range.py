"""Exact l1 range search across classes on bytes, pruned by the pooled bound of :mod:`._pooled_l1`.

What the CPU engine runs for l1 on bytes (``CPUEngine(l1="pooled")``, the default): the points are
sorted by class once (:class:`~.conflicts.Layout`), their byte codes and padded rows computed once
(:class:`~._pooled_l1.Codes`), and every block of ``rows`` queries against ``rows`` other-class
points keeps the pairs whose exact l1 distance is within the radius -- computed only where the
bound of the codes allows it. The radius is turned into an integer limit in byte units in exact
arithmetic (:func:`~.conflicts.byte_limit`), so no float rounding decides a tie.
"""
from __future__ import annotations

import numpy as np

from . import _pooled_l1
from .conflicts import Layout, PairSink, byte_limit, reported

#: rows of a block (queries and points alike): their codes and rows stay in cache
ROWS = 2048


def pooled_l1_pairs(xq, yq, xd, yd, *, same_set: bool, radius, max_pairs=None, progress=None, block_rows=None):
    """Every cross-class pair ``(i, j, d)`` of byte rows ``xq`` (nq, d) / ``xd`` (nd, d) with exact
    l1 distance ``d <= radius`` (pixel units); ``same_set``: ``xq`` is ``xd`` (each pair once, as
    :func:`~.conflicts.cpu_pairs`); ``block_rows``: rows per block (speed only)."""
    lay = Layout(yq, yd, same_set)
    sink = PairSink(max_pairs, radius, lay)
    limit = byte_limit(radius, "l1", xd.shape[1])
    if limit < 0:
        return sink.arrays()
    codes = _pooled_l1.Codes(xd)
    D = np.ascontiguousarray(xd[lay.d_order])
    d_rows, d_codes = codes.rows(D), codes.codes(D)
    if same_set:
        q_rows, q_codes = d_rows, d_codes
    else:
        Q = np.ascontiguousarray(xq[lay.q_order])
        q_rows, q_codes = codes.rows(Q), codes.codes(Q)
    for qa, qb, d_blocks, work in lay.blocks(block_rows or ROWS):
        for da, db in d_blocks:
            ii, jj, kk = _pooled_l1.within(q_rows[qa:qb], d_rows[da:db], q_codes[qa:qb], d_codes[da:db], codes.slack,
                                           limit)
            sink.add(ii + qa, jj + da, reported(kk, "l1"))
        if progress is not None:
            progress(work)
    return sink.arrays()


__all__ = ["ROWS", "pooled_l1_pairs"]
