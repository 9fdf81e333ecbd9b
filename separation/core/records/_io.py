"""Files that are never half-written: atomic replaces, content hashes, one writer per folder.

* :func:`atomic_write_bytes` writes a temporary file beside the target, fsyncs it and renames it
  over the target: a reader sees the old file or the new one, never a mixture.
* :func:`folder_lock` holds an exclusive ``flock`` on ``.<name>.lock`` beside a record folder, so
  concurrent writers of one record take turns; :func:`clean_temporaries` removes what a killed
  writer left behind.
* :func:`read_json` reads only regular files of a bounded size and depth.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import stat
import tempfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ..errors import RecordError
from ..faults import fault
from ._codec import encode

TMP_SUFFIX = ".tmp"


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write via a temporary file in the same folder and ``os.replace``: never a half-written file.
    The file gets the ordinary permissions of a new file (records are meant to be shared)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TMP_SUFFIX)
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        fault("before-replace")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def canonical_json(obj: Any) -> bytes:
    """The bytes hashed for digests and keys: sorted keys, no whitespace, non-finite floats encoded."""
    return json.dumps(encode(obj), sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    text = json.dumps(encode(obj), indent=2, allow_nan=False) + "\n"
    return atomic_write_bytes(path, text.encode())


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


#: The lock file of a record folder (ignored by git).
LOCK_FILE = ".lock"


@contextlib.contextmanager
def folder_lock(folder: str | os.PathLike) -> Iterator[None]:
    """An exclusive lock for writing ``folder`` (blocks while another process writes it). The lock
    file ``folder/.lock`` stays (removing it would let a waiting writer lock a stale file)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lock = folder / LOCK_FILE
    with open(lock, "a+b") as f:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - no flock on this platform: writers are not serialised
            yield
            return
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def clean_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Remove the temporary files a killed writer left in ``folder`` (call it holding the lock)."""
    folder = Path(folder)
    removed = []
    if folder.is_dir():
        for p in folder.glob(f".*{TMP_SUFFIX}"):
            with contextlib.suppress(OSError):
                p.unlink()
                removed.append(p)
    return removed


#: The largest JSON file read as a record (bytes).
MAX_JSON_BYTES = 64 << 20


def read_json(path: str | os.PathLike, *, max_bytes: int = MAX_JSON_BYTES) -> Any:
    """A JSON file's value. FileNotFoundError when absent; :class:`RecordError` for anything that is
    not a regular file of at most ``max_bytes`` holding JSON of a sane depth (a FIFO, a device, a
    link to ``/dev/zero`` are refused before they are opened)."""
    path = Path(path)
    st = os.stat(path)
    if not stat.S_ISREG(st.st_mode):
        raise RecordError(f"{path} is not a regular file; a record is a JSON file")
    if st.st_size > max_bytes:
        raise RecordError(f"{path} has {st.st_size:,} bytes; a record's JSON is at most {max_bytes:,}")
    with open(path, "rb") as f:
        data = f.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise RecordError(f"{path} grew past {max_bytes:,} bytes while it was read")
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise RecordError(f"{path} is not UTF-8 text ({exc.reason})") from None
    except json.JSONDecodeError as exc:
        raise RecordError(f"{path} is not valid JSON ({exc.msg}, line {exc.lineno})") from None
    except RecursionError:
        raise RecordError(f"{path} is JSON nested too deeply to be a record") from None
    except ValueError as exc:  # e.g. an integer of more digits than Python converts
        raise RecordError(f"{path} is not usable JSON ({str(exc)[:80]})") from None


__all__ = ["LOCK_FILE", "MAX_JSON_BYTES", "atomic_write_bytes", "atomic_write_json", "canonical_json", "clean_temporaries",
           "folder_lock", "npz_bytes", "read_json", "sha256_bytes", "sha256_file"]
