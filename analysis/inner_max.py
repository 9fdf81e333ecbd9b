"""The inner maximisations of the robust training losses (:mod:`analysis.losses`).

Each takes float images ``x`` in [0, 1] of shape (n, c, h, w) and returns the maximiser (detached, same
shape) inside the ε-ball ∩ [0, 1]; the model's mode is set as documented and every module's own
flag is restored after.
"""
from __future__ import annotations

import contextlib
from typing import Iterator

import torch
import torch.nn as nn
import torch.nn.functional as F

from separation.core.errors import InvalidInputError

from .tensors import threat


@contextlib.contextmanager
def module_mode(model: nn.Module, *, train: bool) -> Iterator[nn.Module]:
    """Set every submodule to train/eval for the block; restore each module's own flag after."""
    saved = [(m, m.training) for m in model.modules()]
    model.train(train)
    try:
        yield model
    finally:
        for m, flag in saved:
            m.training = flag


def batch_view(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Per-example values (n,) shaped to broadcast against ``like`` (n, ...)."""
    return v.view(-1, *([1] * (like.dim() - 1)))


def per_example_ce(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits, y, reduction="none")


def _cpu_randn(x: torch.Tensor) -> torch.Tensor:
    """N(0, I) noise like ``x``, drawn on the CPU (torch's global CPU generator) and moved to
    ``x``'s device: the official code's draw, the same numbers on every device."""
    return torch.randn(x.shape, dtype=x.dtype).to(x.device)


class _KeepMode(nn.Module):
    """Hides a model from ``.eval()``/``.train()`` calls: the wrapped model keeps its mode.

    :func:`analysis.attacks.pgd` always attacks in eval mode; wrapping lets AT/RST attack a model
    in train mode, as the official code does (dropout active, BatchNorm on batch statistics).
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self._wrapped = (model,)  # a tuple: not a registered submodule

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._wrapped[0](x)


def pgd_ce(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float, norm: str = "linf",
           steps: int = 10, step_frac: float = 0.2, random_start: bool = True,
           attack_mode: str = "train") -> torch.Tensor:
    """The AT/RST inner attack: :func:`analysis.attacks.pgd` on CE with ``steps`` steps of
    ``step_frac``·ε and a uniform random start, with the model in ``attack_mode``
    (``"train"``, the official code's choice, or ``"eval"``)."""
    from .attacks import pgd

    if attack_mode not in ("train", "eval"):
        raise InvalidInputError(f"attack_mode must be 'train' or 'eval', got {attack_mode!r}.")
    tm = threat(norm, eps)
    if tm.eps == 0:
        return x.detach().clone()
    target = model
    if attack_mode == "train":
        target = _KeepMode(model)
    with module_mode(model, train=attack_mode == "train"):
        x_adv = pgd(target, x, y, eps=tm.eps, norm=norm, steps=steps, step_size=step_frac * tm.eps,
                    restarts=1, random_start=random_start, loss="ce")
    return x_adv.detach()


def trades_kl(logits_adv: torch.Tensor, logits_nat: torch.Tensor) -> torch.Tensor:
    """Summed KL(softmax(nat) ‖ softmax(adv)), computed as the official code's
    ``nn.KLDivLoss(size_average=False)(log_softmax(adv), softmax(nat))``."""
    return F.kl_div(F.log_softmax(logits_adv, dim=1), F.softmax(logits_nat, dim=1), reduction="sum")


def trades_inner_max(model: nn.Module, x: torch.Tensor, *, eps: float, norm: str = "linf",
                     steps: int = 10, step_frac: float = 0.2, init_std: float = 0.001,
                     clip_start: bool = True) -> torch.Tensor:
    """TRADES' inner maximisation of KL(f(x) ‖ f(x')) over the ε-ball ∩ [0, 1], in eval mode, from
    ``x + init_std·N(0, I)`` (projected onto the ball and [0, 1] only with ``clip_start``)."""
    tm = threat(norm, eps)
    x = x.detach()
    if tm.eps == 0:
        return x.clone()
    step = step_frac * tm.eps
    with module_mode(model, train=False):
        with torch.no_grad():
            logits_nat = model(x)
        x_adv = x + init_std * _cpu_randn(x)
        if clip_start:
            x_adv = tm.project(x_adv, x)
        for _ in range(steps):
            x_adv.requires_grad_(True)
            with torch.enable_grad():
                grad, = torch.autograd.grad(trades_kl(model(x_adv), logits_nat), [x_adv])
            x_adv = tm.ascent_step(x_adv.detach(), grad, x, step)
    return x_adv.detach()


def llr_inner_max(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float,
                  norm: str = "linf", steps: int = 2, step_frac: float = 0.5,
                  init_std: float = 0.001) -> torch.Tensor:
    """δ ≈ argmax_{‖δ‖≤ε, x+δ∈[0,1]} |ℓ(x+δ) − ℓ(x) − δᵀ∇ℓ(x)| (eval mode); returns x + δ."""
    tm = threat(norm, eps)
    x = x.detach()
    if tm.eps == 0:
        return x.clone()
    step = step_frac * tm.eps
    with module_mode(model, train=False), torch.enable_grad():
        x0 = x.clone().requires_grad_(True)
        l0 = per_example_ce(model(x0), y)
        g0, = torch.autograd.grad(l0.sum(), [x0])
        l0, g0 = l0.detach(), g0.detach()
        x_adv = tm.project(x + init_std * torch.randn_like(x), x)
        for _ in range(steps):
            x_adv.requires_grad_(True)
            delta = x_adv - x
            lin = (delta * g0).flatten(1).sum(1)
            gap = (per_example_ce(model(x_adv), y) - l0 - lin).abs()
            grad, = torch.autograd.grad(gap.sum(), [x_adv])
            x_adv = tm.ascent_step(x_adv.detach(), grad, x, step)
    return x_adv.detach()


def llr_official_inner_max(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float,
                           norm: str = "linf", steps: int = 2, step_frac: float = 0.5,
                           init_std: float = 0.001) -> torch.Tensor:
    """The official code's LLR search with its zeroed input gradient: maximise the CE itself by
    gradient steps normalised by their own ``norm`` (``step_frac``·ε each; a zero gradient becomes
    a random direction, as in the official code), clip to [0, 1], then *rescale* δ into the ball
    (``torch.renorm``), in eval mode; returns x + δ."""
    eps = threat(norm, eps).eps
    x = x.detach()
    p = float("inf") if norm == "linf" else 2.0
    step = step_frac * eps
    with module_mode(model, train=False), torch.enable_grad():
        delta = init_std * torch.randn_like(x)
        for _ in range(steps):
            delta.requires_grad_(True)
            obj = per_example_ce(model(x + delta), y).sum()
            grad, = torch.autograd.grad(obj, [delta])
            n = grad.flatten(1).norm(p=p, dim=1)
            grad = grad / batch_view(n, grad)
            zero = n == 0
            if bool(zero.any()):
                grad[zero] = torch.randn_like(grad[zero])
            delta = delta.detach() + step * grad
            delta = (x + delta).clamp(0, 1) - x
            delta = torch.renorm(delta, p=p, dim=0, maxnorm=eps)
    return (x + delta).detach()


__all__ = ["batch_view", "llr_inner_max", "llr_official_inner_max", "module_mode", "per_example_ce", "pgd_ce",
           "trades_inner_max", "trades_kl"]
