"""The files a cluster run shares: the data store and the shard files.

* **Data store.** The points ``x`` ``(n, d)`` and labels ``y`` ``(n,)`` of a run are written once
  as ``.npy`` files named by the sha256 of their content (:func:`write_store`), into a folder that
  the client and every worker see; workers read only the rows of their block, with positioned
  reads (:func:`read_rows`; the files are not mapped, so a worker's memory and address space are
  bounded by its blocks, not by the store). The dataset never travels through the scheduler. A *manifest* written with
  them holds the sha256 of every block of :func:`digest_rows` rows; its own sha256 travels in the
  :class:`StoreRef` of every task. The client verifies the whole store before reusing it (and
  rewrites, atomically, a file that does not match); a worker verifies the rows it reads against
  the manifest (:func:`read_rows`), so a store changed on disk is a :class:`StoreError`, never a
  wrong answer.
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
import math
import os
import struct
from pathlib import Path

import numpy as np

from ..core.errors import DataError
from ..core.records import atomic_write_bytes

log = logging.getLogger(__name__)

MAGIC = b"SEPARATION-SHARD\n"
#: Version of the shard layout (part of every job key: a new layout never reads old shards).
#: 2: the data store is verified by digests (shards of version 1 may come from a changed store).
SHARD_VERSION = 2
_DIGEST = 32
#: Bytes of rows per digest of the data store (the most a worker reads beyond its rows, per side).
DIGEST_BYTES = 1 << 20
_MANIFEST_VERSION = 1


class StoreError(DataError, OSError):
    """The data store cannot be used as described (missing on a worker, other shape, content that
    does not match its digests); the message names the file and the fix."""


@dataclasses.dataclass(frozen=True)
class StoreRef:
    """Points written once into ``folder``: ``n`` rows of ``d`` values of ``dtype`` (and ``n``
    int64 labels), named by ``fingerprint`` (sha256 of dtype, shape, points and labels);
    ``digest``: the sha256 of the store's manifest (computed by the client from its own data);
    ``x_file``: where the points are read in place instead of a copy in ``folder`` (a decoded image
    store's ``images.npy``: rows of ``d`` values in any shape), "" for the copy."""

    folder: str
    fingerprint: str
    n: int
    d: int
    dtype: str
    digest: str = ""
    x_file: str = ""

    @property
    def manifest_path(self) -> str:
        return os.path.join(self.folder, f"{self.fingerprint[:40]}.manifest.json")

    @property
    def x_path(self) -> str:
        return self.x_file or os.path.join(self.folder, f"{self.fingerprint[:40]}.x.npy")

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


def digest_rows(d: int, itemsize: int) -> int:
    """Rows per digest block of a store of ``d`` values of ``itemsize`` bytes per row."""
    return max(1, DIGEST_BYTES // max(1, d * itemsize))


def _digests(a: np.ndarray, rows: int) -> list[str]:
    return [hashlib.sha256(np.ascontiguousarray(a[s:s + rows]).data).hexdigest() for s in range(0, len(a), rows)]


def _manifest(x: np.ndarray, y: np.ndarray, fp: str) -> bytes:
    """The manifest of ``x`` ``(n, d)`` and int64 ``y`` ``(n,)``: sha256 of each block of rows."""
    rows = digest_rows(int(x.shape[1]), x.dtype.itemsize)
    head = {"version": _MANIFEST_VERSION, "fingerprint": fp, "n": int(x.shape[0]), "d": int(x.shape[1]),
            "dtype": x.dtype.str, "rows": rows, "x": _digests(x, rows), "y": _digests(y, rows)}
    return json.dumps(head, sort_keys=True).encode()


def _matches(path: Path, a: np.ndarray, digests: list[str], rows: int) -> bool:
    """Whether the ``.npy`` file at ``path`` holds ``a``'s shape, dtype and block digests."""
    try:
        old = np.load(path, mmap_mode="r")
    except (OSError, ValueError):
        return False
    if old.shape != a.shape or old.dtype != a.dtype:
        return False
    for k, want in enumerate(digests):
        if hashlib.sha256(np.ascontiguousarray(old[k * rows:(k + 1) * rows]).data).hexdigest() != want:
            log.warning("the data store file %s does not hold this run's data (rows %d..%d differ); it is written "
                        "again", path, k * rows, min(len(a), (k + 1) * rows) - 1)
            return False
    return True


def write_store(folder: str | os.PathLike, x: np.ndarray, y: np.ndarray, *, x_file: str | None = None) -> StoreRef:
    """Write ``x`` ``(n, d)`` and ``y`` ``(n,)`` into ``folder`` with their manifest, unless files of
    that name already hold exactly this content (every block digest verified); a file that does not
    is replaced (atomically). With ``x_file`` (the ``.npy`` file ``x`` is memory-mapped from, whole)
    the points are not copied: workers read them there, verified by the same manifest. Returns
    their :class:`StoreRef`."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    y = np.ascontiguousarray(y, dtype=np.int64)
    fp = fingerprint(x, y)
    manifest = _manifest(x, y, fp)
    head = json.loads(manifest)
    ref = StoreRef(str(folder), fp, int(x.shape[0]), int(x.shape[1]), x.dtype.str,
                   hashlib.sha256(manifest).hexdigest(), str(x_file or ""))
    copies = [(Path(ref.y_path), y, head["y"])] + ([] if x_file else [(Path(ref.x_path), x, head["x"])])
    for path, a, digests in copies:
        if not _matches(path, a, digests, head["rows"]):
            _write_npy(path, a)
    try:
        same = Path(ref.manifest_path).read_bytes() == manifest
    except OSError:
        same = False
    if not same:
        atomic_write_bytes(ref.manifest_path, manifest)
    return ref


#: fingerprint -> (folder, x, y, manifest) of the stores this process has open
_OPEN: dict[str, tuple[str, np.ndarray, np.ndarray, dict]] = {}


def _manifest_of(ref: StoreRef) -> dict:
    """The store's manifest, if its sha256 is ``ref.digest``; else a StoreError."""
    try:
        data = Path(ref.manifest_path).read_bytes()
    except OSError as exc:
        raise StoreError(f"this worker cannot read the data store manifest {ref.manifest_path} ({type(exc).__name__}: "
                         f"{exc}); shard_dir must be a folder that the client and every worker see (a shared "
                         "filesystem)") from None
    if hashlib.sha256(data).hexdigest() != ref.digest:
        raise StoreError(f"the data store manifest {ref.manifest_path} is not the one this run wrote (changed on "
                         f"disk); delete the folder {ref.folder} and run again")
    return json.loads(data)


def open_store(ref: StoreRef, *, fresh: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)`` of a store, memory-mapped (kept open per process; ``fresh``: opened again). StoreError
    when the files are not there, not of the described shape, or their manifest is not ``ref``'s:
    the folder must be shared by every worker. Read rows through :func:`read_rows` (verified)."""
    return _open(ref, fresh)[:2]


def _open(ref: StoreRef, fresh: bool) -> tuple[np.ndarray, np.ndarray, dict]:
    hit = None if fresh else _OPEN.get(ref.fingerprint)
    if hit is not None and hit[0] == ref.folder:
        return hit[1:]
    try:
        x = np.load(ref.x_path, mmap_mode="r")
        y = np.load(ref.y_path, mmap_mode="r")
    except (OSError, ValueError) as exc:
        raise _cannot_read(ref.x_path, exc) from None
    if x.ndim > 2 and x.shape[0] == ref.n:  # a decoded image store read in place: (n, C, H, W)
        x = x.reshape(ref.n, -1)
    if x.shape != (ref.n, ref.d) or x.dtype.str != ref.dtype or y.shape != (ref.n,):
        raise StoreError(f"the data store {ref.x_path} holds {x.shape} {x.dtype}, not ({ref.n}, {ref.d}) "
                         f"{ref.dtype}; delete it and run again")
    head = _manifest_of(ref)
    _OPEN.pop(ref.fingerprint, None)
    if len(_OPEN) >= 8:
        _OPEN.pop(next(iter(_OPEN)))
    _OPEN[ref.fingerprint] = (ref.folder, x, y, head)
    return x, y, head


def _first_bad(a: np.ndarray, start: int, digests: list[str], rows: int):
    """The first block of ``a`` (rows from ``start``, a multiple of ``rows``) whose sha256 is not its
    digest: ``(first row, last row)``, or None."""
    for s in range(0, len(a), rows):
        k = (start + s) // rows
        if hashlib.sha256(np.ascontiguousarray(a[s:s + rows]).data).hexdigest() != digests[k]:
            return start + s, start + min(len(a), s + rows) - 1
    return None


#: fingerprint -> the verified manifest of a store this process has read rows of
_HEADS: dict[str, dict] = {}


def _head(ref: StoreRef) -> dict:
    """The store's manifest (verified against ``ref.digest`` when first read here)."""
    head = _HEADS.get(ref.fingerprint)
    if head is None or head.get("_digest") != ref.digest:
        head = dict(_manifest_of(ref), _digest=ref.digest)
        _HEADS.pop(ref.fingerprint, None)
        if len(_HEADS) >= 8:
            _HEADS.pop(next(iter(_HEADS)))
        _HEADS[ref.fingerprint] = head
    return head


def _cannot_read(path: str, exc: Exception) -> StoreError:
    return StoreError(f"this worker cannot read the data store {path} ({type(exc).__name__}: {exc}); shard_dir must "
                      "be a folder that the client and every worker see (a shared filesystem)"
                      + ("" if path.endswith(".x.npy") or path.endswith(".y.npy") else
                         ", and so must the decoded image store (--store-dir)"))


def npy_rows(path: str, shape: tuple[int, ...], dtype: np.dtype, lo: int, hi: int) -> np.ndarray:
    """Rows ``lo..hi-1`` of the ``.npy`` file at ``path``, which must hold ``shape`` of ``dtype``
    (C order; a file of ``shape[0]`` rows of the same size in another shape, such as images
    ``(n, C, H, W)`` for ``(n, d)``, is read as ``shape``): its header, then one positioned read of
    those rows into memory. The file is not memory-mapped, so a task's address space grows by its
    rows only, however large the store."""
    dtype = np.dtype(dtype)
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            held, fortran, held_dtype = read(f)
            same_rows = len(held) >= 1 and held[:1] == tuple(shape[:1]) and math.prod(held[1:]) == math.prod(shape[1:])
            if not same_rows or held_dtype != dtype or (fortran and len(held) > 1):
                raise StoreError(f"the data store {path} holds {tuple(held)} {held_dtype}, not {tuple(shape)} "
                                 f"{dtype.str}; delete it and run again")
            row = dtype.itemsize * int(np.prod(shape[1:], dtype=np.int64))
            out = np.empty((hi - lo,) + tuple(shape[1:]), dtype)
            f.seek(f.tell() + lo * row)
            got = f.readinto(memoryview(out.reshape(-1).view(np.uint8))) if out.size else 0
    except (OSError, ValueError) as exc:
        raise _cannot_read(path, exc) from None
    if got != out.nbytes:
        raise StoreError(f"the data store {path} is shorter than its header says (truncated); delete it and run again")
    return out


def read_rows(ref: StoreRef, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows ``lo..hi-1`` of a store, ``(x (hi - lo, d), y (hi - lo,) int64)`` in memory, read from
    disk (:func:`npy_rows`: the files are not mapped) with the rest of their digest blocks, which
    are verified against the manifest on the copy used: what is checked is what is computed with.
    A block that does not match is a StoreError naming the file and the fix."""
    head = _head(ref)
    rows = head["rows"]
    s, e = (lo // rows * rows, min(ref.n, -(-hi // rows) * rows)) if hi > lo else (lo, lo)
    xs = npy_rows(ref.x_path, (ref.n, ref.d), np.dtype(ref.dtype), s, e)
    ys = npy_rows(ref.y_path, (ref.n,), np.dtype(np.int64), s, e)
    for path, a, key in ((ref.x_path, xs, "x"), (ref.y_path, ys, "y")):
        bad = _first_bad(a, s, head[key], rows)
        if bad is not None:
            raise StoreError(f"the data store file {path} does not hold the data it was written with (rows {bad[0]}.."
                             f"{bad[1]} changed on disk); delete it (or the folder {ref.folder}) and run again: the "
                             "client writes it anew")
    return xs[lo - s:hi - s], ys[lo - s:hi - s]


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


__all__ = ["DIGEST_BYTES", "MAGIC", "SHARD_VERSION", "StoreError", "StoreRef", "digest_rows", "fingerprint",
           "npy_rows", "open_store", "read_rows", "read_shard", "write_shard", "write_store"]
