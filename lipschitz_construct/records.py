"""Records of :mod:`lipschitz_construct`: the theorem's check on a dataset (kind ``lipschitz_construct``)
and the robustness bounds of a dataset (kind ``bounds``)."""
from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from separation.core.records import DataSpec, Record, upgrade_envelope
from separation.core.threat import eps_text, exact_eps


@dataclasses.dataclass
class RadiusSummary:
    """Certified radii of a split: minimum, mean, quantiles (pixel units)."""

    min: float
    mean: float
    quantiles: dict[str, float]


@dataclasses.dataclass
class Curve:
    """Certified astuteness at each radius."""

    eps: list[float]
    astuteness: list[float]


@dataclasses.dataclass
class LipschitzCheck:
    """What :func:`~lipschitz_construct.bound_check` found: the largest ratios
    ``|f_i(x) - f_i(x')| / |x - x'|`` on each kind of pair and whether they respect ``bound``."""

    bound: float
    eps: float
    tolerance: float
    random_max_ratio: float
    adversarial_max_ratio: float
    adversarial_toward_nearest_max_ratio: float
    adversarial_gradient_max_ratio: float
    random_max_ratio_times_r: float
    adversarial_max_ratio_times_r: float
    n_random: int
    n_adversarial: int
    gradient_steps: int
    held: bool
    seconds: dict[str, float] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class VerifyResult:
    """Each claim of the theorem, checked exactly, with the numbers behind it."""

    r: float
    lipschitz_bound: float
    r_source: str
    engine: str
    n_classes: int
    train_accuracy: float
    train_astuteness_at_r: float
    train_certified_radius: RadiusSummary
    min_train_certified_radius: float
    r_equals_min_train_radius: bool
    lipschitz_check: LipschitzCheck
    claims: dict[str, bool]
    all_claims_held: bool
    n_train: int
    n_test: int
    test_accuracy: float | None = None
    test_astuteness: dict[str, float] = dataclasses.field(default_factory=dict)
    test_certified_fraction: dict[str, float] = dataclasses.field(default_factory=dict)
    test_astuteness_at_r: float | None = None
    astuteness_curve: Curve = dataclasses.field(default_factory=lambda: Curve([], []))
    certified_radius: RadiusSummary | None = None
    certify_test_search: dict[str, Any] = dataclasses.field(default_factory=dict)

    def astuteness_at(self, eps: float) -> float | None:
        """Certified test astuteness at ``eps`` (from the ``--eps`` values or the curve)."""
        for k, v in self.test_astuteness.items():
            if abs(float(k) - eps) <= 1e-12 * max(1.0, eps):
                return v
        for e, a in zip(self.astuteness_curve.eps, self.astuteness_curve.astuteness):
            if abs(e - eps) <= 1e-12 * max(1.0, eps):
                return a
        return None


@dataclasses.dataclass(frozen=True)
class VerifyConfig:
    """The settings of ``python -m lipschitz_construct.verify`` that change its result (the search
    engine does not: every engine is exact). ``r=None``: half the train--train separation;
    ``eps=None``: the paper's for l-inf, ``r`` for l2/l1; ``lipschitz_eps=None``: the largest eps."""

    data: DataSpec
    norm: str
    r: float | None = None
    eps: tuple[float, ...] | None = None
    pairs: int = 1000
    adversarial_pairs: int = 200
    gradient_steps: int = 10
    lipschitz_eps: float | None = None


@dataclasses.dataclass
class VerificationRecord(Record):
    """Kind ``lipschitz_construct``: predictions and certified radii in ``arrays.npz``
    (``train_pred``, ``train_certified_radius`` and, with a test split, ``test_pred``,
    ``test_certified_radius``, ``y_test``)."""

    KIND = "lipschitz_construct"

    config: VerifyConfig
    result: VerifyResult

    @classmethod
    def folder_name(cls, config: VerifyConfig, key: str) -> str:
        d = config.data
        name = config.norm + d.subset_suffix()
        return f"{d.dataset}/{name}-{key[:8]}"

    @classmethod
    def upgrade(cls, data: dict[str, Any]) -> dict[str, Any]:
        c, res = data["config"], dict(data["result"])
        r = c.get("r", "auto")
        config = {"data": {"dataset": c["dataset"], "fingerprint": c["data_fingerprint"],
                           "image_shape": c["image_shape"], "n_train": c["n_train"], "n_test": c["n_test"],
                           "subset": c.get("subset"), "seed": c.get("seed", 0)},
                  "norm": c["norm"], "r": None if r == "auto" else r, "eps": c.get("eps"),
                  "pairs": c.get("pairs", 1000), "adversarial_pairs": c.get("adversarial_pairs", 200),
                  "gradient_steps": c.get("gradient_steps", 10), "lipschitz_eps": c.get("lipschitz_eps")}
        cross = res.pop("r_crosscheck", None) or {}  # absent from the earliest records: the summary has it
        train_min = res["train_certified_radius"]["min"]
        res["min_train_certified_radius"] = cross.get("min_train_certified_radius", train_min)
        res["r_equals_min_train_radius"] = cross.get("equals_r", train_min == res["r"])
        res.pop("seconds", None)
        if res.get("astuteness_curve") is None:
            res["astuteness_curve"] = {"eps": [], "astuteness": []}
        lip = dict(res["lipschitz_check"])
        lip.setdefault("seconds", {k[len("lipschitz_"):]: v for k, v in (data.get("timing") or {}).items()
                                   if k.startswith("lipschitz_") and k != "lipschitz_check"})
        res["lipschitz_check"] = lip
        return upgrade_envelope(data, config, res)


@dataclasses.dataclass
class EpsBounds:
    """The bounds at one radius ``eps``; errors are fractions of the points. ``optimal_error``: the
    exact best error of a deterministic classifier (NaN where the time limit ran out);
    ``lower_error``: the pairwise LP bound, valid for any classifier; ``clique_lower_error``: the
    LP over the cliques of a greedy clique cover (l-inf; valid for any classifier, but looser than the
    randomized optimum; None when not asked for or not solved in time); ``upper_error``: the
    error of the witness (``= optimal_error`` where solved). Counts: conflicts (edges), points in a
    conflict, components with an edge, the largest component, points the LP leaves at 1/2,
    components that needed a MILP and those it did not solve in time; ``n_kept``: the witness' points."""

    eps: float
    n_conflicts: int
    n_conflicted_points: int
    n_components: int
    largest_component: int
    n_half_integral: int
    n_milp_components: int
    n_unsolved_components: int
    optimal_error: float
    lower_error: float
    clique_lower_error: float | None
    upper_error: float
    solved: bool
    n_kept: int
    seconds: dict[str, float] = dataclasses.field(default_factory=dict)
    #: The exact optimal error of a randomized classifier (1 - LP / N, the LP over every
    #: common-point set, proven by an exact certificate); NaN where not proven within the time
    #: limit, None where not asked for.
    randomized_optimal_error: float | None = None
    #: ``[low, high]``: what is proven about the randomized optimum either way (equal where exact).
    randomized_bracket: list[float] | None = None
    #: Components that needed constraint generation, common-point sets of 3+ points it added, the
    #: largest of them, and l1 sets the exact test left undecided (they leave the optimum open).
    n_set_components: int = 0
    n_common_point_sets: int = 0
    largest_common_point_set: int = 0
    n_undecided_sets: int = 0
    #: ``eps`` exactly, as :func:`~separation.core.threat.eps_text` writes it (``"94/255"``,
    #: ``"0.3"``); ``eps`` is the float nearest to it. Records written before it: the float's repr.
    eps_text: str = ""

    @property
    def optimal_accuracy(self) -> float:
        """``1 - optimal_error`` (NaN where not solved)."""
        return 1.0 - self.optimal_error


@dataclasses.dataclass(frozen=True)
class BoundsConfig:
    """The settings of ``python -m lipschitz_construct.bounds`` that change its result (the engine
    does not: every engine is exact; the time limit per radius can). ``eps``: the radii exactly,
    as :func:`~separation.core.threat.eps_text` writes them (``"94/255"``, ``"0.4"``); any value
    :func:`~separation.core.threat.exact_eps` reads is turned into that text."""

    data: DataSpec
    norm: str
    split: str = "train"
    eps: tuple[str, ...] = ()
    cliques: bool = False
    time_limit: float = 60.0
    randomized: bool = False

    def __post_init__(self):
        object.__setattr__(self, "eps", tuple(eps_text(e) for e in self.eps))


@dataclasses.dataclass
class BoundsResult:
    """The bounds of one split at each radius. ``separation``: the smallest cross-class distance
    of the split when it is ``<= 2 max(eps)`` (None: larger); ``threshold_eps``: half of it, the
    smallest radius at which the optimum is below 100%."""

    n_points: int
    n_classes: int
    engine: str
    separation: float | None
    threshold_eps: float | None
    points: list[EpsBounds]
    #: ``threshold_eps`` exactly on byte data (``"94/255"``; l2 ``"sqrt(k)/510"``), else None.
    threshold_eps_text: str | None = None

    def index(self, eps) -> int | None:
        """The position of the radius ``eps`` among :attr:`points` (:func:`radius_position`), or None."""
        if isinstance(eps, (float, np.floating)):  # the stored floats: no text to parse
            return radius_position([p.eps for p in self.points], eps)
        return radius_position([exact_eps(p.eps_text or p.eps) for p in self.points], eps)

    def at(self, eps) -> EpsBounds | None:
        """The bounds at ``eps`` (:meth:`index`); None when no radius is ``eps``."""
        k = self.index(eps)
        return None if k is None else self.points[k]


def radius_position(radii, eps) -> int | None:
    """The position of ``eps`` among ``radii`` (Fractions, or for a float ``eps`` their floats): a
    float within 1e-12 (relative above 1) of a radius' nearest float, or an exact value (text,
    Fraction, int) equal to one; None when none is. Not a number: :func:`~separation.core.threat.exact_eps`'s error."""
    if isinstance(eps, (float, np.floating)):
        return next((k for k, r in enumerate(radii) if abs(float(r) - float(eps)) <= 1e-12 * max(1.0, float(r))),
                    None)
    want = exact_eps(eps)
    return next((k for k, r in enumerate(radii) if r == want), None)


def kept_name(k: int) -> str:
    """The array of the witness' kept indices at the ``k``-th radius (``kept_00``, ...)."""
    return f"kept_{k:02d}"


@dataclasses.dataclass
class BoundsRecord(Record):
    """Kind ``bounds``: per radius the witness' kept point indices in ``arrays.npz``
    (:func:`kept_name`), the bounds in ``result``."""

    KIND = "bounds"

    config: BoundsConfig
    result: BoundsResult

    @classmethod
    def folder_name(cls, config: BoundsConfig, key: str) -> str:
        d = config.data
        name = f"{config.split}-{config.norm}" + d.subset_suffix()
        return f"{d.dataset}/{name}-{key[:8]}"

    def kept(self, k: int):
        """The sorted indices (into the split) of the witness' points at the ``k``-th radius."""
        return self.load_arrays()[kept_name(k)]

    @classmethod
    def from_json(cls, data: Any, *, where: str = "record.json"):
        """Records written before exact radii (numbers in ``config.eps``, no ``eps_text``) read as
        the decimals their floats spell (their key is unchanged: they are not reused)."""
        if isinstance(data, dict) and isinstance(data.get("config"), dict) and isinstance(data.get("result"), dict):
            config, result = dict(data["config"]), dict(data["result"])
            if isinstance(config.get("eps"), list):
                config["eps"] = [_old_eps(e) for e in config["eps"]]
            if isinstance(result.get("points"), list):
                result["points"] = [_old_point(p) for p in result["points"]]
            data = dict(data, config=config, result=result)
        return super().from_json(data, where=where)


def _old_eps(value):
    """A radius of an older record: a number becomes its text; anything else is left to the decoder."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= 0:
        return eps_text(value)
    return value


def _old_point(point):
    """A point of an older record without ``eps_text``: the text of its ``eps`` where that is a radius."""
    if not isinstance(point, dict) or "eps_text" in point:
        return point
    text = _old_eps(point.get("eps"))
    return dict(point, eps_text=text) if isinstance(text, str) else point


__all__ = ["BoundsConfig", "BoundsRecord", "BoundsResult", "Curve", "EpsBounds", "LipschitzCheck", "RadiusSummary",
           "VerificationRecord", "VerifyConfig", "VerifyResult", "kept_name", "radius_position"]
