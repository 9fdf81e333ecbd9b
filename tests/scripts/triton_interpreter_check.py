"""Run under TRITON_INTERPRET=1: the CUDA engine's Triton kernels on CPU tensors, against the
float64 reference, on small cases with ties at block edges. Prints one JSON line."""
import json
import sys

import numpy as np

from separation import compute_separation, nearest_neighbors
from separation.engines import CUDAEngine
from separation.engines import cuda as cuda_module

calls = {}


class Counting:
    def __init__(self, name, kernel):
        self.name, self.kernel = name, kernel

    def __getitem__(self, grid):
        calls[self.name] = calls.get(self.name, 0) + 1
        return self.kernel[grid]


kernels = cuda_module._kernels()
for name in ("nn_kernel", "pair_kernel"):
    setattr(kernels, name, Counting(name, getattr(kernels, name)))

rng = np.random.default_rng(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
failures = []
for case in range(6):
    n, m, d = int(rng.integers(2, 75)), int(rng.integers(1, 20)), int(rng.integers(1, 40))
    levels = [2, 3, 256][case % 3]  # few levels: ties everywhere, including at block edges
    x = rng.integers(0, levels, (n, d)).astype(np.uint8)
    y = rng.integers(0, 3, n)
    y[:2] = [0, 1]
    xt = rng.integers(0, levels, (m, d)).astype(np.uint8)
    yt = rng.integers(0, 3, m)
    if case >= 4:  # float64 data (dyadic: exact sums) go through nn_kernel
        x, xt = x / 256.0, xt / 512.0
    for norm in ("linf", "l1"):
        eng = CUDAEngine(device="cpu", use_triton=True)
        a = compute_separation(x, y, xt, yt, norm=norm, engine=eng)
        b = compute_separation(x, y, xt, yt, norm=norm, engine="reference")
        for k in ("train_distances", "train_neighbors", "test_distances", "test_neighbors"):
            if not np.array_equal(getattr(a, k), getattr(b, k)):
                failures.append(f"case {case} {norm} {k} n={n} m={m} d={d}")
        da, ia = nearest_neighbors(xt, x, norm=norm, engine=eng)
        db, ib = nearest_neighbors(xt, x, norm=norm, engine="reference")
        if not (np.array_equal(da, db) and np.array_equal(ia, ib)):
            failures.append(f"case {case} {norm} nearest n={n} m={m} d={d}")
print(json.dumps({"failures": failures, "calls": calls}))
