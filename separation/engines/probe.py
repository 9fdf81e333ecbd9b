"""Exact l-inf search with query-specific pixel probes (the kernels are in ``_probe_kernels``).

:class:`ProbeSearch` indexes a labelled support set once and answers, in one pass over it,
for every query: the nearest point of every class (``all``), the two smallest class distances
(``top2``, for nearest-class classifiers), or the nearest point of *another* class than the query's
own (``other_class``, for separation). All exact: equal to a float64 brute force, ties to the
smallest support index. Distances are float64 in [0, 1] pixel units.
"""
from __future__ import annotations

import time

import numba
import numpy as np

from . import _probe_kernels
from .base import other_class_from_all, top2_from_all
from .blocks import DEFAULT_BLOCKS, CPUBlocks

#: stored byte value -> [0, 1] pixel units (the divisor ``separation`` uses)
BYTE = 255.0
#: exact distances stop after pixels ``[0, 64)``, ``[0, 128)``, ``[0, 256)``, ... once one rules the point out
EXACT_FIRST = 64


class ProbeSearch:
    """Per-class exact l-inf search in one pass over the support, with query-specific probes (the
    CPU engine's :meth:`~separation.engines.CPUEngine.class_search` for l-inf).

    ``support``: ``(n, d)`` uint8 (raw bytes, value/255 in pixel units) or float64 in [0, 1];
    ``labels``: ``(n,)`` class indices ``0..n_classes-1``; ``blocks``: kernel block sizes.
    """

    def __init__(self, support: np.ndarray, labels: np.ndarray, n_classes: int, *,
                 blocks: CPUBlocks = DEFAULT_BLOCKS):
        t0 = time.perf_counter()
        self.blocks = blocks
        self.n_classes = int(n_classes)
        self.class_sizes = np.bincount(np.asarray(labels, dtype=np.int64), minlength=self.n_classes)
        self.support_u8 = support.dtype == np.uint8
        order = np.argsort(labels, kind="stable")
        self.order = order
        support = np.ascontiguousarray(support)
        n, d = support.shape
        self.layout = self._layout(blocks.probe_layout, support.nbytes)
        # row-major rows for exact distances (row perm[j] at class-sorted position j): a sorted
        # copy, or the support as given. The sorted copy also orders the pixels by decreasing
        # spread (a distance does not depend on the pixel order), so an exact distance that can
        # stop early (``stops``) meets a term that rules its point out in the first stretch
        if self.layout == "sorted":
            self.features = self._spread_order(support)
            self.D, self.perm = support[np.ix_(order, self.features)], np.arange(n, dtype=np.int64)
        else:
            self.features = None
            self.D, self.perm = support, order.astype(np.int64)
        self.stops = np.unique(np.minimum(EXACT_FIRST << np.arange(max(1, d).bit_length()), d)).astype(np.int64)
        rc = np.ascontiguousarray(labels[order], dtype=np.int64)
        self.row_cls = rc
        starts, cls, seeds = [], [], []
        for c in range(self.n_classes):
            s, e = int(np.searchsorted(rc, c, "left")), int(np.searchsorted(rc, c, "right"))
            if e == s:
                raise ValueError(f"class index {c} has no support points")
            for a in range(s, e, blocks.probe_support_block):
                starts.append(a)
                cls.append(c)
            k = min(blocks.probe_seeds, e - s)
            if k:
                seeds.extend(np.linspace(s, e - 1, k).round().astype(np.int64).tolist())
        starts.append(n)
        self.blk_start = np.asarray(starts, dtype=np.int64)
        self.blk_cls = np.asarray(cls, dtype=np.int64)
        self.seed_rows = np.unique(np.asarray(seeds, dtype=np.int64))
        # the probing copy, block by block (one block's temporary at a time): block [j0, j1) is a
        # column-major (d, j1 - j0) slab at DT[j0 * d : j1 * d], so a probe reads one short stretch
        # probe histograms: H[h, v, k] = #{support points of group h with byte value < v at pixel k}
        # (threshold-major: a query's thresholds are mostly alike, so its lookups run along a row)
        per_class = self.n_classes * d * 257 * 4 <= blocks.probe_hist_bytes
        H = np.zeros((self.n_classes if per_class else 1, 257, d), dtype=np.int32)
        self.DT = np.empty(n * d, dtype=support.dtype)
        for b, c in enumerate(cls):
            j0, j1 = starts[b], starts[b + 1]
            # the sorted copy already holds the block's rows, pixels in order; else gather them
            slab = (self.D[j0:j1] if self.features is not None else support[order[j0:j1]]).T
            self.DT[j0 * d:j1 * d] = slab.ravel()
            slab8 = slab if self.support_u8 else np.rint(slab * 255.0).astype(np.uint8)
            _probe_kernels.add_counts(H[c if per_class else 0], slab8)
        np.cumsum(H[:, 1:], axis=1, out=H[:, 1:])
        self.H = H
        self.hist_of = (np.arange(self.n_classes, dtype=np.int64) if per_class
                        else np.zeros(self.n_classes, dtype=np.int64))
        self.counts = H[:, 256, 0].astype(np.int64)
        self.build_seconds = time.perf_counter() - t0
        self.last_stats: dict[str, float] = {}
        #: (query, support row) pairs whose exact distance was computed, over every search so far
        self.exact_pairs = 0

    @staticmethod
    def _spread_order(support: np.ndarray, rows: int = 4096, chunk_bytes: int = 4 << 20) -> np.ndarray:
        """Pixel indices by decreasing variance over (at most ``rows`` evenly spaced) support
        points, summed in float64 a few rows at a time (``chunk_bytes`` of them, at least one row)."""
        sample = support[::max(1, len(support) // rows)]
        d = support.shape[1]
        s1, s2 = np.zeros(d), np.zeros(d)
        step = max(1, chunk_bytes // (8 * max(1, d)))
        for a in range(0, len(sample), step):
            blk = sample[a:a + step].astype(np.float64)
            s1 += blk.sum(axis=0)
            s2 += np.einsum("ij,ij->j", blk, blk)
        m = max(1, len(sample))
        return np.argsort(-(s2 / m - (s1 / m) ** 2), kind="stable").astype(np.int64)

    @staticmethod
    def _layout(layout: str, nbytes: int) -> str:
        if layout != "auto":
            return layout
        from ..core.memory import available_bytes
        from .blocks import AUTO_SORTED_FRACTION

        have = available_bytes()
        return "sorted" if have is None or 2 * nbytes <= AUTO_SORTED_FRACTION * have else "given"

    def _query_block(self, m: int) -> int:
        """Queries per parallel task for ``m`` queries: ``probe_query_block`` (a support block is
        read once for that many queries), fewer where that would leave under 4 tasks per thread."""
        return max(1, min(self.blocks.probe_query_block, -(-m // (4 * numba.get_num_threads()))))

    def _prepare(self, q: np.ndarray):
        """Kernel flavour, exact queries and byte bounds for probe choice, for queries from
        ``as_points`` (uint8 bytes, or float64 in [0, 1])."""
        if self.features is not None:
            q = q[:, self.features]
        if q.dtype == np.uint8:
            if self.support_u8:
                q8 = np.ascontiguousarray(q)
                return "u8", q8, q8, q8
            q = q.astype(np.float64) / BYTE
        qf = np.ascontiguousarray(q, dtype=np.float64)
        lo = np.floor(qf * 255.0).clip(0, 255).astype(np.uint8)
        hi = np.ceil(qf * 255.0).clip(0, 255).astype(np.uint8)
        return ("f64u8" if self.support_u8 else "f64"), qf, lo, hi

    def _run(self, q: np.ndarray, top2: bool):
        """``(dist (m, C) in [0, 1], bidx (m, C))`` for queries ``q``, in chunks of ``probe_query_chunk``."""
        step = self.blocks.probe_query_chunk
        parts = [self._run_chunk(q[s:s + step], top2, None, False) for s in range(0, max(len(q), 1), step)]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    def _run_chunk(self, q: np.ndarray, top2: bool, own: np.ndarray | None, raw: bool, bound=None):
        from ..core.progress import compiling_notice

        compiling_notice(_probe_kernels.scan, "l-inf probe search")
        kind, QX, QLO8, QHI8 = self._prepare(q)
        m = len(QX)
        if kind == "u8":
            best = np.full((m, self.n_classes), _probe_kernels.BIG_INT, dtype=np.int64)
        else:
            best = np.full((m, self.n_classes), np.inf)
        if bound is not None:  # as if met before every class block: only strictly closer points are searched
            b = np.asarray(bound, dtype=np.float64)
            finite = np.isfinite(b)
            best[finite] = b[finite, None]  # u8: integral byte distances, exact in int64
        bidx = np.full((m, self.n_classes), -1, dtype=np.int64)
        stats = np.zeros((m, 2), dtype=np.int64)
        t0 = time.perf_counter()
        if own is None:
            own = np.full(m, -1, dtype=np.int64)
        # seeds give each query a finite limit to start from; a finite bound for every query is one
        seeds = self.seed_rows if bound is None or not np.isfinite(bound).all() else self.seed_rows[:0]
        _probe_kernels.scan(QX, QLO8, QHI8, self.DT, self.D, self.perm, self.H, self.hist_of, self.counts,
                            self.blk_start, self.blk_cls, self.row_cls, seeds, best, bidx, top2,
                            self.blocks.probe_max, stats, own, self._query_block(m),
                            self.blocks.probe_step, self.stops)
        self.exact_pairs += int(stats[:, 1].sum())
        self.last_stats = {"kind": kind, "seconds": time.perf_counter() - t0,
                           "exact_rows_per_query": float(stats[:, 1].mean()) if m else 0.0,
                           "probes_per_query": float(stats[:, 0].mean()) if m else 0.0}
        # bytes -> pixel units exactly as ``separation`` reports them (k / 255, correctly rounded)
        dist = best.astype(np.float64) / (1.0 if raw else BYTE) if kind == "u8" else best
        if bound is not None:
            dist[bidx < 0] = np.inf  # nothing strictly closer than the bound
        return dist, bidx

    def all(self, q: np.ndarray):
        """``(dist (m, C) float64 in [0, 1], idx (m, C))``; ``idx`` are positions in the support as given."""
        dist, bidx = self._run(q, top2=False)
        return dist, self.order[bidx]

    def top2(self, q: np.ndarray):
        """``(pred class index (m,), smallest (m,), second smallest (m,))`` class distances."""
        dist, _ = self._run(q, top2=True)
        return top2_from_all(dist)

    def other_class(self, q: np.ndarray, own: np.ndarray, *, raw: bool = False, progress=None, bound=None):
        """Nearest support point of a class other than ``own`` (``(m,)`` class indices, -1: any):
        ``(distances (m,), indices (m,))``, ties to the smallest support index. Distances are in
        pixel units, or in stored units (bytes for uint8 data) with ``raw``. Queries run in chunks:
        the working arrays stay bounded however many queries there are; after each chunk
        ``progress`` (a callable) gets the number of (query, other-class point) pairs it covered.
        ``bound`` ``(m,)`` (stored units: bytes for uint8 data; inf: none): only points strictly closer are
        searched, and a query with none gets ``(inf, -1)`` (a streamed pass gives the answer of the
        blocks before, whose rows win every tie)."""
        own = np.ascontiguousarray(own, dtype=np.int64)
        out_d, out_i = np.empty(len(q)), np.empty(len(q), dtype=np.int64)
        step = self.blocks.probe_query_chunk
        if progress is not None:  # about 32 updates, so that a bar shows a rate and an estimate
            step = min(step, max(1024, -(-len(q) // 32)))
        others = len(self.order) - np.append(self.class_sizes, 0)[own]  # own = -1: every point
        for s in range(0, len(q), step):
            dist, bidx = self._run_chunk(q[s:s + step], False, own[s:s + step], raw,
                                         None if bound is None else bound[s:s + step])
            idx = np.where(bidx >= 0, self.order[np.maximum(bidx, 0)], -1)
            out_d[s:s + step], out_i[s:s + step] = other_class_from_all(dist, idx, own[s:s + step])
            if progress is not None:
                progress(int(others[s:s + step].sum()))
        return out_d, out_i


__all__ = ["BYTE", "ProbeSearch"]
