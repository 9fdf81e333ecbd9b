"""``python -m analysis.train``: train one model with one of the paper's methods, checkpoint it,
resume it, evaluate it.

::

    python -m analysis.train --config configs/examples/mnist_trades_cpu.yaml --data-root ./data
    python -m analysis.train --config configs/examples/mnist_trades_cpu.yaml --param beta=3 --dropout 0.5

One :class:`~analysis.train_config.TrainConfig` describes the run (file < ``--<field>`` flags < ``--set``).
Re-running the same command resumes from the checkpoint and reaches bit for bit the weights an
uninterrupted run reaches; SIGINT/SIGTERM stop at the next step boundary after saving (exit
130/143). Exit status: 0 done, 2 bad input, 3 stopped by ``--stop-after-steps``. The work is
:class:`analysis.training.train_job.TrainJob`.
"""
from separation.core.cli import interruptible_startup

interruptible_startup(__name__)

import sys  # noqa: E402

from analysis.training.train_job import TrainJob  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    return TrainJob().main(argv)


__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
