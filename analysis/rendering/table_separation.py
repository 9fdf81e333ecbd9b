"""Table 1: the train--train and test--train separation of each dataset against 2 eps."""
from __future__ import annotations

from typing import Any, Sequence

import pandas as pd

from separation import SeparationRecord

from .collect import Missing
from .format import DASH, NORM_NAMES, dataset_name, dataset_rank, duration, fmt_eps, fmt_int, fmt_num
from .provenance import hardware_text, provenance_text
from .rows import separation_rows
from .writers import TABLE_KEYS, Table


def _data_key(rec: SeparationRecord) -> tuple:
    """What a row of Table 1 stands for: the data (by content: a subset, another .npz file, permuted
    labels are other data) and the norm."""
    d = rec.config.data
    return d.dataset, rec.config.norm, d.fingerprint, d.labels


def _order(key: tuple, recs: Sequence[SeparationRecord]) -> tuple:
    dataset, norm, _, labels = key
    d = recs[0].config.data
    return dataset_rank(dataset), norm != "linf", norm, labels != "given", labels, bool(d.subset), -d.n_train, key[2]


def select_separation(records: Sequence[SeparationRecord]) -> tuple[list[SeparationRecord], list[SeparationRecord]]:
    """(shown, not shown): one record per data and norm (a subset, another .npz file or permuted
    labels are other data, each with a row of its own); of several records of the same data and
    norm, the newest is shown."""
    groups: dict[tuple, list[SeparationRecord]] = {}
    for r in records:
        groups.setdefault(_data_key(r), []).append(r)
    shown, hidden = [], []
    for key in sorted(groups, key=lambda k: _order(k, groups[k])):
        rs = sorted(groups[key], key=lambda r: (r.meta.created if r.meta else "", r.label), reverse=True)
        shown.append(rs[0])
        hidden.extend(rs[1:])
    return shown, hidden


def data_label(dataset: str, fingerprint: str, labels: str, others: Sequence[tuple]) -> str:
    """The dataset's name; with the start of its fingerprint when other data of that name are shown
    (two own .npz files), and the labels when they were changed (the random-label control)."""
    name = dataset_name(dataset)
    if any(o[0] == dataset and o[2] != fingerprint and o[3] == labels for o in others):
        name += f" ({fingerprint[:8]})"
    if labels != "given":
        name += f", {labels} labels"
    return name


def _points(n_train: Any, n_test: Any, subset: Any) -> str:
    s = f"{fmt_int(n_train)} / {fmt_int(n_test)}"
    return s + (" (subset)" if subset else "")


def separation_table(records: Sequence[SeparationRecord], *, missing: Sequence[Missing] = ()) -> Table:
    """Table 1: per dataset and norm, the minimum train--train and test--train separation, its
    ratio to 2 eps, the means, and the minimum with duplicate pairs left out (when any exist)."""
    shown, hidden = select_separation(records)
    keys = [_data_key(r) for r in shown]
    rows = [{**row, "data": data_label(*key[:1], key[2], key[3], keys)} for rec, key in zip(shown, keys)
            for row in separation_rows(rec)]
    data = pd.DataFrame(rows, columns=list(rows[0]) if rows else ["dataset", "norm"])
    disp = []
    for r in rows:
        dup_counts = (r["train_cross_class_duplicates"], r["test_cross_class_duplicates"])
        any_dups = any(c for c in dup_counts) or any(
            r[f"{s}_min_excl_duplicates"] is not None for s in ("train", "test"))
        disp.append({
            "Dataset": r["data"],
            "Norm": NORM_NAMES.get(r["norm"], str(r["norm"])),
            "Points (train / test)": _points(r["n_train"], r["n_test"], r["subset"]),
            "ε": fmt_eps(r["eps"]),
            "Train–train min": fmt_num(r["train_min"]),
            "Train–train ÷ 2ε": fmt_num(r["train_min_over_2eps"], 2),
            "Test–train min": fmt_num(r["test_min"]),
            "Test–train ÷ 2ε": fmt_num(r["test_min_over_2eps"], 2),
            "Train–train mean": fmt_num(r["train_mean"]),
            "Test–train mean": fmt_num(r["test_mean"]),
            "Cross-class duplicates (train pairs / test points)":
                f"{fmt_int(dup_counts[0]) if dup_counts[0] is not None else DASH} / "
                f"{fmt_int(dup_counts[1]) if dup_counts[1] is not None else DASH}",
            "Min. excl. duplicates (train–train / test–train)":
                f"{fmt_num(r['train_min_excl_duplicates'])} / {fmt_num(r['test_min_excl_duplicates'])}"
                if any_dups else DASH,
        })
    display = pd.DataFrame(disp)
    notes = [
        "Separation: the distance from each point to the nearest training point of another class, "
        "in [0, 1] pixel units; train–train over the training set, test–train from each test point "
        "to the training set (exact, no approximation).",
        "÷ 2ε: the minimum separation divided by 2ε. A value ≥ 1 means the data is 2ε-separated, so a "
        "classifier that is both accurate and robust at radius ε exists (Theorem 4.1 of the paper).",
        "ε is the paper's ℓ∞ attack radius for the dataset; the ℓ2 rows divide the ℓ2 separation by "
        "the same number (the paper reports ℓ∞ only).",
        "Cross-class duplicates: identical images with different labels (training pairs; test points "
        "with an identical training image of another class). Min. excl. duplicates: the minimum with "
        f"those points left out; {DASH} when there are none (the minimum is then the plain one).",
    ]
    in_train: dict[str, Any] = {}
    for r in rows:
        if r.get("test_in_train"):
            in_train.setdefault(r["dataset"], r["test_in_train"])
    if in_train:
        notes.append("Test images identical to some training image (any label; CSV column test_in_train): "
                     + ", ".join(f"{dataset_name(d)} {fmt_int(n)}" for d, n in in_train.items()) + ".")
    if hidden:
        notes.append("Also stored, not shown (a full-dataset record of the same dataset and norm is "
                     "preferred): " + ", ".join(f"`{h.label}`" for h in hidden) + ".")
    budget = []
    for rec in shown:
        r0 = separation_rows(rec)[0]
        subset = rec.config.data.subset
        budget.append(
            f"{dataset_name(r0['dataset'])} {NORM_NAMES.get(r0['norm'], r0['norm'])}: "
            + (f"fixed random subset of {fmt_int(subset)} points per split (seed {rec.config.data.seed})"
               if subset else "full dataset")
            + f" ({fmt_int(r0['n_train'])} train / {fmt_int(r0['n_test'])} test), engine "
            f"{rec.result.engine or 'n/a'}, {duration(r0['seconds'])} on "
            f"{hardware_text([rec])}; {provenance_text([rec])}.")
    return Table(TABLE_KEYS["separation"],
                 "Table 1 – Separation of the training and test sets against 2ε", data, display, notes,
                 budget, [r.label for r in shown], list(missing))


__all__ = ["select_separation", "separation_table"]
