"""The paper's architectures, by name (torch-free: configurations and records read it).

The architectures (:data:`ARCHITECTURES`; built by :func:`analysis.models.build_model`) and what ``dropout`` means for each:

============  =========================================================  ======================
name          layers                                                     ``dropout``
============  =========================================================  ======================
cnn001        conv 32, conv 64, pool, fc 128, fc classes (MNIST;         ``False``/``0``: none;
              the official net: no ReLU after conv 2, see                ``True``: official
              ``relu_after_conv2``)                                      (0.25 conv, 0.5 fc);
                                                                         float ``p``: (p/2, p),
                                                                         so 0.5 == official;
                                                                         pair: (p_conv, p_fc)
cnn002        conv 32, 32, pool, 64, 64, pool, fc 200, 200, classes      float ``p`` after fc1;
              (TRADES' small CNN)                                        ``True``: 0.5 (official)
wrn-40-10     wide ResNet, depth 40, width 10 (``depth``,                float ``p`` inside each
              ``widen_factor`` kwargs change it)                         block (paper: 0.2, 0.5)
resnet50      ResNet-50 (torchvision layout)                             float ``p`` inside each
                                                                         bottleneck but the first
                                                                         of a stage (paper: 0.2,
                                                                         0.5)
============  =========================================================  ======================

``dropout=0`` always means no active dropout.
"""
from __future__ import annotations

from separation.core.errors import InvalidInputError, InvalidTypeError

#: Architecture names accepted by :func:`analysis.models.build_model`.
ARCHITECTURES = ("cnn001", "cnn002", "wrn-40-10", "resnet50")

_ALIASES = {"wrn_40_10": "wrn-40-10", "wrn40-10": "wrn-40-10", "wrn4010": "wrn-40-10",
            "resnet-50": "resnet50", "resnet_50": "resnet50", "cnn-001": "cnn001", "cnn-002": "cnn002"}


def canonical_arch(arch: str) -> str:
    """The canonical name of an architecture (case-insensitive, ``_`` and ``-`` aliases)."""
    if not isinstance(arch, str):
        raise InvalidTypeError(f"arch must be a string, got {type(arch).__name__}.")
    key = arch.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in ARCHITECTURES:
        raise InvalidInputError(f"Unknown architecture {arch!r}. Choose one of: {', '.join(ARCHITECTURES)}.")
    return key


__all__ = ["ARCHITECTURES", "canonical_arch"]
