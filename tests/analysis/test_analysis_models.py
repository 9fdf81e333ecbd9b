"""analysis.models: the paper's architectures, dropout semantics, Normalize, model checks."""
from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from analysis.models import (ARCHITECTURES, CNN001_OFFICIAL_DROPOUT, Normalize, build_model, check_model,
                             count_parameters, resolve_dropout)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _active_dropouts(model: nn.Module) -> list[float]:
    ps = [m.p for m in model.modules() if isinstance(m, (nn.Dropout, nn.Dropout2d)) and m.p > 0]
    ps += [m.drop_rate for m in model.modules() if getattr(m, "drop_rate", 0) > 0]
    return ps


def test_architecture_names():
    assert ARCHITECTURES == ("cnn001", "cnn002", "wrn-40-10", "resnet50")


def test_cnn001_matches_the_official_layers():
    m = build_model("cnn001", in_channels=1, num_classes=10, input_size=28)
    assert m.fc1.in_features == 9216 and m.fc1.out_features == 128 and m.fc2.out_features == 10
    assert (m.conv1.in_channels, m.conv1.out_channels, m.conv2.out_channels) == (1, 32, 64)
    # the official network's parameter count (PyTorch's MNIST example layout)
    assert count_parameters(m) == 1_199_882
    assert m(torch.rand(2, 1, 28, 28)).shape == (2, 10)


def test_cnn001_has_no_relu_after_conv2_by_default():
    torch.manual_seed(0)
    faithful = build_model("cnn001", in_channels=1, num_classes=10, input_size=28).eval()
    textbook = build_model("cnn001", in_channels=1, num_classes=10, input_size=28, relu_after_conv2=True).eval()
    textbook.load_state_dict(faithful.state_dict())
    x = torch.rand(3, 1, 28, 28)
    # the official forward, written out
    h = F.max_pool2d(faithful.conv2(F.relu(faithful.conv1(x))), 2).flatten(1)
    ref = faithful.fc2(F.relu(faithful.fc1(h)))
    torch.testing.assert_close(faithful(x), ref)
    assert not torch.allclose(faithful(x), textbook(x))


def test_dropout_semantics():
    assert resolve_dropout("cnn001", 0) == (0.0, 0.0)
    assert resolve_dropout("cnn001", False) == (0.0, 0.0)
    assert resolve_dropout("cnn001", True) == CNN001_OFFICIAL_DROPOUT == (0.25, 0.5)
    assert resolve_dropout("cnn001", 0.5) == (0.25, 0.5)
    assert resolve_dropout("cnn001", (0.1, 0.3)) == (0.1, 0.3)
    assert resolve_dropout("cnn002", True) == 0.5
    assert resolve_dropout("wrn-40-10", 0.2) == 0.2
    with pytest.raises(ValueError, match="ambiguous"):
        resolve_dropout("resnet50", True)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        resolve_dropout("cnn002", 1.0)
    with pytest.raises(ValueError, match="cnn001 only"):
        resolve_dropout("cnn002", (0.1, 0.2))


def test_dropout_zero_means_no_active_dropout():
    m = build_model("cnn001", in_channels=1, num_classes=10, input_size=28, dropout=0.0).train()
    assert _active_dropouts(m) == []
    x = torch.rand(4, 1, 28, 28)
    torch.testing.assert_close(m(x), m(x))  # deterministic even in train mode
    d = build_model("cnn001", in_channels=1, num_classes=10, input_size=28, dropout=True)
    assert (d.dropout1.p, d.dropout2.p) == (0.25, 0.5)
    assert isinstance(d.dropout1, nn.Dropout2d)  # channel-wise on the conv features, as official


def test_cnn002_layers_and_input_sizes():
    m = build_model("cnn002", in_channels=1, num_classes=10, input_size=28, dropout=0.5)
    assert m.classifier.fc1.in_features == 64 * 4 * 4
    assert m.classifier.drop.p == 0.5
    assert [l.out_features for l in (m.classifier.fc1, m.classifier.fc2, m.classifier.fc3)] == [200, 200, 10]
    assert float(m.classifier.fc3.weight.detach().abs().sum()) == 0.0  # official zero init of the last layer
    c = build_model("cnn002", in_channels=3, num_classes=100, input_size=32)
    assert c(torch.rand(2, 3, 32, 32)).shape == (2, 100)
    with pytest.raises(ValueError, match="too small"):
        build_model("cnn002", in_channels=1, num_classes=10, input_size=8)


def test_wide_resnet_small_and_dropout_inside_blocks():
    m = build_model("wrn-40-10", in_channels=1, num_classes=7, input_size=28, dropout=0.5,
                    depth=10, widen_factor=1)
    x = torch.rand(3, 1, 28, 28)
    assert m(x).shape == (3, 7)
    blocks = [b for b in m.modules() if type(b).__name__ == "BasicBlock"]
    assert len(blocks) == 3 and all(b.drop_rate == 0.5 for b in blocks)
    m.eval()
    torch.testing.assert_close(m(x), m(x))
    m.train()
    assert not torch.equal(m(x), m(x))
    with pytest.raises(ValueError, match="depth"):
        build_model("wrn-40-10", in_channels=3, num_classes=10, input_size=32, depth=12)


def test_wrn_40_10_size():
    m = build_model("wrn-40-10", in_channels=3, num_classes=10, input_size=32)
    # WRN-40-10 on CIFAR-10: 55.8M parameters (the official file's unused sub_block1 left out)
    assert 55_000_000 < count_parameters(m) < 56_500_000
    assert sum(isinstance(b, nn.Module) and type(b).__name__ == "BasicBlock" for b in m.modules()) == 18


def test_resnet50_dropout_skips_the_first_block_of_each_stage():
    m = build_model("resnet50", in_channels=3, num_classes=9, input_size=64, dropout=0.2)
    assert 23_400_000 < count_parameters(m) < 23_600_000
    for layer in (m.layer1, m.layer2, m.layer3, m.layer4):
        rates = [b.drop_rate for b in layer]
        assert rates[0] == 0.0 and all(r == 0.2 for r in rates[1:])
    assert m.eval()(torch.rand(1, 3, 64, 64)).shape == (1, 9)


def test_build_model_errors():
    with pytest.raises(ValueError, match="Unknown architecture 'vgg'.*cnn001"):
        build_model("vgg", in_channels=1, num_classes=10, input_size=28)
    with pytest.raises(TypeError, match="unknown option.*widen_factor"):
        build_model("cnn001", in_channels=1, num_classes=10, input_size=28, widen_factor=2)
    with pytest.raises(ValueError, match="num_classes"):
        build_model("cnn001", in_channels=1, num_classes=1, input_size=28)
    assert isinstance(build_model("WRN_40_10", in_channels=3, num_classes=10, input_size=32, depth=10,
                                  widen_factor=1), nn.Module)


def test_normalize_wrapper():
    inner = nn.Sequential(nn.Flatten(), nn.Linear(12, 3))
    mean, std = [0.5, 0.4, 0.3], [0.2, 0.25, 0.3]
    wrapped = Normalize(inner, mean=mean, std=std)
    x = torch.rand(2, 3, 2, 2)
    ref = inner((x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1))
    torch.testing.assert_close(wrapped(x), ref)
    with pytest.raises(ValueError, match="positive"):
        Normalize(inner, mean=[0.0], std=[0.0])


def test_check_model_warnings():
    x = torch.rand(4, 1, 8, 8)
    good = nn.Sequential(nn.Flatten(), nn.Linear(64, 10)).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert check_model(good, x) == []
    with pytest.warns(UserWarning, match="train mode"):
        check_model(nn.Sequential(nn.Flatten(), nn.Linear(64, 10)).train(), x)
    with pytest.warns(UserWarning, match="probabilities"):
        check_model(nn.Sequential(nn.Flatten(), nn.Linear(64, 10), nn.Softmax(dim=1)).eval(), x)

    class Noisy(nn.Module):
        def forward(self, x):
            return x.flatten(1)[:, :10] + torch.randn(len(x), 10)

    with pytest.warns(UserWarning, match="not deterministic"):
        check_model(Noisy().eval(), x)
    with pytest.raises(ValueError, match="logits of shape"):
        check_model(nn.Identity(), x)
    with pytest.raises(ValueError, match="3 classes"):
        check_model(good, x, num_classes=3)


def test_check_model_restores_train_mode():
    m = build_model("cnn001", in_channels=1, num_classes=10, input_size=8, dropout=True).train()
    with pytest.warns(UserWarning):
        check_model(m, torch.rand(2, 1, 8, 8))
    assert all(mod.training for mod in m.modules())
