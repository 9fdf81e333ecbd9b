"""Result records: atomic JSON / npz writes with config, seed, versions, git commit and timing.

A record is a folder holding ``record.json`` (``kind``, ``config``, ``result``, ``meta``) and,
optionally, ``arrays.npz`` with per-point arrays. Every writer in the toolkit uses these helpers
so that reports can read any record the same way.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

RECORD_FILE = "record.json"
ARRAYS_FILE = "arrays.npz"


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating, float)):
        f = float(obj)
        return f if math.isfinite(f) else ("inf" if f > 0 else "-inf" if f < 0 else "nan")
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, Path):
        return str(obj)
    return obj


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write via a temporary file in the same folder and ``os.replace``: never a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; results are meant to be shared
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    text = json.dumps(_jsonable(obj), indent=2, sort_keys=False, allow_nan=False) + "\n"
    return atomic_write_bytes(path, text.encode())


def atomic_savez(path: str | os.PathLike, **arrays: np.ndarray) -> Path:
    import io

    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return atomic_write_bytes(path, buf.getvalue())


def read_json(path: str | os.PathLike) -> Any:
    with open(path) as f:
        return json.load(f)


def git_commit(cwd: str | os.PathLike | None = None) -> str | None:
    """The current git commit of the toolkit's checkout (``+dirty`` when uncommitted changes)."""
    cwd = cwd or Path(__file__).resolve().parent.parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True,
                             timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True, timeout=5).stdout.strip()
    except Exception:
        return None
    return (sha + ("+dirty" if dirty else "")) if sha else None


def library_versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for name in ("numpy", "scipy", "torch", "torchvision", "faiss-cpu", "faiss-gpu", "numba",
                 "scikit-learn", "pandas", "torchattacks"):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            pass
    return out


def hardware() -> dict[str, Any]:
    info: dict[str, Any] = {"machine": platform.machine(), "cpus": os.cpu_count(),
                            "processor": platform.processor() or platform.machine()}
    try:
        import torch

        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
    except Exception:
        pass
    return info


def run_metadata(seed: int | None = None) -> dict[str, Any]:
    """Versions, git commit, hardware and a timestamp, for every record."""
    return {"created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "seed": seed, "git_commit": git_commit(),
            "versions": library_versions(), "hardware": hardware(), "host": platform.node()}


def config_key(config: dict[str, Any]) -> str:
    """Stable hash of a config dict: equal inputs give equal keys (used to reuse records)."""
    return hashlib.sha256(json.dumps(_jsonable(config), sort_keys=True).encode()).hexdigest()[:16]


def write_record(folder: str | os.PathLike, *, kind: str, config: dict[str, Any], result: dict[str, Any],
                 arrays: dict[str, np.ndarray] | None = None, seed: int | None = None,
                 timing: dict[str, float] | None = None) -> Path:
    """Write ``record.json`` (+ ``arrays.npz``) into ``folder``; arrays first, JSON last, so a
    record whose JSON exists is complete."""
    folder = Path(folder)
    if arrays:
        atomic_savez(folder / ARRAYS_FILE, **arrays)
    rec = {"kind": kind, "config": config, "config_key": config_key(config), "result": result,
           "timing": timing or {}, "meta": run_metadata(seed)}
    return atomic_write_json(folder / RECORD_FILE, rec)


def load_record(folder: str | os.PathLike, *, with_arrays: bool = False):
    """Read a record folder: the JSON dict, or ``(dict, arrays)`` with ``with_arrays``."""
    folder = Path(folder)
    path = folder / RECORD_FILE
    if not path.is_file():
        raise FileNotFoundError(f"No record at {path}.")
    rec = read_json(path)
    if not with_arrays:
        return rec
    arr_path = folder / ARRAYS_FILE
    arrays = dict(np.load(arr_path, allow_pickle=False)) if arr_path.is_file() else {}
    return rec, arrays


def find_reusable(folder: str | os.PathLike, config: dict[str, Any]):
    """The record in ``folder`` if it was made with exactly ``config``, else None."""
    try:
        rec = load_record(folder)
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return rec if rec.get("config_key") == config_key(config) else None


def reusable_record(folder: str | os.PathLike, config: dict[str, Any], *, force: bool = False):
    """The complete record in ``folder`` made with exactly ``config`` (JSON and arrays), unless
    ``force``; else None. CLIs call this before recomputing."""
    if force:
        return None
    rec = find_reusable(folder, config)
    if rec is None or not (Path(folder) / ARRAYS_FILE).is_file():
        return None
    return rec
