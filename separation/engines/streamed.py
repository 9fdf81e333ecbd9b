"""Out of core in one process: a search over points larger than the engine's ``stream_bytes``,
block pair by block pair, reading each block from disk when it is needed.

The passes are cut by the cluster's block plan (:func:`~.block_plan.plan_blocks`) and each block
pair is computed and merged by the same functions as a cluster task (:mod:`~.block_pairs`), so the
answer equals the in-memory search bit for bit. Memory holds two blocks and the engine's work on
them, whatever the size of the points. Points that are a memory-mapped file (a decoded image
store, ``np.load(..., mmap_mode="r")``) are read with positioned reads: the mapping itself is never
touched, so the file's pages do not stay in this process's memory.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core.arrays import mapped_file
from ..core.errors import DataError
from .block_pairs import NearestMerge, Recent, Span, nearest_vectors, range_vectors
from .block_plan import plan_blocks
from .range_merge import RangeMerge


def row_reader(x: np.ndarray, y: np.ndarray):
    """``read(lo, hi) -> (x[lo:hi] in memory, y[lo:hi])`` for ``x`` ``(n, d)``: a positioned read
    of the file when ``x`` is memory-mapped, else a copy of the rows."""
    y = np.asarray(y)
    where = mapped_file(x)
    if where is None:
        return lambda lo, hi: (np.array(x[lo:hi]), y[lo:hi])
    path, offset = where
    row = x.shape[1] * x.itemsize

    def read(lo, hi):
        out = np.empty((hi - lo, x.shape[1]), x.dtype)
        with open(path, "rb") as f:
            f.seek(offset + lo * row)
            got = f.readinto(memoryview(out.reshape(-1).view(np.uint8))) if out.size else 0
        if got != out.nbytes:
            raise DataError(f"{Path(path)} is shorter than the array mapped from it (the file was truncated while in "
                            "use); load the data again")
        return out, y[lo:hi]

    return read


def _keep_last(fn):
    """``fn`` with its last result kept (:class:`Recent`): consecutive block pairs that share a
    block (a row of pairs, one database block) read or prepare it once."""
    held = Recent(1)
    return lambda *key: held.get(key, lambda: fn(*key))


def _spans(engine, n_query, n_db, x, block_bytes, pairs):
    row_bytes = x.shape[1] * x.itemsize
    rows = max(1, block_bytes // max(1, row_bytes))
    kind, _, _, spans = plan_blocks(n_query, n_db, row_bytes, pairs=pairs, threads=1, block_size=(rows, rows))
    engine.streamed["passes"] += 1
    engine.streamed["blocks"] += len(spans)
    return kind, spans


def stream_cross_class(engine, x_query, y_query, x_db, y_db, *, norm, same_set, block_bytes, progress=None):
    """``engine.cross_class`` over blocks of at most ``block_bytes`` of points (at least one row):
    ``(distances, indices)`` in stored units, equal to the in-memory search. Train--train with a
    kernel that visits each pair once goes by square blocks ``I <= J``; otherwise every (query
    block, database block), database-block-major, with the database block prepared once and
    searched only for points closer than what the blocks before it gave (a search's ``bound``)."""
    pairs = same_set and engine.pairs_once(norm, x_query.dtype)
    kind, spans = _spans(engine, len(x_query), len(x_db), x_query, block_bytes, pairs)
    read_q, read_d = _keep_last(row_reader(x_query, y_query)), row_reader(x_db, y_db)
    prepare = _keep_last(lambda lo, hi: engine.prepare(*read_d(lo, hi), norm=norm))
    merged = NearestMerge(y_query, y_db, progress)
    for a, b in spans:
        span = Span(kind, a, b, diagonal=kind == "pair" and a == b)
        # rows: database blocks in increasing order, so the answer so far wins every tie (a bound)
        bound = merged.best_d[a[0]:a[1]] if kind == "rows" else None
        merged.add(span, nearest_vectors(engine, span, norm, read_q, read_d, prepared=lambda load, b=b: prepare(*b),
                                         bound=bound))
    return merged.arrays()


def stream_range_search(engine, x_query, y_query, x_db, y_db, *, norm, radius, same_set, max_pairs, block_bytes,
                        progress=None):
    """``engine.range_search`` over blocks of at most ``block_bytes`` of points: ``(i, j, d)``
    sorted by ``(i, j)``, equal to the in-memory search; ``same_set``: square blocks ``I <= J``."""
    _, spans = _spans(engine, len(x_query), len(x_db), x_query, block_bytes, same_set)
    read_q, read_d = _keep_last(row_reader(x_query, y_query)), row_reader(x_db, y_db)
    merged = RangeMerge(max_pairs, radius, np.asarray(y_query), np.asarray(y_db), progress)
    for a, b in spans:
        span = Span("range", a, b, diagonal=same_set and a == b)
        merged.add(span, range_vectors(engine, span, norm, read_q, read_d, radius=radius, max_pairs=max_pairs))
    return merged.arrays()


__all__ = ["row_reader", "stream_cross_class", "stream_range_search"]
