"""A grid of training runs, run by run (the library of ``python -m analysis.grid``): finished runs
are reused, interrupted ones resume from their checkpoints, and the records are shown as a table."""
from __future__ import annotations

import logging
import math
import os
import time
from typing import Any

from separation.core.errors import ConfigError, ToolkitError

from ..records import finished_record
from ..train_config import TrainConfig
from .grid_file import Grid
from .train_job import DEFAULT_CHECKPOINT_ROOT, DEFAULT_RESULTS_ROOT, run_folders, summarize

log = logging.getLogger("analysis.grid")


def _fmt(v, pct: bool = True) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{100 * v:.1f}" if pct else f"{v:.3g}"


def format_table(records: list[tuple[str, Any]]) -> str:
    """A Markdown table of the grid's records: accuracy, PGD accuracy, Lipschitz, gaps, time."""
    head = ("| run | method | dropout | train acc | test acc | train adv | test adv | train lip | "
            "test lip | gap clean | gap adv | train s | eval s |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for name, rec in records:
        if rec is None or rec.result.evaluation is None:
            lines.append(f"| {name} | (not finished) |" + " |" * (head.count("|") - 3))
            continue
        cfg, ev, t = rec.config, rec.result.evaluation, rec.timing
        tr, te = ev.train, ev.test
        lines.append(
            f"| {name} | {cfg.method} | {cfg.dropout:g} | {_fmt(tr and tr.clean_acc)} | {_fmt(te and te.clean_acc)} | "
            f"{_fmt(tr and tr.adv_acc)} | {_fmt(te and te.adv_acc)} | {_fmt(tr and tr.lipschitz_mean, False)} | "
            f"{_fmt(te and te.lipschitz_mean, False)} | {_fmt(ev.gaps.clean)} | {_fmt(ev.gaps.adv)} | "
            f"{t.get('train_seconds', 0):.0f} | {t.get('eval_seconds', 0):.0f} |")
    return "\n".join(lines)


def run_one(cfg: TrainConfig, *, grid_name: str, checkpoint_root, results_root, data_root=None, dataset=None,
            progress: bool | None = None):
    """Train and evaluate one run of a grid (or reuse its finished record): the training record.

    A pure function of its arguments and the files it reads and writes: the unit of work a
    cluster runs (see ``--scheduler``)."""
    from .loop import train

    run_dir, res_dir = run_folders(cfg, grid_name, checkpoint_root, results_root)
    done = finished_record(res_dir, cfg) or finished_record(run_dir, cfg)
    if done is None and dataset is None:
        from separation.core.datasets import load_dataset

        dataset = load_dataset(cfg.dataset, root=data_root)
    outcome = train(cfg, run_dir=run_dir, results_dir=res_dir, data_root=data_root, dataset=dataset,
                    progress=progress)
    return outcome.record


def finished(grid: Grid, cfg: TrainConfig, checkpoint_root, results_root):
    run_dir, res_dir = run_folders(cfg, grid.name, checkpoint_root, results_root)
    return finished_record(res_dir, cfg) or finished_record(run_dir, cfg)


def select(grid: Grid, only: list[str] | None) -> list[TrainConfig]:
    if not only:
        return list(grid.configs)
    missing = sorted(set(only) - set(grid.names()))
    if missing:
        raise ConfigError(f"--only: no run(s) named {', '.join(missing)} in grid {grid.name}; "
                          f"runs: {', '.join(grid.names())}.")
    return [c for c in grid.configs if c.name in only]


def run_grid(grid: Grid, *, checkpoint_root: str | os.PathLike = DEFAULT_CHECKPOINT_ROOT,
             results_root: str | os.PathLike | None = DEFAULT_RESULTS_ROOT,
             data_root: str | os.PathLike | None = None, only: list[str] | None = None,
             progress: bool | None = None, keep_going: bool = False) -> dict[str, Any]:
    """Train/evaluate every run here, one after the other (finished ones are reused); returns
    ``{name: training record or None}``. Datasets are loaded once per name and shared by the runs.
    With ``keep_going`` a failing run is logged and the grid continues."""
    from separation.core.datasets import load_dataset

    configs = select(grid, only)
    datasets: dict[str, Any] = {}
    records: dict[str, Any] = {}
    t_grid = time.perf_counter()
    for i, cfg in enumerate(configs, 1):
        log.info("[%d/%d] %s/%s", i, len(configs), grid.name, cfg.name)
        try:
            dataset = None
            if finished(grid, cfg, checkpoint_root, results_root) is None:
                if cfg.dataset not in datasets:
                    datasets[cfg.dataset] = load_dataset(cfg.dataset, root=data_root)
                dataset = datasets[cfg.dataset]
            records[cfg.name] = run_one(cfg, grid_name=grid.name, checkpoint_root=checkpoint_root,
                                        results_root=results_root, data_root=data_root, dataset=dataset,
                                        progress=progress)
            log.info("[%d/%d] %s: %s", i, len(configs), cfg.name, summarize(records[cfg.name]))
        except ToolkitError as exc:  # an expected failure of one run (a bug stops the grid)
            records[cfg.name] = None
            if not keep_going:
                raise
            log.error("%s failed: %s: %s (continuing: --keep-going)", cfg.name, type(exc).__name__, exc)
    log.info("grid %s: %d runs in %.1f min", grid.name, len(configs), (time.perf_counter() - t_grid) / 60)
    return records


__all__ = ["finished", "format_table", "run_grid", "run_one", "select"]
