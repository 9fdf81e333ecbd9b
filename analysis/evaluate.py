"""``python -m analysis.evaluate``: evaluate a model and write one ``evaluate`` record.

::

    python -m analysis.evaluate --checkpoint model.pt --dataset mnist --eps 0.1 --data-root ./data --subset 500
    python -m analysis.evaluate --model constructed --dataset digits --subset 300

The library entry point is :func:`analysis.model_metrics.evaluate_model`; this command's work is
:class:`analysis.evaluate_job.EvaluateJob`. Exit status: 0 on success, 2 on bad input (one line on
stderr, nothing written), 130 on Ctrl-C, 1 for a bug (with its traceback).
"""
from separation.core.cli import interruptible_startup

interruptible_startup(__name__)

import sys  # noqa: E402

from analysis.evaluate_job import EvaluateJob  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    return EvaluateJob().main(argv)


__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
