"""The constants of "A Closer Look at Accuracy vs. Robustness" (Yang et al., NeurIPS 2020), in one place.

Every other module reads them from here: the attack radius per dataset and norm, the norms, the
order of datasets in the paper's tables (the training methods are :mod:`analysis.methods`).
"""
from __future__ import annotations

import dataclasses

#: The paper's l-inf attack radius per dataset, in [0, 1] pixel units (Table 1).
PAPER_EPS: dict[str, float] = {"mnist": 0.1, "fashion-mnist": 0.1, "cifar10": 0.031, "cifar100": 0.031,
                               "svhn": 0.031, "restricted-imagenet": 0.005}


@dataclasses.dataclass(frozen=True)
class Radius:
    """A default attack radius (``eps`` in [0, 1] pixel units; None: no radius is conventional) and
    where it comes from."""

    eps: float | None
    source: str


_PAPER = "the paper (Table 1)"
_NONE = Radius(None, "no radius is conventional for this dataset and norm: pass --eps")
#: The radius used when none is given, per dataset and norm, with its source. The l-inf radii are the
#: paper's (and the toolkit's for digits and own arrays); the l2 / l1 radii are the conventional ones
#: of the robustness literature where there is one -- never the l-inf value borrowed.
RADII: dict[str, dict[str, Radius]] = {
    "mnist": {"linf": Radius(0.1, _PAPER),
              "l2": Radius(2.0, "Tramèr & Boneh 2019, Schott et al. 2019 (MNIST l2)"),
              "l1": Radius(10.0, "Tramèr & Boneh 2019 (MNIST l1)")},
    "fashion-mnist": {"linf": Radius(0.1, _PAPER)},
    "cifar10": {"linf": Radius(0.031, _PAPER),
                "l2": Radius(0.5, "RobustBench (Croce et al. 2021), CIFAR-10 l2"),
                "l1": Radius(12.0, "Croce & Hein 2021, CIFAR-10 l1")},
    "cifar100": {"linf": Radius(0.031, _PAPER)},
    "svhn": {"linf": Radius(0.031, _PAPER)},
    "restricted-imagenet": {"linf": Radius(0.005, _PAPER)},
    "digits": {"linf": Radius(0.1, "the toolkit: 16 grey levels, MNIST's scale")},
    "npz": {"linf": Radius(0.031, "the toolkit: 8/255, the common CIFAR-10 radius")},
}

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


def radius(dataset: str, norm: str = "linf") -> Radius:
    """The default radius of ``dataset`` in ``norm`` (see :data:`RADII`); none for a name not in it."""
    return RADII.get(dataset, {}).get(norm, _NONE)


def default_eps(dataset: str, norm: str = "linf") -> float | None:
    """The attack radius for ``dataset`` in ``norm`` when none is given; None where none is conventional."""
    return radius(dataset, norm).eps


__all__ = ["ATTACK_NORMS", "DATASET_ORDER", "LIPSCHITZ_START_STD", "LIPSCHITZ_STEPS", "LIPSCHITZ_STEP_SIZE", "NORMS",
           "PAPER_EPS", "RADII", "Radius", "TABLE1_NORMS", "default_eps", "radius"]
