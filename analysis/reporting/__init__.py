"""Rendering the paper's tables and figures from stored result records (no recomputation).

``python -m analysis.report`` is the entry point (see :mod:`analysis.report`). The pieces:

- :mod:`.records` -- finds the records under ``results/`` and says which expected ones are
  missing, with the command that produces each;
- :mod:`.tables` -- Table 1 (separation), Table 2 (methods), Table 3 (dropout) as pandas frames,
  written as Markdown, CSV and LaTeX;
- :mod:`.figures` -- distance histograms, test Lipschitz against adversarial accuracy, image grids
  of the closest cross-class pairs (PNG and PDF);
- :mod:`.readme` -- ``reports/README.md``: every table with the budget that produced it.
"""
from __future__ import annotations

from .records import Missing, RecordSet, StoredRecord, find_records

__all__ = ["Missing", "RecordSet", "StoredRecord", "find_records"]
