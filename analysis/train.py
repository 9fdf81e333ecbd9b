"""``python -m analysis.train``: train one model with one of the paper's methods, checkpoint it,
resume it, evaluate it.

::

    python -m analysis.train --config configs/examples/mnist_trades_cpu.yaml --data-root ./data
    python -m analysis.train --config configs/examples/mnist_trades_cpu.yaml --param beta=3 --dropout 0.5

One :class:`~analysis.config.TrainConfig` describes the run (file < ``--<field>`` flags < ``--set``).
Re-running the same command resumes from the checkpoint and reaches bit for bit the weights an
uninterrupted run reaches; SIGINT/SIGTERM stop at the next step boundary after saving (exit
130/143). Exit status: 0 done, 2 bad input, 3 stopped by ``--stop-after-steps``.
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
import typing
from pathlib import Path

from separation.cli import UsageError, writable_folder

from .config import ConfigError, TrainConfig, load_config

log = logging.getLogger("analysis.train")

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CHECKPOINT_ROOT = Path("checkpoints")
DEFAULT_RESULTS_ROOT = Path("runs") / "training"


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """``--config FILE``, ``--set field=value`` and one ``--<field>`` flag per simple config field."""
    parser.add_argument("--config", type=Path, help="YAML or JSON file with TrainConfig fields.")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="FIELD=VALUE",
                        help="override any field, nested with dots (e.g. method_params.beta=3, "
                             "evaluation.subset=500, milestones=[2,3]); repeatable; applied last.")
    parser.add_argument("--param", dest="params", action="append", default=[], metavar="NAME=VALUE",
                        help="shorthand for --set method_params.NAME=VALUE (e.g. --param beta=3).")
    group = parser.add_argument_group("config fields (override the file)")
    for f in dataclasses.fields(TrainConfig):
        if f.name in ("method_params", "evaluation"):
            continue
        group.add_argument("--" + f.name.replace("_", "-"), dest=f"field_{f.name}", default=None, metavar="VALUE",
                           help=f"TrainConfig.{f.name} (default from profile/file: "
                                f"{f.default if f.default is not dataclasses.MISSING else '[]'})")


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """File < ``--<field>`` flags < ``--param`` < ``--set``. Flags of string fields are taken as
    typed (``--name 123`` is the name "123"); the others are parsed as YAML values (``--lr 1e-4``)."""
    hints = typing.get_type_hints(TrainConfig)
    given = {f.name: getattr(args, f"field_{f.name}") for f in dataclasses.fields(TrainConfig)
             if getattr(args, f"field_{f.name}", None) is not None}
    strings = {k: v for k, v in given.items() if hints[k] in (str, str | None)}
    overrides = [f"{k}={v}" for k, v in given.items() if k not in strings]
    overrides += [f"method_params.{p}" for p in args.params] + list(args.overrides)
    return load_config(args.config, overrides=overrides, extra=strings)


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m analysis.train",
        description="Train one model with one of the paper's methods (natural, gr, llr, at, rst, trades), "
                    "checkpointing and resuming, then evaluate it and write its record.")
    add_config_arguments(p)
    p.add_argument("--group", default="runs", help="sub-folder of the checkpoint and results roots (a grid's name).")
    p.add_argument("--checkpoint-root", type=Path, default=DEFAULT_CHECKPOINT_ROOT,
                   help=f"checkpoints go to ROOT/GROUP/NAME (default {DEFAULT_CHECKPOINT_ROOT}).")
    p.add_argument("--results-root", type=Path, default=DEFAULT_RESULTS_ROOT,
                   help=f"the record's copy goes to ROOT/GROUP/NAME/record.json (default {DEFAULT_RESULTS_ROOT}).")
    p.add_argument("--no-results-copy", action="store_true", help="do not copy the record to --results-root.")
    p.add_argument("--data-root", type=Path, default=None, help="dataset folder (torchvision layout).")
    p.add_argument("--restart", action="store_true", help="discard an existing checkpoint/record and start over.")
    p.add_argument("--no-eval", action="store_true", help="train only (no evaluation, no record).")
    p.add_argument("--checkpoint-every-steps", type=int, default=None, help="also checkpoint every N steps within an epoch.")
    p.add_argument("--stop-after-steps", type=int, default=None,
                   help="checkpoint and stop after N optimiser steps (resume by re-running).")
    p.add_argument("--print-config", action="store_true", help="print the resolved config (YAML) and exit.")
    p.add_argument("--no-progress", action="store_true", help="no progress bars.")
    p.add_argument("-v", "--verbose", action="count", default=0)
    return p


def setup_logging(verbose: int = 0) -> None:
    from separation.cli import setup_logging as setup

    setup(verbose > 0)


def summarize(rec) -> str:
    """One line of a training record: test/train clean and adversarial accuracy, Lipschitz, gaps."""
    ev = rec.result.evaluation if rec is not None else None
    if ev is None:
        return "(no evaluation)"
    parts = []
    for split in ("test", "train"):
        s = ev.split(split)
        for attr, label in (("clean_acc", "acc"), ("adv_acc", "adv"), ("lipschitz_mean", "lip"),
                            ("lipschitz_paper_mean", "lip_paper")):
            v = getattr(s, attr) if s is not None else None
            if v is not None:
                parts.append(f"{split}_{label}={v:.4g}")
    parts += [f"gap_{k}={v:.4g}" for k, v in dataclasses.asdict(ev.gaps).items() if v is not None]
    return ", ".join(parts)


def main(argv: list[str] | None = None) -> int:
    from .training import CheckpointMismatch, TrainingInterrupted, train

    args = get_args_parser().parse_args(argv)
    setup_logging(args.verbose)
    try:
        cfg = config_from_args(args)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.print_config:
        import yaml

        sys.stdout.write(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
        return 0
    run_dir = args.checkpoint_root / args.group / cfg.name
    results_dir = None if args.no_results_copy else args.results_root / args.group / cfg.name
    try:  # before any work: the folders must be creatable and writable
        writable_folder(run_dir, "--checkpoint-root")
        if results_dir is not None:
            writable_folder(results_dir, "--results-root")
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        outcome = train(cfg, run_dir=run_dir, results_dir=results_dir, data_root=args.data_root,
                        progress=None if not args.no_progress else False, evaluate=not args.no_eval,
                        stop_after_steps=args.stop_after_steps, checkpoint_every_steps=args.checkpoint_every_steps,
                        restart=args.restart)
    except TrainingInterrupted as exc:
        print(f"stopped: {exc}", file=sys.stderr)
        return 128 + exc.signum if exc.signum else 3
    except KeyboardInterrupt:
        print("interrupted: run the command again to resume from the last checkpoint", file=sys.stderr)
        return 130
    except (ConfigError, CheckpointMismatch, FileNotFoundError, ValueError, FloatingPointError) as exc:
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    if outcome.record is not None:
        print(f"{cfg.name} ({outcome.status}): {summarize(outcome.record)}")
        print(f"record: {outcome.run_dir / 'record.json'}")
    return 0


__all__ = ["DEFAULT_CHECKPOINT_ROOT", "DEFAULT_RESULTS_ROOT", "add_config_arguments", "config_from_args",
           "get_args_parser", "main", "setup_logging", "summarize"]


if __name__ == "__main__":
    sys.exit(main())
