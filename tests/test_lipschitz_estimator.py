"""analysis.lipschitz: the empirical local Lipschitz constant (ascent) and the official procedure."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis.lipschitz import estimate_local_lipschitz


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _linear(w: torch.Tensor) -> nn.Module:
    """f(x) = w . x on flattened images, one output, float64 (no rounding in the bound)."""
    lin = nn.Linear(w.numel(), 1, bias=False).double()
    with torch.no_grad():
        lin.weight.copy_(w.reshape(1, -1))
    return nn.Sequential(nn.Flatten(), lin)


@pytest.mark.parametrize("eps", [0.01, 0.1])
def test_linear_model_linf_within_one_percent_and_never_above(eps):
    g = torch.Generator().manual_seed(0)
    w = torch.randn(64, generator=g, dtype=torch.float64)
    x = 0.2 + 0.6 * torch.rand(30, 1, 8, 8, generator=g, dtype=torch.float64)  # away from the box edges
    exact = float(w.abs().sum())  # max |w.(x - x')| / ||x - x'||_inf = ||w||_1
    v = estimate_local_lipschitz(_linear(w), x, eps=eps, generator=g)  # defaults: 10 steps of 0.003
    assert v.shape == (30,) and v.dtype == np.float64
    assert v.min() >= 0.99 * exact
    assert v.max() <= exact * (1 + 1e-12)


def test_linear_model_l2_within_one_percent_and_never_above():
    g = torch.Generator().manual_seed(1)
    w = torch.randn(64, generator=g, dtype=torch.float64)
    x = 0.2 + 0.6 * torch.rand(30, 1, 8, 8, generator=g, dtype=torch.float64)
    exact = float(w.norm())  # the l2 case: ||w||_2
    v = estimate_local_lipschitz(_linear(w), x, eps=0.5, norm="l2", generator=g)
    assert v.min() >= 0.99 * exact
    assert v.max() <= exact * (1 + 1e-12)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), eps=st.sampled_from([1e-3, 0.05, 0.3, 1.0]),
       norm=st.sampled_from(["linf", "l2"]), steps=st.integers(0, 6))
def test_never_exceeds_the_true_constant_even_at_the_box_edges(seed, eps, norm, steps):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(12, generator=g, dtype=torch.float64)
    x = torch.rand(6, 3, 2, 2, generator=g, dtype=torch.float64)
    x = torch.where(x < 0.25, torch.zeros_like(x), torch.where(x > 0.75, torch.ones_like(x), x))
    exact = float(w.abs().sum() if norm == "linf" else w.norm())
    v, pts = estimate_local_lipschitz(_linear(w), x, eps=eps, norm=norm, steps=steps, step_size=0.01,
                                      generator=g, return_points=True)
    assert (v <= exact * (1 + 1e-12)).all()
    d = (pts - x).flatten(1)
    n = d.abs().max(1).values if norm == "linf" else d.norm(dim=1)
    assert float(n.max()) <= eps * (1 + 1e-9) and float(pts.min()) >= 0 and float(pts.max()) <= 1


def _official_reference(model, x, *, eps, norm, steps, step_size):
    """The official estimate_local_lip_v2 / local_lip procedure, re-derived step by step: a
    DataLoader of batch 16 over the points (creating its iterator draws one int64 from the global
    generator), per batch x_adv = x + 0.001 randn (global CPU generator); every step takes the
    gradient of loss = -mean(||f(x) - f(x_adv)||_1 / ||x - x_adv + 1e-6||), adds step_size *
    sign(grad) (descending the ratio), clips x_adv - x to [-eps, eps] coordinate-wise and x_adv to
    [0, 1]; the value is the ratio at the last iterate."""
    from torch.utils.data import DataLoader, TensorDataset

    p = float("inf") if norm == "linf" else 2.0
    out = []
    model.eval()
    for (xb,) in DataLoader(TensorDataset(x), batch_size=16, shuffle=False):
        x_adv = xb + 0.001 * torch.randn(xb.shape)
        for _ in range(steps):
            x_adv.requires_grad_(True)
            top = torch.flatten(model(xb), start_dim=1) - torch.flatten(model(x_adv), start_dim=1)
            down = torch.flatten(xb - x_adv, start_dim=1)
            loss = -(torch.norm(top, dim=1, p=1) / torch.norm(down + 1e-6, dim=1, p=p)).mean()
            loss.backward()
            x_adv = x_adv.detach() + step_size * x_adv.grad.sign()
            x_adv = xb + torch.clamp(x_adv - xb, -eps, eps)
            x_adv = torch.clamp(x_adv, 0, 1.0)
        with torch.no_grad():
            top = torch.flatten(model(xb), start_dim=1) - torch.flatten(model(x_adv), start_dim=1)
            down = torch.flatten(xb - x_adv, start_dim=1)
            out.append(torch.norm(top, dim=1, p=1) / torch.norm(down + 1e-6, dim=1, p=p))
    return torch.cat(out).double().numpy()


@pytest.mark.parametrize("norm", ["linf", "l2"])
@pytest.mark.parametrize("seed", [0, 11])
@pytest.mark.parametrize("eps", [0.1, 0.004])
def test_paper_mode_matches_the_official_procedure(norm, seed, eps):
    """Seed for seed: after torch.manual_seed(s) paper mode returns the official values, the
    start noise consumed exactly as the official DataLoader loop consumes it. At eps = 0.004 the
    ten steps of 0.003 reach the [-eps, eps] clip on both sides."""
    torch.manual_seed(3)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 5))
    x = torch.rand(40, 1, 8, 8)  # 40 = 16 + 16 + 8: exercises the official per-16 noise draws
    torch.manual_seed(seed)
    ours = estimate_local_lipschitz(model, x, eps=eps, norm=norm, mode="paper", batch_size=32)
    after_ours = torch.randn(3)
    torch.manual_seed(seed)
    ref = _official_reference(model, x, eps=eps, norm=norm, steps=10, step_size=0.003)
    np.testing.assert_array_equal(ours, ref)  # bit for bit
    assert torch.equal(after_ours, torch.randn(3))  # the same random numbers consumed, no more


def test_paper_mode_noise_is_the_official_stream():
    """The documented fact: the start noise equals torch.manual_seed(s); one int64 draw; then
    randn chunk by chunk of 16."""
    from analysis.lipschitz import _paper_noise, dataloader_seed_draw
    from separation.paper import LIPSCHITZ_START_STD

    torch.manual_seed(7)
    dataloader_seed_draw()
    ours = _paper_noise((40, 1, 2, 2), None)
    torch.manual_seed(7)
    torch.empty((), dtype=torch.int64).random_()
    want = LIPSCHITZ_START_STD * torch.cat([torch.randn(16, 1, 2, 2), torch.randn(16, 1, 2, 2), torch.randn(8, 1, 2, 2)])
    assert torch.equal(ours, want)


def test_paper_mode_descends_and_underestimates():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(64, generator=g, dtype=torch.float64)
    x = 0.2 + 0.6 * torch.rand(30, 1, 8, 8, generator=g, dtype=torch.float64)
    model = _linear(w)
    asc = estimate_local_lipschitz(model, x, eps=0.1, generator=torch.Generator().manual_seed(0))
    pap = estimate_local_lipschitz(model, x, eps=0.1, mode="paper", generator=torch.Generator().manual_seed(0))
    assert (pap < 0.2 * asc).all()  # the official update steps down the ratio


def test_modes_restored_uint8_and_errors():
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.Dropout(0.5), nn.Linear(8, 3)).train()
    x8 = torch.randint(0, 256, (5, 1, 4, 4), dtype=torch.uint8)
    v = estimate_local_lipschitz(model, x8, eps=0.05)
    assert v.shape == (5,) and np.isfinite(v).all() and (v > 0).all()
    assert all(m.training for m in model.modules())
    assert all(p.grad is None for p in model.parameters())
    x = x8.float() / 255
    with pytest.raises(ValueError, match="mode"):
        estimate_local_lipschitz(model, x, eps=0.1, mode="descent")
    with pytest.raises(ValueError, match="norm"):
        estimate_local_lipschitz(model, x, eps=0.1, norm="l1")
    with pytest.raises(ValueError, match="> 0"):
        estimate_local_lipschitz(model, x, eps=0.0)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        estimate_local_lipschitz(model, x + 1, eps=0.1)


def _constructed_classifier():
    lc = pytest.importorskip("lipschitz_construct")
    if not hasattr(lc, "LocallyLipschitzClassifier"):
        pytest.skip("lipschitz_construct.LocallyLipschitzClassifier is not available in this checkout yet")
    return lc.LocallyLipschitzClassifier


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_constructed_classifier_never_exceeds_n_classes_over_r(norm):
    cls = _constructed_classifier()
    rng = np.random.default_rng(0)
    centers = rng.uniform(0.2, 0.8, size=(3, 1, 4, 4))
    x_train = np.concatenate([np.clip(c + 0.02 * rng.standard_normal((20, 1, 4, 4)), 0, 1) for c in centers])
    y_train = np.repeat(np.arange(3), 20)
    clf = cls(norm=norm, r="auto").fit(x_train, y_train)
    module = clf.as_torch_module()
    bound = 3 / float(clf.r_)  # f_i = dist(x, X_i) / r_ is (1/r_)-Lipschitz: ||f(x)-f(x')||_1 <= 3/r_ ||x-x'||
    x = torch.tensor(x_train[::4], dtype=torch.float32)
    for mode in ("ascent", "paper"):
        v = estimate_local_lipschitz(module, x, eps=0.1, norm=norm, mode=mode,
                                     generator=torch.Generator().manual_seed(0))
        assert (v <= bound * (1 + 1e-4)).all(), (mode, v.max(), bound)


def test_a_nan_model_is_an_error_not_a_zero():
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    with torch.no_grad():
        model[1].weight.fill_(float("nan"))
    with pytest.raises(FloatingPointError, match=r"^the model's outputs are not finite \(NaN or inf\) inside the "
                       r"eps-ball: no Lipschitz estimate can be made \(a broken or diverged model\?\)\.$"):
        estimate_local_lipschitz(model, torch.rand(4, 1, 4, 4), eps=0.1)


def _ascent_written_out(model, x, *, eps, norm, steps, step_size, noise):
    """The ascent mode spelled out: start x + 0.001 noise projected; at every iterate the ratio
    ||f(x) - f(x')||_1 / ||x - x'||, for l-inf after the first also at the vertex x + ||d||_inf sign(d);
    the strictly larger ratio wins, iterate before vertex; then one projected ascent step."""
    from separation import ThreatModel
    from separation.paper import LIPSCHITZ_START_STD

    tm = ThreatModel(norm, eps)
    p = float("inf") if norm == "linf" else 2.0

    def ratio(xq):
        num = (model(x) - model(xq)).flatten(1).abs().sum(1)
        den = torch.linalg.vector_norm((x - xq).flatten(1), ord=p, dim=1)
        return torch.where(den > 0, num / den.clamp_min(1e-30), torch.zeros_like(num))

    xp = tm.project(x + LIPSCHITZ_START_STD * noise, x)
    best, best_x = torch.zeros(len(x), dtype=x.dtype), xp.clone()
    for t in range(steps + 1):
        xp = xp.detach().requires_grad_(True)
        r = ratio(xp)
        cands = [(r.detach(), xp.detach())]
        if norm == "linf" and t > 0:
            d = xp.detach() - x
            xv = tm.project(x + d.abs().flatten(1).amax(1).view(-1, 1, 1, 1) * d.sign(), x)
            with torch.no_grad():
                cands.append((ratio(xv), xv))
        for rc, pt in cands:
            better = rc > best
            best = torch.where(better, rc, best)
            best_x = torch.where(better.view(-1, 1, 1, 1), pt, best_x)
        if t < steps:
            (g,) = torch.autograd.grad(r.sum(), [xp])
            with torch.no_grad():
                xp = tm.ascent_step(xp, g, x, step_size)
    return best.detach(), best_x


@pytest.mark.parametrize("norm", ["linf", "l2"])
@pytest.mark.parametrize("steps", [0, 1, 3])
@pytest.mark.parametrize("use_generator", [True, False])
def test_ascent_mode_equals_its_definition_written_out(norm, steps, use_generator):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 6), nn.Tanh(), nn.Linear(6, 3)).double()
    x = 0.2 + 0.6 * torch.rand(7, 1, 4, 4, dtype=torch.float64)
    kw = dict(eps=0.05, norm=norm, steps=steps, step_size=0.01)
    gen = torch.Generator().manual_seed(3) if use_generator else None
    torch.manual_seed(5)
    noise = torch.randn(x.shape, generator=gen and torch.Generator().manual_seed(3), dtype=torch.float64)
    want_v, want_x = _ascent_written_out(model, x, noise=noise, **kw)
    torch.manual_seed(5)
    got_v, got_x = estimate_local_lipschitz(model, x, generator=gen, return_points=True, **kw)
    np.testing.assert_array_equal(got_v, want_v.numpy())
    torch.testing.assert_close(got_x, want_x, rtol=0, atol=0)
    if steps == 0 and norm == "linf":
        return
    # the global generator is used only when no generator is given
    torch.manual_seed(99)
    again = estimate_local_lipschitz(model, x, generator=torch.Generator().manual_seed(3), **kw)
    assert (np.array_equal(again, got_v)) == use_generator


def test_ascent_mode_keeps_the_vertex_when_it_is_better():
    """l-inf: on a linear model the vertex x + ||d|| sign(d) of a partial step has the full ratio."""
    g = torch.Generator().manual_seed(0)
    w = torch.randn(16, generator=g, dtype=torch.float64)
    x = 0.2 + 0.6 * torch.rand(5, 1, 4, 4, generator=g, dtype=torch.float64)
    v, pts = estimate_local_lipschitz(_linear(w), x, eps=0.05, steps=1, step_size=0.01, return_points=True,
                                      generator=torch.Generator().manual_seed(1))
    d = (pts - x).flatten(1)
    full = np.isclose(v, float(w.abs().sum()), rtol=1e-12)  # exactly ||w||_1: a vertex was chosen
    assert full.sum() >= 3
    assert torch.allclose(d[full].abs(), d[full].abs().amax(1, keepdim=True))  # every coordinate at full size


@pytest.mark.parametrize("clip", [True, False])
def test_paper_mode_clips_its_start_only_when_asked(clip):
    """Points at 0 and 1: the official start noise leaves [0, 1] unless clipped (no steps: the start
    is what is reported)."""
    from analysis.lipschitz import _paper_batch, _paper_noise

    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3)).double()
    x = torch.zeros(4, 1, 4, 4, dtype=torch.float64)
    x[2:] = 1.0
    _, pts = _paper_batch(model, x, eps=0.1, norm="linf", steps=0, step_size=0.003, top_norm=1,
                          generator=torch.Generator().manual_seed(2), clip_start=clip)
    start = x + _paper_noise(x.shape, torch.Generator().manual_seed(2))
    torch.testing.assert_close(pts, start.clamp(0, 1) if clip else start, rtol=0, atol=0)
    assert ((pts < 0) | (pts > 1)).any() != clip


def test_paper_mode_draws_its_noise_from_the_given_generator():
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    x = torch.rand(20, 1, 4, 4)
    runs = []
    for global_seed in (1, 2):
        torch.manual_seed(global_seed)
        runs.append(estimate_local_lipschitz(model, x, eps=0.1, mode="paper", steps=2,
                                             generator=torch.Generator().manual_seed(4)))
    np.testing.assert_array_equal(*runs)
