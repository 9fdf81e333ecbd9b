"""The command kit: typed argument parsers that reject bad values before any work, the shared
arguments, and one way for every command to end.

Exit codes (every ``python -m ...`` command of the toolkit):

* 0 -- success; 1 -- a claim that was checked did not hold (``verify``), or **a bug**: the traceback
  is shown with a line asking to report it;
* 2 -- an expected failure (:class:`~separation.core.errors.ToolkitError`): one ``error:`` line
  that says how to fix the call, nothing written (``--verbose`` adds the traceback);
* 130 -- Ctrl-C, at any moment from start-up on: one line, no traceback, no record.
"""
from __future__ import annotations

import argparse
import logging
import math
import os
import signal
import sys
import threading
import traceback
from fractions import Fraction
from pathlib import Path
from typing import Callable

from .errors import ToolkitError, UsageError
from .faults import fault
from .paths import writable_folder

#: Where a user's runs go by default (git-ignored); the shipped record set is ``results/``.
RUNS_ROOT = Path("runs")

#: Exit codes of every CLI.
EXIT_OK, EXIT_FAILED_CLAIM, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130
#: What an interrupted command prints (and nothing else).
INTERRUPTED = ("interrupted: no record was written (what an unfinished write left is replaced by the next run); "
               "run the command again")
BUG = ("this is a bug in the toolkit, not a problem with your call: please report it with the command line and "
       "the traceback above")

_state = {"interrupted": False}


# -- Ctrl-C -------------------------------------------------------------------------------------
def _on_sigint(signum, frame):
    _state["interrupted"] = True
    raise KeyboardInterrupt


def _excepthook(kind, value, tb):
    if issubclass(kind, KeyboardInterrupt):
        print(INTERRUPTED, file=sys.stderr, flush=True)
        os._exit(EXIT_INTERRUPTED)  # before the work began: nothing to clean up
    traceback.print_exception(kind, value, tb)
    print(f"error: {BUG}", file=sys.stderr, flush=True)


def interruptible_startup(module: str) -> None:
    """Called first by every command module with its ``__name__``: when run as a command, Ctrl-C
    from this moment on (imports included) ends with one line and exit 130, and an uncaught bug
    shows its traceback and a line asking to report it. A no-op when the module is imported."""
    if module != "__main__":
        return
    sys.excepthook = _excepthook
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, _on_sigint)
    fault("startup")


def interrupted() -> bool:
    """Whether a Ctrl-C arrived since start-up, even one that a library swallowed."""
    return _state["interrupted"]


def check_interrupted() -> None:
    """Raise KeyboardInterrupt when a Ctrl-C arrived (called before a record is written, so that
    an interrupt that some library swallowed still stops the command)."""
    if _state["interrupted"]:
        raise KeyboardInterrupt


# -- typed argument parsers (argparse turns their errors into exit code 2) ------------------------
def _number(text: str) -> float:
    if len(text) > 64:
        raise argparse.ArgumentTypeError(f"{text[:20]!r}... is not a number of a sensible size")
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return v


def _positive(v, text: str):
    """``v`` (the value of ``text``), or the argparse error that it must be > 0."""
    if v <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be > 0")
    return v


def positive_float(text: str) -> float:
    return _positive(_number(text), text)


def nonnegative_float(text: str) -> float:
    v = _number(text)
    if v < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be >= 0")
    return v


def eps_value(text: str) -> Fraction:
    """An argparse type: a radius ``>= 0`` in [0, 1] pixel units, as the exact value it spells:
    ``0.3`` is 3/10, ``8/255`` and ``251/510`` are those fractions (:func:`~.threat.exact_eps`)."""
    from .errors import InvalidInputError, InvalidTypeError
    from .threat import EPS_TEXT_MAX, exact_eps

    if len(text) > EPS_TEXT_MAX:
        raise argparse.ArgumentTypeError(f"{text[:20]!r}... is not a number of a sensible size")
    try:
        return exact_eps(text)
    except InvalidTypeError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number: write a radius such as 0.3 or 8/255") from None
    except InvalidInputError:
        finite = not any(w in text.lower() for w in ("inf", "nan"))
        raise argparse.ArgumentTypeError(f"{text!r} must be >= 0" if finite else f"{text!r} is not a finite number") \
            from None


def positive_eps_value(text: str) -> Fraction:
    """:func:`eps_value` ``> 0``."""
    return _positive(eps_value(text), text)


def eps_float(text: str) -> float:
    """:func:`eps_value` as the float nearest to it, for radii used in floating point (attacks)."""
    return float(eps_value(text))


def positive_eps_float(text: str) -> float:
    """:func:`positive_eps_value` as the float nearest to it."""
    return float(positive_eps_value(text))


def integer(minimum: int, maximum: int = 2**62) -> Callable[[str], int]:
    """An argparse type: an integer in ``[minimum, maximum]``."""

    def parse(text: str) -> int:
        if len(text) > 20:
            raise argparse.ArgumentTypeError(f"{text[:20]!r}... is not an integer of a sensible size")
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if v < minimum:
            raise argparse.ArgumentTypeError(f"{text!r} must be >= {minimum}")
        if v > maximum:
            raise argparse.ArgumentTypeError(f"{text!r} must be <= {maximum}")
        return v

    parse.__name__ = f"integer >= {minimum}"
    return parse


def add_record_arguments(p: argparse.ArgumentParser, *, kind: str) -> None:
    """--out, --force, --no-progress, --verbose."""
    default = RUNS_ROOT / kind
    p.add_argument("--out", type=Path, default=default,
                   help=f"folder for records (default {default}); each configuration gets a folder of "
                        "its own below it, named by its settings and a hash of them")
    p.add_argument("--force", action="store_true", help="recompute even if a matching record exists")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--verbose", "-v", action="store_true", help="debug logging, and tracebacks of errors")


def progress_of(args: argparse.Namespace) -> bool | None:
    """The library's ``progress`` for ``--no-progress``: False when it was given, else None (bars
    where a person watches: a terminal or a notebook)."""
    return False if getattr(args, "no_progress", False) else None


def setup_logging(verbose: bool | int = False) -> None:
    """Logs on stderr (results go to stdout); quiet third-party loggers."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("faiss", "numba", "matplotlib", "PIL", "fontTools", "distributed", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def run_command(work: Callable[[], int], *, verbose: bool = False) -> int:
    """Run a command's work and apply the exit-code contract (module docstring): expected
    failures -> one ``error:`` line and 2; Ctrl-C -> 130. A bug propagates with its traceback."""
    try:
        code = work()
    except KeyboardInterrupt:
        print(INTERRUPTED, file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED
    except ToolkitError as exc:
        if verbose:
            traceback.print_exc()
        message = str(exc).strip() or type(exc).__name__
        print(f"error: {' '.join(message.split())}", file=sys.stderr, flush=True)
        return EXIT_BAD_INPUT
    if interrupted():  # a Ctrl-C that a library swallowed still ends the command as interrupted
        print(INTERRUPTED, file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED
    return code


__all__ = ["BUG", "EXIT_BAD_INPUT", "EXIT_FAILED_CLAIM", "EXIT_INTERRUPTED", "EXIT_OK", "INTERRUPTED", "RUNS_ROOT",
           "UsageError", "add_record_arguments", "check_interrupted", "eps_float", "eps_value", "integer",
           "interruptible_startup", "interrupted", "nonnegative_float", "positive_eps_float", "positive_eps_value",
           "positive_float", "progress_of", "run_command", "setup_logging", "writable_folder"]
