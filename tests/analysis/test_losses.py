"""The training losses on tiny models: definitions, inner attacks, one step decreases them."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from analysis.train_config import ConfigError
from analysis.inner_max import llr_inner_max, llr_official_inner_max, pgd_ce, trades_inner_max
from analysis.losses import LOSSES, RandomReplay, gr_loss, llr_loss, make_loss, natural_loss, trades_loss
from separation import ThreatModel

EPS = 0.1


pytestmark = pytest.mark.usefixtures("one_torch_thread")


class Tiny(nn.Module):
    """A small conv net on 1x8x8 images (smooth enough for finite differences, fast)."""

    def __init__(self, dropout: float = 0.0, classes: int = 3):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(4 * 6 * 6, classes)

    def forward(self, x):
        return self.fc(self.drop(torch.tanh(self.conv(x)).flatten(1)))


class ModeRecorder(nn.Module):
    """Records the train flag seen by each forward pass."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner
        self.seen: list[bool] = []

    def forward(self, x):
        self.seen.append(self.training)
        return self.inner(x)


def _batch(n=16, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, 8, 8, generator=g, dtype=dtype)
    y = torch.randint(0, 3, (n,), generator=g)
    return x, y


def _model(seed=0, dropout=0.0, dtype=torch.float32):
    torch.manual_seed(seed)
    return Tiny(dropout).to(dtype).train()


ALL = [("natural", {}), ("gr", {}), ("gr", {"direction": "dual"}), ("llr", {}),
       ("llr", {"variant": "official"}), ("at", {}), ("at", {"attack_mode": "eval"}),
       ("rst", {"lambda": 0.5}), ("rst", {"lambda": 2.0}), ("trades", {"beta": 1.0}),
       ("trades", {"beta": 6.0})]


@pytest.mark.parametrize("method,params", ALL, ids=[f"{m}-{p}" for m, p in ALL])
def test_one_step_decreases_the_loss(method, params):
    model = _model()
    x, y = _batch()
    loss = make_loss(method, params, eps=EPS)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)

    def value():
        torch.manual_seed(123)  # same inner-attack randomness before and after the step
        return float(loss(model, x, y).loss.detach())

    before = value()
    torch.manual_seed(123)
    opt.zero_grad()
    out = loss(model, x, y)
    out.loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    opt.step()
    after = value()
    assert after < before, (method, params, before, after)
    assert model.training  # every loss leaves the model in train mode


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_inner_attacks_stay_in_the_ball_and_box(norm):
    model = _model()
    x, y = _batch(32)
    x[:4] = 0.0  # points on the box's faces
    x[4:8] = 1.0
    eps = 0.1 if norm == "linf" else 0.5
    torch.manual_seed(0)
    outs = {
        "at": pgd_ce(model, x, y, eps=eps, norm=norm),
        "at-eval": pgd_ce(model, x, y, eps=eps, norm=norm, attack_mode="eval"),
        "trades": trades_inner_max(model, x, eps=eps, norm=norm),
        "llr": llr_inner_max(model, x, y, eps=eps, norm=norm),
        "llr-official": llr_official_inner_max(model, x, y, eps=eps, norm=norm),
    }
    for name, x_adv in outs.items():
        assert x_adv.shape == x.shape and not x_adv.requires_grad, name
        d = (x_adv.double() - x.double()).flatten(1)
        n = d.abs().max(1).values if norm == "linf" else d.norm(dim=1)
        assert float(n.max()) <= eps * (1 + 1e-5), (name, float(n.max()))
        assert float(x_adv.min()) >= 0 and float(x_adv.max()) <= 1, name
        if name != "llr-official":
            assert float(n.max()) > 0.5 * eps, (name, "the attack should move")


def test_inner_attacks_increase_their_objective():
    model = _model()
    x, y = _batch(32)
    torch.manual_seed(0)
    x_at = pgd_ce(model, x, y, eps=EPS, attack_mode="eval")
    with torch.no_grad():
        model.eval()
        assert F.cross_entropy(model(x_at), y) > F.cross_entropy(model(x), y)
        x_tr = trades_inner_max(model, x, eps=EPS)
        kl = F.kl_div(F.log_softmax(model(x_tr), 1), F.softmax(model(x), 1), reduction="batchmean")
        assert kl > 0
        model.train()


def test_attack_modes():
    """AT/RST attack in train mode (official) or eval mode; TRADES and LLR search in eval mode;
    the model's own flags are restored."""
    rec = ModeRecorder(Tiny(0.5)).train()
    x, y = _batch(8)
    pgd_ce(rec, x, y, eps=EPS, steps=3, attack_mode="train")
    assert rec.seen and all(rec.seen)
    rec.seen.clear()
    pgd_ce(rec, x, y, eps=EPS, steps=3, attack_mode="eval")
    assert rec.seen and not any(rec.seen)
    rec.seen.clear()
    trades_inner_max(rec, x, eps=EPS, steps=3)
    assert rec.seen and not any(rec.seen)
    rec.seen.clear()
    llr_inner_max(rec, x, y, eps=EPS, steps=2)
    assert rec.seen and not any(rec.seen)
    assert rec.training and rec.inner.drop.training
    rec.eval()
    pgd_ce(rec, x, y, eps=EPS, steps=1, attack_mode="train")
    assert not rec.training and not rec.inner.drop.training


def test_trades_definition():
    model = _model()
    x, y = _batch()
    torch.manual_seed(0)
    out = trades_loss(model, x, y, eps=EPS, beta=0.0)
    torch.manual_seed(0)
    nat = natural_loss(model, x, y)
    assert torch.allclose(out.loss, nat.loss)
    torch.manual_seed(0)
    out6 = trades_loss(model, x, y, eps=EPS, beta=6.0)
    assert out6.parts["kl"] > 0
    assert float(out6.loss.detach()) == pytest.approx(out6.parts["ce"] + 6 * out6.parts["kl"], rel=1e-5)
    with torch.no_grad():
        model.eval()
        p = F.softmax(model(x), 1)
        q_log = F.log_softmax(model(out6.x_adv), 1)
        model.train()
    kl_ref = (p * (p.log() - q_log)).sum(1).mean()
    assert out6.parts["kl"] == pytest.approx(float(kl_ref), rel=1e-4)


def test_rst_definition_and_reductions():
    model = _model()
    x, y = _batch()
    for lam in (0.5, 2.0):
        torch.manual_seed(1)
        out = make_loss("rst", {"lambda": lam}, eps=EPS)(model, x, y)
        assert float(out.loss.detach()) == pytest.approx(out.parts["ce"] + lam * out.parts["ce_adv"], rel=1e-5)
    torch.manual_seed(2)
    mean = make_loss("trades", {}, eps=EPS, reduction="mean")(model, x, y).loss
    torch.manual_seed(2)
    total = make_loss("trades", {}, eps=EPS, reduction="sum")(model, x, y).loss
    assert float(total.detach()) == pytest.approx(len(x) * float(mean.detach()), rel=1e-5)


def test_llr_intended_matches_its_formula():
    """ℓ(x) + λ|ℓ(x+δ) − ℓ(x) − δᵀ∇ℓ(x)| + μ|δᵀ∇ℓ(x)| with the gradient term differentiated."""
    model = _model(dtype=torch.float64)
    x, y = _batch(dtype=torch.float64)
    torch.manual_seed(0)
    out = llr_loss(model, x, y, eps=EPS, lam=4.0, mu=3.0)
    delta = out.x_adv - x
    xg = x.clone().requires_grad_(True)
    ce = F.cross_entropy(model(xg), y, reduction="none")
    g, = torch.autograd.grad(ce.sum(), [xg])
    ce_adv = F.cross_entropy(model(out.x_adv), y, reduction="none")
    lin = (delta * g).flatten(1).sum(1)
    ref = (ce + 4 * (ce_adv - ce - lin).abs() + 3 * lin.abs()).mean()
    assert float(out.loss.detach()) == pytest.approx(float(ref.detach()), rel=1e-9)
    assert out.parts["lin"] > 0 and out.parts["gamma"] > 0
    # the regulariser reaches the weights through the input gradient (double back-prop)
    model.zero_grad()
    (out.loss - natural_loss(model, x, y).loss).backward()
    assert model.conv.weight.grad.abs().sum() > 0


def test_llr_official_variant_is_ce_at_a_weak_point():
    model = _model()
    x, y = _batch()
    torch.manual_seed(0)
    out = llr_loss(model, x, y, eps=EPS, lam=4.0, mu=3.0, variant="official")
    assert out.parts["lin"] == 0.0
    with torch.no_grad():
        ref = F.cross_entropy(model(x), y) + 4 * F.cross_entropy(model(out.x_adv), y)
    assert float(out.loss.detach()) == pytest.approx(float(ref), rel=1e-5)


def test_gr_is_the_squared_directional_derivative():
    """With a small finite-difference step the TULIP penalty is |∇ℓ|²/2 (l2 direction) or
    |∇ℓ|₁²/2 (dual direction for l∞)."""
    model = _model(dtype=torch.float64)
    x, y = _batch(dtype=torch.float64)
    xg = x.clone().requires_grad_(True)
    ce = F.cross_entropy(model(xg), y, reduction="none")
    g, = torch.autograd.grad(ce.sum(), [xg])
    for direction, norm in (("l2", 2), ("dual", 1)):
        out = gr_loss(model, x, y, lam=1.0, fd_step=1e-5, direction=direction)
        expected = (g.flatten(1).norm(p=norm, dim=1) ** 2 / 2).mean()
        assert out.parts["penalty"] == pytest.approx(float(expected), rel=1e-3)


def test_same_dropout_mask_makes_finite_differences_meaningful():
    model = _model(dropout=0.5, dtype=torch.float64)
    x, y = _batch(dtype=torch.float64)
    torch.manual_seed(0)
    paired = gr_loss(model, x, y, fd_step=1e-5, same_dropout_mask=True).parts["penalty"]
    torch.manual_seed(0)
    unpaired = gr_loss(model, x, y, fd_step=1e-5, same_dropout_mask=False).parts["penalty"]
    assert paired < 10 and unpaired > 1e3 * paired


def test_random_replay_repeats_dropout_masks():
    drop = nn.Dropout(0.5).train()
    z = torch.ones(4, 100)
    rr = RandomReplay(torch.device("cpu"))
    a = drop(z)
    rr.replay()
    b = drop(z)
    assert torch.equal(a, b)
    assert not torch.equal(drop(z), a)


def test_make_loss_validates_parameters():
    with pytest.raises(ConfigError, match="beta"):
        make_loss("at", {"beta": 3}, eps=EPS)
    with pytest.raises(ConfigError, match="variant"):
        make_loss("llr", {"variant": "nope"}, eps=EPS)
    with pytest.raises(ConfigError, match="method"):
        make_loss("madry", {}, eps=EPS)
    assert set(LOSSES) == {"natural", "gr", "llr", "at", "rst", "trades"}


def test_eps_zero_means_no_perturbation():
    model = _model()
    x, y = _batch()
    torch.manual_seed(0)
    assert torch.equal(pgd_ce(model, x, y, eps=0.0), x)
    assert torch.equal(trades_inner_max(model, x, eps=0.0), x)
    assert torch.equal(ThreatModel("linf", 0.0).project(x + 0.3, x), x)


def _official_trades_loss(model, x_natural, y, *, step_size, epsilon, perturb_steps, beta):
    """The official TRADES loss (yaodongyu/TRADES, trades.py, l-inf), inline: the start noise drawn
    on the CPU and not clipped, the KL through nn.KLDivLoss(size_average=False)."""
    criterion_kl = nn.KLDivLoss(reduction="sum")
    model.eval()
    batch_size = len(x_natural)
    x_adv = x_natural.detach() + 0.001 * torch.randn(x_natural.shape).detach()
    for _ in range(perturb_steps):
        x_adv.requires_grad_()
        with torch.enable_grad():
            loss_kl = criterion_kl(F.log_softmax(model(x_adv), dim=1), F.softmax(model(x_natural), dim=1))
        grad = torch.autograd.grad(loss_kl, [x_adv])[0]
        x_adv = x_adv.detach() + step_size * torch.sign(grad.detach())
        x_adv = torch.min(torch.max(x_adv, x_natural - epsilon), x_natural + epsilon)
        x_adv = torch.clamp(x_adv, 0.0, 1.0)
    model.train()
    x_adv = torch.clamp(x_adv, 0.0, 1.0).requires_grad_(False)
    logits = model(x_natural)
    loss_natural = F.cross_entropy(logits, y)
    loss_robust = (1.0 / batch_size) * criterion_kl(F.log_softmax(model(x_adv), dim=1),
                                                    F.softmax(model(x_natural), dim=1))
    return loss_natural + beta * loss_robust, x_adv


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_trades_with_the_unclipped_start_is_the_official_loss(seed):
    """clip_start=False (the paper profile): the inner maximiser equals the official code's bit for
    bit on the same seed, points near 0 included (the official first gradient is taken at points
    below 0, which a clipped start never sees), and the loss equals it up to float rounding."""
    model = _model(seed)
    x, y = _batch(32, seed=seed)
    x[:8] = torch.where(x[:8] < 0.5, torch.zeros_like(x[:8]), x[:8])  # MNIST-like: many zero pixels
    torch.manual_seed(seed)
    ours = trades_loss(model, x, y, eps=0.1, beta=6.0, steps=10, step_frac=0.2, clip_start=False)
    torch.manual_seed(seed)
    ref_loss, ref_adv = _official_trades_loss(model, x, y, step_size=0.02, epsilon=0.1, perturb_steps=10, beta=6.0)
    assert torch.equal(ours.x_adv, ref_adv)
    assert float(ours.loss.detach()) == pytest.approx(float(ref_loss.detach()), rel=1e-6)
    torch.manual_seed(seed)
    clipped = trades_inner_max(model, x, eps=0.1, steps=10, step_frac=0.2, clip_start=True)
    assert not torch.equal(clipped, ref_adv)  # the default (clipped) start takes another path


@pytest.mark.parametrize("method", sorted(LOSSES))
def test_loss_function_defaults_are_the_config_defaults(method):
    """Called directly, a loss uses the same defaults as a config that leaves the parameter out."""
    import inspect

    from analysis.methods import METHODS

    fn, names = LOSSES[method]
    params = inspect.signature(fn).parameters
    for key, kw in names.items():
        assert params[kw].default == METHODS[method].defaults[key], (method, key)
    assert params["reduction"].default == "mean"
    assert "norm" not in params or params["norm"].default == "linf"


@pytest.mark.parametrize("call, match", [
    (lambda m, x, y: gr_loss(m, x, y, fd_step=0.0), r"GR fd_step must be > 0, got 0\.0"),
    (lambda m, x, y: gr_loss(m, x, y, fd_step=-1.0), r"GR fd_step must be > 0"),
    (lambda m, x, y: gr_loss(m, x, y, direction="linf"), r"GR direction must be 'l2' or 'dual', got 'linf'"),
    (lambda m, x, y: llr_loss(m, x, y, eps=EPS, variant="x"), r"LLR variant must be 'intended' or 'official'"),
    (lambda m, x, y: natural_loss(m, x, y, reduction="none"), r"reduction must be 'mean' or 'sum', got 'none'"),
])
def test_bad_loss_arguments_say_what_is_allowed(call, match):
    torch.manual_seed(0)
    model, x, y = Tiny(), torch.rand(2, 1, 8, 8), torch.tensor([0, 1])
    with pytest.raises(ValueError, match=match):
        call(model, x, y)


@pytest.mark.parametrize("direction, norm", [("l2", "linf"), ("dual", "linf"), ("dual", "l2")])
def test_gr_loss_equals_its_definition_written_out(direction, norm):
    """A large finite-difference step and lambda != 1, so that every term is visible: the loss is
    ce + lam * ((ce(x + h v) - ce(x)) / h)^2 / 2 with v = grad / |grad|_2, or sign(grad) for the
    dual direction of l-inf (the dual of l2 is l2 itself)."""
    model = _model(dtype=torch.float64)
    x, y = _batch(dtype=torch.float64)
    lam, h = 0.7, 0.3
    xg = x.clone().requires_grad_(True)
    logits = model(xg)
    ce = F.cross_entropy(logits, y, reduction="none")
    g, = torch.autograd.grad(ce.sum(), [xg])
    v = g.sign() if (direction, norm) == ("dual", "linf") else g / g.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
    with torch.no_grad():
        pen = ((F.cross_entropy(model(x + h * v), y, reduction="none") - ce) / h) ** 2 / 2
    for reduction, red in (("mean", torch.mean), ("sum", torch.sum)):
        out = gr_loss(model, x, y, norm=norm, lam=lam, fd_step=h, direction=direction, reduction=reduction)
        torch.testing.assert_close(out.loss, red(ce + lam * pen).detach(), rtol=1e-12, atol=0)
    assert out.parts == pytest.approx({"ce": float(ce.detach().mean()), "penalty": float(pen.mean())}, rel=1e-12)
    torch.testing.assert_close(out.clean_logits, logits.detach(), rtol=0, atol=0)
    assert out.loss.requires_grad


def test_gr_loss_of_a_flat_model_has_no_penalty_and_no_nan():
    """Where the loss gradient is zero the direction is zero (not 0/0)."""
    class Flat(nn.Module):
        def __init__(self):
            super().__init__()
            self.b = nn.Parameter(torch.tensor([0.5, -0.2, 0.1]))

        def forward(self, x):
            return self.b.expand(len(x), 3) + 0 * x.flatten(1)[:, :1]

    x, y = _batch()
    out = gr_loss(Flat(), x, y, lam=2.0, fd_step=0.5)
    assert torch.isfinite(out.loss) and out.parts["penalty"] == 0.0
    assert float(out.loss) == pytest.approx(float(F.cross_entropy(Flat()(x), y)), rel=1e-6)


def test_llr_official_passes_its_arguments_to_the_inner_maximiser():
    model = _model(dtype=torch.float64)
    x, y = _batch(dtype=torch.float64)
    kw = dict(eps=0.2, norm="l2", steps=3, step_frac=0.3, init_std=0.01)
    torch.manual_seed(4)
    want = llr_official_inner_max(model, x, y, **kw)
    torch.manual_seed(4)
    out = llr_loss(model, x, y, lam=0.5, variant="official", **kw)
    torch.testing.assert_close(out.x_adv, want, rtol=0, atol=0)
    with torch.no_grad():
        clean, adv = model(x), model(want)
    torch.testing.assert_close(out.clean_logits, clean, rtol=0, atol=0)
    torch.testing.assert_close(out.adv_logits, adv, rtol=0, atol=0)
    ce, ce_adv = F.cross_entropy(clean, y), F.cross_entropy(adv, y)
    assert out.parts == pytest.approx({"ce": float(ce), "gamma": float(ce_adv), "lin": 0.0}, rel=1e-12)
    assert float(out.loss) == pytest.approx(float(ce + 0.5 * ce_adv), rel=1e-12)


@pytest.mark.parametrize("same_mask", [True, False])
def test_llr_intended_equals_its_definition_written_out(same_mask):
    """ce + lam |ce(x_adv) - ce(x) - <delta, grad>| + mu |<delta, grad>|, with x_adv from the inner
    maximiser called with every argument, and the dropout masks of the clean pass replayed at x_adv
    only when asked."""
    model = _model(dropout=0.3, dtype=torch.float64)
    x, y = _batch(dtype=torch.float64)
    kw = dict(eps=0.2, norm="l2", steps=3, step_frac=0.3, init_std=0.01)
    torch.manual_seed(6)
    x_adv = llr_inner_max(model, x, y, **kw)
    state = torch.get_rng_state()
    xg = x.clone().requires_grad_(True)
    ce = F.cross_entropy(model(xg), y, reduction="none")
    g, = torch.autograd.grad(ce.sum(), [xg])
    if same_mask:
        torch.set_rng_state(state)
    with torch.no_grad():
        ce_adv = F.cross_entropy(model(x_adv), y, reduction="none")
    lin = ((x_adv - x) * g).flatten(1).sum(1)
    gamma = (ce_adv - ce.detach() - lin).abs()
    torch.manual_seed(6)
    out = llr_loss(model, x, y, lam=0.7, mu=1.5, same_dropout_mask=same_mask, **kw)
    torch.testing.assert_close(out.x_adv, x_adv, rtol=0, atol=0)
    want = (ce.detach() + 0.7 * gamma + 1.5 * lin.abs()).mean()
    assert float(out.loss) == pytest.approx(float(want), rel=1e-10)
    assert out.parts == pytest.approx({"ce": float(ce.detach().mean()), "gamma": float(gamma.mean()),
                                       "lin": float(lin.abs().mean())}, rel=1e-10)
    assert out.clean_logits is not None and out.adv_logits is not None
    assert out.clean_logits.shape == out.adv_logits.shape == (len(x), 3)


def _inner(method, model, x, y, kw):
    if method == "trades":
        return trades_inner_max(model, x, **kw)
    return pgd_ce(model, x, y, **kw)


@pytest.mark.parametrize("method, kw", [
    ("at", dict(steps=3, step_frac=0.3, random_start=False, attack_mode="eval")),
    ("rst", dict(lam=0.6, steps=3, step_frac=0.3, random_start=False, attack_mode="eval")),
    ("trades", dict(beta=2.5, steps=3, step_frac=0.3, init_std=0.01, clip_start=False)),
])
@pytest.mark.filterwarnings("error")  # e.g. torch's warning for a softmax without an explicit dim
def test_adversarial_losses_equal_their_definitions_written_out(method, kw):
    """x_adv from the inner maximiser given every argument (l2, not the default norm); the loss,
    its parts and the logits it reports, for both reductions."""
    model = _model(dtype=torch.float64)
    x, y = _batch(dtype=torch.float64)
    weight = {k: kw.pop(k) for k in ("lam", "beta") if k in kw}
    inner_kw = dict(eps=0.3, norm="l2", **kw)
    torch.manual_seed(8)
    x_adv = _inner(method, model, x, y, inner_kw)
    with torch.no_grad():
        clean, adv = model(x), model(x_adv)
    ce, ce_adv = F.cross_entropy(clean, y, reduction="none"), F.cross_entropy(adv, y, reduction="none")
    if method == "at":
        per, parts = ce_adv, {"ce_adv": ce_adv.mean()}
    elif method == "rst":
        per, parts = ce + 0.6 * ce_adv, {"ce": ce.mean(), "ce_adv": ce_adv.mean()}
    else:
        p, q = F.log_softmax(clean, 1), F.log_softmax(adv, 1)
        kl = (p.exp() * (p - q)).sum(1)
        per, parts = ce + 2.5 * kl, {"ce": ce.mean(), "kl": kl.mean()}
    fn = LOSSES[method][0]
    for reduction, red in (("mean", torch.mean), ("sum", torch.sum)):
        torch.manual_seed(8)
        out = fn(model, x, y, reduction=reduction, **inner_kw, **weight)
        torch.testing.assert_close(out.x_adv, x_adv, rtol=0, atol=0)
        assert float(out.loss) == pytest.approx(float(red(per)), rel=1e-10)
        assert out.loss.requires_grad
    assert out.parts == pytest.approx({k: float(v) for k, v in parts.items()}, rel=1e-10)
    torch.testing.assert_close(out.adv_logits, adv, rtol=0, atol=0)
    if method == "at":
        assert out.clean_logits is None
    else:
        torch.testing.assert_close(out.clean_logits, clean, rtol=0, atol=0)


def test_natural_loss_reports_its_logits_and_ce():
    model = _model(dtype=torch.float64)
    x, y = _batch(dtype=torch.float64)
    out = natural_loss(model, x, y, reduction="sum")
    with torch.no_grad():
        logits = model(x)
    torch.testing.assert_close(out.clean_logits, logits, rtol=0, atol=0)
    assert out.adv_logits is None and out.x_adv is None
    assert float(out.loss) == pytest.approx(float(F.cross_entropy(logits, y, reduction="sum")), rel=1e-12)
    assert out.parts == pytest.approx({"ce": float(F.cross_entropy(logits, y))}, rel=1e-12)


@pytest.mark.parametrize("method", sorted(LOSSES))
def test_make_loss_passes_each_method_exactly_its_keywords(method):
    """The norm goes to every method but natural, eps to the attack-based ones, config names become
    keyword names; ``loss.kwargs`` states what the loss is called with."""
    from analysis.methods import METHODS

    loss = make_loss(method, {}, eps=0.25, norm="l2", reduction="sum")
    fn, names = LOSSES[method]
    want = {names[k]: v for k, v in METHODS[method].defaults.items()}
    want["reduction"] = "sum"
    if method != "natural":
        want["norm"] = "l2"
    if method not in ("natural", "gr"):
        want["eps"] = 0.25
    assert loss.kwargs == want and loss.__name__ == f"{method}_loss"


def test_gr_and_llr_called_without_parameters_use_the_config_defaults():
    """The behaviour of a bare call, not only the signature (wrappers may hide a signature)."""
    from analysis.methods import METHODS

    for method in ("gr", "llr"):
        fn, names = LOSSES[method]
        full = {names[k]: v for k, v in METHODS[method].defaults.items()}
        extra = {"eps": EPS} if method == "llr" else {}
        model = _model(dropout=0.3, dtype=torch.float64)
        x, y = _batch(dtype=torch.float64)
        torch.manual_seed(1)
        bare = fn(model, x, y, **extra)
        torch.manual_seed(1)
        explicit = fn(model, x, y, **extra, **full)
        assert float(bare.loss) == float(explicit.loss), method
        assert bare.parts == explicit.parts
