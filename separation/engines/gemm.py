"""Exact l2 nearest neighbours from a float32 GEMM plus an exact recheck of the candidates.

``|x - y|^2 = |x|^2 + |y|^2 - 2 x.y`` is computed in float32 (fast BLAS / cuBLAS), then every pair
whose float32 value is within a *rigorous* rounding bound of the best exact distance seen so far
is recomputed exactly (int64 for uint8 data, float64 otherwise). The true nearest neighbour is
always among those candidates, so the result equals a float64 brute force; ties go to the smaller
index. Runs on any torch device: the CPU engine and the CUDA engine share it.
"""
from __future__ import annotations

import numpy as np

from ..core.extras import require

torch = require("torch", "the exact l2 search on the CPU (float32 GEMM with an exact recheck)")

U32 = float(np.finfo(np.float32).eps) / 2  # unit round-off of float32


def _exact_sq(Q, D, rows, cols):
    """Exact squared distances of the pairs (rows[k], cols[k]) -- torch tensors on Q's device.

    Bytes in int32 (at most 65025 per feature: exact below 33,000 features), else float64.
    """
    out = torch.empty(len(rows), dtype=torch.float64, device=Q.device)
    wide = torch.int32 if (Q.dtype == torch.uint8 and Q.shape[1] < 33000) else torch.float64
    step = max(1, (32 << 20) // max(1, Q.shape[1] * 8))
    for s in range(0, len(rows), step):
        a = Q[rows[s:s + step]].to(wide)
        b = D[cols[s:s + step]].to(wide)
        out[s:s + step] = (a - b).square_().sum(dim=1, dtype=torch.int64 if wide == torch.int32 else None)
    return out


class _Side:
    """Best exact squared distance and global index for one set of points (numpy, host)."""

    def __init__(self, n):
        self.best = np.full(n, np.inf)
        self.idx = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)

    def offer(self, local, d2, gidx):
        """Offer candidates (local position, exact squared distance, global index of the partner)."""
        if len(local) == 0:
            return
        order = np.lexsort((gidx, d2, local))
        local, d2, gidx = local[order], d2[order], gidx[order]
        first = np.ones(len(local), dtype=bool)
        first[1:] = local[1:] != local[:-1]
        local, d2, gidx = local[first], d2[first], gidx[first]
        cur_d, cur_i = self.best[local], self.idx[local]
        better = (d2 < cur_d) | ((d2 == cur_d) & (gidx < cur_i))
        self.best[local[better]] = d2[better]
        self.idx[local[better]] = gidx[better]


def _approx_sq(Qf, Df, qn, dn):
    """float32 ``|q - d|^2`` of every pair, ``(nq, nd)``, from one GEMM (``qn``/``dn``: exact squared norms)."""
    d2 = Qf @ Df.T
    return d2.mul_(-2.0).add_(qn.to(torch.float32)[:, None]).add_(dn.to(torch.float32)[None, :])


def _tolerance(sq, other_sq, dim):
    """Rigorous bound on ``|_approx_sq - exact|`` of each point (squared norms ``sq``, float64) against
    every point of the other set (squared norms ``other_sq``): float64, one per point.

    ``gamma`` bounds the dot product's rounding (Higham's gamma_n with 4 operations of slack); the
    second term covers the float32 rounding of both squared norms and of the sum."""
    gamma = (dim + 4) * U32 / (1 - (dim + 4) * U32)
    other_max = other_sq.max()
    cross = sq.sqrt() * other_max.sqrt()
    return 2 * gamma * cross + 4 * U32 * (sq + other_max + 2 * cross)


def _limit(d2_min, best, tol):
    """float32 threshold per point: a pair above it cannot be the point's nearest.

    The true nearest j* has ``d2(j*) <= exact(j*) + tol <= exact(argmin d2) + tol <= min d2 + 2 tol``,
    and ``<= best exact so far + tol``; ``1 + 8 u`` absorbs the rounding of this float64 arithmetic
    and of the conversion to float32."""
    return (torch.minimum(d2_min.double() + 2 * tol, best + tol) * (1 + 8 * U32)).to(torch.float32)


def _block(Qt, Dt, Qf, Df, qn, dn, q_side, q_off, d_gidx, d_side=None, d_off=0, q_gidx=None):
    """Process one (query block, database block) pair on the tensors' device: every pair that can
    be the nearest of its row (and, with ``d_side``, of its column) is recomputed exactly and offered.

    ``Qf``/``Df`` are the float32 copies of ``Qt``/``Dt``; ``qn``/``dn`` exact squared norms.
    """
    d2 = _approx_sq(Qf, Df, qn, dn)
    nq, nd = d2.shape
    dim = Qt.shape[1]
    rb = torch.as_tensor(q_side.best[q_off:q_off + nq], device=d2.device)
    mask = d2 <= _limit(d2.amin(dim=1), rb, _tolerance(qn, dn, dim))[:, None]
    if d_side is not None:
        cb = torch.as_tensor(d_side.best[d_off:d_off + nd], device=d2.device)
        mask |= d2 <= _limit(d2.amin(dim=0), cb, _tolerance(dn, qn, dim))[None, :]
    rows, cols = torch.nonzero(mask, as_tuple=True)
    ex = _exact_sq(Qt, Dt, rows, cols).cpu().numpy()
    r, c = rows.cpu().numpy(), cols.cpu().numpy()
    q_side.offer(r + q_off, ex, d_gidx[c])
    if d_side is not None:
        d_side.offer(c + d_off, ex, q_gidx[r])


def _norms(t):
    return t.to(torch.float64).square().sum(dim=1)


def _blocks(n, size):
    return [(s, min(n, s + size)) for s in range(0, n, size)]


def _block_rows(dim, device):
    """Rows per GEMM block from a memory budget (1 GiB on a GPU, 96 MiB on a CPU)."""
    budget = (1 << 30) if device.type == "cuda" else (96 << 20)
    return max(256, min(8192, budget // max(1, 4 * max(dim, 2048))))


def _gemm_rows(queries, database, q_side, d_gidx, device, d_side=None, q_gidx=None,
               q_off=0, d_off=0, rows=None):
    rows = rows or _block_rows(queries.shape[1], device)
    dblocks = []
    for a, b in _blocks(len(database), rows):  # converted once, reused by every query block
        Dt = torch.from_numpy(database[a:b]).to(device)
        dblocks.append((a, b, Dt, Dt.to(torch.float32), _norms(Dt)))
        if device.type == "cuda" and len(dblocks) * rows * database.shape[1] * 5 > (4 << 30):
            dblocks = None  # too large to keep on the GPU: stream them per query block instead
            break
    for qa, qb in _blocks(len(queries), rows):
        Qt = torch.from_numpy(queries[qa:qb]).to(device)
        Qf, qn = Qt.to(torch.float32), _norms(Qt)
        for da, db, Dt, Df, dn in (dblocks if dblocks is not None else _stream(database, rows, device)):
            _block(Qt, Dt, Qf, Df, qn, dn, q_side, q_off + qa, d_gidx[da:db],
                   d_side=d_side, d_off=d_off + da,
                   q_gidx=None if q_gidx is None else q_gidx[qa:qb])


def _stream(database, rows, device):
    for a, b in _blocks(len(database), rows):
        Dt = torch.from_numpy(database[a:b]).to(device)
        yield a, b, Dt, Dt.to(torch.float32), _norms(Dt)


def _finish(side):
    missing = side.idx == np.iinfo(np.int64).max
    d = np.sqrt(side.best)
    idx = side.idx.copy()
    d[missing] = np.inf
    idx[missing] = -1
    return d, idx


def gemm_nearest(queries, database, *, device="cpu", block_rows=None):
    """Exact l2 1-NN of each query in ``database``: ``(distances, indices)`` in stored units.

    ``block_rows``: rows per GEMM block (default: from a memory budget; speed only)."""
    device = torch.device(device)
    side = _Side(len(queries))
    _gemm_rows(queries, database, side, np.arange(len(database), dtype=np.int64), device, rows=block_rows)
    return _finish(side)


def gemm_cross_class(x_query, y_query, x_db, y_db, *, same_set=False, progress=None, device="cpu",
                     block_rows=None):
    """Exact l2 nearest *differently-labelled* database point of every query (pairs of classes once)."""
    device = torch.device(device)
    d_order = np.argsort(y_db, kind="stable")
    D = np.ascontiguousarray(x_db[d_order])
    yd = y_db[d_order]
    classes = np.unique(np.concatenate([y_db, y_query]))
    if same_set:
        side = _Side(len(D))
        for c in classes:
            s, e = np.searchsorted(yd, c, "left"), np.searchsorted(yd, c, "right")
            if e == s or e == len(D):
                continue
            # rows: class c (side positions s..e); columns: all later classes (positions e..)
            _gemm_rows(D[s:e], D[e:], side, d_order[e:], device, d_side=side,
                       q_gidx=d_order[s:e], q_off=s, d_off=e, rows=block_rows)
            if progress is not None:
                progress(2 * int(e - s) * int(len(D) - e))  # both directions of each pair
        d, i = _finish(side)
        out_d, out_i = np.empty_like(d), np.empty_like(i)
        out_d[d_order], out_i[d_order] = d, i
        return out_d, out_i
    q_order = np.argsort(y_query, kind="stable")
    Q = np.ascontiguousarray(x_query[q_order])
    yq = y_query[q_order]
    side = _Side(len(Q))
    for c in classes:
        qs, qe = np.searchsorted(yq, c, "left"), np.searchsorted(yq, c, "right")
        s, e = np.searchsorted(yd, c, "left"), np.searchsorted(yd, c, "right")
        if qe == qs:
            continue
        for lo, hi in ((0, s), (e, len(D))):
            if hi > lo:
                _gemm_rows(Q[qs:qe], D[lo:hi], side, d_order[lo:hi], device, q_off=qs, rows=block_rows)
        if progress is not None:
            progress(int(qe - qs) * int(len(D) - (e - s)))
    d, i = _finish(side)
    out_d, out_i = np.empty_like(d), np.empty_like(i)
    out_d[q_order], out_i[q_order] = d, i
    return out_d, out_i


def gemm_block_pair(xa, ya, xb, yb, *, device="cpu", block_rows=None):
    """Exact l2 for two blocks at once: every row of ``a`` to its nearest other-label row of ``b``
    and back, each pair computed once: ``(da, ia, db, ib)`` (indices into the other block)."""
    device = torch.device(device)
    sides = []
    for x, y in ((xa, ya), (xb, yb)):
        order = np.argsort(y, kind="stable")
        sides.append((np.ascontiguousarray(x[order]), y[order], order, _Side(len(x))))
    for (Q, yq, q_order, q_side), (D, yd, d_order, d_side) in (sides, sides[::-1]):
        for c in np.unique(yq):  # class c against the other block's larger classes
            s, e = np.searchsorted(yq, c, "left"), np.searchsorted(yq, c, "right")
            t = np.searchsorted(yd, c, "right")
            if t < len(D):
                _gemm_rows(Q[s:e], D[t:], q_side, d_order[t:], device, d_side=d_side, q_gidx=q_order[s:e],
                           q_off=s, d_off=t, rows=block_rows)
    out = []
    for _, _, order, side in sides:
        d, i = _finish(side)
        res_d, res_i = np.empty_like(d), np.empty_like(i)
        res_d[order], res_i[order] = d, i
        out += [res_d, res_i]
    return tuple(out)


__all__ = ["U32", "gemm_block_pair", "gemm_cross_class", "gemm_nearest"]
