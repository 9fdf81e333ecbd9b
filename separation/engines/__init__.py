"""Exact nearest-neighbour engines behind one interface (see :class:`~separation.engines.base.Engine`).

=============  ==============================================================================
``reference``  float64 brute force (ground truth of the tests; slow)
``cpu``        numba kernels with exact pruning (l-inf: query-specific pixel probes; l1 on
               bytes: a pooled bound from sums of absolute byte differences, :mod:`.sad`);
               l2 on bytes: a pooled bound from a float32 GEMM, then exact integer distances;
               float32 GEMM + exact recheck on floats. Default without a GPU.
``faiss``      FAISS ``IndexFlat`` (GPU when ``faiss-gpu`` sees one), certified and rechecked
``cuda``       torch + Triton kernel on a CUDA GPU, streamed in blocks
=============  ==============================================================================

:class:`DaskEngine` runs any of them on a Dask cluster, block pair by block pair (it needs a
client or a scheduler address, so it is passed as an instance, never by name).

What each engine can do is explicit (:data:`CAPABILITIES`, :meth:`Engine.can`): ``get_engine("auto",
capability=...)`` picks the fastest engine here that has it.
"""
from __future__ import annotations

from .base import CAPABILITIES, Engine, PerClassSearch, engines_with, merge_better
from .blocks import CPUBlocks
# the registry first: the engines register in its order (the order error messages name them)
from .registry import ENGINES, auto_engine_name, available_engines, get_engine  # isort: skip
from .cpu import CPUEngine
from .cuda import CUDAEngine
from .dask_engine import DaskEngine
from .exact import pairwise_float64
from .faiss_engine import FaissEngine
from .reference import ReferenceEngine

__all__ = ["CAPABILITIES", "CPUBlocks", "CPUEngine", "CUDAEngine", "DaskEngine", "ENGINES", "Engine", "FaissEngine",
           "PerClassSearch", "ReferenceEngine", "auto_engine_name", "available_engines", "engines_with", "get_engine",
           "merge_better", "pairwise_float64"]
