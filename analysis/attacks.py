"""Adversarial attacks: PGD (linf / l2), the paper's multi-targeted attack, and AutoAttack.

All attacks take float images in [0, 1] and return detached adversarial images that lie in the
eps-ball around the input *and* in [0, 1] -- checked exactly (as float64 differences of the stored
values), not only up to rounding. They run the model in eval mode and restore every submodule's
train/eval flag afterwards, and they differentiate with respect to the input only
(``torch.autograd.grad``): parameters' ``.grad`` fields are never touched, so the functions are safe
to call inside a training loop (adversarial training).

The paper's evaluation (Yang et al. 2020, Sec. 5): PGD with 10 steps of size eps/5 and one random
restart, and the multi-targeted attack with 20 steps of size eps/10; robust accuracy is the
per-example worst case over the attacks. AutoAttack comes from the maintained ``torchattacks``
package (``torchattacks.AutoAttack``) rather than from a re-implementation.
"""
from __future__ import annotations

import contextlib
import io
import logging

import torch
import torch.nn as nn
import torch.nn.functional as F

from separation.core.threat import check_eps
from separation.core.errors import InvalidInputError

from .tensors import check_images, eval_mode, threat, to_labels

log = logging.getLogger(__name__)

LOSSES = ("ce", "margin")


def margins(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``logit_y - max_{k != y} logit_k`` per example: negative iff misclassified (ties aside)."""
    true = logits.gather(1, y[:, None]).squeeze(1)
    other = logits.clone()
    other.scatter_(1, y[:, None], float("-inf"))
    return true - other.max(1).values


def _loss(logits: torch.Tensor, y: torch.Tensor, kind: str, targeted: bool) -> torch.Tensor:
    """Per-example objective the attack *increases*."""
    if kind == "ce":
        ce = F.cross_entropy(logits, y, reduction="none")
        return -ce if targeted else ce
    m = margins(logits, y)  # targeted: y is the target, raise its margin
    return m if targeted else -m


def _pgd_once(model, x, y, *, tm, steps, step_size, random_start, loss, targeted, generator):
    x_adv = tm.random_start(x, generator) if random_start else x.clone()
    for _ in range(steps):
        x_adv.requires_grad_(True)
        with torch.enable_grad():
            obj = _loss(model(x_adv), y, loss, targeted).sum()
            (grad,) = torch.autograd.grad(obj, [x_adv])
        with torch.no_grad():
            x_adv = tm.ascent_step(x_adv, grad, x, step_size)
    return x_adv.detach()


def pgd(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float, norm: str = "linf",
        steps: int = 10, step_size: float | None = None, restarts: int = 1, random_start: bool = True,
        loss: str = "ce", targeted: bool = False, generator: torch.Generator | None = None) -> torch.Tensor:
    """Projected gradient descent (Madry et al.) in the linf or l2 ball, intersected with [0, 1].

    Args:
        model: maps ``x`` to logits; run in eval mode, its train/eval flags are restored afterwards.
        x: float images in [0, 1], ``(n, C, H, W)``; y: labels ``(n,)`` (targets if ``targeted``).
        eps: radius. ``eps=0`` returns a copy of ``x``.
        norm: ``"linf"`` (signed-gradient steps) or ``"l2"`` (normalised-gradient steps).
        steps: gradient steps per restart (paper: 10).
        step_size: step length; default ``eps / 5`` -- the paper's evaluation setting (10 steps of
            eps/5). Pass e.g. ``2.5 * eps / steps`` for Madry's rule.
        restarts: independent runs; per example the worst one (lowest margin of the true class;
            for ``targeted``, highest margin of the target) is kept.
        random_start: start uniformly at random in the ball (linf: each pixel in [-eps, eps]; l2:
            uniform in the ball), clipped to [0, 1]; otherwise start at ``x``.
        loss: ``"ce"`` (cross-entropy) or ``"margin"`` (Carlini-Wagner margin).
        targeted: move towards class ``y`` instead of away from it.
        generator: torch.Generator for the random starts (on ``x``'s device), for reproducibility.

    Returns:
        A detached float tensor like ``x`` with ``||x_adv - x|| <= eps`` and ``0 <= x_adv <= 1``.
    """
    tm = threat(norm, eps)
    eps = tm.eps
    if loss not in LOSSES:
        raise InvalidInputError(f"Unknown loss {loss!r}: use 'ce' or 'margin'.")
    if isinstance(steps, bool) or int(steps) != steps or steps < 0:
        raise InvalidInputError(f"steps must be an integer >= 0, got {steps!r}.")
    if isinstance(restarts, bool) or int(restarts) != restarts or restarts < 1:
        raise InvalidInputError(f"restarts must be an integer >= 1, got {restarts!r}.")
    step_size = eps / 5 if step_size is None else check_eps(step_size, "step_size")
    x = check_images(x)
    y = to_labels(y, n=len(x), device=x.device)
    if eps == 0:
        return x.clone()
    with eval_mode(model):
        best, best_score = None, None
        for _ in range(int(restarts)):
            x_adv = _pgd_once(model, x, y, tm=tm, steps=int(steps), step_size=step_size,
                              random_start=random_start, loss=loss, targeted=targeted, generator=generator)
            if restarts == 1:
                best = x_adv
                break
            with torch.no_grad():
                m = margins(model(x_adv), y)
                score = m if targeted else -m  # higher = worse for the model
            if best is None:
                best, best_score = x_adv, score
            else:
                better = score > best_score
                best = torch.where(better.view(-1, *([1] * (x.dim() - 1))), x_adv, best)
                best_score = torch.where(better, score, best_score)
    return tm.project_exact(best, x)


def multitargeted(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float, norm: str = "linf",
                  steps: int = 20, step_size: float | None = None, num_classes: int | None = None,
                  restarts: int = 1, random_start: bool = True,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """The paper's multi-targeted attack: targeted PGD towards every other class, keep the worst.

    For each example and each class ``t != y`` a targeted PGD (cross-entropy towards ``t``;
    default 20 steps of ``eps / 10``, random start) runs; per example the candidate with the lowest
    true-class margin ``logit_y - max_{k != y} logit_k`` is returned (any misclassifying candidate
    beats every correct one). The official code picks the target whose softmax probability rose
    most instead; both return a misclassified point whenever one of the targeted runs found one.
    """
    tm = threat(norm, eps)
    eps = tm.eps
    step_size = eps / 10 if step_size is None else check_eps(step_size, "step_size")
    x = check_images(x)
    y = to_labels(y, n=len(x), device=x.device)
    if eps == 0:
        return x.clone()
    with eval_mode(model), torch.no_grad():
        logits = model(x)
        c = num_classes or logits.shape[1]
        best, best_m = x.clone(), margins(logits, y)
    view = (-1, *([1] * (x.dim() - 1)))
    with eval_mode(model):
        for k in range(1, c):
            target = (y + k) % c
            x_t = pgd(model, x, target, eps=eps, norm=norm, steps=steps, step_size=step_size,
                      restarts=restarts, random_start=random_start, loss="ce", targeted=True,
                      generator=generator)
            with torch.no_grad():
                m = margins(model(x_t), y)
            better = m < best_m
            best = torch.where(better.view(view), x_t, best)
            best_m = torch.where(better, m, best_m)
    return tm.project_exact(best, x)


def autoattack(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float, norm: str = "linf",
               version: str = "standard", num_classes: int | None = None, seed: int = 0) -> torch.Tensor:
    """AutoAttack (Croce & Hein 2020) through ``torchattacks.AutoAttack``.

    ``version="standard"``: APGD-CE, APGD-T, FAB-T, Square (5000 queries); ``"rand"``: APGD-CE and
    APGD-DLR with EOT for randomised models; ``"plus"``: the extended suite. torchattacks reseeds
    torch's global generator; this function saves and restores it. The output is re-projected.
    """
    try:
        import torchattacks
    except ImportError as exc:  # pragma: no cover - torchattacks is a dependency
        raise ImportError("AutoAttack needs the torchattacks package: pip install torchattacks") from exc
    tm = threat(norm, eps)
    eps = tm.eps
    if version not in ("standard", "plus", "rand"):
        raise InvalidInputError(f"Unknown AutoAttack version {version!r}: use 'standard', 'plus' or 'rand'.")
    x = check_images(x)
    y = to_labels(y, n=len(x), device=x.device)
    if eps == 0:
        return x.clone()
    with eval_mode(model):
        if num_classes is None:
            with torch.no_grad():
                num_classes = int(model(x[:1]).shape[1])
        devices = [x.device] + ([torch.device("cuda", torch.cuda.current_device())]
                                if x.device.type == "cuda" else [])
        with torch.random.fork_rng(devices=[d for d in devices if d.type == "cuda"]):
            buf = io.StringIO()
            with contextlib.redirect_stdout(buf):  # torchattacks prints when a model has no parameters
                atk = torchattacks.AutoAttack(model, norm={"linf": "Linf", "l2": "L2"}[norm], eps=eps,
                                              version=version, n_classes=int(num_classes), seed=int(seed))
            if buf.getvalue().strip():
                log.debug("torchattacks: %s", buf.getvalue().strip())
            for a in [atk, atk._autoattack, *getattr(atk._autoattack, "attacks", [])]:
                a.set_device(x.device)
            x_adv = atk(x, y)
    return tm.project_exact(x_adv.detach().to(x.dtype), x)


__all__ = ["LOSSES", "autoattack", "margins", "multitargeted", "pgd"]
