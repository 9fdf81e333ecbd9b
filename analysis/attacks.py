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
import dataclasses
import io
import logging
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .models._utils import (ascent_step, batches, check_attack_norm, check_eps, eval_mode, flat_norm, project,
                            project_exact, to_labels)

log = logging.getLogger(__name__)

#: Attack names understood by :func:`run_attacks` / ``--attacks``.
ATTACK_NAMES = ("pgd", "multitargeted", "autoattack")

LOSSES = ("ce", "margin")


def _check_input(x: torch.Tensor, name: str = "x") -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of images in [0, 1], got {type(x).__name__}.")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a float tensor in [0, 1] (got {x.dtype}); divide uint8 images by 255.")
    if x.dim() < 2 or x.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty batch (n, ...), got shape {tuple(x.shape)}.")
    if x.numel() and (float(x.min()) < 0 or float(x.max()) > 1):
        raise ValueError(f"{name} must lie in [0, 1]; got values in [{float(x.min()):.4g}, "
                         f"{float(x.max()):.4g}]. Wrap models trained on normalised inputs with "
                         "analysis.models.Normalize and pass raw [0, 1] images.")
    return x.detach()


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


def _random_start(x: torch.Tensor, eps: float, norm: str, generator: torch.Generator | None) -> torch.Tensor:
    if norm == "linf":
        u = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        delta = (2 * u - 1) * eps
    else:  # uniform in the l2 ball
        g = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        g = g / flat_norm(g, "l2").clamp_min(1e-30).view(-1, *([1] * (x.dim() - 1)))
        d = x[0].numel()
        r = torch.rand(x.shape[0], generator=generator, device=x.device, dtype=x.dtype) ** (1.0 / d)
        delta = g * (eps * r).view(-1, *([1] * (x.dim() - 1)))
    return project(x + delta, x, eps, norm)


def _pgd_once(model, x, y, *, eps, norm, steps, step_size, random_start, loss, targeted, generator):
    x_adv = _random_start(x, eps, norm, generator) if random_start else x.clone()
    for _ in range(steps):
        x_adv.requires_grad_(True)
        with torch.enable_grad():
            obj = _loss(model(x_adv), y, loss, targeted).sum()
            (grad,) = torch.autograd.grad(obj, [x_adv])
        with torch.no_grad():
            x_adv = ascent_step(x_adv, grad, x, eps, norm, step_size)
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
    eps = check_eps(eps)
    norm = check_attack_norm(norm)
    if loss not in LOSSES:
        raise ValueError(f"Unknown loss {loss!r}: use 'ce' or 'margin'.")
    if isinstance(steps, bool) or int(steps) != steps or steps < 0:
        raise ValueError(f"steps must be an integer >= 0, got {steps!r}.")
    if isinstance(restarts, bool) or int(restarts) != restarts or restarts < 1:
        raise ValueError(f"restarts must be an integer >= 1, got {restarts!r}.")
    step_size = eps / 5 if step_size is None else check_eps(step_size, "step_size")
    x = _check_input(x)
    y = to_labels(y, n=len(x), device=x.device)
    if eps == 0:
        return x.clone()
    with eval_mode(model):
        best, best_score = None, None
        for _ in range(int(restarts)):
            x_adv = _pgd_once(model, x, y, eps=eps, norm=norm, steps=int(steps), step_size=step_size,
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
    return project_exact(best, x, eps, norm)


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
    eps = check_eps(eps)
    norm = check_attack_norm(norm)
    step_size = eps / 10 if step_size is None else check_eps(step_size, "step_size")
    x = _check_input(x)
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
    return project_exact(best, x, eps, norm)


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
    eps = check_eps(eps)
    norm = check_attack_norm(norm)
    if version not in ("standard", "plus", "rand"):
        raise ValueError(f"Unknown AutoAttack version {version!r}: use 'standard', 'plus' or 'rand'.")
    x = _check_input(x)
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
    return project_exact(x_adv.detach().to(x.dtype), x, eps, norm)


# -- attack suites ---------------------------------------------------------------------------------

#: The paper's settings; ``None`` step sizes mean eps/5 (PGD) and eps/10 (multi-targeted).
DEFAULT_ATTACK_PARAMS: dict[str, dict[str, Any]] = {
    "pgd": {"steps": 10, "step_size": None, "restarts": 1, "random_start": True, "loss": "ce"},
    "multitargeted": {"steps": 20, "step_size": None, "restarts": 1, "random_start": True},
    "autoattack": {"version": "standard"},
}


def attack_spec(spec: str | Mapping[str, Any]) -> dict[str, Any]:
    """Normalise ``"pgd"`` or ``{"name": "pgd", "steps": 20}`` to a full ``{"name": ..., **params}``."""
    if isinstance(spec, str):
        spec = {"name": spec}
    if not isinstance(spec, Mapping) or "name" not in spec:
        raise TypeError(f"An attack is a name or a dict with 'name', got {spec!r}.")
    name = str(spec["name"]).strip().lower().replace("-", "").replace("_", "")
    name = {"multitarget": "multitargeted", "mt": "multitargeted", "aa": "autoattack"}.get(name, name)
    if name not in ATTACK_NAMES:
        raise ValueError(f"Unknown attack {spec['name']!r}. Choose from: {', '.join(ATTACK_NAMES)}.")
    params = dict(DEFAULT_ATTACK_PARAMS[name])
    unknown = set(spec) - {"name"} - set(params)
    if unknown:
        raise ValueError(f"attack {name}: unknown option(s) {', '.join(sorted(unknown))}; "
                         f"accepted: {', '.join(params)}.")
    params.update({k: v for k, v in spec.items() if k != "name"})
    return {"name": name, **params}


def _runner(spec: dict[str, Any]) -> Callable:
    params = {k: v for k, v in spec.items() if k != "name"}
    if spec["name"] == "pgd":
        return lambda model, x, y, *, eps, norm, generator, seed, num_classes: pgd(
            model, x, y, eps=eps, norm=norm, generator=generator, **params)
    if spec["name"] == "multitargeted":
        return lambda model, x, y, *, eps, norm, generator, seed, num_classes: multitargeted(
            model, x, y, eps=eps, norm=norm, generator=generator, num_classes=num_classes, **params)
    return lambda model, x, y, *, eps, norm, generator, seed, num_classes: autoattack(
        model, x, y, eps=eps, norm=norm, num_classes=num_classes, seed=seed, **params)


@dataclasses.dataclass
class AttackReport:
    """Per-example outcome of a suite of attacks on one split."""

    clean_correct: np.ndarray  # (n,) bool
    per_attack_correct: dict[str, np.ndarray]  # name -> (n,) bool: clean-correct and survived it
    seconds: dict[str, float]

    @property
    def adv_correct(self) -> np.ndarray:
        """Robust per example: correct on the clean point and against every attack that ran."""
        out = self.clean_correct.copy()
        for c in self.per_attack_correct.values():
            out &= c
        return out

    @property
    def clean_acc(self) -> float:
        return float(self.clean_correct.mean()) if len(self.clean_correct) else float("nan")

    @property
    def adv_acc(self) -> float:
        return float(self.adv_correct.mean()) if len(self.clean_correct) else float("nan")

    def per_attack_acc(self) -> dict[str, float]:
        return {k: float(v.mean()) for k, v in self.per_attack_correct.items()}


def predict(model: nn.Module, x: torch.Tensor, *, batch_size: int = 256, device=None) -> np.ndarray:
    """Predicted labels for float images in [0, 1] (eval mode, batched)."""
    out = []
    with eval_mode(model), torch.no_grad():
        for sl in batches(len(x), batch_size):
            out.append(model(x[sl].to(device)).argmax(1).cpu())
    return torch.cat(out).numpy() if out else np.empty(0, np.int64)


def run_attacks(model: nn.Module, x: torch.Tensor, y, *, eps: float, norm: str = "linf",
                attacks: Sequence[str | Mapping[str, Any]] = ("pgd",), batch_size: int = 128,
                device=None, seed: int = 0, num_classes: int | None = None, progress: bool = False,
                desc: str = "") -> AttackReport:
    """Clean accuracy and robust accuracy under each attack (and their per-example worst case).

    Only clean-correct points are attacked (the others count as non-robust). The per-attack
    accuracies count a point as correct when it is classified correctly both clean and under
    that attack; :attr:`AttackReport.adv_acc` under all of them.
    """
    import time

    specs = [attack_spec(a) for a in attacks]
    names = [s["name"] for s in specs]
    if len(set(names)) != len(names):
        raise ValueError(f"Each attack may appear once, got {names}.")
    x = _check_input(x).cpu()
    y = to_labels(y, n=len(x))
    t0 = time.perf_counter()
    pred = predict(model, x, batch_size=batch_size, device=device)
    clean = pred == y.numpy()
    seconds = {"clean": time.perf_counter() - t0}
    idx = np.flatnonzero(clean)
    per_attack = {}
    for spec in specs:
        name = spec["name"]
        run = _runner(spec)
        correct = np.zeros(len(x), dtype=bool)
        gen_device = torch.device(device) if device is not None else torch.device("cpu")
        gen = torch.Generator(device=gen_device).manual_seed(int(seed))
        t0 = time.perf_counter()
        it = list(batches(len(idx), batch_size))
        if progress:
            from tqdm.auto import tqdm

            it = tqdm(it, desc=f"{desc}{name}", leave=False)
        for sl in it:
            ii = idx[sl]
            xb, yb = x[ii].to(device), y[ii].to(device)
            x_adv = run(model, xb, yb, eps=eps, norm=norm, generator=gen, seed=seed, num_classes=num_classes)
            with eval_mode(model), torch.no_grad():
                correct[ii] = (model(x_adv).argmax(1) == yb).cpu().numpy()
        per_attack[name] = correct
        seconds[name] = time.perf_counter() - t0
        log.info("%s%s: robust accuracy %.4f (%.1fs)", desc, name, correct.mean() if len(x) else float("nan"),
                 seconds[name])
    return AttackReport(clean_correct=clean, per_attack_correct=per_attack, seconds=seconds)


__all__ = ["ATTACK_NAMES", "AttackReport", "DEFAULT_ATTACK_PARAMS", "attack_spec", "autoattack", "margins",
           "multitargeted", "pgd", "predict", "run_attacks"]
