"""The one pipeline of every record-writing command.

A :class:`RecordJob` describes a command: its arguments, how they become a configuration (every
check of the call happens there, before any work), the work itself and how its record is shown.
:meth:`RecordJob.main` runs every command the same way::

    parse -> check the output root -> load the data (subset rules) -> configuration -> record folder
    (a safe path below the root) -> reuse a verified record of exactly this configuration, or compute
    -> check the outputs (no NaN) -> stop if interrupted -> atomic write -> print the outcome

and ends by the toolkit's exit-code contract (:func:`separation.core.cli.run_command`). The
command line of a record (:meth:`RecordJob.command_line`) is generated from the same parser, so a
renamed option cannot leave stale commands in reports.

Jobs register themselves by record kind (:func:`job_for` finds the job of a kind through the
package's ``separation.record_jobs`` entry points).
"""
from __future__ import annotations

import abc
import argparse
import dataclasses
import logging
import shlex
from typing import Any, Callable, ClassVar, Mapping, Sequence

import numpy as np

from .cli import add_record_arguments, check_interrupted, integer, progress_of, run_command, setup_logging
from .datasets import DATASET_NAMES, FOLDER_DATASETS, Dataset, load_dataset
from .decoded_store import StoreOptions
from .errors import InvalidInputError, RecordError, UsageError
from .faults import fault
from .paper import NORMS
from .paths import writable_folder
from .records import JOBS_GROUP, Record, reusable, run_metadata, write_record
from .records.kinds import entry_point

log = logging.getLogger("separation.pipeline")

#: Placeholder for the data folder in command lines of records (no machine-specific paths).
DATA_ROOT_PLACEHOLDER = "DATA_ROOT"
#: Datasets that need no data folder (embedded, or a file given by --npz).
NO_DATA_ROOT = ("digits", "npz")


@dataclasses.dataclass
class Computed:
    """What a job's work produced: the record's ``result``, its ``timing`` (seconds by step) and
    its per-point ``arrays``."""

    result: Any
    timing: dict[str, float] = dataclasses.field(default_factory=dict)
    arrays: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)


def add_data_arguments(p: argparse.ArgumentParser, *, norms: Sequence[str] = NORMS,
                       seed_help: str = "seed of --subset (default 0)") -> None:
    """--dataset, --npz, --norm (unless ``norms`` is empty), --data-root, --download, --subset, --seed,
    --image-size, --store-dir, --workers."""
    p.add_argument("--dataset", default="digits", choices=DATASET_NAMES,
                   help="dataset name (default: digits, embedded in scikit-learn, no download)")
    p.add_argument("--npz", default=None, help="file for --dataset npz: x_train, y_train[, x_test, y_test]")
    if norms:
        p.add_argument("--norm", default="linf", choices=norms, help="distance (default: linf)")
    p.add_argument("--data-root", default=None,
                   help="data folder in torchvision's layout (default: $SEPARATION_DATA_ROOT or "
                        "~/.cache/separation/data)")
    p.add_argument("--download", action="store_true", help="download the dataset if missing")
    p.add_argument("--subset", type=integer(2), default=None,
                   help="use a fixed random subset of N train and N test points (N >= 2)")
    p.add_argument("--seed", type=integer(0), default=0, help=seed_help)
    p.add_argument("--image-size", type=integer(1), default=None, metavar="N",
                   help="image-folder datasets (imagefolder, tiny-imagenet, imagenet, restricted-imagenet): shorter "
                        "side to N*9/8, centre crop N, as in the paper (default: images as they are; "
                        "restricted-imagenet: 64)")
    p.add_argument("--store-dir", default=None, metavar="DIR",
                   help="image-folder datasets: folder of their decoded stores, decoded once and read by every "
                        "later command (default: $SEPARATION_STORE_DIR or ~/.cache/separation/decoded)")
    p.add_argument("--workers", type=integer(1), default=None, metavar="N",
                   help="image-folder datasets: threads that decode images into the store (default: every core)")


def load_data(args: argparse.Namespace, *, subset: bool = True) -> Dataset:
    """The dataset ``args`` name, with the subset rules of every command (``--subset`` no larger
    than the training split, then the fixed random subset of ``--seed``)."""
    store = None
    if args.dataset in FOLDER_DATASETS:
        store = StoreOptions(root=getattr(args, "store_dir", None), workers=getattr(args, "workers", None))
        writable_folder(store.folder, "--store-dir")
    ds = load_dataset(args.dataset, root=args.data_root, download=args.download, npz_path=args.npz,
                      image_size=getattr(args, "image_size", None), progress=progress_of(args), store=store)
    n = getattr(args, "subset", None)
    if n is not None and n > len(ds.x_train):
        raise UsageError(f"--subset {n} is larger than the {len(ds.x_train)} training points of "
                         f"{args.dataset}; pass a smaller --subset or leave it out.")
    return ds.subset(n, seed=args.seed) if subset else ds


def produce_record(record_type: type[Record], root, config: Any, work: Callable[[], Computed], *,
                   force: bool = False, seed: int | None = None, data_source: str | None = None) -> tuple[Record, bool]:
    """``(record, reused)``: the verified record of exactly ``config`` below ``root``, or ``work()``
    written as one -- its folder a safe path below ``root``, checked writable before the work; the
    outputs checked (no NaN); nothing written when interrupted. Every record-writing path of the
    toolkit goes through here."""
    folder = record_type.folder_for(root, config)
    writable_folder(folder, "--out")
    rec = reusable(record_type, folder, config, force=force)
    if rec is not None:
        return rec, True
    fault("before-work")
    done = work()
    check_finite_arrays(done.arrays)
    record = record_type(config=config, result=done.result, timing=dict(done.timing),
                         meta=run_metadata(seed, data_source=data_source))
    check_interrupted()
    return write_record(folder, record, arrays=done.arrays or None), False


def check_finite_arrays(arrays: Mapping[str, np.ndarray]) -> None:
    """Refuse to store a float array with a NaN (``inf`` is allowed: a distance to nothing)."""
    for name, a in arrays.items():
        a = np.asarray(a)
        if a.dtype.kind == "f" and np.isnan(a).any():
            raise InvalidInputError(f"the result array {name!r} has {int(np.isnan(a).sum())} NaN value(s); "
                                    "nothing was written (the inputs or the model produce non-finite values)")


def format_value(v: Any) -> str:
    """An option value as it is typed: floats by their shortest repr, the rest as text."""
    if isinstance(v, (float, np.floating)):
        return repr(float(v))
    return str(v)


class RecordJob(abc.ABC):
    """A record-writing command (see the module docstring). Subclasses set the class attributes
    and implement :meth:`add_arguments`, :meth:`configure`, :meth:`compute`, :meth:`values_of`
    and :meth:`summary`."""

    #: ``python -m <module>``
    module: ClassVar[str] = ""
    description: ClassVar[str] = ""
    record_type: ClassVar[type[Record]]
    #: the default output folder is ``runs/<out_kind>``
    out_kind: ClassVar[str] = ""
    #: options shown in a record's command line even at their default value
    always_shown: ClassVar[tuple[str, ...]] = ("dataset", "norm")
    #: whether the command takes the shared data options and loads a dataset
    takes_data: ClassVar[bool] = True
    #: timing entries printed at the end (None: all)
    shown_steps: ClassVar[Sequence[str] | None] = None

    # -- what a subclass provides ---------------------------------------------------------------
    def add_data_arguments(self, p: argparse.ArgumentParser) -> None:
        add_data_arguments(p)

    def load(self, args: argparse.Namespace) -> Dataset:
        """The data the work runs on: the dataset with the subset rules (:func:`load_data`)."""
        return load_data(args)

    @abc.abstractmethod
    def add_arguments(self, p: argparse.ArgumentParser) -> None:
        """The command's own options."""

    @abc.abstractmethod
    def configure(self, args: argparse.Namespace, data: Dataset | None) -> Any:
        """Check the call (UsageError) and return the configuration: everything that changes the result."""

    @abc.abstractmethod
    def compute(self, args: argparse.Namespace, data: Dataset | None, config: Any) -> Computed:
        """The work."""

    @abc.abstractmethod
    def values_of(self, config: Any) -> dict[str, Any]:
        """The option values (by argparse ``dest``) that reproduce ``config``."""

    @abc.abstractmethod
    def summary(self, record: Record) -> str:
        """The text printed for a record."""

    def exit_code(self, record: Record) -> int:
        return 0

    # -- the parser ---------------------------------------------------------------------------------
    def parser(self) -> argparse.ArgumentParser:
        p = argparse.ArgumentParser(prog=f"python -m {self.module}", description=self.description)
        if self.takes_data:
            self.add_data_arguments(p)
        self.add_arguments(p)
        add_record_arguments(p, kind=self.out_kind)
        return p

    # -- the pipeline -------------------------------------------------------------------------------
    def run(self, args: argparse.Namespace) -> tuple[Record, bool]:
        """``(record, reused)`` for parsed ``args``."""
        out = writable_folder(args.out, "--out")
        data = self.load(args) if self.takes_data else None
        config = self.configure(args, data)
        return produce_record(self.record_type, out, config, lambda: self.compute(args, data, config),
                              force=args.force, seed=getattr(args, "seed", None),
                              data_source=data.source if data is not None else None)

    def main(self, argv: Sequence[str] | None = None) -> int:
        args = self.parser().parse_args(argv)
        setup_logging(args.verbose)

        def work() -> int:
            rec, reused = self.run(args)
            print(self.summary(rec))
            print_outcome(rec, reused, steps=self.shown_steps)
            return self.exit_code(rec)

        return run_command(work, verbose=args.verbose)

    # -- command lines --------------------------------------------------------------------------
    def command_line(self, values: Mapping[str, Any], *, data_root: str | None = DATA_ROOT_PLACEHOLDER,
                     out: str | None = None) -> str:
        """The command line that sets ``values`` (argparse ``dest`` -> value), generated from
        :meth:`parser` (see :func:`command_line_from`)."""
        return command_line_from(self.parser(), self.module, values, always=self.always_shown, data_root=data_root,
                                 out=out)

    def record_command(self, record: Record, **where: str | None) -> str:
        """The command line that produces ``record`` (its configuration)."""
        return self.command_line(self.values_of(record.config), **where)


def command_line_from(parser: argparse.ArgumentParser, module: str, values: Mapping[str, Any], *,
                      always: Sequence[str] = (), data_root: str | None = DATA_ROOT_PLACEHOLDER,
                      out: str | None = None) -> str:
    """``python -m <module>`` with ``values`` (argparse ``dest`` -> value) spelled by ``parser``:
    positionals first, then options in parser order, each shown when it differs from its default
    or is in ``always``; then ``--data-root`` (for data on disk) and ``--out``. Flags are never
    spelled by hand, so a renamed option renames every generated command."""
    actions = {a.dest: a for a in parser._actions if not isinstance(a, argparse._HelpAction)}
    unknown = sorted(set(values) - set(actions))
    if unknown:
        raise ValueError(f"{module} has no option for {', '.join(unknown)}")
    parts: list[str] = ["python", "-m", module]
    ordered = [a for a in actions.values() if not a.option_strings] + [a for a in actions.values() if a.option_strings]
    for action in ordered:
        dest = action.dest
        if dest not in values or dest in ("data_root", "out"):
            continue
        v = values[dest]
        if v is None or (v == action.default and dest not in always):
            continue
        if not action.option_strings:
            parts += list(map(format_value, v)) if isinstance(v, (list, tuple)) else [format_value(v)]
            continue
        flag = next((s for s in action.option_strings if s.startswith("--")), action.option_strings[0])
        if isinstance(action, (argparse._StoreTrueAction, argparse._CountAction)):
            if v:
                parts.append(flag)
        elif isinstance(action, argparse._AppendAction):
            for item in v:
                parts += [flag, format_value(item)]
        elif isinstance(v, (list, tuple)):
            parts += [flag, *map(format_value, v)]
        else:
            parts += [flag, format_value(v)]
    if data_root and values.get("dataset") not in NO_DATA_ROOT and "data_root" in actions:
        parts += ["--data-root", data_root]
    if out:
        dest = "out" if "out" in actions else "results_root"
        flag = next(s for s in actions[dest].option_strings if s.startswith("--"))
        parts += [flag, out]
    return " ".join(shlex.quote(p) for p in parts)


def print_outcome(record: Record, reused: bool, *, steps: Sequence[str] | None = None) -> None:
    """The last lines of a record-writing command on stdout: where the record is and how long it
    took (``steps``: the timing entries to show, default all), or that an earlier record was reused."""
    if reused:
        print(f"reused the record computed {record.meta.created} in {record.folder} (--force recomputes)")
        return
    keys = [k for k in (steps or list(record.timing)) if k in record.timing]
    if keys:
        print("time: " + ", ".join(f"{k} {record.timing[k]:.2f}s" for k in keys))
    print(f"record: {record.folder}")


def job_for(kind: str) -> RecordJob:
    """The job that writes records of ``kind`` (from the ``separation.record_jobs`` entry points)."""
    cls = entry_point(JOBS_GROUP, kind)
    if cls is None:
        raise RecordError(f"no command is known for records of kind {kind!r} (install the toolkit: pip install -e .)")
    return cls()


__all__ = ["Computed", "DATA_ROOT_PLACEHOLDER", "NO_DATA_ROOT", "RecordJob", "add_data_arguments",
           "check_finite_arrays", "command_line_from", "produce_record", "format_value", "job_for", "load_data", "print_outcome"]
