"""Exact range search across classes: every pair of differently-labelled points within a radius.

Backends (each returns ``(i, j, d)`` -- query positions, database positions, distances in
[0, 1] pixel units -- for every cross-class pair with ``d <= radius``):

* :func:`cpu_pairs`: the numba kernel of ``_conflict_kernels`` (l-inf, l1; exact early exit on
  variance-ordered features), l2 through :func:`gemm_pairs` on the host;
* :func:`gemm_pairs`: bytes on the CPU: the exact integer GEMM of :mod:`._int_l2` (integer squared
  distances, nothing rechecked); otherwise float32 GEMM with the rigorous rounding bound of
  :mod:`.gemm`, every pair within the bound rechecked exactly (integers for bytes); any torch device;
* :func:`torch_pairs`: torch blocks on a device (``torch.cdist``: exact for bytes held as float32),
  l2 through :func:`gemm_pairs` -- what the ``cuda`` engine runs;
* :func:`reference_pairs`: float64 brute force in blocks (the tests' ground truth).

Exactness: the radius is an exact rational ``R`` (:func:`~separation.core.threat.exact_eps`: a
Fraction, text such as ``"251/510"``, a float as the decimal of its shortest repr, ``0.3`` is
3/10). For bytes a pair is within it iff its exact distance (``k / 255``, for l2 ``sqrt(k) / 255``,
``k`` the integer distance in byte units, squared for l2) is ``<= R``, i.e. ``k <= floor(255 R)``
(l2: ``k <= floor((255 R)**2)``): :func:`byte_limit` computes that integer once, in exact
arithmetic, so the kernels compare integers and no float rounding decides a tie. Floats: the
float64 distance of :func:`~separation.engines.reference.pairwise_float64` ``<=`` the float nearest
to ``R`` (:func:`float_radius`; candidates found with a margin are recomputed by that formula).
Memory grows with the number of pairs found, not with the number of points squared: 16 bytes a
pair while searching (:class:`PairSink`), 40 while they are sorted into the 24-byte result.
"""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from ..core.errors import LimitError
from ..core.extras import require
from ..core.threat import eps_text, exact_eps
from .exact import float_distances, pairwise_float64

#: Queries per kernel call (bounds the per-query buffers; progress is reported per call).
QUERY_CHUNK = 4096
#: Pair slots per query in the first pass (queries with more are rerun with enough slots).
FIRST_CAP = 64
#: Pair slots per kernel call at most (its buffers and their copies: about 60 bytes a slot), but one query.
PASS_SLOTS = 1 << 18
#: Relative margin of the float candidate tests (sums in another order differ by far less).
FLOAT_MARGIN = 1e-9


def reported(k, norm: str):
    """The toolkit's distance in [0, 1] units of integer byte distances ``k`` (l2: squared)."""
    k = np.asarray(k, dtype=np.float64)
    return (np.sqrt(k) if norm == "l2" else k) / 255.0


def byte_distances(d, norm: str, dtype=np.int64) -> np.ndarray:
    """The integer byte distances ``k`` (l2: squared) of reported distances ``d`` (:func:`reported`
    inverted: exact, the rounding of ``k / 255`` is far below 1/2 of a unit of ``k``); int64, or
    ``dtype=np.float64`` for the same integers held in floats (one array, no copy)."""
    x = np.asarray(np.asarray(d, dtype=np.float64) * 255.0)
    if norm == "l2":
        np.square(x, out=x)
    np.rint(x, out=x)
    return x.astype(dtype, copy=False)


def exact_radius(radius) -> Fraction:
    """``radius`` as the exact rational it spells (:func:`~separation.core.threat.exact_eps`)."""
    return exact_eps(radius, "radius")


def float_radius(radius) -> float:
    """The float nearest to the exact ``radius``: what float data are compared with."""
    return float(exact_radius(radius))


def byte_limit(radius, norm: str, d: int) -> int:
    """The largest integer byte distance ``k`` (for l2 the squared distance) whose exact distance
    ``k / 255`` (l2: ``sqrt(k) / 255``) is ``<= radius``, at most the largest of ``d`` features:
    ``floor(255 R)`` (l2: ``floor((255 R)**2)``) for the exact radius ``R`` (:func:`exact_radius`),
    in integer arithmetic. ``R >= 0``, so it is ``>= 0``: distance 0 is always within."""
    top = {"linf": 255, "l1": 255 * d, "l2": 255 * 255 * d}[norm]
    x = exact_radius(radius) * 255
    if norm == "l2":
        x = x * x
    return min(top, x.numerator // x.denominator)


class Layout:
    """Queries and database sorted by class, and the database range of each query's own class."""

    def __init__(self, yq: np.ndarray, yd: np.ndarray, same_set: bool):
        self.same_set = same_set
        self.d_order = np.argsort(yd, kind="stable")
        self.q_order = self.d_order if same_set else np.argsort(yq, kind="stable")
        ysd = yd[self.d_order]
        ysq = yq[self.q_order]
        self.own_start = np.searchsorted(ysd, ysq, "left")
        self.own_end = np.searchsorted(ysd, ysq, "right")
        self.nd = len(yd)
        self.classes = np.unique(ysq)
        self.q_bounds = [(int(np.searchsorted(ysq, c, "left")), int(np.searchsorted(ysq, c, "right")))
                         for c in self.classes]

    def ranges(self, lo: int, hi: int):
        """``(s1, e1, s2, e2)`` of the sorted queries ``lo..hi``: the database positions of the
        other classes (same set: only the classes after the query's own, each pair once)."""
        s, e = self.own_start[lo:hi], self.own_end[lo:hi]
        if self.same_set:
            zero = np.zeros(hi - lo, np.int64)
            return zero, zero, e.astype(np.int64), np.full(hi - lo, self.nd, np.int64)
        return np.zeros(hi - lo, np.int64), s.astype(np.int64), e.astype(np.int64), np.full(hi - lo, self.nd, np.int64)

    def class_blocks(self):
        """``(qs, qe, [(ds, de), ...])``: for each class, its sorted query positions and the
        database position ranges it is compared with."""
        for qs, qe in self.q_bounds:
            if qe == qs:
                continue
            s, e = int(self.own_start[qs]), int(self.own_end[qs])
            parts = [(e, self.nd)] if self.same_set else [(0, s), (e, self.nd)]
            yield qs, qe, [(a, b) for a, b in parts if b > a]

    def blocks(self, rows: int):
        """``(qa, qb, [(da, db), ...], work)``: the sorted queries in blocks of at most ``rows`` (never
        across a class), the database blocks each is compared with, and its pair comparisons."""
        for qs, qe, parts in self.class_blocks():
            d_blocks = [(da, min(de, da + rows)) for ds, de in parts for da in range(ds, de, rows)]
            for qa in range(qs, qe, rows):
                qb = min(qe, qa + rows)
                yield qa, qb, d_blocks, int((qb - qa) * sum(b - a for a, b in parts))

    def work(self) -> int:
        """Pair comparisons of the whole search (the unit of progress)."""
        return int(sum((qe - qs) * sum(b - a for a, b in parts) for qs, qe, parts in self.class_blocks()))


class TooManyPairs(LimitError):
    """A search that found more than its ``max_pairs`` pairs (a :class:`LimitError`, a MemoryError)."""


def too_many_pairs(max_pairs: int, radius) -> TooManyPairs:
    """The error of a search that found more than ``max_pairs`` pairs, with its remedy."""
    return TooManyPairs(f"more than {max_pairs:,} cross-class pairs lie within radius {eps_text(radius)}; pass a "
                        "smaller radius (or a larger max_pairs if the memory allows)")


class PairSink:
    """Collects the pairs of a search as they are found and returns them sorted by ``(i, j)``.

    ``add`` takes positions in the class-sorted order of ``layout`` (query, database) and keeps
    input indices (one set: ``i < j``) as int32 where the points allow it, with float64 distances:
    16 bytes per pair. :meth:`arrays` sorts them by a counting sort on ``i`` into the int64 / float64
    result (24 bytes per pair, the chunks released as they are placed): the peak is 40 bytes per pair.
    Raises :class:`TooManyPairs` past ``max_pairs`` (``radius`` is for its message)."""

    def __init__(self, max_pairs: int | None, radius: float, layout: Layout):
        self.parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.n = 0
        self.max_pairs = max_pairs
        self.radius = radius
        self.layout = layout
        self.rows = len(layout.q_order)
        self.index = np.int32 if max(self.rows, layout.nd) < 2**31 else np.int64
        self.q_order, self.d_order = layout.q_order.astype(self.index), layout.d_order.astype(self.index)

    def add(self, i, j, d) -> None:
        """Pairs ``(i, j, d)``: sorted query and database positions, distances in [0, 1] units."""
        if len(i) == 0:
            return
        self.n += len(i)
        if self.max_pairs is not None and self.n > self.max_pairs:
            raise too_many_pairs(self.max_pairs, self.radius)
        i, j = self.q_order[np.asarray(i)], self.d_order[np.asarray(j)]
        if self.layout.same_set:
            i, j = np.minimum(i, j), np.maximum(i, j)
        self.parts.append((i, j, np.asarray(d, np.float64)))

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(i int64, j int64, d float64)`` of every pair, sorted by ``(i, j)``; the parts are released."""
        from ._pair_order import scatter_rows, sort_rows

        starts = np.zeros(self.rows + 1, np.int64)
        for i, _, _ in self.parts:
            starts[1:] += np.bincount(i, minlength=self.rows)
        np.cumsum(starts, out=starts)
        out_i, out_j, out_d = np.empty(self.n, np.int64), np.empty(self.n, np.int64), np.empty(self.n)
        cursor = starts[:-1].copy()
        while self.parts:  # the newest first: its memory is the first the allocator can give back
            scatter_rows(*self.parts.pop(), cursor, out_i, out_j, out_d)
        sort_rows(starts, out_j, out_d)
        return out_i, out_j, out_d


def _feature_order(x: np.ndarray) -> np.ndarray:
    sample = x[:: max(1, len(x) // 4096)].astype(np.float64)
    return np.argsort(-sample.var(axis=0), kind="stable")


def cpu_pairs(xq, yq, xd, yd, *, same_set: bool, norm: str, radius: float, max_pairs=None, progress=None,
              query_chunk: int = QUERY_CHUNK, first_cap: int = FIRST_CAP, chunk: int = 16, device_rows=None,
              integer=None):
    """The numba kernel (l-inf, l1) or the host GEMM (l2, ``integer`` as in :func:`gemm_pairs`); see
    the module docstring."""
    if norm == "l2":
        return gemm_pairs(xq, yq, xd, yd, same_set=same_set, radius=radius, max_pairs=max_pairs,
                          progress=progress, block_rows=device_rows, integer=integer)
    from ._conflict_kernels import range_kernel

    lay = Layout(yq, yd, same_set)
    perm = _feature_order(xd)
    D = np.ascontiguousarray(xd[lay.d_order][:, perm])
    Q = D if same_set else np.ascontiguousarray(xq[lay.q_order][:, perm])
    is_bytes = D.dtype == np.uint8
    if is_bytes:
        limit, zero = np.int64(byte_limit(radius, norm, D.shape[1])), np.int64(0)
    else:
        rf = float_radius(radius)
        limit, zero = np.float64(rf * (1 + FLOAT_MARGIN) if norm == "l1" else rf), np.float64(0.0)
    sink = PairSink(max_pairs, radius, lay)
    for lo in range(0, len(Q), query_chunk) if limit >= 0 else ():
        hi = min(len(Q), lo + query_chunk)
        s1, e1, s2, e2 = lay.ranges(lo, hi)
        rows = np.arange(lo, hi)
        caps = np.full(len(rows), first_cap, np.int64)
        while len(rows):  # a second pass only for the queries with more pairs than slots; batches of PASS_SLOTS
            b = max(1, int(np.searchsorted(np.cumsum(caps), PASS_SLOTS, "right")))
            rest, rest_caps, rows, caps = rows[b:], caps[b:], rows[:b], caps[:b]
            k = rows - lo
            offsets = np.concatenate([[0], np.cumsum(caps)[:-1]]).astype(np.int64)
            out_j = np.empty(int(caps.sum()), np.int64)
            out_d = np.empty(int(caps.sum()), limit.dtype)
            counts = np.empty(len(rows), np.int64)
            range_kernel(Q[rows], D, s1[k], e1[k], s2[k], e2[k], limit, norm == "linf", zero, chunk, offsets, caps,
                         out_j, out_d, counts)
            fits = counts <= caps
            cf = counts[fits]
            take = np.repeat(offsets[fits] - (np.cumsum(cf) - cf), cf) + np.arange(int(cf.sum()))
            ii = np.repeat(rows[fits], counts[fits])
            jj, dd = out_j[take], out_d[take]
            if is_bytes:
                dd = reported(dd, norm)
            else:
                # the reference formula, on the rows in their own feature order (sums depend on it)
                dd = float_distances(xq, xd, lay.q_order[ii], lay.d_order[jj], norm)
                keep = dd <= rf
                ii, jj, dd = ii[keep], jj[keep], dd[keep]
            sink.add(ii, jj, dd)
            rows, caps = np.concatenate([rest, rows[~fits]]), np.concatenate([rest_caps, counts[~fits]])
        if progress is not None:
            progress(int(((e1 - s1) + (e2 - s2)).sum()))
    return sink.arrays()


def _block_rows(dim: int, device) -> int:
    budget = (1 << 30) if getattr(device, "type", "cpu") == "cuda" else (64 << 20)
    return max(256, min(8192, budget // max(1, 4 * max(dim, 2048))))


def gemm_pairs(xq, yq, xd, yd, *, same_set: bool, radius: float, max_pairs=None, progress=None, device="cpu",
               block_rows=None, integer=None, norm="l2"):
    """l2: the exact integer GEMM for bytes on the CPU (``integer``, default there), else float32 GEMM
    blocks with the exact recheck; ``norm="l1"`` (bytes, CPU): the exact l1 where the l2 bound is
    within the radius (:func:`._l1_bound.within`). Sets are converted once (:class:`~.gemm._Rows`)."""
    from . import _l1_bound
    from ._int_l2 import block_rows as int_block_rows, int_dot, within
    from .gemm import U32, _exact_sq, _Rows, _setup, torch

    lay = Layout(yq, yd, same_set)
    D = np.ascontiguousarray(xd[lay.d_order])
    Q = D if same_set else np.ascontiguousarray(xq[lay.q_order])
    device, integer, _ = _setup(device, integer, D, Q, norm=norm)
    is_bytes = D.dtype == np.uint8
    dim = D.shape[1]
    rf = float_radius(radius)
    if is_bytes:
        k2 = byte_limit(radius, norm, dim)
        lim2 = float(k2)
    else:
        k2 = 0
        lim2 = rf * rf * (1 + FLOAT_MARGIN)
    rows = block_rows or (int_block_rows(dim) if integer else _block_rows(dim, device))
    gamma = (dim + 4) * U32 / (1 - (dim + 4) * U32)
    sink = PairSink(max_pairs, radius, lay)
    if is_bytes and k2 < 0:
        return sink.arrays()
    d_rows = _Rows(D, device, integer)
    q_rows = d_rows if same_set else _Rows(Q, device, integer)
    for qa, qb, d_blocks, work in lay.blocks(rows):
        Qt, Qop, qn = q_rows.block(qa, qb)
        qnorm = None if integer else qn.sqrt()
        for da, db in d_blocks:
            Dt, Dop, dn = d_rows.block(da, db)
            if norm == "l1":  # exact l1 where the exact l2 allows it
                ii, jj, kk = _l1_bound.within(Q[qa:qb], D[da:db], int_dot(Qop, Dop).numpy(), qn, dn, k2)
                sink.add(ii + qa, jj + da, reported(kk, "l1"))
                continue
            if integer:  # exact squared distances: the pairs within k2, nothing to recheck
                ii, jj, kk = within(int_dot(Qop, Dop).numpy(), qn, dn, k2)
                sink.add(ii + qa, jj + da, reported(kk, "l2"))
                continue
            dmax = dn.sqrt().max()
            d2 = Qop @ Dop.T
            d2.mul_(-2.0).add_(qn.to(torch.float32)[:, None]).add_(dn.to(torch.float32)[None, :])
            tol = 2 * gamma * qnorm * dmax + 4 * U32 * (qn + dmax * dmax + 2 * qnorm * dmax)
            lim = ((lim2 + tol) * (1 + 8 * U32)).to(torch.float32)
            r, c = torch.nonzero(d2 <= lim[:, None], as_tuple=True)
            if len(r) == 0:
                continue
            ii = r.cpu().numpy() + qa
            jj = c.cpu().numpy() + da
            if is_bytes:
                ex = _exact_sq(Qt, Dt, r, c).cpu().numpy()
                keep = ex <= lim2
                dd = reported(ex[keep], "l2")
            else:
                dd = float_distances(Q, D, ii, jj, "l2")
                keep = dd <= rf
                dd = dd[keep]
            sink.add(ii[keep], jj[keep], dd)
        if progress is not None:
            progress(work)
    return sink.arrays()


def torch_pairs(xq, yq, xd, yd, *, same_set: bool, norm: str, radius: float, max_pairs=None, progress=None,
                device="cuda", block_rows=None):
    """Torch blocks on ``device``: ``torch.cdist`` (bytes as float32: exact) for l-inf / l1, the
    GEMM search for l2."""
    if norm == "l2":
        return gemm_pairs(xq, yq, xd, yd, same_set=same_set, radius=radius, max_pairs=max_pairs,
                          progress=progress, device=device, block_rows=block_rows)
    torch = require("torch", "the range search on a torch device")

    device = torch.device(device)
    lay = Layout(yq, yd, same_set)
    D = np.ascontiguousarray(xd[lay.d_order])
    Q = D if same_set else np.ascontiguousarray(xq[lay.q_order])
    is_bytes = D.dtype == np.uint8
    dtype = torch.float32 if is_bytes else torch.float64
    p = float("inf") if norm == "linf" else 1.0
    rf = float_radius(radius)
    if is_bytes:
        lim = float(byte_limit(radius, norm, D.shape[1]))
    else:
        lim = rf * (1 + FLOAT_MARGIN) if norm == "l1" else rf
    rows = block_rows or _block_rows(D.shape[1], device)
    sink = PairSink(max_pairs, radius, lay)
    for qa, qb, d_blocks, work in lay.blocks(rows):
        Qt = torch.from_numpy(Q[qa:qb]).to(device=device).to(dtype)
        for da, db in d_blocks:
            Dt = torch.from_numpy(D[da:db]).to(device=device).to(dtype)
            dist = torch.cdist(Qt, Dt, p=p, compute_mode="donot_use_mm_for_euclid_dist")
            r, c = torch.nonzero(dist <= lim, as_tuple=True)
            if len(r) == 0:
                continue
            ii, jj = r.cpu().numpy() + qa, c.cpu().numpy() + da
            if is_bytes:
                dd = reported(np.rint(dist[r, c].double().cpu().numpy()), norm)
            else:
                dd = float_distances(Q, D, ii, jj, norm)
                keep = dd <= rf
                ii, jj, dd = ii[keep], jj[keep], dd[keep]
            sink.add(ii, jj, dd)
        if progress is not None:
            progress(work)
    return sink.arrays()


def reference_pairs(xq, yq, xd, yd, *, same_set: bool, norm: str, radius: float, max_pairs=None, progress=None,
                    block_bytes: int = 64 << 20):
    """float64 brute force in blocks (:func:`~separation.engines.reference.pairwise_float64`); bytes
    compared as integers with :func:`byte_limit` (the float64 distances of bytes are exact integers,
    l2 their square roots), floats with :func:`float_radius`."""
    lay = Layout(yq, yd, same_set)
    D = xd[lay.d_order]
    Q = D if same_set else xq[lay.q_order]
    is_bytes = D.dtype == np.uint8
    limit = byte_limit(radius, norm, D.shape[1]) if is_bytes else float_radius(radius)
    rows = max(1, min(4096, int(math.sqrt(block_bytes / max(1, 8 * D.shape[1])))))
    sink = PairSink(max_pairs, radius, lay)
    for qa, qb, d_blocks, work in lay.blocks(rows):
        for da, db in d_blocks:
            dist = pairwise_float64(Q[qa:qb], D[da:db], norm)
            if is_bytes:
                r, c = np.nonzero((np.rint(dist * dist) if norm == "l2" else dist) <= limit)
                dist = dist / 255.0
            else:
                r, c = np.nonzero(dist <= limit)
            sink.add(r + qa, c + da, dist[r, c])
        if progress is not None:
            progress(work)
    return sink.arrays()


__all__ = ["FIRST_CAP", "FLOAT_MARGIN", "Layout", "PASS_SLOTS", "PairSink", "QUERY_CHUNK", "byte_distances",
           "byte_limit", "cpu_pairs", "exact_radius", "float_distances", "float_radius", "gemm_pairs",
           "reference_pairs", "reported", "too_many_pairs", "torch_pairs", "TooManyPairs"]
