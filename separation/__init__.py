"""Exact dataset separation: distance from every point to the nearest differently-labelled training point.

Public API (everything else is private):

- :func:`compute_separation`, :func:`nearest_neighbors`, :func:`k_nearest_other_class`,
  :class:`SeparationResult` (with ``to_frame()`` and ``class_matrix()``);
- :class:`SeparationRecord` (what ``python -m separation.compute`` writes), with
  :class:`SeparationConfig` and :class:`SeparationSummary` (of :class:`SplitSummary`, :class:`Pair`,
  :class:`EpsStat`, :class:`DupPair`);
- :func:`conflict_pairs`, :func:`conflict_pairs_between`, :class:`ConflictPairs`: every
  cross-class pair within a radius (the conflict graph of the robustness bounds), exactly;
- :class:`ClassIndex`: exact distances from queries to every class of a labelled set;
- :class:`ThreatModel`: the eps-ball of a norm intersected with [0, 1]^d (projection, steps, sampling);
- :func:`load_dataset`, :class:`Dataset`, :data:`DATASET_NAMES`;
- :func:`get_engine`, :func:`available_engines` (the engines live in :mod:`separation.engines`);
- the modules :mod:`separation.paper` (the paper's constants), :mod:`separation.arrays` (input
  conventions) and :mod:`separation.records` (result records).
"""
from ._compute import compute_separation, k_nearest_other_class, nearest_neighbors
from ._conflicts import ConflictPairs, conflict_pairs, conflict_pairs_between
from ._result import SeparationResult
from ._summary import DupPair, EpsStat, Pair, SeparationConfig, SeparationRecord, SeparationSummary, SplitSummary
from .datasets import DATASET_NAMES, Dataset, load_dataset
from .engines import available_engines, get_engine
from .index import ClassIndex
from .threat import ThreatModel

__version__ = "0.2.0"

__all__ = ["ClassIndex", "ConflictPairs", "DATASET_NAMES", "Dataset", "DupPair", "EpsStat", "Pair", "SeparationConfig", "SeparationRecord", "SeparationResult",
           "SeparationSummary", "SplitSummary", "ThreatModel", "__version__", "available_engines",
           "compute_separation", "conflict_pairs", "conflict_pairs_between", "get_engine", "k_nearest_other_class", "load_dataset", "nearest_neighbors"]
