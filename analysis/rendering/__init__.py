"""Rendering the paper's tables and figures from stored result records (no recomputation; torch-free).

``python -m analysis.report`` is the entry point (see :mod:`analysis.report`). The pieces:

- :mod:`.collect` -- the typed records below a results root, and the expected ones that are
  missing, with the command that produces each;
- :mod:`.rows` -- table rows from records; :mod:`.format` -- numbers and names;
  :mod:`.provenance` -- budgets, hardware and dates in words; :mod:`.writers` -- Markdown, CSV, LaTeX;
- :mod:`.table_separation`, :mod:`.table_methods`, :mod:`.table_dropout`, :mod:`.table_bounds`,
  :mod:`.table_achieved` -- one module per table;
- :mod:`.fig_histograms`, :mod:`.fig_lipschitz`, :mod:`.fig_pairs`, :mod:`.fig_bounds`,
  :mod:`.fig_achieved` -- the figures;
- :mod:`.readme` -- ``reports/README.md``: every table with the budget that produced it;
  :mod:`.readme_why` -- its section on the paper's route against the toolkit, from the records;
- :mod:`.frames` -- :func:`load_records`: stored records of one kind as a pandas DataFrame.
"""
from __future__ import annotations

from .collect import Missing, ReportRecords, expected_missing, load_report_records
from .frames import load_records

__all__ = ["Missing", "ReportRecords", "expected_missing", "load_records", "load_report_records"]
