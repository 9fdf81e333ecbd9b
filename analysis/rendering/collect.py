"""The records a report is rendered from, and the expected ones that are missing (with the command
that produces each). Nothing here computes a result: records are read (and verified) only.

A results root holds records of any kind at any depth (``record.json`` + ``arrays.npz``); each is
read as its typed record (:mod:`separation.core.records`). The shipped set is ``results/``.
"""
from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path
from typing import Iterable

from lipschitz_construct.records import BoundsRecord, VerificationRecord
from separation import SeparationRecord
from separation.core.paper import TABLE1_NORMS
from separation.core.errors import ToolkitError
from separation.core.pipeline import DATA_ROOT_PLACEHOLDER
from separation.core.records import RecordSet, find_records
from separation.core.records.benchmark import BenchmarkRecord

from ..records import EvaluationRecord, TrainingRecord
from .commands import (bounds_command, evaluate_constructed_command, grid_command, separation_command,
                       verify_command)

log = logging.getLogger(__name__)

#: Datasets whose data is on this machine (../shared/data, or sklearn's embedded digits).
LOCAL_DATASETS = ("mnist", "fashion-mnist", "digits")
#: Datasets of the paper that need data this machine does not have.
REMOTE_DATASETS = ("cifar10", "svhn", "restricted-imagenet")
#: The training grids whose records the methods and dropout tables expect.
DEFAULT_GRID_FILES = ("configs/mnist_cpu.yaml",)
#: The constructed classifier checked on these (dataset, norm, eps).
CONSTRUCT_RUNS = (("mnist", "linf", 0.1),)
#: The constructed classifier attacked by analysis.evaluate on this many train / test points.
CONSTRUCTED_EVAL_SUBSET = 500
#: The robustness bounds computed on the full training sets: (dataset, norm, eps, cliques), each eps
#: the exact text ``--eps`` takes (a decimal is the number it spells). Each grid starts at half the
#: separation (Table 1), where the optimum first drops below 100%, and goes up while the conflict
#: graph stays small enough for a run of minutes on a 2-core CPU (the Makefile's ``bounds`` target
#: runs the same commands). Half the separation, exactly: l-inf byte distance k gives k/510 (MNIST
#: 188/510 = 94/255, Fashion-MNIST 81/510 = 27/170, as ``eps_text`` writes them), and 251/510,
#: 42/85 = 252/510 are the ties of l-inf byte distances 251 and 252; for l2 (squared byte distance
#: k: MNIST 374141, Fashion-MNIST 166205) sqrt(k)/510 is irrational, so the first eps is the 6-digit
#: decimal just above it: (510 eps)**2 lies in [k, k + 1), the same conflicts as the exact half.
BOUNDS_RUNS: tuple[tuple[str, str, tuple[str, ...], bool], ...] = (
    ("mnist", "linf", ("94/255", "0.4", "0.44", "0.46", "0.47", "0.48", "0.485", "0.49", "251/510", "42/85"), False),
    ("mnist", "l2", ("1.199355", "1.5", "1.75", "2", "2.25", "2.5", "2.625", "2.75", "3"), False),
    ("fashion-mnist", "linf", ("27/170", "0.2", "0.22", "0.24", "0.26", "0.28", "0.3", "0.3125", "0.325", "0.3375",
                               "0.35"), False),
    ("fashion-mnist", "l2", ("0.799378", "1", "1.2", "1.4", "1.5", "1.6", "1.7", "1.8", "1.9", "2"), False),
    ("mnist", "l1", ("7.3", "8", "10", "12", "14", "16", "18", "20", "22", "24"), False),
    ("fashion-mnist", "l1", ("135/17", "10", "12", "14", "16", "18", "20", "22", "24", "26"), False),
)

#: Every bounds run of the reports also computes the exact randomized optimum (``--randomized``);
#: the clique-cover LP (``--cliques``) it supersedes is not asked for.
BOUNDS_RANDOMIZED = True


#: The achieved-vs-achievable evaluation behind Table 5: (checkpoint, name, dataset, norm, eps, subset).
#: The AT model of the CPU grid (configs/mnist_cpu.yaml, run ``at``; ``make grids`` writes its
#: checkpoint) attacked at radii up to where the optimum on these 500 test points drops below 100%
#: (half their test--test separation, about 0.48); the Makefile's ``evaluate-achieved`` target runs it.
ACHIEVED_RUNS: tuple[tuple[str, str, str, str, tuple[float, ...], int], ...] = (
    ("checkpoints/mnist_cpu/at-81a149e3/last.pt", "at_mnist_cpu", "mnist", "linf",
     (0.05, 0.1, 0.2, 0.3, 0.49, 0.499), 500),
)


@dataclasses.dataclass
class ReportRecords:
    """The records of each kind a report reads, and the folders that could not be read."""

    root: Path
    separation: list[SeparationRecord]
    construct: list[VerificationRecord]
    evaluate: list[EvaluationRecord]
    training: list[TrainingRecord]
    benchmark: list[BenchmarkRecord]
    problems: list[str]
    all: RecordSet
    bounds: list[BoundsRecord] = dataclasses.field(default_factory=list)

    def of(self, kind: str) -> list:
        return getattr(self, kind)

    def __len__(self) -> int:
        return len(self.all)


def load_report_records(root: str | os.PathLike = "results") -> ReportRecords:
    """Every record below ``root`` (sorted by path); unreadable or inconsistent ones are listed in
    ``problems``, never raised."""
    rs = find_records(root)
    return ReportRecords(Path(root), rs.of(SeparationRecord), rs.of(VerificationRecord), rs.of(EvaluationRecord),
                         rs.of(TrainingRecord), rs.of(BenchmarkRecord), list(rs.problems), rs,
                         bounds=rs.of(BoundsRecord))


def write_artefact(path: str | os.PathLike, data: bytes | str) -> Path:
    """An atomic write of a report file (:func:`separation.core.records.atomic_write_bytes`)."""
    from separation.core.records import atomic_write_bytes

    return atomic_write_bytes(path, data.encode() if isinstance(data, str) else data)


def display_path(path: str | os.PathLike) -> str:
    """``path`` relative to the working directory when it lies below it (stable in reports)."""
    p = Path(path)
    try:
        return p.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except (OSError, ValueError):
        return p.as_posix()


@dataclasses.dataclass(frozen=True)
class Missing:
    """An expected record that is not stored, and the command that produces it."""

    what: str
    folder: str
    command: str
    local: bool = True  # False: needs data that is not on this machine
    kind: str = ""  # separation, construct, evaluate, training or bounds

    def message(self) -> str:
        return f"missing {self.what} (below {self.folder}/). Produce it with:\n    {self.command}"


def _out(root: Path, sub: str) -> str:
    """``--out`` of a command that fills ``root/sub`` (the commands' own default is ``runs/``)."""
    return display_path(Path(root) / sub)


def grid_runs(grid_file: str | os.PathLike) -> tuple[str, list[str]] | None:
    """(grid name, run names) of a grid file; None (and a log line) when it cannot be read."""
    path = Path(grid_file)
    if not path.is_file():
        log.debug("grid file %s not found", path)
        return None
    try:
        from ..training.grid_file import load_grid

        grid = load_grid(path)
    except ToolkitError as exc:  # the report must still render what exists
        log.warning("cannot read the grid file %s (%s); its missing runs are not listed", path, exc)
        return None
    return grid.name, grid.names()


def expected_missing(records: ReportRecords, *, data_root: str | None = None,
                     grid_files: Iterable[str | os.PathLike] = DEFAULT_GRID_FILES,
                     construct_runs: Iterable[tuple[str, str, float]] = CONSTRUCT_RUNS,
                     constructed_eval_subset: int | None = CONSTRUCTED_EVAL_SUBSET,
                     bounds_runs: Iterable[tuple[str, str, tuple[str, ...], bool]] = BOUNDS_RUNS) -> list[Missing]:
    """The records this machine can produce that are not stored yet (``local=True``), and those of
    the paper's other datasets (``local=False``: they need data that is not here)."""
    root = records.root
    data = data_root or DATA_ROOT_PLACEHOLDER
    out: list[Missing] = []
    stored = {(r.config.data.dataset, r.config.norm) for r in records.separation}
    for local, datasets in ((True, LOCAL_DATASETS), (False, REMOTE_DATASETS)):
        for ds in datasets:
            for norm in TABLE1_NORMS:
                if (ds, norm) not in stored:  # a subset record counts: the table shows it, marked
                    out.append(Missing(f"separation record for {ds} ({norm})", display_path(root / "separation" / ds),
                                       separation_command(ds, norm, data_root=data, out=_out(root, "separation")),
                                       local, "separation"))
    for ds, norm, eps in construct_runs:
        if not any(r.config.data.dataset == ds and r.config.norm == norm for r in records.construct):
            out.append(Missing(f"constructed-classifier record for {ds} ({norm}, eps {eps:g})",
                               display_path(root / "construct" / ds),
                               verify_command(ds, norm, eps=(eps,), data_root=data, out=_out(root, "construct")),
                               True, "construct"))
        if constructed_eval_subset is not None and not any(
                r.constructed and r.config.data.dataset == ds and r.config.norm == norm and r.config.eps == eps
                and r.config.data.subset == constructed_eval_subset for r in records.evaluate):
            out.append(Missing(f"attacked constructed classifier on {ds} ({norm}, eps {eps:g}, "
                               f"{constructed_eval_subset} points)", display_path(root / "evaluate" / ds),
                               evaluate_constructed_command(ds, norm, eps, subset=constructed_eval_subset,
                                                            data_root=data, out=_out(root, "evaluate")), True, "evaluate"))
    for ds, norm, eps, cliques in bounds_runs:
        if not any(r.config.data.dataset == ds and r.config.norm == norm and r.config.split == "train"
                   for r in records.bounds):
            out.append(Missing(f"robustness-bounds record for {ds} ({norm}, {len(eps)} radii)",
                               display_path(root / "bounds" / ds),
                               bounds_command(ds, norm, eps, cliques=cliques, randomized=BOUNDS_RANDOMIZED, data_root=data,
                                              out=_out(root, "bounds")),
                               True, "bounds"))
    for gf in grid_files:
        spec = grid_runs(gf)
        if spec is None:
            continue
        name, runs = spec
        have = {r.config.name for r in records.training if Path(r.folder).parent.name == name}
        absent = [r for r in runs if r not in have]
        if absent:
            shown = ", ".join(absent[:6]) + (f", ... ({len(absent)} in all)" if len(absent) > 6 else "")
            out.append(Missing(f"{len(absent)} of {len(runs)} training runs of grid {name} ({shown})",
                               display_path(root / "training" / name),
                               grid_command(Path(gf).as_posix(), data_root=data,
                                            results_root=_out(root, "training")), True, "training"))
    return out


__all__ = ["ACHIEVED_RUNS", "BOUNDS_RANDOMIZED", "BOUNDS_RUNS", "CONSTRUCTED_EVAL_SUBSET", "CONSTRUCT_RUNS", "DATA_ROOT_PLACEHOLDER", "DEFAULT_GRID_FILES",
           "LOCAL_DATASETS", "Missing", "REMOTE_DATASETS", "ReportRecords", "display_path", "expected_missing",
           "grid_runs", "load_report_records", "write_artefact"]
