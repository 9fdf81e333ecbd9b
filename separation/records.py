"""``python -m separation.records``: check and migrate stored records.

::

    python -m separation.records verify results            # every record below results/ intact?
    python -m separation.records migrate results           # schema-1 records rewritten as schema 2
    python -m separation.records import-benchmark reports/benchmarks/separation_engines.json

Exit status: 0 when every record is usable, 1 when one was skipped (each is listed), 2 on bad input,
130 on Ctrl-C. The work is :mod:`separation.core.records.tools`.
"""
from separation.core.cli import interruptible_startup

interruptible_startup(__name__)

import sys  # noqa: E402

from separation.core.cli import run_command  # noqa: E402
from separation.core.records.tools import get_args_parser, run  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    return run_command(lambda: run(args))


__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
