"""Empirical check of the Lipschitz bound ``|f_i(x) - f_i(x')| <= |x - x'| / r`` on chosen pairs.

Three kinds of pairs, all inside ``[0, 1]^d`` and at most ``eps`` apart:

* ``random``: ``x'`` uniform in the ``eps``-ball around ``x`` (clipped to [0, 1]);
* ``toward_nearest``: ``x'`` on the segment from ``x`` to its nearest training point of the
  second-nearest class. Along it that class distance drops exactly as fast as ``|x - x'|`` grows,
  so the ratio *equals* ``1/r``: the bound is tight;
* ``gradient``: gradient ascent on ``max_i |f_i(x') - f_i(x)| / |x - x'|`` through the
  differentiable module.

Ratios are evaluated with the exact float64 class distances; the bound counts as held when no ratio
exceeds ``(1/r) (1 + tol)`` (``tol`` only absorbs float64 rounding of ``x'``).
"""
from __future__ import annotations

import logging
import time

import numpy as np

from separation import ThreatModel
from separation.core.arrays import to_unit_float
from separation.core.errors import InvalidInputError
from separation.core.extras import require

from .records import LipschitzCheck

log = logging.getLogger(__name__)


def _pnorm(v: np.ndarray, norm: str) -> np.ndarray:
    a = np.abs(v)
    if norm == "linf":
        return a.max(axis=1)
    if norm == "l1":
        return a.sum(axis=1)
    return np.sqrt(np.square(a).sum(axis=1))


def _ratios(clf, x1: np.ndarray, x2: np.ndarray, d1=None):
    """Per pair ``max_i |dist(x1, X_i) - dist(x2, X_i)| / |x1 - x2|`` (= ratio * r); pairs at 0 dropped."""
    sep = _pnorm(x1 - x2, clf.norm)
    keep = sep > 0
    if not keep.any():
        return np.empty(0)
    a = clf.class_distances(x1[keep]) if d1 is None else d1[keep]
    b = clf.class_distances(x2[keep])
    return np.abs(a - b).max(axis=1) / sep[keep]


def _gradient_pairs(clf, x1: np.ndarray, d1: np.ndarray, threat: ThreatModel, steps: int, rng) -> np.ndarray:
    """Projected gradient ascent on the Lipschitz ratio; returns the best ``x'`` found per point."""
    torch = require("torch", "the gradient-ascent pairs of the Lipschitz check (or pass --gradient-steps 0)")

    module = clf.as_torch_module()
    X1 = torch.from_numpy(x1)
    F1 = torch.from_numpy(d1)
    x2 = threat.project(X1 + torch.from_numpy(threat.sample(rng, len(x1), x1.shape[1])), X1)
    best_val = np.full(len(x1), -np.inf)
    best_x2 = x1.copy()
    for t in range(steps + 1):
        x2 = x2.detach().requires_grad_(True)
        sep = threat.norm_of(x2 - X1)
        ratio = (module.distances(x2) - F1).abs().amax(1) / sep.clamp_min(1e-300)
        val = ratio.detach().numpy().copy()
        val[sep.detach().numpy() == 0] = -np.inf
        better = val > best_val
        best_val[better] = val[better]
        best_x2[better] = x2.detach().numpy()[better]
        if t == steps:
            break
        (grad,) = torch.autograd.grad(ratio.sum(), [x2])
        with torch.no_grad():
            x2 = threat.ascent_step(x2, grad, X1, threat.eps / 4)
    return best_x2


def lipschitz_check(clf, x, *, eps: float, n_random: int = 1000, n_adversarial: int = 200,
                    gradient_steps: int = 10, seed: int = 0, tol: float = 1e-9,
                    bound: float | None = None) -> LipschitzCheck:
    """Check ``|f_i(x) - f_i(x')| <= L |x - x'|`` on random and adversarial pairs.

    Args:
        clf: a fitted :class:`~lipschitz_construct.LocallyLipschitzClassifier`.
        x: ``(n, *shape)`` starting points (uint8 or float in [0, 1]), e.g. the test set.
        eps: pair distance budget, in the classifier's norm and [0, 1] pixel units.
        n_random: random pairs.
        n_adversarial: pairs searched adversarially.
        gradient_steps: ascent steps of the adversarial search (0: off).
        bound: the constant ``L`` to check; default the theorem's ``1/r``.
    Returns:
        :class:`~lipschitz_construct.records.LipschitzCheck`: ``random_max_ratio``,
        ``adversarial_max_ratio``, ``bound`` (``L``), ``held``, the per-kind maxima, ``*_times_r``
        (ratio times ``r``: at most ``L r``), counts and seconds.
    """
    clf._check_fitted("lipschitz_check")
    if not (np.isfinite(eps) and eps > 0):
        raise InvalidInputError(f"eps={eps!r} must be a positive number.")
    if bound is not None and not (np.isfinite(bound) and bound > 0):
        raise InvalidInputError(f"bound={bound!r} must be a positive number.")
    X = to_unit_float(x)
    if X.shape[1] != clf.n_features_in_:
        raise InvalidInputError(f"x has {X.shape[1]} features per point, the classifier {clf.n_features_in_}.")
    rng = np.random.default_rng(seed)
    threat = ThreatModel(clf.norm, eps)
    r = clf.r_
    bound = 1.0 / r if bound is None else float(bound)
    seconds: dict[str, float] = {}

    t0 = time.perf_counter()
    idx = rng.choice(len(X), n_random, replace=n_random > len(X))
    x1 = X[idx]
    x2 = np.clip(x1 + threat.sample(rng, len(x1), X.shape[1]), 0.0, 1.0)
    rr = _ratios(clf, x1, x2)
    seconds["random"] = time.perf_counter() - t0

    rt = rg = np.empty(0)
    if n_adversarial > 0:
        t0 = time.perf_counter()
        idx = rng.choice(len(X), n_adversarial, replace=n_adversarial > len(X))
        x1 = X[idx]
        d1, i1 = clf.class_distances(x1, return_indices=True)
        second = np.argsort(d1, axis=1, kind="stable")[:, 1]
        rows = np.arange(len(x1))
        z = clf.index_.points(i1[rows, second])
        dz = d1[rows, second]  # > 0: the classes of a fitted classifier are 2r > 0 apart
        x2 = x1 + (np.minimum(eps, dz) / dz)[:, None] * (z - x1)
        rt = _ratios(clf, x1, x2, d1=d1)
        seconds["toward_nearest"] = time.perf_counter() - t0

        if gradient_steps > 0:
            t0 = time.perf_counter()
            x2 = _gradient_pairs(clf, x1, d1, threat, gradient_steps, rng)
            rg = _ratios(clf, x1, x2, d1=d1)
            seconds["gradient"] = time.perf_counter() - t0

    def mx(a):
        return float(a.max()) if a.size else 0.0

    rand_r, near_r, grad_r = mx(rr), mx(rt), mx(rg)
    adv_r = max(near_r, grad_r)
    out = LipschitzCheck(
        bound=bound, eps=float(eps), tolerance=tol, random_max_ratio=rand_r / r, adversarial_max_ratio=adv_r / r,
        adversarial_toward_nearest_max_ratio=near_r / r, adversarial_gradient_max_ratio=grad_r / r,
        random_max_ratio_times_r=rand_r, adversarial_max_ratio_times_r=adv_r,
        n_random=int(rr.size), n_adversarial=int(rt.size + rg.size), gradient_steps=int(gradient_steps),
        held=bool(max(rand_r, adv_r) <= bound * r * (1.0 + tol)), seconds=seconds)
    log.info("Lipschitz check: random max %.6g, adversarial max %.6g, bound %.6g (%s)",
             out.random_max_ratio, out.adversarial_max_ratio, out.bound, "held" if out.held else "VIOLATED")
    return out


__all__ = ["lipschitz_check"]
