"""Input validation shared by the public API: arrays in, clear errors out."""
from __future__ import annotations

import numpy as np

NORMS = ("linf", "l2", "l1")

#: Scale from stored values to reported [0, 1] pixel units, per storage dtype.
UINT8_SCALE = 1.0 / 255.0


def check_norm(norm: str) -> str:
    if norm not in NORMS:
        raise ValueError(
            f"Unknown norm {norm!r}. Use one of {', '.join(NORMS)} (e.g. norm='linf')."
        )
    return norm


def _to_numpy(x, name: str) -> np.ndarray:
    try:  # torch tensors without importing torch eagerly
        if hasattr(x, "detach") and hasattr(x, "cpu"):
            x = x.detach().cpu().numpy()
    except Exception as exc:  # pragma: no cover - exotic tensor types
        raise TypeError(f"{name}: cannot convert {type(x).__name__} to a numpy array") from exc
    return np.asarray(x)


def as_points(x, name: str = "x") -> np.ndarray:
    """Return ``x`` as a C-contiguous ``(n, d)`` array: uint8 kept as is, other types as float64.

    Accepts numpy arrays or torch tensors of shape ``(n, *image_shape)``; floats must lie in [0, 1].
    Float arrays whose values are all exact multiples of 1/255 are *not* converted here: that is
    :func:`maybe_uint8`'s job, so that callers decide.
    """
    arr = _to_numpy(x, name)
    if arr.ndim < 1 or arr.shape[0] == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape}); pass at least one point.")
    if arr.ndim == 1:
        raise ValueError(
            f"{name} has shape {arr.shape}; expected (n_points, *features). "
            f"For a single point use {name}[None]."
        )
    arr = arr.reshape(arr.shape[0], -1)
    if arr.dtype == np.uint8:
        return np.ascontiguousarray(arr)
    if arr.dtype == np.bool_ or np.issubdtype(arr.dtype, np.integer):
        raise TypeError(
            f"{name} has integer dtype {arr.dtype}; pass uint8 images (0..255) or floats in [0, 1]."
        )
    if not np.issubdtype(arr.dtype, np.floating):
        raise TypeError(f"{name} has dtype {arr.dtype}; pass uint8 or floating-point arrays.")
    arr = np.ascontiguousarray(arr, dtype=np.float64)
    if not np.isfinite(arr).all():
        bad = int((~np.isfinite(arr)).any(axis=1).sum())
        raise ValueError(f"{name} contains NaN or inf values in {bad} point(s); clean or drop them first.")
    lo, hi = float(arr.min()), float(arr.max())
    if lo < 0.0 or hi > 1.0:
        raise ValueError(
            f"{name} has values in [{lo:g}, {hi:g}] but float inputs must lie in [0, 1] "
            "(pixel units). Divide 8-bit data by 255, or pass it as uint8."
        )
    return arr


def as_labels(y, n: int, name: str = "y") -> np.ndarray:
    arr = _to_numpy(y, name)
    if arr.ndim != 1:
        arr = arr.reshape(-1)
    if arr.shape[0] != n:
        raise ValueError(
            f"{name} has {arr.shape[0]} labels but the data has {n} points; they must have the same length."
        )
    if not (np.issubdtype(arr.dtype, np.integer) or arr.dtype == np.bool_):
        if np.issubdtype(arr.dtype, np.floating) and np.all(np.mod(arr, 1) == 0):
            arr = arr.astype(np.int64)
        else:
            raise TypeError(f"{name} must hold integer class labels, got dtype {arr.dtype}.")
    return np.ascontiguousarray(arr, dtype=np.int64)


def maybe_uint8(x: np.ndarray) -> np.ndarray | None:
    """Return the exact uint8 version of float data in [0, 1] that is all multiples of 1/255, else None."""
    if x.dtype == np.uint8:
        return x
    raw = x * 255.0
    rounded = np.rint(raw)
    if np.array_equal(raw, rounded) and np.array_equal(rounded / 255.0, x):
        return rounded.astype(np.uint8)
    return None


def common_storage(*arrays: np.ndarray) -> tuple[list[np.ndarray], float]:
    """Bring arrays to one storage type: uint8 when all are 8-bit (exactly), else float64.

    Returns the converted arrays and the scale that turns stored-unit distances into [0, 1] units.
    """
    as_u8 = [maybe_uint8(a) for a in arrays]
    if all(a is not None for a in as_u8):
        return as_u8, UINT8_SCALE
    return [a.astype(np.float64) / 255.0 if a.dtype == np.uint8 else a for a in arrays], 1.0
