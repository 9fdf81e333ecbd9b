"""Provenance of a record: when, on what machine, with which code and library versions."""
from __future__ import annotations

import dataclasses
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

LIBRARIES = ("numpy", "scipy", "torch", "torchvision", "faiss-cpu", "faiss-gpu", "numba", "scikit-learn",
             "pandas", "torchattacks", "dask", "distributed")
#: vector extensions that set the speed of the GEMMs and distance kernels, as ``/proc/cpuinfo``
#: names them (x86 ``flags``, Arm ``Features``): two CPUs of one architecture may differ 8x in an
#: int8 GEMM by whether they have VNNI
VECTOR_EXTENSIONS = ("avx", "avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "amx_int8", "asimd",
                     "asimddp", "sve")


@dataclasses.dataclass
class Hardware:
    machine: str
    cpus: int | None
    processor: str
    gpu: str | None = None
    #: the CPU's model name ("" where unknown) and which of :data:`VECTOR_EXTENSIONS` it has
    cpu_model: str = ""
    vector_extensions: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Meta:
    """How a record came about. Not part of its identity: two runs of one configuration on two
    machines give records with the same key and different ``meta``."""

    created: str
    toolkit_version: str | None
    git_commit: str | None
    versions: dict[str, str]
    hardware: Hardware
    host: str = ""
    seed: int | None = None
    data_source: str | None = None
    command: list[str] | None = None


def git_commit(cwd: str | os.PathLike | None = None) -> str | None:
    """The current git commit of the toolkit's checkout (``+dirty`` with uncommitted changes)."""
    cwd = cwd or Path(__file__).resolve().parents[2]
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True,
                             timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):  # no git here: provenance without a commit
        return None
    return (sha + ("+dirty" if dirty else "")) if sha else None


def library_versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            pass
    return out


def cpu_description(cpuinfo: str | None = None) -> tuple[str, list[str]]:
    """``(model name, vector extensions)`` of the first CPU in ``cpuinfo`` (the text of
    ``/proc/cpuinfo``; None: read it, ``("", [])`` where there is none), the extensions in
    :data:`VECTOR_EXTENSIONS` order."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace")
        except OSError:  # not Linux: the model from platform, no extensions
            return platform.processor(), []
    model, flags = "", set()
    for line in cpuinfo.splitlines():
        if not line.strip() and (model or flags):
            break  # the end of the first CPU's block: the others are not read
        key, sep, value = line.partition(":")
        key = key.strip().lower()
        if not sep:
            continue
        if key in ("model name", "cpu model") and not model:
            model = " ".join(value.split())
        elif key in ("flags", "features") and not flags:
            flags = set(value.split())
    return model, [f for f in VECTOR_EXTENSIONS if f in flags]


def hardware() -> Hardware:
    gpu = None
    if "torch" in sys.modules:  # never import torch just to describe the machine
        try:
            torch = sys.modules["torch"]
            if torch.cuda.is_available():
                gpu = torch.cuda.get_device_name(0)
        except (RuntimeError, AssertionError):  # pragma: no cover - a broken CUDA set-up must not stop a record
            gpu = None
    model, extensions = cpu_description()
    return Hardware(platform.machine(), os.cpu_count(), platform.processor() or platform.machine(), gpu,
                    model, extensions)


def toolkit_version() -> str:
    """The toolkit's version, from its package metadata (``setup.cfg``: the one place it is written)."""
    import importlib.metadata as md

    from .kinds import DISTRIBUTION

    return md.version(DISTRIBUTION)


def run_metadata(seed: int | None = None, *, data_source: str | None = None) -> Meta:
    """Versions, git commit, hardware, time and command line, for a record written now."""
    return Meta(created=time.strftime("%Y-%m-%dT%H:%M:%S%z"), toolkit_version=toolkit_version(),
                git_commit=git_commit(), versions=library_versions(), hardware=hardware(),
                host=platform.node(), seed=seed, data_source=data_source, command=list(sys.argv))


__all__ = ["Hardware", "Meta", "VECTOR_EXTENSIONS", "cpu_description", "git_commit", "hardware", "library_versions", "run_metadata", "toolkit_version"]
