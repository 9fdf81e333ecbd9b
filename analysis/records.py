"""Records of :mod:`analysis` (torch-free): a model's evaluation (kind ``evaluate``) and a training
run (kind ``training``)."""
from __future__ import annotations

import dataclasses
import os
from typing import Any

from separation.core.paths import safe_name, slug
from separation.core.records import DataSpec, Record, reusable, upgrade_envelope

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
class EvaluationConfig:
    """Everything that changes an evaluation's numbers."""

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
class EvalResult:
    """What an evaluation found, per split."""

    model: ModelSummary
    dataset: str
    norm: str
    eps: float
    attacks: list[str]
    gaps: Gaps
    train: SplitEvaluation | None = None
    test: SplitEvaluation | None = None
    warnings: list[str] = dataclasses.field(default_factory=list)

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
    ``{split}_adv_correct[_<attack>]``, ``{split}_lipschitz[_paper]``)."""

    KIND = "evaluate"

    config: EvaluationConfig
    result: EvalResult

    @property
    def constructed(self) -> bool:
        """Whether the evaluated model is the constructed classifier of :mod:`lipschitz_construct`."""
        return self.config.model.arch == "constructed"

    @classmethod
    def folder_name(cls, config: EvaluationConfig, key: str) -> str:
        name = f"{slug(config.model.name)}_{config.norm}_eps{config.eps:g}"
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


__all__ = ["EpochStats", "EvalResult", "EvaluationConfig", "EvaluationRecord", "Gaps", "LipschitzSettings",
           "ModelSpec", "ModelSummary", "SplitEvaluation", "TrainResult", "TrainingRecord", "finished_record"]
