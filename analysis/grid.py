"""``python -m analysis.grid GRID``: train and evaluate every run of a grid file, skipping finished
runs and resuming interrupted ones from their checkpoints (grid files: :mod:`analysis.grids`).

::

    python -m analysis.grid configs/mnist_cpu.yaml --data-root ./data
    python -m analysis.grid configs/mnist_cpu.yaml --list | --table
    python -m analysis.grid configs/mnist_cpu.yaml --scheduler local:2     # or tcp://HOST:8786
"""
from __future__ import annotations

import argparse
import logging
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

from separation.cli import UsageError, writable_folder
from separation.cluster import add_cluster_arguments, cluster_client

from .config import ConfigError, TrainConfig
from .grids import Grid, load_grid
from .train import DEFAULT_CHECKPOINT_ROOT, DEFAULT_RESULTS_ROOT, setup_logging, summarize

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


def run_folders(grid_name: str, cfg: TrainConfig, checkpoint_root, results_root) -> tuple[Path, Path | None]:
    """(checkpoint folder, results folder or None) of one run of a grid."""
    return (Path(checkpoint_root) / grid_name / cfg.name,
            Path(results_root) / grid_name / cfg.name if results_root is not None else None)


def run_one(cfg: TrainConfig, *, grid_name: str, checkpoint_root, results_root, data_root=None, dataset=None,
            progress: bool | None = None):
    """Train and evaluate one run of a grid (or reuse its finished record): the training record.

    A pure function of its arguments and the files it reads and writes: the unit of work a
    cluster runs (see ``--scheduler``)."""
    from .training import finished_record, train

    run_dir, res_dir = run_folders(grid_name, cfg, checkpoint_root, results_root)
    done = finished_record(res_dir, cfg) or finished_record(run_dir, cfg)
    if done is None and dataset is None:
        from separation.datasets import load_dataset

        dataset = load_dataset(cfg.dataset, root=data_root)
    outcome = train(cfg, run_dir=run_dir, results_dir=res_dir, data_root=data_root, dataset=dataset,
                    progress=progress)
    return outcome.record


def finished(grid: Grid, cfg: TrainConfig, checkpoint_root, results_root):
    from .training import finished_record

    run_dir, res_dir = run_folders(grid.name, cfg, checkpoint_root, results_root)
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
    from separation.datasets import load_dataset

    from .training import TrainingInterrupted

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
        except TrainingInterrupted:
            raise
        except Exception as exc:  # noqa: BLE001 - reported, then re-raised unless keep_going
            records[cfg.name] = None
            if not keep_going:
                raise
            log.error("%s failed: %s: %s (continuing: --keep-going)", cfg.name, type(exc).__name__, exc)
    log.info("grid %s: %d runs in %.1f min", grid.name, len(configs), (time.perf_counter() - t_grid) / 60)
    return records


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m analysis.grid",
        description="Train and evaluate every run of a grid file (skipping finished runs, resuming "
                    "interrupted ones) and print a table of the records.")
    p.add_argument("grid", type=Path, help="grid file (YAML/JSON), e.g. configs/mnist_cpu.yaml")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="FIELD=VALUE",
                   help="override a TrainConfig field in every run (e.g. device=cuda, epochs=1).")
    p.add_argument("--only", default=None, help="comma-separated run names to run (default: all).")
    p.add_argument("--list", action="store_true", help="list the runs and whether they are finished; exit.")
    p.add_argument("--table", action="store_true", help="print the table of the finished records; exit.")
    p.add_argument("--checkpoint-root", type=Path, default=DEFAULT_CHECKPOINT_ROOT)
    p.add_argument("--results-root", type=Path, default=DEFAULT_RESULTS_ROOT)
    p.add_argument("--data-root", type=Path, default=None, help="dataset folder (torchvision layout).")
    p.add_argument("--keep-going", action="store_true", help="continue with the next run when one fails.")
    p.add_argument("--no-progress", action="store_true", help="no progress bars.")
    add_cluster_arguments(p, shards=False)
    p.add_argument("-v", "--verbose", action="count", default=0)
    return p


def _on_cluster(grid: Grid, configs: list[TrainConfig], args: argparse.Namespace) -> dict[str, Any]:
    """``--scheduler``: one task per run (see :mod:`analysis.grid_dask`)."""
    from .grid_dask import run_grid_on_cluster

    with cluster_client(args.scheduler) as client:
        return run_grid_on_cluster(grid, client, checkpoint_root=args.checkpoint_root, results_root=args.results_root,
                                   data_root=args.data_root, only=[c.name for c in configs], keep_going=args.keep_going)


def main(argv: list[str] | None = None) -> int:
    from .training import CheckpointMismatch, TrainingInterrupted

    args = get_args_parser().parse_args(argv)
    setup_logging(args.verbose)
    try:
        grid = load_grid(args.grid, overrides=args.overrides)
        configs = select(grid, [s.strip() for s in args.only.split(",") if s.strip()] if args.only else None)
        if not (args.list or args.table):  # before any work: the folders must be creatable and writable
            writable_folder(args.checkpoint_root, "--checkpoint-root")
            writable_folder(args.results_root, "--results-root")
    except (ConfigError, UsageError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    def current():
        return [(c.name, finished(grid, c, args.checkpoint_root, args.results_root)) for c in configs]

    if args.list:
        sys.stdout.write("".join(f"{name}\t{'finished' if rec else 'to do'}\n" for name, rec in current()))
        return 0
    if args.table:
        sys.stdout.write(format_table(current()) + "\n")
        return 0
    try:
        if args.scheduler is not None:
            records = _on_cluster(grid, configs, args)
        else:
            records = run_grid(grid, checkpoint_root=args.checkpoint_root, results_root=args.results_root,
                               data_root=args.data_root, only=[c.name for c in configs],
                               progress=None if not args.no_progress else False, keep_going=args.keep_going)
    except TrainingInterrupted as exc:
        print(f"stopped: {exc}", file=sys.stderr)
        return 128 + exc.signum if exc.signum else 3
    except KeyboardInterrupt:
        print("interrupted: run the command again to resume", file=sys.stderr)
        return 130
    except (ConfigError, CheckpointMismatch, FileNotFoundError, ValueError, ConnectionError) as exc:
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    sys.stdout.write(format_table(current()) + "\n")
    return 1 if any(r is None for r in records.values()) else 0


__all__ = ["finished", "format_table", "get_args_parser", "main", "run_folders", "run_grid", "run_one", "select"]


if __name__ == "__main__":
    sys.exit(main())
