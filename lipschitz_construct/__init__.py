"""The locally Lipschitz classifier of "A Closer Look at Accuracy vs. Robustness" (NeurIPS 2020).

``LocallyLipschitzClassifier`` builds ``f_i(x) = dist(x, X_i) / r`` on real data, predicts the
nearest class, certifies each prediction exactly, and exposes a differentiable ``nn.Module``;
``python -m lipschitz_construct.verify`` checks every claim of the theorem on a dataset.
:func:`robustness_bounds` goes beyond the separation: the best robust accuracy any classifier can
reach at a radius ``eps`` (exact, an LP bound, and a witness); ``python -m lipschitz_construct.bounds``
runs it on a dataset.
"""
from .classifier import (InvalidParameterError, LocallyLipschitzClassifier, NotFittedError,
                         NotSeparatedError, astuteness_from, certified_fraction)
from .bound_check import lipschitz_check
from .records import BoundsRecord, EpsBounds, LipschitzCheck, VerificationRecord
from .robustness import RobustnessBounds, robustness_bounds

__all__ = ["BoundsRecord", "EpsBounds", "InvalidParameterError", "LipschitzCheck", "LocallyLipschitzClassifier",
           "NotFittedError", "NotSeparatedError", "RobustnessBounds", "VerificationRecord", "astuteness_from",
           "certified_fraction", "lipschitz_check", "robustness_bounds"]
