"""Training losses of the methods the paper compares, as their papers define them.

Every loss takes ``(model, x, y)`` with ``x`` float images in [0, 1], builds per-example terms and
reduces them with ``reduction`` (``"mean"``, our default, or ``"sum"``, the official code's
choice; with SGD and no weight decay, ``lr_mean = lr_sum * batch_size`` gives identical updates).
The model is expected in train mode; inner maximisations switch modes as documented and restore
every module's own flag.

=========  ===================================================================================
natural    CE(f(x), y)
at         CE(f(x_adv), y); x_adv: PGD on CE, ``steps`` steps of ``step_frac``·ε (10 of ε/5),
           uniform random start, attack in train mode like the official code (``attack_mode``)
rst        CE(f(x), y) + λ·CE(f(x_adv), y), the same inner attack as ``at``
trades     CE(f(x), y) + β·KL(f(x) ‖ f(x_adv)); x_adv maximises the KL by ``steps`` signed steps
           of ``step_frac``·ε (10 of 2ε/10) from x + 0.001·N(0, I), attack in eval mode. The start
           noise is drawn on the CPU and the KL is computed as the official code does
           (``F.kl_div`` of log-softmax and softmax, summed); ``clip_start`` (default true) projects
           the noisy start onto the ball and [0, 1] -- the official code does not (``clip_start:
           false``, the ``paper`` profile's setting), so its first gradient is taken off the box
llr        Qin et al. 2019: ℓ(x) + λ·γ(ε, x) + μ·|δᵀ∇ℓ(x)|, γ(ε, x) = max_δ |ℓ(x+δ) − ℓ(x) − δᵀ∇ℓ(x)|,
           δ found by ``steps`` signed steps of ``step_frac``·ε in eval mode (2 of ε/2 by default);
           the training term back-propagates through ∇ℓ(x) (double back-prop).
           ``variant="official"`` reproduces the official code, whose input gradient is zeroed
           before use (``ret = x.grad; x.grad.zero_()`` returns the zeroed tensor): the regulariser
           then degenerates to λ·CE at a point found by 2 normalised-gradient steps of ε/2 on the
           loss (rescaled into the ball), i.e. CE(x) + λ·CE(x + δ).
gr         TULIP (Finlay & Oberman 2019): ℓ(x) + λ/2·((ℓ(x + h·v) − ℓ(x)) / h)², v the
           normalised input gradient (detached): ``direction="l2"`` v = ∇ℓ/‖∇ℓ‖₂ (official), or
           ``"dual"`` v = sign(∇ℓ) for an l∞ threat (penalises ‖∇ℓ‖₁). The official code's extra
           back-propagation of CE (which doubles its gradient) is not reproduced.
=========  ===================================================================================

With dropout, the two forward passes that a finite difference compares (``gr``; ``llr``'s
ℓ(x + δ) − ℓ(x)) draw the same dropout masks (``same_dropout_mask=True``): otherwise the
difference measures the masks, not the function.

Projections and steps are :class:`separation.ThreatModel`'s: a zero gradient does not move (the
official LLR variant keeps its own rule, a random direction, as the official code has it).
"""
from __future__ import annotations

import dataclasses
import logging
from typing import Any, Callable, Mapping

import torch
import torch.nn as nn
import torch.nn.functional as F

from separation.core.errors import InvalidInputError

from .methods import METHODS, complete_method_params
from .inner_max import batch_view, llr_inner_max, llr_official_inner_max, per_example_ce, pgd_ce, trades_inner_max

log = logging.getLogger(__name__)


@dataclasses.dataclass
class LossOutput:
    """A reduced training loss and what it was computed on.

    ``clean_logits``/``adv_logits``: detached logits at x / at the inner maximiser (None when the
    method does not compute them); ``x_adv``: the inner maximiser (detached) or None;
    ``parts``: per-example means of the loss's terms (floats), for logging.
    """

    loss: torch.Tensor
    clean_logits: torch.Tensor | None = None
    adv_logits: torch.Tensor | None = None
    x_adv: torch.Tensor | None = None
    parts: dict[str, float] = dataclasses.field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------
def reduce(values: torch.Tensor, reduction: str) -> torch.Tensor:
    """Mean or sum of per-example values."""
    if reduction == "mean":
        return values.mean()
    if reduction == "sum":
        return values.sum()
    raise InvalidInputError(f"reduction must be 'mean' or 'sum', got {reduction!r}.")


class RandomReplay:
    """Snapshot the RNG state; :meth:`replay` restores it so that the next forward pass draws the
    same dropout masks as the pass made right after the snapshot (same shapes, same draws)."""

    def __init__(self, device: torch.device, enabled: bool = True):
        self.enabled = enabled
        self.device = device
        if enabled:
            self.cpu = torch.get_rng_state()
            self.cuda = torch.cuda.get_rng_state(device) if device.type == "cuda" else None

    def replay(self) -> None:
        if not self.enabled:
            return
        torch.set_rng_state(self.cpu)
        if self.cuda is not None:
            torch.cuda.set_rng_state(self.cuda, self.device)


def _kl_rows(logits_p: torch.Tensor, logits_q: torch.Tensor) -> torch.Tensor:
    """Per-example KL(softmax(p) ‖ softmax(q))."""
    logp = F.log_softmax(logits_p, dim=1)
    logq = F.log_softmax(logits_q, dim=1)
    return (logp.exp() * (logp - logq)).sum(dim=1)


def _avg(t: torch.Tensor) -> float:
    return float(t.detach().mean())


def _device(x: torch.Tensor) -> torch.device:
    return x.device


# ---------------------------------------------------------------------------------------------
# losses
# ---------------------------------------------------------------------------------------------
def natural_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, reduction: str = "mean",
                 **_: Any) -> LossOutput:
    logits = model(x)
    ce = per_example_ce(logits, y)
    return LossOutput(reduce(ce, reduction), clean_logits=logits.detach(),
                      parts={"ce": _avg(ce)})


def at_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float, norm: str = "linf",
            steps: int = 10, step_frac: float = 0.2, random_start: bool = True,
            attack_mode: str = "train", reduction: str = "mean") -> LossOutput:
    x_adv = pgd_ce(model, x, y, eps=eps, norm=norm, steps=steps, step_frac=step_frac,
                   random_start=random_start, attack_mode=attack_mode)
    logits_adv = model(x_adv)
    ce_adv = per_example_ce(logits_adv, y)
    return LossOutput(reduce(ce_adv, reduction), adv_logits=logits_adv.detach(), x_adv=x_adv,
                      parts={"ce_adv": _avg(ce_adv)})


def rst_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float, norm: str = "linf",
             lam: float = 1.0, steps: int = 10, step_frac: float = 0.2, random_start: bool = True,
             attack_mode: str = "train", reduction: str = "mean") -> LossOutput:
    x_adv = pgd_ce(model, x, y, eps=eps, norm=norm, steps=steps, step_frac=step_frac,
                   random_start=random_start, attack_mode=attack_mode)
    logits = model(x)
    logits_adv = model(x_adv)
    ce, ce_adv = per_example_ce(logits, y), per_example_ce(logits_adv, y)
    return LossOutput(reduce(ce + lam * ce_adv, reduction), clean_logits=logits.detach(),
                      adv_logits=logits_adv.detach(), x_adv=x_adv,
                      parts={"ce": _avg(ce), "ce_adv": _avg(ce_adv)})


def trades_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float,
                norm: str = "linf", beta: float = 6.0, steps: int = 10, step_frac: float = 0.2,
                init_std: float = 0.001, clip_start: bool = True, reduction: str = "mean") -> LossOutput:
    x_adv = trades_inner_max(model, x, eps=eps, norm=norm, steps=steps, step_frac=step_frac,
                             init_std=init_std, clip_start=clip_start)
    logits = model(x)
    logits_adv = model(x_adv)
    ce = per_example_ce(logits, y)
    kl = _kl_rows(logits, logits_adv)
    return LossOutput(reduce(ce + beta * kl, reduction), clean_logits=logits.detach(),
                      adv_logits=logits_adv.detach(), x_adv=x_adv,
                      parts={"ce": _avg(ce), "kl": _avg(kl)})


def llr_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float, norm: str = "linf",
             lam: float = 4.0, mu: float = 3.0, steps: int = 2, step_frac: float = 0.5,
             init_std: float = 0.001, variant: str = "intended", same_dropout_mask: bool = True,
             reduction: str = "mean") -> LossOutput:
    if variant == "official":
        x_adv = llr_official_inner_max(model, x, y, eps=eps, norm=norm, steps=steps,
                                       step_frac=step_frac, init_std=init_std)
        logits = model(x)
        logits_adv = model(x_adv)
        ce, ce_adv = per_example_ce(logits, y), per_example_ce(logits_adv, y)
        return LossOutput(reduce(ce + lam * ce_adv, reduction), clean_logits=logits.detach(),
                          adv_logits=logits_adv.detach(), x_adv=x_adv,
                          parts={"ce": _avg(ce), "gamma": _avg(ce_adv), "lin": 0.0})
    if variant != "intended":
        raise InvalidInputError(f"LLR variant must be 'intended' or 'official', got {variant!r}.")
    x_adv = llr_inner_max(model, x, y, eps=eps, norm=norm, steps=steps, step_frac=step_frac,
                          init_std=init_std)
    delta = x_adv - x.detach()
    xg = x.detach().clone().requires_grad_(True)
    rng = RandomReplay(_device(x), enabled=same_dropout_mask)
    logits = model(xg)
    ce = per_example_ce(logits, y)
    grad, = torch.autograd.grad(ce.sum(), [xg], create_graph=True)
    rng.replay()
    logits_adv = model(x_adv)
    ce_adv = per_example_ce(logits_adv, y)
    lin = (delta * grad).flatten(1).sum(1)
    gamma = (ce_adv - ce - lin).abs()
    total = ce + lam * gamma + mu * lin.abs()
    return LossOutput(reduce(total, reduction), clean_logits=logits.detach(),
                      adv_logits=logits_adv.detach(), x_adv=x_adv,
                      parts={"ce": _avg(ce), "gamma": _avg(gamma),
                             "lin": _avg(lin.abs())})


def gr_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, norm: str = "linf",
            lam: float = 1.0, fd_step: float = 1.0, direction: str = "l2",
            same_dropout_mask: bool = True, reduction: str = "mean", **_: Any) -> LossOutput:
    if fd_step <= 0:
        raise InvalidInputError(f"GR fd_step must be > 0, got {fd_step}.")
    if direction not in ("l2", "dual"):
        raise InvalidInputError(f"GR direction must be 'l2' or 'dual', got {direction!r}.")
    xg = x.detach().clone().requires_grad_(True)
    rng = RandomReplay(_device(x), enabled=same_dropout_mask)
    logits = model(xg)
    ce = per_example_ce(logits, y)
    grad, = torch.autograd.grad(ce.sum(), [xg], retain_graph=True)
    grad = grad.detach()
    if direction == "dual" and norm == "linf":
        v = grad.sign()
    else:
        n = grad.flatten(1).norm(p=2, dim=1)
        v = grad / batch_view(torch.where(n > 0, n, torch.ones_like(n)), grad)
    rng.replay()
    ce_f = per_example_ce(model(x.detach() + fd_step * v), y)
    dl = (ce_f - ce) / fd_step
    penalty = dl.pow(2) / 2
    return LossOutput(reduce(ce + lam * penalty, reduction), clean_logits=logits.detach(),
                      parts={"ce": _avg(ce), "penalty": _avg(penalty)})


LossFn = Callable[..., LossOutput]

#: method -> (loss function, {config parameter name: loss keyword}), from the registry
#: :data:`analysis.methods.METHODS` (which names each method's loss function).
LOSSES: dict[str, tuple[LossFn, dict[str, str]]] = {
    m.name: (globals()[m.loss], {p.name: p.loss_keyword for p in m.params}) for m in METHODS.values()}


def make_loss(method: str, params: Mapping[str, Any] | None = None, *, eps: float, norm: str = "linf",
              reduction: str = "mean") -> Callable[[nn.Module, torch.Tensor, torch.Tensor], LossOutput]:
    """``loss(model, x, y) -> LossOutput`` for a method and its (config-style) parameters."""
    params = complete_method_params(method, params)
    entry = METHODS[method]
    fn = LOSSES[method][0]
    kwargs = entry.loss_keywords(params)
    kwargs["reduction"] = reduction
    if entry.uses_norm:
        kwargs["norm"] = norm
    if entry.uses_eps:
        kwargs["eps"] = float(eps)

    def loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> LossOutput:
        return fn(model, x, y, **kwargs)

    loss.__name__ = f"{method}_loss"
    loss.kwargs = dict(kwargs)  # type: ignore[attr-defined]
    return loss


__all__ = ["LOSSES", "LossFn", "LossOutput", "RandomReplay", "at_loss", "gr_loss", "llr_loss", "make_loss",
           "natural_loss", "reduce", "rst_loss", "trades_loss"]
