"""The Lipschitz check itself: every field of its record, its pairs, its validation and its log line.

``tests/test_lipschitz_construct.py`` shows the check holding on the construction and failing on a
bound that is too small or on scores that are not Lipschitz; here each number of the record is
compared with what it must be, and the pairs the check builds are inspected directly.
"""
from __future__ import annotations

import logging
import time

import numpy as np
import pytest

import lipschitz_construct.bound_check as lip
from lipschitz_construct import LocallyLipschitzClassifier, NotFittedError, lipschitz_check


def _pnorm(v, norm):
    a = np.abs(v)
    return a.max(1) if norm == "linf" else a.sum(1) if norm == "l1" else np.sqrt((a * a).sum(1))


@pytest.fixture(scope="module")
def fitted():
    """Three classes of 8-bit points, inner pixels only (a random move is never clipped to 0)."""
    rng = np.random.default_rng(7)
    x = rng.integers(60, 196, (45, 6), dtype=np.uint8)
    y = np.arange(45) % 3
    return x, {n: LocallyLipschitzClassifier(norm=n).fit(x, y) for n in ("linf", "l2", "l1")}


class _Spy:
    """Records the pairs the check hands to ``_ratios`` (``x1``, ``x2``), in call order."""

    def __init__(self, monkeypatch):
        self.calls = []
        real = lip._ratios

        def spy(clf, x1, x2, d1=None):
            self.calls.append((x1.copy(), x2.copy()))
            return real(clf, x1, x2, d1=d1)

        monkeypatch.setattr(lip, "_ratios", spy)


@pytest.mark.parametrize("norm", ["linf", "l2", "l1"])
def test_every_field_of_the_record(fitted, norm):
    x, clfs = fitted
    clf = clfs[norm]
    t0 = time.perf_counter()
    out = lipschitz_check(clf, x, eps=0.1, n_random=40, n_adversarial=12, gradient_steps=4, seed=3, tol=1e-7)
    wall = time.perf_counter() - t0
    r = clf.r_
    assert (out.eps, out.tolerance, out.gradient_steps) == (0.1, 1e-7, 4)
    assert out.bound == 1.0 / r
    assert out.n_random == 40 and out.n_adversarial == 2 * 12  # toward-nearest and gradient pairs
    assert out.random_max_ratio_times_r == pytest.approx(out.random_max_ratio * r, rel=1e-12)
    assert out.adversarial_max_ratio_times_r == pytest.approx(out.adversarial_max_ratio * r, rel=1e-12)
    assert out.adversarial_max_ratio == max(out.adversarial_toward_nearest_max_ratio,
                                            out.adversarial_gradient_max_ratio)
    assert 0 < out.random_max_ratio <= out.bound * (1 + 1e-9)
    assert 0 < out.adversarial_gradient_max_ratio <= out.bound * (1 + 1e-9)
    assert out.adversarial_toward_nearest_max_ratio == pytest.approx(out.bound, rel=1e-9)  # tight
    assert out.held
    assert sorted(out.seconds) == ["gradient", "random", "toward_nearest"]
    assert all(0 <= s <= wall for s in out.seconds.values())


def test_the_default_arguments(fitted):
    _, clfs = fitted
    x = np.random.default_rng(0).integers(0, 256, (30, 6), dtype=np.uint8)  # off the training points
    out = lipschitz_check(clfs["l2"], x, eps=0.05)
    assert (out.n_random, out.n_adversarial, out.gradient_steps, out.tolerance) == (1000, 2 * 200, 10, 1e-9)
    assert out.random_max_ratio != lipschitz_check(clfs["l2"], x, eps=0.05, seed=1).random_max_ratio
    again = lipschitz_check(clfs["l2"], x, eps=0.05, n_random=1000, n_adversarial=200, gradient_steps=10,
                            seed=0, tol=1e-9)
    assert {k: v for k, v in vars(out).items() if k != "seconds"} == \
        {k: v for k, v in vars(again).items() if k != "seconds"}


def test_a_seed_fixes_the_result_and_another_seed_changes_it(fitted):
    _, clfs = fitted
    q = np.random.default_rng(0).integers(0, 256, (30, 6), dtype=np.uint8)  # off the training points
    runs = [lipschitz_check(clfs["l2"], q, eps=0.2, n_random=30, n_adversarial=5, gradient_steps=2, seed=s)
            for s in (5, 5, 6)]
    assert runs[0].random_max_ratio == runs[1].random_max_ratio
    assert runs[0].adversarial_gradient_max_ratio == runs[1].adversarial_gradient_max_ratio
    assert runs[0].random_max_ratio != runs[2].random_max_ratio


@pytest.mark.parametrize("norm", ["linf", "l2", "l1"])
def test_random_pairs_lie_in_the_ball_and_the_cube(fitted, monkeypatch, norm):
    x, clfs = fitted
    spy = _Spy(monkeypatch)
    eps = 0.15
    lipschitz_check(clfs[norm], x, eps=eps, n_random=300, n_adversarial=0, gradient_steps=0)
    x1, x2 = spy.calls[0]
    assert len(x1) == 300
    assert set(map(bytes, x1)) <= set(map(bytes, x.astype(np.float64) / 255.0))  # starts are the given points
    sep = _pnorm(x2 - x1, norm)
    assert (sep <= eps * (1 + 1e-12)).all() and (x2 >= 0).all() and (x2 <= 1).all()
    assert sep.max() > 0.5 * eps  # they fill the ball, not a shell near x1
    delta = x2 - x1
    assert (delta > 0).mean() == pytest.approx(0.5, abs=0.05)  # two-sided


@pytest.mark.parametrize("norm", ["linf", "l2", "l1"])
def test_adversarial_pairs_go_eps_towards_the_runner_up_point(fitted, monkeypatch, norm):
    x, clfs = fitted
    clf = clfs[norm]
    spy = _Spy(monkeypatch)
    for eps in (0.02, 5.0):  # a short move, and one that would overshoot: it stops at the point
        spy.calls.clear()
        lipschitz_check(clf, x, eps=eps, n_random=0, n_adversarial=15, gradient_steps=0)
        x1, x2 = spy.calls[-1]
        d, i = clf.class_distances(x1, return_indices=True)
        second = np.argsort(d, axis=1, kind="stable")[:, 1]
        rows = np.arange(len(x1))
        z = clf.index_.points(i[rows, second])
        step = _pnorm(x2 - x1, norm)
        np.testing.assert_allclose(step, np.minimum(eps, d[rows, second]), rtol=1e-9)
        # on the segment from x1 to z: x2 - x1 is a non-negative multiple of z - x1
        t = step / _pnorm(z - x1, norm)
        np.testing.assert_allclose(x2, x1 + t[:, None] * (z - x1), rtol=0, atol=1e-12)


def test_gradient_pairs_stay_in_the_ball_and_reach_the_bound(fitted, monkeypatch):
    x, clfs = fitted
    clf = clfs["l2"]
    spy = _Spy(monkeypatch)
    eps = 0.05
    out = lipschitz_check(clf, x, eps=eps, n_random=0, n_adversarial=20, gradient_steps=10)
    x1, x2 = spy.calls[-1]
    sep = _pnorm(x2 - x1, "l2")
    assert (sep > 0).all() and (sep <= eps * (1 + 1e-6)).all() and (x2 >= 0).all() and (x2 <= 1).all()
    # away from the kinks each f_i of l2 is locally a distance to one point: ascent finds ratio ~ 1/r
    assert out.adversarial_gradient_max_ratio == pytest.approx(out.bound, rel=1e-6)
    few = lipschitz_check(clf, x, eps=eps, n_random=0, n_adversarial=20, gradient_steps=0)
    assert few.adversarial_gradient_max_ratio == 0.0 and few.n_adversarial == 20


def test_gradient_steps_one_runs_the_search_and_no_adversarial_pairs_skip_it(fitted):
    x, clfs = fitted
    one = lipschitz_check(clfs["l1"], x, eps=0.1, n_random=5, n_adversarial=7, gradient_steps=1)
    assert one.n_adversarial == 14 and "gradient" in one.seconds and one.adversarial_gradient_max_ratio > 0
    none = lipschitz_check(clfs["l1"], x, eps=0.1, n_random=5, n_adversarial=0, gradient_steps=3)
    assert none.n_adversarial == 0 and "gradient" not in none.seconds
    assert none.adversarial_max_ratio == 0.0


def test_no_pairs_give_ratio_zero(fitted):
    x, clfs = fitted
    out = lipschitz_check(clfs["linf"], x, eps=0.1, n_random=0, n_adversarial=0)
    assert (out.random_max_ratio, out.adversarial_max_ratio, out.n_random, out.n_adversarial) == (0, 0, 0, 0)
    assert out.held


def test_more_pairs_than_points_draws_with_replacement(fitted):
    x, clfs = fitted
    out = lipschitz_check(clfs["linf"], x[:10], eps=0.1, n_random=25, n_adversarial=30, gradient_steps=1)
    assert out.n_random == 25 and out.n_adversarial == 60


def test_a_tight_bound_holds_with_zero_tolerance_on_exact_data():
    """Dyadic points, l-inf: every ratio is computed exactly, the toward-nearest ones are exactly 1/r,
    and ``held`` must accept equality."""
    x = np.array([[0.0, 0.0], [0.25, 0.0], [0.75, 0.5], [1.0, 0.5]])
    y = np.array([0, 0, 1, 1])
    clf = LocallyLipschitzClassifier(norm="linf").fit(x, y)
    assert clf.r_ == 0.25  # classes 0.5 apart
    out = lipschitz_check(clf, x, eps=0.125, n_random=0, n_adversarial=4, gradient_steps=0, tol=0.0)
    assert out.adversarial_toward_nearest_max_ratio == out.bound == 4.0
    assert out.held
    assert not lipschitz_check(clf, x, eps=0.125, n_random=0, n_adversarial=4, gradient_steps=0,
                               bound=3.999).held


def test_the_log_line_reports_the_maxima_and_the_verdict(fitted, caplog):
    x, clfs = fitted
    clf = clfs["l2"]
    with caplog.at_level(logging.INFO, logger="lipschitz_construct.bound_check"):
        ok = lipschitz_check(clf, x, eps=0.1, n_random=20, n_adversarial=5, gradient_steps=0)
        bad = lipschitz_check(clf, x, eps=0.1, n_random=20, n_adversarial=5, gradient_steps=0,
                              bound=0.5 / clf.r_)
    msgs = [rec.getMessage() for rec in caplog.records if rec.name == "lipschitz_construct.bound_check"]
    assert msgs == [f"Lipschitz check: random max {o.random_max_ratio:.6g}, adversarial max "
                    f"{o.adversarial_max_ratio:.6g}, bound {o.bound:.6g} ({v})"
                    for o, v in ((ok, "held"), (bad, "VIOLATED"))]


@pytest.mark.parametrize("kw, match", [
    ({"eps": 0.0}, "eps=0.0 must be a positive number"),
    ({"eps": -0.1}, "eps=-0.1 must be a positive number"),
    ({"eps": float("inf")}, "eps=inf must be a positive number"),
    ({"eps": float("nan")}, "eps=nan must be a positive number"),
    ({"eps": 0.1, "bound": 0.0}, "bound=0.0 must be a positive number"),
    ({"eps": 0.1, "bound": float("inf")}, "bound=inf must be a positive number"),
])
def test_bad_eps_and_bound_are_rejected(fitted, kw, match):
    x, clfs = fitted
    with pytest.raises(ValueError, match=match):
        lipschitz_check(clfs["linf"], x, **kw)


def test_a_bound_below_one_is_accepted(fitted):
    x, clfs = fitted
    out = lipschitz_check(clfs["linf"], x, eps=0.1, n_random=5, n_adversarial=2, gradient_steps=0, bound=0.5)
    assert out.bound == 0.5


def test_points_of_another_width_and_an_unfitted_classifier_are_rejected(fitted):
    x, clfs = fitted
    with pytest.raises(ValueError, match="x has 5 features per point, the classifier 6"):
        lipschitz_check(clfs["linf"], x[:, :5], eps=0.1)
    with pytest.raises(NotFittedError, match=r"before lipschitz_check\(\)"):
        lipschitz_check(LocallyLipschitzClassifier(), x, eps=0.1)


def _torch_ratio(module, x2, X1, F1, threat):
    sep = threat.norm_of(x2 - X1)
    return (module.distances(x2) - F1).abs().amax(1) / sep


@pytest.mark.parametrize("norm", ["linf", "l2", "l1"])
def test_one_gradient_step_is_an_eps_quarter_ascent_step_kept_only_where_it_helps(fitted, norm):
    """``_gradient_pairs`` with 0 and 1 steps against the same search written out by hand: start
    uniform in the ball, one ascent step of size eps/4 on the ratio, keep the better point."""
    import torch

    from separation import ThreatModel

    x, clfs = fitted
    clf, eps = clfs[norm], 0.04
    # training points (their own class distance grows at rate 1 from the start: a step cannot help)
    # and points off them (where it does)
    x1 = np.concatenate([x[:5] / 255, np.random.default_rng(2).uniform(0.3, 0.7, (10, 6))])
    d1 = clf.class_distances(x1)
    threat = ThreatModel(norm, eps)
    module = clf.as_torch_module()
    X1, F1 = torch.from_numpy(x1), torch.from_numpy(d1)
    start = threat.project(X1 + torch.from_numpy(threat.sample(np.random.default_rng(3), 15, 6)), X1)
    np.testing.assert_array_equal(lip._gradient_pairs(clf, x1, d1, threat, 0, np.random.default_rng(3)),
                                  start.numpy())
    s = start.clone().requires_grad_(True)
    r0 = _torch_ratio(module, s, X1, F1, threat)
    (g,) = torch.autograd.grad(r0.sum(), [s])
    step = threat.ascent_step(start, g, X1, eps / 4)
    r1 = _torch_ratio(module, step, X1, F1, threat).detach()
    better = (r1 > r0.detach()).numpy()
    assert better.any() and not better.all()  # both branches of the keep-the-best rule are taken
    want = np.where(better[:, None], step.detach().numpy(), start.numpy())
    got = lip._gradient_pairs(clf, x1, d1, threat, 1, np.random.default_rng(3))
    np.testing.assert_array_equal(got, want)


def test_more_gradient_steps_never_lower_a_pair_ratio(fitted):
    from separation import ThreatModel

    x, clfs = fitted
    clf = clfs["l2"]
    x1 = np.random.default_rng(2).uniform(0.3, 0.7, (20, 6))  # off the training points
    d1 = clf.class_distances(x1)
    threat = ThreatModel("l2", 0.05)
    ratios = [lip._ratios(clf, x1, lip._gradient_pairs(clf, x1, d1, threat, k, np.random.default_rng(5)), d1=d1)
              for k in (0, 2, 6)]
    assert (ratios[1] >= ratios[0] * (1 - 1e-12)).all() and (ratios[2] >= ratios[1] * (1 - 1e-12)).all()
    assert ratios[2].mean() > ratios[0].mean()


def test_ratios_drop_pairs_at_distance_zero_and_use_the_given_distances(fitted):
    x, clfs = fitted
    clf = clfs["linf"]
    x1 = x[:4].astype(np.float64) / 255
    x2 = x1.copy()
    x2[1:3] += 0.01
    d1 = clf.class_distances(x1)
    got = lip._ratios(clf, x1, x2)
    assert got.shape == (2,)  # the two unmoved pairs are dropped
    np.testing.assert_allclose(got, np.abs(d1[1:3] - clf.class_distances(x2[1:3])).max(1) / 0.01, rtol=1e-9)
    np.testing.assert_array_equal(lip._ratios(clf, x1, x2, d1=d1), got)
    assert lip._ratios(clf, x1, x1).shape == (0,)


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_the_pairs_are_the_documented_seeded_stream(fitted, monkeypatch, norm):
    """Starts without replacement while there are enough points (n == len(x): each point once), then
    x' = clip(x + u), u from the threat model's sampler, all from one seeded generator."""
    from separation import ThreatModel

    x, clfs = fitted
    spy = _Spy(monkeypatch)
    lipschitz_check(clfs[norm], x, eps=0.1, n_random=len(x), n_adversarial=len(x), gradient_steps=0, seed=3)
    X = x.astype(np.float64) / 255.0
    rng = np.random.default_rng(3)
    idx = rng.choice(len(X), len(X), replace=False)
    want2 = np.clip(X[idx] + ThreatModel(norm, 0.1).sample(rng, len(X), X.shape[1]), 0.0, 1.0)
    (x1, x2), (a1, _) = spy.calls
    np.testing.assert_array_equal(x1, X[idx])
    np.testing.assert_array_equal(x2, want2)
    np.testing.assert_array_equal(a1, X[rng.choice(len(X), len(X), replace=False)])
    assert len(set(map(bytes, a1))) == len(X)  # every point once


def test_one_adversarial_pair_runs_both_searches(fitted):
    x, clfs = fitted
    out = lipschitz_check(clfs["l2"], x, eps=0.05, n_random=0, n_adversarial=1, gradient_steps=2)
    assert out.n_adversarial == 2 and out.adversarial_toward_nearest_max_ratio > 0
    assert out.adversarial_gradient_max_ratio > 0
