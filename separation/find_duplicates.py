"""``python -m separation.find_duplicates``: exact duplicate images of a dataset, written as a record.

Examples::

    python -m separation.find_duplicates --dataset digits
    python -m separation.find_duplicates --dataset tiny-imagenet --data-root ./data

Exit status: 0 on success, 2 on bad input (one line on stderr, nothing written), 130 on Ctrl-C,
1 for a bug (with its traceback). The work is :class:`separation.duplicates_job.DuplicatesJob`.
"""
from separation.core.cli import interruptible_startup

interruptible_startup(__name__)

import sys  # noqa: E402

from separation.duplicates_job import DuplicatesJob  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    return DuplicatesJob().main(argv)


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["main"]
