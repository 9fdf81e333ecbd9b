"""``python -m analysis.grid GRID``: train and evaluate every run of a grid file, skipping finished
runs and resuming interrupted ones from their checkpoints (grid files: :mod:`analysis.training.grid_file`).

::

    python -m analysis.grid configs/mnist_cpu.yaml --data-root ./data
    python -m analysis.grid configs/mnist_cpu.yaml --list | --table
    python -m analysis.grid configs/mnist_cpu.yaml --scheduler local:2     # or tcp://HOST:8786

The work is :mod:`analysis.training.grid_job`.
"""
from separation.core.cli import interruptible_startup

interruptible_startup(__name__)

import sys  # noqa: E402

from analysis.training.grid_job import main as grid_main  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    return grid_main(argv)


__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
