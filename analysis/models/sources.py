"""Where evaluated models come from: a checkpoint file, or the constructed classifier of the proof.

Every source returns an ``nn.Module`` (float images in [0, 1] -> logits) and the
:class:`~analysis.records.ModelSpec` that names it in records; :func:`analysis.model_metrics.evaluate_model`
treats them all alike.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

from separation.core.errors import InvalidInputError

from ..records import ModelSpec



def num_classes_of(dataset) -> int:
    ys = [dataset.y_train] + ([dataset.y_test] if getattr(dataset, "y_test", None) is not None else [])
    return int(max(len(getattr(dataset, "classes", []) or []), max(int(np.max(y)) for y in ys) + 1))


def constructed(dataset, *, norm: str = "linf", **_: Any):
    """The locally Lipschitz classifier of :mod:`lipschitz_construct`, fitted on ``dataset``'s
    training split (r: half its separation), as logits ``-dist(x, X_i) / r``."""
    from lipschitz_construct import LocallyLipschitzClassifier

    from .build import ClassColumns

    clf = LocallyLipschitzClassifier(norm=norm, r="auto").fit(dataset.x_train, dataset.y_train)
    module = clf.as_torch_module().eval()
    k = num_classes_of(dataset)
    if not np.array_equal(clf.classes_, np.arange(k)):  # a subset may lack classes: align the columns
        module = ClassColumns(module, clf.classes_, k).eval()
    return module, ModelSpec(name="constructed", arch="constructed",
                             config={"kind": "constructed", "norm": norm, "r": float(clf.r_),
                                     "fit_on": "evaluated train split", "n_fit": int(len(dataset.x_train)),
                                     "classes": [int(c) for c in clf.classes_]})


def checkpoint(dataset, *, path: str | Path, arch: str | None = None, **_: Any):
    """A network from a checkpoint file (:mod:`analysis.checkpoints`), its dimensions checked
    against ``dataset``; the spec is named by the training run (the checkpoint config's ``name``),
    else by the file, and carries the file's sha256 and the checkpoint's configuration."""
    from separation.core.records import sha256_file

    from ..checkpoints import model_from_checkpoint

    c, h, w = dataset.image_shape
    if h != w:
        raise InvalidInputError(f"{dataset.name}: images are {h}x{w}; the architectures expect square images.")
    model, cfg = model_from_checkpoint(path, arch=arch, in_channels=c, num_classes=num_classes_of(dataset),
                                       input_size=h)
    # a checkpoint of analysis.train knows its run's name (e.g. trades-b6); any other, its file's stem
    name = cfg.get("name") if isinstance(cfg.get("name"), str) and cfg.get("name") else Path(path).stem
    return model, ModelSpec(name=name, arch=cfg["arch"], checkpoint_sha256=sha256_file(path),
                            config=dict(cfg))


#: Every source of models, by name (``python -m analysis.evaluate --model NAME``).
REGISTRY: dict[str, Callable[..., tuple[Any, ModelSpec]]] = {"checkpoint": checkpoint, "constructed": constructed}
SOURCES = tuple(REGISTRY)


def load_model(source: str, dataset, **options: Any):
    """The model of ``source`` (see :data:`SOURCES`) for ``dataset``."""
    if source not in REGISTRY:
        raise InvalidInputError(f"Unknown model source {source!r}; use one of {', '.join(REGISTRY)}.")
    return REGISTRY[source](dataset, **options)


__all__ = ["REGISTRY", "SOURCES", "checkpoint", "constructed", "load_model", "num_classes_of"]
