"""How much memory a separation run needs, and how much there is: inputs that cannot fit are
refused before any work, with the estimate and what to do instead."""
from __future__ import annotations

import os
from pathlib import Path

from .errors import LimitError

GiB = float(1 << 30)


def available_bytes() -> int | None:
    """Memory this process can still use: ``MemAvailable`` of ``/proc/meminfo``, lowered by a
    cgroup (container) limit when one is set; None where neither can be read."""
    out = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                out = int(line.split()[1]) * 1024
                break
    except OSError:
        try:
            out = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            out = None
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = int(Path("/sys/fs/cgroup/memory.current").read_text().strip())
        if limit != "max":
            left = int(limit) - used
            out = left if out is None else min(out, left)
    except (OSError, ValueError):
        pass
    return out


def separation_bytes(n_train: int, n_test: int, d: int, itemsize: int, *, n_classes: int, norm: str,
                     engine: str, stream_bytes: int | None = None) -> int:
    """A conservative estimate of the working memory of :func:`separation.compute_separation`
    beyond its inputs: the engine's copies of the training points and the per-point outputs (on a
    Dask cluster: the outputs and one chunk of the store being written; the workers' memory is
    bounded by the block plan). ``stream_bytes``: the engine searches points larger than this out
    of core (two blocks of half that size and the engine's work on them)."""
    n = max(n_train, n_test)
    data = n_train * d * itemsize
    outputs = 8 * 6 * (n_train + n_test)
    if stream_bytes is not None and max(n_train, n_test) * d * itemsize > stream_bytes:
        return 3 * stream_bytes + (64 << 20) + outputs
    if engine == "dask":  # the client streams the points into the store (65,536 rows at a time); workers read blocks
        return outputs + min(n_train, 65536) * d * itemsize
    if engine in ("cpu", "auto") and norm == "linf":
        index = data if itemsize == 1 else data * 8 // itemsize  # the probe index: one copy (float64 if not bytes)
        work = min(n, 8192) * n_classes * 8 * 4
        return index + work + outputs
    if norm == "l2":  # float32 GEMM blocks and the float32 copy of the database
        return n_train * d * 4 + (64 << 20) + outputs
    return data + (64 << 20) + outputs


def check_fits(need: int, what: str, *, remedy: str) -> None:
    """Raise :class:`LimitError` (a MemoryError; one line: estimate, what is available, the remedy) when ``need`` bytes
    exceed the available memory."""
    have = available_bytes()
    if have is not None and need > have:
        raise LimitError(f"{what} needs about {need / GiB:.1f} GiB of memory beyond its input, and "
                          f"{have / GiB:.1f} GiB are available; {remedy}")


__all__ = ["available_bytes", "check_fits", "separation_bytes"]
