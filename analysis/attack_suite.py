"""Suites of attacks on a split: which points stay correct under each attack, and under all of them.

The paper's evaluation (Yang et al. 2020, Sec. 5): PGD with 10 steps of size eps/5 and one random
restart, and the multi-targeted attack with 20 steps of size eps/10; robust accuracy is the
per-example worst case over the attacks.
"""
from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
import torch.nn as nn

from separation.core.errors import InvalidInputError

from .attack_specs import ATTACK_NAMES, DEFAULT_ATTACK_PARAMS, attack_spec
from .tensors import batches, check_images, eval_mode, to_labels
from .attacks import autoattack, multitargeted, pgd

log = logging.getLogger("analysis.attacks")

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
    specs = [attack_spec(a) for a in attacks]
    names = [s["name"] for s in specs]
    if len(set(names)) != len(names):
        raise InvalidInputError(f"Each attack may appear once, got {names}.")
    x = check_images(x).cpu()
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
        from separation.core.progress import progress_bar

        it = progress_bar(list(batches(len(idx), batch_size)), enabled=progress, desc=f"{desc}{name}")
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


__all__ = ["ATTACK_NAMES", "AttackReport", "DEFAULT_ATTACK_PARAMS", "attack_spec", "predict", "run_attacks"]
