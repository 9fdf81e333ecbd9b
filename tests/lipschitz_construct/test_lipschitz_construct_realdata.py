"""The classifier of the proof on a real MNIST subset from ../shared/data (copied to a temp folder)."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist

from lipschitz_construct import LocallyLipschitzClassifier, lipschitz_check
from helpers.paths import SHARED_DATA

SHARED_DATA = SHARED_DATA  # ../shared/data from the repo root

pytestmark = pytest.mark.realdata


@pytest.fixture(scope="module")
def mnist_subset(tmp_path_factory):
    if not (SHARED_DATA / "MNIST" / "raw").is_dir():
        pytest.skip(f"real data not available: {SHARED_DATA}/MNIST/raw is missing (the shared data "
                    "folder lives beside the repository as ../shared/data)")
    root = tmp_path_factory.mktemp("data")
    shutil.copytree(SHARED_DATA / "MNIST", root / "MNIST")  # torchvision unpacks beside the .gz files
    for p in (root / "MNIST").rglob("*"):
        p.chmod(0o644 if p.is_file() else 0o755)
    from separation import load_dataset

    ds = load_dataset("mnist", root=root)
    assert ds.x_train.shape == (60000, 1, 28, 28) and ds.x_train.dtype == np.uint8
    return ds.subset(3000, seed=0)


@pytest.fixture(scope="module")
def fitted(mnist_subset):
    ds = mnist_subset
    return ds, LocallyLipschitzClassifier(norm="linf").fit(ds.x_train, ds.y_train)


def _flat(x):
    return x.reshape(len(x), -1).astype(np.float64)


def scipy_class_distances(q, x, y):
    """dist(q, X_c) for every class, from scipy's chebyshev matrix (independent of this package)."""
    full = cdist(_flat(q), _flat(x), "chebyshev") / 255.0
    return np.stack([full[:, y == c].min(axis=1) for c in np.unique(y)], axis=1)


def test_theorem_claims_on_mnist_subset(fitted):
    ds, clf = fitted
    full = cdist(_flat(ds.x_train), _flat(ds.x_train), "chebyshev") / 255.0
    full[ds.y_train[:, None] == ds.y_train[None, :]] = np.inf
    separation = full.min(axis=1)
    assert clf.r_ == separation.min() / 2 > 0
    pred, rad = clf.predict_with_radius(ds.x_train)
    np.testing.assert_array_equal(pred, ds.y_train)  # 100% train accuracy
    assert rad.min() == clf.r_  # every training point certified at r, the closest pair exactly at r
    np.testing.assert_array_equal(rad * 2, separation)  # own class at 0: radius = separation / 2
    assert clf.astuteness(ds.x_train, ds.y_train, clf.r_) == 1.0
    test_pred, test_rad = clf.predict_with_radius(ds.x_test)
    assert (test_pred == ds.y_test).mean() > 0.4  # l-inf nearest class on 3000 points: ~55%, chance 10%
    assert 0 <= clf.astuteness(ds.x_test, ds.y_test, 0.1) <= (test_pred == ds.y_test).mean()


def test_exact_against_an_independent_implementation(fitted):
    ds, clf = fitted
    q = ds.x_test[:40]
    rng = np.random.default_rng(0)
    qf = np.clip(q / 255.0 + rng.uniform(-0.03, 0.03, q.shape), 0, 1)
    for queries, want in ((q, scipy_class_distances(q, ds.x_train, ds.y_train)),
                          (qf, np.stack([cdist(_flat(qf), _flat(ds.x_train[ds.y_train == c]) / 255.0,
                                               "chebyshev").min(axis=1) for c in clf.classes_], axis=1))):
        np.testing.assert_array_equal(clf.class_distances(queries), want)
        s = np.sort(want, axis=1)
        np.testing.assert_array_equal(clf.certified_radius(queries), (s[:, 1] - s[:, 0]) / 2)


def test_module_and_lipschitz_check_on_mnist(fitted):
    ds, clf = fitted
    module = clf.as_torch_module()
    x = torch.from_numpy(ds.x_test[:16]).float() / 255  # float32 8-bit images are recognised exactly
    logits = module(x)
    assert logits.shape == (16, 10)
    np.testing.assert_array_equal(logits.argmax(1).numpy(), clf.predict(ds.x_test[:16]))
    out = lipschitz_check(clf, ds.x_test[:200], eps=0.1, n_random=100, n_adversarial=20, gradient_steps=2)
    assert out.held and out.adversarial_max_ratio == pytest.approx(out.bound, rel=1e-9)
