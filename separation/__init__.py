"""Exact dataset separation: distance from every point to the nearest differently-labelled training point."""
from .core import SeparationResult, compute_separation, nearest_neighbors
from .engines import available_engines, get_engine

__all__ = ["SeparationResult", "compute_separation", "nearest_neighbors", "available_engines",
           "get_engine", "load_dataset", "DATASETS"]
__version__ = "0.1.0"


def __getattr__(name):  # datasets import torchvision lazily
    if name in ("load_dataset", "DATASETS"):
        from . import datasets

        return getattr(datasets, name)
    raise AttributeError(name)
