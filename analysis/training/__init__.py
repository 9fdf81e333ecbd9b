"""Training one run, and grids of runs, with the paper's methods: data, resumable state, the loop.

``python -m analysis.train`` and ``python -m analysis.grid`` are the command lines; the library is
:func:`train` (:mod:`.loop`), :class:`~.train_job.TrainJob` (one run from its options),
:mod:`.grid_file` (grid files, torch-free), :mod:`.grid_runs` (a grid, run by run) and
:mod:`.grid_cluster` (a grid on a Dask cluster). Submodules load on first use, so reading a grid
file does not import torch.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from separation.core.lazy import lazy_exports

_EXPORTS = {
    "TrainData": "data", "augment": "data", "prepare_data": "data", "to_float": "data",
    "CHECKPOINT_FILE": "loop", "CONFIG_FILE": "loop", "EVALUATION_DIR": "loop", "TrainOutcome": "loop",
    "eval_config": "loop", "train": "loop",
    "CheckpointMismatch": "state", "TrainingDiverged": "state", "TrainingInterrupted": "state", "derive_seed": "state",
}


if TYPE_CHECKING:  # the lazy names, for type checkers and the API reference
    from .data import TrainData, augment, prepare_data, to_float  # noqa: F401
    from .loop import CHECKPOINT_FILE, CONFIG_FILE, EVALUATION_DIR, TrainOutcome, eval_config, train  # noqa: F401
    from .state import CheckpointMismatch, TrainingDiverged, TrainingInterrupted, derive_seed  # noqa: F401


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)


__all__ = sorted(_EXPORTS)
