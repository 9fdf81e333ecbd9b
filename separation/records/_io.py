"""Files that are never half-written: atomic replaces, content hashes, one writer per folder.

* :func:`atomic_write_bytes` writes a temporary file beside the target, fsyncs it and renames it
  over the target: a reader sees the old file or the new one, never a mixture.
* :func:`folder_lock` holds an exclusive ``flock`` on ``.<name>.lock`` beside a record folder, so
  concurrent writers of one record take turns; :func:`clean_temporaries` removes what a killed
  writer left behind.
* :func:`fault` is the test hook that makes the write path interruptible at named points
  (``$SEPARATION_FAULT``): ``kill:POINT`` (SIGKILL), ``sigint:POINT`` (SIGINT) or ``pause:POINT``
  (create ``$SEPARATION_FAULT_DIR/POINT.paused``, wait for ``POINT.go``).
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import signal
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ._codec import encode

TMP_SUFFIX = ".tmp"


def fault(point: str) -> None:
    """Interrupt here when ``$SEPARATION_FAULT`` names this point (tests only; a no-op otherwise)."""
    spec = os.environ.get("SEPARATION_FAULT")
    if not spec or ":" not in spec:
        return
    action, _, where = spec.partition(":")
    if where != point:
        return
    if action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif action == "sigint":
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(1)  # the handler runs at the next bytecode boundary
    elif action == "pause":
        folder = Path(os.environ.get("SEPARATION_FAULT_DIR", "."))
        (folder / f"{point}.paused").touch()
        while not (folder / f"{point}.go").exists():
            time.sleep(0.02)


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


def read_json(path: str | os.PathLike) -> Any:
    """A JSON file's value; raises OSError, UnicodeDecodeError or json.JSONDecodeError."""
    with open(path, "rb") as f:
        return json.loads(f.read().decode("utf-8"))


__all__ = ["LOCK_FILE", "atomic_write_bytes", "atomic_write_json", "canonical_json", "clean_temporaries", "fault",
           "folder_lock", "npz_bytes", "read_json", "sha256_bytes", "sha256_file"]
