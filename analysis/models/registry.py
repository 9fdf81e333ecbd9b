"""Where evaluated models come from: a checkpoint file, or the constructed classifier of the proof.

Every source returns an ``nn.Module`` (float images in [0, 1] -> logits) and the
:class:`~analysis.records.ModelSpec` that names it in records; :func:`analysis.evaluation.evaluate`
treats them all alike.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn as nn

from ..records import ModelSpec

SOURCES = ("checkpoint", "constructed")


class ClassColumns(nn.Module):
    """Puts a model's logit columns for ``classes`` (sorted labels) at the labels' indices among
    ``num_classes``; absent classes get a constant, very low logit (no gradient, no Lipschitz part)."""

    FILL = -1e9

    def __init__(self, model: nn.Module, classes, num_classes: int):
        super().__init__()
        self.model = model
        self.register_buffer("index", torch.as_tensor(np.asarray(classes), dtype=torch.long), persistent=False)
        self.num_classes = int(num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.model(x)
        out = torch.full((z.shape[0], self.num_classes), self.FILL, dtype=z.dtype, device=z.device)
        return out.index_copy(1, self.index.to(z.device), z)


def num_classes_of(dataset) -> int:
    ys = [dataset.y_train] + ([dataset.y_test] if getattr(dataset, "y_test", None) is not None else [])
    return int(max(len(getattr(dataset, "classes", []) or []), max(int(np.max(y)) for y in ys) + 1))


def constructed(dataset, *, norm: str = "linf", **_: Any) -> tuple[nn.Module, ModelSpec]:
    """The locally Lipschitz classifier of :mod:`lipschitz_construct`, fitted on ``dataset``'s
    training split (r: half its separation), as logits ``-dist(x, X_i) / r``."""
    from lipschitz_construct import LocallyLipschitzClassifier

    clf = LocallyLipschitzClassifier(norm=norm, r="auto").fit(dataset.x_train, dataset.y_train)
    module = clf.as_torch_module().eval()
    k = num_classes_of(dataset)
    if not np.array_equal(clf.classes_, np.arange(k)):  # a subset may lack classes: align the columns
        module = ClassColumns(module, clf.classes_, k).eval()
    return module, ModelSpec(name="constructed", arch="constructed",
                             config={"kind": "constructed", "norm": norm, "r": float(clf.r_),
                                     "fit_on": "evaluated train split", "n_fit": int(len(dataset.x_train)),
                                     "classes": [int(c) for c in clf.classes_]})


def checkpoint(dataset, *, path: str | Path, arch: str | None = None, **_: Any) -> tuple[nn.Module, ModelSpec]:
    """A network from a checkpoint file (:mod:`analysis.checkpoints`), its dimensions checked
    against ``dataset``; the spec carries the file's sha256 and the checkpoint's configuration."""
    from ..checkpoints import file_sha256, model_from_checkpoint

    c, h, w = dataset.image_shape
    if h != w:
        raise ValueError(f"{dataset.name}: images are {h}x{w}; the architectures expect square images.")
    model, cfg = model_from_checkpoint(path, arch=arch, in_channels=c, num_classes=num_classes_of(dataset),
                                       input_size=h)
    return model, ModelSpec(name=Path(path).stem, arch=cfg["arch"], checkpoint_sha256=file_sha256(path),
                            config=dict(cfg))


REGISTRY: dict[str, Callable[..., tuple[nn.Module, ModelSpec]]] = {"checkpoint": checkpoint,
                                                                   "constructed": constructed}


def load_model(source: str, dataset, **options: Any) -> tuple[nn.Module, ModelSpec]:
    """The model of ``source`` (see :data:`SOURCES`) for ``dataset``."""
    if source not in REGISTRY:
        raise ValueError(f"Unknown model source {source!r}; use one of {', '.join(REGISTRY)}.")
    return REGISTRY[source](dataset, **options)


__all__ = ["ClassColumns", "REGISTRY", "SOURCES", "checkpoint", "constructed", "load_model", "num_classes_of"]
