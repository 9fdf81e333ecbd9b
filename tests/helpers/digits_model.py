"""A tiny cnn001 trained for a few steps on the embedded digits (8x8): robust on some points, not all."""
from __future__ import annotations


def trained_digits_cnn(x_train, y_train, *, steps: int):
    """cnn001 (8x8 input, 10 classes) after ``steps`` Adam steps of 128 points (seed 0), in eval mode."""
    import torch
    from torch import nn

    from analysis.models import build_model

    torch.manual_seed(0)
    model = build_model("cnn001", in_channels=1, num_classes=10, input_size=8)
    x, y = torch.tensor(x_train, dtype=torch.float32), torch.tensor(y_train)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for i in range(steps):
        b = torch.arange(i * 128, (i + 1) * 128) % len(x)
        opt.zero_grad()
        nn.functional.cross_entropy(model(x[b]), y[b]).backward()
        opt.step()
    return model.eval()
