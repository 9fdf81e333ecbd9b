"""What produced a table's rows, in words: hardware, dates, code, budgets, sampling noise."""
from __future__ import annotations

import math
from typing import Any, Iterable, Sequence

from separation.core.records import Record

from .format import (attack_names, dataset_name, dataset_rank, duration, finite, fmt_eps, fmt_int, fmt_sig,
                     summarize)


def hardware_text(records: Sequence[Record], devices: Iterable[Any] = ()) -> str:
    """``x86_64, 2 CPUs`` (+ ``(model; vector extensions)`` where the record has them, + GPU name,
    + the device the computation used) from the records' meta."""
    parts = []
    for r in records:
        hw = r.meta.hardware if r.meta else None
        s = f"{(hw.machine or hw.processor) if hw else '?'}, {(hw.cpus if hw else None) or '?'} CPUs"
        if hw and (hw.cpu_model or hw.vector_extensions):
            s += f" ({'; '.join(filter(None, [hw.cpu_model, ', '.join(hw.vector_extensions)]))})"
        if hw and hw.gpu:
            s += f", GPU {hw.gpu}"
        parts.append(s)
    text = summarize(parts, none="unknown hardware")
    devices = [d for d in devices if d]
    if devices:
        text += "; device " + summarize(devices)
    return text


def provenance_text(records: Sequence[Record]) -> str:
    """When and from which code the records were made."""
    created = sorted(r.meta.created for r in records if r.meta and r.meta.created)
    commits = [c[:7] + ("+dirty" if c.endswith("+dirty") else "")
               for c in (r.meta.git_commit for r in records if r.meta) if c]
    if not created:
        when = "unknown date"
    elif len(created) == 1 or created[0][:16] == created[-1][:16]:
        when = created[0][:16].replace("T", " ")
    else:
        when = f"{created[0][:16].replace('T', ' ')} to {created[-1][:16].replace('T', ' ')}"
    return f"records created {when}, code {summarize(commits, none='unknown commit')}"


def training_budget(records: Sequence[Record], rows: Sequence[dict]) -> list[str]:
    """One sentence per (dataset, grid): profile, epochs, points, evaluation, hardware, time."""
    groups: dict[tuple, list[tuple[Record, dict]]] = {}
    for rec, row in zip(records, rows):
        groups.setdefault((row["dataset"], row["setting"]), []).append((rec, row))
    out = []
    for (ds, setting) in sorted(groups, key=lambda k: (dataset_rank(k[0]), str(k[1]))):
        recs = [i[0] for i in groups[(ds, setting)]]
        rws = [i[1] for i in groups[(ds, setting)]]
        cfgs = [r.config for r in recs]
        points = summarize((rw.get("train_points") for rw in rws), lambda v: f"{fmt_int(v)}", none="all")
        opt = summarize(f"{c.optimizer} lr {c.lr}, batch {c.batch_size}" for c in cfgs)
        n_eval = summarize(f"{fmt_int(rw.get('n_train_eval'))} train / {fmt_int(rw.get('n_test_eval'))} test"
                           for rw in rws)
        counts: dict[str, int] = {}
        for rw in rws:
            a = attack_names(rw.get("attacks"))
            counts[a] = counts.get(a, 0) + 1
        attacks = next(iter(counts)) if len(counts) == 1 else \
            ", ".join(f"{a} in {n} run{'s' if n > 1 else ''}" for a, n in counts.items())
        lip = summarize("ascent + official" if rw.get("test_lipschitz_official") is not None else
                        "ascent" if rw.get("test_lipschitz") is not None else "none" for rw in rws)
        train_s = sum(v for v in (rw.get("train_seconds") for rw in rws) if v is not None)
        eval_s = sum(v for v in (rw.get("eval_seconds") for rw in rws) if v is not None)
        incomplete = [rw["run"] for rw in rws if rw.get("epochs_completed") is not None
                      and rw.get("epochs") is not None and rw["epochs_completed"] < rw["epochs"]]
        text = (f"{dataset_name(ds)}, grid `{setting}` ({len(recs)} runs): profile "
                f"{summarize(c.profile for c in cfgs)}, {summarize((c.epochs for c in cfgs), fmt_int)} epoch(s) "
                f"({opt}) on {points} training points"
                + (f" (fixed random subset, seed {summarize(c.subset_seed for c in cfgs)})"
                   if any(c.train_subset for c in cfgs) else "")
                + f"; architecture {summarize(c.arch for c in cfgs)}; evaluated on {n_eval} points, "
                f"ε = {summarize((rw.get('eps') for rw in rws), fmt_eps)} ({summarize(rw.get('norm') for rw in rws)}), "
                f"attacks: {attacks}, Lipschitz estimate: {lip}; "
                f"{hardware_text(recs, (rw.get('device') for rw in rws))}; "
                f"{duration(train_s)} training + {duration(eval_s)} evaluation in all; {provenance_text(recs)}.")
        if incomplete:
            text += f" Not all epochs completed: {', '.join(incomplete)}."
        out.append(text)
    return out


def claims_text(claims: dict[str, bool]) -> str:
    if not claims:
        return "claims of the theorem not recorded"
    failed = [k for k, v in claims.items() if not v]
    return ("all claims of the theorem held (" + ", ".join(claims) + ")") if not failed else \
        f"claims FAILED: {', '.join(failed)}"


def other_budget(records: Sequence[Record], rows: Sequence[dict]) -> list[str]:
    """One sentence per record that is not a training run (verifications, evaluations)."""
    out = []
    for rec, row in zip(records, rows):
        where = f"{duration(row.get('eval_seconds'))} on "
        if row["source"] == "construct":
            out.append(f"{dataset_name(row['dataset'])}, constructed classifier (`{rec.label}`): fitted on "
                       f"{fmt_int(row.get('train_points'))} training points, certified on "
                       f"{fmt_int(row.get('n_test_eval'))} test points, r = {fmt_sig(row.get('r'), 4)}, "
                       f"{claims_text(rec.result.claims)}; {where}{hardware_text([rec])}; {provenance_text([rec])}.")
        else:
            fit = row.get("train_points")
            out.append(f"{dataset_name(row['dataset'])}, {row['method_label']} (`{rec.label}`): "
                       + (f"fitted on {fmt_int(fit)} training points, " if fit else "")
                       + f"evaluated on {fmt_int(row.get('n_train_eval'))} train / {fmt_int(row.get('n_test_eval'))} "
                       f"test points, attacks: {attack_names(row.get('attacks'))}; {where}"
                       f"{hardware_text([rec], [row.get('device')])}; {provenance_text([rec])}.")
    return out


def noise_note(rows: Sequence[dict], *, delta: bool = False) -> str | None:
    """How large a difference sampling alone can make, for the smallest evaluation in ``rows``."""
    ns = [n for n in (finite(r.get("n_test_eval")) for r in rows if r.get("source") == "training") if n]
    ns += [n for n in (finite(r.get("n_train_eval")) for r in rows if r.get("source") == "training") if n]
    if not ns:
        return None
    n = min(ns)
    se = 50.0 / math.sqrt(n)  # percentage points: sqrt(p(1-p)/n) <= 0.5/sqrt(n)
    text = (f"Sampling noise: with {fmt_int(n)} evaluated points per split, an accuracy's standard error is up "
            f"to {se:.1f} pp and a gap's (a difference of two accuracies) up to {se * math.sqrt(2):.1f} pp")
    if delta:
        text += f", a Δ gap's up to {se * 2:.1f} pp"
    return text + "; smaller differences between rows are within that noise."


__all__ = ["claims_text", "hardware_text", "noise_note", "other_budget", "provenance_text", "training_budget"]
