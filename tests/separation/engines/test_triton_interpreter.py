"""The CUDA engine's Triton kernels, run on the CPU by Triton's interpreter (``TRITON_INTERPRET=1``,
CPU tensors), equal the float64 reference: the GPU code is tested without a GPU.

The kernels module is imported afresh under the interpreter inside the test process (and put back
afterwards), so that these tests also reach the engine's Triton paths when mutmut runs them."""
from __future__ import annotations

import importlib
import sys

import numpy as np
import pytest

pytest.importorskip("triton")

from separation import compute_separation, nearest_neighbors  # noqa: E402
from separation.engines import CUDAEngine, ReferenceEngine  # noqa: E402

from helpers.engine_variants import assert_same, tied  # noqa: E402

KERNELS = "separation.engines._triton_kernels"


class Counting:
    """A kernel that counts its launches (``kernel[grid](...)``)."""

    def __init__(self, kernel):
        self.kernel, self.launches = kernel, 0

    def __getitem__(self, grid):
        self.launches += 1
        return self.kernel[grid]


@pytest.fixture
def kernels(monkeypatch):
    """The Triton kernels module imported under the interpreter, with counting kernels; the module
    the process had before (if any) is back in place after the test."""
    import triton.language as tl
    from triton.runtime.interpreter import InterpretedFunction
    from triton.runtime.jit import JITFunction

    import separation.engines as package

    monkeypatch.setenv("TRITON_INTERPRET", "1")
    # Triton's own library functions (tl.max, tl.zeros, ...) were compiled-mode functions when
    # triton was first imported: interpreted ones stand in for them during the test
    for lib in (tl, tl.standard):
        for name, f in list(vars(lib).items()):
            if isinstance(f, JITFunction):
                monkeypatch.setattr(lib, name, InterpretedFunction(f.fn))
    monkeypatch.delitem(sys.modules, KERNELS, raising=False)
    if "_triton_kernels" in vars(package):
        monkeypatch.delattr(package, "_triton_kernels")
    module = importlib.import_module(KERNELS)
    for name in ("nn_kernel", "pair_kernel"):
        monkeypatch.setattr(module, name, Counting(getattr(module, name)))
    yield module
    sys.modules.pop(KERNELS, None)
    if vars(package).get("_triton_kernels") is module:
        delattr(package, "_triton_kernels")


@pytest.mark.parametrize("prune", [False, True])
@pytest.mark.parametrize("norm", ["linf", "l1"])
def test_integer_kernel_over_several_blocks_equals_the_reference(kernels, norm, prune):
    """70 training and 40 test points in blocks of 32 rows, 2 x 2 tiles of 16 each: train-train
    visits the upper triangle of 3 x 3 blocks (in diagonal blocks, the upper triangle of tiles),
    test-train all 2 x 3 blocks and every tile of each."""
    rng = np.random.default_rng(3)
    x, y = tied(rng, 70, 9, classes=3, values=3)
    xt, yt = tied(rng, 40, 9, classes=3, values=3)
    eng = CUDAEngine(device="cpu", use_triton=True, block_bytes=32 * 9, pair_tile=(16, 4, 2), prune=prune)
    assert_same(compute_separation(x, y, xt, yt, norm=norm, engine=eng),
                compute_separation(x, y, xt, yt, norm=norm, engine="reference"))
    assert kernels.pair_kernel.launches == 6 + 6 and kernels.nn_kernel.launches == 0
    np.testing.assert_array_equal(nearest_neighbors(xt, x, norm=norm, engine=eng),
                                  nearest_neighbors(xt, x, norm=norm, engine="reference"))


@pytest.mark.parametrize("norm", ["linf", "l1"])
def test_integer_kernel_block_pairs_equal_the_reference_both_ways(kernels, norm):
    rng = np.random.default_rng(4)
    xa, ya = tied(rng, 45, 7, classes=3, values=2)
    xb, yb = tied(rng, 38, 7, classes=3, values=2)
    eng = CUDAEngine(device="cpu", use_triton=True, block_bytes=32 * 7)
    yb[:] = 0  # b holds one class: the rows of a in it have no neighbour in b...
    ya[-1] = 0  # ...a's last row among them
    got = eng.block_pair(xa, ya, xb, yb, norm=norm)
    want = ReferenceEngine().block_pair(xa, ya, xb, yb, norm=norm)
    for g, w, name in zip(got, want, ("da", "ia", "db", "ib"), strict=True):
        np.testing.assert_array_equal(g, w, err_msg=name)
        assert g.dtype == (np.int64 if name.startswith("i") else np.float64), name
    assert got[0][-1] == np.inf and got[1][-1] == -1  # no neighbour: inf, -1
    assert kernels.pair_kernel.launches == 4  # 2 x 2 blocks, each pair once
    assert eng.pairs_once(norm, np.uint8)


@pytest.mark.parametrize("dim, block_bytes, tile_rows, rows", [
    (9, 1, 32, 32),  # never fewer rows than a tile
    (1, 64, 16, 64),  # block_bytes / dim rows...
    (9, 9 * 50, 16, 48),  # ...rounded down to whole tiles
])
def test_blocks_hold_block_bytes_of_points_in_whole_tiles(kernels, dim, block_bytes, tile_rows, rows):
    rng = np.random.default_rng(7)
    q = rng.integers(0, 3, (70, dim)).astype(np.uint8)
    db = rng.integers(0, 3, (40, dim)).astype(np.uint8)
    eng = CUDAEngine(device="cpu", use_triton=True, block_bytes=block_bytes, pair_tile=(tile_rows, 4, 2))
    np.testing.assert_array_equal(eng.nearest(q, db, norm="l1"), ReferenceEngine().nearest(q, db, norm="l1"))
    assert kernels.pair_kernel.launches == -(-70 // rows) * -(-40 // rows)


@pytest.mark.parametrize("norm", ["linf", "l1"])
def test_float_kernel_over_several_blocks_equals_the_reference(kernels, norm):
    """Dyadic floats (exact sums) go through the row kernel, in blocks of 16 rows and tiles of 8."""
    rng = np.random.default_rng(5)
    x, y = tied(rng, 50, 6, classes=3, values=4)
    xt, yt = tied(rng, 20, 6, classes=3, values=4)
    x, xt = x / 4.0, xt / 8.0
    eng = CUDAEngine(device="cpu", use_triton=True, block_bytes=16 * 6 * 8, tile=(8, 8, 4))
    assert_same(compute_separation(x, y, xt, yt, norm=norm, engine=eng),
                compute_separation(x, y, xt, yt, norm=norm, engine="reference"))
    assert kernels.nn_kernel.launches > 4 and kernels.pair_kernel.launches == 0
    np.testing.assert_array_equal(nearest_neighbors(xt, x, norm=norm, engine=eng),
                                  nearest_neighbors(xt, x, norm=norm, engine="reference"))


@pytest.mark.parametrize("seed", [0, 1])
def test_random_cases_with_ties_at_block_edges(kernels, seed):
    """Random sizes, ties from few byte levels, bytes and dyadic floats, both kernels."""
    rng = np.random.default_rng(seed)
    for case in range(6):
        n, m, d = int(rng.integers(2, 75)), int(rng.integers(1, 20)), int(rng.integers(1, 40))
        x, y = tied(rng, n, d, classes=3, values=[2, 3, 256][case % 3])
        xt, yt = tied(rng, m, d, classes=3, values=[2, 3, 256][case % 3])
        if case >= 4:  # float64 data (dyadic: exact sums) go through nn_kernel
            x, xt = x / 256.0, xt / 512.0
        for norm in ("linf", "l1"):
            eng = CUDAEngine(device="cpu", use_triton=True)
            assert_same(compute_separation(x, y, xt, yt, norm=norm, engine=eng),
                        compute_separation(x, y, xt, yt, norm=norm, engine="reference"))
            np.testing.assert_array_equal(nearest_neighbors(xt, x, norm=norm, engine=eng),
                                          nearest_neighbors(xt, x, norm=norm, engine="reference"))
    assert kernels.pair_kernel.launches > 0 and kernels.nn_kernel.launches > 0
