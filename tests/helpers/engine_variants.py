"""Engines configured so that every block, chunk and remainder path runs on small data.

Each entry builds an engine whose results must equal the float64 reference exactly; the small
sizes force many support blocks per class, blocks that end mid-class, chunks that end before the
last feature, several GEMM blocks and several device blocks of the CUDA engine's torch path.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from separation.engines import CPUEngine, CUDAEngine, FaissEngine, available_engines
from separation.engines.blocks import CPUBlocks

#: sizes small enough that 30-point inputs already span many blocks
SMALL = CPUBlocks(probe_query_block=3, probe_support_block=4, probe_seeds=2, probe_max=3, probe_step=1,
                  probe_query_chunk=7, probe_layout="sorted", tiled_query_block=3, tiled_chunk=2,
                  tiled_db_bytes=8, gemm_rows=5)
#: the same, with the probe index reading the support as given (the low-memory layout)
SMALL_GIVEN = dataclasses.replace(SMALL, probe_layout="given")
#: no seeds and no probes: every distance is computed exactly from the first block on
NO_PROBES = CPUBlocks(probe_query_block=1, probe_support_block=1, probe_seeds=0, probe_max=0,
                      tiled_query_block=1, tiled_chunk=1, tiled_db_bytes=1, gemm_rows=1)


def variants() -> dict[str, object]:
    """name -> engine (a fresh instance per call)."""
    out = {
        "cpu": CPUEngine(),
        "cpu-small": CPUEngine(blocks=SMALL),
        "cpu-small-given-layout": CPUEngine(blocks=SMALL_GIVEN),
        "cpu-no-probes": CPUEngine(blocks=NO_PROBES),
        "cpu-tiled-small": CPUEngine(linf="tiled", l1="tiled", blocks=SMALL),
        "cpu-float32-l2-small": CPUEngine(l2="float32", blocks=SMALL),
        "cpu-int8-l2-small": CPUEngine(l2="int8", blocks=SMALL),
        "cpu-bound-l1-small": CPUEngine(l1="bound", blocks=SMALL),
        "cpu-unordered-small": CPUEngine(reorder_features=False, blocks=SMALL),
        "torch-blocks-on-cpu": CUDAEngine(device="cpu", use_triton=False, block_bytes=40),
    }
    if "faiss" in available_engines():
        out["faiss-k1"] = FaissEngine(k=1, use_gpu=False)
        out["faiss"] = FaissEngine(use_gpu=False)
    return out


VARIANT_NAMES = tuple(variants())


def tied(rng, n, d, classes, values=3):
    """Few distinct byte values: many ties, and byte-identical points across classes."""
    x = rng.integers(0, values, (n, d)).astype(np.uint8)
    y = rng.integers(0, classes, n)
    y[: min(n, classes)] = np.arange(min(n, classes))
    if n > 3 and values < 256:
        x[n // 2] = x[0]  # a cross-class duplicate (or a same-class one)
    return x, y


def blobs(seed: int, n: int = 300, side: int = 16, classes: int = 3):
    """Smooth byte images (one Gaussian blob each, random centre and width; neighbouring pixels
    agree, as on real images): ``x`` (n, side * side) uint8 and labels ``y`` (n,)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:side, 0:side]
    cx, cy, w = (rng.uniform(2, side - 2, (n, 1, 1)) for _ in range(3))
    x = (255 * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * (1 + w) ** 2))).astype(np.uint8).reshape(n, -1)
    return x, rng.integers(0, classes, n)


def assert_same(res, ref):
    """Two separation results of bytes, or of dyadic floats (exact sums): the same distances and
    indices, bit for bit."""
    np.testing.assert_array_equal(res.train_distances, ref.train_distances)
    np.testing.assert_array_equal(res.train_neighbors, ref.train_neighbors)
    if ref.test_distances is not None:
        np.testing.assert_array_equal(res.test_distances, ref.test_distances)
        np.testing.assert_array_equal(res.test_neighbors, ref.test_neighbors)
        np.testing.assert_array_equal(res.test_train_duplicates, ref.test_train_duplicates)


def near_tie_l2(n: int, d: int = 3072, seed: int = 0, spread: int = 3):
    """Queries and a database where each query has two candidates whose squared distances differ
    by exactly 1 while the squared norms are ~2e8: float32's resolution there is ~16, and its
    GEMM error tens of units. The candidates are close to the query (squared distance ~1e4), so a
    relative slack on the distance alone cannot cover that error: only the rigorous bound does.
    The second candidate is a permutation of the first (same distance) with one byte moved by one."""
    rng = np.random.default_rng(seed)
    q = np.full((n, d), 250, np.uint8)
    q[:, :8] = rng.integers(240, 256, (n, 8))
    db = []
    for i in range(n):
        a = np.clip(q[i].astype(np.int64) + rng.integers(-spread, spread + 1, d), 0, 255)
        b = a.copy()
        b[8:] = a[8 + rng.permutation(d - 8)]
        k = 8 + np.flatnonzero(b[8:] == 250)[0]
        b[k] = 251  # exactly one squared unit farther than a
        db += [b, a]  # the farther one first: a float32 tie would pick it
    return q, np.array(db, dtype=np.uint8)
