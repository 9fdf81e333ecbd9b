"""Analysis of trained models: the paper's architectures, attacks, the empirical local Lipschitz
constant and evaluation records.

Submodules load lazily (``import analysis`` stays cheap): ``analysis.models``,
``analysis.attacks``, ``analysis.lipschitz``, ``analysis.checkpoints``, ``analysis.evaluate``.
``analysis.evaluate`` is callable: ``analysis.evaluate(model, dataset, eps=0.1, ...)`` evaluates
and writes a record (see :func:`analysis.evaluate.evaluate`).
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "build_model": "models", "ARCHITECTURES": "models", "Normalize": "models",
    "pgd": "attacks", "multitargeted": "attacks", "autoattack": "attacks",
    "estimate_local_lipschitz": "lipschitz",
    "evaluate_model": "evaluate",
    "load_checkpoint": "checkpoints", "save_checkpoint": "checkpoints",
    "model_from_checkpoint": "checkpoints",
}


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    if not name.startswith("_"):
        try:
            return importlib.import_module(f".{name}", __name__)
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = sorted(_EXPORTS) + ["attacks", "checkpoints", "evaluate", "lipschitz", "models"]
