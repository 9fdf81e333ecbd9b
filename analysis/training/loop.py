"""The training loop: ``train(cfg, run_dir=...)`` trains (or resumes, or reuses) one run.

Every random draw of a step comes from generators seeded by ``(seed, tag, epoch, step)``, so a
resumed run reaches bit for bit the weights an uninterrupted one reaches. A checkpoint (weights,
optimiser, scheduler, epoch, step, history, RNG states) is written atomically after every epoch
(and every ``checkpoint_every_steps`` steps); at the end the model is evaluated
(:func:`analysis.model_metrics.evaluate_model`) and a ``training`` record is written beside the checkpoint
and copied to ``results_dir``.
"""
from __future__ import annotations

import dataclasses
import logging
import math
import os
import time
import warnings
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from separation.core.records import RECORD_FILE, atomic_write_bytes, run_metadata, write_record
from separation.core.errors import InvalidInputError

from ..checkpoints import load_checkpoint, save_checkpoint
from ..train_config import TrainConfig
from ..losses import make_loss
from ..records import EpochStats, TrainingRecord, TrainResult, finished_record
from .data import TrainData, augment, prepare_data, to_float
from .state import (CHECKPOINT_FORMAT, TrainingDiverged, TAG_AUG, TAG_INIT, TAG_MONITOR, TAG_SHUFFLE, TAG_STEP, TrainingInterrupted,
                    check_resumable, checkpoint_config, derive_seed, determinism, num_threads, resolve_device,
                    rng_state, set_rng_state, stop_on_signals)

log = logging.getLogger("analysis.train")

CHECKPOINT_FILE = "last.pt"
CONFIG_FILE = "config.yaml"
EVALUATION_DIR = "evaluation"


@dataclasses.dataclass
class TrainOutcome:
    """What :func:`train` returns: ``status`` is ``"completed"`` or ``"reused"``."""

    status: str
    record: TrainingRecord | None
    model: nn.Module | None
    history: list[EpochStats]
    run_dir: Path
    results_dir: Path | None


def build_optimizer(cfg: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    return torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)


def build_scheduler(cfg: TrainConfig, optimizer: torch.optim.Optimizer):
    """Stepped once per epoch: ``multistep`` (×gamma at each milestone epoch), ``cosine``, ``constant``."""
    if cfg.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.epochs)
    milestones = cfg.milestones if cfg.schedule == "multistep" else []
    return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=list(milestones), gamma=cfg.gamma)


def build_model_for(cfg: TrainConfig, data: TrainData) -> nn.Module:
    from ..models import build_model

    if data.x_train.shape[-1] != data.x_train.shape[-2]:
        raise InvalidInputError(f"{cfg.dataset}: the architectures need square images, got {tuple(data.x_train.shape[-2:])}.")
    return build_model(cfg.arch, in_channels=data.in_channels, num_classes=data.num_classes,
                       input_size=data.input_size, dropout=cfg.dropout)


def eval_config(cfg: TrainConfig):
    """The evaluation a run ends with: ``cfg.evaluation`` with the run's eps and norm."""
    from ..eval_config import EvalConfig

    return EvalConfig.from_mapping(cfg.evaluation, eps=cfg.eps, norm=cfg.norm, device=cfg.device)


def _monitor(cfg: TrainConfig, model: nn.Module, data: TrainData, device: torch.device) -> tuple[float, float]:
    """(clean, PGD) accuracy on the fixed monitor subset of training points, eval mode."""
    from ..attack_suite import run_attacks

    if cfg.monitor_size == 0:
        return float("nan"), float("nan")
    n = len(data.x_train)
    gen = torch.Generator().manual_seed(derive_seed(cfg.seed, TAG_MONITOR))
    idx = torch.randperm(n, generator=gen)[:min(cfg.monitor_size, n)].sort().values
    attacks = []
    if cfg.monitor_steps > 0 and cfg.eps > 0:
        attacks = [{"name": "pgd", "steps": cfg.monitor_steps, "step_size": 2.5 * cfg.eps / cfg.monitor_steps}]
    rep = run_attacks(model, to_float(data.x_train[idx]), data.y_train[idx], eps=cfg.eps, norm=cfg.norm,
                      attacks=attacks, batch_size=max(cfg.batch_size, 128), device=device, seed=cfg.seed)
    return rep.clean_acc, (rep.adv_acc if attacks else float("nan"))


@dataclasses.dataclass
class _Run:
    """The state a checkpoint holds, and what the loop updates."""

    cfg: TrainConfig
    data: TrainData
    device: torch.device
    model: nn.Module
    optimizer: Any
    scheduler: Any
    loss_fn: Any
    ckpt_path: Path
    epoch: int = 0
    step: int = 0
    history: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    stats: dict[str, float] = dataclasses.field(default_factory=dict)
    train_seconds: float = 0.0
    complete: bool = False

    def checkpoint(self, done: bool = False) -> None:
        save_checkpoint(self.ckpt_path, model=self.model, config=checkpoint_config(self.cfg, self.data),
                        optimizer=self.optimizer, scheduler=self.scheduler, epoch=self.epoch,
                        rng=rng_state(self.device), step=self.step, history=self.history, epoch_stats=self.stats,
                        train_seconds=self.train_seconds, complete=done, data_fingerprint=self.data.fingerprint,
                        device=str(self.device), format=CHECKPOINT_FORMAT)


def _new_stats() -> dict[str, float]:
    return {"loss_sum": 0.0, "n": 0, "clean_correct": 0, "clean_n": 0, "adv_correct": 0, "adv_n": 0, "seconds": 0.0}


def _start(cfg: TrainConfig, data: TrainData, device: torch.device, run_dir: Path, results_dir: Path | None,
           restart: bool) -> _Run:
    ckpt_path = run_dir / CHECKPOINT_FILE
    torch.manual_seed(derive_seed(cfg.seed, TAG_INIT))
    model = build_model_for(cfg, data).to(device)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = build_optimizer(cfg, model)
    run = _Run(cfg, data, device, model, optimizer, build_scheduler(cfg, optimizer),
               make_loss(cfg.method, cfg.method_params, eps=cfg.eps, norm=cfg.norm, reduction=cfg.loss_reduction),
               ckpt_path, stats=_new_stats())
    if ckpt_path.is_file() and not restart:
        state = load_checkpoint(ckpt_path, map_location=device)
        check_resumable(state, cfg, data.fingerprint, device, ckpt_path)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        run.scheduler.load_state_dict(state["scheduler"])
        set_rng_state(state.get("rng", {}), device)
        run.epoch, run.step = int(state["epoch"]), int(state.get("step", 0))
        run.history = list(state.get("history", []))
        run.stats = dict(state.get("epoch_stats") or _new_stats())
        run.train_seconds = float(state.get("train_seconds", 0.0))
        run.complete = bool(state.get("complete", False))
        log.info("%s: resuming from %s (epoch %d, step %d).", cfg.name, ckpt_path, run.epoch, run.step)
    elif restart:
        for f in [ckpt_path, run_dir / RECORD_FILE] + ([results_dir / RECORD_FILE] if results_dir else []):
            if f.exists():
                f.unlink()
    run_dir.mkdir(parents=True, exist_ok=True)
    cfg.save(run_dir / CONFIG_FILE)
    return run


def train_one_epoch(run: _Run, *, progress: bool, flag, stop_after: int | None, every: int | None,
                    taken: list[int]) -> None:
    """The remaining steps of ``run.epoch``; raises :class:`TrainingInterrupted` after saving a
    checkpoint when a signal arrived or ``stop_after`` steps were taken in this call."""
    cfg, data = run.cfg, run.data
    n = len(data.x_train)
    n_batches = math.ceil(n / cfg.batch_size)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(derive_seed(cfg.seed, TAG_SHUFFLE, run.epoch)))
    from separation.core.progress import progress_bar, resolve

    bar = progress_bar(total=n_batches, initial=run.step, desc=f"{cfg.name} epoch {run.epoch + 1}/{cfg.epochs}",
                       dynamic_ncols=True, enabled=progress) if resolve(progress) else None
    try:
        while run.step < n_batches:
            t0 = time.perf_counter()
            idx = perm[run.step * cfg.batch_size:(run.step + 1) * cfg.batch_size]
            torch.manual_seed(derive_seed(cfg.seed, TAG_STEP, run.epoch, run.step))
            xb = to_float(data.x_train[idx])
            if cfg.augmentation != "none":
                gen = torch.Generator().manual_seed(derive_seed(cfg.seed, TAG_AUG, run.epoch, run.step))
                xb = augment(xb, kind=cfg.augmentation, padding=cfg.crop_padding, generator=gen)
            xb, yb = xb.to(run.device), data.y_train[idx].to(run.device)
            if cfg.channels_last:
                xb = xb.contiguous(memory_format=torch.channels_last)
            run.model.train()
            run.optimizer.zero_grad(set_to_none=True)
            out = run.loss_fn(run.model, xb, yb)
            if not torch.isfinite(out.loss):
                raise TrainingDiverged(f"{cfg.name}: the loss became {float(out.loss)} at epoch {run.epoch + 1}, "
                                         f"step {run.step + 1}; lower lr (now {cfg.lr}) or check the method parameters.")
            out.loss.backward()
            run.optimizer.step()
            b = len(yb)
            value = float(out.loss.detach())
            run.stats["loss_sum"] += (value / b if cfg.loss_reduction == "sum" else value) * b
            run.stats["n"] += b
            for key, logits in (("clean", out.clean_logits), ("adv", out.adv_logits)):
                if logits is not None:
                    run.stats[f"{key}_correct"] += int((logits.argmax(1) == yb).sum())
                    run.stats[f"{key}_n"] += b
            run.step += 1
            taken[0] += 1
            dt = time.perf_counter() - t0
            run.stats["seconds"] += dt
            run.train_seconds += dt
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{run.stats['loss_sum'] / run.stats['n']:.3f}", refresh=False)
            stop = flag["signum"] is not None or (stop_after is not None and taken[0] >= stop_after)
            if stop or (every and run.step % every == 0 and run.step < n_batches):
                run.checkpoint()
            if stop:
                why = f"signal {flag['signum']}" if flag["signum"] is not None else f"stop_after_steps={stop_after}"
                log.warning("%s: stopped (%s) at epoch %d step %d; checkpoint saved to %s. Run the same command "
                            "again to resume.", cfg.name, why, run.epoch + 1, run.step, run.ckpt_path)
                raise TrainingInterrupted(f"{cfg.name}: stopped ({why}); resume by re-running.", signum=flag["signum"])
    finally:
        if bar is not None:
            bar.close()


def _end_epoch(run: _Run) -> None:
    cfg = run.cfg
    lr = run.optimizer.param_groups[0]["lr"]
    with warnings.catch_warnings():  # resumed at an epoch's end: no optimizer.step() yet
        warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step", category=UserWarning)
        run.scheduler.step()
    t0 = time.perf_counter()
    clean_acc, adv_acc = _monitor(cfg, run.model, run.data, run.device)
    dt = time.perf_counter() - t0
    s = run.stats
    s["seconds"] += dt
    run.train_seconds += dt
    entry = {"epoch": run.epoch + 1, "loss": s["loss_sum"] / max(s["n"], 1), "train_clean_acc": clean_acc,
             "train_adv_acc": adv_acc, "seconds": s["seconds"], "lr": lr,
             "batch_clean_acc": s["clean_correct"] / s["clean_n"] if s["clean_n"] else None,
             "batch_adv_acc": s["adv_correct"] / s["adv_n"] if s["adv_n"] else None}
    run.history.append(entry)
    log.info("%s epoch %d/%d: loss %.4f, train clean acc %.4f, train adv acc %.4f (monitor: %d points, PGD-%d), "
             "%.1fs", cfg.name, run.epoch + 1, cfg.epochs, entry["loss"], clean_acc, adv_acc,
             min(cfg.monitor_size, len(run.data.x_train)), cfg.monitor_steps, entry["seconds"])
    run.epoch += 1
    run.step = 0
    run.stats = _new_stats()
    run.checkpoint(done=run.epoch >= cfg.epochs)


def train(cfg: TrainConfig, *, run_dir: str | os.PathLike, results_dir: str | os.PathLike | None = None,
          data_root: str | os.PathLike | None = None, dataset=None, progress: bool | None = None, evaluate: bool = True,
          stop_after_steps: int | None = None, checkpoint_every_steps: int | None = None,
          handle_signals: bool = True, restart: bool = False, reuse: bool = True) -> TrainOutcome:
    """Train (or resume, or reuse) the run described by ``cfg``.

    ``run_dir``: the checkpoint and full record (e.g. ``checkpoints/<grid>/<run>``); ``results_dir``:
    where the committed copy of the record goes (None: nowhere); ``dataset``: a
    :class:`separation.Dataset` instead of loading ``cfg.dataset`` from ``data_root``;
    ``stop_after_steps``: checkpoint and raise :class:`TrainingInterrupted` after this many steps
    in this call; ``handle_signals``: SIGINT/SIGTERM checkpoint at the next step boundary, then
    raise it; ``restart``: discard an existing checkpoint and record; ``reuse``: return a finished
    record made with the same config instead of training again.

    Raises :class:`CheckpointMismatch` when ``run_dir`` holds a checkpoint of another config.
    """
    run_dir = Path(run_dir)
    results_dir = Path(results_dir) if results_dir is not None else None
    if reuse and not restart:
        for folder in (run_dir, results_dir):
            rec = finished_record(folder, cfg)
            if rec is not None:
                log.info("%s: finished record found in %s; skipping.", cfg.name, folder)
                if results_dir is not None and folder == run_dir and finished_record(results_dir, cfg) is None:
                    atomic_write_bytes(results_dir / RECORD_FILE, (run_dir / RECORD_FILE).read_bytes())
                return TrainOutcome("reused", rec, None, rec.result.history, run_dir, results_dir)
    if evaluate:
        eval_config(cfg)  # fail before training on settings the evaluation does not accept
    device = resolve_device(cfg.device)
    data = prepare_data(cfg, data_root=data_root, dataset=dataset)
    with num_threads(cfg.num_threads), determinism(cfg.deterministic, device):
        run = _start(cfg, data, device, run_dir, results_dir, restart)
        taken = [0]
        with stop_on_signals(handle_signals) as flag:
            while run.epoch < cfg.epochs and not run.complete:
                train_one_epoch(run, progress=progress, flag=flag, stop_after=stop_after_steps,
                                every=checkpoint_every_steps, taken=taken)
                _end_epoch(run)
        history = [EpochStats(**e) for e in run.history]
        if not evaluate:
            return TrainOutcome("completed", None, run.model, history, run_dir, results_dir)
        return _finish(run, history, run_dir, results_dir, progress)


def _finish(run: _Run, history, run_dir: Path, results_dir: Path | None, progress: bool) -> TrainOutcome:
    """Evaluate the trained model on its training points and the test split; write the record."""
    from ..model_metrics import evaluate_model
    from ..records import ModelSpec

    cfg = run.cfg
    log.info("%s: evaluating.", cfg.name)
    t0 = time.perf_counter()
    run.model.eval()
    spec = ModelSpec(name=cfg.name, arch=cfg.arch, config=checkpoint_config(cfg, run.data))
    ev = evaluate_model(run.model, run.data.dataset, eval_config(cfg), out=run_dir / EVALUATION_DIR, force=True,
                  progress=progress, name=cfg.name, model_spec=spec, checkpoint=str(run.ckpt_path))
    eval_seconds = time.perf_counter() - t0
    result = TrainResult(history=history, epochs_completed=len(history), device_used=str(run.device),
                         data_fingerprint=run.data.fingerprint, train_points=len(run.data.x_train),
                         checkpoint=str(run.ckpt_path), evaluation=ev.result)
    rec = write_record(run_dir, TrainingRecord(config=cfg, result=result,
                                               timing={"train_seconds": run.train_seconds, "eval_seconds": eval_seconds},
                                               meta=run_metadata(cfg.seed)))
    if results_dir is not None:
        atomic_write_bytes(results_dir / RECORD_FILE, (run_dir / RECORD_FILE).read_bytes())
    log.info("%s: record written to %s%s.", cfg.name, run_dir / RECORD_FILE,
             f" and {results_dir / RECORD_FILE}" if results_dir is not None else "")
    return TrainOutcome("completed", rec, run.model, history, run_dir, results_dir)


__all__ = ["CHECKPOINT_FILE", "CONFIG_FILE", "EVALUATION_DIR", "TrainOutcome", "build_model_for", "build_optimizer",
           "build_scheduler", "eval_config", "train", "train_one_epoch"]
