"""The paper's architectures, a normalisation wrapper and AutoAttack-style model checks.

Every model maps float images ``(n, C, H, W)`` in [0, 1] to logits ``(n, num_classes)``.

The architectures and what ``dropout`` means for each: :mod:`analysis.architectures`.
"""
from __future__ import annotations

import logging
import math
import warnings
from typing import Sequence

import numpy as np
import torch
import torch.nn as nn

from separation.core.errors import InvalidInputError, InvalidTypeError

from ..architectures import ARCHITECTURES, canonical_arch
from .cnn import CNN001, CNN002
from .resnet import ResNet
from .wideresnet import WideResNet

log = logging.getLogger(__name__)


class ClassColumns(nn.Module):
    """Puts a model's logit columns for ``classes`` (sorted labels) at the labels' indices among
    ``num_classes``; absent classes get a constant, very low logit (no gradient, no Lipschitz part)."""

    FILL = -1e9

    def __init__(self, model: nn.Module, classes, num_classes: int):
        super().__init__()
        self.model = model
        self.register_buffer("index", torch.as_tensor(np.asarray(classes), dtype=torch.long), persistent=False)
        self.num_classes = int(num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.model(x)
        out = torch.full((z.shape[0], self.num_classes), self.FILL, dtype=z.dtype, device=z.device)
        return out.index_copy(1, self.index.to(z.device), z)


#: The official dropout of cnn001's "with dropout" variant: (after the conv block, after fc1).
CNN001_OFFICIAL_DROPOUT = (0.25, 0.5)


def _check_p(p, arch: str) -> float:
    try:
        p = float(p)
    except (TypeError, ValueError):
        raise InvalidTypeError(f"{arch}: dropout must be a number, a bool or (for cnn001) a pair, "
                        f"got {p!r}.") from None
    if not (0.0 <= p < 1.0) or math.isnan(p):
        raise InvalidInputError(f"{arch}: dropout probabilities must lie in [0, 1), got {p}.")
    return p


def resolve_dropout(arch: str, dropout) -> float | tuple[float, float]:
    """The dropout rate(s) an architecture gets for a ``dropout`` argument (see the module docs)."""
    arch = canonical_arch(arch)
    if dropout is None or dropout is False:
        dropout = 0.0
    if arch == "cnn001":
        if dropout is True:
            return CNN001_OFFICIAL_DROPOUT
        if isinstance(dropout, (tuple, list)):
            if len(dropout) != 2:
                raise InvalidInputError("cnn001: a dropout pair must be (p_conv, p_fc), got "
                                 f"{len(dropout)} values.")
            return (_check_p(dropout[0], arch), _check_p(dropout[1], arch))
        p = _check_p(dropout, arch)
        return (p / 2.0, p)
    if isinstance(dropout, (tuple, list)):
        raise InvalidInputError(f"{arch}: dropout must be one number (pairs are for cnn001 only).")
    if dropout is True:
        if arch == "cnn002":
            return 0.5
        raise InvalidInputError(f"{arch}: dropout=True is ambiguous (the paper used 0.2 and 0.5); "
                         "pass the rate, e.g. dropout=0.2.")
    return _check_p(dropout, arch)


def build_model(arch: str, *, in_channels: int, num_classes: int, input_size: int,
                dropout: float | bool | Sequence[float] = 0.0, **kwargs) -> nn.Module:
    """Build one of :data:`ARCHITECTURES` for images ``(in_channels, input_size, input_size)``.

    Args:
        arch: architecture name (see :data:`ARCHITECTURES`).
        in_channels: image channels of the dataset (e.g. 1 for MNIST).
        num_classes: classes of the dataset (e.g. 10).
        input_size: image side in pixels (e.g. 28 for MNIST).
        dropout: see the module docs; ``0``/``False`` means no active dropout.
        **kwargs: architecture options: ``relu_after_conv2`` (cnn001, default False = official),
            ``depth`` / ``widen_factor`` (wrn-40-10, default 40 / 10), ``layers`` (resnet50).
    """
    arch = canonical_arch(arch)
    for name, v in (("in_channels", in_channels), ("num_classes", num_classes), ("input_size", input_size)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise InvalidInputError(f"{arch}: {name} must be a positive integer, got {v!r}.")
    if num_classes < 2:
        raise InvalidInputError(f"{arch}: num_classes must be at least 2, got {num_classes}.")
    p = resolve_dropout(arch, dropout)
    allowed = {"cnn001": {"relu_after_conv2"}, "cnn002": set(), "wrn-40-10": {"depth", "widen_factor"},
               "resnet50": {"layers"}}[arch]
    unknown = set(kwargs) - allowed
    if unknown:
        raise InvalidTypeError(f"{arch}: unknown option(s) {', '.join(sorted(unknown))}; "
                        f"accepted: {', '.join(sorted(allowed)) or 'none'}.")
    common = dict(in_channels=in_channels, num_classes=num_classes)
    if arch == "cnn001":
        return CNN001(**common, input_size=input_size, dropout=p,
                      relu_after_conv2=bool(kwargs.get("relu_after_conv2", False)))
    if arch == "cnn002":
        return CNN002(**common, input_size=input_size, dropout=p)
    if arch == "wrn-40-10":
        return WideResNet(**common, depth=int(kwargs.get("depth", 40)),
                          widen_factor=int(kwargs.get("widen_factor", 10)), dropout=p)
    return ResNet(**common, layers=tuple(kwargs.get("layers", (3, 4, 6, 3))), dropout=p)


def count_parameters(model: nn.Module) -> int:
    return int(sum(p.numel() for p in model.parameters()))


class Normalize(nn.Module):
    """Wrap a model trained on normalised inputs so that it takes [0, 1] images:
    ``Normalize(model, mean, std)(x) == model((x - mean) / std)`` (per channel)."""

    def __init__(self, model: nn.Module, *, mean: Sequence[float], std: Sequence[float]):
        super().__init__()
        mean_t = torch.as_tensor(mean, dtype=torch.float32).reshape(1, -1, 1, 1)
        std_t = torch.as_tensor(std, dtype=torch.float32).reshape(1, -1, 1, 1)
        if mean_t.shape != std_t.shape:
            raise InvalidInputError(f"Normalize: mean has {mean_t.numel()} values but std {std_t.numel()}.")
        if bool((std_t <= 0).any()):
            raise InvalidInputError("Normalize: std must be positive.")
        self.model = model
        self.register_buffer("mean", mean_t)
        self.register_buffer("std", std_t)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model((x - self.mean.to(x.dtype)) / self.std.to(x.dtype))


def check_model(model: nn.Module, x: torch.Tensor, *, num_classes: int | None = None) -> list[str]:
    """AutoAttack-style sanity checks; each problem is issued as a :class:`UserWarning` and returned.

    Warns when the model is in train mode, when its outputs look like probabilities or
    log-probabilities instead of logits, and when two eval-mode passes over the same batch differ
    (randomness makes gradient attacks and the Lipschitz estimate unreliable). Raises ValueError
    when the output is not ``(n, num_classes)``.
    """
    from ..tensors import eval_mode

    msgs = []
    training = [name or "<model>" for name, m in model.named_modules() if m.training]
    if training:
        msgs.append(f"the model is in train mode ({len(training)} module(s), e.g. {training[0]}); the "
                    "evaluation runs it in eval mode (dropout off, BatchNorm running statistics) and "
                    "restores the mode afterwards. Call model.eval() to silence this warning.")
    with torch.no_grad(), eval_mode(model):
        out1 = model(x)
        out2 = model(x)
    if out1.dim() != 2 or out1.shape[0] != x.shape[0]:
        raise InvalidInputError(f"the model must return logits of shape (n, num_classes); for {tuple(x.shape)} "
                         f"inputs it returned {tuple(out1.shape)}.")
    if num_classes is not None and out1.shape[1] != num_classes:
        raise InvalidInputError(f"the model returns {out1.shape[1]} logits per image but the dataset has "
                         f"{num_classes} classes.")
    o = out1.double()
    if out1.shape[1] > 1:
        if bool(((o >= 0) & (o <= 1)).all()) and torch.allclose(o.sum(1), torch.ones_like(o[:, 0]), atol=1e-4):
            msgs.append("the model's outputs lie in [0, 1] and sum to 1 per row: it seems to return "
                        "probabilities (softmax applied). The attacks and the Lipschitz estimate expect "
                        "logits: remove the final softmax.")
        elif bool((o <= 0).all()) and torch.allclose(torch.logsumexp(o, 1), torch.zeros_like(o[:, 0]), atol=1e-4):
            msgs.append("the model's outputs are log-probabilities (log-softmax applied); attacks work, "
                        "but the Lipschitz estimate then measures the log-softmax, not the logits.")
    if not torch.equal(out1, out2):
        diff = float((out1 - out2).abs().max())
        msgs.append(f"the model is not deterministic in eval mode (two passes differ by up to {diff:.3g}); "
                    "gradient attacks may overestimate its robustness (consider AutoAttack version='rand').")
    for m in msgs:
        warnings.warn(m, UserWarning, stacklevel=2)
    return msgs


__all__ = ["ARCHITECTURES", "ClassColumns", "CNN001", "CNN002", "CNN001_OFFICIAL_DROPOUT", "Normalize", "ResNet",
           "WideResNet", "build_model", "canonical_arch", "check_model", "count_parameters",
           "resolve_dropout"]
