"""Table 4: the optimal robust accuracy of each dataset at radii beyond the separation (exact where
solved), the LP bound no classifier can beat, and the certified witness -- from ``bounds`` records."""
from __future__ import annotations

from typing import Any, Sequence

import pandas as pd

from lipschitz_construct.records import BoundsRecord
from separation import SeparationRecord
from separation.core.threat import exact_eps

from .collect import Missing
from .format import DASH, NORM_NAMES, dataset_name, dataset_rank, duration, finite, fmt_eps, fmt_int, fmt_num, fmt_pct
from .provenance import hardware_text, provenance_text
from .writers import TABLE_KEYS, Table

SPLIT_NAMES = {"train": "train", "test": "test"}
#: The longest exact text of a radius shown as it is (``"94/255"``, ``"1.199355"``); longer ones
#: (the float reprs of records written before exact radii) are shown rounded.
EPS_TEXT_SHOWN = 9


def eps_shown(text: str | None, value: Any) -> str:
    """A radius as the table shows it: its exact text where short, else the float rounded."""
    return text if text and len(text) <= EPS_TEXT_SHOWN else fmt_eps(value)


def _variant(rec: BoundsRecord) -> tuple:
    """Preference among records of one dataset, norm and split: the full data, then more radii,
    then the newest."""
    return (0 if rec.config.data.subset else 1, rec.result.n_points, len(rec.result.points),
            rec.meta.created if rec.meta else "")


def select_bounds(records: Sequence[BoundsRecord]) -> tuple[list[BoundsRecord], list[BoundsRecord]]:
    """(shown, not shown): one record per dataset, norm and split."""
    groups: dict[tuple[str, str, str], list[BoundsRecord]] = {}
    for r in records:
        groups.setdefault((r.config.data.dataset, r.config.norm, r.config.split), []).append(r)
    shown, hidden = [], []
    for key in sorted(groups, key=lambda k: (dataset_rank(k[0]), k[1] != "linf", k[1], k[2] != "train", k[2])):
        rs = sorted(groups[key], key=_variant, reverse=True)
        shown.append(rs[0])
        hidden.extend(rs[1:])
    return shown, hidden


def _acc(err: Any) -> float | None:
    e = finite(err)
    return None if e is None else 1.0 - e


def bounds_rows(rec: BoundsRecord) -> list[dict[str, Any]]:
    """One row per radius: accuracies are fractions (``1 - error``), None where not known."""
    res, c = rec.result, rec.config
    rows = []
    for p in res.points:
        rows.append({
            "dataset": c.data.dataset, "norm": c.norm, "split": c.split, "subset": c.data.subset,
            "n_points": res.n_points, "eps": p.eps, "eps_text": p.eps_text or None, "n_conflicts": p.n_conflicts,
            "n_conflicted_points": p.n_conflicted_points, "n_components": p.n_components,
            "largest_component": p.largest_component, "n_milp_components": p.n_milp_components,
            "optimal_accuracy": _acc(p.optimal_error) if p.solved else None,
            "lp_bound_accuracy": _acc(p.lower_error), "clique_bound_accuracy": _acc(p.clique_lower_error),
            "randomized_accuracy": _acc(p.randomized_optimal_error),
            "randomized_asked": p.randomized_optimal_error is not None,
            "witness_accuracy": _acc(p.upper_error), "solved": p.solved, "separation": res.separation,
            "threshold_eps": res.threshold_eps, "seconds": p.seconds.get("total"), "record": rec.label,
        })
    return rows


def separation_min(rec: BoundsRecord, separation: Sequence[SeparationRecord]) -> float | None:
    """The minimum separation of the same points and norm from a separation record (train--train
    for ``split=train``, test--test for ``split=test``), if one is stored."""
    d = rec.config.data
    for s in separation:
        if s.config.norm != rec.config.norm or s.config.data.dataset != d.dataset or s.config.data.subset != d.subset \
                or s.config.data.seed != d.seed:
            continue
        if rec.config.split == "train" and s.config.data.train_fingerprint == d.train_fingerprint:
            return s.result.train.min
        if rec.config.split == "test" and s.config.data.fingerprint == d.fingerprint and s.result.test_test:
            return s.result.test_test.min
    return None


def _threshold_note(rec: BoundsRecord, separation: Sequence[SeparationRecord]) -> str:
    c, res = rec.config, rec.result
    what = f"{dataset_name(c.data.dataset)} {NORM_NAMES.get(c.norm, c.norm)} {c.split}"
    if res.threshold_eps is None:
        return (f"{what}: no conflict up to the largest ε (the separation exceeds "
                f"{fmt_num(2 * float(max(exact_eps(e) for e in c.eps)))})")
    first = res.threshold_eps_text or f"{res.threshold_eps:.6g}"
    text = f"{what}: below 100% from ε = {first} (half the separation {res.separation:.6g})"
    ref = separation_min(rec, separation)
    if ref is not None:
        text += ("; Table 1's minimum ÷ 2 is the same number" if ref / 2 == res.threshold_eps
                 else f"; DIFFERS from Table 1's minimum ÷ 2 = {ref / 2:.6g}")
    return text


def bounds_table(records: Sequence[BoundsRecord], *, separation: Sequence[SeparationRecord] = (),
                 missing: Sequence[Missing] = ()) -> Table:
    """Table 4: per dataset, norm, split and radius, the robust accuracies."""
    shown, hidden = select_bounds(records)
    rows = [row for rec in shown for row in bounds_rows(rec)]
    data = pd.DataFrame(rows, columns=list(rows[0]) if rows else ["dataset", "norm", "split", "eps"])
    cliques = any(r["clique_bound_accuracy"] is not None for r in rows)
    randomized = any(r["randomized_asked"] for r in rows)
    disp = []
    for r in rows:
        row = {
            "Dataset": dataset_name(r["dataset"]), "Norm": NORM_NAMES.get(r["norm"], str(r["norm"])),
            "Split": SPLIT_NAMES.get(r["split"], r["split"]) + (" (subset)" if r["subset"] else ""),
            "Points": fmt_int(r["n_points"]), "ε": eps_shown(r["eps_text"], r["eps"]),
            "Conflicts": fmt_int(r["n_conflicts"]),
            "Points in a conflict": fmt_int(r["n_conflicted_points"]),
            "Optimal robust acc. (%)": fmt_pct(r["optimal_accuracy"], 3),
        }
        if randomized:
            row["Randomized optimum (%)"] = fmt_pct(r["randomized_accuracy"], 3)
        row["LP bound (%)"] = fmt_pct(r["lp_bound_accuracy"], 3)
        if cliques:
            row["Clique-cover LP bound (%)"] = fmt_pct(r["clique_bound_accuracy"], 3)
        row["Witness (%)"] = fmt_pct(r["witness_accuracy"], 3)
        row["Exact"] = "yes" if r["solved"] else "no"
        disp.append(row)
    notes = [
        "Two points of different classes at distance ≤ 2ε conflict: their ε-balls meet, so no classifier is "
        "robustly correct on both. Optimal robust acc.: the best robust accuracy of any deterministic classifier "
        "on these points, exactly (a maximum independent set of the conflict graph; "
        f"{DASH} where the time limit per radius ran out before the optimum was proven).",
        "LP bound: no classifier, randomized ones included, is more robustly accurate (the pairwise packing LP, "
        "solved exactly as a matching on the bipartite double cover)."
        + (" Clique-cover LP bound: the same with a constraint per clique of a greedy clique cover (ℓ∞ balls "
           "are boxes, and pairwise meeting boxes share a point); looser than the randomized optimum." if cliques
           else ""),
        *(["Randomized optimum: the best robust accuracy of any randomized classifier (the adversary does not "
           "see its coin), exactly: the LP with a constraint for every set of points of different classes whose "
           "ε-balls share a point, solved by constraint generation and proven by an exact certificate "
           f"({DASH} where not proven within the time limit)."] if randomized else []),
        "Witness: the robust accuracy of the nearest-class classifier fitted on the kept points "
        "(`LocallyLipschitzClassifier`, certified at radius ≥ ε on each of them); equal to the optimum where exact.",
        "Distances in [0, 1] pixel units; train: the training set (train–train conflicts), test: the test set "
        "(test–test conflicts).",
    ]
    if shown:
        notes.append("Where the optimum first drops below 100%: "
                     + "; ".join(_threshold_note(rec, separation) for rec in shown) + ".")
    if hidden:
        notes.append("Also stored, not shown: " + ", ".join(f"`{h.label}`" for h in hidden) + ".")
    budget = []
    for rec in shown:
        c, t = rec.config, rec.timing
        subset = c.data.subset
        budget.append(
            f"{dataset_name(c.data.dataset)} {NORM_NAMES.get(c.norm, c.norm)} {c.split}: "
            + (f"fixed random subset of {fmt_int(subset)} points (seed {c.data.seed})" if subset else "full split")
            + f" ({fmt_int(rec.result.n_points)} points), {len(rec.result.points)} radii, search "
            f"{rec.result.engine}, time limit {c.time_limit:g} s per radius; conflict search "
            f"{duration(t.get('conflicts'))}, solving {duration(t.get('solve'))}, in all {duration(t.get('total'))} "
            f"on {hardware_text([rec])}; {provenance_text([rec])}.")
    return Table(TABLE_KEYS["bounds"], "Table 4 – Optimal robust accuracy beyond the separation, with bounds and "
                 "a certified witness", data, pd.DataFrame(disp), notes, budget, [r.label for r in shown],
                 list(missing))


__all__ = ["EPS_TEXT_SHOWN", "SPLIT_NAMES", "bounds_rows", "bounds_table", "eps_shown", "select_bounds",
           "separation_min"]
