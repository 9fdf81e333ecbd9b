"""``python -m analysis.report``: the paper's tables and figures, rendered from stored records.

Nothing is recomputed: every number comes from a record under ``results/`` (see
:mod:`analysis.rendering.collect`). A record that is absent is reported with the command that
produces it.

Commands (default ``all``)::

    python -m analysis.report all --data-root ./data   # every table, figure and reports/README.md
    python -m analysis.report separation               # Table 1 -> reports/tables/table1_separation.{md,csv,tex}
    python -m analysis.report methods                  # Table 2 -> reports/tables/table2_methods.*
    python -m analysis.report dropout                  # Table 3 -> reports/tables/table3_dropout.*
    python -m analysis.report bounds                   # Table 4 -> reports/tables/table4_robustness_bounds.*
    python -m analysis.report achieved                 # Table 5 -> reports/tables/table5_achieved_vs_achievable.*
    python -m analysis.report figures --data-root D    # reports/figures/*.png and *.pdf
    python -m analysis.report benchmarks               # reports/benchmarks/<name>.md from benchmark records
    python -m analysis.report readme                   # reports/README.md (tables inline)
    python -m analysis.report status                   # which records exist, which are missing

Exit codes: 0 when the requested artefact was rendered from at least one record (for ``all``: when
anything was -- the report of your own runs renders what they allow and lists what is missing);
1 when it had no record at all (the message names the commands that produce one), or with
``--strict`` when any expected record is missing or a figure was skipped; 2 for invalid arguments.

The work is :mod:`analysis.rendering.renderer`.
"""
from separation.core.cli import interruptible_startup

interruptible_startup(__name__)

import sys  # noqa: E402

from analysis.rendering.renderer import main as render_main  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    return render_main(argv)


__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
