"""The paper's architectures, a normalisation wrapper and AutoAttack-style model checks
(:mod:`.build`, torch), and where evaluated models come from (:mod:`.sources`, torch-free until a
model is loaded). Every model maps float images ``(n, C, H, W)`` in [0, 1] to logits.

The names load on first use, so ``analysis.models.sources`` can be read without torch.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from separation.core.lazy import lazy_exports

_EXPORTS = {"ARCHITECTURES": "build", "CNN001": "build", "CNN002": "build", "CNN001_OFFICIAL_DROPOUT": "build", "Normalize": "build", "ResNet": "build", "WideResNet": "build", "build_model": "build", "canonical_arch": "build", "check_model": "build", "count_parameters": "build", "resolve_dropout": "build", "ClassColumns": "build"}


if TYPE_CHECKING:  # the lazy names, for type checkers and the API reference
    from .build import ARCHITECTURES, CNN001, CNN001_OFFICIAL_DROPOUT, CNN002, ClassColumns, Normalize, ResNet, WideResNet, build_model, canonical_arch, check_model, count_parameters, resolve_dropout  # noqa: F401


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)


__all__ = sorted(_EXPORTS)
