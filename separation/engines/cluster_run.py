"""How a cluster computed a result: its scheduler, workers and passes (provenance, not identity)."""
from __future__ import annotations

import dataclasses


@dataclasses.dataclass
class ClusterPass:
    """One pass (``same-set``: train--train or test--test; ``cross-set``: test--train) of a
    cluster run: its schedule (``pair``, ``rows`` or ``range``, see :mod:`separation.engines.block_tasks`),
    block rows, block pairs (shards) in all, computed and reused from an earlier run; per task the
    bytes read from the shared store, the bytes sent back, and the task description's size."""

    name: str
    schedule: str
    query_rows: int
    database_rows: int
    shards: int
    computed: int
    reused: int
    read_bytes_per_task: float
    result_bytes_per_task: float
    spec_bytes_per_task: float
    seconds: float


@dataclasses.dataclass
class ClusterRun:
    """How a cluster computed a result (provenance: the numbers are those of any engine): the
    scheduler, its workers and their threads, the engine run by each task, and the passes."""

    scheduler: str
    workers: int
    threads: int
    inner: str
    passes: list[ClusterPass] = dataclasses.field(default_factory=list)

    @property
    def shards(self) -> int:
        return sum(p.shards for p in self.passes)

    @property
    def computed(self) -> int:
        return sum(p.computed for p in self.passes)


__all__ = ["ClusterPass", "ClusterRun"]
