"""The constants of "A Closer Look at Accuracy vs. Robustness" (Yang et al., NeurIPS 2020), in one place.

Every other module reads them from here: the attack radius per dataset, the norms, the order of
datasets in the paper's tables (the training methods are :mod:`analysis.methods`).
"""
from __future__ import annotations

#: The paper's l-inf attack radius per dataset, in [0, 1] pixel units (Table 1).
PAPER_EPS: dict[str, float] = {"mnist": 0.1, "fashion-mnist": 0.1, "cifar10": 0.031, "cifar100": 0.031,
                               "svhn": 0.031, "restricted-imagenet": 0.005}

#: The radius used when none is given: the paper's for its datasets; 0.1 for sklearn's 8x8 digits
#: (16 grey levels, like MNIST's scale) and 0.031 (8/255) for a user's .npz arrays.
DEFAULT_EPS: dict[str, float] = {**PAPER_EPS, "digits": 0.1, "npz": 0.031}

#: Distances the separation engines compute exactly.
NORMS: tuple[str, ...] = ("linf", "l2", "l1")
#: The norms of the paper's separation table (Table 1).
TABLE1_NORMS: tuple[str, ...] = ("linf", "l2")
#: Threat models of the attacks, the training losses and the local Lipschitz estimate.
ATTACK_NORMS: tuple[str, ...] = ("linf", "l2")

#: The paper's datasets in the order of its tables, then the toolkit's own.
DATASET_ORDER: tuple[str, ...] = ("mnist", "fashion-mnist", "cifar10", "svhn", "restricted-imagenet",
                                  "cifar100", "digits", "npz")
#: The official local Lipschitz estimate (``estimate_local_lip_v2``): gradient-ascent steps, their
#: length, and the standard deviation of the Gaussian start, in [0, 1] pixel units.
LIPSCHITZ_STEPS: int = 10
LIPSCHITZ_STEP_SIZE: float = 0.003
LIPSCHITZ_START_STD: float = 0.001


def default_eps(dataset: str) -> float:
    """The attack radius for ``dataset`` when none is given (see :data:`DEFAULT_EPS`)."""
    return DEFAULT_EPS.get(dataset, DEFAULT_EPS["npz"])


__all__ = ["ATTACK_NORMS", "DATASET_ORDER", "DEFAULT_EPS", "LIPSCHITZ_START_STD", "LIPSCHITZ_STEPS",
           "LIPSCHITZ_STEP_SIZE", "NORMS", "PAPER_EPS", "TABLE1_NORMS", "default_eps"]
