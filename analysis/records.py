"""Records of :mod:`analysis` (torch-free): a model's evaluation (kind ``evaluate``) and a training
run (kind ``training``)."""
from __future__ import annotations

import dataclasses
import os
from typing import Any

from separation.core.paths import safe_name, slug
from separation.core.records import DataSpec, Record, encode, reusable, upgrade_envelope

from .train_config import TrainConfig


# -- evaluation ------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class LipschitzSettings:
    """The empirical local Lipschitz estimate: ``modes`` (``ascent``, ``paper``), the ball radius,
    steps and step size; ``rng``: ``"generator"`` (a private generator seeded by the evaluation's
    seed) or ``"official"`` (torch's global generator seeded by it, as the official code draws);
    ``paper_clip_start``: the paper mode's noisy start clipped to [0, 1] (for models that reject
    inputs outside it)."""

    modes: tuple[str, ...]
    eps: float
    steps: int
    step_size: float
    rng: str = "generator"
    paper_clip_start: bool = False


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """Which model was evaluated: a name, its architecture and how it was obtained (``config``:
    the checkpoint's configuration, or the constructed classifier's settings)."""

    name: str
    arch: str | None = None
    checkpoint_sha256: str | None = None
    config: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class AchievableSettings:
    """Where the data's optimal robust accuracy on the evaluated test points comes from:
    ``source="computed"`` (``--bounds``: :func:`lipschitz_construct.robustness_bounds` on those
    points, ``time_limit`` seconds per radius) or ``source="record"`` (a stored ``bounds`` record of
    exactly those points, identified by its ``record_key``)."""

    source: str
    time_limit: float | None = None
    record_key: str | None = None


@dataclasses.dataclass(frozen=True)
class EvaluationConfig:
    """Everything that changes an evaluation's numbers. ``eps``: the headline radius (the split
    results, the Lipschitz ball); ``curve_eps``: every radius of the robust-accuracy curve on the
    test points (None: a single-radius evaluation without one); ``achievable``: where the data's
    optimum on the same points comes from (None: not compared)."""

    model: ModelSpec
    data: DataSpec
    eps: float
    norm: str
    attacks: tuple[dict[str, Any], ...]
    lipschitz: LipschitzSettings | None
    splits: tuple[str, ...]
    seed: int
    batch_size: int
    device: str
    train_points: dict[str, int] | None = None
    curve_eps: tuple[float, ...] | None = None
    achievable: AchievableSettings | None = None

    def identity(self) -> dict[str, Any]:
        """What the record key hashes: the configuration, without the curve fields when they are
        None (so single-radius configurations keep the keys they had before curves existed)."""
        body = encode(self)
        for name in ("curve_eps", "achievable"):
            if body.get(name) is None:
                body.pop(name, None)
        return body


@dataclasses.dataclass
class SplitEvaluation:
    """Clean and adversarial accuracy (worst case over the attacks, and per attack) and the mean
    local Lipschitz estimates of one split."""

    n: int
    clean_acc: float
    adv_acc: float | None = None
    adv_acc_per_attack: dict[str, float] = dataclasses.field(default_factory=dict)
    lipschitz_mean: float | None = None
    lipschitz_paper_mean: float | None = None


@dataclasses.dataclass
class Gaps:
    """Train minus test accuracy (clean, adversarial); test minus train mean Lipschitz estimate."""

    clean: float | None = None
    adv: float | None = None
    lipschitz: float | None = None
    lipschitz_paper: float | None = None


@dataclasses.dataclass
class ModelSummary:
    name: str
    arch: str | None
    checkpoint: str | None
    n_params: int


@dataclasses.dataclass
class CurvePoint:
    """One radius of the robust-accuracy curve on the test points: the model's robust accuracy
    (worst case over the attacks; ``n_robust`` points) and per attack; with the data's bounds on
    the same points, the robust accuracies achievable there -- ``optimal_acc`` (the best
    deterministic classifier, exactly; None where not proven in time), ``randomized_optimal_acc``
    (where computed), ``lp_bound_acc`` (no classifier does better), ``witness_acc`` (the certified
    witness, on its ``n_kept`` points) -- and the *avoidable errors*: points the witness keeps
    robustly correct and the model does not; ``beyond_witness``: points the model keeps and the
    witness does not (a maximum independent set is one of many)."""

    eps: float
    adv_acc: float
    n_robust: int
    adv_acc_per_attack: dict[str, float] = dataclasses.field(default_factory=dict)
    optimal_acc: float | None = None
    randomized_optimal_acc: float | None = None
    lp_bound_acc: float | None = None
    witness_acc: float | None = None
    n_kept: int | None = None
    n_conflicts: int | None = None
    solved: bool | None = None
    avoidable_errors: int | None = None
    beyond_witness: int | None = None


@dataclasses.dataclass
class Achievable:
    """Where the bounds of a curve come from: ``source`` ``computed`` or ``record`` (``record``: the
    bounds record's folder), on ``n_points`` test points; their ``separation`` (None: above
    ``2 max(eps)``), ``threshold_eps`` (half of it) and the search engine."""

    source: str
    n_points: int
    separation: float | None
    threshold_eps: float | None
    engine: str = ""
    record: str | None = None
    seconds: float | None = None


@dataclasses.dataclass
class EvalResult:
    """What an evaluation found, per split; with several radii (or bounds), ``curve`` holds the
    test points' robust accuracy at each, beside the data's optimum when ``achievable`` is set."""

    model: ModelSummary
    dataset: str
    norm: str
    eps: float
    attacks: list[str]
    gaps: Gaps
    train: SplitEvaluation | None = None
    test: SplitEvaluation | None = None
    warnings: list[str] = dataclasses.field(default_factory=list)
    curve: list[CurvePoint] = dataclasses.field(default_factory=list)
    achievable: Achievable | None = None

    def split(self, name: str) -> SplitEvaluation | None:
        return {"train": self.train, "test": self.test}[name]


def _split_from_v1(s: Any) -> Any:
    return None if not s else {k: s.get(k) for k in ("n", "clean_acc", "adv_acc", "adv_acc_per_attack",
                                                      "lipschitz_mean", "lipschitz_paper_mean") if k in s}


def _result_from_v1(res: dict[str, Any]) -> dict[str, Any]:
    out = {k: res.get(k) for k in ("model", "dataset", "norm", "eps", "attacks")}
    out["model"] = {k: out["model"].get(k) for k in ("name", "arch", "checkpoint", "n_params")}
    out.update(train=_split_from_v1(res.get("train")), test=_split_from_v1(res.get("test")),
               gaps=res.get("gaps") or {}, warnings=res.get("warnings") or [])
    return out


@dataclasses.dataclass
class EvaluationRecord(Record):
    """Kind ``evaluate``: per-point arrays in ``arrays.npz`` (``{split}_labels``, ``{split}_correct``,
    ``{split}_adv_correct[_<attack>]``, ``{split}_lipschitz[_paper]``; with a curve, per radius
    ``k`` of ``result.curve`` (:func:`curve_name`): ``test_adv_correct[_<attack>]_eKK`` and, with
    bounds, ``test_kept_eKK`` (the witness' points) and ``test_avoidable_eKK``)."""

    KIND = "evaluate"

    config: EvaluationConfig
    result: EvalResult

    @property
    def constructed(self) -> bool:
        """Whether the evaluated model is the constructed classifier of :mod:`lipschitz_construct`."""
        return self.config.model.arch == "constructed"

    @property
    def has_curve(self) -> bool:
        """Whether the record holds a robust-accuracy curve (several radii, or bounds)."""
        return bool(self.result.curve)

    @classmethod
    def key_for(cls, config: Any, version: str | None = None) -> str:
        """Keyed by :meth:`EvaluationConfig.identity` (single-radius keys as before curves existed)."""
        return super().key_for(config.identity() if isinstance(config, EvaluationConfig) else config, version)

    @classmethod
    def folder_name(cls, config: EvaluationConfig, key: str) -> str:
        curve = config.curve_eps
        eps = f"{min(curve):g}-{max(curve):g}" if curve and len(curve) > 1 else f"{config.eps:g}"
        name = f"{slug(config.model.name)}_{config.norm}_eps{eps}"
        if config.data.subset:
            name += f"_subset{config.data.subset}" + (f"_seed{config.data.seed}" if config.data.seed else "")
        return f"{config.data.dataset}/{name}-{key[:8]}"

    @classmethod
    def upgrade(cls, data: dict[str, Any]) -> dict[str, Any]:
        c, res = data["config"], data["result"]
        lip = c.get("lipschitz")
        model = c.get("model") or {}
        subset = c.get("subset_of_dataset", c.get("subset"))
        config = {
            "model": {"name": model.get("name", ""), "arch": model.get("arch"),
                      "checkpoint_sha256": c.get("checkpoint_sha256"), "config": model.get("config") or {}},
            "data": {"dataset": c.get("dataset", ""), "fingerprint": c.get("data_fingerprint") or "",
                     "image_shape": [], "n_train": (res.get("train") or {}).get("n", 0),
                     "n_test": (res.get("test") or {}).get("n", 0), "subset": subset, "seed": c.get("seed", 0)},
            "eps": c["eps"], "norm": c["norm"], "attacks": c.get("attacks") or [],
            "lipschitz": None if not lip else {"modes": lip["modes"], "eps": lip["eps"], "steps": lip["steps"],
                                               "step_size": lip["step_size"],
                                               "paper_clip_start": bool(lip.get("paper_clip_start", False))},
            "splits": c.get("splits") or ["train", "test"], "seed": c.get("seed", 0),
            "batch_size": c.get("batch_size", 128), "device": c.get("device", "cpu"),
            "train_points": c.get("train_points")}
        return upgrade_envelope(data, config, _result_from_v1(res))


def curve_name(name: str, k: int) -> str:
    """The array ``name`` at the ``k``-th radius of a curve: ``test_adv_correct_e03``."""
    return f"{name}_e{k:02d}"


# -- training ---------------------------------------------------------------------------------------
@dataclasses.dataclass
class EpochStats:
    """One epoch of training: mean loss, the fixed monitor subset's clean and PGD accuracy, the
    batches' accuracies, seconds and the learning rate used."""

    epoch: int
    loss: float
    train_clean_acc: float
    train_adv_acc: float
    seconds: float
    lr: float
    batch_clean_acc: float | None = None
    batch_adv_acc: float | None = None


@dataclasses.dataclass
class TrainResult:
    history: list[EpochStats]
    epochs_completed: int
    device_used: str
    data_fingerprint: str
    train_points: int
    checkpoint: str
    evaluation: EvalResult | None = None


@dataclasses.dataclass
class TrainingRecord(Record):
    """Kind ``training``: one run. Its folder is ``<run name>-<key>`` below its group (a grid's name):
    every setting that changes the result is in the key, so two configurations never share a record."""

    KIND = "training"

    config: TrainConfig
    result: TrainResult

    @classmethod
    def key_for(cls, config: Any, version: str | None = None) -> str:
        """Keyed by the configuration's identity: where the run executes (``device``) does not count."""
        return super().key_for(config.identity() if isinstance(config, TrainConfig) else config, version)

    @classmethod
    def folder_name(cls, config: TrainConfig, key: str) -> str:
        """``<run name>-<key>``: two configurations never share a folder, whatever their names."""
        return f"{safe_name(config.name, 'run name')}-{key[:8]}"

    @classmethod
    def upgrade(cls, data: dict[str, Any]) -> dict[str, Any]:
        res = dict(data["result"])
        ev = res.get("evaluation")
        res["evaluation"] = None if not ev else _result_from_v1(ev)
        res["history"] = [{k: e.get(k) for k in ("epoch", "loss", "train_clean_acc", "train_adv_acc", "seconds",
                                                 "lr", "batch_clean_acc", "batch_adv_acc") if k in e}
                          for e in res.get("history") or []]
        return upgrade_envelope(data, dict(data["config"]), res)


def finished_record(folder: str | os.PathLike | None, cfg: TrainConfig) -> TrainingRecord | None:
    """The verified training record in ``folder`` made with ``cfg`` (runtime fields aside)."""
    return None if folder is None else reusable(TrainingRecord, folder, cfg)


__all__ = ["Achievable", "AchievableSettings", "CurvePoint", "EpochStats", "EvalResult", "EvaluationConfig", "EvaluationRecord", "Gaps", "LipschitzSettings",
           "ModelSpec", "ModelSummary", "SplitEvaluation", "TrainResult", "TrainingRecord", "curve_name", "finished_record"]
