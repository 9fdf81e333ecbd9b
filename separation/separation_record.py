"""The separation record: its configuration, its summary statistics, its folder and command."""
from __future__ import annotations

import dataclasses
from typing import Any

from .core.errors import InvalidInputError
from .core.records import DataSpec, Record, upgrade_envelope
from .engines.cluster_run import ClusterRun


@dataclasses.dataclass
class Pair:
    """A point, its nearest training point of another class, their labels and distance."""

    index: int
    neighbor: int
    label: int
    neighbor_label: int | None
    distance: float


@dataclasses.dataclass
class EpsStat:
    """The separation against ``2 eps``: the minimum divided by it, and the fraction of points closer."""

    ratio_to_2eps: float
    fraction_below_2eps: float


@dataclasses.dataclass
class DupPair:
    """A test point byte-identical to a training point (any label)."""

    test_index: int
    train_index: int


@dataclasses.dataclass
class SplitSummary:
    """Statistics of one split's per-point separation (distances in [0, 1] pixel units)."""

    n: int
    min: float
    mean: float
    quantiles: dict[str, float]
    per_class_min: dict[str, float]
    closest_pair: Pair
    eps: dict[str, EpsStat]
    cross_class_duplicates: list[Pair]
    n_excluded: int
    min_excluding_duplicates: float | None
    mean_excluding_duplicates: float | None
    near_duplicates: list[Pair] | None = None

    def eps_stat(self, eps: float) -> EpsStat:
        """The entry for ``eps`` (matched as a number, not as its string form); InvalidInputError,
        naming the radii that were computed, for another ``eps``."""
        for k, v in self.eps.items():
            if abs(float(k) - float(eps)) <= 1e-12 * max(1.0, abs(float(eps))):
                return v
        raise InvalidInputError(f"eps={eps!r} was not computed for this record; its radii are "
                                f"{', '.join(self.eps) or 'none'} (compute it with --eps {eps!r})")


@dataclasses.dataclass
class SeparationSummary:
    """What ``python -m separation.compute`` reports: ``r`` (half the train--train minimum), the
    engine, and per split (train--train, test--train, test--test) the statistics;
    ``test_train_duplicates`` with a test split; ``cluster`` for a run on a Dask cluster."""

    norm: str
    engine: str
    r: float
    exclude_below: float
    train: SplitSummary
    test: SplitSummary | None = None
    test_train_duplicates: list[DupPair] = dataclasses.field(default_factory=list)
    test_test: SplitSummary | None = None
    cluster: ClusterRun | None = None

    def split(self, name: str) -> SplitSummary | None:
        """The summary of ``"train"``, ``"test"`` or ``"test-test"`` (None when not computed)."""
        return {"train": self.train, "test": self.test, "test-test": self.test_test}[name]

    @property
    def eps_values(self) -> list[float]:
        return [float(k) for k in self.train.eps]


@dataclasses.dataclass(frozen=True)
class SeparationConfig:
    """Everything that changes a separation result. The engine does not (every engine is exact)."""

    data: DataSpec
    norm: str
    splits: tuple[str, ...] = ("train", "test")
    eps: tuple[float, ...] = ()
    exclude_below: float = 0.0
    near_duplicates: float | None = None
    k: int = 1
    class_matrix: bool = False


@dataclasses.dataclass
class SeparationRecord(Record):
    """Kind ``separation``: per-point distances in ``arrays.npz`` (``train_distances``,
    ``train_neighbors``, ``y_train`` and, with a test split, the ``test_*`` arrays and
    ``test_train_duplicates``), summary statistics in ``result``."""

    KIND = "separation"

    config: SeparationConfig
    result: SeparationSummary

    @classmethod
    def folder_name(cls, config: SeparationConfig, key: str) -> str:
        d = config.data
        name = config.norm + d.subset_suffix()
        if d.labels.startswith("random(seed=") and d.labels.endswith(")"):
            name += f"-random-labels{d.labels[len('random(seed='):-1]}"
        elif d.labels != "given":
            name += "-labels-" + "".join(ch if ch.isalnum() else "-" for ch in d.labels)
        if config.k > 1:
            name += f"-k{config.k}"
        return f"{d.dataset}/{name}-{key[:8]}"

    @classmethod
    def upgrade(cls, data: dict[str, Any]) -> dict[str, Any]:
        c, res = data["config"], dict(data["result"])
        config = {"data": {"dataset": c["dataset"], "fingerprint": c["data_fingerprint"],
                           "image_shape": c["image_shape"], "n_train": c["n_train"], "n_test": c["n_test"],
                           "subset": c.get("subset"), "seed": c.get("seed", 0)},
                  "norm": c["norm"], "splits": c.get("splits", "train,test").split(","), "eps": c.get("eps") or [],
                  "exclude_below": c.get("exclude_below", 0.0), "near_duplicates": c.get("near_duplicates")}
        res.pop("seconds", None)
        return upgrade_envelope(data, config, res)


__all__ = ["DupPair", "EpsStat", "Pair", "SeparationConfig", "SeparationRecord", "SeparationSummary", "SplitSummary"]
