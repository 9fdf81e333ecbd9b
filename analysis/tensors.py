"""Helpers shared by the attacks, the Lipschitz estimator, the losses and the evaluation (torch).

The geometry of the threat model (projection, steps, random starts) is :class:`separation.ThreatModel`.
"""
from __future__ import annotations

import contextlib
import math
from typing import Iterator

import numpy as np
import torch
import torch.nn as nn

from separation.core.threat import ThreatModel, check_eps
from separation.core.paper import ATTACK_NORMS
from separation.core.errors import InvalidInputError, InvalidTypeError


def threat(norm: str, eps: float) -> ThreatModel:
    """The :class:`~separation.ThreatModel` of an attack: ``norm`` must be one of the attack norms."""
    if norm not in ATTACK_NORMS:
        raise InvalidInputError(f"Unknown norm {norm!r}: use {' or '.join(map(repr, ATTACK_NORMS))}.")
    return ThreatModel(norm, check_eps(eps))


def flat_norm(v: torch.Tensor, norm: str | float) -> torch.Tensor:
    """Per-sample norm of a batch (``linf``/``l2``/``l1`` or a p as number)."""
    p = {"linf": float("inf"), "l2": 2.0, "l1": 1.0}.get(norm, norm)
    return torch.linalg.vector_norm(v.flatten(1), ord=p, dim=1)


@contextlib.contextmanager
def eval_mode(model: nn.Module, enabled: bool = True) -> Iterator[nn.Module]:
    """Put every submodule in eval mode for the block; restore each one's own flag afterwards."""
    if not enabled:
        yield model
        return
    saved = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for m, flag in saved:
            m.training = flag


def model_device_dtype(model: nn.Module) -> tuple[torch.device | None, torch.dtype]:
    """The device and floating dtype of a model's first parameter or buffer (None, float32 if none)."""
    for t in list(model.parameters()) + list(model.buffers()):
        if t.is_floating_point():
            return t.device, t.dtype
    return None, torch.float32


def to_unit_tensor(x, *, device=None, dtype: torch.dtype = torch.float32, name: str = "x") -> torch.Tensor:
    """Images as a float tensor in [0, 1]: uint8 is divided by 255, floats are checked."""
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(np.ascontiguousarray(x))
    if not isinstance(x, torch.Tensor):
        raise InvalidTypeError(f"{name} must be a torch.Tensor or numpy array, got {type(x).__name__}.")
    if x.dtype == torch.uint8:
        return x.to(device=device, dtype=dtype) / 255.0
    if not x.is_floating_point():
        raise InvalidTypeError(f"{name} must hold floats in [0, 1] or uint8 pixels, got dtype {x.dtype}.")
    x = x.detach().to(device=device, dtype=dtype)
    if x.numel():
        lo, hi = float(x.min()), float(x.max())
        if lo < -1e-6 or hi > 1 + 1e-6 or not (math.isfinite(lo) and math.isfinite(hi)):
            raise InvalidInputError(f"{name} must lie in [0, 1] (got values in [{lo:.4g}, {hi:.4g}]). "
                             "Pass raw images scaled to [0, 1]; if the model expects normalised "
                             "inputs, wrap it with analysis.models.Normalize(model, mean=..., std=...).")
    return x.clamp(0, 1)


def check_images(x: torch.Tensor, name: str = "x") -> torch.Tensor:
    """``x`` (detached) if it is a non-empty float batch in [0, 1], else a TypeError/ValueError that says how to fix it."""
    if not isinstance(x, torch.Tensor):
        raise InvalidTypeError(f"{name} must be a torch.Tensor of images in [0, 1], got {type(x).__name__}.")
    if not x.is_floating_point():
        raise InvalidTypeError(f"{name} must be a float tensor in [0, 1] (got {x.dtype}); divide uint8 images by 255.")
    if x.dim() < 2 or x.shape[0] == 0:
        raise InvalidInputError(f"{name} must be a non-empty batch (n, ...), got shape {tuple(x.shape)}.")
    if x.numel() and (float(x.min()) < 0 or float(x.max()) > 1):
        raise InvalidInputError(f"{name} must lie in [0, 1]; got values in [{float(x.min()):.4g}, "
                         f"{float(x.max()):.4g}]. Wrap models trained on normalised inputs with "
                         "analysis.models.Normalize and pass raw [0, 1] images.")
    return x.detach()


def to_labels(y, *, n: int, device=None) -> torch.Tensor:
    if isinstance(y, np.ndarray):
        y = torch.from_numpy(np.ascontiguousarray(y))
    if not isinstance(y, torch.Tensor):
        raise InvalidTypeError(f"y must be a torch.Tensor or numpy array, got {type(y).__name__}.")
    y = y.reshape(-1)
    if y.is_floating_point() or y.dtype == torch.bool:
        raise InvalidTypeError(f"y must hold integer class labels, got dtype {y.dtype}.")
    if len(y) != n:
        raise InvalidInputError(f"x has {n} images but y has {len(y)} labels.")
    return y.to(device=device, dtype=torch.long)


class NonFiniteOutputError(InvalidInputError, FloatingPointError):
    """A model whose outputs are not finite (NaN or inf) where they are needed: a broken model."""


def count_nonfinite_outputs(model: nn.Module, x, *, device=None, dtype: torch.dtype = torch.float32,
                            batch_size: int = 256, name: str = "x") -> int:
    """How many points of ``x`` (``(n, ...)`` images) give a non-finite logit (NaN or inf), with the
    model in eval mode and no gradient: every point is checked, not a sample."""
    bad = 0
    with torch.no_grad(), eval_mode(model):
        for sl in batches(len(x), batch_size):
            out = model(to_unit_tensor(x[sl], device=device, dtype=dtype, name=name))
            bad += int((~torch.isfinite(out.reshape(len(out), -1))).any(dim=1).sum())
    return bad


def batches(n: int, batch_size: int):
    """Slices of ``range(n)`` of at most ``batch_size``."""
    if batch_size < 1:
        raise InvalidInputError(f"batch_size must be >= 1, got {batch_size}.")
    for start in range(0, n, batch_size):
        yield slice(start, min(n, start + batch_size))


__all__ = ["NonFiniteOutputError", "batches", "check_images", "count_nonfinite_outputs", "eval_mode", "flat_norm", "model_device_dtype", "threat",
           "to_labels", "to_unit_tensor"]
