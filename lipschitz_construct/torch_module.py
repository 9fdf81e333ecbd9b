"""The classifier as a differentiable ``torch.nn.Module``: logits ``-f(x) = -dist(x, X_i) / r``.

The nearest point of every class is found exactly (without gradients) by the classifier's search;
the distance to it is then recomputed in torch, so that gradients flow:
``d/dx |x - x_nn|`` is the (sub)gradient of the distance to the class support wherever the nearest
point is unique. Attacks and local-Lipschitz estimators can use the module as they would a network.
"""
from __future__ import annotations

import torch
from torch import nn


class NearestClassLogits(nn.Module):
    """``forward(x)``: float ``(n, *input_shape)`` (or ``(n, d)``) in [0, 1] -> logits ``(n, n_classes)``.

    Logits are computed in ``x``'s dtype on ``x``'s device (move the module with ``.to(device)``);
    for float64 inputs they equal ``-clf.scores(x)`` exactly, for float32 up to float32 rounding.
    The exact search runs on the host in float64 and raises ``ValueError`` for values outside [0, 1].
    """

    def __init__(self, clf):
        super().__init__()
        self._clf = clf  # a plain attribute, not a submodule
        # a floating buffer first: tools that read a model's device/dtype from its first floating
        # buffer (e.g. analysis' model_device_dtype) then see float32 and follow .to()
        self.register_buffer("inv_r", torch.tensor(1.0 / float(clf.r_), dtype=torch.float32),
                             persistent=False)
        self.register_buffer("support", torch.from_numpy(clf.index_.support_), persistent=False)
        self.is_bytes = clf.index_.support_.dtype.name == "uint8"
        self.norm = clf.norm
        self.r = float(clf.r_)
        self.n_classes = int(len(clf.classes_))
        self.input_shape = tuple(clf.input_shape_)

    def extra_repr(self) -> str:
        return (f"norm={self.norm!r}, r={self.r:.6g}, n_classes={self.n_classes}, "
                f"support={tuple(self.support.shape)}")

    def nearest_points(self, x: torch.Tensor) -> torch.Tensor:
        """The exact nearest training point of every class: ``(n, n_classes, d)`` in ``x``'s dtype."""
        flat = self._flat(x)
        with torch.no_grad():
            q = flat.detach().cpu().numpy()  # in its own dtype: exact 8-bit grids are recognised
            _, idx = self._clf.class_distances(q, return_indices=True)
        idx_t = torch.as_tensor(idx, device=self.support.device)
        pts = self.support[idx_t]
        if self.is_bytes:
            pts = pts.to(torch.float64) / 255.0
        return pts.to(device=x.device, dtype=x.dtype)

    def _flat(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.is_tensor(x) or not torch.is_floating_point(x):
            raise TypeError("NearestClassLogits expects a floating-point torch tensor with values in [0, 1].")
        if x.dim() < 2:
            raise ValueError(f"expected a batch of shape (n, *{self.input_shape}), got shape {tuple(x.shape)}; "
                             "for a single point use x[None].")
        flat = x.reshape(x.shape[0], -1)
        d = self.support.shape[1]
        if flat.shape[1] != d:
            raise ValueError(f"input has {flat.shape[1]} features per point, the classifier {d} "
                             f"(shape {self.input_shape}).")
        return flat

    def distances(self, x: torch.Tensor) -> torch.Tensor:
        """Differentiable ``dist(x, X_i)``: ``(n, n_classes)`` in [0, 1] pixel units."""
        flat = self._flat(x)
        diff = flat[:, None, :] - self.nearest_points(x)
        if self.norm == "linf":
            return diff.abs().amax(dim=-1)
        if self.norm == "l1":
            return diff.abs().sum(dim=-1)
        return torch.linalg.vector_norm(diff, dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return -self.distances(x) / self.r


__all__ = ["NearestClassLogits"]
