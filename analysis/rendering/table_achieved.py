"""Table 5: achieved against achievable -- a model's robust accuracy on the evaluated test points
at each radius, beside the data's optimal robust accuracy on the same points (exact, randomized,
the LP bound, the certified witness) and the avoidable errors, from ``evaluate`` records that hold
a robust-accuracy curve (``python -m analysis.evaluate --eps E1 E2 ... --bounds``)."""
from __future__ import annotations

from typing import Any, Sequence

import pandas as pd

from ..records import EvaluationRecord
from .collect import Missing
from .format import DASH, NORM_NAMES, attack_names, dataset_name, dataset_rank, duration, finite, fmt_eps, fmt_int, \
    fmt_pct
from .provenance import hardware_text, provenance_text
from .writers import TABLE_KEYS, Table


def curve_records(records: Sequence[EvaluationRecord]) -> list[EvaluationRecord]:
    """The evaluations with a robust-accuracy curve, in the tables' order (dataset, norm, model)."""
    recs = [r for r in records if r.result.curve]
    return sorted(recs, key=lambda r: (dataset_rank(r.result.dataset), r.result.norm != "linf", r.result.norm,
                                       r.result.model.name, r.label))


def model_label(rec: EvaluationRecord) -> str:
    """The model as the table and figure name it: ``at_mnist_cpu (cnn001)``."""
    m = rec.result.model
    return m.name + (f" ({m.arch})" if m.arch and m.arch != m.name else "")


def row_labels(records: Sequence[EvaluationRecord]) -> dict[str, str]:
    """The model name each record's rows show (by record label); records of one dataset, norm and
    model name are told apart by their folder's name."""
    groups: dict[tuple, list[EvaluationRecord]] = {}
    for r in records:
        groups.setdefault((r.result.dataset, r.result.norm, r.result.model.name), []).append(r)
    return {r.label: r.result.model.name + (f" [{r.folder.name}]" if len(g) > 1 and r.folder else "")
            for g in groups.values() for r in g}


def achieved_rows(rec: EvaluationRecord) -> list[dict[str, Any]]:
    """One row per radius of a record's curve; accuracies are fractions, None where not known."""
    res, c = rec.result, rec.config
    ach = res.achievable
    n = res.test.n if res.test is not None else None
    rows = []
    for p in res.curve:
        rows.append({
            "dataset": res.dataset, "norm": res.norm, "model": res.model.name, "arch": res.model.arch,
            "subset": c.data.subset, "seed": c.data.seed, "n_points": n, "eps": p.eps,
            "model_robust_accuracy": p.adv_acc, "n_model_robust": p.n_robust,
            "optimal_accuracy": p.optimal_acc, "randomized_optimal_accuracy": p.randomized_optimal_acc,
            "lp_bound_accuracy": p.lp_bound_acc, "witness_accuracy": p.witness_acc,
            "n_witness_kept": p.n_kept, "avoidable_errors": p.avoidable_errors,
            "beyond_witness": p.beyond_witness, "solved": p.solved, "n_conflicts": p.n_conflicts,
            "bounds_source": None if ach is None else ach.source, "bounds_record": None if ach is None else ach.record,
            "threshold_eps": None if ach is None else ach.threshold_eps, "attacks": ",".join(res.attacks),
            "record": rec.label,
        })
    return rows


def _avoidable_cell(r: dict) -> str:
    k, n = r["avoidable_errors"], r["n_points"]
    if k is None:
        return DASH
    return f"{fmt_int(k)} ({100 * k / n:.1f}%)" if n else fmt_int(k)


NOTES = [
    "All numbers are on the same evaluated test points. Model: the model's robust accuracy, a point counted when "
    "it is classified correctly clean and under every attack at radius ε (an upper estimate of the true robust "
    "accuracy: attacks may miss).",
    "Optimal: the best robust accuracy any deterministic classifier reaches on these points, exactly (a maximum "
    f"independent set of the conflict graph: points of different classes at most 2ε apart conflict; {DASH} where "
    "the time limit ran out). Randomized: the exact optimum of randomized classifiers, where computed. LP bound: "
    "no classifier, randomized ones included, does better. Witness: the certified nearest-class classifier fitted "
    "on the kept points, robustly correct on each of them by proof.",
    "Avoidable errors: points the witness keeps robustly correct at ε on which the model is not (in brackets: "
    "as a share of the points). Each is an error some classifier avoids while keeping every other kept point.",
]


def achieved_table(records: Sequence[EvaluationRecord], *, missing: Sequence[Missing] = ()) -> Table:
    """Table 5: per evaluation with a curve and per radius, achieved against achievable."""
    shown = curve_records(records)
    rows = [row for rec in shown for row in achieved_rows(rec)]
    labels = row_labels(shown)
    data = pd.DataFrame(rows, columns=list(rows[0]) if rows else ["dataset", "norm", "model", "eps"])
    randomized = any(r["randomized_optimal_accuracy"] is not None for r in rows)
    disp = []
    for r in rows:
        row = {"Dataset": dataset_name(r["dataset"]), "Norm": NORM_NAMES.get(r["norm"], str(r["norm"])),
               "Model": labels[r["record"]], "Points": fmt_int(r["n_points"]), "ε": fmt_eps(r["eps"]),
               "Model robust acc. (%)": fmt_pct(r["model_robust_accuracy"]),
               "Optimal (%)": fmt_pct(r["optimal_accuracy"])}
        if randomized:
            row["Randomized optimal (%)"] = fmt_pct(r["randomized_optimal_accuracy"])
        row.update({"LP bound (%)": fmt_pct(r["lp_bound_accuracy"]), "Witness (%)": fmt_pct(r["witness_accuracy"]),
                    "Avoidable errors": _avoidable_cell(r)})
        disp.append(row)
    notes = list(NOTES)
    firsts = [(rec, rec.result.achievable) for rec in shown if rec.result.achievable is not None]
    if firsts:
        notes.append("Where the optimum first drops below 100% (half the test–test separation of these points): "
                     + "; ".join(f"{rec.result.model.name} on {dataset_name(rec.result.dataset)}: "
                                 + (f"ε = {a.threshold_eps:.6g}" if finite(a.threshold_eps) is not None
                                    else "above every ε") for rec, a in firsts) + ".")
    budget = []
    for rec in shown:
        c, res, ach = rec.config, rec.result, rec.result.achievable
        where = ("none (no bounds record of these points; --bounds computes them)" if ach is None else
                 f"computed on the evaluated points (time limit {fmt_eps(c.achievable.time_limit)} s per radius, "
                 f"{duration(ach.seconds)})" if ach.source == "computed" else f"the bounds record `{ach.record}`")
        points = (f"fixed random subset of {fmt_int(c.data.subset)} test points (seed {c.data.seed})"
                  if c.data.subset else "the whole test split")
        budget.append(f"{dataset_name(res.dataset)} {NORM_NAMES.get(res.norm, res.norm)}, {model_label(rec)} "
                      f"(`{rec.label}`): {points}, {len(res.curve)} radii, attacks: {attack_names(res.attacks)}; "
                      f"the data's optimum: {where}; {duration(rec.timing.get('total'))} in all on "
                      f"{hardware_text([rec], [c.device])}; {provenance_text([rec])}.")
    return Table(TABLE_KEYS["achieved"], "Table 5 – Achieved vs achievable: a model's robust accuracy beside the "
                 "data's optimum on the same points", data, pd.DataFrame(disp), notes, budget,
                 [r.label for r in shown], list(missing))


__all__ = ["NOTES", "achieved_rows", "achieved_table", "curve_records", "model_label", "row_labels"]
