r"""The empirical local Lipschitz constant of a model (Yang et al. 2020, Sec. 5).

For every input ``x`` the estimator approximates

.. math::  L(x) = \max_{x' \in B_\epsilon(x) \cap [0,1]^d} \frac{\|f(x) - f(x')\|_1}{\|x - x'\|}

with ``f`` the logits, the l1 norm on the output and ``||.||`` the chosen input norm (``linf`` or
``l2``, as given -- no dual norm). The maximisation starts at ``x + 0.001 N(0, I)`` and takes
``steps`` projected signed-gradient steps (normalised-gradient steps for ``l2``).

Two modes:

``mode="ascent"`` (default, correct)
    Steps *up* the ratio, projects every iterate onto the ball and [0, 1], and returns the largest
    ratio over all iterates (each is a feasible point), so the value is a valid lower bound on
    ``L(x)``: it can never exceed the true local Lipschitz constant.

``mode="paper"`` (reproduces published numbers)
    Replays the official implementation (yangarbiter/robust-local-lipschitz, ``lolip/utils.py``:
    ``estimate_local_lip_v2`` with ``local_lip``) step for step. It minimises
    ``loss = -mean(ratio)`` but *adds* ``step_size * sign(grad loss)``, i.e. it steps **down** the
    ratio; it adds 1e-6 to every coordinate of ``x - x'`` before taking the norm; it always clips
    ``x' - x`` coordinate-wise to [-eps, eps] (also for l2); it does not project the random start;
    and it reports the ratio at the *last* iterate. It consumes random numbers exactly as the
    official code does: creating the official ``DataLoader``'s iterator draws one int64 from the
    generator (its ``_base_seed``), then the start noise ``0.001 * randn`` is drawn on the CPU per
    loader batch of 16 examples -- from ``generator``, or torch's global generator. So after
    ``torch.manual_seed(s)`` it returns the official values for seed ``s``, point for point.

Ascent mode projects and steps with :class:`separation.ThreatModel` (a zero gradient does not move).
"""
from __future__ import annotations

import logging

import numpy as np
import torch
import torch.nn as nn

from separation.core.paper import (ATTACK_NORMS, LIPSCHITZ_START_STD, LIPSCHITZ_STEP_SIZE, LIPSCHITZ_STEPS)
from separation.core.threat import check_eps
from separation.core.errors import InvalidInputError

from .tensors import (NonFiniteOutputError, batches, count_nonfinite_outputs, eval_mode, flat_norm, model_device_dtype, threat, to_unit_tensor)

log = logging.getLogger(__name__)

MODES = ("ascent", "paper")
PAPER_CHUNK = 16  # the official loader's batch size: noise is drawn per 16 examples


def _output_norm(v: torch.Tensor, top_norm) -> torch.Tensor:
    return flat_norm(v, {1: 1.0, 2: 2.0, "l1": 1.0, "l2": 2.0, "linf": float("inf")}.get(top_norm, top_norm))


def dataloader_seed_draw(generator: torch.Generator | None = None) -> int:
    """The one int64 that iterating a ``torch.utils.data.DataLoader`` draws before its first batch
    (``_BaseDataLoaderIter._base_seed``), from ``generator`` or torch's global generator."""
    return int(torch.empty((), dtype=torch.int64).random_(generator=generator).item())


def _paper_noise(shape, generator: torch.Generator | None) -> torch.Tensor:
    """0.001 * randn, drawn in chunks of 16 examples on the CPU (float32), as the official code."""
    chunks = []
    for sl in batches(shape[0], PAPER_CHUNK):
        chunks.append(torch.randn((sl.stop - sl.start, *shape[1:]), generator=generator))
    return LIPSCHITZ_START_STD * torch.cat(chunks)


def _ascent_batch(model, x, *, eps, norm, steps, step_size, top_norm, generator):
    tm = threat(norm, eps)
    view = (-1, *([1] * (x.dim() - 1)))
    with torch.no_grad():
        fx = model(x)
    if generator is not None:
        noise = torch.randn(x.shape, generator=generator, device=generator.device, dtype=x.dtype)
    else:
        noise = torch.randn(x.shape, dtype=x.dtype)
    xp = tm.project(x + LIPSCHITZ_START_STD * noise.to(x.device), x)
    best = torch.zeros(len(x), dtype=x.dtype, device=x.device)
    best_x = xp.detach().clone()
    for t in range(steps + 1):
        last = t == steps
        xp = xp.detach().requires_grad_(not last)
        with torch.set_grad_enabled(not last):
            num = _output_norm(fx - model(xp), top_norm)
            den = flat_norm(x - xp, norm)
            ratio = torch.where(den > 0, num / den.clamp_min(1e-30), torch.zeros_like(num))
        if not bool(torch.isfinite(ratio).all()):
            raise NonFiniteOutputError("the model's outputs are not finite (NaN or inf) inside the eps-ball: "
                                     "no Lipschitz estimate can be made (a broken or diverged model?).")
        cands = [(ratio.detach(), xp.detach())]
        if norm == "linf" and t > 0:
            # the vertex companion x + ||d||_inf sign(d): same denominator, every coordinate at full
            # size -- the linf maximiser of a locally linear f has this form
            with torch.no_grad():
                d = xp.detach() - x
                xv = tm.project(x + flat_norm(d, "linf").view(view) * d.sign(), x)
                dv = flat_norm(x - xv, norm)
                nv = _output_norm(fx - model(xv), top_norm)
                cands.append((torch.where(dv > 0, nv / dv.clamp_min(1e-30), torch.zeros_like(nv)), xv))
        for r, pt in cands:
            better = r > best
            best = torch.where(better, r, best)
            best_x = torch.where(better.view(view), pt, best_x)
        if last:
            break
        (grad,) = torch.autograd.grad(ratio.sum(), [xp])
        with torch.no_grad():
            xp = tm.ascent_step(xp, grad, x, step_size)
    return best, best_x


def _paper_ratio(model, x, x_adv, top_norm, btm_p):
    top = torch.flatten(model(x), start_dim=1) - torch.flatten(model(x_adv), start_dim=1)
    down = torch.flatten(x - x_adv, start_dim=1)
    return _output_norm(top, top_norm) / torch.linalg.vector_norm(down + 1e-6, ord=btm_p, dim=1)


def _paper_batch(model, x, *, eps, norm, steps, step_size, top_norm, generator, clip_start=False):
    btm_p = float("inf") if norm == "linf" else 2.0
    x_adv = x + _paper_noise(x.shape, generator).to(x.device)
    if clip_start:  # not in the official code: for models that reject inputs outside [0, 1]
        x_adv = torch.clamp(x_adv, 0, 1.0)
    for _ in range(steps):
        x_adv = x_adv.detach().requires_grad_(True)
        with torch.enable_grad():
            loss = -_paper_ratio(model, x, x_adv, top_norm, btm_p).mean()
            (grad,) = torch.autograd.grad(loss, [x_adv])
        with torch.no_grad():
            x_adv = x_adv + step_size * grad.sign()  # the official update: sign of grad of -ratio
            x_adv = x + torch.clamp(x_adv - x, -eps, eps)  # linf clip, whatever the norm
            x_adv = torch.clamp(x_adv, 0, 1.0)
    with torch.no_grad():
        return _paper_ratio(model, x, x_adv, top_norm, btm_p), x_adv.detach()


def estimate_local_lipschitz(model: nn.Module, x, *, eps: float, norm: str = "linf", steps: int = LIPSCHITZ_STEPS,
                             step_size: float = LIPSCHITZ_STEP_SIZE, mode: str = "ascent", batch_size: int = 128,
                             device=None, generator: torch.Generator | None = None, top_norm=1,
                             progress: bool = False, return_points: bool = False,
                             clip_start: bool = False):
    """Per-sample empirical local Lipschitz constant (see the module docs for the two modes).

    Args:
        model: maps float images in [0, 1] to logits; run in eval mode (flags restored afterwards).
        x: images ``(n, C, H, W)``: float in [0, 1] or uint8 (divided by 255); tensor or array.
        eps: radius of the ball (the paper uses the attack radius, e.g. 0.1 for MNIST).
        norm: input norm, ``"linf"`` or ``"l2"``.
        steps: gradient-ascent steps (official: 10).
        step_size: length of each step (official: 0.003).
        mode: ``"ascent"`` (correct maximisation) or ``"paper"`` (the official procedure).
        batch_size: examples per forward pass (``paper`` rounds it up to a multiple of 16).
        device: where to run (default: the model's device).
        generator: torch.Generator for the start noise; default torch's global generator.
        top_norm: output norm, 1 (the paper), 2 or ``"linf"``.
        return_points: also return the maximising points ``x'`` (the last iterate for ``paper``).
        clip_start: ``paper`` only: clip the noisy start to [0, 1] (the official code does not; needed
            for models that reject inputs outside [0, 1], e.g. the constructed classifier).
            ``ascent`` always starts inside the ball and [0, 1].

    Returns:
        ``np.ndarray`` of shape ``(n,)`` (float64), or ``(values, points)`` with ``return_points``.
    """
    eps = check_eps(eps)
    step_size = check_eps(step_size, "step_size")
    if norm not in ATTACK_NORMS:
        raise InvalidInputError(f"Unknown norm {norm!r} for the Lipschitz estimate: use 'linf' or 'l2'.")
    if mode not in MODES:
        raise InvalidInputError(f"Unknown mode {mode!r}: use 'ascent' (correct maximisation) or 'paper' "
                         "(the official, descending procedure).")
    if isinstance(steps, bool) or int(steps) != steps or steps < 0:
        raise InvalidInputError(f"steps must be an integer >= 0, got {steps!r}.")
    if top_norm not in (1, 2, "l1", "l2", "linf", float("inf")):
        raise InvalidInputError(f"top_norm must be 1, 2 or 'linf', got {top_norm!r}.")
    if eps == 0:
        raise InvalidInputError("eps must be > 0 for the local Lipschitz estimate (the ball is a point).")
    mdev, mdtype = model_device_dtype(model)
    device = torch.device(device) if device is not None else (mdev or torch.device("cpu"))
    x = to_unit_tensor(x, device="cpu", dtype=mdtype)
    bad = count_nonfinite_outputs(model, x, device=device, dtype=mdtype, batch_size=batch_size)
    if bad:
        raise NonFiniteOutputError(f"the model's outputs are not finite (NaN or inf) on {bad} of the {len(x)} points: "
                                "the local Lipschitz estimate would be meaningless; no estimate was made.")
    if mode == "paper" and batch_size % PAPER_CHUNK:
        batch_size = (batch_size // PAPER_CHUNK + 1) * PAPER_CHUNK
    if mode == "paper":
        dataloader_seed_draw(generator)  # the official DataLoader's draw before its first batch
    run = _ascent_batch if mode == "ascent" else _paper_batch
    values, points = [], []
    from separation.core.progress import progress_bar

    it = progress_bar(list(batches(len(x), batch_size)), enabled=progress, desc=f"local Lipschitz ({mode})")
    with eval_mode(model):
        for sl in it:
            kw = {"clip_start": bool(clip_start)} if mode == "paper" else {}
            v, p = run(model, x[sl].to(device), eps=eps, norm=norm, steps=int(steps), step_size=step_size,
                       top_norm=top_norm, generator=generator, **kw)
            values.append(v.detach().double().cpu())
            if return_points:
                points.append(p.cpu())
    out = torch.cat(values).numpy() if values else np.empty(0)
    if return_points:
        return out, (torch.cat(points) if points else x[:0])
    return out


__all__ = ["MODES", "dataloader_seed_draw", "estimate_local_lipschitz"]
