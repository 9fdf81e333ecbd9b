"""What makes a training run resumable bit for bit: per-step random streams, the checkpoint's
state and identity, deterministic kernels, thread counts and signal handling."""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import signal
import threading
from typing import Any, Iterator, Mapping

import numpy as np
import torch

from separation.core.errors import CheckpointError, ConfigError, ToolkitError

from ..train_config import RUNTIME_FIELDS, TrainConfig

log = logging.getLogger("analysis.train")

# tags that keep the per-step random streams apart
TAG_SHUFFLE, TAG_STEP, TAG_AUG, TAG_MONITOR, TAG_INIT = 1, 2, 3, 4, 5
CHECKPOINT_FORMAT = "analysis.train/1"


class TrainingInterrupted(Exception):
    """Raised after a checkpoint was saved because of a signal or ``stop_after_steps``."""

    def __init__(self, message: str, *, signum: int | None = None):
        super().__init__(message)
        self.signum = signum


class CheckpointMismatch(CheckpointError):
    """The checkpoint in a run folder was made with a different configuration."""


class TrainingDiverged(ToolkitError, FloatingPointError):
    """The training loss became non-finite; the message names the step and what to change."""


def derive_seed(*parts: int) -> int:
    """A 63-bit seed from integers, stable across runs and platforms."""
    state = np.random.SeedSequence([int(p) for p in parts]).generate_state(2, dtype=np.uint32)
    return int((int(state[0]) << 31) ^ int(state[1])) & ((1 << 63) - 1)


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device: {device!r} requested but CUDA is not available; use device=cpu or device=auto.")
    return dev


@contextlib.contextmanager
def determinism(enabled: bool, device: torch.device) -> Iterator[None]:
    """Deterministic kernels for the block (restored afterwards).

    On CUDA: ``torch.use_deterministic_algorithms`` (warn-only), deterministic cuDNN and a cuBLAS
    workspace. On CPU nothing needs switching: the kernels used here give the same bits for the
    same thread count (which is therefore part of a run's identity).
    """
    if not enabled or device.type != "cuda":
        yield
        return
    prev = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
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
    if not enabled or threading.current_thread() is not threading.main_thread():
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


def checkpoint_config(cfg: TrainConfig, data) -> dict[str, Any]:
    """The checkpoint's ``config``: the full TrainConfig plus the model dimensions, so that
    :func:`analysis.checkpoints.model_from_checkpoint` can rebuild the network on its own."""
    return {**cfg.to_dict(), "in_channels": data.in_channels, "num_classes": data.num_classes,
            "input_size": data.input_size}


_CONFIG_FIELDS = tuple(f.name for f in dataclasses.fields(TrainConfig))


def identity(config: Mapping[str, Any]) -> dict[str, Any]:
    """The TrainConfig fields of a stored config, runtime fields left out."""
    return {k: config.get(k) for k in _CONFIG_FIELDS if k not in RUNTIME_FIELDS}


def config_diff(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    keys = sorted(set(a) | set(b))
    return [f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in keys if a.get(k) != b.get(k)]


def check_resumable(state: Mapping[str, Any], cfg: TrainConfig, fingerprint: str, device: torch.device,
                    path) -> None:
    """Refuse a checkpoint of another configuration or other data; warn when the device differs
    (the same bits are then not guaranteed)."""
    diff = config_diff(identity(state.get("config", {})), cfg.identity())
    if diff:
        raise CheckpointMismatch(
            f"{path} was made with a different config ({'; '.join(diff)}). Use another run name / "
            "folder, or pass --restart to discard the checkpoint.")
    if state.get("data_fingerprint") not in (None, fingerprint):
        raise CheckpointMismatch(f"{path} was trained on different {cfg.dataset} data (fingerprint differs); "
                                 "pass --restart to discard it.")
    made_on = state.get("device")
    if made_on is not None and torch.device(made_on).type != device.type:
        log.warning("%s was made on %s and resumes on %s: the resumed run is not guaranteed to reach the "
                    "same bits as an uninterrupted run on one device.", path, made_on, device)


__all__ = ["CHECKPOINT_FORMAT", "CheckpointMismatch", "TrainingDiverged", "TAG_AUG", "TAG_INIT", "TAG_MONITOR", "TAG_SHUFFLE",
           "TAG_STEP", "TrainingInterrupted", "check_resumable", "checkpoint_config", "config_diff",
           "derive_seed", "determinism", "identity", "num_threads", "resolve_device", "rng_state",
           "set_rng_state", "stop_on_signals"]
