"""LocallyLipschitzClassifier: the theorem's claims as properties, exactness, bad input, torch module."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from lipschitz_construct import (InvalidParameterError, LocallyLipschitzClassifier, NotFittedError,
                                 NotSeparatedError, astuteness_from, lipschitz_check)
from separation import ThreatModel
from separation.engines import pairwise_float64

NORMS = ("linf", "l2", "l1")
PROPS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# -- helpers -----------------------------------------------------------------------------------------
def unit(x: np.ndarray) -> np.ndarray:
    """Points as float64 in [0, 1], flattened."""
    x = x.reshape(len(x), -1)
    return x.astype(np.float64) / 255.0 if x.dtype == np.uint8 else x.astype(np.float64)


def brute_class_dist(q, x, y, norm) -> np.ndarray:
    """Float64 brute force: dist(q_j, X_c) for each class c in sorted label order.

    Same units as ``separation``: for 8-bit data the distance in grey levels, divided by 255."""
    if q.dtype == np.uint8 and x.dtype == np.uint8:
        P = pairwise_float64(q.reshape(len(q), -1), x.reshape(len(x), -1), norm) / 255.0
    else:
        P = pairwise_float64(unit(q), unit(x), norm)
    return np.stack([P[:, y == c].min(axis=1) for c in np.unique(y)], axis=1)


def pnorm(v, norm):
    a = np.abs(v.reshape(len(v), -1))
    return a.max(1) if norm == "linf" else a.sum(1) if norm == "l1" else np.sqrt((a * a).sum(1))


def assert_dist_equal(got, want, norm):
    if norm == "linf":  # a max of exact differences: bit-identical in every engine
        np.testing.assert_array_equal(got, want)
    else:  # sums may be added in another order
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)


@st.composite
def labelled_sets(draw, max_dim=6):
    """Small training sets (uint8 or a float grid), 2-4 classes, no identical points across classes."""
    d = draw(st.integers(1, max_dim))
    k = draw(st.integers(2, 4))
    n = draw(st.integers(k, 14))
    as_bytes = draw(st.booleans())
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    if as_bytes:  # few distinct levels: many exact ties
        levels = np.array([0, 1, 2, 128, 254, 255], dtype=np.uint8)
        x = rng.choice(levels, size=(n, d)) if draw(st.booleans()) else rng.integers(0, 256, (n, d), dtype=np.uint8)
        x = x.astype(np.uint8)
    else:  # multiples of 1/64: every sum and difference is exact in float64
        x = rng.integers(0, 65, (n, d)) / 64.0
    y = np.concatenate([np.arange(k), rng.integers(0, k, n - k)]) * 3 + 1  # labels 1, 4, 7, 10
    P = pairwise_float64(unit(x), unit(x), "linf")
    assume((P[y[:, None] != y[None, :]] > 0).all())
    return x, y


# -- the theorem, as properties ------------------------------------------------------------------------
@PROPS
@given(data=labelled_sets(), norm=st.sampled_from(NORMS))
def test_training_accuracy_and_astuteness_at_r_are_one(data, norm):
    x, y = data
    clf = LocallyLipschitzClassifier(norm=norm).fit(x, y)
    sep = brute_class_dist(x, x, y, norm)
    other = np.where(np.unique(y)[None, :] == y[:, None], np.inf, sep).min(axis=1)
    assert clf.r_ == pytest.approx(other.min() / 2, rel=1e-12)  # half the train--train separation
    assert clf.lipschitz_bound_ == pytest.approx(1 / clf.r_)
    np.testing.assert_array_equal(clf.predict(x), y)
    assert clf.astuteness(x, y, clf.r_) == 1.0
    assert np.all(clf.certified_radius(x) >= clf.r_)


@PROPS
@given(data=labelled_sets(), norm=st.sampled_from(NORMS), seed=st.integers(0, 10**6))
def test_scores_equal_float64_brute_force(data, norm, seed):
    x, y = data
    clf = LocallyLipschitzClassifier(norm=norm).fit(x, y)
    rng = np.random.default_rng(seed)
    q_grid = x[rng.integers(0, len(x), 5)]  # on the training grid (uint8 stays uint8)
    q_float = rng.uniform(0, 1, (6, x.shape[1]))  # arbitrary floats
    labels = np.unique(y)
    for q, on_grid in ((q_grid, True), (q_float, False), (x, True)):
        want = brute_class_dist(q, x, y, norm)
        got = clf.class_distances(q)
        assert_dist_equal(got, want, norm)
        assert_dist_equal(clf.scores(q), want / clf.r_, norm)
        s = np.sort(want, axis=1)
        np.testing.assert_allclose(clf.certified_radius(q), (s[:, 1] - s[:, 0]) / 2, rtol=1e-12, atol=1e-15)
        pred = clf.predict(q)
        # the documented tie rule, on the classifier's own distances: the smallest class index
        # among the classes at the smallest distance (the top-2 path agrees with the full one)
        np.testing.assert_array_equal(pred, labels[np.argmin(got, axis=1)])
        if on_grid:  # exact arithmetic (bytes, or multiples of 1/64): ties are exact, the rule is exact
            np.testing.assert_array_equal(pred, labels[np.argmin(want, axis=1)])
        else:  # l1/l2 sums of arbitrary floats round in each summation order: classes tied in exact
            # arithmetic may come out in either order, so compare where the two best are apart
            apart = s[:, 1] - s[:, 0] > 64 * np.finfo(np.float64).eps * s[:, 1]
            np.testing.assert_array_equal(pred[apart], labels[np.argmin(want, axis=1)][apart])


@PROPS
@given(data=labelled_sets(), norm=st.sampled_from(NORMS), seed=st.integers(0, 10**6))
def test_each_score_is_lipschitz_with_constant_one_over_r(data, norm, seed):
    x, y = data
    clf = LocallyLipschitzClassifier(norm=norm).fit(x, y)
    rng = np.random.default_rng(seed)
    a = rng.uniform(0, 1, (20, x.shape[1]))
    b = np.clip(a + ThreatModel(norm, rng.uniform(0.01, 1.0)).sample(rng, 20, x.shape[1]), 0, 1)
    b[:5] = rng.uniform(0, 1, (5, x.shape[1]))  # and some far-apart pairs
    lhs = np.abs(clf.scores(a) - clf.scores(b))
    rhs = pnorm(a - b, norm)[:, None] / clf.r_
    assert np.all(lhs <= rhs * (1 + 1e-9) + 1e-12)


@PROPS
@given(data=labelled_sets(max_dim=3), norm=st.sampled_from(NORMS), seed=st.integers(0, 10**6))
def test_no_point_within_its_certified_radius_changes_class(data, norm, seed):
    x, y = data
    clf = LocallyLipschitzClassifier(norm=norm).fit(x, y)
    rng = np.random.default_rng(seed)
    q = np.concatenate([unit(x), rng.uniform(0, 1, (8, x.shape[1]))])
    pred, radius = clf.predict_with_radius(q)
    labels = np.unique(y)
    for i in np.flatnonzero(radius > 0):
        d = q.shape[1]
        # brute force: many directions (random, axes, towards every training point) at radii up to
        # just below the certificate; the prediction is recomputed by brute force
        dirs = [ThreatModel(norm, 1.0).sample(rng, 40, d)]
        dirs.append(np.concatenate([np.eye(d), -np.eye(d)]))
        dirs.append(unit(x) - q[i])
        dirs = np.concatenate(dirs)
        n = pnorm(dirs, norm)
        dirs = dirs[n > 0] / n[n > 0, None]
        scale = radius[i] * (1 - 1e-9) * np.concatenate([np.ones(len(dirs)), rng.uniform(0, 1, len(dirs))])
        pts = q[i] + np.concatenate([dirs, dirs]) * scale[:, None]  # may leave [0, 1]^d: fine here
        want = labels[np.argmin(brute_class_dist(pts, x, y, norm), axis=1)]
        assert np.all(want == pred[i]), (i, radius[i])
        inside = np.all((pts >= 0) & (pts <= 1), axis=1)
        if inside.any():
            np.testing.assert_array_equal(clf.predict(pts[inside]), want[inside])


def test_certified_radius_is_tight_towards_the_runner_up():
    """Half-way between a point and the nearest point of the other class the prediction may flip."""
    x = np.array([[0.0, 0.0], [1.0, 0.0]])
    y = np.array([0, 1])
    clf = LocallyLipschitzClassifier(norm="l2").fit(x, y)
    q = np.array([[0.2, 0.0]])
    assert clf.certified_radius(q)[0] == pytest.approx(0.3)
    assert clf.predict(q + [[0.3 - 1e-9, 0.0]])[0] == 0
    assert clf.predict(q + [[0.3 + 1e-9, 0.0]])[0] == 1


def test_ties_go_to_the_smaller_class_index():
    x = np.array([[0.0], [1.0]])
    for labels in ([5, 2], [2, 5]):
        clf = LocallyLipschitzClassifier(norm="linf").fit(x, np.array(labels))
        assert clf.predict(np.array([[0.5]]))[0] == 2
        assert clf.certified_radius(np.array([[0.5]]))[0] == 0.0


# -- the probe-pruned l-inf kernel against the reference, at a size with several blocks, ties and seeds -------
@pytest.fixture(scope="module")
def blocky():
    rng = np.random.default_rng(7)
    n, d = 5200, 24  # > 2 blocks per class
    x = rng.choice(np.array([0, 1, 2, 3, 250, 253, 254, 255], dtype=np.uint8), size=(n, d))
    x[: n // 3] = rng.integers(0, 256, (n // 3, d), dtype=np.uint8)
    y = rng.integers(0, 3, n)
    keep = np.unique(x, axis=0, return_index=True)[1]  # no duplicates at all
    return x[np.sort(keep)], y[np.sort(keep)]


@pytest.mark.parametrize("query_kind", ["bytes", "floats"])
def test_probe_kernel_equals_reference_engine(blocky, query_kind):
    x, y = blocky
    rng = np.random.default_rng(3)
    q = x[rng.integers(0, len(x), 60)]
    if query_kind == "floats":
        q = np.clip(q / 255.0 + rng.uniform(-0.02, 0.02, q.shape), 0, 1)
    fused = LocallyLipschitzClassifier(norm="linf", r=0.1, engine="cpu").fit(x, y)
    ref = LocallyLipschitzClassifier(norm="linf", r=0.1, engine="reference").fit(x, y)
    d_f, i_f = fused.class_distances(q, return_indices=True)
    d_r = ref.class_distances(q)
    np.testing.assert_array_equal(d_f, d_r)
    # the returned indices are points of the right class at exactly that distance
    assert np.all(y[i_f] == np.arange(3)[None, :])
    at = np.array([[brute_class_dist(q[a:a + 1], x[i_f[a, c]:i_f[a, c] + 1], np.zeros(1), "linf")[0, 0]
                    for c in range(3)] for a in range(len(q))])
    np.testing.assert_array_equal(at, d_f)
    p_f, rad_f = fused.predict_with_radius(q)
    p_r, rad_r = ref.predict_with_radius(q)
    np.testing.assert_array_equal(p_f, p_r)
    np.testing.assert_array_equal(rad_f, rad_r)


def test_probe_kernel_float_support_equals_reference(blocky):
    x, y = blocky
    xf = (x[:1500] / 255.0 + 1e-3).clip(0, 1)  # floats off the byte grid
    rng = np.random.default_rng(4)
    q = rng.uniform(0, 1, (30, x.shape[1]))
    fused = LocallyLipschitzClassifier(norm="linf", r=0.1, engine="cpu").fit(xf, y[:1500])
    np.testing.assert_array_equal(fused.class_distances(q), brute_class_dist(q, xf, y[:1500], "linf"))


# -- astuteness and the Lipschitz check -------------------------------------------------------------
def test_astuteness_counts_correct_and_certified():
    pred = np.array([1, 1, 2, 2])
    y = np.array([1, 1, 2, 0])
    rad = np.array([0.0, 0.2, 0.3, 0.5])
    assert astuteness_from(pred, rad, y, 0.0) == 0.75
    assert astuteness_from(pred, rad, y, 0.2) == 0.5  # radius >= eps (open ball of radius eps)
    np.testing.assert_array_equal(astuteness_from(pred, rad, y, [0.1, 0.25, 1.0]), [0.5, 0.25, 0.0])
    with pytest.raises(ValueError, match="eps"):
        astuteness_from(pred, rad, y, -0.1)


def test_lipschitz_check_fails_on_a_bound_that_is_too_small():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (60, 8), dtype=np.uint8)
    y = rng.integers(0, 3, 60)
    clf = LocallyLipschitzClassifier(norm="linf").fit(x, y)
    out = lipschitz_check(clf, x, eps=0.3, n_random=50, n_adversarial=20, gradient_steps=0,
                          bound=0.5 / clf.r_)  # the constant of a classifier twice as robust
    assert not out.held
    assert out.adversarial_max_ratio > out.bound


def test_lipschitz_check_catches_scores_that_are_not_lipschitz():
    """A classifier whose class distances are squared (not 1-Lipschitz) fails the check."""

    class Squared(LocallyLipschitzClassifier):
        def class_distances(self, q, *, return_indices=False):
            out = super().class_distances(q, return_indices=return_indices)
            if return_indices:
                return 4 * out[0] ** 2, out[1]
            return 4 * out ** 2

    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (40, 6), dtype=np.uint8)
    y = rng.integers(0, 2, 40)
    clf = Squared(norm="l2").fit(x, y)
    out = lipschitz_check(clf, x, eps=0.5, n_random=200, n_adversarial=20, gradient_steps=0)
    assert not out.held


def test_adversarial_pairs_move_towards_the_runner_up_class():
    """From a training point (distance 0 to its own class) only a move towards the nearest point
    of the *second* nearest class gives pairs: along it that distance falls at rate 1, the ratio
    is exactly 1/r, on every pair."""
    rng = np.random.default_rng(2)
    x = rng.integers(0, 256, (30, 5), dtype=np.uint8)
    y = np.arange(30) % 3
    clf = LocallyLipschitzClassifier(norm="l1").fit(x, y)
    out = lipschitz_check(clf, x, eps=0.05, n_random=0, n_adversarial=25, gradient_steps=0)
    assert out.n_adversarial == 25
    assert out.adversarial_toward_nearest_max_ratio == pytest.approx(1 / clf.r_, rel=1e-9)
    assert out.held


@pytest.mark.parametrize("norm", NORMS)
def test_lipschitz_check_holds_and_is_tight(norm):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (60, 8), dtype=np.uint8)
    y = rng.integers(0, 3, 60)
    clf = LocallyLipschitzClassifier(norm=norm).fit(x, y)
    out = lipschitz_check(clf, x, eps=0.3, n_random=100, n_adversarial=20, gradient_steps=3)
    assert out.held
    assert out.bound == pytest.approx(1 / clf.r_)
    assert out.random_max_ratio <= out.bound * (1 + 1e-9)
    # moving towards the nearest point of a class shrinks that distance at rate 1: tight
    assert out.adversarial_max_ratio == pytest.approx(out.bound, rel=1e-9)


# -- bad input ---------------------------------------------------------------------------------------
def test_methods_before_fit_raise_not_fitted():
    clf = LocallyLipschitzClassifier()
    for call in (lambda: clf.predict(np.zeros((1, 2))), lambda: clf.scores(np.zeros((1, 2))),
                 lambda: clf.certified_radius(np.zeros((1, 2))), clf.as_torch_module,
                 lambda: clf.astuteness(np.zeros((1, 2)), [0], 0.1)):
        with pytest.raises(NotFittedError, match=r"call fit\(x_train, y_train\)"):
            call()
    assert issubclass(NotFittedError, ValueError)


@pytest.mark.parametrize("r", [0, -0.5, 0.0, float("nan"), float("inf"), "big", True, None])
def test_bad_r_is_rejected_with_a_fix(r):
    with pytest.raises(InvalidParameterError, match="r='auto'|positive"):
        LocallyLipschitzClassifier(r=r)
    assert issubclass(InvalidParameterError, ValueError)


def test_bad_norm_and_engine_are_rejected():
    with pytest.raises(ValueError, match="Use one of linf, l2, l1"):
        LocallyLipschitzClassifier(norm="l3")
    with pytest.raises(ValueError, match=r"^Unknown engine 'gpu-magic'\. Use 'auto' or one of reference, cpu, "):
        LocallyLipschitzClassifier(engine="gpu-magic")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="not available"):
            LocallyLipschitzClassifier(engine="cuda").fit(np.eye(2), [0, 1])
    with pytest.raises(ValueError, match="Unknown parameter"):
        LocallyLipschitzClassifier().set_params(eps=3)


def test_mismatched_features_and_bad_data():
    clf = LocallyLipschitzClassifier().fit(np.eye(3), [0, 1, 2])
    with pytest.raises(ValueError, match="4 features per point but the classifier was fitted on 3"):
        clf.predict(np.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        clf.predict(np.full((1, 3), 2.0))
    with pytest.raises(ValueError, match="same length"):
        LocallyLipschitzClassifier().fit(np.eye(3), [0, 1])
    with pytest.raises(ValueError, match="two classes"):
        LocallyLipschitzClassifier().fit(np.eye(3), [1, 1, 1])


def test_identical_points_with_different_labels_are_not_separated():
    x = np.array([[0.5, 0.5], [0.5, 0.5], [0.0, 1.0]])
    with pytest.raises(NotSeparatedError, match="not separated.*#0.*#1|pass an explicit r"):
        LocallyLipschitzClassifier().fit(x, [0, 1, 1])
    # with an explicit r the classifier is still built (the claims then fail)
    clf = LocallyLipschitzClassifier(r=0.1).fit(x, [0, 1, 1])
    assert clf.astuteness(x, [0, 1, 1], 0.1) < 1


def test_torch_input_and_sklearn_plumbing():
    x = torch.tensor([[0.0, 0.1], [0.9, 1.0]], dtype=torch.float32)
    clf = LocallyLipschitzClassifier(norm="l2", r=0.25).fit(x, torch.tensor([3, 8]))
    assert clf.get_params() == {"norm": "l2", "r": 0.25, "engine": "auto"}
    assert "norm='l2'" in repr(clf)
    np.testing.assert_array_equal(clf.classes_, [3, 8])
    np.testing.assert_array_equal(clf.predict(x), [3, 8])


def test_set_params_changes_each_parameter_and_names_the_valid_ones():
    clf = LocallyLipschitzClassifier()
    assert clf.get_params(deep=False) == clf.get_params() == {"norm": "linf", "r": "auto", "engine": "auto"}
    assert clf.set_params(norm="l1") is clf and clf.get_params()["norm"] == "l1"
    clf.set_params(r=0.125, engine="reference")
    assert clf.get_params() == {"norm": "l1", "r": 0.125, "engine": "reference"}
    with pytest.raises(InvalidParameterError, match=r"^Unknown parameter\(s\) alpha, beta; valid: norm, r, engine\.$"):
        clf.set_params(beta=1, alpha=2, norm="l2")
    assert clf.get_params()["norm"] == "l1"  # a rejected call changes nothing


def test_astuteness_names_y_when_its_length_is_wrong():
    clf = LocallyLipschitzClassifier().fit(np.array([[0.0], [1.0]]), np.array([0, 1]))
    with pytest.raises(ValueError, match=r"^y has 3 labels but the data has 2 points"):
        clf.astuteness(np.array([[0.0], [1.0]]), [0, 1, 1], 0.1)


def test_certified_fraction_counts_radii_at_least_eps():
    from lipschitz_construct import certified_fraction

    rad = np.array([0.0, 0.1, 0.1, 0.3])
    np.testing.assert_array_equal(certified_fraction(rad, [0.0, 0.1, 0.2, 0.3, 0.31]), [1.0, 0.75, 0.25, 0.25, 0.0])
    np.testing.assert_array_equal(certified_fraction([0.5, 0.25], (0.25,)), [1.0])


# -- the torch module ----------------------------------------------------------------------------------
@pytest.mark.parametrize("norm", NORMS)
def test_torch_module_logits_gradients_and_argmax(norm):
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (40, 1, 4, 4), dtype=np.uint8)
    y = rng.integers(0, 4, 40)
    clf = LocallyLipschitzClassifier(norm=norm).fit(x, y)
    module = clf.as_torch_module()
    q = torch.from_numpy(rng.uniform(0, 1, (12, 1, 4, 4)))
    logits = module(q)
    assert logits.shape == (12, 4)
    np.testing.assert_allclose(logits.numpy(), -clf.scores(q.numpy()), rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(clf.classes_[logits.argmax(1).numpy()], clf.predict(q.numpy()))
    # float32 batches work too and agree up to rounding
    l32 = module(q.float())
    assert l32.dtype == torch.float32
    np.testing.assert_allclose(l32.double().numpy(), logits.numpy(), atol=1e-5)
    # differentiable: the gradient of the distance to the nearest point, norm-bounded by 1/r
    qg = q.clone().requires_grad_(True)
    module(qg)[:, 0].sum().backward()
    g = qg.grad.reshape(12, -1).numpy()
    assert np.isfinite(g).all() and np.abs(g).sum() > 0
    dual = {"linf": lambda v: np.abs(v).sum(1), "l1": lambda v: np.abs(v).max(1),
            "l2": lambda v: np.sqrt((v * v).sum(1))}[norm]
    assert np.all(dual(g) <= 1 / clf.r_ * (1 + 1e-9))
    with pytest.raises(ValueError, match="features"):
        module(torch.zeros(2, 5))
    with pytest.raises(TypeError, match="floating-point"):
        module(torch.zeros(2, 16, dtype=torch.uint8))


def test_torch_module_runs_under_the_attacks_and_lipschitz_estimator():
    analysis_lip = pytest.importorskip("analysis.local_lipschitz")
    attacks = pytest.importorskip("analysis.attacks")
    rng = np.random.default_rng(2)
    x = rng.integers(0, 256, (50, 1, 4, 4), dtype=np.uint8)
    y = rng.integers(0, 3, 50)
    clf = LocallyLipschitzClassifier(norm="linf").fit(x, y)
    module = clf.as_torch_module()
    xt = torch.from_numpy(x[:10]).float() / 255
    lip, pts = analysis_lip.estimate_local_lipschitz(module, xt, eps=0.05, norm="linf", steps=3,
                                                     generator=torch.Generator().manual_seed(0),
                                                     return_points=True)
    # ||f(x) - f(x')||_1 / ||x - x'||_inf over K = 3 logits -dist/r, each (1/r)-Lipschitz: at most
    # 3/r in exact arithmetic. The module computes in float32: each logit is off by at most
    # 3 u/r (u = 2^-24: the rounding of the nearest point, of the difference and of the
    # division), so the ratio is off by at most 2 * 3 * 3u / (r ||x - x'||) plus relative rounding
    u = np.finfo(np.float32).eps / 2
    sep = np.abs(pts.double().numpy() - xt.double().numpy()).reshape(10, -1).max(axis=1)
    bound = 3 / clf.r_ * (1 + 8 * u) + 2 * 3 * 3 * u / (clf.r_ * sep)
    assert np.all(lip <= bound)
    # and the exact (float64) ratio at the returned points respects 3/r with float64 rounding only
    exact = np.abs(clf.scores(pts.double().numpy()) - clf.scores(xt.double().numpy())).sum(1) / sep
    assert np.all(exact <= 3 / clf.r_ * (1 + 1e-12))
    adv = attacks.pgd(module, xt, torch.from_numpy(y[:10]), eps=0.05, norm="linf", steps=3,
                      generator=torch.Generator().manual_seed(0))
    pred_adv = clf.predict(adv.double().numpy())
    _, rad = clf.predict_with_radius(xt.double().numpy())
    certified = rad > 0.05 + 1e-6
    # no attack can flip a point certified beyond its budget
    np.testing.assert_array_equal(pred_adv[certified], clf.predict(xt.double().numpy())[certified])


def test_not_fitted_errors_name_the_method_that_was_called():
    clf = LocallyLipschitzClassifier()
    q = np.zeros((1, 2))
    for name, call in (("scores", lambda: clf.scores(q)), ("as_torch_module", clf.as_torch_module),
                       ("certified_radius", lambda: clf.certified_radius(q)),
                       ("predict_with_radius", lambda: clf.predict_with_radius(q)),
                       ("class_distances", lambda: clf.class_distances(q))):
        with pytest.raises(NotFittedError, match=rf"before {name}\(\)"):
            call()


@pytest.mark.parametrize("eps", [float("nan"), float("inf"), -1e-12, [0.1, -0.1], [0.1, float("nan")],
                                 [float("inf")], [-0.0, -1.0]])
def test_astuteness_rejects_every_bad_eps(eps):
    pred, rad, y = np.array([1, 2]), np.array([0.1, 0.3]), np.array([1, 2])
    match = r"^eps=.* is not valid: pass a finite number >= 0 \(in \[0, 1\] pixel units\)\.$"
    with pytest.raises(ValueError, match=match):
        astuteness_from(pred, rad, y, eps)


def test_astuteness_certifies_a_radius_equal_to_eps_and_accepts_eps_zero():
    pred, y = np.array([1, 2, 3]), np.array([1, 2, 3])
    rad = np.array([0.0, 0.25, 0.5])
    assert astuteness_from(pred, rad, y, 0.25) == pytest.approx(2 / 3)
    assert astuteness_from(pred, rad, y, -0.0) == 1.0
    np.testing.assert_array_equal(astuteness_from(pred, rad, y, [0.0, 0.25, 0.5]), [1.0, 2 / 3, 1 / 3])


def test_torch_module_buffers_are_float32_inverse_radius_and_not_saved():
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (20, 4), dtype=np.uint8)
    y = np.arange(20) % 2
    clf = LocallyLipschitzClassifier(norm="linf").fit(x, y)
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # the buffer's dtype is its own, not the default
    try:
        module = clf.as_torch_module()
    finally:
        torch.set_default_dtype(old)
    assert module.inv_r.dtype == torch.float32
    assert module.inv_r.item() == pytest.approx(1 / clf.r_, rel=1e-7)
    assert next(iter(module.buffers())) is module.inv_r  # the first floating buffer
    assert module.state_dict() == {}  # derived from the classifier: nothing to save
    assert module.to(torch.float64).inv_r.dtype == torch.float64


def test_torch_module_describes_its_classifier():
    rng = np.random.default_rng(2)
    x = rng.integers(0, 256, (12, 1, 2, 3), dtype=np.uint8)
    clf = LocallyLipschitzClassifier(norm="l1").fit(x, np.arange(12) % 3)
    m = clf.as_torch_module()
    assert (m.norm, m.r, m.n_classes, m.input_shape) == ("l1", clf.r_, 3, (1, 2, 3))
    assert repr(m) == f"NearestClassLogits(norm='l1', r={clf.r_:.6g}, n_classes=3, support=(12, 6))"
    with pytest.raises(ValueError, match=r"^expected a batch of shape \(n, \*\(1, 2, 3\)\), got shape \(6,\); "
                                         r"for a single point use x\[None\]\.$"):
        m(torch.zeros(6))
    with pytest.raises(TypeError, match=r"^NearestClassLogits expects a floating-point torch tensor with values "
                                        r"in \[0, 1\]\.$"):
        m(torch.zeros(2, 6, dtype=torch.int64))


def test_a_failed_refit_leaves_the_classifier_unfitted():
    x = np.array([[0, 0], [9, 9], [0, 9]], dtype=np.uint8)
    clf = LocallyLipschitzClassifier(norm="linf").fit(x, [0, 1, 1])
    assert hasattr(clf, "separation_")
    with pytest.raises(ValueError, match=r"^y has fewer than two classes: the nearest-class classifier needs at "
                                         r"least two\.$"):
        clf.fit(x, [0, 0, 0])
    assert not hasattr(clf, "index_") and not hasattr(clf, "separation_")
    with pytest.raises(NotFittedError, match=r"before predict\(\)"):
        clf.predict(x)


def test_fit_names_the_bad_argument_and_records_its_timings_and_engine():
    clf = LocallyLipschitzClassifier(norm="l2")
    with pytest.raises(ValueError, match=r"^x is empty"):
        clf.fit(np.zeros((0, 3)), np.zeros(0, int))
    with pytest.raises(ValueError, match=r"^y has 2 labels but the data has 3 points"):
        clf.fit(np.eye(3), [0, 1])
    clf.fit(np.eye(3), [0, 1, 1])
    assert set(clf.fit_seconds_) == {"separation", "index"}
    assert all(isinstance(s, float) and s >= 0 for s in clf.fit_seconds_.values())
    assert clf.search_engine_ == clf.index_.engine_ and isinstance(clf.search_engine_, str)
    assert set(LocallyLipschitzClassifier(norm="l2", r=0.1).fit(np.eye(3), [0, 1, 1]).fit_seconds_) == {"index"}
