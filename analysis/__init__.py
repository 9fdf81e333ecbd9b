"""Analysis of trained models: the paper's architectures and training methods, attacks, the
empirical local Lipschitz constant, evaluation records and the paper's reports.

Submodules load lazily (``import analysis`` stays cheap, torch-free): ``analysis.models``,
``analysis.attacks``, ``analysis.attack_suite``, ``analysis.lipschitz``, ``analysis.losses``,
``analysis.evaluation`` (the library entry point :func:`analysis.evaluation.evaluate`),
``analysis.training``, ``analysis.checkpoints``, ``analysis.records`` and ``analysis.reporting``
(both torch-free); the command lines are ``analysis.evaluate``, ``analysis.train``,
``analysis.grid`` and ``analysis.report``.
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "build_model": "models", "ARCHITECTURES": "models", "Normalize": "models",
    "pgd": "attacks", "multitargeted": "attacks", "autoattack": "attacks",
    "run_attacks": "attack_suite",
    "estimate_local_lipschitz": "lipschitz",
    "EvalConfig": "evaluation", "Evaluation": "evaluation", "evaluate_model": "evaluation",
    "load_checkpoint": "checkpoints", "save_checkpoint": "checkpoints", "model_from_checkpoint": "checkpoints",
    "TrainConfig": "config", "train": "training",
}


def __getattr__(name: str):
    if name == "evaluate_model":
        return importlib.import_module(".evaluation", __name__).evaluate
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = sorted(_EXPORTS)
