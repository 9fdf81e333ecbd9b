"""Train one model with one of the paper's methods, checkpoint it, resume it, evaluate it.

``python -m analysis.train --config configs/examples/mnist_trades_cpu.yaml --set method_params.beta=3``

One :class:`~analysis.config.TrainConfig` describes the run. Training shows a tqdm bar, logs
per-epoch clean/adversarial accuracy on a fixed monitor subset of the training points, and saves a
checkpoint (weights, optimiser, scheduler, epoch, step, history, config, RNG states) atomically
after every epoch (and every ``checkpoint_every_steps`` steps if asked). Re-running the same
command resumes from the checkpoint and reaches bit-for-bit the weights an uninterrupted run
reaches: batch order, augmentation and every random draw of a step come from generators seeded by
``(seed, epoch, step)``, so they do not depend on what ran before. SIGINT/SIGTERM stop at the next
step boundary after saving (exit code 130/143).

At the end the model is evaluated with :func:`analysis.evaluate.evaluate_model` and a record
(:func:`separation.records.write_record`, kind ``"training"``) is written beside the checkpoint
and copied to ``results/training/<group>/<run>/record.json`` (the file that gets committed;
checkpoints stay in the git-ignored ``checkpoints/``).
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import inspect
import json
import logging
import math
import os
import signal
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np
import torch
import torch.nn as nn

from .checkpoints import load_checkpoint, save_checkpoint
from .config import RUNTIME_FIELDS, ConfigError, TrainConfig, load_config
from .losses import make_loss

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CHECKPOINT_ROOT = REPO_ROOT / "checkpoints"
DEFAULT_RESULTS_ROOT = REPO_ROOT / "results" / "training"
CHECKPOINT_FILE = "last.pt"
CONFIG_FILE = "config.yaml"
RECORD_KIND = "training"

# tags that keep the per-step random streams apart
_TAG_SHUFFLE, _TAG_STEP, _TAG_AUG, _TAG_MONITOR, _TAG_INIT = 1, 2, 3, 4, 5


class TrainingInterrupted(RuntimeError):
    """Raised after a checkpoint was saved because of a signal or ``stop_after_steps``."""

    def __init__(self, message: str, *, signum: int | None = None):
        super().__init__(message)
        self.signum = signum


class CheckpointMismatch(RuntimeError):
    """The checkpoint in a run folder was made with a different configuration."""


@dataclasses.dataclass
class TrainData:
    """Float-convertible training/test tensors (uint8 or float in [0, 1]) and their provenance."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor | None
    y_test: torch.Tensor | None
    num_classes: int
    train_indices: np.ndarray
    fingerprint: str
    dataset: Any = None  # the separation.datasets.Dataset restricted to the training points

    @property
    def in_channels(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def input_size(self) -> int:
        return int(self.x_train.shape[-1])


@dataclasses.dataclass
class TrainOutcome:
    """What :func:`train` returns: ``status`` is ``"completed"`` or ``"reused"``."""

    status: str
    record: dict[str, Any] | None
    model: nn.Module | None
    history: list[dict[str, Any]]
    run_dir: Path
    results_dir: Path | None


# ---------------------------------------------------------------------------------------------
# seeds, devices, data
# ---------------------------------------------------------------------------------------------
def derive_seed(*parts: int) -> int:
    """A 63-bit seed from integers, stable across runs and platforms."""
    state = np.random.SeedSequence([int(p) for p in parts]).generate_state(2, dtype=np.uint32)
    return int((int(state[0]) << 31) ^ int(state[1])) & ((1 << 63) - 1)


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device: {device!r} requested but CUDA is not available; use device=cpu "
                          "or device=auto.")
    return dev


def prepare_data(cfg: TrainConfig, *, data_root: str | os.PathLike | None = None,
                 dataset=None) -> TrainData:
    """Load ``cfg.dataset`` (or use ``dataset``) and restrict it to ``cfg.train_subset`` points."""
    from separation.datasets import load_dataset

    if dataset is None:
        dataset = load_dataset(cfg.dataset, root=data_root)
    if dataset.x_train.ndim != 4:
        raise ValueError(f"{cfg.dataset}: training needs images (n, C, H, W); got shape "
                         f"{dataset.x_train.shape}.")
    fingerprint = dataset.fingerprint()
    n = len(dataset.x_train)
    if cfg.train_subset is not None and cfg.train_subset < n:
        rng = np.random.default_rng(cfg.subset_seed)
        idx = np.sort(rng.choice(n, cfg.train_subset, replace=False))
    else:
        idx = np.arange(n)
    restricted = dataclasses.replace(dataset, x_train=dataset.x_train[idx], y_train=dataset.y_train[idx])
    ys = [dataset.y_train] + ([dataset.y_test] if dataset.y_test is not None else [])
    num_classes = max(len(dataset.classes or []), int(max(int(y.max()) for y in ys)) + 1)

    def tensor(a):
        if a is None:
            return None
        t = torch.from_numpy(np.ascontiguousarray(a))
        return t if t.dtype == torch.uint8 else t.float()

    return TrainData(cfg.dataset, tensor(restricted.x_train), torch.from_numpy(restricted.y_train).long(),
                     tensor(dataset.x_test), None if dataset.y_test is None else
                     torch.from_numpy(dataset.y_test).long(), num_classes, idx, fingerprint, restricted)


def to_float(x: torch.Tensor) -> torch.Tensor:
    return x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()


def augment(x: torch.Tensor, *, kind: str, padding: int, generator: torch.Generator) -> torch.Tensor:
    """Random crop (zero padding) and/or horizontal flip of a float batch; ``generator`` on CPU."""
    if kind == "none":
        return x
    n, _, h, w = x.shape
    if kind in ("crop", "crop_flip") and padding > 0:
        padded = torch.nn.functional.pad(x, (padding, padding, padding, padding))
        offs = torch.randint(0, 2 * padding + 1, (n, 2), generator=generator).tolist()
        x = torch.stack([padded[i, :, dy:dy + h, dx:dx + w] for i, (dy, dx) in enumerate(offs)])
    if kind in ("flip", "crop_flip"):
        flip = torch.rand(n, generator=generator) < 0.5
        if bool(flip.any()):
            x = x.clone()
            idx = flip.nonzero().flatten().to(x.device)
            x[idx] = x[idx].flip(-1)
    return x


def build_optimizer(cfg: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                               weight_decay=cfg.weight_decay)
    return torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)


def build_scheduler(cfg: TrainConfig, optimizer: torch.optim.Optimizer):
    """Stepped once per epoch: ``multistep`` (×gamma at each milestone epoch), ``cosine``, ``constant``."""
    if cfg.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.epochs)
    milestones = cfg.milestones if cfg.schedule == "multistep" else []
    return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=list(milestones), gamma=cfg.gamma)


def build_model_for(cfg: TrainConfig, data: TrainData) -> nn.Module:
    from .models import build_model

    if data.x_train.shape[-1] != data.x_train.shape[-2]:
        raise ValueError(f"{cfg.dataset}: the architectures need square images, got "
                         f"{tuple(data.x_train.shape[-2:])}.")
    return build_model(cfg.arch, in_channels=data.in_channels, num_classes=data.num_classes,
                       input_size=data.input_size, dropout=cfg.dropout)


@contextlib.contextmanager
def determinism(enabled: bool, device: torch.device) -> Iterator[None]:
    """Deterministic kernels for the block (restored afterwards).

    On CUDA: ``torch.use_deterministic_algorithms`` (warn-only), deterministic cuDNN and a cuBLAS
    workspace. On CPU nothing needs switching: the kernels used here give the same bits for the
    same thread count (and ``use_deterministic_algorithms`` would cost a ~10 s import).
    """
    if not enabled or device.type != "cuda":
        yield
        return
    prev = (torch.are_deterministic_algorithms_enabled(),
            torch.is_deterministic_algorithms_warn_only_enabled(),
            torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(prev[0], warn_only=prev[1])
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = prev[2], prev[3]


@contextlib.contextmanager
def num_threads(n: int | None) -> Iterator[None]:
    """``torch.set_num_threads(n)`` for the block (None: leave as is)."""
    if not n:
        yield
        return
    prev = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(prev)


@contextlib.contextmanager
def stop_on_signals(enabled: bool) -> Iterator[dict[str, int | None]]:
    """Turn SIGINT/SIGTERM into a flag that the loop checks at step boundaries."""
    flag: dict[str, int | None] = {"signum": None}
    if not enabled or not _in_main_thread():
        yield flag
        return

    def handler(signum, _frame):
        if flag["signum"] is not None:  # second signal: stop now
            raise KeyboardInterrupt
        flag["signum"] = signum
        log.warning("Signal %d received: saving a checkpoint at the end of this step (send it again "
                    "to stop immediately).", signum)

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield flag
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def _in_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


# ---------------------------------------------------------------------------------------------
# checkpoints
# ---------------------------------------------------------------------------------------------
def rng_state(device: torch.device) -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Mapping[str, Any], device: torch.device) -> None:
    if "torch" in state:
        torch.set_rng_state(state["torch"])
    if device.type == "cuda" and state.get("cuda") is not None:
        torch.cuda.set_rng_state_all(list(state["cuda"]))


def _checkpoint_state(cfg: TrainConfig, data: "TrainData") -> dict[str, Any]:
    """The checkpoint's ``config``: the full TrainConfig plus the model dimensions, so that
    :func:`analysis.checkpoints.model_from_checkpoint` can rebuild the network on its own."""
    return {**cfg.to_dict(), "in_channels": data.in_channels, "num_classes": data.num_classes,
            "input_size": data.input_size}


def _config_diff(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    keys = sorted(set(a) | set(b))
    return [f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in keys if a.get(k) != b.get(k)]


_CONFIG_FIELDS = tuple(f.name for f in dataclasses.fields(TrainConfig))


def _identity(config: Mapping[str, Any]) -> dict[str, Any]:
    """The TrainConfig fields of a stored config, runtime fields left out."""
    return {k: config.get(k) for k in _CONFIG_FIELDS if k not in RUNTIME_FIELDS}


def finished_record(folder: str | os.PathLike, cfg: TrainConfig) -> dict[str, Any] | None:
    """The training record in ``folder`` if it was made with ``cfg`` (runtime fields aside)."""
    from separation.records import load_record

    try:
        rec = load_record(folder)
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    if rec.get("kind") != RECORD_KIND:
        return None
    return rec if _identity(rec.get("config", {})) == cfg.identity() else None


# ---------------------------------------------------------------------------------------------
# evaluation
# ---------------------------------------------------------------------------------------------
#: evaluate_model arguments that training fills in itself (not settable through cfg.evaluation).
_EVAL_FIXED = ("model", "dataset", "eps", "norm", "device", "out", "name", "arch", "checkpoint",
               "model_config", "extra_config")
EVALUATION_DIR = "evaluation"


def evaluation_options() -> set[str]:
    """The keywords ``cfg.evaluation`` may set (evaluate_model's and run_evaluation's)."""
    from .evaluate import evaluate_model, run_evaluation

    names = set()
    for fn in (evaluate_model, run_evaluation):
        for n, p in inspect.signature(fn).parameters.items():
            if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD):
                names.add(n)
    return names - set(_EVAL_FIXED)


def check_evaluation_options(options: Mapping[str, Any]) -> None:
    """Fail before training if ``cfg.evaluation`` has keys that evaluate_model does not accept."""
    accepted = evaluation_options()
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise ConfigError(f"evaluation: {', '.join(unknown)} not accepted (training sets "
                          f"{', '.join(_EVAL_FIXED[2:])} itself); settable: {', '.join(sorted(accepted))}.")


def run_evaluation(cfg: TrainConfig, model: nn.Module, data: TrainData, device: torch.device, *,
                   out: str | os.PathLike | None = None, checkpoint: str | None = None,
                   progress: bool = False) -> dict[str, Any]:
    """:func:`analysis.evaluate.evaluate_model` on the trained model and the points it was trained
    on (``data.dataset``: the training subset and the full test split); the evaluation's own
    record (with per-point arrays) goes to ``out``."""
    from .evaluate import evaluate_model

    kwargs: dict[str, Any] = {"progress": progress, "force": True}
    kwargs.update(cfg.evaluation)
    model.eval()
    return evaluate_model(model, data.dataset, eps=cfg.eps, norm=cfg.norm, device=str(device), out=out,
                          name=cfg.name, arch=cfg.arch, checkpoint=checkpoint,
                          model_config=_checkpoint_state(cfg, data), **kwargs)


# ---------------------------------------------------------------------------------------------
# the training loop
# ---------------------------------------------------------------------------------------------
def _monitor(cfg: TrainConfig, model: nn.Module, data: TrainData, device: torch.device) -> tuple[float, float]:
    """(clean, PGD) accuracy on the fixed monitor subset of training points, eval mode."""
    from .attack_suite import run_attacks

    if cfg.monitor_size == 0:
        return float("nan"), float("nan")
    n = len(data.x_train)
    gen = torch.Generator().manual_seed(derive_seed(cfg.seed, _TAG_MONITOR))
    idx = torch.randperm(n, generator=gen)[:min(cfg.monitor_size, n)].sort().values
    x = to_float(data.x_train[idx])
    y = data.y_train[idx]
    attacks = []
    if cfg.monitor_steps > 0 and cfg.eps > 0:
        attacks = [{"name": "pgd", "steps": cfg.monitor_steps,
                    "step_size": 2.5 * cfg.eps / cfg.monitor_steps}]
    rep = run_attacks(model, x, y, eps=cfg.eps, norm=cfg.norm, attacks=attacks,
                      batch_size=max(cfg.batch_size, 128), device=device, seed=cfg.seed)
    adv = rep.adv_acc if attacks else float("nan")
    return rep.clean_acc, adv


def _new_epoch_stats() -> dict[str, float]:
    return {"loss_sum": 0.0, "n": 0, "clean_correct": 0, "clean_n": 0, "adv_correct": 0, "adv_n": 0,
            "seconds": 0.0}


def _epoch_batches(cfg: TrainConfig, n: int, epoch: int) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(derive_seed(cfg.seed, _TAG_SHUFFLE, epoch))
    perm = torch.randperm(n, generator=gen)
    return [perm[i:i + cfg.batch_size] for i in range(0, n, cfg.batch_size)]


def train(cfg: TrainConfig, *, run_dir: str | os.PathLike, results_dir: str | os.PathLike | None = None,
          data_root: str | os.PathLike | None = None, dataset=None, progress: bool = True,
          evaluate: bool = True, stop_after_steps: int | None = None,
          checkpoint_every_steps: int | None = None, handle_signals: bool = True,
          restart: bool = False, reuse: bool = True) -> TrainOutcome:
    """Train (or resume, or reuse) the run described by ``cfg``.

    Args:
        run_dir: folder of this run's checkpoint and full record (e.g. ``checkpoints/<grid>/<run>``).
        results_dir: where the committed copy of the record goes (``results/training/<grid>/<run>``);
            None: nowhere.
        data_root: dataset folder for :func:`separation.load_dataset` (ignored with ``dataset``).
        dataset: a :class:`separation.datasets.Dataset` to use instead of loading ``cfg.dataset``.
        progress: tqdm bars.
        evaluate: run :func:`analysis.evaluate.evaluate_model` and write the record at the end.
        stop_after_steps: save a checkpoint and raise :class:`TrainingInterrupted` after this many
            optimiser steps *in this call* (time-sliced jobs; the tests' interruption).
        checkpoint_every_steps: also checkpoint every this many steps within an epoch.
        handle_signals: SIGINT/SIGTERM save a checkpoint at the next step boundary, then raise
            :class:`TrainingInterrupted`.
        restart: ignore (and overwrite) an existing checkpoint and record.
        reuse: return a finished record made with the same config instead of training again.

    Raises:
        CheckpointMismatch: ``run_dir`` holds a checkpoint of a different config (use another
            run name, or ``restart=True``).
        TrainingInterrupted: stopped early; the checkpoint is saved and a re-run resumes.
    """
    from separation.records import RECORD_FILE, atomic_write_bytes

    run_dir = Path(run_dir)
    results_dir = Path(results_dir) if results_dir is not None else None
    if reuse and not restart:
        for folder in (run_dir, results_dir):
            if folder is not None:
                rec = finished_record(folder, cfg)
                if rec is not None:
                    log.info("%s: finished record found in %s; skipping.", cfg.name, folder)
                    if results_dir is not None and folder == run_dir and finished_record(results_dir, cfg) is None:
                        atomic_write_bytes(results_dir / RECORD_FILE, (run_dir / RECORD_FILE).read_bytes())
                    return TrainOutcome("reused", rec, None, rec["result"].get("history", []),
                                        run_dir, results_dir)
    if evaluate:
        check_evaluation_options(cfg.evaluation)

    device = resolve_device(cfg.device)
    data = prepare_data(cfg, data_root=data_root, dataset=dataset)
    with num_threads(cfg.num_threads), determinism(cfg.deterministic, device):
        return _train(cfg, data, device, run_dir=run_dir, results_dir=results_dir, progress=progress,
                      evaluate=evaluate, stop_after_steps=stop_after_steps,
                      checkpoint_every_steps=checkpoint_every_steps, handle_signals=handle_signals,
                      restart=restart)


def _train(cfg: TrainConfig, data: TrainData, device: torch.device, *, run_dir: Path,
           results_dir: Path | None, progress: bool, evaluate: bool, stop_after_steps: int | None,
           checkpoint_every_steps: int | None, handle_signals: bool, restart: bool) -> TrainOutcome:
    from separation.records import ARRAYS_FILE, RECORD_FILE, atomic_write_bytes, load_record, write_record

    ckpt_path = run_dir / CHECKPOINT_FILE
    torch.manual_seed(derive_seed(cfg.seed, _TAG_INIT))
    model = build_model_for(cfg, data).to(device)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = build_optimizer(cfg, model)
    scheduler = build_scheduler(cfg, optimizer)
    loss_fn = make_loss(cfg.method, cfg.method_params, eps=cfg.eps, norm=cfg.norm,
                        reduction=cfg.loss_reduction)

    epoch, step, history = 0, 0, []
    stats = _new_epoch_stats()
    train_seconds = 0.0
    complete = False
    if ckpt_path.is_file() and not restart:
        state = load_checkpoint(ckpt_path, map_location=device)
        diff = _config_diff(_identity(state.get("config", {})), cfg.identity())
        if diff:
            raise CheckpointMismatch(
                f"{ckpt_path} was made with a different config ({'; '.join(diff)}). Use another "
                "run name / folder, or pass --restart to discard the checkpoint.")
        if state.get("data_fingerprint") not in (None, data.fingerprint):
            raise CheckpointMismatch(f"{ckpt_path} was trained on different {cfg.dataset} data "
                                     "(fingerprint differs); pass --restart to discard it.")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        set_rng_state(state.get("rng", {}), device)
        epoch, step = int(state["epoch"]), int(state.get("step", 0))
        history = list(state.get("history", []))
        stats = dict(state.get("epoch_stats") or _new_epoch_stats())
        train_seconds = float(state.get("train_seconds", 0.0))
        complete = bool(state.get("complete", False))
        log.info("%s: resuming from %s (epoch %d, step %d).", cfg.name, ckpt_path, epoch, step)
    elif restart:
        stale = [ckpt_path, run_dir / RECORD_FILE, run_dir / ARRAYS_FILE]
        if results_dir is not None:
            stale.append(results_dir / RECORD_FILE)
        for f in stale:
            if f.exists():
                f.unlink()
    run_dir.mkdir(parents=True, exist_ok=True)
    cfg.save(run_dir / CONFIG_FILE)

    def checkpoint(done: bool = False) -> None:
        save_checkpoint(ckpt_path, model=model, config=_checkpoint_state(cfg, data),
                        optimizer=optimizer, scheduler=scheduler, epoch=epoch,
                        rng=rng_state(device), step=step, history=history, epoch_stats=stats,
                        train_seconds=train_seconds, complete=done,
                        data_fingerprint=data.fingerprint, format="analysis.train/1")

    steps_this_call = 0
    n = len(data.x_train)
    n_batches = math.ceil(n / cfg.batch_size)
    with stop_on_signals(handle_signals) as flag:
        while epoch < cfg.epochs and not complete:
            batches = _epoch_batches(cfg, n, epoch)
            bar = None
            if progress:
                from tqdm.auto import tqdm

                bar = tqdm(total=n_batches, initial=step, desc=f"{cfg.name} epoch {epoch + 1}/{cfg.epochs}",
                           leave=False, dynamic_ncols=True)
            while step < n_batches:
                t0 = time.perf_counter()
                idx = batches[step]
                torch.manual_seed(derive_seed(cfg.seed, _TAG_STEP, epoch, step))
                xb = to_float(data.x_train[idx])
                if cfg.augmentation != "none":
                    gen = torch.Generator().manual_seed(derive_seed(cfg.seed, _TAG_AUG, epoch, step))
                    xb = augment(xb, kind=cfg.augmentation, padding=cfg.crop_padding, generator=gen)
                xb, yb = xb.to(device), data.y_train[idx].to(device)
                if cfg.channels_last:
                    xb = xb.contiguous(memory_format=torch.channels_last)
                model.train()
                optimizer.zero_grad(set_to_none=True)
                out = loss_fn(model, xb, yb)
                if not torch.isfinite(out.loss):
                    raise FloatingPointError(
                        f"{cfg.name}: the loss became {float(out.loss)} at epoch {epoch + 1}, step "
                        f"{step + 1}; lower lr (now {cfg.lr}) or check the method parameters.")
                out.loss.backward()
                optimizer.step()
                b = len(yb)
                loss_value = float(out.loss.detach())
                per_ex = loss_value / b if cfg.loss_reduction == "sum" else loss_value
                stats["loss_sum"] += per_ex * b
                stats["n"] += b
                if out.clean_logits is not None:
                    stats["clean_correct"] += int((out.clean_logits.argmax(1) == yb).sum())
                    stats["clean_n"] += b
                if out.adv_logits is not None:
                    stats["adv_correct"] += int((out.adv_logits.argmax(1) == yb).sum())
                    stats["adv_n"] += b
                step += 1
                steps_this_call += 1
                dt = time.perf_counter() - t0
                stats["seconds"] += dt
                train_seconds += dt
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{stats['loss_sum'] / stats['n']:.3f}", refresh=False)
                stop = flag["signum"] is not None or (stop_after_steps is not None
                                                      and steps_this_call >= stop_after_steps)
                if stop or (checkpoint_every_steps and step % checkpoint_every_steps == 0
                            and step < n_batches):
                    checkpoint()
                if stop:
                    if bar is not None:
                        bar.close()
                    why = (f"signal {flag['signum']}" if flag["signum"] is not None
                           else f"stop_after_steps={stop_after_steps}")
                    log.warning("%s: stopped (%s) at epoch %d step %d; checkpoint saved to %s. "
                                "Run the same command again to resume.", cfg.name, why,
                                epoch + 1, step, ckpt_path)
                    raise TrainingInterrupted(f"{cfg.name}: stopped ({why}); resume by re-running.",
                                              signum=flag["signum"])
            if bar is not None:
                bar.close()
            lr = optimizer.param_groups[0]["lr"]
            with warnings.catch_warnings():  # resumed at an epoch's end: no optimizer.step() yet
                warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step",
                                        category=UserWarning)
                scheduler.step()
            t0 = time.perf_counter()
            clean_acc, adv_acc = _monitor(cfg, model, data, device)
            stats["seconds"] += time.perf_counter() - t0
            train_seconds += time.perf_counter() - t0
            entry = {
                "epoch": epoch + 1,
                "loss": stats["loss_sum"] / max(stats["n"], 1),
                "train_clean_acc": clean_acc,
                "train_adv_acc": adv_acc,
                "seconds": stats["seconds"],
                "lr": lr,
                "batch_clean_acc": stats["clean_correct"] / stats["clean_n"] if stats["clean_n"] else None,
                "batch_adv_acc": stats["adv_correct"] / stats["adv_n"] if stats["adv_n"] else None,
            }
            history.append(entry)
            log.info("%s epoch %d/%d: loss %.4f, train clean acc %.4f, train adv acc %.4f "
                     "(monitor: %d points, PGD-%d), %.1fs", cfg.name, epoch + 1, cfg.epochs,
                     entry["loss"], clean_acc, adv_acc, min(cfg.monitor_size, n),
                     cfg.monitor_steps, entry["seconds"])
            epoch += 1
            step = 0
            stats = _new_epoch_stats()
            checkpoint(done=epoch >= cfg.epochs)
        complete = True

    if not evaluate:
        return TrainOutcome("completed", None, model, history, run_dir, results_dir)

    log.info("%s: evaluating.", cfg.name)
    t0 = time.perf_counter()
    evaluation = run_evaluation(cfg, model, data, device, out=run_dir / EVALUATION_DIR,
                                checkpoint=str(ckpt_path), progress=progress)
    eval_seconds = time.perf_counter() - t0
    result = {
        "evaluation": evaluation,
        "history": history,
        "epochs_completed": len(history),
        "device_used": str(device),
        "data_fingerprint": data.fingerprint,
        "train_points": int(len(data.x_train)),
        "checkpoint": str(ckpt_path),
    }
    write_record(run_dir, kind=RECORD_KIND, config=cfg.to_dict(), result=result,
                 seed=cfg.seed, timing={"train_seconds": train_seconds, "eval_seconds": eval_seconds})
    if results_dir is not None:
        atomic_write_bytes(results_dir / RECORD_FILE, (run_dir / RECORD_FILE).read_bytes())
    rec = load_record(run_dir)
    log.info("%s: record written to %s%s.", cfg.name, run_dir / RECORD_FILE,
             f" and {results_dir / RECORD_FILE}" if results_dir is not None else "")
    return TrainOutcome("completed", rec, model, history, run_dir, results_dir)


# ---------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------
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
        flag = "--" + f.name.replace("_", "-")
        group.add_argument(flag, dest=f"field_{f.name}", default=None, metavar="VALUE",
                           help=f"TrainConfig.{f.name} (default from profile/file: "
                                f"{f.default if f.default is not dataclasses.MISSING else '[]'})")


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    overrides = []
    for f in dataclasses.fields(TrainConfig):
        value = getattr(args, f"field_{f.name}", None)
        if value is not None:
            overrides.append(f"{f.name}={value}")
    overrides += [f"method_params.{p}" for p in args.params]
    overrides += list(args.overrides)
    return load_config(args.config, overrides=overrides)


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m analysis.train",
        description="Train one model with one of the paper's methods (natural, gr, llr, at, rst, "
                    "trades), checkpointing and resuming, then evaluate it and write its record.")
    add_config_arguments(p)
    p.add_argument("--group", default="runs",
                   help="sub-folder of the checkpoint and results roots (a grid's name; default runs).")
    p.add_argument("--checkpoint-root", type=Path, default=DEFAULT_CHECKPOINT_ROOT,
                   help=f"checkpoints go to ROOT/GROUP/NAME (default {DEFAULT_CHECKPOINT_ROOT}).")
    p.add_argument("--results-root", type=Path, default=DEFAULT_RESULTS_ROOT,
                   help=f"the committed record goes to ROOT/GROUP/NAME/record.json (default "
                        f"{DEFAULT_RESULTS_ROOT}).")
    p.add_argument("--no-results-copy", action="store_true", help="do not copy the record to --results-root.")
    p.add_argument("--data-root", type=Path, default=None, help="dataset folder (torchvision layout).")
    p.add_argument("--restart", action="store_true", help="discard an existing checkpoint/record and start over.")
    p.add_argument("--no-eval", action="store_true", help="train only (no evaluation, no record).")
    p.add_argument("--checkpoint-every-steps", type=int, default=None,
                   help="also checkpoint every N steps within an epoch.")
    p.add_argument("--stop-after-steps", type=int, default=None,
                   help="checkpoint and stop after N optimiser steps (resume by re-running).")
    p.add_argument("--print-config", action="store_true", help="print the resolved config (YAML) and exit.")
    p.add_argument("--no-progress", action="store_true", help="no tqdm bars.")
    p.add_argument("-v", "--verbose", action="count", default=0)
    return p


def setup_logging(verbose: int = 0) -> None:
    level = logging.DEBUG if verbose > 0 else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")


def summarize(rec: Mapping[str, Any]) -> str:
    """One line: test/train clean and adversarial accuracy, Lipschitz means, gaps."""
    ev = rec.get("result", {}).get("evaluation", {}) or {}
    parts = []
    for split in ("test", "train"):
        s = ev.get(split) or {}
        for key, label in (("clean_acc", "acc"), ("adv_acc", "adv"), ("lipschitz_mean", "lip"),
                           ("lipschitz_paper_mean", "lip_paper")):
            if isinstance(s.get(key), (int, float)):
                parts.append(f"{split}_{label}={s[key]:.4g}")
    for k, v in (ev.get("gaps") or {}).items():
        if isinstance(v, (int, float)):
            parts.append(f"gap_{k}={v:.4g}")
    return ", ".join(parts) or "(no evaluation)"


def main(argv: list[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    setup_logging(args.verbose)
    try:
        cfg = config_from_args(args)
    except ConfigError as exc:
        log.error("%s", exc)
        return 2
    if args.print_config:
        import yaml

        sys.stdout.write(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
        return 0
    run_dir = args.checkpoint_root / args.group / cfg.name
    results_dir = None if args.no_results_copy else args.results_root / args.group / cfg.name
    try:
        outcome = train(cfg, run_dir=run_dir, results_dir=results_dir, data_root=args.data_root,
                        progress=not args.no_progress, evaluate=not args.no_eval,
                        stop_after_steps=args.stop_after_steps,
                        checkpoint_every_steps=args.checkpoint_every_steps, restart=args.restart)
    except TrainingInterrupted as exc:
        log.warning("%s", exc)
        return 128 + (exc.signum or 2) if exc.signum else 3
    except (ConfigError, CheckpointMismatch, FileNotFoundError, ValueError) as exc:
        log.error("%s", exc)
        return 2
    if outcome.record is not None:
        log.info("%s (%s): %s", cfg.name, outcome.status, summarize(outcome.record))
    return 0


if __name__ == "__main__":
    sys.exit(main())
