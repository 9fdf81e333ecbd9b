"""Analysis of trained models: the paper's architectures and training methods, attacks, the
empirical local Lipschitz constant, evaluation records and the paper's reports.

Submodules load lazily (``import analysis`` stays cheap, torch-free). The registries (torch-free):
:mod:`analysis.methods` (training methods), :mod:`analysis.architectures`, :mod:`analysis.attack_specs`.
The library: :mod:`analysis.models`, :mod:`analysis.attacks`, :mod:`analysis.attack_suite`,
:mod:`analysis.local_lipschitz`, :mod:`analysis.losses`, :mod:`analysis.model_metrics` (the entry point
:func:`analysis.model_metrics.evaluate_model`), :mod:`analysis.training`, :mod:`analysis.checkpoints`,
and the torch-free :mod:`analysis.records` and :mod:`analysis.rendering`. The command lines are
``analysis.evaluate``, ``analysis.train``, ``analysis.grid`` and ``analysis.report``.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from separation.core.lazy import lazy_exports

_EXPORTS = {
    "build_model": "models", "ARCHITECTURES": "architectures", "Normalize": "models",
    "METHODS": "methods",
    "pgd": "attacks", "multitargeted": "attacks", "autoattack": "attacks",
    "run_attacks": "attack_suite",
    "estimate_local_lipschitz": "local_lipschitz",
    "EvalConfig": "eval_config", "Evaluation": "eval_config", "evaluate_model": "model_metrics",
    "load_checkpoint": "checkpoints", "save_checkpoint": "checkpoints", "model_from_checkpoint": "checkpoints",
    "TrainConfig": "train_config", "train": "training",
}


if TYPE_CHECKING:  # the lazy names, for type checkers and the API reference
    from .models import Normalize, build_model  # noqa: F401
    from .architectures import ARCHITECTURES  # noqa: F401
    from .methods import METHODS  # noqa: F401
    from .attacks import autoattack, multitargeted, pgd  # noqa: F401
    from .attack_suite import run_attacks  # noqa: F401
    from .local_lipschitz import estimate_local_lipschitz  # noqa: F401
    from .eval_config import EvalConfig, Evaluation  # noqa: F401
    from .model_metrics import evaluate_model  # noqa: F401
    from .checkpoints import load_checkpoint, model_from_checkpoint, save_checkpoint  # noqa: F401
    from .train_config import TrainConfig  # noqa: F401
    from .training import train  # noqa: F401


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)


__all__ = sorted(_EXPORTS)
