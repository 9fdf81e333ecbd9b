"""analysis.local_lipschitz: the empirical local Lipschitz constant (ascent) and the official procedure."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis.local_lipschitz import estimate_local_lipschitz


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
    from analysis.local_lipschitz import _paper_noise, dataloader_seed_draw
    from separation.core.paper import LIPSCHITZ_START_STD

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
    with pytest.raises(ValueError, match=r"^the model's outputs are not finite \(NaN or inf\) on 4 of the 4 points: the "
                       r"local Lipschitz estimate would be meaningless; no estimate was made\.$"):
        estimate_local_lipschitz(model, torch.rand(4, 1, 4, 4), eps=0.1)


def _tanh_model():
    """A small smooth float64 model on 1x4x4 inputs (3 logits), the same weights every call."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 6), nn.Tanh(), nn.Linear(6, 3)).double()


def _ascent_written_out(model, x, *, eps, norm, steps, step_size, noise, top_p=1.0):
    """The ascent mode spelled out: start x + 0.001 noise projected; at every iterate the ratio
    ||f(x) - f(x')||_1 / ||x - x'||, for l-inf after the first also at the vertex x + ||d||_inf sign(d);
    the strictly larger ratio wins, iterate before vertex; then one projected ascent step."""
    from separation import ThreatModel
    from separation.core.paper import LIPSCHITZ_START_STD

    tm = ThreatModel(norm, eps)
    p = float("inf") if norm == "linf" else 2.0

    def ratio(xq):
        num = torch.linalg.vector_norm((model(x) - model(xq)).flatten(1), ord=top_p, dim=1)
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
    model = _tanh_model()
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
    from analysis.local_lipschitz import _paper_batch, _paper_noise

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


@pytest.mark.parametrize("top_norm, p", [(1, 1.0), ("l1", 1.0), (2, 2.0), ("l2", 2.0), ("linf", float("inf")),
                                          (float("inf"), float("inf"))])
def test_every_output_norm_is_the_one_named(top_norm, p):
    model = _tanh_model()
    x = 0.2 + 0.6 * torch.rand(4, 1, 4, 4, dtype=torch.float64)
    kw = dict(eps=0.05, norm="linf", steps=2, step_size=0.01)
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    want, _ = _ascent_written_out(model, x, noise=noise, top_p=p, **kw)
    got = estimate_local_lipschitz(model, x, top_norm=top_norm, generator=torch.Generator().manual_seed(3), **kw)
    np.testing.assert_array_equal(got, want.numpy())


def test_the_defaults_are_the_documented_ones():
    from separation.core.paper import LIPSCHITZ_STEP_SIZE, LIPSCHITZ_STEPS

    model = _tanh_model()
    x = torch.rand(130, 1, 4, 4, dtype=torch.float64)  # more than one default batch of 128
    explicit = dict(norm="linf", steps=LIPSCHITZ_STEPS, step_size=LIPSCHITZ_STEP_SIZE, mode="ascent",
                    batch_size=128, top_norm=1)
    for mode in ("ascent", "paper"):
        a = estimate_local_lipschitz(model, x, eps=0.1, generator=torch.Generator().manual_seed(1),
                                     **({} if mode == "ascent" else {"mode": "paper"}))
        b = estimate_local_lipschitz(model, x, eps=0.1, generator=torch.Generator().manual_seed(1),
                                     **{**explicit, "mode": mode}, clip_start=False, progress=False)
        np.testing.assert_array_equal(a, b)


def test_a_batch_draws_its_start_noise_in_turn():
    """Ascent: batch after batch, each start drawn from the generator for that batch."""
    model = _tanh_model()
    x = 0.2 + 0.6 * torch.rand(10, 1, 4, 4, dtype=torch.float64)
    kw = dict(eps=0.05, norm="l2", steps=1, step_size=0.01)
    g = torch.Generator().manual_seed(6)
    want = torch.cat([_ascent_written_out(model, x[i:i + 3], noise=torch.randn((len(x[i:i + 3]), 1, 4, 4), generator=g,
                                                                                 dtype=torch.float64), **kw)[0]
                      for i in range(0, 10, 3)])
    got = estimate_local_lipschitz(model, x, batch_size=3, generator=torch.Generator().manual_seed(6), **kw)
    np.testing.assert_array_equal(got, want.numpy())


def test_paper_mode_rounds_its_batches_to_the_official_16():
    """A batch of 20 is run as 32: the noise chunks stay those of the official loader."""
    torch.manual_seed(3)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 5))
    x = torch.rand(40, 1, 8, 8)
    torch.manual_seed(2)
    ours = estimate_local_lipschitz(model, x, eps=0.1, mode="paper", batch_size=20)
    torch.manual_seed(2)
    np.testing.assert_array_equal(ours, _official_reference(model, x, eps=0.1, norm="linf", steps=10, step_size=0.003))


def test_paper_mode_with_a_generator_draws_like_the_global_one():
    """Generator(s) gives what torch.manual_seed(s) gives: the loader's int64, then the noise."""
    model = _tanh_model()
    x = torch.rand(20, 1, 4, 4, dtype=torch.float64)
    torch.manual_seed(5)
    glob = estimate_local_lipschitz(model, x, eps=0.1, mode="paper", steps=2)
    torch.manual_seed(123)
    gen = estimate_local_lipschitz(model, x, eps=0.1, mode="paper", steps=2, generator=torch.Generator().manual_seed(5))
    np.testing.assert_array_equal(glob, gen)


def test_paper_mode_clip_start_through_the_public_call():
    model = _tanh_model()
    x = torch.zeros(3, 1, 4, 4, dtype=torch.float64)
    for clip in (False, True):
        _, pts = estimate_local_lipschitz(model, x, eps=0.1, mode="paper", steps=0, clip_start=clip,
                                          generator=torch.Generator().manual_seed(0), return_points=True)
        assert bool((pts < 0).any()) != clip


def test_inputs_are_converted_to_the_models_dtype_and_an_empty_batch_is_empty():
    model = _tanh_model()
    x8 = torch.randint(0, 256, (3, 1, 4, 4), dtype=torch.uint8)
    a = estimate_local_lipschitz(model, x8, eps=0.05, generator=torch.Generator().manual_seed(0))
    b = estimate_local_lipschitz(model, x8.double() / 255, eps=0.05, generator=torch.Generator().manual_seed(0))
    np.testing.assert_array_equal(a, b)
    v = estimate_local_lipschitz(model, torch.zeros(0, 1, 4, 4), eps=0.05)
    assert v.shape == (0,) and v.dtype == np.float64
    v, pts = estimate_local_lipschitz(model, torch.zeros(0, 1, 4, 4), eps=0.05, return_points=True)
    assert v.shape == (0,) and pts.shape == (0, 1, 4, 4)


def test_a_model_without_parameters_runs_on_the_cpu():
    class Square(nn.Module):
        def forward(self, x):
            return (x.flatten(1) ** 2)[:, :3]

    v = estimate_local_lipschitz(Square(), torch.rand(4, 1, 2, 2), eps=0.05, steps=2)
    assert v.shape == (4,) and (v > 0).all()
    x = torch.rand(4, 1, 2, 2)
    np.testing.assert_array_equal(
        estimate_local_lipschitz(Square(), x, eps=0.05, device="cpu", generator=torch.Generator().manual_seed(0)),
        estimate_local_lipschitz(Square(), x, eps=0.05, generator=torch.Generator().manual_seed(0)))


def test_progress_is_off_by_default_and_named_when_on(capsys):
    model = _tanh_model()
    x = torch.rand(4, 1, 4, 4, dtype=torch.float64)
    estimate_local_lipschitz(model, x, eps=0.05, steps=1)
    assert "local Lipschitz" not in capsys.readouterr().err
    estimate_local_lipschitz(model, x, eps=0.05, steps=1, mode="paper", progress=True)
    assert "local Lipschitz (paper)" in capsys.readouterr().err


@pytest.mark.parametrize("kw, err, match", [
    ({"steps": True}, ValueError, r"^steps must be an integer >= 0, got True\.$"),
    ({"steps": 1.5}, ValueError, r"^steps must be an integer >= 0, got 1\.5\.$"),
    ({"steps": -1}, ValueError, r"^steps must be an integer >= 0, got -1\.$"),
    ({"top_norm": 3}, ValueError, r"^top_norm must be 1, 2 or 'linf', got 3\.$"),
    ({"top_norm": "L1"}, ValueError, r"^top_norm must be 1, 2 or 'linf', got 'L1'\.$"),
    ({"step_size": -0.1}, ValueError, r"^step_size=-0.1 is not valid: pass a finite number >= 0"),
    ({"mode": "descent"}, ValueError, r"^Unknown mode 'descent': use 'ascent' \(correct maximisation\) or 'paper' "
                                      r"\(the official, descending procedure\)\.$"),
    ({"eps": 0.0}, ValueError, r"^eps must be > 0 for the local Lipschitz estimate \(the ball is a point\)\.$"),
    ({"norm": "l1"}, ValueError, r"^Unknown norm 'l1' for the Lipschitz estimate: use 'linf' or 'l2'\.$"),
])
def test_bad_arguments_say_what_is_allowed(kw, err, match):
    model = _tanh_model()
    with pytest.raises(err, match=match):
        estimate_local_lipschitz(model, torch.rand(2, 1, 4, 4, dtype=torch.float64), **{"eps": 0.1, **kw})


def test_paper_mode_rounds_its_batch_up_to_whole_noise_chunks():
    """The official noise comes in chunks of 16 examples: a batch of 20 runs as 32, so the stream
    (and the estimate) is that of batches of 16 or 32; up to float32 matmul rounding. Examples of
    9 values: torch's normal stream depends on how many values each draw asks for."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(9, 3), nn.Tanh(), nn.Linear(3, 3))
    x = torch.rand(40, 1, 3, 3, generator=torch.Generator().manual_seed(5))
    runs = [estimate_local_lipschitz(model, x, eps=0.1, mode="paper", steps=0, batch_size=b,
                                     generator=torch.Generator().manual_seed(6)) for b in (16, 20, 32)]
    for run in runs[1:]:
        np.testing.assert_allclose(run, runs[0], rtol=1e-5)


class _DeadUnit(nn.Module):
    """f(x) = x1 + 3 relu(x0): flat in x0 below 0, steep above (torch's relu'(0) is 0)."""

    def forward(self, x):
        x = x.flatten(1)
        return (x[:, 1] + 3 * torch.relu(x[:, 0]))[:, None]


def test_the_vertex_companion_keeps_coordinates_the_perturbation_left_at_zero():
    """The l-inf vertex is x + ||d|| sign(d): a coordinate where the start noise was clipped to
    the box (d = 0) stays put. At x0 = 0 about half the starts are clipped there: they keep the
    estimate 1, while the others find the steep side (4); moving x0 inward would give them 2 or more."""
    x = torch.tensor([[0.0, 0.5]], dtype=torch.float64).repeat(40, 1)
    est = estimate_local_lipschitz(_DeadUnit(), x, eps=0.1, steps=3, step_size=0.01,
                                   generator=torch.Generator().manual_seed(7))
    stayed = np.isclose(est, 1.0, rtol=1e-9)
    assert 5 < stayed.sum() < 35 and (est[~stayed] > 1.5).all()
