"""Exact CPU engine: numba kernels for l-inf / l1; l2 on bytes by exact distances where a pooled lower bound cannot rule a pair out, else a float32 GEMM with an exact recheck.

Train--train work is done once per *pair* of classes: the points are sorted by class and class
``a`` is compared with the block of all classes after it, updating both sides. Features are put
in order of decreasing variance so the kernels' exact early exit triggers early.
"""
from __future__ import annotations

import numpy as np

from ..core.arrays import content_digest
from ..core.errors import InvalidInputError, InvalidTypeError
from ..core.extras import installed
from .base import Engine, merge_better
from .block_pairs import Recent
from .blocks import DEFAULT_BLOCKS, CPUBlocks
from .conflicts import cpu_pairs, gemm_pairs

_SENTINEL_INT = np.iinfo(np.int64).max


def _init_best(n: int, dtype) -> tuple[np.ndarray, np.ndarray]:
    if dtype == np.uint8:
        best = np.full(n, _SENTINEL_INT, dtype=np.int64)
    else:
        best = np.full(n, np.inf)
    return best, np.full(n, _SENTINEL_INT, dtype=np.int64)


def _finish(best, idx):
    """Sentinels to (inf, -1); distances to float64."""
    missing = idx == _SENTINEL_INT
    out_d = best.astype(np.float64)
    out_d[missing] = np.inf
    out_i = idx.copy()
    out_i[missing] = -1
    return out_d, out_i


def _acc_zero(dtype):
    """Accumulator zero: int64 for bytes (exact sums), float64 otherwise."""
    return np.int64(0) if dtype == np.uint8 else np.float64(0.0)


class CPUEngine(Engine, register="cpu"):
    """Exact, multi-threaded CPU engine (numba for l-inf/l1; l2: the pooled bound and exact integer distances for bytes, else float32 GEMM + exact recheck)."""

    name = "cpu"

    def __init__(self, *, reorder_features: bool = True, linf: str = "probe", l2: str = "pooled", l1: str = "pooled",
                 blocks: CPUBlocks = DEFAULT_BLOCKS):
        """``linf``: ``"probe"`` (query-specific pixel probes, one pass per query; default) or
        ``"tiled"`` (the register-tiled class-pair kernel that also serves l1); ``l2``: ``"pooled"``
        (bytes: exact squared distances only where the pooled lower bound of ``_pooled_l2`` cannot
        rule the pair out; other data as ``"float32"``; default), ``"int8"`` (bytes through the exact
        integer GEMM of ``_int_l2``, other data as ``"float32"``) or ``"float32"`` (float32 GEMM and
        the exact recheck of its candidates); ``l1``: ``"pooled"`` (bytes: exact l1 only where the
        bound of the byte codes of ``_pooled_l1`` -- group sums compared by sums of absolute
        differences -- cannot rule the pair out; other data as ``"tiled"``; default), ``"bound"``
        (bytes: exact l1 only where the exact l2 of the integer GEMM cannot, see ``_l1_bound``) or ``"tiled"`` (the register-tiled kernel); ``blocks``: the
        kernels' block and chunk sizes (speed only, see :class:`CPUBlocks`)."""
        if linf not in ("probe", "tiled"):
            raise InvalidInputError(f"linf must be 'probe' or 'tiled', got {linf!r}")
        if l2 not in ("pooled", "int8", "float32"):
            raise InvalidInputError(f"l2 must be 'pooled', 'int8' or 'float32', got {l2!r}")
        if l1 not in ("pooled", "bound", "tiled"):
            raise InvalidInputError(f"l1 must be 'pooled', 'bound' or 'tiled', got {l1!r}")
        self.l2, self.l1 = l2, l1
        #: the l-inf probe searches' pruning so far: (query, other-class point) pairs searched, and
        #: those whose exact distance was computed (the rest were ruled out by probes)
        self.probe_pairs = {"pairs": 0, "exact": 0}
        #: the same for the pooled l2 and l1 searches (``l2="pooled"``, ``l1="pooled"``, bytes): pairs
        #: searched, and those whose exact distance was computed (the rest ruled out by the bound)
        self.pooled_pairs = {"pairs": 0, "exact": 0}
        if not isinstance(blocks, CPUBlocks):
            raise InvalidTypeError(f"blocks must be a CPUBlocks, got {type(blocks).__name__}.")
        self.reorder_features = reorder_features
        self.linf = linf
        self.blocks = blocks
        #: the streamed (out-of-core) passes so far and their block pairs (see ``blocks.stream_bytes``)
        self.streamed = {"passes": 0, "blocks": 0}
        #: the last in-memory l-inf probe search, by the content digest of its database: a second
        #: pass over the same training set (test--train after train--train) reuses it
        self._last_probe = Recent(1)

    def __getstate__(self):
        """A pickled engine (sent to Dask workers) leaves its last probe index behind."""
        state = self.__dict__.copy()
        state["_last_probe"] = Recent(1)
        return state

    @classmethod
    def available(cls) -> bool:
        try:
            import numba  # noqa: F401
        except ImportError:  # pragma: no cover - numba is a hard dependency
            return False
        return True

    def _gemm_norm(self, norm, *arrays):
        """Whether the GEMM functions serve ``norm`` here: l2 always; l1 with ``l1="pooled"`` or
        ``"bound"`` on bytes (the integer GEMM needs torch)."""
        if norm == "l2":
            return True
        if not (norm == "l1" and self.l1 != "tiled" and all(a.dtype == np.uint8 for a in arrays)):
            return False
        if not installed("torch"):  # the integer GEMM needs torch (an extra): without it, the tiled kernel
            return False
        from .gemm import use_integer

        return all(use_integer(a, "cpu") for a in arrays)

    @property
    def integer_gemm(self) -> str | None:
        """The GEMM the exact integer path (l2 and l1 on bytes) runs on here: ``"int8"`` or
        ``"float32"``, both exact, the faster chosen once per process; None without torch."""
        if not installed("torch"):
            return None
        from ._int_l2 import gemm_backend

        return gemm_backend()

    def _integer(self, norm="l2"):
        """The GEMM functions' ``integer``: None (the integer GEMM where it applies: always for l1)
        or False (``l2="float32"``)."""
        return None if norm == "l1" or self.l2 != "float32" else False

    def _gemm_args(self, norm):
        """Keyword arguments of the GEMM functions (:mod:`.gemm`) for ``norm``."""
        return {"block_rows": self.blocks.gemm_rows, "integer": self._integer(norm), "norm": norm,
                "pooled": (self.l2 if norm == "l2" else self.l1) == "pooled", "counts": self.pooled_pairs}

    # -- l-inf / l1 ---------------------------------------------------------------------------
    def _order(self, *arrays):
        """Feature order by decreasing variance (pure permutation: distances are unchanged)."""
        if not self.reorder_features:
            return None
        ref = arrays[-1]
        sample = ref[:: max(1, len(ref) // 4096)].astype(np.float64)
        return np.argsort(-sample.var(axis=0), kind="stable")

    def _run(self, norm, Q, D, q_gidx, d_gidx, row_best, row_idx, col=None):
        from . import _kernels

        from ..core.progress import compiling_notice

        kernel = _kernels.nn_kernel
        compiling_notice(kernel, "tiled nearest-neighbour")
        is_max = norm == "linf"
        zero = _acc_zero(Q.dtype)
        b = self.blocks
        sizes = (b.tiled_query_block, b.tiled_chunk, b.tiled_db_bytes)
        nblocks = (len(Q) + b.tiled_query_block - 1) // b.tiled_query_block
        if col is None:
            empty_b = np.empty((nblocks, 0), dtype=row_best.dtype)
            empty_i = np.empty((nblocks, 0), dtype=np.int64)
            kernel(Q, D, q_gidx, d_gidx, row_best, row_idx, empty_b, empty_i, False, is_max, zero, *sizes)
            return
        col_best, col_idx = col
        cb = np.repeat(col_best[None, :], nblocks, axis=0)
        ci = np.repeat(col_idx[None, :], nblocks, axis=0)
        kernel(Q, D, q_gidx, d_gidx, row_best, row_idx, cb, ci, True, is_max, zero, *sizes)
        # reduce the per-block column bests: smallest distance, then smallest index
        m = cb.min(axis=0)
        i = np.where(cb == m[None, :], ci, _SENTINEL_INT).min(axis=0)
        col_best[:], col_idx[:] = m, i

    def nearest(self, queries, database, *, norm):
        if self._gemm_norm(norm, queries, database):
            from .gemm import gemm_nearest

            return gemm_nearest(queries, database, **self._gemm_args(norm))
        if norm == "linf" and self.linf == "probe":
            return self._linf_probe(queries, np.full(len(queries), -1, np.int64), database,
                                    np.zeros(len(database), np.int64))
        perm = self._order(queries, database)
        if perm is not None:
            queries, database = queries[:, perm], database[:, perm]
        Q = np.ascontiguousarray(queries)
        D = np.ascontiguousarray(database)
        best, idx = _init_best(len(Q), Q.dtype)
        self._run(norm, Q, D, np.arange(len(Q), dtype=np.int64), np.arange(len(D), dtype=np.int64),
                  best, idx)
        return _finish(best, idx)

    @property
    def stream_bytes(self) -> int:
        """Points over this many bytes are searched out of core (:meth:`CPUBlocks.stream_limit`)."""
        return self.blocks.stream_limit()

    def _streams(self, limit, *arrays) -> bool:
        """Whether points this large are searched out of core (more than ``limit`` bytes, more
        than one row)."""
        return any(a.nbytes > limit and len(a) > 1 for a in arrays)

    def cross_class(self, x_query, y_query, x_db, y_db, *, norm, same_set=False, progress=None):
        limit = self.stream_bytes
        if self._streams(limit, x_query, x_db):
            from .streamed import stream_cross_class

            return stream_cross_class(self, x_query, y_query, x_db, y_db, norm=norm, same_set=same_set,
                                      block_bytes=limit // 2, progress=progress)
        if self._gemm_norm(norm, x_query, x_db):
            from .gemm import gemm_cross_class

            return gemm_cross_class(x_query, y_query, x_db, y_db, same_set=same_set, progress=progress,
                                    **self._gemm_args(norm))
        if norm == "linf" and self.linf == "probe":
            return self.probe_index(x_db, y_db)(x_query, y_query, progress=progress)
        return self._tiled_cross_class(x_query, y_query, x_db, y_db, norm=norm, same_set=same_set,
                                       progress=progress)

    def _tiled_cross_class(self, x_query, y_query, x_db, y_db, *, norm, same_set, progress):
        """The register-tiled kernel over pairs of classes (l1, and l-inf with ``linf="tiled"``)."""
        perm = self._order(x_query, x_db)
        d_order = np.argsort(y_db, kind="stable")
        D = np.ascontiguousarray(x_db[d_order][:, perm] if perm is not None else x_db[d_order])
        yd = y_db[d_order]
        classes = np.unique(np.concatenate([y_db, y_query]))
        starts = np.searchsorted(yd, classes, side="left")
        ends = np.searchsorted(yd, classes, side="right")
        if same_set:
            best, idx = _init_best(len(D), D.dtype)
            for c, s, e in zip(classes, starts, ends):
                if e == s or e == len(D):
                    continue
                self._run(norm, D[s:e], D[e:], d_order[s:e], d_order[e:], best[s:e], idx[s:e],
                          col=(best[e:], idx[e:]))
                if progress is not None:
                    progress(2 * int(e - s) * int(len(D) - e))  # both directions of each pair
            out_d, out_i = _finish(best, idx)
            res_d = np.empty_like(out_d)
            res_i = np.empty_like(out_i)
            res_d[d_order], res_i[d_order] = out_d, out_i
            return res_d, res_i
        q_order = np.argsort(y_query, kind="stable")
        Q = np.ascontiguousarray(x_query[q_order][:, perm] if perm is not None else x_query[q_order])
        yq = y_query[q_order]
        best, idx = _init_best(len(Q), Q.dtype)
        q_gidx = np.arange(len(Q), dtype=np.int64)
        for c, s, e in zip(classes, starts, ends):
            qs, qe = np.searchsorted(yq, c, "left"), np.searchsorted(yq, c, "right")
            if qe == qs:
                continue
            for lo, hi in ((0, s), (e, len(D))):
                if hi > lo:
                    self._run(norm, Q[qs:qe], D[lo:hi], q_gidx[qs:qe], d_order[lo:hi],
                              best[qs:qe], idx[qs:qe])
            if progress is not None:
                progress(int(qe - qs) * int(len(D) - (e - s)))
        out_d, out_i = _finish(best, idx)
        res_d = np.empty_like(out_d)
        res_i = np.empty_like(out_i)
        res_d[q_order], res_i[q_order] = out_d, out_i
        return res_d, res_i

    def range_search(self, x_query, y_query, x_db, y_db, *, norm, radius, same_set=False, max_pairs=None,
                     progress=None):
        """l-inf on bytes with ``linf="probe"``: the range kernel on the points the probe search
        finds within reach, :func:`~.probe_range.probe_pairs`; l1 / l2 on bytes with ``l1="pooled"`` /
        ``l2="pooled"``: the pooled bound's search,
        :func:`~.pooled_range.pooled_pairs`; the host GEMM in blocks of ``blocks.gemm_rows`` where
        it serves the norm (l2; l1 on bytes with ``l1="bound"``): :func:`~.conflicts.gemm_pairs`;
        else the numba range kernel (l-inf, l1; exact early exit): :func:`~.conflicts.cpu_pairs`.
        Points over :attr:`stream_bytes`: out of core, :func:`~.streamed.stream_range_search`."""
        limit = self.stream_bytes
        if self._streams(limit, x_query, x_db):
            from .streamed import stream_range_search

            return stream_range_search(self, x_query, y_query, x_db, y_db, norm=norm, radius=radius,
                                       same_set=same_set, max_pairs=max_pairs, block_bytes=limit // 2,
                                       progress=progress)
        if norm == "linf" and self.linf == "probe" and x_query.dtype == x_db.dtype == np.uint8:
            from .probe_range import probe_pairs

            return probe_pairs(self, x_query, y_query, x_db, y_db, same_set=same_set, radius=radius,
                               max_pairs=max_pairs, progress=progress)
        if self._pooled_range(norm, x_query, x_db):
            from .pooled_range import pooled_pairs  # loads torch (an extra) with the GEMM's module

            return pooled_pairs(x_query, y_query, x_db, y_db, norm=norm, same_set=same_set, radius=radius,
                                max_pairs=max_pairs, progress=progress, block_rows=self.blocks.gemm_rows,
                                counts=self.pooled_pairs)
        if self._gemm_norm(norm, x_query, x_db):
            return gemm_pairs(x_query, y_query, x_db, y_db, same_set=same_set, radius=radius, max_pairs=max_pairs,
                              progress=progress, block_rows=self.blocks.gemm_rows, integer=self._integer(norm),
                              norm=norm)
        return cpu_pairs(x_query, y_query, x_db, y_db, same_set=same_set, norm=norm, radius=radius,
                         max_pairs=max_pairs, progress=progress)

    def _pooled_range(self, norm, x_query, x_db) -> bool:
        """Whether the range search runs on a pooled bound: l1 / l2 in ``"pooled"`` mode on bytes."""
        mode = {"l1": self.l1, "l2": self.l2}.get(norm)
        return (mode == "pooled" and x_query.dtype == np.uint8 and x_db.dtype == np.uint8
                and self._gemm_norm(norm, x_query, x_db))

    def class_search(self, support, labels, n_classes, *, norm):
        """l-inf: the probe-pruned one-pass search (:class:`~separation.engines.probe.ProbeSearch`);
        l2 / l1: one exact nearest-neighbour call per class."""
        if norm == "linf" and self.linf == "probe":
            from .probe import ProbeSearch

            return ProbeSearch(support, labels, n_classes, blocks=self.blocks)
        return super().class_search(support, labels, n_classes, norm=norm)

    def probe_index(self, x_db, y_db):
        """:meth:`prepare` for l-inf (probe): ``search(x_query, y_query, progress=None, bound=None)``
        -> exact other-class nearest distances (stored units) and indices; reused while the
        database's content (points and labels) is the same as the last call's: the index is built
        once for train--train and test--train."""
        return self._last_probe.get(content_digest(x_db, y_db), lambda: self.prepare(x_db, y_db, norm="linf"))

    def _linf_probe(self, x_query, y_query, x_db, y_db):
        """l-inf: exact distance and a nearest other-class index per query, in one probe-pruned
        pass over the training set (see ``probe``); distances in stored units."""
        return self.prepare(x_db, y_db, norm="linf")(x_query, y_query)

    def prepare(self, x_db, y_db, *, norm):
        """l-inf (probe): the probe index of ``x_db`` is built once, here; else the default."""
        if not (norm == "linf" and self.linf == "probe"):
            return super().prepare(x_db, y_db, norm=norm)
        from .probe import ProbeSearch

        classes, y_idx = np.unique(y_db, return_inverse=True)
        index = ProbeSearch(x_db, y_idx.astype(np.int64), len(classes), blocks=self.blocks)

        def search(x_query, y_query, progress=None, bound=None):
            pos = np.clip(np.searchsorted(classes, y_query), 0, len(classes) - 1)
            own = np.where(classes[pos] == y_query, pos, -1)
            before = index.exact_pairs
            out = index.other_class(x_query, own, raw=True, progress=progress, bound=bound)
            self.probe_pairs["exact"] += index.exact_pairs - before
            self.probe_pairs["pairs"] += int((len(x_db) - np.append(index.class_sizes, 0)[own]).sum())
            return out

        return search

    # -- block pairs (cluster runs) ---------------------------------------------------------------
    def pairs_once(self, norm, dtype):
        """l2 (GEMM) and l1 / tiled l-inf visit each pair once; the probe search prunes per query."""
        return norm != "linf" or self.linf == "tiled"

    def block_pair(self, xa, ya, xb, yb, *, norm):
        if self._gemm_norm(norm, xa, xb):
            from .gemm import gemm_block_pair

            return gemm_block_pair(xa, ya, xb, yb, **self._gemm_args(norm))
        if not self.pairs_once(norm, xa.dtype):
            return super().block_pair(xa, ya, xb, yb, norm=norm)
        perm = self._order(xa, xb)
        sides = []
        for x, y in ((xa, ya), (xb, yb)):
            order = np.argsort(y, kind="stable")
            X = np.ascontiguousarray(x[order][:, perm] if perm is not None else x[order])
            sides.append((X, y[order], order, *_init_best(len(X), X.dtype)))
        for (Q, yq, q_order, q_best, q_idx), (D, yd, d_order, d_best, d_idx) in (sides, sides[::-1]):
            # rows of class c against the other block's rows of a larger class: every
            # differently-labelled pair of the two blocks is visited once, updating both sides
            for c in np.unique(yq):
                s, e = np.searchsorted(yq, c, "left"), np.searchsorted(yq, c, "right")
                t = np.searchsorted(yd, c, "right")
                if t < len(D):
                    self._run(norm, Q[s:e], D[t:], q_order[s:e], d_order[t:], q_best[s:e], q_idx[s:e],
                              col=(d_best[t:], d_idx[t:]))
        out = []
        for _, _, order, best, idx in sides:
            d, i = _finish(best, idx)
            res_d, res_i = np.empty_like(d), np.empty_like(i)
            res_d[order], res_i[order] = d, i
            out += [res_d, res_i]
        return tuple(out)


__all__ = ["CPUEngine", "merge_better"]
