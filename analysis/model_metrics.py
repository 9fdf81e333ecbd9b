"""``evaluate_model(model, dataset, config)``: clean and robust accuracy, the empirical local Lipschitz
constant and their train--test gaps, for any ``nn.Module``, written as an ``evaluate`` record.

::

    from analysis.model_metrics import EvalConfig, evaluate_model
    ev = evaluate_model(model, dataset, EvalConfig(eps=0.1, attacks=("pgd",)), out="runs/evaluate")
    ev.result.test.adv_acc, ev.to_frame()

The model maps float ``(n, C, H, W)`` images in [0, 1] to logits (wrap models trained on normalised
inputs with :class:`analysis.models.Normalize`); the constructed classifier of
:mod:`lipschitz_construct` enters the same way (:mod:`analysis.models.sources`).
"""
from __future__ import annotations

import dataclasses
import logging
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from separation.core.paper import default_eps, radius
from separation.core.pipeline import Computed, produce_record
from separation.core.records import run_metadata
from separation.core.threat import check_eps, check_eps_list
from separation.core.errors import InvalidInputError, InvalidTypeError

from .tensors import NonFiniteOutputError, count_nonfinite_outputs, eval_mode, threat, to_unit_tensor
from .attack_suite import attack_spec, run_attacks
from .local_lipschitz import MODES as LIP_MODES
from .local_lipschitz import estimate_local_lipschitz
from .models import check_model, count_parameters
from .eval_config import LIPSCHITZ_RNGS, SPLITS, EvalConfig, Evaluation, format_summary
from .achievable import bounds_from_record, bounds_mismatch, compute_bounds, curve_points
from .records import (AchievableSettings, EvalResult, EvaluationConfig, EvaluationRecord, Gaps, LipschitzSettings,
                      ModelSpec, ModelSummary, SplitEvaluation, curve_name)

log = logging.getLogger("analysis.model_metrics")



# -- checks --------------------------------------------------------------------------------------
def _device(device) -> torch.device:
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise InvalidInputError(f"Unknown device {device!r}: use cpu, cuda, cuda:N or auto.") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InvalidInputError(f"device {device!r} requested but CUDA is not available here; use --device cpu.")
    return dev


def _lipschitz(config: EvalConfig, eps: float) -> LipschitzSettings | None:
    modes = tuple(dict.fromkeys(config.lipschitz))
    bad = [m for m in modes if m not in LIP_MODES]
    if bad:
        raise InvalidInputError(f"Unknown Lipschitz mode(s) {bad}: use {', '.join(LIP_MODES)} (or none).")
    if config.lipschitz_rng not in LIPSCHITZ_RNGS:
        raise InvalidInputError(f"lipschitz_rng must be one of {', '.join(LIPSCHITZ_RNGS)}, got {config.lipschitz_rng!r}.")
    if not modes:
        return None
    lip_eps = eps if config.lipschitz_eps is None else check_eps(config.lipschitz_eps, "lipschitz_eps")
    if lip_eps == 0:
        raise InvalidInputError("the Lipschitz estimate needs a ball of radius > 0: set eps (or lipschitz_eps) > 0, "
                         "or lipschitz=().")
    if isinstance(config.lipschitz_steps, bool) or int(config.lipschitz_steps) != config.lipschitz_steps \
            or config.lipschitz_steps < 0:
        raise InvalidInputError(f"lipschitz_steps must be an integer >= 0, got {config.lipschitz_steps!r}.")
    return LipschitzSettings(modes, lip_eps, int(config.lipschitz_steps),
                             check_eps(config.lipschitz_step_size, "lipschitz_step_size"), config.lipschitz_rng)


def _labels(dataset, split: str, n_out: int) -> np.ndarray:
    y = np.asarray(getattr(dataset, f"y_{split}"))
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise InvalidInputError(f"y_{split} must be a 1-D array of integer class labels, got {y.dtype} {y.shape}.")
    if len(y) and (y.min() < 0 or y.max() >= n_out):
        raise InvalidInputError(f"y_{split} has labels in [{y.min()}, {y.max()}] but the model returns {n_out} logits: "
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
@dataclasses.dataclass
class EvaluationPlan:
    """An evaluation checked and ready to run: its record configuration and what the run needs."""

    config: EvaluationConfig
    model: nn.Module
    dataset: Any
    settings: EvalConfig
    splits: tuple[str, ...]
    labels: dict[str, np.ndarray]
    specs: tuple
    lip: LipschitzSettings | None
    device: torch.device
    dtype: torch.dtype
    n_out: int
    name: str
    spec: ModelSpec
    checkpoint: str | None
    model_warnings: list[str]
    bounds_record: Any = None


def headline_eps(values: list[float], dataset: str, norm: str) -> float:
    """The headline radius of an evaluation at ``values`` (sorted): the dataset's paper radius when
    it is one of them, else the smallest."""
    paper = default_eps(dataset, norm)
    return paper if paper is not None and paper in values else values[0]


def radii_of(config: EvalConfig, dataset) -> list[float]:
    """The radii of an evaluation, sorted: ``config.eps`` (one or several), else the paper's."""
    if config.eps is None:
        eps = default_eps(dataset.name, config.norm)
        if eps is None:
            raise InvalidInputError(f"no eps given, and {radius(dataset.name, config.norm).source.replace(': pass --eps', '')} "
                                    f"({dataset.name}, {config.norm}): pass eps (--eps).")
        return [eps]
    return check_eps_list(config.eps)


def _achievable(config: EvalConfig, bounds_record, *, source, dataset, norm: str, curve: tuple[float, ...] | None):
    """The curve's bounds settings, checked (the record must be of exactly the evaluated test points)."""
    if config.bounds and bounds_record is not None:
        raise InvalidInputError("bounds=True computes the data's optimum and bounds_record gives a stored one: pass one.")
    if config.bounds:
        if np.unique(np.asarray(dataset.y_test)).size < 2:
            raise InvalidInputError("the evaluated test points have fewer than two classes: every classifier is "
                                    "robustly correct on them; nothing to bound (drop bounds).")
        limit = config.bounds_time_limit
        if isinstance(limit, bool) or not isinstance(limit, (int, float)) or not limit > 0 or not np.isfinite(limit):
            raise InvalidInputError(f"bounds_time_limit={limit!r} must be a positive number of seconds.")
        return AchievableSettings(source="computed", time_limit=float(limit))
    if bounds_record is None:
        return None
    why = bounds_mismatch(bounds_record, source=source, x_test=dataset.x_test, y_test=dataset.y_test,
                          dataset=dataset.name, norm=norm, eps=curve)
    if why:
        raise InvalidInputError(f"the bounds record {bounds_record.label} is not of the evaluated points: {why}.")
    return AchievableSettings(source="record", record_key=bounds_record.key)


def plan_evaluation(model: nn.Module, dataset, config: EvalConfig | None = None, *, name: str | None = None,
                    model_spec: ModelSpec | None = None, train_points: dict[str, int] | None = None,
                    checkpoint: str | None = None, bounds_record=None, bounds_source=None) -> EvaluationPlan:
    """Check everything an evaluation needs before any work (settings, data, the model's outputs on
    every evaluated point) and return its :class:`EvaluationPlan`; the record's configuration is
    ``plan.config``. ``bounds_record``: a ``bounds`` record of the evaluated test points (refused
    when it is of other points); ``bounds_source``: the dataset its ``--subset`` is drawn from
    (default ``dataset``)."""
    config = config or EvalConfig()
    if not isinstance(model, nn.Module):
        raise InvalidTypeError(f"model must be a torch.nn.Module, got {type(model).__name__}.")
    for attr in ("x_train", "y_train", "fingerprint"):
        if not hasattr(dataset, attr):
            raise InvalidTypeError("dataset must be a separation.Dataset (x_train, y_train, x_test, y_test), got "
                                   f"{type(dataset).__name__}.")
    values = radii_of(config, dataset)
    tm = threat(config.norm, headline_eps(values, dataset.name, config.norm))
    curve = tuple(values) if len(values) > 1 or config.bounds or bounds_record is not None else None
    source = dataset if bounds_source is None else bounds_source
    specs = tuple(attack_spec(a) for a in config.attacks)
    if len({s["name"] for s in specs}) != len(specs):
        raise InvalidInputError(f"Each attack may appear once, got {[s['name'] for s in specs]}.")
    lip = _lipschitz(config, tm.eps)
    if isinstance(config.batch_size, bool) or int(config.batch_size) != config.batch_size or config.batch_size < 1:
        raise InvalidInputError(f"batch_size must be a positive integer, got {config.batch_size!r}.")
    bad = [s for s in config.splits if s not in SPLITS]
    if bad or not config.splits:
        raise InvalidInputError(f"splits must be a non-empty subset of {SPLITS}, got {list(config.splits)}.")
    if config.subset is not None:
        if int(config.subset) < 2:
            raise InvalidInputError(f"subset must be at least 2, got {config.subset}.")
        dataset = dataset.subset(int(config.subset), seed=config.seed)
    splits = tuple(s for s in config.splits if getattr(dataset, f"x_{s}", None) is not None
                   and len(getattr(dataset, f"x_{s}")) > 0)
    if not splits:
        raise InvalidInputError("the dataset has no points in the requested splits; nothing to evaluate.")
    if curve is not None and ("test" not in splits or not specs):
        raise InvalidInputError("several radii (or bounds) make a robust-accuracy curve of the test points under "
                                "attack: evaluate the test split, with at least one attack.")
    achievable = None if curve is None else _achievable(config, bounds_record, source=source, dataset=dataset,
                                                        norm=tm.norm, curve=curve)
    device = _device(config.device)
    model = model.to(device)
    name = name or (model_spec.name if model_spec else type(model).__name__.lower())
    dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32)
    probe = to_unit_tensor(dataset.x_train[: min(16, len(dataset.x_train))], device=device, dtype=dtype,
                           name="x_train")
    with torch.no_grad(), eval_mode(model):
        logits = model(probe)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_model(model, probe)
    model_warnings = [str(w.message) for w in caught]
    for m in model_warnings:
        warnings.warn(m, UserWarning, stacklevel=3)
    n_out = int(logits.shape[1])
    labels = {s: _labels(dataset, s, n_out) for s in splits}
    check_finite_outputs(model, dataset, splits, device=device, dtype=dtype, batch_size=int(config.batch_size))
    if lip is not None and "paper" in lip.modes and not _accepts_out_of_range(model, probe[:2]):
        log.warning("the model rejects inputs outside [0, 1]: the paper-mode Lipschitz estimate clips its "
                    "noisy start to [0, 1] (the official code does not)")
        lip = dataclasses.replace(lip, paper_clip_start=True)
    spec = model_spec or ModelSpec(name=name)
    rec_config = EvaluationConfig(
        model=dataclasses.replace(spec, name=name),
        data=dataset.spec(with_test="test" in splits, subset=config.subset, seed=config.seed),
        eps=tm.eps, norm=tm.norm, attacks=specs, lipschitz=lip, splits=splits, seed=int(config.seed),
        batch_size=int(config.batch_size), device=device.type, train_points=train_points, curve_eps=curve,
        achievable=achievable)
    return EvaluationPlan(rec_config, model, dataset, config, splits, labels, specs, lip, device, dtype, n_out, name,
                          spec, checkpoint, model_warnings, bounds_record if achievable is not None else None)


def check_finite_outputs(model: nn.Module, dataset, splits, *, device, dtype, batch_size: int) -> None:
    """Refuse a model whose logits are not finite on some evaluated point (every point is checked:
    a NaN logit would otherwise take class 0 and count as correct and robust)."""
    bad = {s: n for s in splits if (n := count_nonfinite_outputs(model, getattr(dataset, f"x_{s}"), device=device,
                                                                  dtype=dtype, batch_size=batch_size, name=f"x_{s}"))}
    if bad:
        where = ", ".join(f"{n} of the {len(getattr(dataset, f'x_{s}'))} {s} points" for s, n in bad.items())
        raise NonFiniteOutputError(f"the model's outputs are not finite (NaN or inf) on {where}: its weights are broken "
                                "(a diverged or corrupted checkpoint?); no evaluation was made.")


def run_evaluation(plan: EvaluationPlan, *, progress: bool | None = None) -> Computed:
    """The work of an evaluation: per split the attacks and Lipschitz estimates (result, timing, arrays)."""
    t_start = time.perf_counter()
    model, dataset, config, tm_eps, tm_norm = plan.model, plan.dataset, plan.settings, plan.config.eps, plan.config.norm
    timing: dict[str, float] = {}
    arrays: dict[str, np.ndarray] = {}
    per_split: dict[str, SplitEvaluation] = {}
    curve, achievable = [], None
    for split in plan.splits:
        x = to_unit_tensor(getattr(dataset, f"x_{split}"), device="cpu", dtype=plan.dtype, name=f"x_{split}")
        y = plan.labels[split]
        log.info("%s: %d points", split, len(x))
        report = run_attacks(model, x, y, eps=tm_eps, norm=tm_norm, attacks=plan.specs, batch_size=config.batch_size,
                             device=plan.device, seed=config.seed, num_classes=plan.n_out, progress=progress,
                             desc=f"{split} ")
        timing.update({f"{split}/{k}": v for k, v in report.seconds.items()})
        entry = SplitEvaluation(n=len(x), clean_acc=report.clean_acc)
        arrays[f"{split}_labels"], arrays[f"{split}_correct"] = y, report.clean_correct
        if plan.specs:
            entry.adv_acc, entry.adv_acc_per_attack = report.adv_acc, report.per_attack_acc()
            arrays[f"{split}_adv_correct"] = report.adv_correct
            arrays.update({f"{split}_adv_correct_{k}": v for k, v in report.per_attack_correct.items()})
        if split == "test" and plan.config.curve_eps:
            curve, achievable = _curve(plan, x, y, report, arrays, timing, progress)
        for mode in (plan.lip.modes if plan.lip else ()):
            key = "lipschitz" if mode == "ascent" else "lipschitz_paper"
            t0 = time.perf_counter()
            vals = _estimate(model, x, plan.lip, mode, config, plan.device, progress)
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
        model=ModelSummary(name=plan.name, arch=plan.spec.arch,
                           checkpoint=None if plan.checkpoint is None else str(plan.checkpoint),
                           n_params=count_parameters(model)),
        dataset=dataset.name, norm=tm_norm, eps=tm_eps, attacks=[s["name"] for s in plan.specs],
        gaps=Gaps(clean=gap("clean_acc"), adv=gap("adv_acc"), lipschitz=gap("lipschitz_mean", True),
                  lipschitz_paper=gap("lipschitz_paper_mean", True)),
        train=tr, test=te, warnings=plan.model_warnings, curve=curve, achievable=achievable)
    timing["total"] = time.perf_counter() - t_start
    return Computed(result, timing, arrays)


def _curve(plan: EvaluationPlan, x, y, headline, arrays: dict, timing: dict, progress) -> tuple[list, Any]:
    """The test points' robust accuracy at every radius of the curve (the headline radius' attacks
    are reused), and the data's bounds on the same points: ``(curve, achievable)``; the per-point
    arrays and timings are added to ``arrays`` and ``timing``."""
    cfg, config = plan.config, plan.settings
    robust, per_attack = [], []
    for k, e in enumerate(cfg.curve_eps):
        rep = headline
        if e != cfg.eps:
            rep = run_attacks(plan.model, x, y, eps=e, norm=cfg.norm, attacks=plan.specs, batch_size=config.batch_size,
                              device=plan.device, seed=config.seed, num_classes=plan.n_out, progress=progress,
                              desc=f"test eps={e:g} ")
            timing.update({f"test/e{k:02d}/{a}": v for a, v in rep.seconds.items()})
        robust.append(rep.adv_correct)
        per_attack.append(rep.per_attack_correct)
        arrays[curve_name("test_adv_correct", k)] = rep.adv_correct
        arrays.update({curve_name(f"test_adv_correct_{a}", k): v for a, v in rep.per_attack_correct.items()})
    achievable = bounds = kept = None
    if cfg.achievable is not None:
        t0 = time.perf_counter()
        if cfg.achievable.source == "computed":
            achievable, bounds, kept = compute_bounds(plan.dataset.x_test, plan.labels["test"], norm=cfg.norm,
                                                      eps=cfg.curve_eps, time_limit=cfg.achievable.time_limit,
                                                      progress=progress)
        else:
            achievable, bounds, kept = bounds_from_record(plan.bounds_record, cfg.curve_eps)
        timing["test/bounds"] = time.perf_counter() - t0
    points, more = curve_points(cfg.curve_eps, robust, per_attack, bounds, kept)
    arrays.update(more)
    for p in points:
        log.info("test eps=%g: robust accuracy %.4f%s", p.eps, p.adv_acc, "" if p.avoidable_errors is None else
                 f", avoidable errors {p.avoidable_errors}")
    return points, achievable


def evaluate_model(model: nn.Module, dataset, config: EvalConfig | None = None, *, out: str | Path | None = None,
                   force: bool = False, progress: bool | None = None, name: str | None = None,
                   model_spec: ModelSpec | None = None, train_points: dict[str, int] | None = None,
                   checkpoint: str | None = None, bounds_record=None, bounds_source=None) -> Evaluation:
    """Evaluate ``model`` on ``dataset`` (a :class:`separation.Dataset`) with ``config``.

    ``out``: the records root (the record goes to a folder of its own below it; with
    ``force=False`` an existing record of exactly this evaluation is reused); ``None``: nothing is
    written. ``name``/``model_spec``: how the record names and identifies the model (default: its
    class name); ``train_points``: how the train split was restricted; ``checkpoint``: the file the
    model came from (both recorded; neither changes the numbers). With several radii
    (``config.eps`` a sequence) the test points are attacked at each (``result.curve``); with
    ``config.bounds`` or a ``bounds_record`` of the same test points (see :func:`plan_evaluation`)
    the curve holds the data's optimum and the avoidable errors (:mod:`analysis.achievable`).
    """
    plan = plan_evaluation(model, dataset, config, name=name, model_spec=model_spec, train_points=train_points,
                           checkpoint=checkpoint, bounds_record=bounds_record, bounds_source=bounds_source)
    if out is None:
        done = run_evaluation(plan, progress=progress)
        rec = EvaluationRecord(config=plan.config, result=done.result, timing=done.timing,
                               meta=run_metadata(plan.settings.seed, data_source=getattr(dataset, "source", None)))
        return Evaluation(rec, done.arrays)
    rec, reused = produce_record(EvaluationRecord, out, plan.config, lambda: run_evaluation(plan, progress=progress),
                                 force=force, seed=plan.settings.seed, data_source=getattr(dataset, "source", None))
    if not reused:
        log.info("record written to %s", rec.folder)
    return Evaluation(rec, rec.load_arrays(), reused=reused)


def _estimate(model, x, lip: LipschitzSettings, mode: str, config: EvalConfig, device, progress) -> np.ndarray:
    kw = dict(eps=lip.eps, norm=config.norm, steps=lip.steps, step_size=lip.step_size, mode=mode,
              batch_size=config.batch_size, device=device, progress=progress,
              clip_start=lip.paper_clip_start)
    if lip.rng == "official":  # torch's global generator seeded by the seed, restored afterwards
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(config.seed))
            return estimate_local_lipschitz(model, x, generator=None, **kw)
    return estimate_local_lipschitz(model, x, generator=torch.Generator().manual_seed(int(config.seed)), **kw)


__all__ = ["EvalConfig", "Evaluation", "EvaluationPlan", "LIPSCHITZ_RNGS", "SPLITS", "check_finite_outputs",
           "evaluate_model", "format_summary", "headline_eps", "plan_evaluation", "radii_of", "run_evaluation"]
