"""The toolkit's array conventions: points are ``(n, *features)`` uint8 (0..255) or floats in [0, 1];
labels are integers. Inputs in, clear errors out; every package validates through these.
"""
from __future__ import annotations

import hashlib

import numpy as np

from .errors import InvalidInputError, InvalidTypeError
from .paper import NORMS

#: Divisor from stored values to reported [0, 1] pixel units for 8-bit data (d / 255, correctly
#: rounded: an l-inf distance of k grey levels is reported as the float64 nearest to k/255).
UINT8_DIVISOR = 255.0


def check_norm(norm: str) -> str:
    """``norm`` if it is one of :data:`~separation.core.paper.NORMS`, else a ValueError that lists them."""
    if norm not in NORMS:
        raise InvalidInputError(
            f"Unknown norm {norm!r}. Use one of {', '.join(NORMS)} (e.g. norm='linf')."
        )
    return norm


def _to_numpy(x, name: str) -> np.ndarray:
    try:  # torch tensors without importing torch eagerly
        if hasattr(x, "detach") and hasattr(x, "cpu"):
            x = x.detach().cpu().numpy()
    except (TypeError, RuntimeError, ValueError) as exc:  # pragma: no cover - exotic tensor types
        raise InvalidTypeError(f"{name}: cannot convert {type(x).__name__} to a numpy array") from exc
    return np.asarray(x)


def as_points(x, name: str = "x") -> np.ndarray:
    """Return ``x`` as a C-contiguous ``(n, d)`` array: uint8, or float64 in [0, 1].

    Accepts numpy arrays or torch tensors of shape ``(n, *image_shape)``; floats must lie in [0, 1].
    Float data that are exactly 8-bit images (every value is k/255 in its own precision, e.g.
    ``uint8 / 255`` in float32) come back as the uint8 values, so the fast exact byte kernels run.
    """
    arr = _to_numpy(x, name)
    if arr.ndim < 1 or arr.shape[0] == 0:
        raise InvalidInputError(f"{name} is empty (shape {arr.shape}); pass at least one point.")
    if arr.ndim == 1:
        raise InvalidInputError(
            f"{name} has shape {arr.shape}; expected (n_points, *features). "
            f"For a single point use {name}[None]."
        )
    arr = arr.reshape(arr.shape[0], -1)
    if arr.dtype == np.uint8:
        return np.ascontiguousarray(arr)
    if arr.dtype == np.bool_ or np.issubdtype(arr.dtype, np.integer):
        raise InvalidTypeError(
            f"{name} has integer dtype {arr.dtype}; pass uint8 images (0..255) or floats in [0, 1]."
        )
    if not np.issubdtype(arr.dtype, np.floating):
        raise InvalidTypeError(f"{name} has dtype {arr.dtype}; pass uint8 or floating-point arrays.")
    if not np.isfinite(arr).all():
        bad = int((~np.isfinite(arr)).any(axis=1).sum())
        raise InvalidInputError(f"{name} contains NaN or inf values in {bad} point(s); clean or drop them first.")
    lo, hi = float(arr.min()), float(arr.max())
    if lo < 0.0 or hi > 1.0:
        raise InvalidInputError(
            f"{name} has values in [{lo:g}, {hi:g}] but float inputs must lie in [0, 1] "
            "(pixel units). Divide 8-bit data by 255, or pass it as uint8."
        )
    # in blocks of rows: no full-size float64 temporaries
    step = max(1, (1 << 24) // max(1, arr.shape[1] * 8))
    out8 = np.empty(arr.shape, dtype=np.uint8)
    for s in range(0, len(arr), step):
        block = arr[s:s + step]
        levels = np.rint(block.astype(np.float64) * 255.0)
        if not np.array_equal((levels / 255.0).astype(arr.dtype), block):
            break
        out8[s:s + step] = levels
    else:
        return out8
    del out8
    if arr.dtype != np.float64:
        from .memory import check_fits

        check_fits(arr.shape[0] * arr.shape[1] * 8, f"{name} (not 8-bit images, kept exactly as float64)",
                   remedy="pass 8-bit images as uint8, or fewer points (--subset / Dataset.subset)")
    return np.ascontiguousarray(arr, dtype=np.float64)


def as_labels(y, n: int, name: str = "y") -> np.ndarray:
    """``y`` as a contiguous int64 ``(n,)`` array (integer-valued floats accepted)."""
    arr = _to_numpy(y, name)
    if arr.ndim != 1:
        arr = arr.reshape(-1)
    if arr.shape[0] != n:
        raise InvalidInputError(
            f"{name} has {arr.shape[0]} labels but the data has {n} points; they must have the same length."
        )
    if not (np.issubdtype(arr.dtype, np.integer) or arr.dtype == np.bool_):
        if np.issubdtype(arr.dtype, np.floating) and np.all(np.mod(arr, 1) == 0):
            arr = arr.astype(np.int64)
        else:
            raise InvalidTypeError(f"{name} must hold integer class labels, got dtype {arr.dtype}.")
    return np.ascontiguousarray(arr, dtype=np.int64)


def common_storage(*arrays: np.ndarray) -> tuple[list[np.ndarray], float]:
    """Bring arrays from :func:`as_points` to one storage type: uint8 when all are, else float64.

    Returns the converted arrays and the divisor that turns stored-unit distances into [0, 1] units.
    """
    if all(a.dtype == np.uint8 for a in arrays):
        return list(arrays), UINT8_DIVISOR
    return [a.astype(np.float64) / 255.0 if a.dtype == np.uint8 else a for a in arrays], 1.0


def memmap_base(x: np.ndarray) -> np.memmap | None:
    """The memory map of a file that ``x`` is a view of (reshaped or sliced), else None."""
    base = x
    while isinstance(base.base, np.ndarray):  # to the array that owns the mapping
        base = base.base
    return base if isinstance(base, np.memmap) and base.filename else None


def mapped_file(x: np.ndarray) -> tuple[str, int] | None:
    """``(file, byte offset of x[0])`` when ``x`` is a C-contiguous view of a memory-mapped file,
    else None."""
    base = memmap_base(x)
    if base is None or not x.flags.c_contiguous:
        return None
    delta = x.__array_interface__["data"][0] - base.__array_interface__["data"][0]
    return str(base.filename), int(base.offset) + int(delta)


def content_digest(*arrays: np.ndarray, rows: int = 1 << 16) -> str:
    """sha256 (hex) of the arrays' dtypes, shapes and values, read ``rows`` rows at a time (a
    non-contiguous array is copied a slab at a time, not whole)."""
    h = hashlib.sha256()
    for a in arrays:
        h.update(f"{a.dtype.str}{a.shape};".encode())
        if a.size == 0:
            continue
        flat = a.reshape(len(a), -1) if a.ndim else a.reshape(1, 1)
        for s in range(0, len(flat), rows):
            h.update(memoryview(np.ascontiguousarray(flat[s:s + rows])).cast("B"))
    return h.hexdigest()


def to_unit_float(x, name: str = "x") -> np.ndarray:
    """``x`` as float64 ``(n, d)`` in [0, 1] pixel units (uint8 values are divided by 255)."""
    q = as_points(x, name)
    return q.astype(np.float64) / UINT8_DIVISOR if q.dtype == np.uint8 else q


__all__ = ["NORMS", "UINT8_DIVISOR", "as_labels", "as_points", "check_norm", "common_storage", "content_digest", "mapped_file", "memmap_base",
           "to_unit_float"]
