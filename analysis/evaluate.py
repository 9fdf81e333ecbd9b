"""Evaluate any model: clean and robust accuracy, the empirical local Lipschitz constant, their gaps.

Library::

    import analysis
    ev = analysis.evaluate(model, dataset, eps=0.1, norm="linf", attacks=["pgd", "multitargeted"])
    # -> writes results/evaluate/<dataset>/<name>/record.json (+ arrays.npz); returns an Evaluation

    from analysis.evaluate import evaluate_model
    result = evaluate_model(model, dataset, eps=0.1, out=ckpt_dir / "evaluate")  # the result dict

Command line::

    python -m analysis.evaluate --checkpoint checkpoints/cnn001.pt --dataset mnist --eps 0.1 \\
        --data-root /tmp/data --subset 500
    python -m analysis.evaluate --model constructed --dataset mnist --subset 500

The record's ``result`` holds ``model`` (name, arch, checkpoint, n_params), ``dataset``, ``norm``,
``eps``, ``attacks``, per split (``train``, ``test``) ``n``, ``clean_acc``, ``adv_acc``,
``adv_acc_per_attack``, ``lipschitz_mean`` (ascent mode) and ``lipschitz_paper_mean`` (the official
procedure, when computed), and ``gaps`` (train - test accuracies, test - train Lipschitz).
``arrays.npz`` holds the per-sample values: ``{split}_lipschitz``, ``{split}_lipschitz_paper``,
``{split}_correct``, ``{split}_adv_correct``, ``{split}_adv_correct_<attack>``, ``{split}_labels``.
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import math
import sys
import time
import types
import warnings
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
import torch.nn as nn

from .attack_suite import ATTACK_NAMES, attack_spec, run_attacks
from .lipschitz import MODES as LIP_MODES
from .lipschitz import PAPER_STEP_SIZE, PAPER_STEPS, estimate_local_lipschitz
from .models import check_model, count_parameters
from ._utils import check_eps, eval_mode, threat, to_unit_tensor

log = logging.getLogger("analysis.evaluate")

DEFAULT_ATTACKS = ("pgd", "multitargeted")
DEFAULT_OUT_ROOT = Path("results") / "evaluate"
SPLITS = ("train", "test")


@dataclasses.dataclass
class Evaluation:
    """What one evaluation produced: the record's parts, and where it was written (if it was)."""

    result: dict[str, Any]
    arrays: dict[str, np.ndarray]
    timing: dict[str, float]
    config: dict[str, Any]
    folder: Path | None = None
    reused: bool = False


def _lipschitz_modes(lipschitz) -> tuple[str, ...]:
    if lipschitz is True:
        return ("ascent", "paper")
    if lipschitz in (False, None, "none", ""):
        return ()
    if isinstance(lipschitz, str):
        lipschitz = [m.strip() for m in lipschitz.replace("both", "ascent,paper").split(",") if m.strip()]
    modes = tuple(dict.fromkeys(lipschitz))
    bad = [m for m in modes if m not in LIP_MODES]
    if bad:
        raise ValueError(f"Unknown Lipschitz mode(s) {bad}: use {', '.join(LIP_MODES)} (or True/False).")
    return modes


def _accepts_out_of_range(model: nn.Module, probe: torch.Tensor) -> bool:
    """Whether the model accepts inputs slightly outside [0, 1] (the official paper-mode start)."""
    try:
        with torch.no_grad(), eval_mode(model):
            model(probe + 1e-3 * torch.sign(probe - 0.5 + 1e-9))
    except ValueError:
        return False
    return True


def _num_classes(dataset, model_out: int) -> int:
    labels = [dataset.y_train] + ([dataset.y_test] if getattr(dataset, "y_test", None) is not None else [])
    top = int(max(int(np.max(y)) for y in labels)) + 1
    if top > model_out:
        raise ValueError(f"the dataset has labels up to {top - 1} but the model returns only {model_out} "
                         "logits: wrong model or dataset?")
    return model_out


def _auto_device(device):
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"Unknown device {device!r}: use cpu, cuda, cuda:N or auto.") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available here; use --device cpu.")
    return dev


def _mean(a: np.ndarray | None):
    return None if a is None or len(a) == 0 else float(np.mean(a))


def _diff(a, b):
    return None if a is None or b is None else float(a - b)


def run_evaluation(model: nn.Module, dataset, *, eps: float, norm: str = "linf",
                   attacks: Sequence[str | Mapping[str, Any]] = DEFAULT_ATTACKS, lipschitz=True,
                   subset: int | None = None, seed: int = 0, batch_size: int = 128, device=None,
                   name: str | None = None, arch: str | None = None, checkpoint: str | None = None,
                   model_config: Mapping[str, Any] | None = None, lipschitz_eps: float | None = None,
                   lipschitz_steps: int = PAPER_STEPS, lipschitz_step_size: float = PAPER_STEP_SIZE,
                   splits: Sequence[str] = SPLITS, out: str | Path | None = None, force: bool = False,
                   progress: bool = False, extra_config: Mapping[str, Any] | None = None) -> Evaluation:
    """Evaluate ``model`` on ``dataset``'s train and test splits; optionally write the record to ``out``.

    Args:
        model: any ``nn.Module`` mapping float ``(n, C, H, W)`` images in [0, 1] to logits (wrap
            models trained on normalised inputs with :class:`analysis.models.Normalize`). It is run
            in eval mode (flags restored afterwards) and moved to ``device``.
        dataset: a :class:`separation.datasets.Dataset` (uint8 or [0, 1] float images).
        eps, norm: the threat model (``linf`` or ``l2``).
        attacks: names from :data:`analysis.attacks.ATTACK_NAMES` or dicts ``{"name": ..., **params}``;
            robust accuracy is the per-example worst case over them. ``[]`` skips attacks.
        lipschitz: ``True`` (both modes), ``False``, or modes from ``("ascent", "paper")``.
        subset: evaluate a fixed random subset of ``subset`` train and test points (``seed``).
        lipschitz_eps / steps / step_size: the estimator's ball (default ``eps``) and ascent.
        out: record folder; with ``force=False`` a record made with the same config is reused.
        extra_config: more entries for the record's config (e.g. how the model was obtained).
    """
    t_start = time.perf_counter()
    eps = check_eps(eps)
    norm = threat(norm, eps).norm
    specs = [attack_spec(a) for a in attacks]
    modes = _lipschitz_modes(lipschitz)
    lip_eps = eps if lipschitz_eps is None else check_eps(lipschitz_eps, "lipschitz_eps")
    if modes and lip_eps == 0:
        raise ValueError("the Lipschitz estimate needs a ball of radius > 0: set eps (or lipschitz_eps) > 0 "
                         "or lipschitz=False.")
    if isinstance(batch_size, bool) or int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
    bad = [s for s in splits if s not in SPLITS]
    if bad or not splits:
        raise ValueError(f"splits must be a non-empty subset of {SPLITS}, got {list(splits)}.")
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}.")
    for attr in ("x_train", "y_train"):
        if not hasattr(dataset, attr):
            raise TypeError("dataset must be a separation Dataset (x_train, y_train, x_test, y_test), got "
                            f"{type(dataset).__name__}.")
    if subset is not None:
        dataset = dataset.subset(int(subset), seed=seed)
    splits = [s for s in splits if getattr(dataset, f"x_{s}", None) is not None]
    device = _auto_device(device)
    model = model.to(device)
    name = name or checkpoint and Path(checkpoint).stem or type(model).__name__.lower()

    config = {
        "model": {"name": name, "arch": arch, "checkpoint": str(checkpoint) if checkpoint else None,
                  "config": dict(model_config or {})},
        "dataset": getattr(dataset, "name", "unknown"),
        "data_fingerprint": dataset.fingerprint() if hasattr(dataset, "fingerprint") else None,
        "subset": subset, "seed": int(seed), "eps": eps, "norm": norm, "attacks": specs,
        "lipschitz": {"modes": list(modes), "eps": lip_eps, "steps": int(lipschitz_steps),
                      "step_size": float(lipschitz_step_size)} if modes else None,
        "splits": list(splits), "batch_size": int(batch_size), "device": device.type,
        **dict(extra_config or {}),
    }
    # -- checks -------------------------------------------------------------------------------
    probe = to_unit_tensor(dataset.x_train[: min(16, len(dataset.x_train))], device=device,
                           dtype=next((p.dtype for p in model.parameters() if p.is_floating_point()),
                                      torch.float32), name="x_train")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_model(model, probe)
    model_warnings = [str(w.message) for w in caught]
    for m in model_warnings:
        warnings.warn(m, UserWarning, stacklevel=2)
    with torch.no_grad(), eval_mode(model):
        n_out = int(model(probe[:1]).shape[1])
    num_classes = _num_classes(dataset, n_out)
    clip_start = "paper" in modes and not _accepts_out_of_range(model, probe[:2])
    if clip_start:
        log.warning("the model rejects inputs outside [0, 1]: the paper-mode Lipschitz estimate clips its "
                    "noisy start to [0, 1] (the official code does not)")
        config["lipschitz"]["paper_clip_start"] = True

    if out is not None and not force:
        from separation.records import ARRAYS_FILE, find_reusable, load_record

        rec = find_reusable(out, config)
        if rec is not None and (Path(out) / ARRAYS_FILE).is_file():
            log.info("reusing the record in %s (force=True / --force recomputes)", out)
            rec, arrays = load_record(out, with_arrays=True)
            return Evaluation(rec["result"], arrays, rec.get("timing", {}), rec["config"], Path(out), True)

    # -- per split ----------------------------------------------------------------------------
    timing: dict[str, float] = {}
    arrays: dict[str, np.ndarray] = {}
    per_split: dict[str, dict[str, Any]] = {}
    dtype = probe.dtype
    for split in splits:
        x = to_unit_tensor(getattr(dataset, f"x_{split}"), device="cpu", dtype=dtype, name=f"x_{split}")
        y = np.asarray(getattr(dataset, f"y_{split}")).astype(np.int64).reshape(-1)
        log.info("%s: %d points", split, len(x))
        report = run_attacks(model, x, y, eps=eps, norm=norm, attacks=specs, batch_size=batch_size,
                             device=device, seed=seed, num_classes=num_classes, progress=progress,
                             desc=f"{split} ")
        for k, v in report.seconds.items():
            timing[f"{split}/{k}"] = v
        entry: dict[str, Any] = {"n": int(len(x)), "clean_acc": report.clean_acc}
        arrays[f"{split}_labels"] = y
        arrays[f"{split}_correct"] = report.clean_correct
        if specs:
            entry["adv_acc"] = report.adv_acc
            entry["adv_acc_per_attack"] = report.per_attack_acc()
            arrays[f"{split}_adv_correct"] = report.adv_correct
            for k, v in report.per_attack_correct.items():
                arrays[f"{split}_adv_correct_{k}"] = v
        else:
            entry["adv_acc"], entry["adv_acc_per_attack"] = None, {}
        for mode in modes:
            key = "lipschitz" if mode == "ascent" else "lipschitz_paper"
            gen = torch.Generator().manual_seed(int(seed))  # CPU: also the official noise's device
            t0 = time.perf_counter()
            vals = estimate_local_lipschitz(model, x, eps=lip_eps, norm=norm, steps=lipschitz_steps,
                                            step_size=lipschitz_step_size, mode=mode, batch_size=batch_size,
                                            device=device, generator=gen, progress=progress,
                                            clip_start=clip_start)
            timing[f"{split}/{key}"] = time.perf_counter() - t0
            arrays[f"{split}_{key}"] = vals
            entry[f"{key}_mean"] = _mean(vals)
            log.info("%s: mean local Lipschitz (%s) %.4g", split, mode, entry[f"{key}_mean"])
        entry.setdefault("lipschitz_mean", None)
        per_split[split] = entry

    tr, te = per_split.get("train", {}), per_split.get("test", {})
    gaps = {"clean": _diff(tr.get("clean_acc"), te.get("clean_acc")),
            "adv": _diff(tr.get("adv_acc"), te.get("adv_acc")),
            "lipschitz": _diff(te.get("lipschitz_mean"), tr.get("lipschitz_mean"))}
    if "paper" in modes:
        gaps["lipschitz_paper"] = _diff(te.get("lipschitz_paper_mean"), tr.get("lipschitz_paper_mean"))
    result = {
        "model": {"name": name, "arch": arch, "checkpoint": str(checkpoint) if checkpoint else None,
                  "n_params": count_parameters(model)},
        "dataset": config["dataset"], "norm": norm, "eps": eps, "attacks": [s["name"] for s in specs],
        **per_split, "gaps": gaps, "warnings": model_warnings,
    }
    timing["total"] = time.perf_counter() - t_start
    folder = None
    if out is not None:
        from separation.records import write_record

        folder = Path(out)
        write_record(folder, kind="evaluate", config=config, result=result, arrays=arrays, seed=seed,
                     timing=timing)
        log.info("record written to %s", folder)
    return Evaluation(result, arrays, timing, config, folder)


def evaluate_model(model: nn.Module, dataset, *, eps: float, norm: str = "linf",
                   attacks: Sequence[str | Mapping[str, Any]] = DEFAULT_ATTACKS, lipschitz=True,
                   subset: int | None = None, batch_size: int = 128, device=None,
                   out: str | Path | None = None, **kwargs) -> dict[str, Any]:
    """Like :func:`run_evaluation` but returns only the result dict (the record's ``result``).

    With ``out`` the full record (config, result, per-sample arrays, timing, versions) is written
    there too -- e.g. beside a training checkpoint.
    """
    return run_evaluation(model, dataset, eps=eps, norm=norm, attacks=attacks, lipschitz=lipschitz,
                          subset=subset, batch_size=batch_size, device=device, out=out, **kwargs).result


def default_folder(dataset_name: str, name: str, *, root: str | Path = DEFAULT_OUT_ROOT) -> Path:
    return Path(root) / dataset_name / name


def evaluate(model: nn.Module, dataset, *, eps: float, norm: str = "linf",
             attacks: Sequence[str | Mapping[str, Any]] = DEFAULT_ATTACKS, lipschitz=True,
             subset: int | None = None, batch_size: int = 128, device=None, name: str | None = None,
             out: str | Path | None = None, **kwargs) -> Evaluation:
    """Evaluate and write one record (default folder ``results/evaluate/<dataset>/<name>/``).

    ``name`` defaults to the model's class name (lower case). Also reachable as
    ``analysis.evaluate(...)``. See :func:`run_evaluation` for the arguments.
    """
    name = name or type(model).__name__.lower()
    out = out if out is not None else default_folder(getattr(dataset, "name", "dataset"), name)
    return run_evaluation(model, dataset, eps=eps, norm=norm, attacks=attacks, lipschitz=lipschitz,
                          subset=subset, batch_size=batch_size, device=device, name=name, out=out, **kwargs)


# -- command line ------------------------------------------------------------------------------

def _fmt(v, pct=False):
    if v is None:
        return "-"
    return f"{100 * v:.2f}%" if pct else f"{v:.4g}"


def format_summary(result: Mapping[str, Any]) -> str:
    """A short human-readable table of an evaluation result."""
    m = result["model"]
    lines = [f"model {m['name']} ({m.get('arch') or '?'}, {m.get('n_params', 0):,} parameters)  dataset "
             f"{result['dataset']}  {result['norm']} eps={result['eps']:g}  attacks: "
             f"{', '.join(result['attacks']) or 'none'}"]
    lines.append(f"{'split':<6} {'n':>6} {'clean':>8} {'adv':>8} {'lip':>10} {'lip(paper)':>11}  per attack")
    for split in SPLITS:
        s = result.get(split)
        if not s:
            continue
        per = ", ".join(f"{k} {_fmt(v, True)}" for k, v in (s.get("adv_acc_per_attack") or {}).items())
        lines.append(f"{split:<6} {s['n']:>6} {_fmt(s['clean_acc'], True):>8} {_fmt(s.get('adv_acc'), True):>8} "
                     f"{_fmt(s.get('lipschitz_mean')):>10} {_fmt(s.get('lipschitz_paper_mean')):>11}  {per}")
    g = result.get("gaps", {})
    lines.append("gaps (train-test acc, test-train lip): " + ", ".join(f"{k} {_fmt(v)}" for k, v in g.items()))
    for w in result.get("warnings", []):
        lines.append(f"warning: {w}")
    return "\n".join(lines)


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    from separation.datasets import DATASET_NAMES

    from .models import ARCHITECTURES

    p = argparse.ArgumentParser(
        prog="python -m analysis.evaluate",
        description="Evaluate a model: clean / adversarial train and test accuracy, the empirical local "
                    "Lipschitz constant, and their gaps; writes one result record.", add_help=add_help)
    p.add_argument("--model", default="checkpoint", choices=["checkpoint", "constructed"],
                   help="'checkpoint' (default: --checkpoint PATH) or 'constructed' (the locally Lipschitz "
                        "classifier of lipschitz_construct, fitted on the evaluated training points)")
    p.add_argument("--checkpoint", default=None, help="checkpoint file (analysis.checkpoints format or a "
                                                      "bare state dict)")
    p.add_argument("--arch", default=None, help=f"architecture ({', '.join(ARCHITECTURES)}); default: the "
                                                "checkpoint's config['arch']")
    p.add_argument("--dataset", default="mnist", choices=DATASET_NAMES, help="dataset (default mnist)")
    p.add_argument("--data-root", default=None, help="data folder in torchvision's layout")
    p.add_argument("--npz", default=None, help="file for --dataset npz")
    p.add_argument("--download", action="store_true", help="download the dataset if missing")
    p.add_argument("--eps", type=float, default=None, help="attack radius (default: the paper's for the "
                                                           "dataset, e.g. 0.1 for MNIST)")
    p.add_argument("--norm", default="linf", choices=["linf", "l2"], help="threat model (default linf)")
    p.add_argument("--attacks", default=",".join(DEFAULT_ATTACKS),
                   help=f"comma-separated from {', '.join(ATTACK_NAMES)}, or 'none' "
                        f"(default {','.join(DEFAULT_ATTACKS)})")
    p.add_argument("--pgd-steps", type=int, default=10, help="PGD steps (default 10)")
    p.add_argument("--pgd-step-size", type=float, default=None, help="PGD step (default eps/5)")
    p.add_argument("--pgd-restarts", type=int, default=1, help="PGD random restarts (default 1)")
    p.add_argument("--mt-steps", type=int, default=20, help="multi-targeted steps per target (default 20)")
    p.add_argument("--mt-step-size", type=float, default=None, help="multi-targeted step (default eps/10)")
    p.add_argument("--aa-version", default="standard", choices=["standard", "plus", "rand"],
                   help="AutoAttack version (default standard)")
    p.add_argument("--lipschitz", default="ascent,paper",
                   help="Lipschitz modes: 'ascent,paper' (default), 'ascent', 'paper' or 'none'")
    p.add_argument("--lip-steps", type=int, default=PAPER_STEPS, help="estimator steps (default 10)")
    p.add_argument("--lip-step-size", type=float, default=PAPER_STEP_SIZE, help="estimator step (default 0.003)")
    p.add_argument("--lip-eps", type=float, default=None, help="estimator ball radius (default --eps)")
    p.add_argument("--subset", type=int, default=None, help="evaluate a fixed random subset of N train and "
                                                            "N test points")
    p.add_argument("--train-points", default="checkpoint", choices=["checkpoint", "all"],
                   help="'checkpoint' (default): when the checkpoint's config records train_subset / "
                        "subset_seed, the train split is the points it was trained on (analysis.train's "
                        "rule); 'all': the dataset's whole training split")
    p.add_argument("--seed", type=int, default=0, help="seed of --subset, random starts and noise (default 0)")
    p.add_argument("--batch-size", type=int, default=128, help="batch size (default 128)")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads (default: torch's choice; 1 is best for small models on a busy machine)")
    p.add_argument("--name", default=None, help="model name in the record (default: checkpoint file stem)")
    p.add_argument("--out", default=None, help="record folder (default results/evaluate/<dataset>/"
                                               "<name>_<norm>_eps<eps>[_subsetN])")
    p.add_argument("--force", action="store_true", help="recompute even if a matching record exists")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.add_argument("--verbose", "-v", action="store_true")
    return p


def _attack_specs_from_args(args) -> list[dict[str, Any]]:
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


class _ClassColumns(nn.Module):
    """Puts a model's logit columns for ``classes`` (sorted labels) at the labels' indices among
    ``num_classes``; absent classes get a constant, very low logit (no gradient, no Lipschitz part)."""

    FILL = -1e9

    def __init__(self, model: nn.Module, classes, num_classes: int):
        super().__init__()
        self.model = model
        self.register_buffer("index", torch.as_tensor(np.asarray(classes), dtype=torch.long), persistent=False)
        self.num_classes = int(num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.model(x)
        out = torch.full((z.shape[0], self.num_classes), self.FILL, dtype=z.dtype, device=z.device)
        return out.index_copy(1, self.index.to(z.device), z)


def _constructed_model(ds, norm: str):
    try:
        from lipschitz_construct import LocallyLipschitzClassifier
    except ImportError as exc:
        raise ValueError("--model constructed needs lipschitz_construct.LocallyLipschitzClassifier, which "
                         f"this checkout does not provide yet ({exc}).") from None
    clf = LocallyLipschitzClassifier(norm=norm, r="auto").fit(ds.x_train, ds.y_train)
    module = clf.as_torch_module().eval()
    classes = np.asarray(getattr(clf, "classes_", np.arange(getattr(module, "n_classes", 0))))
    num_classes = int(max(len(ds.classes), int(ds.y_train.max()) + 1,
                          int(ds.y_test.max()) + 1 if ds.y_test is not None else 0))
    if not np.array_equal(classes, np.arange(num_classes)):
        # a subset may lack classes: logit column i is classes_[i]; line them up with the labels
        module = _ClassColumns(module, classes, num_classes).eval()
    r = getattr(clf, "r_", None)
    r = float(r if r is not None else getattr(module, "r"))
    return module, {"kind": "constructed", "norm": norm, "r": r, "fit_on": "evaluated train split",
                    "n_fit": int(len(ds.x_train)), "classes": [int(c) for c in classes]}


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


def run_cli(args: argparse.Namespace) -> Evaluation:
    from separation.datasets import load_dataset
    from separation.paper import default_eps

    from .checkpoints import file_sha256, model_from_checkpoint

    if args.model == "checkpoint" and not args.checkpoint:
        raise ValueError("pass --checkpoint PATH (or --model constructed).")
    if args.model == "constructed" and (args.checkpoint or args.arch):
        raise ValueError("--checkpoint/--arch are not used with --model constructed; drop them.")
    if args.subset is not None and args.subset < 2:
        raise ValueError(f"--subset must be at least 2, got {args.subset}.")
    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be positive, got {args.batch_size}.")
    if args.threads is not None:
        if args.threads < 1:
            raise ValueError(f"--threads must be positive, got {args.threads}.")
        torch.set_num_threads(args.threads)
    eps = args.eps if args.eps is not None else default_eps(args.dataset)
    if not math.isfinite(eps) or eps < 0:
        raise ValueError(f"--eps must be a finite number >= 0, got {eps}.")
    specs = _attack_specs_from_args(args)
    modes = _lipschitz_modes(args.lipschitz)
    if args.checkpoint and not Path(args.checkpoint).is_file():
        raise FileNotFoundError(f"checkpoint {args.checkpoint} not found.")
    ds = load_dataset(args.dataset, root=args.data_root, download=args.download, npz_path=args.npz)
    c, h, w = ds.image_shape
    if h != w:
        raise ValueError(f"{args.dataset}: images are {h}x{w}; the architectures expect square images.")
    num_classes = int(max(len(ds.classes), int(ds.y_train.max()) + 1))
    extra: dict[str, Any] = {}
    if args.model == "constructed":
        ds = ds.subset(args.subset, seed=args.seed)
        model, info = _constructed_model(ds, args.norm)
        base, arch, ckpt, model_cfg = "constructed", "constructed", None, info
    else:
        model, model_cfg = model_from_checkpoint(args.checkpoint, arch=args.arch, in_channels=c,
                                                 num_classes=num_classes, input_size=h)
        base, arch, ckpt = Path(args.checkpoint).stem, model_cfg["arch"], str(args.checkpoint)
        extra["checkpoint_sha256"] = file_sha256(args.checkpoint)
        if args.train_points == "checkpoint":
            ds, extra["train_points"] = restrict_to_training_points(ds, model_cfg)
        ds = ds.subset(args.subset, seed=args.seed)
    name = args.name or base
    if args.out:
        out = Path(args.out)
    else:
        folder = f"{name}_{args.norm}_eps{eps:g}" + (f"_subset{args.subset}" if args.subset else "") + \
                 (f"_seed{args.seed}" if args.subset and args.seed else "")
        out = default_folder(args.dataset, folder)
    # --subset was applied above (the constructed classifier is fitted on the subset): record it
    extra["subset_of_dataset"] = args.subset
    return run_evaluation(model, ds, eps=eps, norm=args.norm, attacks=specs, lipschitz=modes or False,
                          subset=None, seed=args.seed, batch_size=args.batch_size, device=args.device,
                          name=name, arch=arch, checkpoint=ckpt, model_config=model_cfg,
                          lipschitz_eps=args.lip_eps, lipschitz_steps=args.lip_steps,
                          lipschitz_step_size=args.lip_step_size, out=out, force=args.force,
                          progress=not args.no_progress, extra_config=extra)


def main(argv: list[str] | None = None) -> int:
    from separation.datasets import DatasetNotFoundError

    from .checkpoints import CheckpointError

    args = get_args_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        ev = run_cli(args)
    except (CheckpointError, DatasetNotFoundError, FileNotFoundError, PermissionError, ValueError,
            TypeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(format_summary(ev.result))
    print(f"record: {ev.folder}" + (" (reused; --force recomputes)" if ev.reused else ""))
    return 0


class _CallableModule(types.ModuleType):
    """Lets ``analysis.evaluate(model, dataset, ...)`` call :func:`evaluate` while
    ``analysis.evaluate.evaluate_model`` and ``python -m analysis.evaluate`` keep working."""

    def __call__(self, *args, **kwargs):
        return evaluate(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule

if __name__ == "__main__":
    sys.exit(main())
