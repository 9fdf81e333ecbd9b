"""The float64 distance formulas that define exactness: every engine's answer equals these."""
from __future__ import annotations

import numpy as np


def pairwise_float64(a: np.ndarray, b: np.ndarray, norm: str) -> np.ndarray:
    """Exact ``(len(a), len(b))`` distance matrix in float64, by direct differences (no GEMM trick)."""
    diff = np.abs(a.astype(np.float64)[:, None, :] - b.astype(np.float64)[None, :, :])
    if norm == "linf":
        return diff.max(axis=2)
    if norm == "l1":
        return diff.sum(axis=2)
    return np.sqrt(np.square(diff).sum(axis=2))


def float_distances(a: np.ndarray, b: np.ndarray, i: np.ndarray, j: np.ndarray, norm: str,
                    step: int = 4096) -> np.ndarray:
    """float64 distances of the pairs ``(a[i], b[j])`` by the formula of ``pairwise_float64``."""
    out = np.empty(len(i))
    for s in range(0, len(i), step):
        diff = np.abs(a[i[s:s + step]].astype(np.float64) - b[j[s:s + step]].astype(np.float64))
        out[s:s + step] = (diff.max(axis=1) if norm == "linf" else diff.sum(axis=1) if norm == "l1"
                           else np.sqrt(np.square(diff).sum(axis=1)))
    return out


__all__ = ["float_distances", "pairwise_float64"]
