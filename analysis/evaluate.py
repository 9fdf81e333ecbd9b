"""``python -m analysis.evaluate``: evaluate a model and write one ``evaluate`` record.

::

    python -m analysis.evaluate --checkpoint model.pt --dataset mnist --eps 0.1 --data-root ./data --subset 500
    python -m analysis.evaluate --model constructed --dataset digits --subset 300

The library entry point is :func:`analysis.evaluation.evaluate`. Exit status: 0 on success, 2 on
bad input (one line on stderr, nothing written), 130 on Ctrl-C.
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from separation.cli import (UsageError, add_record_arguments, integer, nonnegative_float, positive_float, run_main,
                            setup_logging, writable_folder)
from separation.datasets import DATASET_NAMES, DatasetNotFoundError, load_dataset
from separation.paper import ATTACK_NORMS
from separation.records import RecordError

log = logging.getLogger("analysis.evaluate")

DEFAULT_ATTACKS = ("pgd", "multitargeted")


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    from separation.paper import LIPSCHITZ_STEP_SIZE, LIPSCHITZ_STEPS

    from .attack_suite import ATTACK_NAMES
    from .evaluation import LIPSCHITZ_RNGS
    from .models import ARCHITECTURES
    from .models.registry import SOURCES

    p = argparse.ArgumentParser(
        prog="python -m analysis.evaluate",
        description="Evaluate a model: clean / adversarial train and test accuracy, the empirical local "
                    "Lipschitz constant, and their gaps; writes one result record.", add_help=add_help)
    p.add_argument("--model", default="checkpoint", choices=SOURCES,
                   help="'checkpoint' (default: --checkpoint PATH) or 'constructed' (the locally Lipschitz "
                        "classifier of lipschitz_construct, fitted on the evaluated training points)")
    p.add_argument("--checkpoint", type=Path, default=None,
                   help="checkpoint file (analysis.checkpoints format or a bare state dict)")
    p.add_argument("--arch", default=None,
                   help=f"architecture ({', '.join(ARCHITECTURES)}); default: the checkpoint's config['arch']")
    p.add_argument("--dataset", default="mnist", choices=DATASET_NAMES, help="dataset (default mnist)")
    p.add_argument("--data-root", default=None, help="data folder in torchvision's layout")
    p.add_argument("--npz", default=None, help="file for --dataset npz")
    p.add_argument("--download", action="store_true", help="download the dataset if missing")
    p.add_argument("--eps", type=nonnegative_float, default=None,
                   help="attack radius (default: the paper's for the dataset, e.g. 0.1 for MNIST)")
    p.add_argument("--norm", default="linf", choices=ATTACK_NORMS, help="threat model (default linf)")
    p.add_argument("--attacks", default=",".join(DEFAULT_ATTACKS),
                   help=f"comma-separated from {', '.join(ATTACK_NAMES)}, or 'none' (default {','.join(DEFAULT_ATTACKS)})")
    p.add_argument("--pgd-steps", type=integer(0), default=10, help="PGD steps (default 10)")
    p.add_argument("--pgd-step-size", type=positive_float, default=None, help="PGD step (default eps/5)")
    p.add_argument("--pgd-restarts", type=integer(1), default=1, help="PGD random restarts (default 1)")
    p.add_argument("--mt-steps", type=integer(0), default=20, help="multi-targeted steps per target (default 20)")
    p.add_argument("--mt-step-size", type=positive_float, default=None, help="multi-targeted step (default eps/10)")
    p.add_argument("--aa-version", default="standard", choices=["standard", "plus", "rand"],
                   help="AutoAttack version (default standard)")
    p.add_argument("--lipschitz", default="ascent,paper",
                   help="Lipschitz modes: 'ascent,paper' (default), 'ascent', 'paper' or 'none'")
    p.add_argument("--lip-steps", type=integer(0), default=LIPSCHITZ_STEPS, help="estimator steps (default %(default)s)")
    p.add_argument("--lip-step-size", type=positive_float, default=LIPSCHITZ_STEP_SIZE,
                   help="estimator step (default %(default)s)")
    p.add_argument("--lip-eps", type=positive_float, default=None, help="estimator ball radius (default --eps)")
    p.add_argument("--lipschitz-rng", default="generator", choices=LIPSCHITZ_RNGS,
                   help="random numbers of the estimator: 'generator' (default: a private generator seeded by "
                        "--seed) or 'official' (torch's global generator seeded by --seed, consumed as the "
                        "official code does: paper-mode values equal the official procedure's)")
    p.add_argument("--subset", type=integer(2), default=None,
                   help="evaluate a fixed random subset of N train and N test points")
    p.add_argument("--train-points", default="checkpoint", choices=["checkpoint", "all"],
                   help="'checkpoint' (default): when the checkpoint's config records train_subset / "
                        "subset_seed, the train split is the points it was trained on (analysis.train's "
                        "rule); 'all': the dataset's whole training split")
    p.add_argument("--seed", type=integer(0), default=0, help="seed of --subset, random starts and noise (default 0)")
    p.add_argument("--batch-size", type=integer(1), default=128, help="batch size (default 128)")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default)")
    p.add_argument("--threads", type=integer(1), default=None,
                   help="torch CPU threads (default: torch's choice; 1 is best for small models on a busy machine)")
    p.add_argument("--name", default=None, help="model name in the record (default: checkpoint file stem)")
    add_record_arguments(p, kind="evaluate")
    return p


def attack_specs_from_args(args) -> list[dict[str, Any]]:
    from .attack_suite import attack_spec

    names = [a.strip() for a in args.attacks.split(",") if a.strip()]
    if names == ["none"]:
        return []
    specs = []
    for n in names:
        spec = attack_spec(n)
        if spec["name"] == "pgd":
            spec.update(steps=args.pgd_steps, step_size=args.pgd_step_size, restarts=args.pgd_restarts)
        elif spec["name"] == "multitargeted":
            spec.update(steps=args.mt_steps, step_size=args.mt_step_size)
        else:
            spec.update(version=args.aa_version)
        specs.append(spec)
    return specs


def lipschitz_modes(text: str) -> tuple[str, ...]:
    text = text.replace("both", "ascent,paper")
    return () if text.strip() in ("none", "") else tuple(m.strip() for m in text.split(",") if m.strip())


def restrict_to_training_points(dataset, config: Mapping[str, Any]):
    """The train split restricted to the points a checkpoint was trained on, when its config says
    (``train_subset``, ``subset_seed``: ``sort(default_rng(subset_seed).choice(n, train_subset))``,
    the rule of ``analysis.train``). Returns ``(dataset, description or None)``."""
    k = config.get("train_subset")
    n = len(dataset.x_train)
    if k is None or int(k) >= n:
        return dataset, None
    seed = int(config.get("subset_seed", 0) or 0)
    idx = np.sort(np.random.default_rng(seed).choice(n, int(k), replace=False))
    log.info("train split: the checkpoint's %d training points (subset_seed %d)", len(idx), seed)
    return (dataclasses.replace(dataset, x_train=dataset.x_train[idx], y_train=dataset.y_train[idx]),
            {"train_subset": int(k), "subset_seed": seed})


def run(args: argparse.Namespace):
    import torch

    from .evaluation import EvalConfig, evaluate
    from .models.registry import load_model

    if args.model == "checkpoint" and not args.checkpoint:
        raise UsageError("pass --checkpoint PATH (or --model constructed).")
    if args.model == "constructed" and (args.checkpoint or args.arch):
        raise UsageError("--checkpoint/--arch are not used with --model constructed; drop them.")
    if args.checkpoint and not Path(args.checkpoint).is_file():
        raise UsageError(f"checkpoint {args.checkpoint} not found; pass the path of a checkpoint file.")
    out = writable_folder(args.out)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    config = EvalConfig(eps=args.eps, norm=args.norm, attacks=tuple(attack_specs_from_args(args)),
                        lipschitz=lipschitz_modes(args.lipschitz), lipschitz_eps=args.lip_eps,
                        lipschitz_steps=args.lip_steps, lipschitz_step_size=args.lip_step_size,
                        lipschitz_rng=args.lipschitz_rng, subset=args.subset, seed=args.seed,
                        batch_size=args.batch_size, device=args.device)
    ds = load_dataset(args.dataset, root=args.data_root, download=args.download, npz_path=args.npz)
    if args.subset is not None and args.subset > len(ds.x_train):
        raise UsageError(f"--subset {args.subset} is larger than the {len(ds.x_train)} training points of "
                         f"{args.dataset}; pass a smaller --subset or leave it out.")
    train_points = None
    if args.model == "constructed":
        # fitted on the evaluated points: subset first (evaluate's own subset of them is all of them)
        ds = ds.subset(args.subset, seed=args.seed)
        model, spec = load_model("constructed", ds, norm=args.norm)
    else:
        model, spec = load_model("checkpoint", ds, path=args.checkpoint, arch=args.arch)
        if args.train_points == "checkpoint":
            ds, train_points = restrict_to_training_points(ds, spec.config)
    return evaluate(model, ds, config, out=out, force=args.force, progress=None if not args.no_progress else False,
                    name=args.name or spec.name, model_spec=spec, train_points=train_points,
                    checkpoint=str(args.checkpoint) if args.checkpoint else None)


def main(argv: list[str] | None = None) -> int:
    from .checkpoints import CheckpointError
    from .evaluation import format_summary

    args = get_args_parser().parse_args(argv)
    setup_logging(args.verbose)

    def work() -> int:
        ev = run(args)
        print(format_summary(ev.result))
        if ev.reused:
            print(f"reused the record computed {ev.record.meta.created} in {ev.folder} (--force recomputes)")
        else:
            print(f"record: {ev.folder}")
        return 0

    return run_main(work, (CheckpointError, DatasetNotFoundError, FileNotFoundError, PermissionError, ValueError, MemoryError,
                           TypeError, UsageError, RecordError))


__all__ = ["DEFAULT_ATTACKS", "attack_specs_from_args", "get_args_parser", "lipschitz_modes", "main",
           "restrict_to_training_points", "run"]


if __name__ == "__main__":
    sys.exit(main())
