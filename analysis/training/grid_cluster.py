"""Training grids on a Dask cluster: one task per run (``python -m analysis.grid GRID --scheduler ...``).

Each task is :func:`analysis.training.grid_runs.run_one`: it reuses a finished record, resumes an interrupted
run from its checkpoint, or trains and evaluates it, and writes the same record as a serial run
(timing and provenance aside). A lost worker's run is started again by Dask and resumes from its
last checkpoint. Runs on ``cuda`` ask for one ``GPU`` worker resource when the cluster's workers
advertise it (``dask worker ... --resources GPU=1``; one worker per GPU with dask-cuda).
The checkpoint, results and data folders must be seen by every worker (a shared filesystem).
"""
from __future__ import annotations

import logging
import os
import time
import uuid
from typing import Any

from separation.core.errors import ToolkitError

from ..train_config import TrainConfig
from .grid_file import Grid
from .grid_runs import finished, run_one, select
from .train_job import summarize

log = logging.getLogger("analysis.grid")

#: The worker resource a run on a GPU asks for (when the cluster's workers advertise it).
GPU_RESOURCE = "GPU"


def run_resources(cfg: TrainConfig, available: set[str]) -> dict[str, float] | None:
    """The Dask resources of one run: one GPU for a ``cuda`` run when workers offer the resource."""
    if cfg.device.startswith("cuda") and GPU_RESOURCE in available:
        return {GPU_RESOURCE: 1}
    return None


def _abs(path):
    return None if path is None else os.path.abspath(path)


def run_grid_on_cluster(grid: Grid, client, *, checkpoint_root, results_root, data_root=None,
                        only: list[str] | None = None, keep_going: bool = False) -> dict[str, Any]:
    """Every run of ``grid`` as one task on the cluster of ``client`` (finished runs are not
    submitted); returns ``{name: training record or None}`` in grid order, as
    :func:`analysis.training.grid_runs.run_grid` does. Without ``keep_going`` the first failure cancels the rest
    and is raised."""
    from distributed import as_completed

    configs = select(grid, only)
    records: dict[str, Any] = {}
    todo = []
    for cfg in configs:
        rec = finished(grid, cfg, checkpoint_root, results_root)
        if rec is not None:
            log.info("%s/%s: finished record found; skipping.", grid.name, cfg.name)
            records[cfg.name] = rec
        else:
            todo.append(cfg)
    workers = client.scheduler_info(n_workers=-1)["workers"]
    offered = {r for w in workers.values() for r in (w.get("resources") or {})}
    if any(c.device.startswith("cuda") for c in todo) and GPU_RESOURCE not in offered:
        log.warning("runs on cuda, but no worker offers a %r resource: runs are placed on any worker "
                    "(start GPU workers with --resources %s=1)", GPU_RESOURCE, GPU_RESOURCE)
    token = uuid.uuid4().hex[:8]
    t0 = time.perf_counter()
    futures = {client.submit(run_one, cfg, grid_name=grid.name, checkpoint_root=_abs(checkpoint_root),
                             results_root=_abs(results_root), data_root=_abs(data_root), progress=False,
                             key=f"grid-{grid.name}-{cfg.name}-{token}", resources=run_resources(cfg, offered)): cfg
               for cfg in todo}
    log.info("grid %s: %d runs submitted to %d workers (%d finished already)", grid.name, len(todo), len(workers),
             len(configs) - len(todo))
    try:
        for fut in as_completed(list(futures)):
            cfg = futures.pop(fut)
            try:
                records[cfg.name] = fut.result()
                log.info("%s: %s", cfg.name, summarize(records[cfg.name]))
            except ToolkitError as exc:  # an expected failure of one run (a bug stops the grid)
                records[cfg.name] = None
                if not keep_going:
                    raise
                log.error("%s failed: %s: %s (continuing: --keep-going)", cfg.name, type(exc).__name__, exc)
    finally:
        if futures:
            client.cancel(list(futures))
    log.info("grid %s: %d runs in %.1f min on the cluster", grid.name, len(todo), (time.perf_counter() - t0) / 60)
    return {c.name: records.get(c.name) for c in configs}


__all__ = ["GPU_RESOURCE", "run_grid_on_cluster", "run_resources"]
