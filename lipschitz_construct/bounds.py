"""``python -m lipschitz_construct.bounds``: the best robust accuracy any classifier can reach on a
dataset, at each radius eps -- exactly where solved, with an LP bound and a certified witness.

Examples::

    python -m lipschitz_construct.bounds --dataset digits --norm linf --eps 0.2 0.25 0.3
    python -m lipschitz_construct.bounds --dataset mnist --norm l2 --split train --eps 1.2 1.5 2 2.5 \\
        --data-root ./data

Exit status: 0 on success, 2 on bad input (one line on stderr; no record is written), 130 on Ctrl-C,
1 for a bug (with its traceback). The work is :class:`lipschitz_construct.bounds_job.BoundsJob`.
"""
from separation.core.cli import interruptible_startup

interruptible_startup(__name__)

import sys  # noqa: E402

from lipschitz_construct.bounds_job import BoundsJob  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    return BoundsJob().main(argv)


__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
