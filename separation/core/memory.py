"""How much memory a separation run needs, and how much there is: inputs that cannot fit are
refused before any work, with the estimate and what to do instead."""
from __future__ import annotations

import os
from pathlib import Path

from .errors import LimitError

GiB = float(1 << 30)


def available_bytes() -> int | None:
    """Memory this process can still use: ``MemAvailable`` of ``/proc/meminfo``, lowered by the
    limits of its control groups (a container's, a batch job's: :func:`cgroup_left`); None where
    neither can be read."""
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
    left = cgroup_left()
    return left if out is None else out if left is None else min(out, left)


def _number(path: Path) -> int | None:
    """The integer in a control-group file; None: missing, unreadable or no limit (``max``)."""
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _inactive_file(folder: Path) -> int:
    """Page cache of the group that can be dropped (``inactive_file`` of ``memory.stat``)."""
    try:
        lines = (folder / "memory.stat").read_text().splitlines()
    except OSError:
        return 0
    for line in lines:
        key, _, value = line.partition(" ")
        if key in ("inactive_file", "total_inactive_file") and value.strip().isdigit():
            return int(value)
    return 0


def cgroup_left(proc_cgroup: Path = Path("/proc/self/cgroup"), root: Path = Path("/sys/fs/cgroup")) -> int | None:
    """Bytes the memory limits of this process's control groups still allow (the smallest over
    its group and every group above it; cgroup v2 ``memory.max``, or v1 ``memory.limit_in_bytes``
    under ``root/memory``), page cache that can be dropped counted as free; None without a limit."""
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return None
    best = None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers == "":
            bases, files = (root, root / "unified"), ("memory.max", "memory.current")
        elif "memory" in controllers.split(","):
            bases, files = (root / "memory",), ("memory.limit_in_bytes", "memory.usage_in_bytes")
        else:
            continue
        parts = [p for p in path.split("/") if p]
        # the group, then every group above it
        rooms = [_room(base.joinpath(*parts[:depth]), *files) for base in bases for depth in range(len(parts), -1, -1)]
        best = min([r for r in rooms if r is not None] + ([best] if best is not None else []), default=None)
    return best


def _room(folder: Path, limit_file: str, usage_file: str) -> int | None:
    """What the limit of one control group still allows (droppable cache as free); None: no limit."""
    limit, used = _number(folder / limit_file), _number(folder / usage_file)
    if limit is None or used is None or limit >= 1 << 60:  # no limit (v1 writes a huge number)
        return None
    return max(0, limit - used + _inactive_file(folder))


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
    if stream_bytes is not None and n * d * itemsize > stream_bytes:
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


__all__ = ["available_bytes", "cgroup_left", "check_fits", "separation_bytes"]
