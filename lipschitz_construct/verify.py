"""``python -m lipschitz_construct.verify``: build the classifier of the proof and check its claims.

Examples::

    python -m lipschitz_construct.verify --dataset digits --norm linf
    python -m lipschitz_construct.verify --dataset mnist --norm linf --eps 0.1 --data-root ./data

Exit status: 0 when every claim held, 1 when one did not (or for a bug, with its traceback), 2 on bad
input (one line on stderr; no record is written), 130 on Ctrl-C. The work is
:class:`lipschitz_construct.verify_job.VerifyJob`.
"""
from separation.core.cli import interruptible_startup

interruptible_startup(__name__)

import sys  # noqa: E402

from lipschitz_construct.verify_job import VerifyJob  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    return VerifyJob().main(argv)


__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
