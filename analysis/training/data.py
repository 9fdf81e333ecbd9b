"""The data of a training run: the (restricted) training split as tensors, augmentation."""
from __future__ import annotations

import dataclasses
import os
from typing import Any

import numpy as np
import torch

from separation.core.errors import InvalidInputError

from ..train_config import TrainConfig


@dataclasses.dataclass
class TrainData:
    """Float-convertible training/test tensors (uint8 or float in [0, 1]) and their provenance."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor | None
    y_test: torch.Tensor | None
    num_classes: int
    train_indices: np.ndarray
    fingerprint: str
    dataset: Any = None  # the separation.Dataset restricted to the training points

    @property
    def in_channels(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def input_size(self) -> int:
        return int(self.x_train.shape[-1])


def prepare_data(cfg: TrainConfig, *, data_root: str | os.PathLike | None = None, dataset=None) -> TrainData:
    """Load ``cfg.dataset`` (or use ``dataset``) and restrict it to ``cfg.train_subset`` points
    (``sort(default_rng(subset_seed).choice(n, train_subset))``)."""
    from separation.core.datasets import load_dataset

    if dataset is None:
        dataset = load_dataset(cfg.dataset, root=data_root)
    if dataset.x_train.ndim != 4:
        raise InvalidInputError(f"{cfg.dataset}: training needs images (n, C, H, W); got shape {dataset.x_train.shape}.")
    fingerprint = dataset.fingerprint()
    n = len(dataset.x_train)
    if cfg.train_subset is not None and cfg.train_subset > n:
        raise InvalidInputError(f"train_subset: {cfg.train_subset} is larger than the {n} training points of "
                         f"{cfg.dataset}; lower it or set it to null.")
    if cfg.train_subset is not None and cfg.train_subset < n:
        idx = np.sort(np.random.default_rng(cfg.subset_seed).choice(n, cfg.train_subset, replace=False))
    else:
        idx = np.arange(n)
    restricted = dataclasses.replace(dataset, x_train=dataset.x_train[idx], y_train=dataset.y_train[idx])
    ys = [dataset.y_train] + ([dataset.y_test] if dataset.y_test is not None else [])
    if any(int(y.min()) < 0 for y in ys):
        raise InvalidInputError(f"{cfg.dataset}: labels must be non-negative integers (class indices).")
    num_classes = max(len(dataset.classes or []), int(max(int(y.max()) for y in ys)) + 1)

    def tensor(a):
        if a is None:
            return None
        t = torch.from_numpy(np.ascontiguousarray(a))
        return t if t.dtype == torch.uint8 else t.float()

    return TrainData(cfg.dataset, tensor(restricted.x_train), torch.from_numpy(restricted.y_train).long(),
                     tensor(dataset.x_test), None if dataset.y_test is None else
                     torch.from_numpy(dataset.y_test).long(), num_classes, idx, fingerprint, restricted)


def to_float(x: torch.Tensor) -> torch.Tensor:
    return x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()


def augment(x: torch.Tensor, *, kind: str, padding: int, generator: torch.Generator) -> torch.Tensor:
    """Random crop (zero padding) and/or horizontal flip of a float batch; ``generator`` on CPU."""
    if kind == "none":
        return x
    n, _, h, w = x.shape
    if kind in ("crop", "crop_flip") and padding > 0:
        padded = torch.nn.functional.pad(x, (padding, padding, padding, padding))
        offs = torch.randint(0, 2 * padding + 1, (n, 2), generator=generator).tolist()
        x = torch.stack([padded[i, :, dy:dy + h, dx:dx + w] for i, (dy, dx) in enumerate(offs)])
    if kind in ("flip", "crop_flip"):
        flip = torch.rand(n, generator=generator) < 0.5
        if bool(flip.any()):
            x = x.clone()
            idx = flip.nonzero().flatten().to(x.device)
            x[idx] = x[idx].flip(-1)
    return x


__all__ = ["TrainData", "augment", "prepare_data", "to_float"]
