"""One block pair of a pass, computed from its rows, and the merge of many: what a cluster task
(:mod:`~separation.engines.block_tasks`) and the CPU engine's streamed passes
(:mod:`~separation.engines.streamed`) both run, so both give the in-memory engine's answer bit
for bit.

A block pair is described by anything with ``kind`` (``"rows"``, ``"pair"`` or ``"range"``),
``q_range``, ``d_range`` (row ranges ``(lo, hi)`` of the query and database sets) and
``diagonal`` (a block of one set against itself): a :class:`~.block_tasks.BlockTask`, or a
:class:`Span`. Rows are read by callables ``read(lo, hi) -> (x (hi - lo, d), y (hi - lo,))``.
"""
from __future__ import annotations

import dataclasses
from collections import OrderedDict
from typing import Callable, Hashable

import numpy as np

from ..core.errors import LimitError
from .base import cross_pairs, merge_better

_BIG = np.iinfo(np.int64).max


@dataclasses.dataclass(frozen=True)
class Span:
    """One block pair of a pass run in this process (no store, no shard)."""

    kind: str
    q_range: tuple[int, int]
    d_range: tuple[int, int]
    diagonal: bool = False


def globalize(i: np.ndarray, offset: int) -> np.ndarray:
    """Block-local indices to rows of the whole set; -1 (none) stays -1."""
    return np.where(i >= 0, i + offset, -1).astype(np.int64)


def nearest_vectors(engine, span, norm: str, read_q: Callable, read_d: Callable,
                    prepared: Callable | None = None, bound: np.ndarray | None = None) -> list[np.ndarray]:
    """``[d, i]`` for ``rows`` and diagonal block pairs, ``[d_q, i_q, d_d, i_d]`` for off-diagonal
    pairs: stored-unit distances, global indices (-1: no other-label row in the block).
    ``prepared(load)``: the engine's prepared database block (a cache), else prepared here.
    ``bound``: for ``rows``, the queries' answers from database rows before this block (see
    :meth:`~separation.engines.Engine.prepare`)."""
    (a0, a1), (b0, b1) = span.q_range, span.d_range
    qx, qy = read_q(a0, a1)
    if span.diagonal:
        d, i = engine.cross_class(qx, qy, qx, qy, norm=norm, same_set=True)
        return [d, globalize(i, a0)]

    def load():
        return read_d(b0, b1)

    if span.kind == "pair":
        da, ia, db, ib = engine.block_pair(qx, qy, *load(), norm=norm)
        return [da, globalize(ia, b0), db, globalize(ib, a0)]
    search = prepared(load) if prepared is not None else engine.prepare(*load(), norm=norm)
    d, i = search(qx, qy) if bound is None else search(qx, qy, bound=bound)
    return [d, globalize(i, b0)]


def range_vectors(engine, span, norm: str, read_q: Callable, read_d: Callable, *, radius, max_pairs,
                  index_dtype=np.int64) -> list[np.ndarray] | None:
    """``[i, j, d]`` of a ``range`` block pair: global indices (``index_dtype``), distances
    (float64, [0, 1] pixel units), sorted by ``(i, j)``; None when the block alone has more than
    ``max_pairs`` pairs (the caller raises)."""
    (a0, a1), (b0, b1) = span.q_range, span.d_range
    qx, qy = read_q(a0, a1)
    dx, dy = (qx, qy) if span.diagonal else read_d(b0, b1)
    try:
        i, j, d = engine.range_search(qx, qy, dx, dy, norm=norm, radius=radius, same_set=span.diagonal,
                                      max_pairs=max_pairs)
    except LimitError:
        return None
    return [(i + a0).astype(index_dtype), (j + b0).astype(index_dtype), np.asarray(d, np.float64)]


class NearestMerge:
    """The nearest other-label database row of every query, from the vectors of block pairs in
    any order: the tie rule of :func:`~separation.engines.merge_better` (smaller distance, then
    smaller index), so the result equals one search over everything. ``progress`` gets the
    number of (query, other-label row) pairs each block pair covered."""

    def __init__(self, y_query, y_db, progress=None):
        self.yq, self.yd = np.asarray(y_query), np.asarray(y_db)
        self.best_d = np.full(len(self.yq), np.inf)
        self.best_i = np.full(len(self.yq), _BIG, dtype=np.int64)
        self.progress = progress

    def add(self, span, vectors) -> None:
        spans = [span.q_range] + ([span.d_range] if len(vectors) == 4 else [])
        for (lo, hi), d, i in zip(spans, vectors[0::2], vectors[1::2]):
            merge_better(self.best_d[lo:hi], self.best_i[lo:hi], d, np.where(i < 0, _BIG, i))
        if self.progress is not None:
            n = block_pairs_count(span, self.yq, self.yd)
            self.progress(n if span.kind == "rows" or span.diagonal else 2 * n)

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """``(distances (nq,), indices (nq,))``: inf / -1 where no other-label row exists."""
        out_i = self.best_i.copy()
        out_i[out_i == _BIG] = -1
        return self.best_d, out_i


class Recent:
    """The last ``size`` values made, by key (a prepared database block, a block read): a value
    used again moves to the end; the least recently used goes *before* a new one is made, so at
    most ``size`` are ever held."""

    def __init__(self, size: int = 1):
        self.size = size
        self._held: OrderedDict = OrderedDict()

    def __len__(self) -> int:
        return len(self._held)

    def get(self, key: Hashable, make: Callable[[], object]):
        if key in self._held:
            self._held.move_to_end(key)
            return self._held[key]
        while len(self._held) >= max(1, self.size):
            self._held.popitem(last=False)
        value = self._held[key] = make()
        return value

    def clear(self) -> int:
        """Drop every value; how many there were."""
        n = len(self._held)
        self._held.clear()
        return n


def block_pairs_count(span, y_query, y_db) -> int:
    """(query row, other-label database row) pairs of the block pair, each direction counted."""
    (a0, a1), (b0, b1) = span.q_range, span.d_range
    return cross_pairs(y_query[a0:a1], y_db[b0:b1])


__all__ = ["NearestMerge", "Recent", "Span", "block_pairs_count", "globalize", "nearest_vectors", "range_vectors"]
