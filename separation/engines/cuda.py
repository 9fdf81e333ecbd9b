"""CUDA engine through torch: a Triton kernel for exact l-inf / l1 (uint8 and float), cuBLAS GEMM
with exact recheck for l2. Data are streamed to the GPU in bounded blocks.

The Triton kernel compares a block of queries with the database tile by tile, masks pairs that
share a label (cross-class search) and keeps, per query, the smallest distance and the smallest
index among ties. Without Triton, ``torch.cdist`` on the same blocks is used (exact for bytes
held as float32 and for float64 data).
"""
from __future__ import annotations

import logging

import numpy as np

from .base import Engine, merge_better

log = logging.getLogger(__name__)

_BIG_I = 2**31 - 1


def triton_cdiv(a: int, b: int) -> int:
    return (a + b - 1) // b


def cuda_available() -> bool:
    try:
        import torch
    except ImportError:  # pragma: no cover
        return False
    return bool(torch.cuda.is_available())


def _triton():
    try:
        import triton  # noqa: F401
        import triton.language  # noqa: F401

        return triton
    except Exception:
        return None


_KERNEL = None


def _get_kernel():
    global _KERNEL
    if _KERNEL is not None:
        return _KERNEL
    import triton
    import triton.language as tl

    @triton.jit
    def nn_kernel(Q, D, YQ, YD, OUT_D, OUT_I, nq, nd, dim, sq, sd,
                  IS_MAX: tl.constexpr, USE_LABELS: tl.constexpr, IS_INT: tl.constexpr,
                  BM: tl.constexpr, BN: tl.constexpr, BK: tl.constexpr):
        pid = tl.program_id(0)
        rm = pid * BM + tl.arange(0, BM)
        m_ok = rm < nq
        if IS_INT:
            best = tl.full([BM], 2147483647, tl.int32)
        else:
            best = tl.full([BM], float("inf"), tl.float64)
        besti = tl.full([BM], 2147483647, tl.int32)
        if USE_LABELS:
            yq = tl.load(YQ + rm, mask=m_ok, other=-1)
        for n0 in range(0, nd, BN):
            rn = n0 + tl.arange(0, BN)
            n_ok = rn < nd
            if IS_INT:
                acc = tl.zeros([BM, BN], tl.int32)
            else:
                acc = tl.zeros([BM, BN], tl.float64)
            for k0 in range(0, dim, BK):
                rk = k0 + tl.arange(0, BK)
                k_ok = rk < dim
                a = tl.load(Q + rm[:, None].to(tl.int64) * sq + rk[None, :],
                            mask=m_ok[:, None] & k_ok[None, :], other=0)
                b = tl.load(D + rn[:, None].to(tl.int64) * sd + rk[None, :],
                            mask=n_ok[:, None] & k_ok[None, :], other=0)
                if IS_INT:
                    a = a.to(tl.int32)
                    b = b.to(tl.int32)
                diff = tl.abs(a[:, None, :] - b[None, :, :])
                if IS_MAX:
                    acc = tl.maximum(acc, tl.max(diff, axis=2))
                else:
                    acc += tl.sum(diff, axis=2)
            valid = n_ok[None, :]
            if USE_LABELS:
                yd = tl.load(YD + rn, mask=n_ok, other=-2)
                valid = valid & (yq[:, None] != yd[None, :])
            if IS_INT:
                acc = tl.where(valid, acc, 2147483647)
            else:
                acc = tl.where(valid, acc, float("inf"))
            m = tl.min(acc, axis=1)
            cand = tl.where((acc == m[:, None]) & valid, rn[None, :], 2147483647)
            mi = tl.min(cand, axis=1)
            upd = m < best  # strictly: earlier tiles hold smaller indices
            best = tl.where(upd, m, best)
            besti = tl.where(upd, mi, besti)
        tl.store(OUT_D + rm, best.to(tl.float64), mask=m_ok)
        tl.store(OUT_I + rm, besti, mask=m_ok)

    _KERNEL = nn_kernel
    return _KERNEL


_PAIR_KERNEL = None
_MAX_KEY = 2**63 - 1


def _get_pair_kernel():
    """Integer-distance kernel with packed (distance << 32 | index) keys and ``atomic_min``.

    The lexicographic minimum of the keys is exactly 'smallest distance, then smallest index', so
    rows *and* columns of a tile can be updated by any number of programs at once: train-train
    runs each pair of points once (upper triangle). Tiles stop early, exactly, once no entry can
    still beat or tie-win its row's (and column's) key read at the start.
    """
    global _PAIR_KERNEL
    if _PAIR_KERNEL is not None:
        return _PAIR_KERNEL
    import triton
    import triton.language as tl

    @triton.jit
    def pair_kernel(X, Y, LX, LY, KEYX, KEYY, nx, ny, dim, sx, sy, x_off, y_off,
                    IS_MAX: tl.constexpr, SYM: tl.constexpr, TRI: tl.constexpr,
                    BM: tl.constexpr, BN: tl.constexpr, BK: tl.constexpr, CHECK: tl.constexpr):
        pid_m = tl.program_id(0)
        pid_n = tl.program_id(1)
        if TRI and pid_n < pid_m:
            return
        rm = pid_m * BM + tl.arange(0, BM)
        rn = pid_n * BN + tl.arange(0, BN)
        m_ok = rm < nx
        n_ok = rn < ny
        lx = tl.load(LX + rm, mask=m_ok, other=-1)
        ly = tl.load(LY + rn, mask=n_ok, other=-2)
        valid = m_ok[:, None] & n_ok[None, :] & (lx[:, None] != ly[None, :])
        gx = (rm + x_off).to(tl.int64)
        gy = (rn + y_off).to(tl.int64)
        kx = tl.load(KEYX + rm + x_off, mask=m_ok, other=9223372036854775807)
        bx = kx >> 32
        ix = kx & 4294967295
        if SYM:
            ky = tl.load(KEYY + rn + y_off, mask=n_ok, other=9223372036854775807)
            by = ky >> 32
            iy = ky & 4294967295
        acc = tl.zeros([BM, BN], tl.int32)
        k0 = 0
        alive = tl.sum(valid.to(tl.int32)) > 0
        while (k0 < dim) & alive:
            for kk in tl.static_range(CHECK):
                rk = k0 + kk * BK + tl.arange(0, BK)
                k_ok = rk < dim
                a = tl.load(X + rm[:, None].to(tl.int64) * sx + rk[None, :],
                            mask=m_ok[:, None] & k_ok[None, :], other=0).to(tl.int32)
                b = tl.load(Y + rn[:, None].to(tl.int64) * sy + rk[None, :],
                            mask=n_ok[:, None] & k_ok[None, :], other=0).to(tl.int32)
                diff = tl.abs(a[:, None, :] - b[None, :, :])
                if IS_MAX:
                    acc = tl.maximum(acc, tl.max(diff, axis=2))
                else:
                    acc += tl.sum(diff, axis=2)
            k0 += CHECK * BK
            acc64 = acc.to(tl.int64)
            live = valid & ((acc64 < bx[:, None]) | ((acc64 == bx[:, None]) & (gy[None, :] < ix[:, None])))
            if SYM:
                live = live | (valid & ((acc64 < by[None, :]) |
                                        ((acc64 == by[None, :]) & (gx[:, None] < iy[None, :]))))
            alive = tl.sum(live.to(tl.int32)) > 0
        # partial sums of abandoned tiles are lower bounds whose keys exceed the keys read above,
        # so the atomic minimum ignores them: no special case needed
        acc64 = acc.to(tl.int64) << 32
        row_key = tl.where(valid, acc64 | gy[None, :], 9223372036854775807)
        tl.atomic_min(KEYX + rm + x_off, tl.min(row_key, axis=1), mask=m_ok)
        if SYM:
            col_key = tl.where(valid, acc64 | gx[:, None], 9223372036854775807)
            tl.atomic_min(KEYY + rn + y_off, tl.min(col_key, axis=0), mask=n_ok)

    _PAIR_KERNEL = pair_kernel
    return _PAIR_KERNEL


class CUDAEngine(Engine):
    """Exact GPU engine through torch (Triton kernel for l-inf/l1, cuBLAS for l2)."""

    name = "cuda"

    def __init__(self, *, device: str = "cuda", block_bytes: int = 1 << 30, use_triton: bool | None = None,
                 tile: tuple[int, int, int] | None = None, num_warps: int = 4,
                 pair_tile: tuple[int, int, int] = (32, 8, 8)):
        """``block_bytes``: bytes of queries (and of database points) on the GPU at once;
        ``tile``: Triton tile of the float kernel (queries, database points, features);
        ``pair_tile``: (points per side, features per step, steps between early-exit checks)
        of the integer kernel."""
        self.device = device
        self.block_bytes = block_bytes
        self.use_triton = use_triton
        self.tile = tile
        self.num_warps = num_warps
        self.pair_tile = pair_tile

    @classmethod
    def available(cls) -> bool:
        return cuda_available()

    def _triton_ok(self):
        return (self.use_triton if self.use_triton is not None else True) and _triton() is not None

    def _search(self, queries, y_query, database, y_db, norm):
        """Rows: nearest database point (with another label when labels are given)."""
        import torch

        dev = torch.device(self.device)
        use_labels = y_query is not None
        is_int = queries.dtype == np.uint8
        nq, dim = queries.shape
        big = np.iinfo(np.int64).max
        best_d = np.full(nq, np.inf)
        best_i = np.full(nq, big, dtype=np.int64)
        rows = max(1024, self.block_bytes // max(1, dim * queries.itemsize))
        for d0 in range(0, len(database), rows):
            Dt = torch.from_numpy(np.ascontiguousarray(database[d0:d0 + rows])).to(dev)
            yd = torch.from_numpy(y_db[d0:d0 + rows].astype(np.int32)).to(dev) if use_labels else None
            for q0 in range(0, nq, rows):
                Qt = torch.from_numpy(np.ascontiguousarray(queries[q0:q0 + rows])).to(dev)
                yq = torch.from_numpy(y_query[q0:q0 + rows].astype(np.int32)).to(dev) if use_labels else None
                d, i = self._block(Qt, yq, Dt, yd, norm, is_int)
                i = np.where(i >= 0, i + d0, big)
                merge_better(best_d[q0:q0 + rows], best_i[q0:q0 + rows], d, i)
        best_i[best_i == big] = -1
        return best_d, best_i

    def _block(self, Qt, yq, Dt, yd, norm, is_int):
        import torch

        nq, dim = Qt.shape
        if self._triton_ok():
            kernel = _get_kernel()
            out_d = torch.empty(nq, dtype=torch.float64, device=Qt.device)
            out_i = torch.empty(nq, dtype=torch.int32, device=Qt.device)
            BM, BN, BK = self.tile or ((32, 32, 8) if is_int else (32, 32, 4))
            grid = ((nq + BM - 1) // BM,)
            kernel[grid](Qt, Dt, yq if yq is not None else out_i, yd if yd is not None else out_i,
                         out_d, out_i, nq, Dt.shape[0], dim, Qt.stride(0), Dt.stride(0),
                         IS_MAX=norm == "linf", USE_LABELS=yq is not None, IS_INT=is_int,
                         BM=BM, BN=BN, BK=BK, num_warps=self.num_warps)
            d = out_d.cpu().numpy()
            i = out_i.cpu().numpy().astype(np.int64)
            i[i == _BIG_I] = -1
            d[i < 0] = np.inf
            return d, i
        # fallback: torch.cdist in chunks (float32 holds bytes and their max/sum exactly)
        p = float("inf") if norm == "linf" else 1.0
        dt = torch.float32 if is_int else torch.float64
        step = max(1, (256 << 20) // max(1, 4 * Dt.shape[0]))
        ds, is_ = [], []
        Df = Dt.to(dt)
        for s in range(0, nq, step):
            dist = torch.cdist(Qt[s:s + step].to(dt), Df, p=p, compute_mode="donot_use_mm_for_euclid_dist")
            if yq is not None:
                dist = dist.masked_fill(yq[s:s + step, None] == yd[None, :], float("inf"))
            m, j = dist.min(dim=1)  # torch returns the first index among ties
            ds.append(m.double().cpu().numpy())
            is_.append(j.cpu().numpy())
        d = np.concatenate(ds)
        i = np.concatenate(is_).astype(np.int64)
        i[~np.isfinite(d)] = -1
        return d, i

    def _pairs(self, x_query, y_query, x_db, y_db, norm, same_set):
        """Integer data through the packed-key kernel: (distances, indices) in stored units."""
        import torch

        kernel = _get_pair_kernel()
        dev = torch.device(self.device)
        BM = BN = self.pair_tile[0]
        BK, CHECK = self.pair_tile[1], self.pair_tile[2]
        dim = x_query.shape[1]
        rows = max(BM, (self.block_bytes // max(1, dim)) // BM * BM)
        labels_q = np.zeros(len(x_query), np.int32) if y_query is None else y_query.astype(np.int32)
        labels_d = np.full(len(x_db), 1, np.int32) if y_db is None else y_db.astype(np.int32)
        keys_q = torch.full((len(x_query),), _MAX_KEY, dtype=torch.int64, device=dev)
        keys_d = keys_q if same_set else torch.full((len(x_db),), _MAX_KEY, dtype=torch.int64, device=dev)

        def upload(a, lab, s):
            return (torch.from_numpy(np.ascontiguousarray(a[s:s + rows])).to(dev),
                    torch.from_numpy(lab[s:s + rows]).to(dev))

        q_starts = range(0, len(x_query), rows)
        d_starts = range(0, len(x_db), rows)
        for qs in q_starts:
            Xt, LXt = upload(x_query, labels_q, qs)
            for ds in d_starts:
                if same_set and ds < qs:
                    continue
                Yt, LYt = (Xt, LXt) if (same_set and ds == qs) else upload(x_db, labels_d, ds)
                tri = same_set and ds == qs
                grid = (triton_cdiv(len(Xt), BM), triton_cdiv(len(Yt), BN))
                kernel[grid](Xt, Yt, LXt, LYt, keys_q, keys_d, len(Xt), len(Yt), dim, Xt.stride(0),
                             Yt.stride(0), qs, ds, IS_MAX=norm == "linf", SYM=same_set, TRI=tri,
                             BM=BM, BN=BN, BK=BK, CHECK=CHECK, num_warps=self.num_warps)
        keys = keys_q.cpu().numpy()
        missing = keys == _MAX_KEY
        d = (keys >> 32).astype(np.float64)
        i = (keys & 0xFFFFFFFF).astype(np.int64)
        d[missing] = np.inf
        i[missing] = -1
        return d, i

    def nearest(self, queries, database, *, norm):
        if norm != "l2" and queries.dtype == np.uint8 and self._triton_ok():
            return self._pairs(queries, None, database, None, norm, same_set=False)
        if norm == "l2":
            from .gemm import gemm_nearest

            return gemm_nearest(queries, database, device=self.device)
        return self._search(queries, None, database, None, norm)

    def cross_class(self, x_query, y_query, x_db, y_db, *, norm, same_set=False, progress=None):
        if norm == "l2":
            from .gemm import gemm_cross_class

            return gemm_cross_class(x_query, y_query, x_db, y_db, same_set=same_set,
                                    progress=progress, device=self.device)
        if x_query.dtype == np.uint8 and self._triton_ok():
            d, i = self._pairs(x_query, y_query, x_db, y_db, norm, same_set=same_set)
        else:
            d, i = self._search(x_query, y_query, x_db, y_db, norm)
        if progress is not None:
            progress(int(len(x_query)) * int(len(x_db)))
        return d, i
