"""Block and chunk sizes of the CPU kernels: they change speed and memory, never a result.

The defaults suit a machine with 0.5-2 MiB of L2 cache per core. Tests set them small so that
every multi-block, multi-chunk, remainder and class-spanning path of every kernel runs on data of a
few dozen points.
"""
from __future__ import annotations

import dataclasses

from ..core.errors import InvalidInputError

#: Layouts of the l-inf probe index (see :class:`CPUBlocks`).
PROBE_LAYOUTS = ("auto", "sorted", "given")
#: The automatic ``stream_bytes``: the available memory divided by this, within ``STREAM_BYTES_RANGE``.
STREAM_SHARE = 8
STREAM_BYTES_RANGE = (64 << 20, 1 << 30)
#: ``probe_layout="auto"`` keeps the sorted copy while the index takes under this share of the
#: available memory.
AUTO_SORTED_FRACTION = 0.25


@dataclasses.dataclass(frozen=True)
class CPUBlocks:
    """Sizes used by :class:`~separation.engines.CPUEngine` and the l-inf class search.

    Probe kernel (l-inf): ``probe_query_block`` queries per parallel task (they share each support
    block while it is in cache; fewer where a call has under 4 such tasks per thread),
    ``probe_support_block`` support points per block (a block never straddles two classes),
    ``probe_seeds`` exact distances per class computed first, at most ``probe_max`` probe pixels
    per query and class, ``probe_step`` probes between two counts of the points still alive,
    ``probe_hist_bytes`` for the per-class probe histograms (above it one shared histogram),
    ``probe_query_chunk`` queries per kernel call (bounds the per-query working arrays).
    ``probe_layout``: ``"sorted"`` keeps a class-sorted row-major copy of the support (fast:
    one class's rows are contiguous; 2x the support bytes extra), ``"given"`` reads the support as
    given through a permutation (1x extra, slower on large data), ``"auto"`` the sorted copy when
    both copies take under :data:`AUTO_SORTED_FRACTION` of the available memory.

    Tiled kernel (l1, and l-inf with ``linf="tiled"``): ``tiled_query_block`` query rows per
    parallel task, ``tiled_chunk`` features before the first early-exit check (the chunk doubles
    after each check), ``tiled_db_bytes`` bytes of database rows per block.

    GEMM (l2): ``gemm_rows`` rows per float32 GEMM block (``None``: from a memory budget).

    Out of core: points (queries or database) of more than ``stream_bytes`` bytes are searched
    block pair by block pair, blocks of at most ``stream_bytes // 2`` bytes read from disk when
    needed (:mod:`~separation.engines.streamed`): the engine's memory follows this, not the data.
    ``None`` (default): an eighth of the memory available when a search starts, within
    :data:`STREAM_BYTES_RANGE` (:meth:`stream_limit`).
    """

    probe_query_block: int = 128
    probe_support_block: int = 1024
    probe_seeds: int = 48
    probe_max: int = 64
    probe_step: int = 8
    probe_hist_bytes: int = 256 << 20
    probe_query_chunk: int = 8192
    probe_layout: str = "auto"
    tiled_query_block: int = 32
    tiled_chunk: int = 32
    tiled_db_bytes: int = 256 * 1024
    gemm_rows: int | None = None
    stream_bytes: int | None = None

    def __post_init__(self):
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.name in ("gemm_rows", "stream_bytes") and v is None:
                continue
            if f.name == "probe_layout":
                if v not in PROBE_LAYOUTS:
                    raise InvalidInputError(f"CPUBlocks.probe_layout must be one of {', '.join(PROBE_LAYOUTS)}, got {v!r}.")
                continue
            minimum = 0 if f.name in ("probe_seeds", "probe_max", "probe_hist_bytes") else 1
            if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
                raise InvalidInputError(f"CPUBlocks.{f.name} must be an integer >= {minimum}, got {v!r}.")


    def stream_limit(self) -> int:
        """``stream_bytes``, or when None an eighth of :func:`~separation.core.memory.available_bytes`
        within :data:`STREAM_BYTES_RANGE` (its top where the available memory is unknown)."""
        if self.stream_bytes is not None:
            return self.stream_bytes
        from ..core.memory import available_bytes

        have = available_bytes()
        low, high = STREAM_BYTES_RANGE
        return high if have is None else min(high, max(low, have // STREAM_SHARE))


DEFAULT_BLOCKS = CPUBlocks()

__all__ = ["AUTO_SORTED_FRACTION", "CPUBlocks", "DEFAULT_BLOCKS", "PROBE_LAYOUTS", "STREAM_BYTES_RANGE", "STREAM_SHARE"]
