"""``python -m separation.compute``: exact separation of a dataset, written as a result record.

Examples::

    python -m separation.compute --dataset digits --norm linf
    python -m separation.compute --dataset mnist --norm linf --data-root ./data
    python -m separation.compute --dataset npz --npz my_data.npz --norm l2 --eps 0.5 1.0
    python -m separation.compute --dataset mnist --norm linf --engine dask --scheduler local:2

Exit status: 0 on success, 2 on bad input (one line on stderr, nothing written), 130 on Ctrl-C,
1 for a bug (with its traceback). The work is :class:`separation.separation_job.SeparationJob`.
"""
from separation.core.cli import interruptible_startup

interruptible_startup(__name__)

import sys  # noqa: E402

from separation.separation_job import SeparationJob  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    return SeparationJob().main(argv)


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["main"]
