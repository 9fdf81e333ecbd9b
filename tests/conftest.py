"""Shared fixtures: real data from ../shared/data (copied to a writable place), random arrays,
and every global random generator seeded before each test (no test depends on what ran before)."""
from __future__ import annotations

import os
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import settings

# Property tests draw the same examples on every run (CI must not flake); HYPOTHESIS_PROFILE=explore
# draws new ones each run, to search for counterexamples locally.
settings.register_profile("deterministic", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "deterministic"))

from helpers.paths import SHARED_DATA  # noqa: E402


def _has(name: str) -> bool:
    return (SHARED_DATA / name / "raw").is_dir()


@pytest.fixture(scope="session")
def shared_data_root(tmp_path_factory) -> Path:
    """A copy of ../shared/data that a test may change (the commands themselves never write to a data root)."""
    if not _has("MNIST"):
        pytest.skip(f"real data not available: {SHARED_DATA} has no MNIST/raw (the shared data folder "
                    "lives beside the repository as ../shared/data)")
    root = tmp_path_factory.mktemp("data")
    for name in ("MNIST", "FashionMNIST"):
        if _has(name):
            shutil.copytree(SHARED_DATA / name, root / name)
            for p in (root / name).rglob("*"):
                p.chmod(0o644 if p.is_file() else 0o755)
    return root


@pytest.fixture(scope="session")
def mnist(shared_data_root):
    from separation import load_dataset

    return load_dataset("mnist", root=shared_data_root)


def pytest_collection_modifyitems(config, items):
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except Exception:  # pragma: no cover
        has_cuda = False
    skip_gpu = pytest.mark.skip(reason="needs a CUDA GPU (torch.cuda.is_available() is False)")
    for item in items:
        if "gpu" in item.keywords and not has_cuda:
            item.add_marker(skip_gpu)


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models: one intra-op torch thread is fastest, and robust to a busy shared machine."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(autouse=True)
def _seed_global_generators():
    """Seed Python's, numpy's and torch's global generators before every test: a test that draws
    from them (an unseeded ``torch.randn``, a random start without a generator) is reproducible."""
    random.seed(0)
    np.random.seed(0)
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return
    torch.manual_seed(0)


@pytest.fixture(autouse=True)
def _stores_below_the_test(tmp_path, monkeypatch):
    """Decoded image stores and cluster shards: each test's own (the defaults are the user's cache)."""
    monkeypatch.setenv("SEPARATION_STORE_DIR", str(tmp_path / "decoded-stores"))
    monkeypatch.setenv("SEPARATION_SHARD_DIR", str(tmp_path / "shards"))
