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

from .base import Engine, cross_pairs, merge_better
from .conflicts import torch_pairs

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
    except ImportError:  # no Triton: torch.cdist blocks
        return None


_MAX_KEY = 2**63 - 1


def _kernels():
    from . import _triton_kernels

    return _triton_kernels


class CUDAEngine(Engine, register="cuda"):
    """Exact GPU engine through torch (Triton kernel for l-inf/l1, cuBLAS for l2)."""

    name = "cuda"

    def __init__(self, *, device: str = "cuda", block_bytes: int = 1 << 30, use_triton: bool | None = None,
                 tile: tuple[int, int, int] | None = None, num_warps: int = 8,
                 pair_tile: tuple[int, int, int] = (32, 8, 8), prune: bool = False):
        """``device``: a torch device (``"cpu"`` runs the same blocked code on the host, which is how
        the tests check it without a GPU); ``block_bytes``: bytes of queries (and of database
        points) on the device at once;
        ``tile``: Triton tile of the float kernel (queries, database points, features);
        ``pair_tile``: (points per side, features per step, steps between early-exit checks)
        of the integer kernel; ``prune``: exact early exit in the integer kernel."""
        self.device = device
        self.block_bytes = block_bytes
        self.use_triton = use_triton
        self.tile = tile
        self.num_warps = num_warps
        self.pair_tile = pair_tile
        self.prune = prune

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
        rows = max(1, self.block_bytes // max(1, dim * queries.itemsize))
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
            kernel = _kernels().nn_kernel
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

    def _pairs(self, x_query, y_query, x_db, y_db, norm, same_set, both=False):
        """Integer data through the packed-key kernel: (distances, indices) in stored units; with
        ``both`` also the database side's nearest query ``(da, ia, db, ib)``, each pair once."""
        import torch

        kernel = _kernels().pair_kernel
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
            return (torch.from_numpy(np.ascontiguousarray(a[s:s + rows])).to(dev, copy=True),
                    torch.from_numpy(lab[s:s + rows]).to(dev, copy=True))

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
                             Yt.stride(0), qs, ds, IS_MAX=norm == "linf", SYM=same_set or both, TRI=tri,
                             PRUNE=self.prune,
                             BM=BM, BN=BN, BK=BK, CHECK=CHECK, num_warps=self.num_warps)
        out = []
        for keys in ((keys_q, keys_d) if both else (keys_q,)):
            keys = keys.cpu().numpy()
            missing = keys == _MAX_KEY
            d = (keys >> 32).astype(np.float64)
            i = (keys & 0xFFFFFFFF).astype(np.int64)
            d[missing] = np.inf
            i[missing] = -1
            out += [d, i]
        return tuple(out)

    def nearest(self, queries, database, *, norm):
        if norm != "l2" and queries.dtype == np.uint8 and self._triton_ok():
            return self._pairs(queries, None, database, None, norm, same_set=False)
        if norm == "l2":
            from .gemm import gemm_nearest

            return gemm_nearest(queries, database, device=self.device)
        return self._search(queries, None, database, None, norm)

    def pairs_once(self, norm, dtype):
        """l2 (GEMM) and the integer kernel visit each pair of a block pair once."""
        return norm == "l2" or (dtype == np.uint8 and self._triton_ok())

    def block_pair(self, xa, ya, xb, yb, *, norm):
        if norm == "l2":
            from .gemm import gemm_block_pair

            return gemm_block_pair(xa, ya, xb, yb, device=self.device)
        if xa.dtype == np.uint8 and self._triton_ok():
            return self._pairs(xa, ya, xb, yb, norm, same_set=False, both=True)
        return super().block_pair(xa, ya, xb, yb, norm=norm)

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
            progress(cross_pairs(y_query, y_db))
        return d, i

    def range_search(self, x_query, y_query, x_db, y_db, *, norm, radius, same_set=False, max_pairs=None,
                     progress=None):
        """Torch blocks on this engine's device (:func:`~.conflicts.torch_pairs`)."""
        return torch_pairs(x_query, y_query, x_db, y_db, same_set=same_set, norm=norm, radius=radius,
                           max_pairs=max_pairs, progress=progress, device=self.device)


__all__ = ["CUDAEngine", "cuda_available", "triton_cdiv"]
