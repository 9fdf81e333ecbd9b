"""Train and evaluate every run of a grid file, skipping finished runs.

``python -m analysis.grid configs/mnist_cpu.yaml``

A grid file (YAML or JSON)::

    grid: mnist_cpu              # name: checkpoints/<grid>/<run>/, results/training/<grid>/<run>/
    base:                        # TrainConfig fields shared by every run (``profile`` supplies
      profile: cpu               #   the per-dataset budget, see configs/profiles/)
      dataset: mnist
    vary:                        # optional: every run is repeated for each combination
      dropout: [0.0, 0.5]
    runs:                        # one entry per method setting (TrainConfig fields)
      - {method: natural}
      - {method: trades, method_params: {beta: 6}}

A run's name is its ``name`` field, else derived from method, main parameter and dropout
(``trades-b6-drop0.5``); varied fields other than dropout (or an explicit name) add a
``-<field><value>`` suffix. Re-running the command skips runs whose record exists with the same
config and resumes interrupted ones from their checkpoints.
"""
from __future__ import annotations

import argparse
import dataclasses
import itertools
import logging
import math
import os
import sys
import time
from pathlib import Path
from typing import Any, Mapping

from .config import ConfigError, TrainConfig, build_config, load_mapping
from .train import (DEFAULT_CHECKPOINT_ROOT, DEFAULT_RESULTS_ROOT, CheckpointMismatch,
                    TrainingInterrupted, setup_logging, summarize, train)

log = logging.getLogger(__name__)

_GRID_KEYS = {"grid", "base", "vary", "runs", "description"}


@dataclasses.dataclass
class Grid:
    """A named list of run configs."""

    name: str
    configs: list[TrainConfig]
    description: str = ""

    def names(self) -> list[str]:
        return [c.name for c in self.configs]


def _suffix(key: str, value: Any) -> str:
    return f"-{key}{value:g}" if isinstance(value, float) else f"-{key}{value}"


def expand_grid(spec: Mapping[str, Any], *, overrides: list[str] | tuple[str, ...] = (),
                source: str = "grid") -> Grid:
    """Turn a grid mapping into one :class:`TrainConfig` per run (overrides apply to every run)."""
    unknown = sorted(set(spec) - _GRID_KEYS)
    if unknown:
        raise ConfigError(f"{source}: unknown key(s) {', '.join(unknown)}; a grid has "
                          f"{', '.join(sorted(_GRID_KEYS))}.")
    name = spec.get("grid")
    if not name or not isinstance(name, str) or "/" in name:
        raise ConfigError(f"{source}: 'grid' must name the grid (a folder name, e.g. mnist_cpu).")
    base = spec.get("base") or {}
    runs = spec.get("runs") or []
    vary = spec.get("vary") or {}
    if not isinstance(runs, list) or not runs:
        raise ConfigError(f"{source}: 'runs' must be a non-empty list of run settings.")
    if not isinstance(vary, Mapping) or any(not isinstance(v, list) or not v for v in vary.values()):
        raise ConfigError(f"{source}: 'vary' must map fields to non-empty lists of values.")
    keys = list(vary)
    configs = []
    for i, run in enumerate(runs):
        if not isinstance(run, Mapping):
            raise ConfigError(f"{source}: runs[{i}] must be a mapping of TrainConfig fields.")
        for combo in itertools.product(*(vary[k] for k in keys)):
            assignment = dict(zip(keys, combo))
            try:
                cfg = build_config(base, run, assignment, overrides=overrides)
            except ConfigError as exc:
                raise ConfigError(f"{source}: runs[{i}] {dict(run)} with {assignment}: {exc}") from None
            explicit = bool(run.get("name"))
            name_ = cfg.name
            for k, v in assignment.items():
                if explicit or k != "dropout":
                    name_ += _suffix(k, v)
            if name_ != cfg.name:
                cfg = dataclasses.replace(cfg, name=name_)
            configs.append(cfg)
    names = [c.name for c in configs]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ConfigError(f"{source}: run names repeat ({', '.join(dup)}); give those runs distinct "
                          "'name' fields.")
    return Grid(name, configs, str(spec.get("description") or ""))


def load_grid(path: str | os.PathLike, *, overrides: list[str] | tuple[str, ...] = ()) -> Grid:
    return expand_grid(load_mapping(path), overrides=overrides, source=str(path))


def _fmt(v, pct: bool = True) -> str:
    if not isinstance(v, (int, float)) or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{100 * v:.1f}" if pct else f"{v:.3g}"


def format_table(records: list[tuple[str, Mapping[str, Any] | None]]) -> str:
    """A Markdown table of the grid's records: accuracy, PGD accuracy, Lipschitz, gaps, time."""
    head = ("| run | method | dropout | train acc | test acc | train adv | test adv | train lip | "
            "test lip | gap clean | gap adv | train s | eval s |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for name, rec in records:
        if rec is None:
            lines.append(f"| {name} | (not finished) |" + " |" * (head.count("|") - 3))
            continue
        cfg = rec.get("config", {})
        ev = rec.get("result", {}).get("evaluation", {}) or {}
        tr, te, gaps = ev.get("train") or {}, ev.get("test") or {}, ev.get("gaps") or {}
        t = rec.get("timing", {})
        lines.append(
            f"| {name} | {cfg.get('method')} | {cfg.get('dropout'):g} | {_fmt(tr.get('clean_acc'))} | "
            f"{_fmt(te.get('clean_acc'))} | {_fmt(tr.get('adv_acc'))} | {_fmt(te.get('adv_acc'))} | "
            f"{_fmt(tr.get('lipschitz_mean'), False)} | {_fmt(te.get('lipschitz_mean'), False)} | "
            f"{_fmt(gaps.get('clean'))} | {_fmt(gaps.get('adv'))} | {t.get('train_seconds', 0):.0f} | "
            f"{t.get('eval_seconds', 0):.0f} |")
    return "\n".join(lines)


def run_grid(grid: Grid, *, checkpoint_root: str | os.PathLike = DEFAULT_CHECKPOINT_ROOT,
             results_root: str | os.PathLike | None = DEFAULT_RESULTS_ROOT,
             data_root: str | os.PathLike | None = None, only: list[str] | None = None,
             progress: bool = True, keep_going: bool = False) -> dict[str, Any]:
    """Train/evaluate every run (finished ones are reused); returns ``{name: record or None}``.

    Datasets are loaded once per name and shared by the runs. With ``keep_going`` a failing run is
    logged and the grid continues; otherwise the error propagates.
    """
    from separation.datasets import load_dataset

    configs = grid.configs
    if only:
        missing = sorted(set(only) - set(grid.names()))
        if missing:
            raise ConfigError(f"--only: no run(s) named {', '.join(missing)} in grid {grid.name}; "
                              f"runs: {', '.join(grid.names())}.")
        configs = [c for c in configs if c.name in only]
    datasets: dict[str, Any] = {}
    records: dict[str, Any] = {}
    t_grid = time.perf_counter()
    for i, cfg in enumerate(configs, 1):
        log.info("[%d/%d] %s/%s", i, len(configs), grid.name, cfg.name)
        run_dir = Path(checkpoint_root) / grid.name / cfg.name
        res_dir = Path(results_root) / grid.name / cfg.name if results_root is not None else None
        try:
            from .train import finished_record

            done = finished_record(res_dir, cfg) if res_dir is not None else None
            if done is None:
                done = finished_record(run_dir, cfg)
            dataset = None
            if done is None:
                if cfg.dataset not in datasets:
                    datasets[cfg.dataset] = load_dataset(cfg.dataset, root=data_root)
                dataset = datasets[cfg.dataset]
            outcome = train(cfg, run_dir=run_dir, results_dir=res_dir, data_root=data_root,
                            dataset=dataset, progress=progress)
            records[cfg.name] = outcome.record
            log.info("[%d/%d] %s (%s): %s", i, len(configs), cfg.name, outcome.status,
                     summarize(outcome.record or {}))
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
    p.add_argument("--no-progress", action="store_true", help="no tqdm bars.")
    p.add_argument("-v", "--verbose", action="count", default=0)
    return p


def main(argv: list[str] | None = None) -> int:
    from .train import finished_record

    args = get_args_parser().parse_args(argv)
    setup_logging(args.verbose)
    try:
        grid = load_grid(args.grid, overrides=args.overrides)
    except ConfigError as exc:
        log.error("%s", exc)
        return 2
    only = [s.strip() for s in args.only.split(",") if s.strip()] if args.only else None

    def current() -> list[tuple[str, Any]]:
        out = []
        for c in grid.configs:
            if only and c.name not in only:
                continue
            rec = finished_record(args.results_root / grid.name / c.name, c)
            if rec is None:
                rec = finished_record(args.checkpoint_root / grid.name / c.name, c)
            out.append((c.name, rec))
        return out

    if args.list:
        for name, rec in current():
            sys.stdout.write(f"{name}\t{'finished' if rec else 'to do'}\n")
        return 0
    if args.table:
        sys.stdout.write(format_table(current()) + "\n")
        return 0
    status = 0
    try:
        records = run_grid(grid, checkpoint_root=args.checkpoint_root, results_root=args.results_root,
                           data_root=args.data_root, only=only, progress=not args.no_progress,
                           keep_going=args.keep_going)
        if any(r is None for r in records.values()):
            status = 1
    except TrainingInterrupted as exc:
        log.warning("%s", exc)
        return 128 + exc.signum if exc.signum else 3
    except (ConfigError, CheckpointMismatch, FileNotFoundError) as exc:
        log.error("%s", exc)
        return 2
    sys.stdout.write(format_table(current()) + "\n")
    return status


if __name__ == "__main__":
    sys.exit(main())
