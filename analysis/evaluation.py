"""``evaluate(model, dataset, config)``: clean and robust accuracy, the empirical local Lipschitz
constant and their train--test gaps, for any ``nn.Module``, written as an ``evaluate`` record.

::

    from analysis.evaluation import EvalConfig, evaluate
    ev = evaluate(model, dataset, EvalConfig(eps=0.1, attacks=("pgd",)), out="runs/evaluate")
    ev.result.test.adv_acc, ev.to_frame()

The model maps float ``(n, C, H, W)`` images in [0, 1] to logits (wrap models trained on normalised
inputs with :class:`analysis.models.Normalize`); the constructed classifier of
:mod:`lipschitz_construct` enters the same way (:mod:`analysis.models.registry`).
"""
from __future__ import annotations

import dataclasses
import logging
import time
import warnings
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
import torch.nn as nn

from separation.paper import LIPSCHITZ_STEP_SIZE, LIPSCHITZ_STEPS, default_eps
from separation.records import reusable, run_metadata, write_record

from ._utils import check_eps, eval_mode, threat, to_unit_tensor
from .attack_suite import attack_spec, run_attacks
from .lipschitz import MODES as LIP_MODES
from .lipschitz import estimate_local_lipschitz
from .models import check_model, count_parameters
from .records import (EvalResult, EvaluationConfig, EvaluationRecord, Gaps, LipschitzSettings, ModelSpec, ModelSummary,
                      SplitEvaluation)

log = logging.getLogger("analysis.evaluation")

SPLITS = ("train", "test")
LIPSCHITZ_RNGS = ("generator", "official")


@dataclasses.dataclass(frozen=True)
class EvalConfig:
    """What to compute. ``eps=None``: the paper's radius for the dataset. ``attacks``: names from
    :data:`analysis.attack_suite.ATTACK_NAMES` or dicts ``{"name": ..., **params}`` (robust accuracy
    is the per-example worst case). ``lipschitz``: estimator modes (``ascent``, ``paper``; ``()``
    for none) on a ball of ``lipschitz_eps`` (default ``eps``); ``lipschitz_rng``: ``generator`` (a
    private generator seeded by ``seed``) or ``official`` (torch's global generator seeded by
    ``seed``, consumed as the official code does: the paper mode then returns the official values
    seed for seed). ``subset``: a fixed random subset of that many train and test points."""

    eps: float | None = None
    norm: str = "linf"
    attacks: tuple = ("pgd", "multitargeted")
    lipschitz: tuple[str, ...] = ("ascent", "paper")
    lipschitz_eps: float | None = None
    lipschitz_steps: int = LIPSCHITZ_STEPS
    lipschitz_step_size: float = LIPSCHITZ_STEP_SIZE
    lipschitz_rng: str = "generator"
    subset: int | None = None
    seed: int = 0
    batch_size: int = 128
    splits: tuple[str, ...] = SPLITS
    device: str = "auto"

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], **fixed: Any) -> "EvalConfig":
        """From a mapping (e.g. a training config's ``evaluation``); unknown keys are an error."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"evaluation: unknown setting(s) {', '.join(unknown)}; valid: {', '.join(sorted(names))}.")
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return cls(**{**values, **fixed})


@dataclasses.dataclass
class Evaluation:
    """An evaluation: its record (``config``, ``result``, ``timing``, ``meta``), the per-point
    arrays, and whether the record was reused."""

    record: EvaluationRecord
    arrays: dict[str, np.ndarray]
    reused: bool = False

    @property
    def result(self) -> EvalResult:
        return self.record.result

    @property
    def folder(self) -> Path | None:
        return self.record.folder

    def __repr__(self) -> str:
        r = self.result
        parts = [f"model={r.model.name!r}", f"dataset={r.dataset!r}", f"{r.norm} eps={r.eps:g}"]
        for name in SPLITS:
            s = r.split(name)
            if s is not None:
                adv = "" if s.adv_acc is None else f" adv {100 * s.adv_acc:.1f}%"
                lip = "" if s.lipschitz_mean is None else f" lip {s.lipschitz_mean:.4g}"
                parts.append(f"{name} n={s.n} clean {100 * s.clean_acc:.1f}%{adv}{lip}")
        where = f", record={self.record.label!r}" if self.folder else ""
        return f"Evaluation({', '.join(parts)}{where}{', reused' if self.reused else ''})"

    def _repr_html_(self) -> str:
        return self.to_frame("splits").to_html(float_format=lambda v: f"{v:.4g}") + f"<p>{self!r}</p>"

    def to_frame(self, kind: str = "points"):
        """A pandas DataFrame: ``"points"`` (one row per evaluated point: split, index, label,
        correct, adv_correct, per-attack correctness, local Lipschitz estimates) or ``"splits"``
        (one row per split with the record's numbers)."""
        import pandas as pd

        if kind == "splits":
            rows = [{"split": n, **dataclasses.asdict(s)} for n in SPLITS if (s := self.result.split(n)) is not None]
            return pd.DataFrame(rows).set_index("split")
        if kind != "points":
            raise ValueError(f"kind must be 'points' or 'splits', got {kind!r}.")
        frames = []
        for split in SPLITS:
            labels = self.arrays.get(f"{split}_labels")
            if labels is None:
                continue
            cols = {"split": split, "index": np.arange(len(labels)), "label": labels}
            for key, arr in self.arrays.items():
                if key.startswith(f"{split}_") and key != f"{split}_labels":
                    cols[key[len(split) + 1:]] = arr
            frames.append(pd.DataFrame(cols))
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


# -- checks --------------------------------------------------------------------------------------
def _device(device) -> torch.device:
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"Unknown device {device!r}: use cpu, cuda, cuda:N or auto.") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available here; use --device cpu.")
    return dev


def _lipschitz(config: EvalConfig, eps: float) -> LipschitzSettings | None:
    modes = tuple(dict.fromkeys(config.lipschitz))
    bad = [m for m in modes if m not in LIP_MODES]
    if bad:
        raise ValueError(f"Unknown Lipschitz mode(s) {bad}: use {', '.join(LIP_MODES)} (or none).")
    if config.lipschitz_rng not in LIPSCHITZ_RNGS:
        raise ValueError(f"lipschitz_rng must be one of {', '.join(LIPSCHITZ_RNGS)}, got {config.lipschitz_rng!r}.")
    if not modes:
        return None
    lip_eps = eps if config.lipschitz_eps is None else check_eps(config.lipschitz_eps, "lipschitz_eps")
    if lip_eps == 0:
        raise ValueError("the Lipschitz estimate needs a ball of radius > 0: set eps (or lipschitz_eps) > 0, "
                         "or lipschitz=().")
    if isinstance(config.lipschitz_steps, bool) or int(config.lipschitz_steps) != config.lipschitz_steps \
            or config.lipschitz_steps < 0:
        raise ValueError(f"lipschitz_steps must be an integer >= 0, got {config.lipschitz_steps!r}.")
    return LipschitzSettings(modes, lip_eps, int(config.lipschitz_steps),
                             check_eps(config.lipschitz_step_size, "lipschitz_step_size"), config.lipschitz_rng)


def _labels(dataset, split: str, n_out: int) -> np.ndarray:
    y = np.asarray(getattr(dataset, f"y_{split}"))
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"y_{split} must be a 1-D array of integer class labels, got {y.dtype} {y.shape}.")
    if len(y) and (y.min() < 0 or y.max() >= n_out):
        raise ValueError(f"y_{split} has labels in [{y.min()}, {y.max()}] but the model returns {n_out} logits: "
                         f"labels must be integers in [0, {n_out - 1}] (wrong model or dataset?).")
    return y.astype(np.int64)


def _accepts_out_of_range(model: nn.Module, probe: torch.Tensor) -> bool:
    """Whether the model accepts inputs slightly outside [0, 1] (the official paper-mode start)."""
    try:
        with torch.no_grad(), eval_mode(model):
            model(probe + 1e-3 * torch.sign(probe - 0.5 + 1e-9))
    except ValueError:
        return False
    return True


def _mean(a) -> float | None:
    return None if a is None or len(a) == 0 else float(np.mean(a))


def _diff(a, b) -> float | None:
    return None if a is None or b is None else float(a - b)


# -- the evaluation ------------------------------------------------------------------------------
def evaluate(model: nn.Module, dataset, config: EvalConfig | None = None, *, out: str | Path | None = None,
             force: bool = False, progress: bool | None = None, name: str | None = None,
             model_spec: ModelSpec | None = None, train_points: dict[str, int] | None = None,
             checkpoint: str | None = None) -> Evaluation:
    """Evaluate ``model`` on ``dataset`` (a :class:`separation.Dataset`) with ``config``.

    ``out``: the records root (the record goes to a folder of its own below it; with
    ``force=False`` an existing record of exactly this evaluation is reused); ``None``: nothing is
    written. ``name``/``model_spec``: how the record names and identifies the model (default: its
    class name); ``train_points``: how the train split was restricted; ``checkpoint``: the file the
    model came from (both recorded; neither changes the numbers).
    """
    t_start = time.perf_counter()
    config = config or EvalConfig()
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}.")
    for attr in ("x_train", "y_train", "fingerprint"):
        if not hasattr(dataset, attr):
            raise TypeError("dataset must be a separation.Dataset (x_train, y_train, x_test, y_test), got "
                            f"{type(dataset).__name__}.")
    eps = default_eps(dataset.name) if config.eps is None else config.eps
    tm = threat(config.norm, eps)
    specs = tuple(attack_spec(a) for a in config.attacks)
    if len({s["name"] for s in specs}) != len(specs):
        raise ValueError(f"Each attack may appear once, got {[s['name'] for s in specs]}.")
    lip = _lipschitz(config, tm.eps)
    if isinstance(config.batch_size, bool) or int(config.batch_size) != config.batch_size or config.batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {config.batch_size!r}.")
    bad = [s for s in config.splits if s not in SPLITS]
    if bad or not config.splits:
        raise ValueError(f"splits must be a non-empty subset of {SPLITS}, got {list(config.splits)}.")
    if config.subset is not None:
        if int(config.subset) < 2:
            raise ValueError(f"subset must be at least 2, got {config.subset}.")
        dataset = dataset.subset(int(config.subset), seed=config.seed)
    splits = tuple(s for s in config.splits if getattr(dataset, f"x_{s}", None) is not None
                   and len(getattr(dataset, f"x_{s}")) > 0)
    if not splits:
        raise ValueError("the dataset has no points in the requested splits; nothing to evaluate.")
    device = _device(config.device)
    model = model.to(device)
    name = name or (model_spec.name if model_spec else type(model).__name__.lower())
    dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32)
    probe = to_unit_tensor(dataset.x_train[: min(16, len(dataset.x_train))], device=device, dtype=dtype,
                           name="x_train")
    with torch.no_grad(), eval_mode(model):
        logits = model(probe)
    if logits.dim() == 2 and not torch.isfinite(logits).all():
        raise ValueError("the model's outputs are not finite (NaN or inf) on the first training images: its "
                         "weights are broken (a diverged or corrupted checkpoint?); no evaluation was made.")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_model(model, probe)
    model_warnings = [str(w.message) for w in caught]
    for m in model_warnings:
        warnings.warn(m, UserWarning, stacklevel=2)
    n_out = int(logits.shape[1])
    labels = {s: _labels(dataset, s, n_out) for s in splits}
    if lip is not None and "paper" in lip.modes and not _accepts_out_of_range(model, probe[:2]):
        log.warning("the model rejects inputs outside [0, 1]: the paper-mode Lipschitz estimate clips its "
                    "noisy start to [0, 1] (the official code does not)")
        lip = dataclasses.replace(lip, paper_clip_start=True)
    spec = model_spec or ModelSpec(name=name)
    rec_config = EvaluationConfig(
        model=dataclasses.replace(spec, name=name),
        data=dataset.spec(with_test="test" in splits, subset=config.subset, seed=config.seed),
        eps=tm.eps, norm=tm.norm, attacks=specs, lipschitz=lip, splits=splits, seed=int(config.seed),
        batch_size=int(config.batch_size), device=device.type, train_points=train_points)
    folder = EvaluationRecord.folder_for(out, rec_config) if out is not None else None
    if folder is not None:
        rec = reusable(EvaluationRecord, folder, rec_config, force=force)
        if rec is not None:
            return Evaluation(rec, rec.load_arrays(), reused=True)

    timing: dict[str, float] = {}
    arrays: dict[str, np.ndarray] = {}
    per_split: dict[str, SplitEvaluation] = {}
    for split in splits:
        x = to_unit_tensor(getattr(dataset, f"x_{split}"), device="cpu", dtype=dtype, name=f"x_{split}")
        y = labels[split]
        log.info("%s: %d points", split, len(x))
        report = run_attacks(model, x, y, eps=tm.eps, norm=tm.norm, attacks=specs, batch_size=config.batch_size,
                             device=device, seed=config.seed, num_classes=n_out, progress=progress,
                             desc=f"{split} ")
        timing.update({f"{split}/{k}": v for k, v in report.seconds.items()})
        entry = SplitEvaluation(n=len(x), clean_acc=report.clean_acc)
        arrays[f"{split}_labels"], arrays[f"{split}_correct"] = y, report.clean_correct
        if specs:
            entry.adv_acc, entry.adv_acc_per_attack = report.adv_acc, report.per_attack_acc()
            arrays[f"{split}_adv_correct"] = report.adv_correct
            arrays.update({f"{split}_adv_correct_{k}": v for k, v in report.per_attack_correct.items()})
        for mode in (lip.modes if lip else ()):
            key = "lipschitz" if mode == "ascent" else "lipschitz_paper"
            t0 = time.perf_counter()
            vals = _estimate(model, x, lip, mode, config, device, progress)
            timing[f"{split}/{key}"] = time.perf_counter() - t0
            arrays[f"{split}_{key}"] = vals
            setattr(entry, f"{key}_mean", _mean(vals))
            log.info("%s: mean local Lipschitz (%s) %.4g", split, mode, _mean(vals))
        per_split[split] = entry
    tr, te = per_split.get("train"), per_split.get("test")

    def gap(attr, reverse=False):
        if tr is None or te is None:
            return None
        a, b = getattr(tr, attr), getattr(te, attr)
        return _diff(b, a) if reverse else _diff(a, b)

    result = EvalResult(
        model=ModelSummary(name=name, arch=spec.arch, checkpoint=None if checkpoint is None else str(checkpoint),
                           n_params=count_parameters(model)),
        dataset=dataset.name, norm=tm.norm, eps=tm.eps, attacks=[s["name"] for s in specs],
        gaps=Gaps(clean=gap("clean_acc"), adv=gap("adv_acc"), lipschitz=gap("lipschitz_mean", True),
                  lipschitz_paper=gap("lipschitz_paper_mean", True)),
        train=tr, test=te, warnings=model_warnings)
    timing["total"] = time.perf_counter() - t_start
    rec = EvaluationRecord(config=rec_config, result=result, timing=timing,
                           meta=run_metadata(config.seed, data_source=getattr(dataset, "source", None)))
    if folder is not None:
        rec = write_record(folder, rec, arrays=arrays)
        log.info("record written to %s", folder)
    return Evaluation(rec, arrays)


def _estimate(model, x, lip: LipschitzSettings, mode: str, config: EvalConfig, device, progress) -> np.ndarray:
    kw = dict(eps=lip.eps, norm=config.norm, steps=lip.steps, step_size=lip.step_size, mode=mode,
              batch_size=config.batch_size, device=device, progress=progress,
              clip_start=lip.paper_clip_start)
    if lip.rng == "official":  # torch's global generator seeded by the seed, restored afterwards
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(config.seed))
            return estimate_local_lipschitz(model, x, generator=None, **kw)
    return estimate_local_lipschitz(model, x, generator=torch.Generator().manual_seed(int(config.seed)), **kw)


def format_summary(result: EvalResult) -> str:
    """A short human-readable table of an evaluation result."""
    def fmt(v, pct=False):
        return "-" if v is None else (f"{100 * v:.2f}%" if pct else f"{v:.4g}")

    m = result.model
    lines = [f"model {m.name} ({m.arch or '?'}, {m.n_params:,} parameters)  dataset {result.dataset}  "
             f"{result.norm} eps={result.eps:g}  attacks: {', '.join(result.attacks) or 'none'}",
             f"{'split':<6} {'n':>6} {'clean':>8} {'adv':>8} {'lip':>10} {'lip(paper)':>11}  per attack"]
    for split in SPLITS:
        s = result.split(split)
        if s is None:
            continue
        per = ", ".join(f"{k} {fmt(v, True)}" for k, v in s.adv_acc_per_attack.items())
        lines.append(f"{split:<6} {s.n:>6} {fmt(s.clean_acc, True):>8} {fmt(s.adv_acc, True):>8} "
                     f"{fmt(s.lipschitz_mean):>10} {fmt(s.lipschitz_paper_mean):>11}  {per}")
    g = result.gaps
    lines.append("gaps (train-test acc, test-train lip): " + ", ".join(
        f"{k} {fmt(v)}" for k, v in dataclasses.asdict(g).items() if v is not None or k != "lipschitz_paper"))
    lines += [f"warning: {w}" for w in result.warnings]
    return "\n".join(lines)


__all__ = ["EvalConfig", "Evaluation", "LIPSCHITZ_RNGS", "SPLITS", "evaluate", "format_summary"]
