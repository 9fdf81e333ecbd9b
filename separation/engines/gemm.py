"""Exact l2 nearest neighbours from a GEMM: an exact integer GEMM for bytes on the CPU, else a
float32 GEMM plus an exact recheck of the candidates.

With ``pooled`` (the CPU engine's default for bytes), the GEMM runs on the points' pooled
coordinates instead -- a lower bound on every squared distance, see :mod:`._pooled_l2` -- and
exact integer distances are computed only where that bound cannot rule a pair out; where it rules
out too little, the search goes on with the integer GEMM.

Bytes on the CPU (default): every squared distance is an exact integer from
``|x'|^2 + |y'|^2 - 2 x'.y'`` with ``x' = x - 128`` in int8 (see :mod:`._int_l2`: an int8 GEMM
where the CPU runs it fast, else the float32 GEMM on the same integers, exact too); nothing is
rechecked. Otherwise ``|x - y|^2 = |x|^2 + |y|^2 - 2 x.y`` is computed in float32 (fast BLAS /
cuBLAS), then every pair whose float32 value is within a *rigorous* rounding bound of the best
exact distance seen so far is recomputed exactly (int64 for uint8 data, float64 otherwise). The
true nearest neighbour is always among those candidates. Either way the result equals a float64
brute force; ties go to the smaller index. The operands and norms of a set are computed once per
search. Runs on any torch device: the CPU engine and the CUDA engine share it.
"""
from __future__ import annotations

import numba
import numpy as np

from ..core.extras import require
from . import _int_l2, _pooled_l2
from ._bound_blocks import add_counts, l1_block_search, pooled_block, pooled_l1_block, pooling
from ._gemm_rounding import U32, _approx_sq, _limit, _norms, _tolerance
from .sad import padded

torch = require("torch", "the exact l2 search on the CPU (float32 GEMM with an exact recheck)")


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


def _blocks(n, size):
    return [(s, min(n, s + size)) for s in range(0, n, size)]


def _block_rows(dim, device):
    """Rows per GEMM block from a memory budget (1 GiB on a GPU, 96 MiB on a CPU)."""
    budget = (1 << 30) if device.type == "cuda" else (96 << 20)
    return max(256, min(8192, budget // max(1, 4 * max(dim, 2048))))


#: converted copies (float32 GEMM operands) kept whole up to this size; larger sets convert per block
KEEP_BYTES = {"cpu": 1 << 30, "cuda": 4 << 30}


def use_integer(x: np.ndarray, device) -> bool:
    """Whether the exact integer GEMM serves ``x``: bytes, on the CPU."""
    return x.dtype == np.uint8 and torch.device(device).type == "cpu"


class _Rows:
    """One set of (class-sorted) rows ``x`` (n, d), converted once per search, not per block.

    Integer path (bytes on the CPU): ``op`` the int8 rows ``x - 128`` and ``sq`` their exact
    squared norms (int64, numpy). Float path: ``op`` the float32 copy on the device (None when over
    :data:`KEEP_BYTES`: converted per block) and ``sq`` the exact squared norms (float64 tensor).
    With feature ``groups`` (integer path, :mod:`._pooled_l2`), ``pool`` holds the pooled
    coordinates of the first ``bound_groups`` of them (float32 tensor; all for None) and their
    exact squared norms (float64 tensor), and ``x`` is stored in the features'
    :func:`~._pooled_l2.exact_layout`, zero-padded to whole chunks of :mod:`.sad` (same
    distances); ``prune`` (a :class:`~._pooled_l2.Pruning`, shared by the search's sets) says
    whether the bound still runs."""

    def __init__(self, x, device, integer, *, op=None, sq=None, xt=None, groups=None, pool=None, prune=None,
                 codes=None, converted=False, bound_groups=None):
        self.x, self.device, self.integer, self.pool, self.prune = x, device, integer, pool, prune
        self.codes = codes
        if groups is not None:
            p = torch.from_numpy(_pooled_l2.pooled(x, groups[:bound_groups]))
            self.pool = (p, _norms(p))
            self.x = x = padded(x[:, _pooled_l2.exact_layout(groups)])
        if converted:
            self.op, self.sq, self.xt = op, sq, xt
        elif codes is not None:  # the pooled l1 search: byte codes and padded rows, no GEMM operands
            self.pool, self.x = codes.codes(x), codes.rows(x)
            self.op = self.sq = self.xt = None
        elif integer:
            x8 = _int_l2.shifted(x)
            self.op, self.sq, self.xt = torch.from_numpy(x8), _int_l2.shifted_norms(x8), None
        else:
            keep = 4 * x.size <= KEEP_BYTES.get(device.type, 0)
            self.xt = torch.from_numpy(x).to(device) if keep else None
            self.op = self.xt.to(torch.float32) if keep else None
            self.sq = _norms(self.xt) if keep else torch.cat(
                [_norms(torch.from_numpy(x[a:b]).to(device)) for a, b in _blocks(len(x), 8192)] or
                [torch.empty(0, dtype=torch.float64, device=device)])

    def __len__(self):
        return len(self.x)

    def sub(self, a, b):
        """Rows ``a..b-1`` (views, nothing converted again)."""
        cut = (lambda t: None if t is None else t[a:b])
        return _Rows(self.x[a:b], self.device, self.integer, op=cut(self.op), sq=cut(self.sq), xt=cut(self.xt),
                     pool=self.pool_block(a, b), prune=self.prune, codes=self.codes, converted=True)

    def pool_block(self, a, b):
        """Rows ``a..b-1`` of the bound's data: ``(pooled coordinates, their squared norms)`` (l2),
        the byte codes (l1); None without a pooled bound."""
        if self.pool is None or self.codes is not None:
            return None if self.pool is None else self.pool[a:b]
        return self.pool[0][a:b], self.pool[1][a:b]

    def block(self, a, b):
        """``(rows on the device, GEMM operand, squared norms)`` of rows ``a..b-1`` (all None for
        the pooled l1 search, which runs no GEMM)."""
        if self.codes is not None:
            return None, None, None
        if self.integer:
            return None, self.op[a:b], self.sq[a:b]
        if self.op is not None:
            return self.xt[a:b], self.op[a:b], self.sq[a:b]
        xt = torch.from_numpy(self.x[a:b]).to(self.device)
        return xt, xt.to(torch.float32), self.sq[a:b]


def _int_block(q8, d8, qn, dn, q_side, q_off, d_gidx, bits, d_side=None, d_off=0, q_gidx=None):
    """:func:`_block` on the exact integer path: the nearest of every row (and, with ``d_side``,
    of every column) of one block from exact squared distances, ties to the smaller global index."""
    xy = _int_l2.int_dot(q8, d8).numpy()
    nq, nd = xy.shape
    row_key = np.full(nq, _int_l2.NO_KEY, dtype=np.int64)
    col_key = np.full((numba.get_num_threads(), nd if d_side is not None else 0), _int_l2.NO_KEY, dtype=np.int64)
    q_g = np.ascontiguousarray(q_gidx if q_gidx is not None else np.zeros(nq), dtype=np.int64)
    _int_l2.nearest_keys(xy, qn, dn, q_g, np.ascontiguousarray(d_gidx, dtype=np.int64), bits, row_key, col_key)
    mask = (1 << bits) - 1
    sides = [(q_side, q_off, row_key)] + ([(d_side, d_off, col_key.min(axis=0))] if d_side is not None else [])
    for side, off, key in sides:
        got = np.flatnonzero(key != _int_l2.NO_KEY)
        side.offer(got + off, (key[got] >> bits).astype(np.float64), key[got] & mask)


def _seeded_side(x_sorted, partners, x_other, norm):
    """A :class:`_Side` for the rows ``x_sorted``; for l1 its bests start at the exact l1 distance
    to ``partners`` (their l2-nearest rows of ``x_other``, -1: none; None: no seeds) -- real pairs with their
    indices, so the result and its ties are unchanged, while the l2 bound prunes from the start."""
    side = _Side(len(x_sorted))
    if norm == "l1" and partners is not None:
        has = np.flatnonzero(partners >= 0)
        for s in range(0, len(has), 4096):
            k = has[s:s + 4096]
            diff = x_sorted[k].astype(np.int16) - x_other[partners[k]].astype(np.int16)
            side.best[k] = np.abs(diff).sum(axis=1)
            side.idx[k] = partners[k]
    return side


def _gemm_rows(Q, D, q_side, d_gidx, d_side=None, q_gidx=None, q_off=0, d_off=0, rows=None, bits=0, norm="l2"):
    """Every (query block, database block) pair of ``Q`` and ``D`` (:class:`_Rows`) offered to
    ``q_side`` (and ``d_side``); ``d_gidx``/``q_gidx``: global indices of D's / Q's rows."""
    rows = rows or (_int_l2.block_rows(Q.x.shape[1]) if Q.integer else _block_rows(Q.x.shape[1], Q.device))
    for qa, qb in _blocks(len(Q), rows):
        Qt, Qop, qn = Q.block(qa, qb)
        qg = None if q_gidx is None else q_gidx[qa:qb]
        for da, db in _blocks(len(D), rows):
            Dt, Dop, dn = D.block(da, db)
            pairs = (qb - qa) * (db - da)
            if Q.codes is not None:  # the pooled l1 bound (it always pays)
                Q.prune.add(pairs, pooled_l1_block(Q.x[qa:qb], D.x[da:db], Q.pool_block(qa, qb), D.pool_block(da, db),
                                                   Q.codes.slack, q_side, q_off + qa, d_gidx[da:db], d_side=d_side,
                                                   d_off=d_off + da, q_gidx=qg))
                continue
            if Q.pool is not None and Q.prune.active:
                exact = pooled_block(Q.x[qa:qb], D.x[da:db], Q.pool_block(qa, qb), D.pool_block(da, db), q_side,
                                     q_off + qa, d_gidx[da:db], d_side=d_side, d_off=d_off + da, q_gidx=qg)
                Q.prune.add(pairs, exact)
                continue
            if Q.prune is not None:  # the pooled bound no longer paid: every pair's bound computed
                Q.prune.add(pairs, pairs)
            if norm == "l1":
                l1_block_search(Q.x[qa:qb], D.x[da:db], Qop, Dop, qn, dn, q_side, q_off + qa, d_gidx[da:db],
                                d_side=d_side, d_off=d_off + da, q_gidx=qg)
            elif Q.integer:
                _int_block(Qop, Dop, qn, dn, q_side, q_off + qa, d_gidx[da:db], bits,
                           d_side=d_side, d_off=d_off + da, q_gidx=qg)
            else:
                _block(Qt, Dt, Qop, Dop, qn, dn, q_side, q_off + qa, d_gidx[da:db],
                       d_side=d_side, d_off=d_off + da, q_gidx=qg)


def _finish(side, norm="l2"):
    missing = side.idx == np.iinfo(np.int64).max
    d = np.sqrt(side.best) if norm == "l2" else side.best.copy()
    idx = side.idx.copy()
    d[missing] = np.inf
    idx[missing] = -1
    return d, idx


def _setup(device, integer, *arrays, norm="l2"):
    """The device, whether the integer path runs, and the bits of its packed keys (l1 runs on the
    integer path only)."""
    device = torch.device(device)
    x = arrays[0]
    if norm == "l1":
        integer = True if integer is None else integer
    if integer is None:
        integer = use_integer(x, device)
    elif integer and not use_integer(x, device):
        raise ValueError(f"the integer {norm} path needs byte data on the CPU")
    bits = _int_l2.index_bits(max(len(a) for a in arrays), x.shape[1]) if integer else 0
    return device, integer, bits


def gemm_nearest(queries, database, *, device="cpu", block_rows=None, integer=None, norm="l2", pooled=False,
                 counts=None):
    """Exact l2 (or, ``norm="l1"``, l1 on bytes) 1-NN of each query in ``database``:
    ``(distances, indices)`` in stored units.

    ``block_rows``: rows per GEMM block (default: from a memory budget; speed only); ``integer``:
    the exact int8 GEMM (default: for bytes on the CPU) or the float32 GEMM with its recheck;
    ``pooled``: on the integer path, l2 pruned by the pooled bound of :mod:`._pooled_l2` (and so
    the l2 partners that start the l1 search); ``counts``: a dict whose ``"pairs"`` and ``"exact"``
    the pooled search adds the pairs it searched and those it computed exactly to."""
    device, integer, bits = _setup(device, integer, queries, database, norm=norm)
    seed = None
    if norm == "l1" and not pooled:
        seed = gemm_nearest(queries, database, device=device, block_rows=block_rows, pooled=True)[1]
    side = _seeded_side(queries, seed, database, norm)
    pooled_setup = pooling(pooled, integer, norm, database)
    _gemm_rows(_Rows(queries, device, integer, **pooled_setup), _Rows(database, device, integer, **pooled_setup), side,
               np.arange(len(database), dtype=np.int64), rows=block_rows, bits=bits, norm=norm)
    add_counts(counts, pooled_setup)
    return _finish(side, norm)


def gemm_cross_class(x_query, y_query, x_db, y_db, *, same_set=False, progress=None, device="cpu",
                     block_rows=None, integer=None, norm="l2", pooled=False, counts=None):
    """Exact l2 (or l1 on bytes) nearest *differently-labelled* database point of every query
    (pairs of classes once). The database (and the queries) are converted for the GEMM once;
    ``pooled``, ``counts``: as for :func:`gemm_nearest`."""
    device, integer, bits = _setup(device, integer, x_db, x_query, norm=norm)
    seed = None
    if norm == "l1" and not pooled:  # each point's l2-nearest other-class point: a close l1 partner to start from
        seed = gemm_cross_class(x_query, y_query, x_db, y_db, same_set=same_set, device=device,
                                block_rows=block_rows, pooled=True)[1]
    pooled_setup = pooling(pooled, integer, norm, x_db)
    d_order = np.argsort(y_db, kind="stable")
    D = _Rows(np.ascontiguousarray(x_db[d_order]), device, integer, **pooled_setup)
    yd = y_db[d_order]
    classes = np.unique(np.concatenate([y_db, y_query]))
    if same_set:
        side = _seeded_side(D.x, None if seed is None else seed[d_order], x_db, norm)
        for c in classes:
            s, e = np.searchsorted(yd, c, "left"), np.searchsorted(yd, c, "right")
            if e == s or e == len(D):
                continue
            # rows: class c (side positions s..e); columns: all later classes (positions e..)
            _gemm_rows(D.sub(s, e), D.sub(e, len(D)), side, d_order[e:], d_side=side,
                       q_gidx=d_order[s:e], q_off=s, d_off=e, rows=block_rows, bits=bits, norm=norm)
            if progress is not None:
                progress(2 * int(e - s) * int(len(D) - e))  # both directions of each pair
        add_counts(counts, pooled_setup)
        d, i = _finish(side, norm)
        out_d, out_i = np.empty_like(d), np.empty_like(i)
        out_d[d_order], out_i[d_order] = d, i
        return out_d, out_i
    q_order = np.argsort(y_query, kind="stable")
    Q = _Rows(np.ascontiguousarray(x_query[q_order]), device, integer, **pooled_setup)
    yq = y_query[q_order]
    side = _seeded_side(Q.x, None if seed is None else seed[q_order], x_db, norm)
    for c in classes:
        qs, qe = np.searchsorted(yq, c, "left"), np.searchsorted(yq, c, "right")
        s, e = np.searchsorted(yd, c, "left"), np.searchsorted(yd, c, "right")
        if qe == qs:
            continue
        for lo, hi in ((0, s), (e, len(D))):
            if hi > lo:
                _gemm_rows(Q.sub(qs, qe), D.sub(lo, hi), side, d_order[lo:hi], q_off=qs, rows=block_rows, bits=bits,
                           norm=norm)
        if progress is not None:
            progress(int(qe - qs) * int(len(D) - (e - s)))
    add_counts(counts, pooled_setup)
    d, i = _finish(side, norm)
    out_d, out_i = np.empty_like(d), np.empty_like(i)
    out_d[q_order], out_i[q_order] = d, i
    return out_d, out_i


def gemm_block_pair(xa, ya, xb, yb, *, device="cpu", block_rows=None, integer=None, norm="l2", pooled=False,
                    counts=None):
    """Exact l2 (or l1 on bytes) for two blocks at once: every row of ``a`` to its nearest
    other-label row of ``b`` and back, each pair computed once: ``(da, ia, db, ib)`` (indices into
    the other block); ``pooled``, ``counts``: as for :func:`gemm_nearest`."""
    device, integer, bits = _setup(device, integer, xa, xb, norm=norm)
    seeds = (None, None, None, None)
    if norm == "l1" and not pooled:  # (da, ia, db, ib) of l2: close l1 partners to start from
        seeds = gemm_block_pair(xa, ya, xb, yb, device=device, block_rows=block_rows, pooled=True)
    pooled_setup = pooling(pooled, integer, norm, xb)
    sides = []
    for x, y, seed, other in ((xa, ya, seeds[1], xb), (xb, yb, seeds[3], xa)):
        order = np.argsort(y, kind="stable")
        rows = _Rows(np.ascontiguousarray(x[order]), device, integer, **pooled_setup)
        sides.append((rows, y[order], order, _seeded_side(rows.x, None if seed is None else seed[order], other, norm)))
    for (Q, yq, q_order, q_side), (D, yd, d_order, d_side) in (sides, sides[::-1]):
        for c in np.unique(yq):  # class c against the other block's larger classes
            s, e = np.searchsorted(yq, c, "left"), np.searchsorted(yq, c, "right")
            t = np.searchsorted(yd, c, "right")
            if t < len(D):
                _gemm_rows(Q.sub(s, e), D.sub(t, len(D)), q_side, d_order[t:], d_side=d_side, q_gidx=q_order[s:e],
                           q_off=s, d_off=t, rows=block_rows, bits=bits, norm=norm)
    add_counts(counts, pooled_setup)
    out = []
    for _, _, order, side in sides:
        d, i = _finish(side, norm)
        res_d, res_i = np.empty_like(d), np.empty_like(i)
        res_d[order], res_i[order] = d, i
        out += [res_d, res_i]
    return tuple(out)


__all__ = ["KEEP_BYTES", "U32", "gemm_block_pair", "gemm_cross_class", "gemm_nearest", "use_integer"]
