"""The "Why exact, why this toolkit" section of ``reports/README.md``: the paper's route
(scikit-learn's ``NearestNeighbors(algorithm="brute", p=inf)`` per class) against the toolkit's
default engine, from a benchmark record -- the time ratio and whether the distances are identical,
with the machine -- then, from the separation records, the cross-class duplicates and the
separation against 2 eps that the theorem needs. Every number comes from a record; without a
benchmark record the section says which command stores one."""
from __future__ import annotations

from typing import Sequence

import pandas as pd

from separation import SeparationRecord
from separation.core.records.benchmark import BenchmarkRecord

from .format import DASH, NORM_NAMES, dataset_name, fmt_int, fmt_num
from .page_benchmarks import ratio
from .rows import separation_rows
from .table_separation import select_separation
from .writers import to_markdown

TITLE = "Why exact, why this toolkit"
#: The section's anchor in ``reports/README.md`` (GitHub's and mkdocs' slug of :data:`TITLE`).
ANCHOR = "why-exact-why-this-toolkit"
#: The competitor that is the paper's code, and the toolkit's default engine, in benchmark records.
PAPER_ROUTE = "sklearn (paper)"
OURS = "ours: cpu"
BENCHMARK_COMMAND = "python benchmarks/separation_engines.py --data-root DATA_ROOT"


def _linf_section(section: str) -> bool:
    """Whether a benchmark section times the l-inf search (the paper's p = inf)."""
    return "ℓ∞" in section or "(linf" in section


def _pairs(rec: BenchmarkRecord) -> list[tuple[str, float | None, float | None, bool | None]]:
    """(workload, the paper's seconds, ours, whether the two gave the same distances) of each
    workload that both ran in one l-inf section of the record."""
    out = []
    for section in filter(_linf_section, rec.result.sections()):
        rows = [r for r in rec.result.rows if r.section == section]
        ref = rec.result.references.get(section)
        for group in dict.fromkeys(r.group for r in rows):
            paper = next((r for r in rows if r.group == group and r.competitor == PAPER_ROUTE), None)
            ours = next((r for r in rows if r.group == group and r.competitor == OURS), None)
            if paper is not None and ours is not None:
                same = ours.agrees if ref == PAPER_ROUTE else paper.agrees if ref == OURS else None
                out.append((group, paper.seconds, ours.seconds, same))
    return out


def pick_benchmark(records: Sequence[BenchmarkRecord]) -> BenchmarkRecord | None:
    """The newest benchmark record that timed the paper's route and the toolkit on the same data (l-inf)."""
    found = [r for r in records if _pairs(r)]
    return max(found, key=lambda r: (r.meta.created if r.meta else "", r.label)) if found else None


def _seconds(v: float | None) -> str:
    return DASH if v is None else f"{v:.3g} s" if v < 10 else f"{v:.1f} s"


def _yes(v: bool | None) -> str:
    return {True: "yes", False: "NO"}.get(v, "not compared")


def benchmark_part(records: Sequence[BenchmarkRecord]) -> list[str]:
    """The table of the paper's route against the toolkit, and where and when it ran."""
    rec = pick_benchmark(records)
    if rec is None:
        return [f"No benchmark record times the paper's route against the toolkit here: `{BENCHMARK_COMMAND}` "
                "stores one (below `results/benchmarks/`), and the next `python -m analysis.report all` shows it.\n"]
    frame = pd.DataFrame([{
        "Workload": group,
        "NearestNeighbors, brute, p=∞ (the paper's code)": _seconds(paper),
        "This toolkit (`cpu` engine)": _seconds(ours),
        "Times faster": DASH if (q := ratio(paper, ours)) is None else f"{q:.1f}×",
        "Same distances": _yes(same),
    } for group, paper, ours, same in _pairs(rec)])
    meta = rec.meta
    versions = meta.versions if meta else {}
    used = ", ".join(f"{k} {versions[k]}" for k in ("scikit-learn", "numpy") if versions.get(k))
    when = meta.created[:10] if meta and meta.created else "an unknown date"
    name = rec.config.name
    return [to_markdown(frame) + "\n",
            f"One run on the same arrays, on a {rec.result.device}" + (f" ({used})" if used else "")
            + f", {when}, record `{rec.label}`; every competitor, with the "
            f"command, on the [benchmark page](benchmarks/{name}.md). Same distances: whether the toolkit's "
            "distance of every point equals that of the paper's route (compared in the run).\n"]


def _duplicates(shown: Sequence[SeparationRecord]) -> str:
    by_data: dict[str, set[str]] = {}
    for rec in shown:
        for row in separation_rows(rec)[:1]:
            cell = (f"{fmt_int(row['train_cross_class_duplicates'])} / "
                    f"{fmt_int(row['test_cross_class_duplicates'])}")
            by_data.setdefault(dataset_name(row["dataset"]), set()).add(cell)
    return ", ".join(f"{ds} {' or '.join(sorted(cells))}" for ds, cells in by_data.items())


def _ratios(shown: Sequence[SeparationRecord]) -> str:
    parts = []
    for rec in shown:
        for row in separation_rows(rec):
            if row["train_min_over_2eps"] is not None:
                parts.append(f"{dataset_name(row['dataset'])} {NORM_NAMES.get(row['norm'], row['norm'])} "
                             f"{fmt_num(row['train_min_over_2eps'], 2)} at ε = {row['eps']:g}")
    return ", ".join(parts)


def separation_part(records: Sequence[SeparationRecord]) -> list[str]:
    """Duplicates and the separation against 2 eps, from the shown separation records."""
    shown, _ = select_separation(records)
    if not shown:
        return ["No separation record yet: `python -m separation.compute --dataset digits --norm linf` "
                "stores one, and the next rendering adds its duplicates and separation here.\n"]
    return [
        "- **Duplicates.** Identical images with different labels are at distance exactly 0; an exact search "
        "finds every one, and [Table 1](#table-1--separation) gives the minimum without them. Found in the "
        f"stored records (training pairs / test points): {_duplicates(shown)}.",
        "- **The theorem.** Where the train–train minimum is at least 2ε (÷ 2ε ≥ 1), Theorem 4.1 of the paper "
        "gives a classifier that is accurate and robust at ε; `lipschitz_construct.verify` builds it and "
        "certifies each claim (Table 2). Train–train minimum ÷ 2ε in the stored records: "
        f"{_ratios(shown) or DASH}.",
        "- **The paper's numbers.** Ours are in [Table 1](#table-1--separation), with the budget and machine "
        "of each row, to set beside the paper's Table 1 (the paper's values are not stored in a record, so "
        "they are not repeated here).\n",
    ]


def why_section(benchmarks: Sequence[BenchmarkRecord], separation: Sequence[SeparationRecord]) -> str:
    """The section's Markdown, heading included."""
    lines = [f"## {TITLE}\n",
             "The paper's code finds each point's nearest training point of another class with scikit-learn's "
             "`NearestNeighbors(algorithm=\"brute\", p=inf)`, one class at a time. Beside it, in one run on the "
             "same data, the toolkit's default engine:\n"]
    lines += benchmark_part(benchmarks)
    lines += separation_part(separation)
    return "\n".join(lines)


__all__ = ["ANCHOR", "BENCHMARK_COMMAND", "OURS", "PAPER_ROUTE", "TITLE", "benchmark_part", "pick_benchmark",
           "separation_part", "why_section"]
