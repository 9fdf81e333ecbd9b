"""The threat model: an ``eps``-ball of a norm around each point, intersected with the pixel box [0, 1]^d.

One type owns the geometry that attacks, training losses, the local Lipschitz estimate and the
checks of the constructed classifier all need, so that they agree:

* **projection** (:meth:`ThreatModel.project`): l-inf clips every coordinate to ``[x - eps, x + eps]``
  (as ``min``/``max``, like the official code); l2 and l1 *rescale* the perturbation into the ball
  when it is outside; then every coordinate is clipped to [0, 1]. For l2/l1 this is the standard PGD
  projection, not the Euclidean projection onto the intersection of ball and box.
* **steepest-ascent step** (:meth:`ThreatModel.step`): l-inf ``step_size * sign(g)``; l2 and l1
  ``step_size * g / ||g||_2``. **A zero gradient does not move**, in every norm: no random
  direction is drawn, so a step never consumes random numbers.
* **random start** (:meth:`ThreatModel.random_start`) and **sampling** (:meth:`ThreatModel.sample`):
  uniform in the ball (l-inf: each coordinate uniform on ``[-eps, eps]``; l2: a uniform direction
  times ``eps U^(1/d)``; l1: a uniform point of the cross-polytope); the start is then clipped to [0, 1].

Tensors are ``(n, ...)`` batches of float images in [0, 1]; norms are taken per sample over all
features. torch is imported only when a tensor method is called.
"""
from __future__ import annotations

import dataclasses
import math
from decimal import Decimal, InvalidOperation
from fractions import Fraction

import numpy as np

from .errors import InvalidInputError, InvalidTypeError
from .paper import NORMS

_P = {"linf": float("inf"), "l2": 2.0, "l1": 1.0}


def check_eps(eps, name: str = "eps") -> float:
    """``eps`` as the float nearest to the value it spells (:func:`exact_eps`: a finite number
    ``>= 0``, a radius in [0, 1] pixel units; text such as ``"8/255"``, a Fraction, a Decimal);
    else :class:`InvalidTypeError` (not a number) or :class:`InvalidInputError`. The one check of
    a radius in the toolkit: attacks, losses, bounds, range search and certificates all use it."""
    if isinstance(eps, bool) or not isinstance(eps, (int, float, np.integer, np.floating, str, Fraction, Decimal)):
        raise InvalidTypeError(f"{name} must be a number (in [0, 1] pixel units), got {type(eps).__name__}.")
    return float(exact_eps(eps, name))


#: The longest text :func:`exact_eps` parses (a radius written with more digits is not meant).
EPS_TEXT_MAX = 64


class _NotFinite(Exception):
    """A number that is infinite or NaN (an invalid radius, not a wrong type)."""


def _exact_or_none(eps) -> Fraction | None:
    """The exact value ``eps`` spells, or None when it is not a number (see :func:`exact_eps`)."""
    if isinstance(eps, bool):
        return None
    if isinstance(eps, Fraction):
        return eps
    if isinstance(eps, (int, np.integer)):
        return Fraction(int(eps))
    if isinstance(eps, (float, np.floating)):
        if not math.isfinite(float(eps)):
            raise _NotFinite
        return Fraction(repr(float(eps)))
    if isinstance(eps, Decimal):
        if not eps.is_finite():
            raise _NotFinite
        return Fraction(eps)
    if not isinstance(eps, str) or len(eps) > EPS_TEXT_MAX:
        return None
    num, slash, den = eps.strip().partition("/")
    try:
        top, bottom = Decimal(num), Decimal(den) if slash else Decimal(1)
    except InvalidOperation:
        return None
    if not (top.is_finite() and bottom.is_finite()):
        raise _NotFinite
    return None if bottom == 0 else Fraction(top) / Fraction(bottom)


def exact_eps(eps, name: str = "eps") -> Fraction:
    """``eps`` as the exact rational it spells, ``>= 0`` (a radius in [0, 1] pixel units).

    Accepted: a :class:`~fractions.Fraction`, an int, a :class:`~decimal.Decimal`, text
    (``"251/510"``, ``"8/255"``, ``"0.3"``, ``"3e-1"``) and floats, taken as the decimal of their
    shortest repr (``0.3`` is 3/10, not the binary double nearest to it). Anything else is an
    :class:`InvalidTypeError`; negative, infinite or NaN values an :class:`InvalidInputError`."""
    try:
        value = _exact_or_none(eps)
    except _NotFinite:
        value = Fraction(-1)
    if value is None:
        raise InvalidTypeError(f"{name} must be a number (in [0, 1] pixel units) such as 0.3 or 8/255, "
                               f"got {eps!r}.")
    if value < 0:
        raise InvalidInputError(f"{name}={eps!r} is not valid: pass a finite number >= 0 (in [0, 1] pixel units).")
    return value


def eps_text(eps) -> str:
    """The canonical text of an exact radius: a terminating decimal as its shortest decimal
    (``"0.3"``, ``"1.5"``, ``"2"``), any other rational as ``"p/q"`` (``"251/510"``); parsing it
    with :func:`exact_eps` gives the value back."""
    value = exact_eps(eps)
    den = value.denominator
    twos = fives = 0
    while den % 2 == 0:
        den //= 2
        twos += 1
    while den % 5 == 0:
        den //= 5
        fives += 1
    if den != 1:
        return f"{value.numerator}/{value.denominator}"
    digits = max(twos, fives)
    text = format(Decimal(value.numerator * 10**digits // value.denominator).scaleb(-digits), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _radii(eps, name: str) -> list:
    values = [eps] if isinstance(eps, str) or np.ndim(eps) == 0 else list(eps)
    if not values:
        raise InvalidInputError(f"{name} is empty: pass at least one radius (in [0, 1] pixel units).")
    return values


def check_eps_list(eps, name: str = "eps") -> list[float]:
    """``eps`` (a number or a sequence of them) as a sorted list of distinct radii (:func:`check_eps`)."""
    return sorted({check_eps(e, name) for e in _radii(eps, name)})


def exact_eps_list(eps, name: str = "eps") -> list[Fraction]:
    """``eps`` (a value or a sequence of them) as a sorted list of distinct exact radii (:func:`exact_eps`)."""
    return sorted({exact_eps(e, name) for e in _radii(eps, name)})


def _view(v, like):
    return v.view(-1, *([1] * (like.dim() - 1)))


@dataclasses.dataclass(frozen=True)
class ThreatModel:
    """The ``eps``-ball of ``norm`` (``"linf"``, ``"l2"`` or ``"l1"``) intersected with [0, 1]^d.

    ``eps`` is in [0, 1] pixel units; ``eps = 0`` is the point itself.
    """

    norm: str
    eps: float

    def __post_init__(self):
        if self.norm not in NORMS:
            raise InvalidInputError(f"Unknown norm {self.norm!r}. Use one of {', '.join(NORMS)} (e.g. norm='linf').")
        object.__setattr__(self, "eps", check_eps(self.eps))

    # -- geometry -----------------------------------------------------------------------------
    def diameter(self, d: int) -> float:
        """The diameter of [0, 1]^d in this norm: no two points of the box are farther apart."""
        return {"linf": 1.0, "l2": math.sqrt(d), "l1": float(d)}[self.norm]

    def check_dimension(self, d: int) -> "ThreatModel":
        """Raise ValueError when ``eps`` exceeds the diameter of [0, 1]^d (a ball larger than the box)."""
        if self.eps > self.diameter(d):
            raise InvalidInputError(f"eps={self.eps:g} exceeds the {self.norm} diameter of [0, 1]^{d} "
                             f"({self.diameter(d):.6g}): every point is within eps of every other. "
                             "Pass a smaller eps (pixel values are in [0, 1]).")
        return self

    def norm_of(self, v):
        """Per-sample norm of a ``(n, ...)`` tensor: ``(n,)``."""
        import torch

        return torch.linalg.vector_norm(v.flatten(1), ord=_P[self.norm], dim=1)

    # -- projection, steps, starts (torch) --------------------------------------------------------
    def project(self, x_adv, x):
        """Onto the ball around ``x`` (l-inf: clip; l2/l1: rescale), then onto [0, 1]."""
        import torch

        if self.norm == "linf":
            x_adv = torch.max(torch.min(x_adv, x + self.eps), x - self.eps)
        else:
            delta = x_adv - x
            n = self.norm_of(delta).clamp_min(1e-30)
            x_adv = x + delta * _view(torch.clamp(self.eps / n, max=1.0), x)
        return x_adv.clamp(0.0, 1.0)

    def step(self, x_adv, grad, step_size: float):
        """One steepest-ascent step (not projected): ``sign(g)`` for l-inf, ``g / ||g||_2`` otherwise;
        a zero gradient does not move."""
        import torch

        if self.norm == "linf":
            return x_adv + step_size * grad.sign()
        gn = _view(torch.linalg.vector_norm(grad.flatten(1), ord=2, dim=1), grad)
        return x_adv + step_size * torch.where(gn > 0, grad / gn.clamp_min(1e-30), torch.zeros_like(grad))

    def ascent_step(self, x_adv, grad, x, step_size: float):
        """:meth:`step`, then :meth:`project` back onto the ball around ``x`` and [0, 1]."""
        return self.project(self.step(x_adv, grad, step_size), x)

    def random_start(self, x, generator=None):
        """A point uniform in the ball around each ``x`` (drawn with ``generator`` on ``x``'s
        device, or torch's global generator), clipped to [0, 1]."""
        import torch

        kw = {"generator": generator, "device": x.device, "dtype": x.dtype}
        if self.norm == "linf":
            delta = (2 * torch.rand(x.shape, **kw) - 1) * self.eps
        elif self.norm == "l2":
            g = torch.randn(x.shape, **kw)
            g = g / _view(torch.linalg.vector_norm(g.flatten(1), dim=1).clamp_min(1e-30), x)
            r = torch.rand(x.shape[0], **kw) ** (1.0 / x[0].numel())
            delta = g * _view(self.eps * r, x)
        else:
            e = -torch.log(torch.rand((x.shape[0], x[0].numel() + 1), **kw))
            signs = torch.where(torch.rand((x.shape[0], x[0].numel()), **kw) < 0.5, -1.0, 1.0).to(x.dtype)
            delta = (e[:, :-1] / e.sum(1, keepdim=True) * signs * self.eps).view_as(x)
        return self.project(x + delta, x)

    def project_exact(self, x_adv, x):
        """Like :meth:`project`, then repaired so that, measured exactly (float64 differences of the
        stored values), ``||x_adv - x|| <= eps`` and ``0 <= x_adv <= 1`` hold despite rounding."""
        import torch

        x_adv = self.project(x_adv.detach(), x)
        xd = x.double()
        ulp = torch.finfo(x.dtype).eps  # rounding a value in [0, 1] moves it by at most ulp / 2
        d_ = max(1, x[0].numel())
        tau = ulp * (d_ ** 0.5 if self.norm == "l2" else d_)  # what rounding can add to the norm
        for _ in range(30):
            d = x_adv.double() - xd
            if self.norm == "linf":
                bad = d.abs() > self.eps
                if not bool(bad.any()):
                    return x_adv
                # the representable value nearest to x + clip(d), moved one step towards x if outside
                target = (xd + d.clamp(-self.eps, self.eps)).to(x.dtype)
                target = torch.where((target.double() - xd).abs() > self.eps, torch.nextafter(target, x), target)
                x_adv = torch.where(bad, target, x_adv)
            else:
                n = torch.linalg.vector_norm(d.flatten(1), ord=_P[self.norm], dim=1)
                bad = n > self.eps
                if not bool(bad.any()):
                    return x_adv
                # aim below eps by more than the rounding of x + d can add
                shrink = torch.where(bad, max(self.eps - tau, 0.0) / n.clamp_min(1e-300), torch.ones_like(n))
                x_adv = (xd + d * _view(shrink, x)).to(x.dtype).clamp(0, 1)
                tau *= 2
        raise RuntimeError("could not project the points into the eps-ball exactly.")  # pragma: no cover

    # -- sampling (numpy) ------------------------------------------------------------------------
    def sample(self, rng: np.random.Generator, n: int, d: int) -> np.ndarray:
        """``n`` perturbations uniform in the ball of ``R^d``: float64 ``(n, d)`` (not clipped)."""
        if self.norm == "linf":
            return rng.uniform(-self.eps, self.eps, size=(n, d))
        if self.norm == "l2":
            g = rng.standard_normal((n, d))
            g /= np.linalg.norm(g, axis=1, keepdims=True)
            return g * (self.eps * rng.uniform(size=(n, 1)) ** (1.0 / d))
        e = rng.exponential(size=(n, d + 1))
        return e[:, :d] / e.sum(axis=1, keepdims=True) * rng.choice([-1.0, 1.0], size=(n, d)) * self.eps


__all__ = ["EPS_TEXT_MAX", "ThreatModel", "check_eps", "check_eps_list", "eps_text", "exact_eps", "exact_eps_list"]
