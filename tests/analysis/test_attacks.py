"""analysis.attacks: PGD, multi-targeted, AutoAttack (torchattacks), robust-accuracy bookkeeping."""
from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
import torch.nn as nn
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analysis.attack_suite import attack_spec, predict, run_attacks
from analysis.attacks import autoattack, margins, multitargeted, pgd
from separation import ThreatModel


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def digits_model():
    """A small MLP trained naturally on sklearn's digits (seconds on a CPU)."""
    from separation import load_dataset

    ds = load_dataset("digits")
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    x = torch.tensor(ds.x_train, dtype=torch.float32)
    y = torch.tensor(ds.y_train)
    opt = torch.optim.Adam(model.parameters(), lr=2e-2)
    for _ in range(80):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    model.eval()
    xt = torch.tensor(ds.x_test[:300], dtype=torch.float32)
    yt = torch.tensor(ds.y_test[:300])
    return model, xt, yt


def _acc(model, x, y):
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


def _assert_feasible(x_adv, x, eps, norm):
    d = x_adv.double() - x.double()
    n = d.flatten(1).abs().max(1).values if norm == "linf" else d.flatten(1).norm(dim=1)
    assert float(n.max()) <= eps, f"left the {norm} ball: {float(n.max())} > {eps}"
    assert float(x_adv.min()) >= 0 and float(x_adv.max()) <= 1


def test_pgd_drives_accuracy_down(digits_model):
    model, x, y = digits_model
    clean = _acc(model, x, y)
    assert clean > 0.9
    x_adv = pgd(model, x, y, eps=0.1)
    _assert_feasible(x_adv, x, 0.1, "linf")
    adv = _acc(model, x_adv, y)
    assert adv < clean - 0.3
    x_adv2 = pgd(model, x, y, eps=1.0, norm="l2")
    _assert_feasible(x_adv2, x, 1.0, "l2")
    assert _acc(model, x_adv2, y) < clean - 0.3


def test_multitargeted_keeps_the_worst_targeted_run_per_example(digits_model):
    """An independent re-derivation: one targeted PGD per other class (the same generator, in
    the same order), then per example the candidate with the lowest true-class margin, the
    clean point unless some candidate is strictly worse."""
    model, x, y = digits_model
    x, y = x[:64], y[:64]
    x_adv = multitargeted(model, x, y, eps=0.1, steps=5, generator=torch.Generator().manual_seed(4))
    _assert_feasible(x_adv, x, 0.1, "linf")
    g = torch.Generator().manual_seed(4)
    with torch.no_grad():
        best, best_m = x.clone(), margins(model(x), y)
    for k in range(1, 10):
        x_t = pgd(model, x, (y + k) % 10, eps=0.1, steps=5, step_size=0.01, targeted=True, generator=g)
        with torch.no_grad():
            m = margins(model(x_t), y)
        better = m < best_m
        best[better], best_m[better] = x_t[better], m[better]
    torch.testing.assert_close(x_adv, best, rtol=0, atol=0)
    assert _acc(model, x_adv, y) < _acc(model, x, y) - 0.3


class _OnlyLastTarget(nn.Module):
    """Four classes on one input pixel x: logits (10, -100, -100, 10 + 100 (0.45 - x)). At
    x = 0.5 the true class 0 wins by 5; within eps = 0.1 only class 3 (reached by lowering x)
    can win. Targets are visited as (y + 1, y + 2, y + 3) mod 4: class 3 is the last one."""

    def forward(self, x):
        v = x.flatten(1)[:, :1]
        const = torch.ones_like(v)
        return torch.cat([10 * const, -100 * const, -100 * const, 10 + 100 * (0.45 - v)], dim=1)


def test_multitargeted_tries_every_target_including_the_last():
    model = _OnlyLastTarget()
    x = torch.full((3, 1), 0.5)
    y = torch.zeros(3, dtype=torch.long)
    assert bool((model(x).argmax(1) == 0).all())
    x_adv = multitargeted(model, x, y, eps=0.1, steps=20, generator=torch.Generator().manual_seed(0))
    assert bool((model(x_adv).argmax(1) == 3).all())
    _assert_feasible(x_adv, x, 0.1, "linf")


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_random_start_is_uniform_in_the_ball(norm):
    """pgd with 0 steps returns its random start: two-sided and uniform in the ball (l-inf: each
    coordinate uniform on [-eps, eps]; l2: radius with P(|d| <= t) = (t / eps)^d and a direction
    uniform on the sphere). The points sit in the middle of [0, 1], so clipping never acts."""
    from scipy import stats

    eps, d = (0.1, 16) if norm == "linf" else (0.3, 16)
    x = torch.full((4000, 1, 4, 4), 0.5, dtype=torch.float64)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3)).double()
    y = torch.zeros(4000, dtype=torch.long)
    delta = (pgd(model, x, y, eps=eps, norm=norm, steps=0, generator=torch.Generator().manual_seed(1))
             - x).flatten(1).numpy()
    if norm == "linf":
        coords = delta.ravel()
        assert stats.kstest(coords, stats.uniform(loc=-eps, scale=2 * eps).cdf).pvalue > 1e-3
        assert coords.min() < -0.99 * eps and coords.max() > 0.99 * eps
    else:
        radius = np.linalg.norm(delta, axis=1)
        assert radius.max() <= eps * (1 + 1e-12)
        assert stats.kstest((radius / eps) ** d, "uniform").pvalue > 1e-3
        direction = delta / radius[:, None]
        # each coordinate of a uniform direction is symmetric about 0 with variance 1/d
        assert np.abs(direction.mean(axis=0)).max() < 4 / np.sqrt(4000 * d)
        # and (1 + u_1) / 2 ~ Beta((d - 1) / 2, (d - 1) / 2) for a uniform direction u
        coordinate = stats.beta((d - 1) / 2, (d - 1) / 2, loc=-1, scale=2)
        assert stats.kstest(direction[:, 0], coordinate.cdf).pvalue > 1e-3


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**31 - 1), eps=st.sampled_from([1e-3, 0.05, 0.3, 1.0, 3.0]),
       norm=st.sampled_from(["linf", "l2"]), steps=st.integers(0, 4), restarts=st.integers(1, 2),
       edge=st.booleans())
def test_adversarial_examples_stay_in_ball_and_box(seed, eps, norm, steps, restarts, edge):
    g = torch.Generator().manual_seed(seed)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 4))
    with torch.no_grad():
        model[1].weight.copy_(torch.randn(4, 12, generator=g))
    x = torch.rand(5, 3, 2, 2, generator=g)
    if edge:  # pixels at the box edges and just inside
        x = torch.where(x < 0.3, torch.zeros_like(x), torch.where(x > 0.7, torch.ones_like(x), x))
    y = torch.randint(0, 4, (5,), generator=g)
    for fn in (pgd, multitargeted):
        kwargs = {"restarts": restarts} if fn is pgd else {}
        x_adv = fn(model, x, y, eps=eps, norm=norm, steps=steps, generator=g, **kwargs)
        assert x_adv.shape == x.shape and x_adv.dtype == x.dtype and not x_adv.requires_grad
        _assert_feasible(x_adv, x, eps, norm)


def test_default_step_size_is_eps_over_5():
    w = torch.tensor([[1.0, -2.0, 0.5, -0.1], [0.0, 0.0, 0.0, 0.0]])
    model = nn.Linear(4, 2, bias=False)
    with torch.no_grad():
        model.weight.copy_(w)
    x = torch.full((1, 4), 0.5)
    y = torch.tensor([0])
    x_adv = pgd(model, x, y, eps=0.1, steps=1, random_start=False)
    # CE on class 0 grows fastest along -sign(w_0): one step of eps/5
    torch.testing.assert_close(x_adv - x, -0.02 * torch.sign(w[:1]))
    x_adv = pgd(model, x, y, eps=0.1, steps=1, random_start=False, norm="l2")
    torch.testing.assert_close(x_adv - x, -0.02 * w[:1] / w[0].norm())


def test_pgd_restores_modes_and_leaves_parameter_grads_alone():
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.Dropout(0.5), nn.ReLU(), nn.Linear(8, 3))
    model.train()
    model[2].eval()  # mixed modes must come back as they were
    x, y = torch.rand(4, 1, 4, 4), torch.tensor([0, 1, 2, 0])
    pgd(model, x, y, eps=0.1)
    multitargeted(model, x, y, eps=0.1, steps=2)
    assert model.training and model[1].training and not model[2].training
    assert all(p.grad is None for p in model.parameters())


def test_pgd_restarts_keep_the_worst(digits_model):
    model, x, y = digits_model
    x, y = x[:100], y[:100]
    g1 = torch.Generator().manual_seed(1)
    one = pgd(model, x, y, eps=0.05, steps=3, generator=g1)
    g2 = torch.Generator().manual_seed(1)
    three = pgd(model, x, y, eps=0.05, steps=3, restarts=3, generator=g2)  # first restart == `one`
    with torch.no_grad():
        assert bool((margins(model(three), y) <= margins(model(one), y) + 1e-5).all())


def test_eps_zero_and_input_errors(digits_model):
    model, x, y = digits_model
    torch.testing.assert_close(pgd(model, x[:3], y[:3], eps=0), x[:3])
    with pytest.raises(ValueError, match="norm"):
        pgd(model, x[:3], y[:3], eps=0.1, norm="l1")
    with pytest.raises(ValueError, match=">= 0"):
        pgd(model, x[:3], y[:3], eps=-0.1)
    with pytest.raises(ValueError, match=r"\[0, 1\].*Normalize"):
        pgd(model, x[:3] * 2 - 1, y[:3], eps=0.1)
    with pytest.raises(TypeError, match="255"):
        pgd(model, (x[:3] * 255).to(torch.uint8), y[:3], eps=0.1)
    with pytest.raises(ValueError, match="labels"):
        pgd(model, x[:3], y[:2], eps=0.1)
    with pytest.raises(ValueError, match="loss"):
        pgd(model, x[:3], y[:3], eps=0.1, loss="kl")


def test_autoattack_through_torchattacks(digits_model):
    model, x, y = digits_model
    x, y = x[:12], y[:12]
    state = torch.get_rng_state()
    x_adv = autoattack(model, x, y, eps=0.3)  # large eps: APGD-CE breaks everything, fast
    assert torch.equal(torch.get_rng_state(), state)  # torchattacks' reseeding is undone
    _assert_feasible(x_adv, x, 0.3, "linf")
    assert _acc(model, x_adv, y) <= 0.1
    with pytest.raises(ValueError, match="version"):
        autoattack(model, x, y, eps=0.3, version="fast")


def test_run_attacks_worst_case_and_breakdown(digits_model):
    model, x, y = digits_model
    x, y = x[:80], y[:80].clone()
    y[:5] = (y[:5] + 1) % 10  # five points misclassified by construction
    rep = run_attacks(model, x, y, eps=0.1, attacks=["pgd", {"name": "multitargeted", "steps": 5}],
                      batch_size=32, seed=7)
    clean = predict(model, x) == y.numpy()
    np.testing.assert_array_equal(rep.clean_correct, clean)
    assert set(rep.per_attack_correct) == {"pgd", "multitargeted"}
    # independently: each attack on the clean-correct points, in batches of 32, with a generator
    # seeded by the run's seed; a point counts as robust to an attack iff it stays correct
    idx = np.flatnonzero(clean)
    for name, attack in (("pgd", lambda xb, yb, g: pgd(model, xb, yb, eps=0.1, generator=g)),
                         ("multitargeted", lambda xb, yb, g: multitargeted(model, xb, yb, eps=0.1, steps=5,
                                                                          generator=g))):
        g = torch.Generator().manual_seed(7)
        want = np.zeros(len(x), dtype=bool)
        for s in range(0, len(idx), 32):
            ii = idx[s:s + 32]
            with torch.no_grad():
                want[ii] = (model(attack(x[ii], y[ii], g)).argmax(1) == y[ii]).numpy()
        np.testing.assert_array_equal(rep.per_attack_correct[name], want, err_msg=name)
    worst = clean & rep.per_attack_correct["pgd"] & rep.per_attack_correct["multitargeted"]
    np.testing.assert_array_equal(rep.adv_correct, worst)
    assert not rep.adv_correct[:5].any()
    assert rep.adv_acc == worst.mean() and rep.per_attack_acc()["pgd"] == rep.per_attack_correct["pgd"].mean()
    with pytest.raises(ValueError, match="once"):
        run_attacks(model, x, y, eps=0.1, attacks=["pgd", "pgd"])


def test_attack_spec():
    assert attack_spec("PGD") == {"name": "pgd", "steps": 10, "step_size": None, "restarts": 1,
                                  "random_start": True, "loss": "ce"}
    assert attack_spec({"name": "multi-targeted", "steps": 3})["steps"] == 3
    with pytest.raises(ValueError, match="Unknown attack 'fgsm'"):
        attack_spec("fgsm")
    with pytest.raises(ValueError, match="unknown option"):
        attack_spec({"name": "pgd", "iterations": 3})


# -- the objective, and the plumbing of the multi-targeted and AutoAttack wrappers -------------------
def test_the_objective_is_the_chosen_loss_with_the_chosen_sign():
    from analysis.attacks import _loss

    logits = torch.tensor([[2.0, 0.5, -1.0], [0.0, 3.0, 1.0]])
    y = torch.tensor([0, 2])
    ce = nn.functional.cross_entropy(logits, y, reduction="none")
    m = torch.tensor([1.5, -2.0])  # logit_y - best other logit
    torch.testing.assert_close(_loss(logits, y, "ce", False), ce)
    torch.testing.assert_close(_loss(logits, y, "ce", True), -ce)
    torch.testing.assert_close(_loss(logits, y, "margin", False), -m)
    torch.testing.assert_close(_loss(logits, y, "margin", True), m)


class _PGDSpy:
    """Stands in for ``analysis.attacks.pgd`` inside ``multitargeted``: records each call's arguments."""

    def __init__(self, monkeypatch):
        import analysis.attacks as attacks

        self.calls, real = [], attacks.pgd

        def spy(model, x, target, **kw):
            self.calls.append((target.clone(), kw))
            return real(model, x, target, **kw)

        monkeypatch.setattr(attacks, "pgd", spy)


def test_multitargeted_runs_targeted_ce_pgd_with_its_arguments(monkeypatch):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    x, y = torch.rand(5, 1, 2, 2), torch.tensor([0, 1, 2, 0, 1])
    spy = _PGDSpy(monkeypatch)
    g = torch.Generator().manual_seed(1)
    multitargeted(model, x, y, eps=0.2, norm="l2", step_size=0.03, restarts=2, random_start=False, generator=g)
    assert [t.tolist() for t, _ in spy.calls] == [((y + k) % 3).tolist() for k in (1, 2)]
    for _, kw in spy.calls:
        assert kw == {"eps": 0.2, "norm": "l2", "steps": 20, "step_size": 0.03, "restarts": 2,
                      "random_start": False, "loss": "ce", "targeted": True, "generator": g}
    spy.calls.clear()
    multitargeted(model, x, y, eps=0.2, steps=3)
    assert spy.calls[0][1]["step_size"] == pytest.approx(0.02) and spy.calls[0][1]["random_start"] is True
    assert spy.calls[0][1]["restarts"] == 1 and spy.calls[0][1]["norm"] == "linf"
    with pytest.raises(ValueError, match=r"^step_size=-?[0-9.]+ is not valid: pass a finite number >= 0"):
        multitargeted(model, x, y, eps=0.2, step_size=-1.0)


def test_multitargeted_keeps_the_input_when_no_target_lowers_the_margin():
    """A model that ignores its input: every candidate ties with the clean point, which is kept."""

    class Constant(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.zeros(()))

        def forward(self, x):
            return torch.tensor([1.0, 0.0, -1.0]).expand(len(x), 3) + 0 * self.w * x.flatten(1)[:, :1]

    x = torch.rand(4, 1, 3, 3, generator=torch.Generator().manual_seed(0))
    x_adv = multitargeted(Constant(), x, torch.tensor([0, 1, 2, 0]), eps=0.1, steps=2,
                          generator=torch.Generator().manual_seed(0))
    assert torch.equal(x_adv, x)


def test_attacks_at_eps_one_do_attack():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
    x, y = torch.rand(6, 1, 2, 2), torch.zeros(6, dtype=torch.long)
    for attack in (multitargeted, pgd):
        x_adv = attack(model, x, y, eps=1.0, steps=3, generator=torch.Generator().manual_seed(0))
        assert not torch.equal(x_adv, x)


class _FakeAutoAttack:
    """Stands in for ``torchattacks.AutoAttack``: records its arguments, prints like torchattacks does,
    reseeds torch's global generator, and returns a point outside the ball (to be re-projected)."""

    made: list = []

    def __init__(self, model, **kw):
        print("fake torchattacks talks on stdout")
        self.kw, self.devices = kw, []
        sub = type("Sub", (), {"set_device": lambda s, d: self.devices.append(d)})()
        self._autoattack = type("AA", (), {"set_device": lambda s, d: self.devices.append(d),
                                           "attacks": [sub, sub]})()
        _FakeAutoAttack.made.append(self)

    def set_device(self, d):
        self.devices.append(d)

    def __call__(self, x, y):
        torch.manual_seed(12345)
        return (x + 2 * self.kw["eps"]).double()


@pytest.fixture
def fake_torchattacks(monkeypatch):
    import types

    _FakeAutoAttack.made = []
    monkeypatch.setitem(__import__("sys").modules, "torchattacks", types.SimpleNamespace(AutoAttack=_FakeAutoAttack))
    return _FakeAutoAttack.made


@pytest.mark.parametrize("norm, name", [("linf", "Linf"), ("l2", "L2")])
@pytest.mark.parametrize("version", ["standard", "plus", "rand"])
def test_autoattack_passes_its_arguments_to_torchattacks(fake_torchattacks, capsys, norm, name, version):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 7))
    x = torch.rand(3, 1, 2, 2) * 0.5 + 0.25
    state = torch.get_rng_state()
    x_adv = autoattack(model, x, torch.tensor([1, 2, 3]), eps=0.05, norm=norm, version=version, seed=9)
    assert torch.equal(torch.get_rng_state(), state)
    (atk,) = fake_torchattacks
    assert atk.kw == {"norm": name, "eps": 0.05, "version": version, "n_classes": 7, "seed": 9}
    assert atk.devices == [x.device] * 4  # the wrapper, its AutoAttack and both attacks
    assert "fake torchattacks talks" not in capsys.readouterr().out  # torchattacks' chatter is caught
    assert x_adv.dtype == x.dtype
    _assert_feasible(x_adv, x, 0.05, norm)
    assert float((x_adv - x).abs().max()) > 0
    autoattack(model, x, torch.tensor([1, 2, 3]), eps=1.0, num_classes=4)
    assert fake_torchattacks[1].kw["seed"] == 0 and fake_torchattacks[1].kw["n_classes"] == 4
    assert fake_torchattacks[1].kw["version"] == "standard" and fake_torchattacks[1].kw["norm"] == "Linf"
    assert torch.equal(autoattack(model, x, torch.tensor([1, 2, 3]), eps=0.0), x) and len(fake_torchattacks) == 2


def test_autoattack_without_torchattacks_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "torchattacks", None)
    with pytest.raises(ImportError, match=r"^AutoAttack needs the torchattacks package: pip install torchattacks$"):
        autoattack(nn.Linear(4, 2), torch.rand(2, 4), torch.tensor([0, 1]), eps=0.1)


def test_autoattack_logs_what_torchattacks_printed_and_sets_devices_without_a_sub_attack_list(
        fake_torchattacks, monkeypatch, caplog):
    def init(self, model, **kw):  # an AutoAttack whose inner object has no ``attacks`` list
        print("chatter from torchattacks")
        self.kw, self.devices = kw, []
        self._autoattack = type("AA", (), {"set_device": lambda s, d: self.devices.append(d)})()
        _FakeAutoAttack.made.append(self)

    monkeypatch.setattr(_FakeAutoAttack, "__init__", init)
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    x = torch.full((2, 1, 2, 2), 0.5)
    with caplog.at_level(logging.DEBUG, logger="analysis.attacks"):
        autoattack(model, x, torch.tensor([0, 1]), eps=0.1)
    assert "torchattacks: chatter from torchattacks" in caplog.text
    assert fake_torchattacks[0].devices == [x.device] * 2


# -- the threat model's samplers: torch (attack starts) and numpy (Lipschitz-check pairs) ---------------
def _l1_uniform_checks(delta: np.ndarray, eps: float):
    """``delta`` (n, d) uniform in the l1 ball of radius eps: P(|delta|_1 <= t) = (t / eps)^d, the
    normalised magnitudes |delta_i| / |delta|_1 ~ Beta(1, d - 1), fair independent signs, and
    independent rows."""
    from scipy import stats

    n, d = delta.shape
    radius = np.abs(delta).sum(1)
    assert radius.max() <= eps * (1 + 1e-12)
    assert stats.kstest((radius / eps) ** d, "uniform").pvalue > 1e-3
    share = np.abs(delta[:, 0]) / radius
    assert stats.kstest(share, stats.beta(1, d - 1).cdf).pvalue > 1e-3
    assert abs((delta > 0).mean() - 0.5) < 4 * 0.5 / np.sqrt(delta.size)
    # rows are drawn independently: the first two coordinates of consecutive rows are uncorrelated
    for j in (0, 1):
        assert abs(np.corrcoef(np.abs(delta[:-1, j]), np.abs(delta[1:, j]))[0, 1]) < 0.1
        assert abs(np.corrcoef(np.sign(delta[:-1, j]), np.sign(delta[1:, j]))[0, 1]) < 0.1


def test_l1_random_start_is_uniform_in_the_l1_ball():
    x = torch.full((4000, 1, 2, 3), 0.5, dtype=torch.float64)
    start = ThreatModel("l1", 0.2).random_start(x, generator=torch.Generator().manual_seed(0))
    assert start.dtype == torch.float64 and start.shape == x.shape
    _l1_uniform_checks((start - x).flatten(1).numpy(), 0.2)


def test_l1_sample_is_uniform_in_the_l1_ball():
    _l1_uniform_checks(ThreatModel("l1", 0.2).sample(np.random.default_rng(0), 4000, 6), 0.2)


@pytest.mark.parametrize("norm", ["linf", "l2", "l1"])
def test_random_start_of_one_point_of_one_pixel_uses_the_given_generator(norm):
    """A single point (the batch dimension is not confused with the others), d = 1 (an l2 direction
    of norm below 1 is still normalised), the generator's stream and nothing else, the input dtype."""
    tm = ThreatModel(norm, 0.3)
    x = torch.full((1, 1), 0.5)
    starts = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        starts.append(tm.random_start(x, generator=torch.Generator().manual_seed(7)))
    assert torch.equal(*starts) and starts[0].dtype == torch.float32
    wide = []
    for seed in (1, 2):  # one point of 16 pixels: every sign and magnitude from the generator
        torch.manual_seed(seed)
        wide.append(tm.random_start(torch.full((1, 16), 0.5), generator=torch.Generator().manual_seed(7)))
    assert torch.equal(*wide)
    many = tm.random_start(torch.full((3000, 1), 0.5, dtype=torch.float64), generator=torch.Generator().manual_seed(0))
    r = (many - 0.5).abs().flatten().numpy()
    from scipy import stats

    assert stats.kstest(r / 0.3, "uniform").pvalue > 1e-3  # |delta| uniform on [0, eps] in one dimension
    torch.manual_seed(3)
    a = tm.random_start(x)
    torch.manual_seed(3)
    assert torch.equal(a, tm.random_start(x))  # without a generator: torch's global one


def _mlp():
    """A small smooth float64 model on 1x2x3 inputs (4 logits), the same weights every call."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 4)).double()


@pytest.mark.parametrize("loss", ["ce", "margin"])
@pytest.mark.parametrize("targeted", [False, True])
def test_one_pgd_step_ascends_the_named_loss(loss, targeted):
    """One l2 step from x (no random start) is the normalised gradient step of that loss."""
    import torch.nn.functional as F

    model = _mlp()
    x = 0.3 + 0.4 * torch.rand(5, 1, 2, 3, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 3, 0])
    xg = x.clone().requires_grad_(True)
    logits = model(xg)
    if loss == "ce":
        obj = -F.cross_entropy(logits, y, reduction="none") if targeted else F.cross_entropy(logits, y, reduction="none")
    else:
        obj = margins(logits, y) if targeted else -margins(logits, y)
    (g,) = torch.autograd.grad(obj.sum(), [xg])
    want = ThreatModel("l2", 0.2).ascent_step(x, g, x, 0.05)
    got = pgd(model, x, y, eps=0.2, norm="l2", steps=1, step_size=0.05, random_start=False, loss=loss,
              targeted=targeted)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-12)


@pytest.mark.parametrize("targeted", [False, True])
def test_pgd_restarts_keep_the_worst_run_per_example(targeted):
    """Three restarts = three single runs drawn in turn from the generator; per example the run with
    the highest score (-margin of y, or the target's margin when targeted) wins, the first on ties."""
    model = _mlp()
    x = 0.3 + 0.4 * torch.rand(12, 1, 2, 3, dtype=torch.float64)
    y = torch.arange(12) % 4
    kw = dict(eps=0.3, norm="l2", steps=2, step_size=0.02, targeted=targeted)
    g = torch.Generator().manual_seed(4)
    runs = [pgd(model, x, y, generator=g, **kw) for _ in range(3)]
    with torch.no_grad():
        scores = torch.stack([margins(model(r), y) * (1 if targeted else -1) for r in runs])
    assert (scores.argmax(0) > 0).any()  # a later restart wins somewhere
    want = torch.stack(runs)[scores.argmax(0), torch.arange(12)]
    got = pgd(model, x, y, restarts=3, generator=torch.Generator().manual_seed(4), **kw)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-12)


class _Bowl(nn.Module):
    """Logits (0, -50 |x - c|^2): the loss of label 0 is largest at c, inside the ball, so signed
    steps oscillate around it and every step count ends somewhere else."""

    def forward(self, x):
        return torch.stack([torch.zeros(len(x), dtype=x.dtype), -50 * ((x.flatten(1) - 0.52) ** 2).sum(1)], 1)


def test_pgd_defaults_are_ten_steps_of_eps_over_five_from_a_random_start():
    model = _Bowl()
    x = torch.full((5, 1, 2, 3), 0.5, dtype=torch.float64)
    y = torch.zeros(5, dtype=torch.long)
    a = pgd(model, x, y, eps=0.1, generator=torch.Generator().manual_seed(1))
    b = pgd(model, x, y, eps=0.1, norm="linf", steps=10, step_size=0.02, restarts=1, random_start=True,
            loss="ce", targeted=False, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    c = pgd(model, x, y, eps=0.1, steps=11, generator=torch.Generator().manual_seed(1))
    assert not torch.equal(a, c)


@pytest.mark.parametrize("kw, match", [
    ({"steps": True}, r"^steps must be an integer >= 0, got True\.$"),
    ({"steps": 2.5}, r"^steps must be an integer >= 0, got 2\.5\.$"),
    ({"steps": -1}, r"^steps must be an integer >= 0, got -1\.$"),
    ({"restarts": True}, r"^restarts must be an integer >= 1, got True\.$"),
    ({"restarts": 1.5}, r"^restarts must be an integer >= 1, got 1\.5\.$"),
    ({"restarts": 0}, r"^restarts must be an integer >= 1, got 0\.$"),
    ({"step_size": -0.1}, r"^step_size=-0.1 is not valid: pass a finite number >= 0"),
    ({"loss": "hinge"}, r"^Unknown loss 'hinge': use 'ce' or 'margin'\.$"),
])
def test_bad_pgd_arguments_say_what_is_allowed(kw, match):
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
    with pytest.raises(ValueError, match=match):
        pgd(model, torch.rand(2, 1, 2, 2), torch.tensor([0, 1]), eps=0.1, **kw)


@pytest.mark.parametrize("norm, p", [("linf", np.inf), ("l2", 2)])  # l1: test_l1_sample_is_uniform_in_the_l1_ball
def test_sample_is_uniform_in_its_own_ball(norm, p):
    """For a uniform point of any norm ball in R^d, P(|delta| <= t) = (t / eps)^d in that norm."""
    from scipy import stats

    d = 5
    delta = ThreatModel(norm, 0.2).sample(np.random.default_rng(1), 4000, d)
    radius = np.linalg.norm(delta, ord=p, axis=1)
    assert delta.shape == (4000, d) and radius.max() <= 0.2 * (1 + 1e-12)
    assert stats.kstest((radius / 0.2) ** d, "uniform").pvalue > 1e-3


@pytest.mark.parametrize("norm", ["linf", "l2", "l1"])
def test_project_exact_repairs_float32_rounding_and_nothing_else(norm):
    """float32 points pushed just past eps on both sides (0.1 is not representable): measured in
    float64 every result is inside the ball and [0, 1]; l-inf moves only the offending coordinates,
    to the representable value nearest the clip; the l2 / l1 repair stays within a few ulps of eps."""
    eps = 0.1
    tm = ThreatModel(norm, eps)
    g = torch.Generator().manual_seed(0)
    x = (0.2 + 0.6 * torch.rand(64, 1, 3, 3, generator=g))
    direction = torch.randn(x.shape, generator=g)
    if norm == "linf":
        delta = direction.sign() * eps * (1 + 1e-7 * torch.rand(x.shape, generator=g))
    else:
        delta = direction / tm.norm_of(direction).view(-1, 1, 1, 1) * eps * 1.0000001
    out = tm.project_exact(x + delta, x)
    d = out.double() - x.double()
    p = {"linf": float("inf"), "l2": 2.0, "l1": 1.0}[norm]
    n = torch.linalg.vector_norm(d.flatten(1), ord=p, dim=1)
    assert bool((n <= eps).all()) and bool((out >= 0).all() & (out <= 1).all()) and out.dtype == torch.float32
    ulp = torch.finfo(torch.float32).eps
    if norm == "linf":
        projected = tm.project(x + delta, x)
        over = (projected.double() - x.double()).abs() > eps
        assert bool(over.any()) and bool((~over).any())
        assert torch.equal(out[~over], projected[~over])  # only the offending coordinates move
        assert bool((d[over].abs() > eps - 2 * ulp).all())  # to the nearest value inside, not farther
        # both sides were repaired
        assert bool((d[over] > 0).any() and (d[over] < 0).any())
    else:
        assert bool((n > eps - 40 * ulp).all())  # just inside, not shrunk further than rounding asks
        torch.testing.assert_close(out, tm.project(x + delta, x), rtol=0, atol=1e-6)  # towards x, not away


def test_project_exact_keeps_a_point_exactly_on_the_sphere():
    """Dyadic values: |x' - x|_1 = eps exactly is inside the closed ball and is not moved."""
    x = torch.full((1, 4), 0.5)
    x_adv = x + torch.tensor([[0.125, -0.0625, 0.03125, 0.03125]])
    for norm, eps in (("l1", 0.25), ("linf", 0.125)):
        assert torch.equal(ThreatModel(norm, eps).project_exact(x_adv, x), x_adv)


@pytest.mark.parametrize("norm, p", [("linf", np.inf), ("l2", 2), ("l1", 1)])
def test_norm_of_is_the_norm_of_each_flattened_sample(norm, p):
    v = torch.randn(6, 2, 3, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    want = np.linalg.norm(v.flatten(1).numpy(), ord=p, axis=1)
    np.testing.assert_allclose(ThreatModel(norm, 0.1).norm_of(v).numpy(), want, rtol=1e-12)


@pytest.mark.parametrize("norm", ["linf", "l2", "l1"])
def test_a_zero_gradient_does_not_move(norm):
    x = torch.full((2, 3), 0.5)
    grad = torch.tensor([[0.0, 2.0, -1.0], [0.0, 0.0, 0.0]])
    out = ThreatModel(norm, 0.1).step(x, grad, 0.05)
    assert torch.equal(out[1], x[1]) and bool(torch.isfinite(out).all())
    if norm == "linf":
        assert torch.equal(out[0], torch.tensor([0.5, 0.55, 0.45]))


def test_threat_model_errors_say_how_to_fix_the_call():
    with pytest.raises(ValueError, match=r"^Unknown norm 'l3'\. Use one of linf, l2, l1 \(e\.g\. norm='linf'\)\.$"):
        ThreatModel("l3", 0.1)
    with pytest.raises(TypeError, match=r"^eps must be a number \(in \[0, 1\] pixel units\), got bool\.$"):
        ThreatModel("linf", True)
    with pytest.raises(TypeError, match=r"^eps must be a number \(in \[0, 1\] pixel units\) such as 0\.3 or 8/255, "
                                        r"got 'wide'\.$"):
        ThreatModel("linf", "wide")
    tm = ThreatModel("l2", 1)
    assert type(tm.eps) is float and tm.eps == 1.0


@pytest.mark.parametrize("norm, want", [("linf", 1.0), ("l2", 3.0), ("l1", 9.0)])
def test_threat_model_diameter_of_the_unit_box(norm, want):
    assert ThreatModel(norm, 0.1).diameter(9) == want
