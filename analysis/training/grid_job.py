"""The job of ``python -m analysis.grid GRID``: train and evaluate every run of a grid file, skipping
finished runs and resuming interrupted ones from their checkpoints (grid files: :mod:`.grid_file`),
here or on a Dask cluster (``--scheduler``, :mod:`.grid_cluster`)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Sequence

from separation.cluster import add_cluster_arguments, cluster_client
from separation.core.cli import progress_of, run_command, setup_logging
from separation.core.extras import require
from separation.core.paths import writable_folder
from separation.core.pipeline import DATA_ROOT_PLACEHOLDER, command_line_from

from .grid_file import Grid, load_grid
from .grid_runs import finished, format_table, run_grid, select
from .train_job import DEFAULT_CHECKPOINT_ROOT, DEFAULT_RESULTS_ROOT, EXIT_STOPPED

MODULE = "analysis.grid"


def grid_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=f"python -m {MODULE}",
        description="Train and evaluate every run of a grid file (skipping finished runs, resuming "
                    "interrupted ones) and print a table of the records.")
    p.add_argument("grid", type=Path, help="grid file (YAML/JSON), e.g. configs/mnist_cpu.yaml")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="FIELD=VALUE",
                   help="override a TrainConfig field in every run (e.g. device=cuda, epochs=1).")
    p.add_argument("--only", default=None, help="comma-separated run names to run (default: all).")
    p.add_argument("--list", action="store_true", help="list the runs and whether they are finished; exit.")
    p.add_argument("--table", action="store_true", help="print the table of the finished records; exit.")
    p.add_argument("--checkpoint-root", type=Path, default=DEFAULT_CHECKPOINT_ROOT,
                   help=f"checkpoints go to ROOT/GRID/RUN-KEY (default {DEFAULT_CHECKPOINT_ROOT})")
    p.add_argument("--results-root", type=Path, default=DEFAULT_RESULTS_ROOT,
                   help=f"records go to ROOT/GRID/RUN-KEY (default {DEFAULT_RESULTS_ROOT})")
    p.add_argument("--data-root", type=Path, default=None, help="dataset folder (torchvision layout).")
    p.add_argument("--keep-going", action="store_true", help="continue with the next run when one fails.")
    p.add_argument("--no-progress", action="store_true", help="no progress bars.")
    add_cluster_arguments(p, shards=False)
    p.add_argument("-v", "--verbose", action="count", default=0)
    return p



def grid_command(grid_file: str, *, data_root: str | None = DATA_ROOT_PLACEHOLDER, results_root: str | None = None) -> str:
    """The command line that runs a grid file (generated from :func:`grid_parser`)."""
    values: dict[str, Any] = {"grid": grid_file, "results_root": results_root}
    return command_line_from(grid_parser(), MODULE, values, data_root=data_root)


def _on_cluster(grid: Grid, configs, args: argparse.Namespace) -> dict[str, Any]:
    """``--scheduler``: one task per run (see :mod:`.grid_cluster`)."""
    from .grid_cluster import run_grid_on_cluster

    with cluster_client(args.scheduler) as client:
        return run_grid_on_cluster(grid, client, checkpoint_root=args.checkpoint_root, results_root=args.results_root,
                                   data_root=args.data_root, only=[c.name for c in configs], keep_going=args.keep_going)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the grid (exit codes: :mod:`separation.core.cli`; 1 when a run failed
    with ``--keep-going``; 3 when a run was stopped by ``--stop-after-steps``)."""
    args = grid_parser().parse_args(argv)
    setup_logging(args.verbose > 0)
    return run_command(lambda: _work(args), verbose=args.verbose > 0)


def _work(args: argparse.Namespace) -> int:
    grid = load_grid(args.grid, overrides=args.overrides)
    configs = select(grid, [s.strip() for s in args.only.split(",") if s.strip()] if args.only else None)

    def current():
        return [(c.name, finished(grid, c, args.checkpoint_root, args.results_root)) for c in configs]

    if args.list:
        sys.stdout.write("".join(f"{name}\t{'finished' if rec else 'to do'}\n" for name, rec in current()))
        return 0
    if args.table:
        sys.stdout.write(format_table(current()) + "\n")
        return 0
    # before any work: the folders must be creatable and writable, and torch there
    writable_folder(args.checkpoint_root, "--checkpoint-root")
    writable_folder(args.results_root, "--results-root")
    require("torch", "training a grid")
    from .state import TrainingInterrupted

    try:
        if args.scheduler is not None:
            records = _on_cluster(grid, configs, args)
        else:
            records = run_grid(grid, checkpoint_root=args.checkpoint_root, results_root=args.results_root,
                               data_root=args.data_root, only=[c.name for c in configs],
                               progress=progress_of(args), keep_going=args.keep_going)
    except TrainingInterrupted as exc:
        print(f"stopped: {exc}", file=sys.stderr)
        return 128 + exc.signum if exc.signum else EXIT_STOPPED
    sys.stdout.write(format_table(current()) + "\n")
    return 1 if any(r is None for r in records.values()) else 0


__all__ = ["MODULE", "grid_command", "grid_parser", "main"]
