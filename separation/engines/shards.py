"""The files a cluster run shares: the data store and the shard files.

* **Data store.** The points ``x`` ``(n, d)`` and labels ``y`` ``(n,)`` of a run are written once
  as ``.npy`` files named by the sha256 of their content (:func:`write_store`), into a folder that
  the client and every worker see; workers memory-map them (:func:`open_store`) and read only the
  rows of their block. The dataset never travels through the scheduler.
* **Shards.** Each finished block pair is one file (:func:`write_shard`): a magic line, a JSON
  header saying exactly what it holds (job key, block pair, norm, data fingerprints), the
  result vectors, and the sha256 of all that. :func:`read_shard` returns ``None`` for a file that
  is missing, truncated, corrupted or written for anything else, so such a file is recomputed,
  never used. Writes are atomic (temporary file + rename): two workers writing the same shard
  leave one whole file.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import struct
from pathlib import Path

import numpy as np

from ..records import atomic_write_bytes

log = logging.getLogger(__name__)

MAGIC = b"SEPARATION-SHARD\n"
#: Version of the shard layout (part of every job key: a new layout never reads old shards).
SHARD_VERSION = 1
_DIGEST = 32


class StoreError(OSError):
    """The data store cannot be read as described (missing on a worker, other shape)."""


@dataclasses.dataclass(frozen=True)
class StoreRef:
    """Points written once into ``folder``: ``n`` rows of ``d`` values of ``dtype`` (and ``n``
    int64 labels), named by ``fingerprint`` (sha256 of dtype, shape, points and labels)."""

    folder: str
    fingerprint: str
    n: int
    d: int
    dtype: str

    @property
    def x_path(self) -> str:
        return os.path.join(self.folder, f"{self.fingerprint[:40]}.x.npy")

    @property
    def y_path(self) -> str:
        return os.path.join(self.folder, f"{self.fingerprint[:40]}.y.npy")

    @property
    def nbytes(self) -> int:
        return self.n * self.d * np.dtype(self.dtype).itemsize


def fingerprint(x: np.ndarray, y: np.ndarray, *, chunk_rows: int = 65536) -> str:
    """sha256 of ``x`` ``(n, d)`` and ``y`` ``(n,)`` (dtype, shape and bytes; in row chunks)."""
    h = hashlib.sha256(f"{x.dtype.str}:{x.shape}:".encode())
    for s in range(0, len(x), chunk_rows):
        h.update(np.ascontiguousarray(x[s:s + chunk_rows]).data)
    h.update(np.ascontiguousarray(y, dtype=np.int64).data)
    return h.hexdigest()


def _write_npy(path: Path, a: np.ndarray, chunk_rows: int = 65536) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=a.dtype, shape=a.shape)
        for s in range(0, len(a), chunk_rows):
            out[s:s + chunk_rows] = a[s:s + chunk_rows]
        out.flush()
        del out
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_store(folder: str | os.PathLike, x: np.ndarray, y: np.ndarray) -> StoreRef:
    """Write ``x`` ``(n, d)`` and ``y`` ``(n,)`` into ``folder`` unless the same content is there
    already (same fingerprint, whole files); returns their :class:`StoreRef`."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    y = np.ascontiguousarray(y, dtype=np.int64)
    ref = StoreRef(str(folder), fingerprint(x, y), int(x.shape[0]), int(x.shape[1]), x.dtype.str)
    for path, a in ((Path(ref.x_path), x), (Path(ref.y_path), y)):
        try:
            old = np.load(path, mmap_mode="r")
            if old.shape == a.shape and old.dtype == a.dtype:
                continue
        except (OSError, ValueError):
            pass
        _write_npy(path, a)
    return ref


_OPEN: dict[str, tuple[np.ndarray, np.ndarray]] = {}


def open_store(ref: StoreRef) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)`` of a store, memory-mapped (kept open per process). StoreError when the files
    are not there or not of the described shape: the folder must be shared by every worker."""
    hit = _OPEN.get(ref.fingerprint)
    if hit is not None:
        return hit
    try:
        x = np.load(ref.x_path, mmap_mode="r")
        y = np.load(ref.y_path, mmap_mode="r")
    except (OSError, ValueError) as exc:
        raise StoreError(f"this worker cannot read the data store {ref.x_path} ({type(exc).__name__}: {exc}); "
                         "shard_dir must be a folder that the client and every worker see (a shared "
                         "filesystem)") from None
    if x.shape != (ref.n, ref.d) or x.dtype.str != ref.dtype or y.shape != (ref.n,):
        raise StoreError(f"the data store {ref.x_path} holds {x.shape} {x.dtype}, not ({ref.n}, {ref.d}) "
                         f"{ref.dtype}; delete it and run again")
    if len(_OPEN) >= 8:
        _OPEN.pop(next(iter(_OPEN)))
    _OPEN[ref.fingerprint] = (x, y)
    return x, y


def write_shard(path: str | os.PathLike, header: dict, arrays: list[np.ndarray]) -> int:
    """Write one shard (atomically): ``header`` (JSON) and ``arrays`` (1-D); returns its size."""
    arrays = [np.ascontiguousarray(a) for a in arrays]
    head = dict(header, shard_version=SHARD_VERSION,
                arrays=[[a.dtype.str, int(a.shape[0])] for a in arrays])
    hb = json.dumps(head, sort_keys=True).encode()
    body = MAGIC + struct.pack("<Q", len(hb)) + hb + b"".join(a.tobytes() for a in arrays)
    data = body + hashlib.sha256(body).digest()
    atomic_write_bytes(path, data)
    return len(data)


def read_shard(path: str | os.PathLike, expect: dict) -> list[np.ndarray] | None:
    """The arrays of the shard at ``path`` when it is whole (its sha256 matches) and its header
    has every item of ``expect``; else None (logged when a file was there but not usable)."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        log.warning("ignoring shard %s: %s", path, exc)
        return None
    why = _check(data, expect)
    if isinstance(why, str):
        log.warning("ignoring shard %s: %s; it is computed again", path, why)
        return None
    return why


def _check(data: bytes, expect: dict):
    """The shard's arrays, or why they cannot be used (a string)."""
    start = len(MAGIC) + 8
    if len(data) < start + _DIGEST or not data.startswith(MAGIC):
        return "not a shard file, or truncated"
    body, digest = data[:-_DIGEST], data[-_DIGEST:]
    if hashlib.sha256(body).digest() != digest:
        return "truncated or corrupted (its checksum does not match)"
    (hlen,) = struct.unpack("<Q", body[len(MAGIC):start])
    try:
        head = json.loads(body[start:start + hlen])
    except ValueError:
        return "unreadable header"
    if head.get("shard_version") != SHARD_VERSION:
        return f"shard layout {head.get('shard_version')!r}, not {SHARD_VERSION}"
    for k, v in expect.items():
        if head.get(k) != v:
            return f"written for another {k} ({head.get(k)!r}, expected {v!r})"
    out, pos = [], start + hlen
    for dtype, n in head["arrays"]:
        size = np.dtype(dtype).itemsize * n
        if pos + size > len(body):
            return "shorter than its header says"
        out.append(np.frombuffer(body, dtype=dtype, count=n, offset=pos).copy())
        pos += size
    if pos != len(body):
        return "longer than its header says"
    return out


__all__ = ["MAGIC", "SHARD_VERSION", "StoreError", "StoreRef", "fingerprint", "open_store", "read_shard",
           "write_shard", "write_store"]
