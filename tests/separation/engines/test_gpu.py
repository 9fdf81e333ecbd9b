"""GPU engines: same answers as the float64 reference. Skipped cleanly without CUDA."""
from __future__ import annotations

import numpy as np
import pytest

from separation import compute_separation

pytestmark = pytest.mark.gpu


@pytest.mark.parametrize("norm", ["linf", "l1", "l2"])
@pytest.mark.parametrize("levels", [3, 256])
@pytest.mark.parametrize("use_triton", [True, False])
def test_cuda_engine_matches_reference(norm, levels, use_triton):
    from separation.engines import CUDAEngine

    rng = np.random.default_rng(levels)
    x = rng.integers(0, levels, (700, 300)).astype(np.uint8)
    y = rng.integers(0, 7, 700)
    xt, yt = x[:90].copy(), rng.integers(0, 7, 90)
    ref = compute_separation(x, y, xt, yt, norm=norm, engine="reference")
    res = compute_separation(x, y, xt, yt, norm=norm, engine=CUDAEngine(use_triton=use_triton,
                                                                       block_bytes=64 * 300))
    np.testing.assert_array_equal(res.train_neighbors, ref.train_neighbors)
    np.testing.assert_array_equal(res.test_neighbors, ref.test_neighbors)
    np.testing.assert_array_equal(res.train_distances, ref.train_distances)  # exact recheck: bit for bit
    np.testing.assert_array_equal(res.test_distances, ref.test_distances)


def test_cuda_engine_float_data():
    from separation.engines import CUDAEngine

    rng = np.random.default_rng(0)
    x = rng.random((300, 50)) * 0.7
    y = rng.integers(0, 4, 300)
    xt, yt = rng.random((40, 50)), rng.integers(0, 4, 40)
    ref = compute_separation(x, y, xt, yt, norm="linf", engine="reference")
    res = compute_separation(x, y, xt, yt, norm="linf", engine=CUDAEngine())
    np.testing.assert_array_equal(res.train_distances, ref.train_distances)
    np.testing.assert_array_equal(res.train_neighbors, ref.train_neighbors)
    np.testing.assert_array_equal(res.test_distances, ref.test_distances)
    np.testing.assert_array_equal(res.test_neighbors, ref.test_neighbors)


def test_faiss_gpu_if_present():
    from separation.engines.faiss_engine import num_gpus

    if num_gpus() == 0:
        pytest.skip("faiss has no GPU here (install the 'gpu' extra: faiss-gpu)")
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (500, 64)).astype(np.uint8)
    y = rng.integers(0, 5, 500)
    ref = compute_separation(x, y, norm="linf", engine="reference")
    res = compute_separation(x, y, norm="linf", engine="faiss")
    np.testing.assert_array_equal(res.train_neighbors, ref.train_neighbors)


@pytest.mark.parametrize("norm", ["linf", "l1"])
def test_cuda_nearest_and_chunking(norm):
    from separation import nearest_neighbors
    from separation.engines import CUDAEngine

    rng = np.random.default_rng(7)
    q = rng.integers(0, 4, (333, 65)).astype(np.uint8)
    db = rng.integers(0, 4, (517, 65)).astype(np.uint8)
    ref = nearest_neighbors(q, db, norm=norm, engine="reference")
    for eng in (CUDAEngine(block_bytes=100 * 65), CUDAEngine()):  # many chunks, one chunk
        d, i = nearest_neighbors(q, db, norm=norm, engine=eng)
        np.testing.assert_array_equal(i, ref[1])
        np.testing.assert_array_equal(d, ref[0])
