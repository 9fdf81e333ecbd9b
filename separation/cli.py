"""What the toolkit's command lines share: the data and record arguments, typed argument parsers
that reject bad values before any work, and one way to end: exit 0 on success, 2 with one line that
says how to fix the call, 130 on Ctrl-C (no traceback, no half-written record)."""
from __future__ import annotations

import argparse
import logging
import math
import os
import sys
from pathlib import Path
from typing import Callable, Sequence

from .datasets import DATASET_NAMES
from .paper import NORMS

#: Where a user's runs go by default (git-ignored); the shipped record set is ``results/``.
RUNS_ROOT = Path("runs")

#: Exit codes of every CLI.
EXIT_OK, EXIT_FAILED_CLAIM, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130


class UsageError(ValueError):
    """Bad input found before any work; the message says how to fix the call."""


# -- typed argument parsers (argparse turns their errors into exit code 2) ------------------------
def _number(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return v


def positive_float(text: str) -> float:
    v = _number(text)
    if v <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be > 0")
    return v


def nonnegative_float(text: str) -> float:
    v = _number(text)
    if v < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be >= 0")
    return v


def integer(minimum: int) -> Callable[[str], int]:
    """An argparse type: an integer >= ``minimum``."""

    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if v < minimum:
            raise argparse.ArgumentTypeError(f"{text!r} must be >= {minimum}")
        return v

    parse.__name__ = f"integer >= {minimum}"
    return parse


# -- shared arguments ----------------------------------------------------------------------------
def add_data_arguments(p: argparse.ArgumentParser, *, seed_help: str = "seed of --subset (default 0)",
                       norms: Sequence[str] = NORMS) -> None:
    """--dataset, --npz, --norm, --data-root, --download, --subset, --seed."""
    p.add_argument("--dataset", default="digits", choices=DATASET_NAMES,
                   help="dataset name (default: digits, embedded in scikit-learn, no download)")
    p.add_argument("--npz", default=None, help="file for --dataset npz: x_train, y_train[, x_test, y_test]")
    p.add_argument("--norm", default="linf", choices=norms, help="distance (default: linf)")
    p.add_argument("--data-root", default=None,
                   help="data folder in torchvision's layout (default: $SEPARATION_DATA_ROOT or "
                        "~/.cache/separation/data)")
    p.add_argument("--download", action="store_true", help="download the dataset if missing")
    p.add_argument("--subset", type=integer(2), default=None,
                   help="use a fixed random subset of N train and N test points (N >= 2)")
    p.add_argument("--seed", type=integer(0), default=0, help=seed_help)


def add_record_arguments(p: argparse.ArgumentParser, *, kind: str) -> None:
    """--out, --force, --no-progress, --verbose."""
    default = RUNS_ROOT / kind
    p.add_argument("--out", type=Path, default=default,
                   help=f"folder for records (default {default}); each configuration gets a folder of "
                        "its own below it, named by its settings and a hash of them")
    p.add_argument("--force", action="store_true", help="recompute even if a matching record exists")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--verbose", "-v", action="store_true", help="debug logging")


def writable_folder(path: str | os.PathLike, what: str = "--out") -> Path:
    """``path`` if it is a folder that exists and can be written, or can be created (it is not
    created here: nothing is written before the work is done); else UsageError."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UsageError(f"{what} {path} is a file; pass a folder (it is created if missing).")
    existing = path
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise UsageError(f"{what} {path} cannot be created: {existing} is a file; pass another folder.")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"{what} {path} is not writable ({existing} is read-only); pass a writable folder.")
    return path


def setup_logging(verbose: bool | int = False) -> None:
    """Logs on stderr (results go to stdout); quiet third-party loggers."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("faiss", "numba", "matplotlib", "PIL", "fontTools", "distributed", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def print_outcome(record, reused: bool, *, steps: list[str] | None = None) -> None:
    """The last lines of a record-writing CLI on stdout: where the record is and how long it took
    (``steps``: the timing entries to show, default all), or that an earlier record was reused."""
    if reused:
        print(f"reused the record computed {record.meta.created} in {record.folder} (--force recomputes)")
        return
    keys = [k for k in (steps or list(record.timing)) if k in record.timing]
    print("time: " + ", ".join(f"{k} {record.timing[k]:.2f}s" for k in keys))
    print(f"record: {record.folder}")


def run_main(work: Callable[[], int], errors: tuple[type[BaseException], ...]) -> int:
    """Run a CLI's work: its return code; ``error: <message>`` and 2 for ``errors``; 130 on Ctrl-C."""
    try:
        return work()
    except KeyboardInterrupt:
        print("interrupted: no record was written (what an unfinished write left is replaced by the next "
              "run); run the command again", file=sys.stderr)
        return EXIT_INTERRUPTED
    except errors as exc:
        message = str(exc).strip() or type(exc).__name__
        print(f"error: {' '.join(message.split())}", file=sys.stderr)
        return EXIT_BAD_INPUT


__all__ = ["EXIT_BAD_INPUT", "EXIT_FAILED_CLAIM", "EXIT_INTERRUPTED", "EXIT_OK", "RUNS_ROOT", "UsageError",
           "add_data_arguments", "add_record_arguments", "integer", "nonnegative_float", "positive_float",
           "print_outcome", "run_main", "setup_logging", "writable_folder"]
