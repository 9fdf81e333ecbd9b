"""The paper's small CNNs: ``cnn001`` (MNIST) and ``cnn002`` (TRADES' small CNN).

Layer names follow the official code (yangarbiter/robust-local-lipschitz, ``lolip/models/torch_utils/
archs.py``) so that state dicts line up with it.
"""
from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn as nn
import torch.nn.functional as F

from separation.core.errors import InvalidInputError


def _side_after(size: int, ops: list[str], arch: str) -> int:
    """Spatial size after valid 3x3 convolutions ('c') and 2x2 max-pools ('p')."""
    s = size
    for op in ops:
        s = s - 2 if op == "c" else s // 2
        if s < 1:
            raise InvalidInputError(f"{arch}: input_size={size} is too small for this architecture "
                             f"(needs at least {_min_size(ops)} pixels per side).")
    return s


def _min_size(ops: list[str]) -> int:
    n = 1
    for op in reversed(ops):
        n = n + 2 if op == "c" else 2 * n
    return n


class CNN001(nn.Module):
    """The paper's MNIST network, as in the official code.

    ``conv(in->32, 3x3) -> ReLU -> conv(32->64, 3x3) -> [ReLU] -> max-pool 2 -> Dropout2d(p_conv)
    -> flatten (9216 for 28x28) -> fc 128 -> ReLU -> Dropout(p_fc) -> fc num_classes``.

    The official model has **no ReLU after the second convolution** (``relu_after_conv2=False``,
    the default, reproduces it); ``relu_after_conv2=True`` gives the textbook PyTorch MNIST net.
    The official code uses ``nn.Dropout2d`` for both dropouts; on the 2-D fc activations PyTorch
    (then and now) drops single units, which is what the ``nn.Dropout`` used here does.
    """

    def __init__(self, *, in_channels: int = 1, num_classes: int = 10, input_size: int = 28,
                 dropout: tuple[float, float] = (0.0, 0.0), relu_after_conv2: bool = False):
        super().__init__()
        p_conv, p_fc = dropout
        side = _side_after(input_size, ["c", "c", "p"], "cnn001")
        self.relu_after_conv2 = bool(relu_after_conv2)
        self.conv1 = nn.Conv2d(in_channels, 32, 3, 1)
        self.conv2 = nn.Conv2d(32, 64, 3, 1)
        self.dropout1 = nn.Dropout2d(p_conv)
        self.dropout2 = nn.Dropout(p_fc)
        self.fc1 = nn.Linear(64 * side * side, 128)
        self.fc2 = nn.Linear(128, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.conv1(x))
        x = self.conv2(x)
        if self.relu_after_conv2:
            x = F.relu(x)
        x = F.max_pool2d(x, 2)
        x = self.dropout1(x)
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = self.dropout2(x)
        return self.fc2(x)

    def extra_repr(self) -> str:
        return f"relu_after_conv2={self.relu_after_conv2}"


class CNN002(nn.Module):
    """TRADES' small CNN (the official ``CNN002``): conv 32, 32, pool, 64, 64, pool, fc 200, 200, classes.

    Dropout ``p`` sits after the first fc layer's ReLU, as in the official code (which always used
    0.5). Initialisation is the official one: Kaiming-normal convolutions with zero bias and a
    zero-initialised last layer.
    """

    def __init__(self, *, in_channels: int = 1, num_classes: int = 10, input_size: int = 28,
                 dropout: float = 0.0):
        super().__init__()
        side = _side_after(input_size, ["c", "c", "p", "c", "c", "p"], "cnn002")
        self._flat = 64 * side * side
        self.feature_extractor = nn.Sequential(OrderedDict([
            ("conv1", nn.Conv2d(in_channels, 32, 3)), ("relu1", nn.ReLU()),
            ("conv2", nn.Conv2d(32, 32, 3)), ("relu2", nn.ReLU()),
            ("maxpool1", nn.MaxPool2d(2, 2)),
            ("conv3", nn.Conv2d(32, 64, 3)), ("relu3", nn.ReLU()),
            ("conv4", nn.Conv2d(64, 64, 3)), ("relu4", nn.ReLU()),
            ("maxpool2", nn.MaxPool2d(2, 2)),
        ]))
        self.classifier = nn.Sequential(OrderedDict([
            ("fc1", nn.Linear(self._flat, 200)), ("relu1", nn.ReLU()),
            ("drop", nn.Dropout(dropout)),
            ("fc2", nn.Linear(200, 200)), ("relu2", nn.ReLU()),
            ("fc3", nn.Linear(200, num_classes)),
        ]))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)
                if m.bias is not None:
                    nn.init.constant_(m.bias, 0)
        nn.init.constant_(self.classifier.fc3.weight, 0)
        nn.init.constant_(self.classifier.fc3.bias, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.feature_extractor(x).reshape(-1, self._flat))


__all__ = ["CNN001", "CNN002"]
