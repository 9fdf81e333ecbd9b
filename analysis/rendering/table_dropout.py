"""Table 3: each training method with and without dropout, and how dropout changes the gaps."""
from __future__ import annotations

import json
from typing import Sequence

import pandas as pd

from ..records import TrainingRecord
from .collect import Missing
from .format import fmt_pp
from .provenance import noise_note, training_budget
from .rows import training_row
from .table_methods import METHOD_NOTES, has_autoattack, labelled_in_order, method_display_row
from .writers import TABLE_KEYS, Table


def _pair_key(rec: TrainingRecord) -> str:
    cfg = {k: v for k, v in rec.config.to_dict().items() if k not in ("name", "dropout", "device", "num_threads")}
    return json.dumps({"grid": rec.folder.parent.name, **cfg}, sort_keys=True, default=str)


def dropout_table(training: Sequence[TrainingRecord], *, missing: Sequence[Missing] = ()) -> Table:
    """Table 3: each method with and without dropout (same everything else), with the change of
    the clean and adversarial gaps (with dropout minus without)."""
    groups: dict[str, list[tuple[TrainingRecord, dict]]] = {}
    for rec in training:
        groups.setdefault(_pair_key(rec), []).append((rec, training_row(rec)))
    kept: list[tuple[TrainingRecord, dict]] = []
    unpaired: list[str] = []
    for items in groups.values():
        base = [i for i in items if not i[1]["dropout"]]
        drop = [i for i in items if i[1]["dropout"]]
        if not base or not drop:
            unpaired.extend(i[1]["run"] for i in items)
            continue
        b = base[0][1]
        for _, row in drop:
            for g in ("gap_clean", "gap_adv"):
                row[f"delta_{g}"] = None if row.get(g) is None or b.get(g) is None else row[g] - b[g]
        b["delta_gap_clean"] = b["delta_gap_adv"] = None
        kept.extend([base[0]] + drop)
    kept = labelled_in_order(kept)
    rows = [row for _, row in kept]
    disp = []
    aa = has_autoattack(rows)
    for row in rows:
        d = method_display_row(row, dropout_col=True, autoattack=aa)
        d["Δ gap clean"] = fmt_pp(row.get("delta_gap_clean"), signed=True)
        d["Δ gap adv"] = fmt_pp(row.get("delta_gap_adv"), signed=True)
        disp.append(d)
    notes = list(METHOD_NOTES) + [
        "Dropout: the rate of the architecture's dropout layers (none: the same run without dropout). "
        "Δ gap: the gap with dropout minus the gap of the same method without it, in percentage points "
        "(negative: dropout narrowed the gap)."]
    noise = noise_note(rows, delta=True)
    if noise:
        notes.append(noise)
    if unpaired:
        notes.append("Runs without a partner (with/without dropout) are left out: " + ", ".join(sorted(unpaired)) + ".")
    return Table(TABLE_KEYS["dropout"],
                 "Table 3 – The effect of dropout on accuracy, robustness, local Lipschitz constant and gaps",
                 pd.DataFrame(rows), pd.DataFrame(disp), notes,
                 training_budget([k[0] for k in kept], rows), [k[0].label for k in kept], list(missing))


__all__ = ["dropout_table"]
