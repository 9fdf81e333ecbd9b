"""The unit of work of a cluster run: one block pair, a pure function of its :class:`BlockTask`.

A task reads its two blocks from the memory-mapped data store (:mod:`~separation.engines.shards`),
runs a local engine (``cpu``, ``cuda`` ...) on them, writes the result as a shard file and returns
it: per query row the nearest other-label database row ``(distance, index)`` in stored units, and
for a same-set *pair* of blocks also per database row its nearest query row. Indices are global
(rows of the whole query / database set), ``-1`` where a block has no other-label row.

Three kinds of task (``BlockTask.kind``):

``rows``  query rows ``q_range`` against database rows ``d_range`` (test--train, and train--train
          with engines that prune per query, such as the CPU l-inf probe search);
``pair``  train--train rows ``q_range`` and ``d_range`` of one set, each pair of points computed
          once, both sides updated (:meth:`Engine.block_pair`); the diagonal block uses the
          engine's own same-set search.
``range`` the range search (:meth:`Engine.range_search`) of query rows ``q_range`` against
          database rows ``d_range`` at ``radius``: ``[i, j, d]``, every differently-labelled pair
          within it (global indices, int32 below 2**31 rows; distances in [0, 1] pixel units),
          sorted by ``(i, j)``. ``same_set``: blocks ``I <= J`` of one set, the diagonal block
          searched within itself (``i < j``).

Every task reads its rows through :func:`~separation.engines.shards.read_rows`, which verifies
them against the store's digests: a changed store fails the task, it never changes an answer.
"""
from __future__ import annotations

import dataclasses
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from ..core.faults import fault
from ..core.threat import exact_eps
from .block_pairs import Recent, nearest_vectors, range_vectors
from .shards import StoreRef, read_rows, read_shard, write_shard

#: Prepared database blocks a worker keeps for its next tasks (e.g. the CPU l-inf probe index).
PREPARED_CACHE = 2
_PREPARED = Recent(PREPARED_CACHE)


@dataclasses.dataclass(frozen=True)
class BlockTask:
    """One block pair of a job: the stores, the row ranges, the norm, the inner engine (a name,
    resolved on the worker, or an :class:`~separation.engines.Engine`), where its shard goes and
    how many threads it may use; a ``range`` task also its ``radius`` ([0, 1] pixel units, the
    exact value as text: :func:`~separation.core.threat.eps_text`),
    ``same_set`` and ``max_pairs`` (a block with more pairs stops: see :func:`compute_range`)."""

    job: str
    kind: str
    norm: str
    inner: Any
    query: StoreRef
    database: StoreRef
    q_range: tuple[int, int]
    d_range: tuple[int, int]
    shard: str
    threads: int = 1
    radius: str | None = None
    same_set: bool = False
    max_pairs: int | None = None

    @property
    def name(self) -> str:
        return f"{self.kind}-{self.q_range[0]}-{self.d_range[0]}"

    def header(self) -> dict:
        """What a shard of this task must say about itself to be used."""
        head = {"job": self.job, "task": self.name, "kind": self.kind, "norm": self.norm,
               "query": self.query.fingerprint, "database": self.database.fingerprint,
               "q_range": list(self.q_range), "d_range": list(self.d_range)}
        if self.kind == "range":
            head.update(radius=self.radius, same_set=self.same_set)
        return head

    @property
    def diagonal(self) -> bool:
        """A block of one set against itself."""
        one_set = self.kind == "pair" or (self.kind == "range" and self.same_set)
        return one_set and self.q_range == self.d_range

    def read_bytes(self) -> int:
        """Bytes of points (and labels) the task reads from the store."""
        rows = self.q_range[1] - self.q_range[0]
        if not self.diagonal:
            rows += self.d_range[1] - self.d_range[0]
        return rows * (self.query.d * np.dtype(self.query.dtype).itemsize + 8)

    def result_bytes(self) -> int:
        """Bytes of ``(distance, index)`` vectors the task sends back (a ``range`` task: 0, its
        pairs are known only when it is done)."""
        if self.kind == "range":
            return 0
        rows = self.q_range[1] - self.q_range[0]
        if self.kind == "pair" and not self.diagonal:
            rows += self.d_range[1] - self.d_range[0]
        return 16 * rows

    def spec_bytes(self) -> int:
        """Size of the task's description as sent through the scheduler (pickled)."""
        return len(pickle.dumps(self))


def _limit_threads(n: int) -> None:
    """One task, ``n`` compute threads (numba's are per calling thread; torch's per process)."""
    import numba

    numba.set_num_threads(max(1, min(n, numba.config.NUMBA_NUM_THREADS)))
    import sys

    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(max(1, n))


def _inner(spec, capability: str | None = None):
    from .registry import get_engine

    return get_engine(spec, capability=capability)


def _prepared(task: BlockTask, engine, load):
    """The engine's prepared database block of ``task`` (``load()`` reads it), kept per worker."""
    key = (task.database.fingerprint, task.d_range, task.norm, repr(task.inner))
    return _PREPARED.get(key, lambda: engine.prepare(*load(), norm=task.norm))


def _reader(ref: StoreRef):
    def read(lo, hi):
        return read_rows(ref, lo, hi)

    return read


def compute_range(task: BlockTask) -> list[np.ndarray] | None:
    """A ``range`` task's ``[i, j, d]``: global indices (int32 when both sets have fewer than
    2**31 rows, else int64), distances (float64, [0, 1] pixel units), sorted by ``(i, j)``; None
    when the block alone has more than ``task.max_pairs`` pairs (the client raises the LimitError:
    raised here, Dask would retry it and could not send it back as one, see :func:`run_block`)."""
    small = np.int32 if max(task.query.n, task.database.n) < 2**31 else np.int64
    return range_vectors(_inner(task.inner, "range_search"), task, task.norm, _reader(task.query),
                         _reader(task.database), radius=exact_eps(task.radius, "radius"), max_pairs=task.max_pairs,
                         index_dtype=small)


def compute_block(task: BlockTask) -> list[np.ndarray]:
    """The task's vectors, computed (no shard read or written): ``[d, i]`` for ``rows`` and
    diagonal tasks, ``[d_q, i_q, d_d, i_d]`` for off-diagonal pairs, ``[i, j, d]`` for ``range``
    tasks (:func:`compute_range`); see :func:`~.block_pairs.nearest_vectors`."""
    if task.kind == "range":
        return compute_range(task)
    engine = _inner(task.inner)
    return nearest_vectors(engine, task, task.norm, _reader(task.query), _reader(task.database),
                           prepared=lambda load: _prepared(task, engine, load))


def run_block(task: BlockTask) -> tuple[list[np.ndarray] | None, bool]:
    """Run one task on a worker: ``(vectors, computed)``. A valid shard already there (written
    by an earlier or a concurrent run) is returned as it is (``computed`` False). A ``range`` task
    over its ``max_pairs`` returns ``(None, True)`` and writes no shard (a LimitError, a
    MemoryError too, does not survive the pickling of a task's exception by Dask's tblib)."""
    fault("block-task")
    old = read_shard(task.shard, task.header())
    if old is not None:
        return old, False
    _limit_threads(task.threads)
    out = compute_block(task)
    if out is None:
        return None, True
    inner = _inner(task.inner, "range_search" if task.kind == "range" else None).name
    write_shard(task.shard, dict(task.header(), inner=inner), out)  # provenance only
    return out, True


def check_worker(folder: str, inner=None) -> dict:
    """Run on every worker (at once) before a job: can it write ``folder``? With ``inner``, also
    load that engine and its l-inf kernels (what the first task would otherwise wait for).
    ``{"ok", "error", "engine"}``."""
    info: dict[str, Any] = {"ok": True, "error": "", "engine": None}
    try:
        p = Path(folder)
        p.mkdir(parents=True, exist_ok=True)
        probe = p / f".probe-{os.getpid()}-{os.urandom(4).hex()}"
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as exc:
        info.update(ok=False, error=f"{type(exc).__name__}: {exc}")
        return info
    if inner is not None:
        engine = _inner(inner)
        x = np.arange(8 * 4, dtype=np.uint8).reshape(8, 4)
        engine.cross_class(x, np.arange(8) % 2, x, np.arange(8) % 2, norm="linf", same_set=True)
        info["engine"] = engine.name
    return info


def clear_prepared() -> int:
    """Drop this worker's prepared database blocks (what a fresh worker would have); how many."""
    return _PREPARED.clear()


def resolve_inner(spec) -> str:
    """The name of the engine ``spec`` resolves to on this worker (``"auto"`` -> ``"cuda"``...)."""
    return _inner(spec).name


__all__ = ["BlockTask", "PREPARED_CACHE", "check_worker", "clear_prepared", "compute_block", "compute_range",
           "resolve_inner", "run_block"]
