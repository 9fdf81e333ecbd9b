"""The job of ``python -m analysis.evaluate``: evaluate a model (a checkpoint, or the constructed
classifier of the proof) and write one ``evaluate`` record.

The library entry point is :func:`analysis.model_metrics.evaluate_model`.
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from separation.core.cli import eps_float, integer, positive_float, progress_of
from separation.core.datasets import Dataset
from separation.core.errors import UsageError
from separation.core.extras import require
from separation.core.paper import ATTACK_NORMS, LIPSCHITZ_STEP_SIZE, LIPSCHITZ_STEPS
from separation.core.paths import safe_name
from separation.core.pipeline import Computed, RecordJob, add_data_arguments, load_data

from .architectures import ARCHITECTURES
from .attack_specs import ATTACK_NAMES, attack_spec
from .eval_config import LIPSCHITZ_RNGS, EvalConfig, format_summary
from .models.sources import SOURCES
from .records import EvaluationConfig, EvaluationRecord

log = logging.getLogger("analysis.evaluate")

DEFAULT_ATTACKS = ("pgd", "multitargeted")
#: Placeholder for the checkpoint file in the command line of a record.
CHECKPOINT_PLACEHOLDER = "CHECKPOINT"
#: Placeholder for the bounds record (or its root) in the command line of a record compared with one.
BOUNDS_PLACEHOLDER = "BOUNDS_RECORD"


def default_bounds_root(out: str | Path) -> Path:
    """Where an evaluation looks for a bounds record of its points without ``--bounds-from``: the
    ``bounds`` folder beside its records root (``runs/bounds`` for ``runs/evaluate``,
    ``results/bounds`` for ``results/evaluate``)."""
    return Path(out).parent / "bounds"


def attack_specs_from_args(args) -> list[dict[str, Any]]:
    """The attacks ``--attacks`` names, with their ``--pgd-*`` / ``--mt-*`` / ``--aa-*`` settings."""
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
    """``--lipschitz`` as a tuple of modes (``ascent``, ``paper``; ``none`` for none)."""
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


class EvaluateJob(RecordJob):
    """``python -m analysis.evaluate``: clean / adversarial accuracy, the empirical local Lipschitz
    constant and their gaps, of a checkpoint or of the constructed classifier."""

    module = "analysis.evaluate"
    description = ("Evaluate a model: clean / adversarial train and test accuracy, the empirical local "
                   "Lipschitz constant, and their gaps; writes one result record.")
    record_type = EvaluationRecord
    out_kind = "evaluate"
    always_shown = ("model", "dataset", "norm", "eps", "checkpoint")
    shown_steps = ("total",)

    def add_data_arguments(self, p: argparse.ArgumentParser) -> None:
        p.add_argument("--model", default="checkpoint", choices=SOURCES,
                       help="'checkpoint' (default: --checkpoint PATH) or 'constructed' (the locally Lipschitz "
                            "classifier of lipschitz_construct, fitted on the evaluated training points)")
        p.add_argument("--checkpoint", type=Path, default=None,
                       help="checkpoint file (analysis.checkpoints format or a bare state dict)")
        p.add_argument("--arch", default=None,
                       help=f"architecture ({', '.join(ARCHITECTURES)}); default: the checkpoint's config['arch']")
        add_data_arguments(p, norms=ATTACK_NORMS, seed_help="seed of --subset, random starts and noise (default 0)")
        p.set_defaults(dataset="mnist")
        p.add_argument("--eps", type=eps_float, nargs="+", default=None,
                       help="attack radius, or several: the test points are then attacked at each (a robust-accuracy "
                            "curve) and the headline numbers are at the paper's radius if given, else the smallest "
                            "(default: the paper's for the dataset, e.g. 0.1 for MNIST)")

    def add_arguments(self, p: argparse.ArgumentParser) -> None:
        p.add_argument("--attacks", default=",".join(DEFAULT_ATTACKS),
                       help=f"comma-separated from {', '.join(ATTACK_NAMES)}, or 'none' "
                            f"(default {','.join(DEFAULT_ATTACKS)})")
        p.add_argument("--pgd-steps", type=integer(0, 10**6), default=10, help="PGD steps (default 10)")
        p.add_argument("--pgd-step-size", type=positive_float, default=None, help="PGD step (default eps/5)")
        p.add_argument("--pgd-restarts", type=integer(1, 10**4), default=1, help="PGD random restarts (default 1)")
        p.add_argument("--mt-steps", type=integer(0, 10**6), default=20,
                       help="multi-targeted steps per target (default 20)")
        p.add_argument("--mt-step-size", type=positive_float, default=None, help="multi-targeted step (default eps/10)")
        p.add_argument("--aa-version", default="standard", choices=["standard", "plus", "rand"],
                       help="AutoAttack version (default standard)")
        p.add_argument("--lipschitz", default="ascent,paper",
                       help="Lipschitz modes: 'ascent,paper' (default), 'ascent', 'paper' or 'none'")
        p.add_argument("--lip-steps", type=integer(0, 10**6), default=LIPSCHITZ_STEPS,
                       help="estimator steps (default %(default)s)")
        p.add_argument("--lip-step-size", type=positive_float, default=LIPSCHITZ_STEP_SIZE,
                       help="estimator step (default %(default)s)")
        p.add_argument("--lip-eps", type=positive_float, default=None, help="estimator ball radius (default --eps)")
        p.add_argument("--lipschitz-rng", default="generator", choices=LIPSCHITZ_RNGS,
                       help="random numbers of the estimator: 'generator' (default: a private generator seeded by "
                            "--seed) or 'official' (torch's global generator seeded by --seed, consumed as the "
                            "official code does: paper-mode values equal the official procedure's)")
        p.add_argument("--train-points", default="checkpoint", choices=["checkpoint", "all"],
                       help="'checkpoint' (default): when the checkpoint's config records train_subset / "
                            "subset_seed, the train split is the points it was trained on (analysis.train's "
                            "rule); 'all': the dataset's whole training split")
        p.add_argument("--batch-size", type=integer(1, 1 << 20), default=128, help="batch size (default 128)")
        p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default)")
        p.add_argument("--threads", type=integer(1, 4096), default=None,
                       help="torch CPU threads (default: torch's choice; 1 is best for small models on a busy machine)")
        p.add_argument("--name", default=None, help="model name in the record (default: checkpoint file stem)")
        p.add_argument("--bounds", action="store_true",
                       help="compute the data's optimal robust accuracy on the evaluated test points at each --eps "
                            "(test-test conflicts, lipschitz_construct.robustness_bounds) and put the model's curve "
                            "beside it, with the avoidable errors")
        p.add_argument("--bounds-time-limit", type=positive_float, default=60.0,
                       help="with --bounds: seconds per radius for the exact optimum (default 60)")
        p.add_argument("--bounds-from", type=Path, default=None,
                       help="a bounds record (python -m lipschitz_construct.bounds --split test) of exactly the "
                            "evaluated test points and radii, or a folder searched for one; one of other points is "
                            "refused (default: the bounds/ folder beside --out, used when a record there matches)")

    def load(self, args: argparse.Namespace) -> Dataset:
        """The dataset; the subset is taken by the evaluation itself (after ``--train-points``),
        except for the constructed classifier, which is fitted on the evaluated points."""
        if args.model == "checkpoint" and not args.checkpoint:
            raise UsageError("pass --checkpoint PATH (or --model constructed).")
        if args.model == "constructed" and (args.checkpoint or args.arch):
            raise UsageError("--checkpoint/--arch are not used with --model constructed; drop them.")
        if args.checkpoint and not Path(args.checkpoint).is_file():
            raise UsageError(f"checkpoint {args.checkpoint} not found; pass the path of a checkpoint file.")
        if args.name is not None:
            safe_name(args.name, "--name")
        data = load_data(args, subset=False)
        self._full = data
        if args.subset is not None and args.subset > len(data.x_train):
            raise UsageError(f"--subset {args.subset} is larger than the {len(data.x_train)} training points of "
                             f"{args.dataset}; pass a smaller --subset or leave it out.")
        return data.subset(args.subset, seed=args.seed) if args.model == "constructed" else data

    def configure(self, args: argparse.Namespace, data: Dataset) -> EvaluationConfig:
        torch = require("torch", "evaluating a model (attacks, Lipschitz estimates)")

        from .model_metrics import plan_evaluation
        from .models.sources import load_model

        if args.threads is not None:
            torch.set_num_threads(args.threads)
        if args.bounds and args.bounds_from is not None:
            raise UsageError("--bounds computes the data's optimum and --bounds-from reads a stored one: pass one.")
        settings = EvalConfig(eps=None if args.eps is None else tuple(args.eps), norm=args.norm,
                              bounds=args.bounds, bounds_time_limit=args.bounds_time_limit, attacks=tuple(attack_specs_from_args(args)),
                              lipschitz=lipschitz_modes(args.lipschitz), lipschitz_eps=args.lip_eps,
                              lipschitz_steps=args.lip_steps, lipschitz_step_size=args.lip_step_size,
                              lipschitz_rng=args.lipschitz_rng, subset=args.subset, seed=args.seed,
                              batch_size=args.batch_size, device=args.device)
        train_points = None
        if args.model == "constructed":
            model, spec = load_model("constructed", data, norm=args.norm)
        else:
            model, spec = load_model("checkpoint", data, path=args.checkpoint, arch=args.arch)
            if args.train_points == "checkpoint":
                data, train_points = restrict_to_training_points(data, spec.config)
        record = None if args.bounds or not settings.attacks else self._bounds_record(args, data, settings)
        self._plan = plan_evaluation(model, data, settings, name=args.name or spec.name, model_spec=spec,
                                     train_points=train_points,
                                     checkpoint=str(args.checkpoint) if args.checkpoint else None,
                                     bounds_record=record, bounds_source=self._full)
        return self._plan.config

    def _bounds_record(self, args: argparse.Namespace, data: Dataset, settings: EvalConfig):
        """The bounds record of the evaluated test points at every radius: from ``--bounds-from``
        (refused when of other points), else from the default root when one there matches."""
        from .achievable import find_bounds_record
        from .model_metrics import radii_of

        evaluated = data.subset(args.subset, seed=args.seed) if args.subset is not None else data
        if evaluated.x_test is None or not len(evaluated.x_test):
            if args.bounds_from is not None:
                raise UsageError(f"--bounds-from compares the test points, and {args.dataset} has none here.")
            return None
        where = args.bounds_from if args.bounds_from is not None else default_bounds_root(args.out)
        return find_bounds_record(where, explicit=args.bounds_from is not None, source=self._full,
                                  x_test=evaluated.x_test, y_test=evaluated.y_test, dataset=data.name, norm=args.norm,
                                  eps=radii_of(settings, data))

    def compute(self, args: argparse.Namespace, data: Dataset, config: EvaluationConfig) -> Computed:
        from .model_metrics import run_evaluation

        return run_evaluation(self._plan, progress=progress_of(args))

    def values_of(self, config: EvaluationConfig) -> dict[str, Any]:
        constructed = config.model.arch == "constructed"
        d = config.data
        ach = config.achievable
        return {"model": "constructed" if constructed else "checkpoint",
                "checkpoint": None if constructed else CHECKPOINT_PLACEHOLDER,
                "dataset": d.dataset, "norm": config.norm, "eps": list(config.curve_eps or [config.eps]),
                "subset": d.subset, "seed": config.seed, "bounds": ach is not None and ach.source == "computed",
                "bounds_time_limit": ach.time_limit if ach is not None and ach.time_limit is not None else None,
                "bounds_from": BOUNDS_PLACEHOLDER if ach is not None and ach.source == "record" else None}

    def summary(self, record: EvaluationRecord) -> str:
        return format_summary(record.result)


__all__ = ["BOUNDS_PLACEHOLDER", "CHECKPOINT_PLACEHOLDER", "DEFAULT_ATTACKS", "EvaluateJob", "attack_specs_from_args",
           "default_bounds_root", "lipschitz_modes", "restrict_to_training_points"]
