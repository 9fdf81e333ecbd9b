"""Table 2: accuracy, adversarial accuracy, local Lipschitz constant and gaps per training method,
plus the constructed classifier (certified and attacked); the helpers Table 3 shares."""
from __future__ import annotations

import json
import os
from typing import Any, Sequence

import pandas as pd

from lipschitz_construct.records import VerificationRecord

from ..records import EvaluationRecord, TrainingRecord
from .collect import Missing
from .format import DASH, dataset_name, dataset_rank, finite, fmt_eps, fmt_int, fmt_pct, fmt_pp, fmt_sig, method_rank
from .provenance import noise_note, other_budget, training_budget
from .rows import construct_row, evaluate_row, training_row
from .writers import TABLE_KEYS, Table

METHOD_DISPLAY = [
    ("Train acc", "train_acc", fmt_pct), ("Test acc", "test_acc", fmt_pct),
    ("Adv test acc (PGD)", "test_adv_acc_pgd", fmt_pct), ("Adv test acc (MT)", "test_adv_acc_mt", fmt_pct),
    ("Train Lip", "train_lipschitz", fmt_sig), ("Test Lip", "test_lipschitz", fmt_sig),
    ("Gap clean", "gap_clean", fmt_pp), ("Gap adv", "gap_adv", fmt_pp),
]


def _bound_cell(row: dict) -> str:
    b, m = row.get("lipschitz_bound"), row.get("lipschitz_measured")
    if b is None and m is None:
        return DASH
    what = "1/r" if row["source"] == "construct" else f"{row['n_classes']}/r" if row.get("n_classes") else "bound"
    return f"{what} = {fmt_sig(b)} ({fmt_sig(m)})"


def _setting_cell(row: dict) -> str:
    if row["source"] == "training":
        return str(row["setting"])
    if row["source"] == "evaluate":
        n = row.get("n_test_eval")
        return f"analysis.evaluate ({fmt_int(n)} pts)" if n else "analysis.evaluate"
    return str(row["setting"])


def _row_order(r: dict) -> tuple:
    src_rank = {"training": 0, "evaluate": 1, "construct": 1}
    return (dataset_rank(r["dataset"]), src_rank.get(r["source"], 2),
            str(r["setting"]) if r["source"] == "training" else "",
            method_rank(r["method"], json.loads(r["method_params"] or "{}")),
            r["source"] != "construct", r.get("norm") not in (None, "linf"), r.get("dropout") or 0.0, str(r["run"]))


def labelled_in_order(pairs: list[tuple[Any, dict]]) -> list[tuple[Any, dict]]:
    """``(record, row)`` pairs in the tables' order, rows that would read alike told apart
    (:func:`uniquify_labels`)."""
    uniquify_labels([row for _, row in pairs])
    return sorted(pairs, key=lambda p: _row_order(p[1]))


def uniquify_labels(rows: list[dict]) -> None:
    """Rows that would read alike get the part of their record folder's name that differs."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["dataset"], r["setting"], r["method_label"], r.get("dropout")), []).append(r)
    for group in groups.values():
        if len(group) < 2:
            continue
        names = [str(r["run"]) for r in group]
        prefix = os.path.commonprefix(names)
        if len(prefix) < max(map(len, names)):  # cut back to a separator, keep whole words
            cut = max(prefix.rfind(c) for c in "_-/")
            prefix = prefix[:cut + 1] if cut >= 0 else ""
        for r, n in zip(group, names):
            r["method_label"] += f" [{n[len(prefix):].strip('_-/') or n}]"


def method_display_row(row: dict, *, dropout_col: bool = False, autoattack: bool = False) -> dict[str, str]:
    d = {"Dataset": dataset_name(row["dataset"]), "Setting": _setting_cell(row), "Method": row["method_label"]}
    if dropout_col:
        d["Dropout"] = fmt_eps(row["dropout"]) if row.get("dropout") else "none"
    for title, key, f in METHOD_DISPLAY:
        d[title] = f(row.get(key))
        if key == "test_adv_acc_mt" and autoattack:  # a column only when some model was run with it
            d["Adv test acc (AA)"] = fmt_pct(row.get("test_adv_acc_aa"))
    return d


def has_autoattack(rows: Sequence[dict]) -> bool:
    return any(r.get("test_adv_acc_aa") is not None for r in rows)


METHOD_NOTES = [
    "Accuracies in %, on the evaluated points (see the budget). Adv test acc: accuracy under the attack "
    "at radius ε (PGD: projected gradient descent; MT: the multi-targeted attack; AA: AutoAttack, a column "
    "only when some model was evaluated with it); " + DASH +
    " where that attack was not run under the budget.",
    "Lip: the empirical local Lipschitz constant, mean over the evaluated points of "
    "max ‖f(x) − f(x′)‖₁ / ‖x − x′‖∞ over the ε-ball (gradient ascent; a lower bound on the true value). "
    "The official procedure's values are in the CSV (columns *_lipschitz_official).",
    "Gap clean / Gap adv: train minus test accuracy (clean / adversarial), in percentage points.",
]


def methods_table(training: Sequence[TrainingRecord], construct: Sequence[VerificationRecord] = (),
                  evaluate: Sequence[EvaluationRecord] = (), *, missing: Sequence[Missing] = (),
                  include_dropout: bool = False) -> Table:
    """Table 2: one row per method (runs without dropout unless ``include_dropout``), plus the
    constructed classifier: certified (``lipschitz_construct.verify``) and attacked
    (``analysis.evaluate --model constructed``)."""
    train_pairs = [(r, training_row(r)) for r in training]
    if not include_dropout:
        train_pairs = [(r, row) for r, row in train_pairs if not row["dropout"]]
    other_pairs = [(r, construct_row(r)) for r in construct] + [(r, evaluate_row(r)) for r in evaluate]
    pairs = labelled_in_order(train_pairs + other_pairs)
    rows = [row for _, row in pairs]
    disp = []
    aa = has_autoattack(rows)
    for row in rows:
        d = method_display_row(row, autoattack=aa)
        astute = row.get("certified_test_astuteness")
        d["Certified test astuteness"] = DASH if finite(astute) is None else \
            f"{fmt_pct(astute)} (ε={float(row['eps']):.3g})" if finite(row.get("eps")) is not None else fmt_pct(astute)
        d["Lipschitz bound (measured max)"] = _bound_cell(row)
        disp.append(d)
    data = pd.DataFrame(rows)
    notes = list(METHOD_NOTES)
    noise = noise_note(rows)
    if noise:
        notes.append(noise)
    if other_pairs:
        notes.append(
            "Constructed: the classifier of the paper's proof, f_i(x) = dist(x, X_i)/r with r half the "
            "train–train separation. Certified row: `lipschitz_construct.verify`; certified test astuteness = "
            "fraction of test points classified correctly with a certified radius ≥ ε (exact, not an attack). "
            "Attacked row: `analysis.evaluate --model constructed` (PGD and the Lipschitz estimate on the "
            "classifier fitted to the evaluated training subset). Lipschitz bound (measured max): certified "
            "row: the theorem's bound 1/r on each f_i, and in brackets the largest ratio |f_i(x) − f_i(x′)| / "
            "‖x − x′‖ found on random and adversarial pairs; attacked row: K/r, the bound for the ℓ1 norm "
            "over the K class scores that the Lip columns measure, and in brackets the largest per-point "
            "estimate.")
    budget = training_budget([p[0] for p in train_pairs], [p[1] for p in train_pairs]) + \
        other_budget([p[0] for p in pairs if p[1]["source"] != "training"],
                      [p[1] for p in pairs if p[1]["source"] != "training"])
    return Table(TABLE_KEYS["methods"],
                 "Table 2 – Accuracy, adversarial accuracy, local Lipschitz constant and generalization gaps "
                 "per training method", data, pd.DataFrame(disp), notes, budget, [p[0].label for p in pairs],
                 list(missing))


__all__ = ["METHOD_DISPLAY", "METHOD_NOTES", "has_autoattack", "labelled_in_order", "method_display_row", "methods_table",
           "uniquify_labels"]
