"""The command lines a report shows (for records that are missing), generated from each command's
own parser through its job (:meth:`separation.core.pipeline.RecordJob.command_line`): a flag is
never spelled here, so renaming an option renames every command a report prints."""
from __future__ import annotations

from typing import Sequence

from separation.core.pipeline import DATA_ROOT_PLACEHOLDER


def separation_command(dataset: str, norm: str, *, data_root: str | None = DATA_ROOT_PLACEHOLDER,
                       out: str | None = None) -> str:
    from separation.separation_job import SeparationJob

    return SeparationJob().command_line({"dataset": dataset, "norm": norm}, data_root=data_root, out=out)


def verify_command(dataset: str, norm: str, *, eps: Sequence[float] | None = None,
                   data_root: str | None = DATA_ROOT_PLACEHOLDER, out: str | None = None) -> str:
    from lipschitz_construct.verify_job import VerifyJob

    return VerifyJob().command_line({"dataset": dataset, "norm": norm, "eps": list(eps) if eps else None},
                                    data_root=data_root, out=out)


def evaluate_constructed_command(dataset: str, norm: str, eps: float, *, subset: int | None = None,
                                 data_root: str | None = DATA_ROOT_PLACEHOLDER, out: str | None = None) -> str:
    from ..evaluate_job import EvaluateJob

    return EvaluateJob().command_line({"model": "constructed", "dataset": dataset, "norm": norm, "eps": eps,
                                       "subset": subset}, data_root=data_root, out=out)


def achieved_command(checkpoint: str, name: str, dataset: str, norm: str, eps: Sequence[float], *,
                     subset: int | None = None, data_root: str | None = DATA_ROOT_PLACEHOLDER,
                     out: str | None = None) -> str:
    """A trained checkpoint attacked at several radii, beside the data's optimum on the same test
    points (``--bounds``): the record behind Table 5 and the achieved-vs-achievable figure."""
    from ..evaluate_job import EvaluateJob

    return EvaluateJob().command_line({"checkpoint": checkpoint, "name": name, "dataset": dataset, "norm": norm,
                                       "eps": list(eps), "subset": subset, "bounds": True},
                                      data_root=data_root, out=out)


def bounds_command(dataset: str, norm: str, eps: Sequence[float], *, cliques: bool = False,
                   randomized: bool = False, data_root: str | None = DATA_ROOT_PLACEHOLDER,
                   out: str | None = None) -> str:
    from lipschitz_construct.bounds_job import BoundsJob

    return BoundsJob().command_line({"dataset": dataset, "norm": norm, "split": "train", "eps": list(eps),
                                     "cliques": cliques, "randomized": randomized}, data_root=data_root, out=out)


def grid_command(grid_file: str, *, data_root: str | None = DATA_ROOT_PLACEHOLDER,
                 results_root: str | None = None) -> str:
    from ..training.grid_job import grid_command as command

    return command(grid_file, data_root=data_root, results_root=results_root)


__all__ = ["achieved_command", "bounds_command", "evaluate_constructed_command", "grid_command", "separation_command", "verify_command"]
