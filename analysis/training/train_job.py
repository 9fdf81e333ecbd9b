"""The job of ``python -m analysis.train``: one :class:`~analysis.train_config.TrainConfig` from a file
and flags, its folders, training (or resuming, or reusing), and the printed outcome.

Folders: the checkpoint goes to ``<checkpoint root>/<group>/<name>-<key>/`` and the record's copy to
``<results root>/<group>/<name>-<key>/record.json``, ``key`` hashing every setting that changes
the result (:meth:`analysis.records.TrainingRecord.key_for`): two configurations never share a
folder, and ``--restart`` deletes only the files of its own configuration.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import typing
from pathlib import Path
from typing import Any, Sequence

from separation.core.cli import integer, progress_of, run_command, setup_logging
from separation.core.extras import require
from separation.core.paths import below, safe_name, writable_folder
from separation.core.pipeline import RecordJob

from ..records import TrainingRecord
from ..train_config import TrainConfig, load_config

DEFAULT_CHECKPOINT_ROOT = Path("checkpoints")
DEFAULT_RESULTS_ROOT = Path("runs") / "training"
#: Exit code of a run stopped by ``--stop-after-steps`` (resume by running it again).
EXIT_STOPPED = 3
#: TrainConfig fields that have a flag of their own (the nested mappings are set with --param / --set).
FLAG_FIELDS = tuple(f.name for f in dataclasses.fields(TrainConfig) if f.name not in ("method_params", "evaluation"))


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
        if f.name in FLAG_FIELDS:
            group.add_argument("--" + f.name.replace("_", "-"), dest=f"field_{f.name}", default=None,
                               metavar="VALUE", help=f"TrainConfig.{f.name} (default from profile/file: "
                                                     f"{f.default if f.default is not dataclasses.MISSING else '[]'})")


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """File < ``--<field>`` flags < ``--param`` < ``--set``. Flags of string fields are taken as
    typed (``--name 123`` is the name "123"); the others are parsed as YAML values (``--lr 1e-4``)."""
    hints = typing.get_type_hints(TrainConfig)
    given = {f: getattr(args, f"field_{f}") for f in FLAG_FIELDS if getattr(args, f"field_{f}", None) is not None}
    strings = {k: v for k, v in given.items() if hints[k] in (str, str | None)}
    overrides = [f"{k}={v}" for k, v in given.items() if k not in strings]
    overrides += [f"method_params.{p}" for p in args.params] + list(args.overrides)
    return load_config(args.config, overrides=overrides, extra=strings)


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


def run_folders(cfg: TrainConfig, group: str, checkpoint_root, results_root) -> tuple[Path, Path | None]:
    """``(checkpoint folder, results folder or None)`` of one run: ``<root>/<group>/<name>-<key>``."""
    name = TrainingRecord.folder_name(cfg, TrainingRecord.key_for(cfg))
    sub = Path(safe_name(group, "group")) / name
    return below(checkpoint_root, sub), (below(results_root, sub) if results_root is not None else None)


class TrainJob(RecordJob):
    """``python -m analysis.train``: train one model with one of the paper's methods."""

    module = "analysis.train"
    description = ("Train one model with one of the paper's methods (natural, gr, llr, at, rst, trades), "
                   "checkpointing and resuming, then evaluate it and write its record.")
    record_type = TrainingRecord
    takes_data = False
    always_shown = ()

    def add_arguments(self, p: argparse.ArgumentParser) -> None:
        add_config_arguments(p)
        p.add_argument("--group", default="runs", help="sub-folder of the checkpoint and results roots (a grid's name).")
        p.add_argument("--checkpoint-root", type=Path, default=DEFAULT_CHECKPOINT_ROOT,
                       help=f"checkpoints go to ROOT/GROUP/NAME-KEY (default {DEFAULT_CHECKPOINT_ROOT}).")
        p.add_argument("--results-root", type=Path, default=DEFAULT_RESULTS_ROOT,
                       help=f"the record's copy goes to ROOT/GROUP/NAME-KEY/record.json (default {DEFAULT_RESULTS_ROOT}).")
        p.add_argument("--no-results-copy", action="store_true", help="do not copy the record to --results-root.")
        p.add_argument("--data-root", type=Path, default=None, help="dataset folder (torchvision layout).")
        p.add_argument("--restart", action="store_true",
                       help="discard this configuration's checkpoint and record and start over.")
        p.add_argument("--no-eval", action="store_true", help="train only (no evaluation, no record).")
        p.add_argument("--checkpoint-every-steps", type=integer(1), default=None,
                       help="also checkpoint every N steps within an epoch.")
        p.add_argument("--stop-after-steps", type=integer(1), default=None,
                       help="checkpoint and stop after N optimiser steps (resume by re-running).")
        p.add_argument("--print-config", action="store_true", help="print the resolved config (YAML) and exit.")

    def parser(self) -> argparse.ArgumentParser:
        p = argparse.ArgumentParser(prog=f"python -m {self.module}", description=self.description)
        self.add_arguments(p)
        p.add_argument("--no-progress", action="store_true", help="no progress bars.")
        p.add_argument("-v", "--verbose", action="count", default=0)
        return p

    def configure(self, args: argparse.Namespace, data: None) -> TrainConfig:
        return config_from_args(args)

    def compute(self, args, data, config):  # pragma: no cover - train() writes its own checkpoints and record
        raise NotImplementedError("analysis.train runs through TrainJob.main")

    def values_of(self, config: TrainConfig) -> dict[str, Any]:
        """Every field that differs from the dataclass default as its flag, the method parameters as
        ``--param`` and the evaluation settings as ``--set`` (the profile is applied first, so the
        explicit values reproduce the configuration)."""
        plain = TrainConfig(method=config.method, dataset=config.dataset, eps=config.eps)
        values: dict[str, Any] = {f"field_{f}": getattr(config, f) for f in FLAG_FIELDS
                                  if getattr(config, f) != getattr(plain, f) or f in ("name", "method", "dataset")}
        values = {k: (v if isinstance(v, str) else _yaml_value(v)) for k, v in values.items()}
        values["params"] = [f"{k}={_yaml_value(v)}" for k, v in config.method_params.items()] or None
        values["overrides"] = [f"evaluation.{k}={_yaml_value(v)}" for k, v in config.evaluation.items()] or None
        return values

    def summary(self, record: TrainingRecord) -> str:
        return f"{record.config.name}: {summarize(record)}"

    def main(self, argv: Sequence[str] | None = None) -> int:
        args = self.parser().parse_args(argv)
        setup_logging(args.verbose > 0)
        return run_command(lambda: self._work(args), verbose=args.verbose > 0)

    def _work(self, args: argparse.Namespace) -> int:
        require("torch", "training")
        from .loop import train
        from .state import TrainingInterrupted

        cfg = self.configure(args, None)
        if args.print_config:
            import yaml

            sys.stdout.write(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
            return 0
        writable_folder(args.checkpoint_root, "--checkpoint-root")
        if not args.no_results_copy:
            writable_folder(args.results_root, "--results-root")
        run_dir, results_dir = run_folders(cfg, args.group, args.checkpoint_root,
                                           None if args.no_results_copy else args.results_root)
        writable_folder(run_dir, "--checkpoint-root")
        if results_dir is not None:
            writable_folder(results_dir, "--results-root")
        try:
            outcome = train(cfg, run_dir=run_dir, results_dir=results_dir, data_root=args.data_root,
                            progress=progress_of(args), evaluate=not args.no_eval,
                            stop_after_steps=args.stop_after_steps, checkpoint_every_steps=args.checkpoint_every_steps,
                            restart=args.restart)
        except TrainingInterrupted as exc:
            print(f"stopped: {exc}", file=sys.stderr)
            return 128 + exc.signum if exc.signum else EXIT_STOPPED
        if outcome.record is not None:
            print(f"{cfg.name} ({outcome.status}): {summarize(outcome.record)}")
            print(f"record: {outcome.run_dir / 'record.json'}")
        return 0


def _yaml_value(v: Any) -> str:
    """A value as ``--set``/``--<field>`` parse it back (YAML flow style)."""
    import yaml

    return yaml.safe_dump(v, default_flow_style=True).strip().removesuffix("\n...").strip()


__all__ = ["DEFAULT_CHECKPOINT_ROOT", "DEFAULT_RESULTS_ROOT", "EXIT_STOPPED", "FLAG_FIELDS", "TrainJob",
           "add_config_arguments", "config_from_args", "run_folders", "summarize"]
