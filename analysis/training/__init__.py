"""Training one run with one of the paper's methods: data, resumable state, the loop.

``python -m analysis.train`` is the command line (:mod:`analysis.train`); :func:`train` the library.
"""
from .data import TrainData, augment, prepare_data, to_float
from .loop import CHECKPOINT_FILE, CONFIG_FILE, EVALUATION_DIR, TrainOutcome, eval_config, finished_record, train
from .state import CheckpointMismatch, TrainingInterrupted, derive_seed

__all__ = ["CHECKPOINT_FILE", "CONFIG_FILE", "CheckpointMismatch", "EVALUATION_DIR", "TrainData", "TrainOutcome",
           "TrainingInterrupted", "augment", "derive_seed", "eval_config", "finished_record", "prepare_data",
           "to_float", "train"]
