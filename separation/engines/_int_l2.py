"""Exact l2 on bytes from an integer GEMM: no rounding, so no recheck.

A byte row ``x`` is shifted to ``x' = x - 128`` (int8, the same bytes with the top bit flipped);
``|x - y|^2 = |x'|^2 + |y'|^2 - 2 x'.y'``, and each product in ``x'.y'`` is at most
``128 * 128 = 16384`` in size. Two GEMMs compute it exactly (:func:`gemm_backend` picks the faster
here, once per process):

* ``"int8"``: an int8 x int8 GEMM with int32 sums (``torch._int_mm``; fast where the CPU has VNNI,
  a slow fallback elsewhere): exact over up to :data:`K_CHUNK` features;
* ``"float32"``: the BLAS float32 GEMM on the same integers: every partial sum of up to
  :data:`F_CHUNK` products is an integer of size at most ``2**24``, which float32 holds exactly,
  in whatever order the BLAS adds.

Longer rows are summed in int64 over chunks. Every squared distance is then an exact integer, and the numba kernels below
reduce a block of them to the nearest partner of each row and column (ties to the smallest global
index, by packing ``(distance, index)`` into one int64 key) or to the pairs within a limit.
"""
from __future__ import annotations

import functools
import logging
import time

import numpy as np
from numba import njit, prange

from ..core.extras import require
from ._gemm_rounding import ieee_float32

torch = require("torch", "the exact l2 search on the CPU (integer GEMM)")
log = logging.getLogger(__name__)

#: features per int32-exact GEMM chunk: ``K_CHUNK * 128 * 128 < 2**31``
K_CHUNK = (2**31 - 1) // (128 * 128)
#: features per float32-exact GEMM chunk: ``F_CHUNK * 128 * 128 == 2**24``
F_CHUNK = 2**24 // (128 * 128)
#: the two exact GEMMs (see the module docstring)
GEMM_BACKENDS = ("int8", "float32")
#: rows shorter than this are multiplied in int64 (cheap for so few features)
SHORT = 8
#: most rows per block of the integer path: a block's int32 products (rows x rows) stay at 16 MiB
#: (2048 measured fastest on full MNIST against 1024, 3072 and 8192 on the 2-core VM)
ROWS_MAX = 2048
#: most int8 bytes of one block's rows
ROWS_BYTES = 96 << 20
#: a key of no partner (larger than every packed key)
NO_KEY = np.iinfo(np.int64).max


@functools.lru_cache(maxsize=None)
def int8_available() -> bool:
    """Whether this torch has an int8 GEMM with int32 results on the CPU, and it is exact here."""
    if not hasattr(torch, "_int_mm"):
        return False
    a = torch.full((3, 9), -128, dtype=torch.int8)
    b = torch.tensor([[127, -128, 5, 0, -1, 64, -64, 3, 2]] * 2, dtype=torch.int8)
    try:
        got = torch._int_mm(a, b.T)
    except RuntimeError:  # not built for this CPU / this torch
        return False
    return got.dtype == torch.int32 and torch.equal(got.to(torch.int64), a.to(torch.int64) @ b.to(torch.int64).T)


@functools.lru_cache(maxsize=None)
def gemm_backend() -> str:
    """``"int8"`` where ``torch._int_mm`` is exact and at least as fast as the float32 GEMM on a
    128 x 128 x 1024 product (timed once per process), else ``"float32"``: both are exact, so the
    choice changes speed only."""
    if not int8_available():
        return "float32"
    g = torch.Generator().manual_seed(0)
    a, b = (torch.randint(-128, 128, (128, F_CHUNK), dtype=torch.int8, generator=g) for _ in range(2))

    def best(fn) -> float:
        fn()  # warm-up: first-call set-up is not the GEMM's speed
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return min(times)

    t_int = best(lambda: torch._int_mm(a, b.T))
    t_float = best(lambda: a.to(torch.float32) @ b.to(torch.float32).T)
    choice = "int8" if t_int <= t_float else "float32"
    log.debug("exact integer GEMM: %s (int8 %.2g s, float32 %.2g s per test product)", choice, t_int, t_float)
    return choice


def shifted(x: np.ndarray) -> np.ndarray:
    """Byte rows ``(n, d)`` uint8 as ``x - 128`` in int8 ``(n, d)`` (a view-sized copy)."""
    return (x ^ np.uint8(128)).view(np.int8)


def shifted_norms(x8: np.ndarray) -> np.ndarray:
    """Exact ``|x'|^2`` of int8 rows ``(n, d)``: int64 ``(n,)``."""
    out = np.empty(len(x8), dtype=np.int64)
    step = max(1, (16 << 20) // max(1, 8 * x8.shape[1]))
    for s in range(0, len(x8), step):
        blk = x8[s:s + step].astype(np.int64)
        out[s:s + step] = np.einsum("ij,ij->i", blk, blk)
    return out


def int_dot(q8: torch.Tensor, d8: torch.Tensor, backend: str | None = None) -> torch.Tensor:
    """``q8 @ d8.T`` exactly for int8 rows: int32 ``(nq, nd)`` when the rows have :data:`SHORT`
    features up to one chunk of the backend (:data:`K_CHUNK` for ``"int8"``, :data:`F_CHUNK` for
    ``"float32"``), else int64 (fewer: one int64 product; more: summed over chunks of that many;
    float32 while torch's float32 matmul precision is not ``"highest"``: one float64 product).
    ``backend``: one of :data:`GEMM_BACKENDS`; None: :func:`gemm_backend`."""
    backend = gemm_backend() if backend is None else backend
    if backend not in GEMM_BACKENDS:
        raise ValueError(f"backend must be one of {GEMM_BACKENDS}, got {backend!r}")
    dim = q8.shape[1]
    if dim < SHORT:  # a single feature gives wrong int8 GEMM results (torch 2.x, CPU): exact int64 instead
        return q8.to(torch.int64) @ d8.to(torch.int64).T
    if backend == "float32" and not ieee_float32():
        # float32 GEMMs may then round through bf16 / tf32: float64 holds every sum here exactly
        return (q8.to(torch.float64) @ d8.to(torch.float64).T).to(torch.int64)
    if backend == "int8":
        chunk = K_CHUNK
        mm = (lambda q, d: torch._int_mm(q, d.T))
    else:
        chunk = F_CHUNK
        mm = (lambda q, d: (q.to(torch.float32) @ d.to(torch.float32).T).to(torch.int32))
    if dim <= chunk:
        return mm(q8, d8)
    out = torch.zeros((q8.shape[0], d8.shape[0]), dtype=torch.int64)
    for k in range(0, dim, chunk):
        out += mm(q8[:, k:k + chunk], d8[:, k:k + chunk]).to(torch.int64)
    return out


def block_rows(dim: int) -> int:
    """Rows per block of the integer path: at most :data:`ROWS_MAX`, and at most
    :data:`ROWS_BYTES` of int8 rows (256 at least)."""
    return max(256, min(ROWS_MAX, ROWS_BYTES // max(1, dim)))


def index_bits(n_global: int, dim: int) -> int:
    """Bits for a global index in a packed ``(squared distance << bits) | index`` key; ValueError
    when a squared distance of ``dim`` byte features and such an index do not fit 63 bits."""
    bits = max(1, int(n_global).bit_length())
    if (255 * 255 * dim).bit_length() + bits > 63:
        raise ValueError(f"{n_global} points of {dim} byte features do not fit a 63-bit (distance, index) key")
    return bits


@njit(inline="always")
def thread_chunks(nq, col_threads):  # pragma: no cover - numba
    """``(chunks, rows per chunk)`` of a block's ``nq`` rows: one chunk per row of the column
    copies (``col_threads``, one per thread; a kernel's column copies of shape ``(T, 0)`` ask for
    rows only, in ``T`` chunks), or one chunk for all rows where ``col_threads`` is 0."""
    chunks = col_threads if col_threads > 0 else 1
    return chunks, (nq + chunks - 1) // chunks


@njit(parallel=True, cache=True)
def nearest_keys(xy, qn, dn, q_gidx, d_gidx, bits, row_key, col_key):  # pragma: no cover - numba
    """Fold one block into packed keys: ``row_key[i] = min(row_key[i], min_j key(i, j))`` with
    ``key(i, j) = (|q_i - d_j|^2 << bits) | d_gidx[j]``; with ``col_key`` of shape ``(T, nd)``
    (T >= 1 row chunks, one per thread), ``col_key[t, j]`` folds ``(... << bits) | q_gidx[i]``
    over chunk t's rows (the caller takes the minimum over t). ``col_key`` of shape ``(T, 0)``:
    rows only, in T chunks.
    ``xy`` (nq, nd) int32/int64 exact shifted dot products; ``qn``/``dn`` int64 shifted norms."""
    nq, nd = xy.shape
    cols = col_key.shape[1] > 0
    n_chunks, per = thread_chunks(nq, col_key.shape[0])
    for t in prange(n_chunks):
        for i in range(t * per, min(nq, (t + 1) * per)):
            a = qn[i]
            qk = q_gidx[i]
            best = row_key[i]
            for j in range(nd):
                v = (a + dn[j] - 2 * np.int64(xy[i, j])) << bits
                k = v | d_gidx[j]
                if k < best:
                    best = k
                if cols:
                    kc = v | qk
                    if kc < col_key[t, j]:
                        col_key[t, j] = kc
            row_key[i] = best


@njit(cache=True)
def _count_within(xy, qn, dn, limit, counts):  # pragma: no cover - numba
    nq, nd = xy.shape
    for i in range(nq):
        c = 0
        a = qn[i] - limit
        for j in range(nd):
            if a + dn[j] <= 2 * np.int64(xy[i, j]):
                c += 1
        counts[i] = c


@njit(cache=True)
def _fill_within(xy, qn, dn, limit, starts, ii, jj, kk):  # pragma: no cover - numba
    nq, nd = xy.shape
    for i in range(nq):
        p = starts[i]
        for j in range(nd):
            v = qn[i] + dn[j] - 2 * np.int64(xy[i, j])
            if v <= limit:
                ii[p], jj[p], kk[p] = i, j, v
                p += 1


def within(xy: np.ndarray, qn: np.ndarray, dn: np.ndarray, limit: int):
    """The pairs of a block whose exact squared distance is ``<= limit``: ``(i, j, k)`` int64, row
    positions, column positions and squared byte distances, sorted by ``(i, j)``."""
    counts = np.empty(xy.shape[0], dtype=np.int64)
    _count_within(xy, qn, dn, np.int64(limit), counts)
    starts = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=starts[1:])
    n = int(starts[-1])
    ii, jj, kk = (np.empty(n, dtype=np.int64) for _ in range(3))
    if n:
        _fill_within(xy, qn, dn, np.int64(limit), starts, ii, jj, kk)
    return ii, jj, kk


__all__ = ["F_CHUNK", "GEMM_BACKENDS", "K_CHUNK", "NO_KEY", "ROWS_BYTES", "ROWS_MAX", "SHORT", "block_rows", "gemm_backend",
           "index_bits", "int8_available", "int_dot", "nearest_keys", "shifted", "shifted_norms", "thread_chunks",
           "within"]
