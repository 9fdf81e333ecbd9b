"""Helpers shared by the attacks, the Lipschitz estimator and the evaluation."""
from __future__ import annotations

import contextlib
import math
from typing import Iterator

import numpy as np
import torch
import torch.nn as nn

ATTACK_NORMS = ("linf", "l2")


def check_attack_norm(norm: str) -> str:
    if norm not in ATTACK_NORMS:
        raise ValueError(f"Unknown norm {norm!r}: use 'linf' or 'l2'.")
    return norm


def check_eps(eps: float, name: str = "eps") -> float:
    try:
        eps = float(eps)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number, got {type(eps).__name__}.") from None
    if not math.isfinite(eps) or eps < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {eps}.")
    return eps


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
        raise TypeError(f"{name} must be a torch.Tensor or numpy array, got {type(x).__name__}.")
    if x.dtype == torch.uint8:
        return x.to(device=device, dtype=dtype) / 255.0
    if not x.is_floating_point():
        raise TypeError(f"{name} must hold floats in [0, 1] or uint8 pixels, got dtype {x.dtype}.")
    x = x.detach().to(device=device, dtype=dtype)
    if x.numel():
        lo, hi = float(x.min()), float(x.max())
        if lo < -1e-6 or hi > 1 + 1e-6 or not (math.isfinite(lo) and math.isfinite(hi)):
            raise ValueError(f"{name} must lie in [0, 1] (got values in [{lo:.4g}, {hi:.4g}]). "
                             "Pass raw images scaled to [0, 1]; if the model expects normalised "
                             "inputs, wrap it with analysis.models.Normalize(model, mean=..., std=...).")
    return x.clamp(0, 1)


def to_labels(y, *, n: int, device=None) -> torch.Tensor:
    if isinstance(y, np.ndarray):
        y = torch.from_numpy(np.ascontiguousarray(y))
    if not isinstance(y, torch.Tensor):
        raise TypeError(f"y must be a torch.Tensor or numpy array, got {type(y).__name__}.")
    y = y.reshape(-1)
    if y.is_floating_point() or y.dtype == torch.bool:
        raise TypeError(f"y must hold integer class labels, got dtype {y.dtype}.")
    if len(y) != n:
        raise ValueError(f"x has {n} images but y has {len(y)} labels.")
    return y.to(device=device, dtype=torch.long)


def flat_norm(v: torch.Tensor, norm: str | float) -> torch.Tensor:
    """Per-sample norm of a batch (``linf``/``l2``/``l1`` or a p as number)."""
    p = {"linf": float("inf"), "l2": 2.0, "l1": 1.0}.get(norm, norm)
    return torch.linalg.vector_norm(v.flatten(1), ord=p, dim=1)


def project(x_adv: torch.Tensor, x: torch.Tensor, eps: float, norm: str) -> torch.Tensor:
    """Projection onto the eps-ball around ``x`` (linf or l2), then onto [0, 1]."""
    if norm == "linf":
        x_adv = torch.max(torch.min(x_adv, x + eps), x - eps)
    else:
        delta = x_adv - x
        n = flat_norm(delta, "l2").clamp_min(1e-30)
        factor = torch.clamp(eps / n, max=1.0).view(-1, *([1] * (x.dim() - 1)))
        x_adv = x + delta * factor
    return x_adv.clamp(0.0, 1.0)


def ascent_step(x_adv: torch.Tensor, grad: torch.Tensor, x: torch.Tensor, eps: float, norm: str,
                step_size: float) -> torch.Tensor:
    """One steepest-ascent step for ``norm`` (signed gradient for linf, normalised gradient for
    l2; a zero gradient does not move), projected back onto the eps-ball and [0, 1]."""
    if norm == "linf":
        x_adv = x_adv + step_size * grad.sign()
    else:
        gn = flat_norm(grad, "l2").view(-1, *([1] * (x.dim() - 1)))
        x_adv = x_adv + step_size * torch.where(gn > 0, grad / gn.clamp_min(1e-30), torch.zeros_like(grad))
    return project(x_adv, x, eps, norm)


def project_exact(x_adv: torch.Tensor, x: torch.Tensor, eps: float, norm: str) -> torch.Tensor:
    """Like :func:`project`, then repaired so that, measured exactly (float64 differences of the
    stored values), ``||x_adv - x|| <= eps`` and ``0 <= x_adv <= 1`` hold despite float rounding."""
    x_adv = project(x_adv.detach(), x, eps, norm)
    xd = x.double()
    view = (-1, *([1] * (x.dim() - 1)))
    ulp = torch.finfo(x.dtype).eps  # rounding a value in [0, 1] moves it by at most ulp / 2
    tau = ulp * max(1, x[0].numel()) ** 0.5
    for _ in range(30):
        d = x_adv.double() - xd
        if norm == "linf":
            bad = d.abs() > eps
            if not bool(bad.any()):
                break
            # the representable value nearest to x + clip(d), moved one step towards x if still outside
            target = (xd + d.clamp(-eps, eps)).to(x.dtype)
            target = torch.where((target.double() - xd).abs() > eps, torch.nextafter(target, x), target)
            x_adv = torch.where(bad, target, x_adv)
        else:
            n = flat_norm(d, "l2")
            bad = n > eps
            if not bool(bad.any()):
                break
            # aim below eps by more than the rounding of x + d can add
            goal = max(eps - tau, 0.0)
            shrink = torch.where(bad, goal / n.clamp_min(1e-300), torch.ones_like(n))
            x_adv = (xd + d * shrink.view(view)).to(x.dtype).clamp(0, 1)
            tau *= 2
    else:  # pragma: no cover - the loop converges in one or two rounds
        raise RuntimeError("could not project the adversarial examples into the eps-ball exactly.")
    return x_adv


def batches(n: int, batch_size: int):
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
    for start in range(0, n, batch_size):
        yield slice(start, min(n, start + batch_size))
