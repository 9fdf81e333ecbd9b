"""Exact dataset separation: distance from every point to the nearest differently-labelled training point.

Public API (everything else is private; loaded on first use, so ``import separation`` is cheap):

- :func:`compute_separation`, :func:`nearest_neighbors`, :func:`k_nearest_other_class`,
  :class:`SeparationResult` (with ``to_frame()`` and ``class_matrix()``; :func:`load_result` reads one
  back from a record);
- :class:`SeparationRecord` (what ``python -m separation.compute`` writes), with
  :class:`SeparationConfig` and :class:`SeparationSummary` (of :class:`SplitSummary`, :class:`Pair`,
  :class:`EpsStat`, :class:`DupPair`);
- :func:`conflict_pairs`, :func:`conflict_pairs_between`, :class:`ConflictPairs`: every
  cross-class pair within a radius (the conflict graph of the robustness bounds), exactly;
- :class:`ClassIndex`: exact distances from queries to every class of a labelled set;
- :func:`exact_duplicates`, :class:`DuplicateReport`, :class:`DuplicateGroup`: identical images by
  hashing (O(N), verified byte for byte), same-label and cross-label, as a DataFrame;
- :class:`ThreatModel`: the eps-ball of a norm intersected with [0, 1]^d (projection, steps, sampling);
- :func:`load_dataset`, :class:`Dataset`, :data:`DATASET_NAMES`;
- :func:`get_engine`, :func:`available_engines` (the engines live in :mod:`separation.engines`);
- the foundation :mod:`separation.core` (paper constants, arrays, records, the command kit).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from .core.lazy import lazy_exports

_EXPORTS = {
    "compute_separation": "search", "k_nearest_other_class": "search", "nearest_neighbors": "search",
    "ConflictPairs": "range_search", "conflict_pairs": "range_search", "conflict_pairs_between": "range_search",
    "SeparationResult": "result", "load_result": "result",
    "DupPair": "separation_record", "EpsStat": "separation_record", "Pair": "separation_record",
    "SeparationConfig": "separation_record", "SeparationRecord": "separation_record",
    "SeparationSummary": "separation_record", "SplitSummary": "separation_record",
    "DATASET_NAMES": "core.datasets", "Dataset": "core.datasets", "load_dataset": "core.datasets",
    "available_engines": "engines", "get_engine": "engines",
    "ClassIndex": "class_index",
    "DuplicateGroup": "duplicates", "DuplicateReport": "duplicates", "exact_duplicates": "duplicates",
    "ThreatModel": "core.threat",
}


if TYPE_CHECKING:  # the lazy names, for type checkers and the API reference
    from .search import compute_separation, k_nearest_other_class, nearest_neighbors  # noqa: F401
    from .range_search import ConflictPairs, conflict_pairs, conflict_pairs_between  # noqa: F401
    from .result import SeparationResult, load_result  # noqa: F401
    from .separation_record import DupPair, EpsStat, Pair, SeparationConfig, SeparationRecord, SeparationSummary, SplitSummary  # noqa: F401
    from .core.datasets import DATASET_NAMES, Dataset, load_dataset  # noqa: F401
    from .engines import available_engines, get_engine  # noqa: F401
    from .class_index import ClassIndex  # noqa: F401
    from .duplicates import DuplicateGroup, DuplicateReport, exact_duplicates  # noqa: F401
    from .core.threat import ThreatModel  # noqa: F401


_exported, _dir = lazy_exports(__name__, _EXPORTS)


def __getattr__(name: str):
    if name == "__version__":
        from .core.records import toolkit_version

        return toolkit_version()
    return _exported(name)


def __dir__():
    return sorted(_dir() + ["__version__"])


__all__ = sorted([*_EXPORTS, "__version__"])
