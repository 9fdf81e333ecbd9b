"""Exact nearest-neighbour engines behind one interface (see :class:`~separation.engines.base.Engine`).

=============  ==============================================================================
``reference``  float64 brute force (ground truth of the tests; slow)
``cpu``        numba register-tiled kernels with class-pair symmetry and exact pruning (l-inf,
               l1); float32 GEMM + exact recheck (l2). Default without a GPU.
``faiss``      FAISS ``IndexFlat`` (GPU when ``faiss-gpu`` sees one), certified and rechecked
``cuda``       torch + Triton kernel on a CUDA GPU, streamed in blocks
=============  ==============================================================================

:class:`DaskEngine` runs any of them on a Dask cluster, block pair by block pair (it needs a
client or a scheduler address, so it is passed as an instance, never by name).
"""
from __future__ import annotations

import logging

from .base import Engine, PerClassSearch, merge_better
from .blocks import CPUBlocks
from .cpu import CPUEngine
from .cuda import CUDAEngine, cuda_available
from .dask_engine import DaskEngine
from .faiss_engine import FaissEngine, num_gpus
from .reference import ReferenceEngine, pairwise_float64

log = logging.getLogger(__name__)

ENGINES: dict[str, type[Engine]] = {
    "reference": ReferenceEngine,
    "cpu": CPUEngine,
    "faiss": FaissEngine,
    "cuda": CUDAEngine,
}
# what an engine that is not available needs (the reference engine always is)
_MISSING = {"cpu": "install numba (a dependency of this package: reinstall it)",
            "cuda": "it needs a CUDA GPU visible to torch",
            "faiss": "install faiss-cpu (or the 'gpu' extra)"}


def available_engines() -> list[str]:
    """Names of the engines that can run on this machine."""
    return [name for name, cls in ENGINES.items() if cls.available()]


def auto_engine_name() -> str:
    """The fastest available engine: CUDA (torch) > FAISS on GPU > numba CPU."""
    if cuda_available():
        return "cuda"
    if FaissEngine.available() and num_gpus() > 0:
        return "faiss"
    return "cpu"


def get_engine(engine: str | Engine = "auto") -> Engine:
    """Resolve an engine name (or pass an :class:`Engine` instance through)."""
    if isinstance(engine, Engine):
        return engine
    if engine == "auto":
        engine = auto_engine_name()
    if engine == "dask":
        raise ValueError("The dask engine needs a cluster: pass engine=DaskEngine(client_or_address) "
                         "(or --engine dask --scheduler ADDRESS|local:N on the command line).")
    if engine not in ENGINES:
        raise ValueError(
            f"Unknown engine {engine!r}. Use 'auto' or one of {', '.join(ENGINES)}."
        )
    cls = ENGINES[engine]
    if not cls.available():
        raise RuntimeError(f"Engine {engine!r} is not available here: {_MISSING[engine]}. Use engine='auto'.")
    log.debug("using engine %s", engine)
    return cls()


__all__ = ["CPUBlocks", "CPUEngine", "CUDAEngine", "DaskEngine", "ENGINES", "Engine", "FaissEngine", "PerClassSearch",
           "ReferenceEngine", "auto_engine_name", "available_engines", "get_engine", "merge_better",
           "pairwise_float64"]
