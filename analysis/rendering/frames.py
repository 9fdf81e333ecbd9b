"""Stored records as one tidy pandas DataFrame per kind: the rows the reports are built from.

    >>> from analysis.rendering import load_records
    >>> load_records("separation", "results")[["dataset", "norm", "train_min", "test_min"]]

Kinds: ``separation`` (one row per record and eps), ``training`` and ``evaluate`` (one row per
model), ``lipschitz_construct`` (one row per verification), and any other kind (one row per
record: its label, key, creation time and flattened config). Fractions are in [0, 1]. Records that
cannot be read are skipped with a warning (see ``load_report_records(...).problems``).
"""
from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path
from typing import Any

import pandas as pd

from separation.core.records import find_records, record_class
from separation.core.errors import InvalidInputError

from .rows import construct_row, evaluate_row, separation_rows, training_row

log = logging.getLogger(__name__)

#: The kind names accepted (and their aliases).
KINDS = {"separation": "separation", "training": "training", "evaluate": "evaluate", "evaluation": "evaluate",
         "lipschitz_construct": "lipschitz_construct", "construct": "lipschitz_construct",
         "verification": "lipschitz_construct", "bounds": "bounds", "benchmark": "benchmark"}


def _flat(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    if isinstance(value, dict):
        for k, v in value.items():
            _flat(f"{prefix}.{k}" if prefix else str(k), v, out)
    else:
        out[prefix] = list(value) if isinstance(value, tuple) else value


def generic_row(rec) -> dict[str, Any]:
    """Label, key, creation time and the flattened ``config`` of any record."""
    row: dict[str, Any] = {"record": rec.label, "kind": rec.KIND, "key": rec.key,
                           "created": rec.meta.created if rec.meta else None}
    _flat("config", rec.config, row)
    return row


def load_records(kind: str, root: str | os.PathLike = "results") -> pd.DataFrame:
    """Every record of ``kind`` below ``root`` as one DataFrame (see the module docstring)."""
    if kind not in KINDS:
        raise InvalidInputError(f"unknown record kind {kind!r}; choose one of {', '.join(sorted(set(KINDS)))}")
    kind = KINDS[kind]
    record_class(kind)  # import its module: an unknown kind fails here, not silently
    if not Path(root).is_dir():
        raise InvalidInputError(f"{root} is not a folder of records (relative paths are taken from {Path.cwd()}); "
                                "pass root= the folder the commands wrote to (e.g. runs/ or results/)")
    recs = find_records(root, kinds=[kind]).of(kind)
    if not recs:
        log.warning("no %s records below %s: the table is empty", kind, root)
    rows: list[dict[str, Any]] = []
    for rec in recs:
        if kind == "separation":
            rows += separation_rows(rec)
        elif kind == "training":
            rows.append(training_row(rec))
        elif kind == "evaluate":
            rows.append(evaluate_row(rec))
        elif kind == "lipschitz_construct":
            rows.append(construct_row(rec))
        else:
            rows.append(generic_row(rec))
    return pd.DataFrame(rows)


__all__ = ["KINDS", "generic_row", "load_records"]
