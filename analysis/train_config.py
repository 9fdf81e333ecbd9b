"""One explicit configuration object per training run.

A :class:`TrainConfig` holds every hyper-parameter of a run: method and its parameters,
architecture, dataset, ε, norm, optimiser, schedule, epochs, batch size, augmentation, dropout,
seed, device and the evaluation settings. Nothing is encoded in a model-name string.

Configurations come from YAML or JSON files, optionally on top of a *profile*
(``configs/profiles/<name>.yaml``: per-dataset budgets such as ``paper`` or ``cpu``), and can be
overridden from the command line. Merge order, later wins::

    dataclass defaults < profile[dataset] < profile[dataset].by_method[method] < file < CLI

Method parameters live in ``method_params`` (a dict), always completed with the method's defaults
(the registry :data:`analysis.methods.METHODS`) and restricted to the keys that method understands, so that the stored
config states every value that was used. Step sizes of inner maximisations are given as fractions
of ε (``step_frac``), so a config stays valid when ε changes.
"""
from __future__ import annotations

import copy
import dataclasses
import json
import logging
import math
import os
from pathlib import Path
from typing import Any, Mapping

import yaml

from separation.core.config_files import check_field_types, deep_merge, load_mapping, parse_override
from separation.core.errors import ConfigError, UsageError
from separation.core.paths import safe_name
from separation.core.paper import ATTACK_NORMS, default_eps

from .architectures import ARCHITECTURES
from .methods import METHODS, complete_method_params

log = logging.getLogger(__name__)

NORMS = ATTACK_NORMS
OPTIMIZERS = ("sgd", "adam")
SCHEDULES = ("constant", "multistep", "cosine")
AUGMENTATIONS = ("none", "crop", "flip", "crop_flip")
REDUCTIONS = ("mean", "sum")


#: Config fields that say where a run executes but not what it computes; they are left out of
#: :meth:`TrainConfig.identity` (used to decide whether a run can be resumed or reused). The thread
#: count is *not* one: it changes floating-point results, so it is part of a run's identity.
RUNTIME_FIELDS = ("device",)



@dataclasses.dataclass
class TrainConfig:
    """Every setting of one training run (see ``docs/guide/training.md``).

    ``name`` defaults to a name derived from method, its main parameter and dropout.
    ``eps=None`` means the dataset's default radius (MNIST 0.1, CIFAR-10/SVHN 0.031, ...).
    ``train_subset`` trains on a fixed random subset of that many training points (CPU budgets);
    the evaluation's train-side numbers are then computed on points of that subset.
    ``lr`` applies to the reduced loss: with ``loss_reduction="mean"`` (default) it is the official
    sum-reduced learning rate times the batch size (identical SGD updates).
    ``evaluation`` holds the fields of :class:`analysis.model_metrics.EvalConfig`
    (checked against its signature before training starts).
    ``monitor_size``/``monitor_steps``: the fixed training points and PGD steps behind the
    per-epoch ``train_clean_acc``/``train_adv_acc`` log (0 points: no per-epoch attack).
    """

    name: str = ""
    profile: str = "custom"
    dataset: str = "mnist"
    train_subset: int | None = None
    subset_seed: int = 0
    arch: str = "cnn001"
    dropout: float = 0.0
    method: str = "natural"
    method_params: dict[str, Any] = dataclasses.field(default_factory=dict)
    eps: float | None = None
    norm: str = "linf"
    optimizer: str = "sgd"
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 0.0
    loss_reduction: str = "mean"
    schedule: str = "multistep"
    milestones: list[int] = dataclasses.field(default_factory=list)
    gamma: float = 0.1
    epochs: int = 10
    batch_size: int = 64
    augmentation: str = "none"
    crop_padding: int = 4
    channels_last: bool = False
    seed: int = 0
    deterministic: bool = True
    device: str = "auto"
    num_threads: int | None = None
    monitor_size: int = 512
    monitor_steps: int = 10
    evaluation: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        self._validate()
        if self.eps is None:
            self.eps = default_eps(self.dataset, self.norm)
            if self.eps is None:
                raise ConfigError(f"eps: no conventional radius for dataset {self.dataset!r} in {self.norm}; set eps.")
        self.method_params = complete_method_params(self.method, self.method_params)
        self.milestones = [int(m) for m in self.milestones]
        if not self.name:
            self.name = default_run_name(self.method, self.method_params, self.dropout)
        try:
            safe_name(self.name, "name")
        except UsageError as exc:
            raise ConfigError(f"{exc} (the run's name is its folder name)") from None

    # -- validation ----------------------------------------------------------------------------
    def _validate(self):
        check_field_types(self)

        def choice(field, allowed):
            value = getattr(self, field)
            if value not in allowed:
                raise ConfigError(f"{field}: {value!r} is not one of {', '.join(map(str, allowed))}.")

        choice("method", METHODS)
        choice("arch", ARCHITECTURES)
        choice("norm", NORMS)
        choice("optimizer", OPTIMIZERS)
        choice("schedule", SCHEDULES)
        choice("augmentation", AUGMENTATIONS)
        choice("loss_reduction", REDUCTIONS)
        for field in ("epochs", "batch_size"):
            if not isinstance(getattr(self, field), int) or getattr(self, field) < 1:
                raise ConfigError(f"{field}: must be a positive integer, got {getattr(self, field)!r}.")
        for field in ("monitor_size", "monitor_steps", "crop_padding", "seed", "subset_seed"):
            if not isinstance(getattr(self, field), int) or getattr(self, field) < 0:
                raise ConfigError(f"{field}: must be a non-negative integer, got "
                                  f"{getattr(self, field)!r}.")
        if self.train_subset is not None and (not isinstance(self.train_subset, int)
                                              or self.train_subset < 2):
            raise ConfigError(f"train_subset: must be null or an integer >= 2, got {self.train_subset!r}.")
        if not 0.0 <= float(self.dropout) < 1.0:
            raise ConfigError(f"dropout: must be in [0, 1), got {self.dropout!r}.")
        if not (isinstance(self.lr, (int, float)) and self.lr > 0 and math.isfinite(self.lr)):
            raise ConfigError(f"lr: must be a positive number, got {self.lr!r}.")
        if self.eps is not None and not (isinstance(self.eps, (int, float)) and self.eps >= 0):
            raise ConfigError(f"eps: must be a non-negative number or null, got {self.eps!r}.")
        if self.momentum < 0 or self.weight_decay < 0 or not 0 < self.gamma <= 1:
            raise ConfigError("momentum and weight_decay must be >= 0 and gamma in (0, 1].")
        if any(int(m) < 1 for m in self.milestones) or list(self.milestones) != sorted(self.milestones):
            raise ConfigError(f"milestones: must be increasing epochs >= 1, got {self.milestones!r}.")
        if not isinstance(self.method_params, Mapping):
            raise ConfigError("method_params: must be a mapping of parameter -> value.")
        if not isinstance(self.evaluation, Mapping):
            raise ConfigError("evaluation: must be a mapping of EvalConfig field -> value.")
        if self.num_threads is not None and self.num_threads < 1:
            raise ConfigError("num_threads: must be null or a positive integer.")
        if not (self.device == "auto" or self.device == "cpu" or self.device.startswith("cuda")
                or self.device == "mps"):
            raise ConfigError(f"device: {self.device!r}; use auto, cpu, cuda or cuda:N.")

    # -- conversion ----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A plain JSON/YAML-able dict with every field (the record's ``config``)."""
        return copy.deepcopy(dataclasses.asdict(self))

    def identity(self) -> dict[str, Any]:
        """:meth:`to_dict` without the runtime-only fields (:data:`RUNTIME_FIELDS`)."""
        d = self.to_dict()
        for f in RUNTIME_FIELDS:
            d.pop(f, None)
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "TrainConfig":
        """Build from a dict; unknown keys are an error that lists the valid ones."""
        data = dict(data)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"Unknown config field(s) {', '.join(unknown)}. Valid fields: "
                              f"{', '.join(sorted(known))}.")
        return cls(**data)

    def save(self, path: str | os.PathLike) -> Path:
        """Write the config as YAML (``.yaml``/``.yml``) or JSON (anything else)."""
        path = Path(path)
        from separation.core.records import atomic_write_bytes

        d = self.to_dict()
        if path.suffix in (".yaml", ".yml"):
            text = yaml.safe_dump(d, sort_keys=False)
        else:
            text = json.dumps(d, indent=2) + "\n"
        return atomic_write_bytes(path, text.encode())


def _fmt(v: float) -> str:
    return f"{v:g}"


def default_run_name(method: str, params: Mapping[str, Any], dropout: float) -> str:
    """E.g. ``natural``, ``trades-b6``, ``rst-l0.5``, ``at-drop0.5``: the method, the first letter
    and value of its main parameter (:attr:`analysis.methods.Method.main_param`), the dropout."""
    name = method
    main = METHODS[method].main_param if method in METHODS else None
    if main is not None:
        name += f"-{main[0][0]}{_fmt(params[main[0]])}"
    if dropout:
        name += f"-drop{_fmt(dropout)}"
    return name


# ---------------------------------------------------------------------------------------------
# files, profiles, overrides
# ---------------------------------------------------------------------------------------------
def config_dirs() -> list[Path]:
    """Where profile names are looked up: ``$ANALYSIS_CONFIG_DIR`` then the repository's ``configs/``."""
    dirs = []
    env = os.environ.get("ANALYSIS_CONFIG_DIR")
    if env:
        dirs.append(Path(env).expanduser())
    dirs.append(Path(__file__).resolve().parent.parent / "configs")
    return dirs


def find_profile(profile: str) -> Path:
    """``profile`` as a path, else ``<config dir>/profiles/<profile>.yaml``."""
    p = Path(profile).expanduser()
    if p.suffix in (".yaml", ".yml", ".json") or os.sep in profile:
        if not p.is_file():
            raise ConfigError(f"profile: file {p} not found.")
        return p
    tried = []
    for d in config_dirs():
        cand = d / "profiles" / f"{profile}.yaml"
        tried.append(str(cand))
        if cand.is_file():
            return cand
    raise ConfigError(f"profile: {profile!r} not found (looked at {', '.join(tried)}). Pass a path "
                      "to a profile file or set $ANALYSIS_CONFIG_DIR.")


def profile_defaults(profile: str, dataset: str, method: str) -> dict[str, Any]:
    """The profile's settings for ``dataset`` with its ``by_method[method]`` block merged in."""
    path = find_profile(profile)
    data = load_mapping(path)
    datasets = data.get("datasets") or {}
    if dataset not in datasets:
        raise ConfigError(f"profile {profile!r} ({path}) has no settings for dataset {dataset!r}; "
                          f"it covers: {', '.join(datasets) or 'nothing'}.")
    section = copy.deepcopy(datasets[dataset] or {})
    by_method = section.pop("by_method", None) or {}
    unknown = sorted(set(by_method) - set(METHODS))
    if unknown:
        raise ConfigError(f"{path}: by_method has unknown method(s) {', '.join(unknown)}.")
    return deep_merge(section, by_method.get(method) or {})


def build_config(*sources: Mapping[str, Any] | None, overrides: list[str] | tuple[str, ...] = ()) -> TrainConfig:
    """Merge config dicts (later wins) and ``field=value`` overrides on top of the named profile.

    The ``profile`` field (a name under ``configs/profiles/`` or a path) supplies the defaults for
    the run's dataset and method; ``profile: custom`` (or none) means dataclass defaults only.
    """
    merged: dict[str, Any] = {}
    for src in sources:
        if src:
            merged = deep_merge(merged, src)
    for text in overrides:
        merged = deep_merge(merged, parse_override(text))
    profile = merged.get("profile") or "custom"
    if profile != "custom":
        dataset = merged.get("dataset", TrainConfig.dataset)
        method = merged.get("method", TrainConfig.method)
        base = profile_defaults(profile, dataset, method)
        base.pop("profile", None)
        merged = deep_merge(base, merged)
        merged["profile"] = Path(profile).stem if (os.sep in profile or profile.endswith(
            (".yaml", ".yml", ".json"))) else profile
    return TrainConfig.from_dict(merged)


def load_config(path: str | os.PathLike | None = None, *, overrides: list[str] | tuple[str, ...] = (),
                extra: Mapping[str, Any] | None = None) -> TrainConfig:
    """A :class:`TrainConfig` from a YAML/JSON file (optional), then ``extra``, then overrides."""
    data = load_mapping(path) if path is not None else {}
    return build_config(data, extra, overrides=overrides)


__all__ = ["AUGMENTATIONS", "NORMS", "OPTIMIZERS", "REDUCTIONS", "RUNTIME_FIELDS", "SCHEDULES", "TrainConfig",
           "build_config", "config_dirs", "default_run_name", "find_profile", "load_config", "profile_defaults"]
