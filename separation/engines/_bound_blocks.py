"""GEMM blocks searched under a lower bound: exact distances only where the bound cannot rule a pair out.

* l1 on bytes (:mod:`._l1_bound`): the bound is the exact l2 of the integer GEMM;
* l1 on bytes (:mod:`._pooled_l1`): the bound is the sum of absolute differences of the rows'
  byte codes (group sums), no GEMM;
* l2 on bytes (:mod:`._pooled_l2`): the bound is the float32 GEMM of the pooled coordinates,
  less a rigorous bound on its rounding (:mod:`._gemm_rounding`).

For a nearest-neighbour search a numba kernel folds the block straight into the running bests of
the search's rows (and columns, for train--train blocks); for a range search
(:mod:`.pooled_range`) :func:`pooled_range_block` keeps the block's pairs within a radius.
:func:`pooling` sets up the pooled search of one call.
"""
from __future__ import annotations

import numba
import numpy as np

from ..core.extras import require
from . import _int_l2, _l1_bound, _pooled_l1, _pooled_l2
from ._gemm_rounding import _tolerance, ieee_float32

torch = require("torch", "the exact l2 search on the CPU (integer GEMM)")


def l1_block_search(qx, dx, q8, d8, qn, dn, q_side, q_off, d_gidx, d_side=None, d_off=0, q_gidx=None):
    """One block of the l1 search (:mod:`._l1_bound`): exact l1 distances of the pairs the exact
    l2 cannot rule out, folded straight into the sides' running bests."""
    xy = _int_l2.int_dot(q8, d8).numpy()
    _fold_block(_l1_bound.l1_block, (qx, dx, xy, qn, dn), q_side, q_off, d_gidx, d_side, d_off, q_gidx)


def pooled_block(qx, dx, Qp, Dp, q_side, q_off, d_gidx, d_side=None, d_off=0, q_gidx=None):
    """One block of the pooled l2 search (:mod:`._pooled_l2`): ``Qp``/``Dp`` the
    pooled coordinates and their exact squared norms; exact distances only of the pairs the pooled
    bound (less the GEMM's rigorous rounding bound) cannot rule out. Returns how many."""
    args = (qx, dx, *_pooled_products(Qp, Dp))
    return _fold_block(_pooled_l2.l2_block, args, q_side, q_off, d_gidx, d_side, d_off, q_gidx)


def _pooled_products(Qp, Dp):
    """``(xy, qn, dn, tol)`` of :func:`._pooled_l2.l2_block` for two blocks' pooled coordinates
    and exact squared norms ``Qp``/``Dp``: the float32 GEMM and its rigorous rounding bound per row
    (float64, exact, where float32 arithmetic is not IEEE)."""
    (qp, qpn), (dp, dpn) = Qp, Dp
    if not ieee_float32():
        xy = (qp.to(torch.float64) @ dp.to(torch.float64).T).numpy()  # exact: small integers
        tol = np.zeros(len(qp))
    else:
        xy = (qp @ dp.T).numpy()
        tol = _tolerance(qpn, dpn, qp.shape[1]).numpy() if len(dp) else np.zeros(len(qp))
    return xy, qpn.numpy(), dpn.numpy(), tol


def pooled_range_block(Q, D, q_rows, d_rows, limit: int):
    """The pairs of rows ``q_rows`` ``(a, b)`` of ``Q`` and ``d_rows`` of ``D`` (:class:`.gemm._Rows`
    of a pooled search) whose exact distance -- l1, or squared l2, in byte units -- is ``<= limit``:
    ``((i, j, k)`` int64 within the block, sorted``, how many pairs were computed exactly)``; exact
    distances only where the bound allows."""
    (qa, qb), (da, db) = q_rows, d_rows
    qc, dc = Q.pool_block(qa, qb), D.pool_block(da, db)
    if Q.codes is not None:
        return _pooled_l1.within(Q.x[qa:qb], D.x[da:db], qc, dc, Q.codes.slack, limit)
    return _pooled_l2.within(Q.x[qa:qb], D.x[da:db], *_pooled_products(qc, dc), limit)


def pooled_l1_block(qx, dx, qc, dc, slack, q_side, q_off, d_gidx, d_side=None, d_off=0, q_gidx=None):
    """One block of the pooled l1 search (:mod:`._pooled_l1`): ``qc``/``dc`` the rows' byte codes
    and ``slack`` their bound's; exact l1 distances only of the pairs the bound cannot rule out.
    Returns how many."""
    return _fold_block(_pooled_l1.l1_block, (qx, dx, qc, dc, np.int64(slack)), q_side, q_off, d_gidx, d_side, d_off,
                       q_gidx)


def _fold_block(kernel, args, q_side, q_off, d_gidx, d_side, d_off, q_gidx):
    """Run a numba block ``kernel(*args, q_gidx, d_gidx, row_best, row_idx, col_best, col_idx)``
    (``args[0]``/``args[1]`` the block's rows and columns) on the sides' running bests, folding its
    per-thread column bests back; returns what the kernel returns."""
    nq, nd = len(args[0]), len(args[1])
    threads = numba.get_num_threads()
    if d_side is not None:
        cb = np.repeat(d_side.best[None, d_off:d_off + nd], threads, axis=0)
        ci = np.repeat(d_side.idx[None, d_off:d_off + nd], threads, axis=0)
    else:  # rows only, one chunk of them per thread
        cb, ci = np.empty((threads, 0)), np.empty((threads, 0), dtype=np.int64)
    q_g = np.ascontiguousarray(q_gidx if q_gidx is not None else np.zeros(nq), dtype=np.int64)
    out = kernel(*args, q_g, np.ascontiguousarray(d_gidx, dtype=np.int64), q_side.best[q_off:q_off + nq],
                 q_side.idx[q_off:q_off + nq], cb, ci)
    if d_side is not None:
        _l1_bound.fold_columns(cb, ci, d_side.best[d_off:d_off + nd], d_side.idx[d_off:d_off + nd])
    return out


def pooling(pooled, integer, norm, x):
    """``{"groups", "codes", "prune"}`` for :class:`.gemm._Rows` where a pooled search runs
    (``pooled`` asked for, on the integer path): for l2 the feature groups of :mod:`._pooled_l2`
    (and ``"bound_groups"``: how many of them the bound uses),
    for l1 the :class:`~._pooled_l1.Codes` of :mod:`._pooled_l1`, learned from ``x``, and a
    :class:`~._pooled_l2.Pruning` that counts its pairs; else all None."""
    none = {"groups": None, "bound_groups": None, "codes": None, "prune": None}
    if not (pooled and integer):
        return none
    if norm == "l1":
        return {**none, "codes": _pooled_l1.Codes(x), "prune": _pooled_l2.Pruning()}
    groups = _pooled_l2.feature_groups(x)
    return {**none, "groups": groups, "bound_groups": _pooled_l2.bound_groups(x, groups), "prune": _pooled_l2.Pruning()}


def add_counts(counts, setup):
    """Add a search's pooled-bound counts (pairs searched, computed exactly) to ``counts``."""
    prune = setup["prune"]
    if counts is not None and prune is not None:
        counts["pairs"] += prune.pairs
        counts["exact"] += prune.exact


__all__ = ["add_counts", "l1_block_search", "pooled_block", "pooled_l1_block", "pooled_range_block", "pooling"]
