"""The locally Lipschitz classifier of "A Closer Look at Accuracy vs. Robustness" (NeurIPS 2020).

``LocallyLipschitzClassifier`` builds ``f_i(x) = dist(x, X_i) / r`` on real data, predicts the
nearest class, certifies each prediction exactly, and exposes a differentiable ``nn.Module``;
``python -m lipschitz_construct.verify`` checks every claim of the theorem on a dataset.
"""
from .classifier import (InvalidParameterError, LocallyLipschitzClassifier, NotFittedError,
                         NotSeparatedError, astuteness_from, certified_fraction)
from .lipschitz import lipschitz_check
from .records import LipschitzCheck, VerificationRecord

__all__ = ["InvalidParameterError", "LipschitzCheck", "LocallyLipschitzClassifier", "NotFittedError",
           "NotSeparatedError", "VerificationRecord", "astuteness_from", "certified_fraction", "lipschitz_check"]
