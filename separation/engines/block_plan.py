"""How a cluster pass is cut into block pairs (see :mod:`~separation.engines.dask_engine`)."""
from __future__ import annotations

import math

#: Bytes of points per block when ``block_size`` is not given (bounds each worker's memory).
DEFAULT_BLOCK_BYTES = 1 << 30
#: Tasks per worker thread that the automatic block size aims at (load balance).
TASKS_PER_THREAD = 4


def _ranges(n: int, rows: int) -> list[tuple[int, int]]:
    k = max(1, math.ceil(n / max(1, rows)))
    rows = math.ceil(n / k)  # equal blocks: better balance than one short remainder
    return [(s, min(n, s + rows)) for s in range(0, n, rows)]


def plan_blocks(nq: int, nd: int, row_bytes: int, *, pairs: bool, threads: int, block_size=None):
    """How a pass of ``nq`` queries against ``nd`` database rows of ``row_bytes`` bytes is cut:
    ``(kind, query rows, database rows, [(query range, database range), ...])``. ``pairs``:
    same-set square blocks, pairs ``I <= J`` (kind ``"pair"``); else every (query block, database
    block) (kind ``"rows"``, database-block-major). Automatic sizes aim at
    :data:`TASKS_PER_THREAD` tasks per worker thread, at most :data:`DEFAULT_BLOCK_BYTES` per block."""
    budget = max(1, DEFAULT_BLOCK_BYTES // max(1, row_bytes))
    want = TASKS_PER_THREAD * max(1, threads)
    q_rows, d_rows = block_size or (None, None)
    if pairs:
        if q_rows is None:
            nb = math.ceil((math.sqrt(8 * want + 1) - 1) / 2)  # nb (nb + 1) / 2 >= want
            q_rows = min(budget, math.ceil(nq / nb))
        blocks = _ranges(nq, q_rows)
        return "pair", q_rows, q_rows, [(a, b) for i, a in enumerate(blocks) for b in blocks[i:]]
    d_rows = d_rows or min(nd, budget)
    q_rows = q_rows or min(budget, math.ceil(nq / math.ceil(want / len(_ranges(nd, d_rows)))))
    return "rows", q_rows, d_rows, [(a, b) for b in _ranges(nd, d_rows) for a in _ranges(nq, q_rows)]


__all__ = ["DEFAULT_BLOCK_BYTES", "TASKS_PER_THREAD", "plan_blocks"]
