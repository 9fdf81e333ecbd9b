"""The paper's tables as pandas frames, built from stored records only.

Each builder returns a :class:`Table`: ``data`` holds the numbers at full precision (written as
CSV, one column per quantity, fractions in [0, 1]); ``display`` holds the formatted cells
(written as Markdown and LaTeX: accuracies and gaps in percent, distances with three decimals).
``notes`` explain the symbols and ``budget`` states, per group of rows, what produced them
(profile, epochs, subset sizes, hardware).

- :func:`separation_table` -- Table 1: train--train and test--train separation against 2 eps;
- :func:`methods_table` -- Table 2: accuracy, adversarial accuracy, local Lipschitz and gaps per
  method, plus the constructed classifier of ``lipschitz_construct``;
- :func:`dropout_table` -- Table 3: each method with and without dropout, with the gap change.
"""
from __future__ import annotations

import dataclasses
import io
import json
import logging
import math
import os
import re
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import pandas as pd

from .records import Missing, StoredRecord, as_float, dig, finite, write_artefact

log = logging.getLogger(__name__)

DATASET_ORDER = ("mnist", "fashion-mnist", "cifar10", "svhn", "restricted-imagenet", "cifar100",
                 "digits", "npz")
DATASET_NAMES = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST", "cifar10": "CIFAR-10",
                 "cifar100": "CIFAR-100", "svhn": "SVHN", "restricted-imagenet": "Restricted ImageNet",
                 "digits": "digits (8×8)", "npz": "npz"}
#: The paper's l-inf attack radius per dataset (as separation.datasets.DEFAULT_EPS).
PAPER_EPS = {"mnist": 0.1, "fashion-mnist": 0.1, "cifar10": 0.031, "cifar100": 0.031, "svhn": 0.031,
             "restricted-imagenet": 0.005, "digits": 0.1}
NORM_NAMES = {"linf": "ℓ∞", "l2": "ℓ2"}
METHOD_ORDER = ("natural", "gr", "llr", "at", "rst", "trades")
METHOD_NAMES = {"natural": "Natural", "gr": "GR", "llr": "LLR", "at": "AT", "rst": "RST",
                "trades": "TRADES"}
#: The parameter that names a method's variant in the tables (as in the run names).
METHOD_MAIN_PARAM = {"rst": ("lambda", "λ"), "trades": ("beta", "β")}
DASH = "—"

TABLE_KEYS = {"separation": "table1_separation", "methods": "table2_methods",
              "dropout": "table3_dropout"}


@dataclasses.dataclass
class Table:
    """A rendered table: numbers (``data``), formatted cells (``display``), notes, budget."""

    key: str
    title: str
    data: pd.DataFrame
    display: pd.DataFrame
    notes: list[str] = dataclasses.field(default_factory=list)
    budget: list[str] = dataclasses.field(default_factory=list)
    sources: list[str] = dataclasses.field(default_factory=list)
    missing: list[Missing] = dataclasses.field(default_factory=list)

    @property
    def empty(self) -> bool:
        return self.display.empty

    def cell(self, row: int, column: str) -> str:
        """The formatted cell (as in the Markdown) at ``row`` (0-based) and ``column``."""
        return str(self.display.iloc[row][column])


# -- number formatting --------------------------------------------------------------------------

def fmt_pct(v: Any, digits: int = 1) -> str:
    v = finite(v)
    return DASH if v is None else f"{100 * v:.{digits}f}"


def fmt_pp(v: Any, digits: int = 1, signed: bool = False) -> str:
    """A difference of fractions in percentage points (``+1.2`` with ``signed``)."""
    v = finite(v)
    if v is None:
        return DASH
    if round(100 * v, digits) == 0:
        v = 0.0  # no "+0.0" / "−0.0"
        return f"{0:.{digits}f}"
    s = f"{100 * v:+.{digits}f}" if signed else f"{100 * v:.{digits}f}"
    return s.replace("-", "−")


def fmt_num(v: Any, digits: int = 3) -> str:
    """Fixed decimals; ``∞`` for infinity."""
    f = as_float(v)
    if f is None or math.isnan(f):
        return DASH
    if math.isinf(f):
        return "∞" if f > 0 else "−∞"
    return f"{f:.{digits}f}"


def fmt_sig(v: Any, digits: int = 3) -> str:
    """Significant digits (Lipschitz constants span decades)."""
    f = as_float(v)
    if f is None or math.isnan(f):
        return DASH
    if math.isinf(f):
        return "∞"
    if f != 0 and (abs(f) >= 10 ** digits):
        return f"{f:,.0f}"
    return f"{f:#.{digits}g}".rstrip(".")


def fmt_int(v: Any) -> str:
    f = finite(v)
    return DASH if f is None else f"{int(round(f)):,}"


def fmt_eps(v: Any) -> str:
    f = finite(v)
    return DASH if f is None else f"{f:g}"


def dataset_name(ds: Any) -> str:
    return DATASET_NAMES.get(str(ds), str(ds))


def _dataset_rank(ds: Any) -> tuple[int, str]:
    ds = str(ds)
    return (DATASET_ORDER.index(ds) if ds in DATASET_ORDER else len(DATASET_ORDER), ds)


def _summarize(values: Iterable[Any], fmt: Callable[[Any], str] = str, *, none: str = "n/a") -> str:
    """One value, or the distinct values joined (kept in first-seen order)."""
    seen: list[str] = []
    for v in values:
        s = none if v is None else fmt(v)
        if s not in seen:
            seen.append(s)
    return seen[0] if len(seen) == 1 else ", ".join(seen) if seen else none


ATTACK_NAMES = {"pgd": "PGD", "multitargeted": "multi-targeted", "autoattack": "AutoAttack"}


def attack_names(attacks: Any) -> str:
    """``"pgd,multitargeted"`` -> ``"PGD + multi-targeted"`` (``"none"`` when empty)."""
    names = [a for a in (attacks.split(",") if isinstance(attacks, str) else attacks or []) if a]
    return " + ".join(ATTACK_NAMES.get(str(a), str(a)) for a in names) or "none"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def hardware_text(records: Sequence[StoredRecord], devices: Iterable[Any] = ()) -> str:
    """``x86_64, 2 CPUs`` (+ GPU name, + the device the computation used) from the records' meta."""
    parts = []
    for r in records:
        hw = r.meta.get("hardware") or {}
        s = f"{hw.get('machine') or hw.get('processor') or '?'}, {hw.get('cpus') or '?'} CPUs"
        if hw.get("gpu"):
            s += f", GPU {hw['gpu']}"
        parts.append(s)
    text = _summarize(parts, none="unknown hardware")
    devices = [d for d in devices if d]
    if devices:
        text += "; device " + _summarize(devices)
    return text


def provenance_text(records: Sequence[StoredRecord]) -> str:
    """When and from which code the records were made."""
    created = sorted(str(r.meta.get("created")) for r in records if r.meta.get("created"))
    commits = [str(c)[:7] + ("+dirty" if str(c).endswith("+dirty") else "")
               for c in (r.meta.get("git_commit") for r in records) if c]
    when = (created[0][:16].replace("T", " ") if len(created) == 1 or created[0][:16] == created[-1][:16]
            else f"{created[0][:16].replace('T', ' ')} to {created[-1][:16].replace('T', ' ')}") \
        if created else "unknown date"
    return f"records created {when}, code {_summarize(commits, none='unknown commit')}"


# -- writers ------------------------------------------------------------------------------------

def _md_escape(s: str) -> str:
    return str(s).replace("|", "\\|").replace("\n", " ")


_NUMERIC_CELL = re.compile(r"^[−+-]?[\d,.]+( \(.*\))?%?$|^" + DASH + "$|^∞$")


def alignments(df: pd.DataFrame) -> list[str]:
    """"right" for columns whose cells all look numeric (and not all dashes), else "left"."""
    out = []
    for col in range(df.shape[1]):
        vals = [str(v) for v in df.iloc[:, col]]
        out.append("right" if vals and all(_NUMERIC_CELL.match(v) for v in vals) and
                   any(v != DASH for v in vals) else "left")
    return out


def to_markdown(df: pd.DataFrame) -> str:
    """A GitHub pipe table (numeric-looking columns right-aligned); no extra dependency,
    byte-identical on every machine."""
    cols = [_md_escape(c) for c in df.columns]
    rows = [[_md_escape(v) for v in r] for r in df.astype(str).itertuples(index=False, name=None)]
    align = alignments(df)
    widths = [max([len(c)] + [len(r[j]) for r in rows] + [3]) for j, c in enumerate(cols)]

    def line(cells):
        return "| " + " | ".join(c.rjust(w) if a == "right" else c.ljust(w)
                                 for c, w, a in zip(cells, widths, align)) + " |"

    sep = "| " + " | ".join(("-" * (w - 1) + ":") if a == "right" else "-" * w
                            for w, a in zip(widths, align)) + " |"
    return "\n".join([line(cols), sep] + [line(r) for r in rows])


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                  "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}
_LATEX_UNICODE = {"ℓ∞": r"$\ell_\infty$", "ℓ2": r"$\ell_2$", "ε": r"$\varepsilon$", "β": r"$\beta$",
                  "λ": r"$\lambda$", "Δ": r"$\Delta$", "∞": r"$\infty$", "−": "$-$", "÷": r"$/$",
                  "×": r"$\times$", "≥": r"$\geq$", "≤": r"$\leq$", "—": "---", "–": "--", "·": r"$\cdot$",
                  "∈": r"$\in$"}


def latex_text(s: Any) -> str:
    """Escape LaTeX specials, then spell the Unicode symbols the tables use as LaTeX."""
    out = "".join(_LATEX_SPECIAL.get(ch, ch) for ch in str(s))
    for u, tex in _LATEX_UNICODE.items():
        out = out.replace(u, tex)
    return out


def to_latex(table: Table) -> str:
    """A booktabs ``table`` environment (pandas :meth:`DataFrame.to_latex`), caption = title."""
    df = table.display.map(latex_text)
    df.columns = [latex_text(c) for c in table.display.columns]
    fmt = "".join("r" if a == "right" else "l" for a in alignments(table.display))
    body = df.to_latex(index=False, escape=False, column_format=fmt)
    caption = re.sub(r"^Table \d+ – ", "", table.title)
    return ("% Generated by python -m analysis.report from stored records; needs \\usepackage{booktabs}\n"
            "% and \\usepackage{graphicx}.\n"
            "\\begin{table}[t]\n\\centering\n\\small\n"
            f"\\caption{{{latex_text(caption)}}}\n\\label{{tab:{table.key}}}\n"
            f"\\resizebox{{\\linewidth}}{{!}}{{%\n{body.rstrip()}\n}}\n\\end{{table}}\n")


def to_csv(table: Table) -> str:
    buf = io.StringIO()
    table.data.to_csv(buf, index=False, lineterminator="\n", float_format="%.10g")
    return buf.getvalue()


def markdown_block(table: Table, *, heading: str | None = "###", with_budget: bool = True) -> str:
    """Title, table, notes and budget as Markdown."""
    parts = []
    if heading:
        parts.append(f"{heading} {table.title}\n")
    if table.empty:
        parts.append("_No records yet._\n")
    else:
        parts.append(to_markdown(table.display) + "\n")
    if table.notes:
        parts.append("\n".join(f"- {n}" for n in table.notes) + "\n")
    if with_budget and table.budget:
        parts.append("**Budget.** " + " ".join(table.budget) if len(table.budget) == 1 else
                     "**Budget.**\n\n" + "\n".join(f"- {b}" for b in table.budget))
        parts[-1] += "\n"
    if table.missing:
        parts.append("**Missing records** (the rows they would add):\n\n" +
                     "\n".join(f"- {m.what}: `{m.command}`" for m in table.missing) + "\n")
    return "\n".join(parts)


def write_table(table: Table, out_dir: str | os.PathLike) -> list[Path]:
    """``<out_dir>/<key>.md``, ``.csv`` and ``.tex``, written atomically."""
    out_dir = Path(out_dir)
    md = ("<!-- Generated by `python -m analysis.report` from stored records; do not edit. -->\n\n"
          + markdown_block(table, heading="#"))
    if table.sources:
        md += "\nRecords: " + ", ".join(f"`{s}`" for s in table.sources) + "\n"
    paths = [write_artefact(out_dir / f"{table.key}.md", md),
             write_artefact(out_dir / f"{table.key}.csv", to_csv(table)),
             write_artefact(out_dir / f"{table.key}.tex", to_latex(table))]
    log.info("wrote %s (%d rows) as .md, .csv, .tex", out_dir / table.key, len(table.display))
    return paths


# -- Table 1: separation ------------------------------------------------------------------------

def _sep_variant(rec: StoredRecord) -> tuple[int, int]:
    """Preference among records of one dataset and norm: the full dataset, else the largest subset."""
    subset = rec.config.get("subset")
    n = as_float(rec.config.get("n_train")) or as_float(dig(rec.result, "train", "n")) or 0
    return (1 if subset in (None, 0) else 0, int(n))


def select_separation(records: Sequence[StoredRecord]) -> tuple[list[StoredRecord], list[StoredRecord]]:
    """(shown, not shown): one record per dataset and norm -- the full dataset's if stored."""
    groups: dict[tuple[str, str], list[StoredRecord]] = {}
    for r in records:
        ds = str(r.config.get("dataset") or r.folder.parent.name)
        norm = str(r.config.get("norm") or r.result.get("norm") or r.folder.name.split("-")[0])
        groups.setdefault((ds, norm), []).append(r)
    shown, hidden = [], []
    for key in sorted(groups, key=lambda k: (_dataset_rank(k[0]), k[1] != "linf", k[1])):
        rs = sorted(groups[key], key=_sep_variant, reverse=True)
        shown.append(rs[0])
        hidden.extend(rs[1:])
    return shown, hidden


def _eps_values(rec: StoredRecord) -> list[float]:
    keys = list((dig(rec.result, "train", "eps") or {}).keys())
    vals = [as_float(k) for k in keys]
    vals = [v for v in vals if v is not None]
    if not vals:
        cfg = rec.config.get("eps")
        vals = [as_float(e) for e in (cfg if isinstance(cfg, list) else [cfg])]
        vals = [v for v in vals if v is not None]
    return vals or [PAPER_EPS.get(str(rec.config.get("dataset")), float("nan"))]


def _eps_entry(split: dict, eps: float) -> dict:
    for k, v in (split.get("eps") or {}).items():
        if as_float(k) is not None and math.isclose(as_float(k), eps, rel_tol=1e-9):
            return v if isinstance(v, dict) else {}
    return {}


def separation_rows(rec: StoredRecord) -> list[dict[str, Any]]:
    res, cfg = rec.result, rec.config
    tr, te = res.get("train") or {}, res.get("test") or {}
    rows = []
    for eps in _eps_values(rec):
        row: dict[str, Any] = {
            "dataset": cfg.get("dataset") or rec.folder.parent.name,
            "norm": cfg.get("norm") or res.get("norm"),
            "subset": cfg.get("subset"),
            "n_train": as_float(tr.get("n")) or as_float(cfg.get("n_train")),
            "n_test": as_float(te.get("n")) if te else None,
            "eps": eps, "two_eps": 2 * eps,
        }
        for split, s in (("train", tr), ("test", te)):
            e = _eps_entry(s, eps) if s else {}
            mn = as_float(s.get("min")) if s else None
            ratio = as_float(e.get("ratio_to_2eps"))
            if ratio is None and mn is not None and eps:
                ratio = mn / (2 * eps)
            dups = s.get("cross_class_duplicates") if s else None
            n_excl = as_float(s.get("n_excluded")) if s else None
            has_dups = bool(dups) or bool(n_excl)
            row.update({
                f"{split}_min": mn, f"{split}_min_over_2eps": ratio,
                f"{split}_fraction_below_2eps": as_float(e.get("fraction_below_2eps")),
                f"{split}_mean": as_float(s.get("mean")) if s else None,
                f"{split}_cross_class_duplicates": (len(dups) if isinstance(dups, list) else None) if s else None,
                f"{split}_n_excluded": n_excl,
                f"{split}_min_excl_duplicates": as_float(s.get("min_excluding_duplicates")) if has_dups else None,
                f"{split}_mean_excl_duplicates": as_float(s.get("mean_excluding_duplicates")) if has_dups else None,
            })
        ttd = res.get("test_train_duplicates")
        row.update({"test_in_train": len(ttd) if isinstance(ttd, list) else None,
                    "r": as_float(res.get("r")), "exclude_below": as_float(res.get("exclude_below")),
                    "engine": res.get("engine"), "seconds": _seconds(res.get("seconds") or rec.timing),
                    "record": rec.label})
        rows.append(row)
    return rows


def _seconds(timing: Any) -> float | None:
    if not isinstance(timing, dict):
        return as_float(timing)
    vals = [as_float(v) for k, v in timing.items() if k != "total"]
    vals = [v for v in vals if v is not None]
    return as_float(timing.get("total")) if "total" in timing else (sum(vals) if vals else None)


def _points(n_train: Any, n_test: Any, subset: Any) -> str:
    s = f"{fmt_int(n_train)} / {fmt_int(n_test)}"
    return s + (" (subset)" if subset else "")


def separation_table(records: Sequence[StoredRecord], *, missing: Sequence[Missing] = ()) -> Table:
    """Table 1: per dataset and norm, the minimum train--train and test--train separation, its
    ratio to 2 eps, the means, and the minimum with duplicate pairs left out (when any exist)."""
    shown, hidden = select_separation(records)
    rows = [row for rec in shown for row in separation_rows(rec)]
    data = pd.DataFrame(rows, columns=list(rows[0]) if rows else ["dataset", "norm"])
    disp = []
    for r in rows:
        dup_counts = (r["train_cross_class_duplicates"], r["test_cross_class_duplicates"])
        any_dups = any(c for c in dup_counts) or any(
            r[f"{s}_min_excl_duplicates"] is not None for s in ("train", "test"))
        disp.append({
            "Dataset": dataset_name(r["dataset"]),
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
        subset = rec.config.get("subset")
        budget.append(
            f"{dataset_name(r0['dataset'])} {NORM_NAMES.get(r0['norm'], r0['norm'])}: "
            + (f"fixed random subset of {fmt_int(subset)} points per split (seed {rec.config.get('seed', 0)})"
               if subset else "full dataset")
            + f" ({fmt_int(r0['n_train'])} train / {fmt_int(r0['n_test'])} test), engine "
            f"{rec.result.get('engine') or 'n/a'}, {_duration(r0['seconds'])} on "
            f"{hardware_text([rec])}; {provenance_text([rec])}.")
    return Table(TABLE_KEYS["separation"],
                 "Table 1 – Separation of the training and test sets against 2ε", data, display, notes,
                 budget, [r.label for r in shown], list(missing))


# -- Table 2 and 3: methods ---------------------------------------------------------------------

def method_label(method: Any, params: Any) -> str:
    m = str(method)
    name = METHOD_NAMES.get(m, m)
    if m in METHOD_MAIN_PARAM and isinstance(params, dict):
        key, sym = METHOD_MAIN_PARAM[m]
        v = as_float(params.get(key))
        if v is not None:
            name += f" ({sym}={v:g})"
    return name


def _method_rank(method: Any, params: Any) -> tuple:
    m = str(method)
    rank = METHOD_ORDER.index(m) if m in METHOD_ORDER else len(METHOD_ORDER)
    v = as_float(params.get(METHOD_MAIN_PARAM[m][0])) if m in METHOD_MAIN_PARAM and isinstance(params, dict) else None
    return (rank, m, v if v is not None else -1.0)


def _attack_acc(split: dict, attack: str) -> float | None:
    per = split.get("adv_acc_per_attack") or {}
    if attack in per:
        return as_float(per[attack])
    return None


def evaluation_columns(ev: dict) -> dict[str, Any]:
    """The numbers of one evaluation result (``analysis.evaluate``), defensively."""
    tr, te = ev.get("train") or {}, ev.get("test") or {}
    gaps = ev.get("gaps") or {}

    def diff(a, b):
        a, b = as_float(a), as_float(b)
        return None if a is None or b is None else a - b

    gap_clean = as_float(gaps.get("clean"))
    gap_adv = as_float(gaps.get("adv"))
    return {
        "train_acc": as_float(tr.get("clean_acc")), "test_acc": as_float(te.get("clean_acc")),
        "train_adv_acc": as_float(tr.get("adv_acc")), "test_adv_acc": as_float(te.get("adv_acc")),
        "test_adv_acc_pgd": _attack_acc(te, "pgd"), "test_adv_acc_mt": _attack_acc(te, "multitargeted"),
        "test_adv_acc_aa": _attack_acc(te, "autoattack"),
        "train_lipschitz": as_float(tr.get("lipschitz_mean")), "test_lipschitz": as_float(te.get("lipschitz_mean")),
        "train_lipschitz_official": as_float(tr.get("lipschitz_paper_mean")),
        "test_lipschitz_official": as_float(te.get("lipschitz_paper_mean")),
        "gap_clean": gap_clean if gap_clean is not None else diff(tr.get("clean_acc"), te.get("clean_acc")),
        "gap_adv": gap_adv if gap_adv is not None else diff(tr.get("adv_acc"), te.get("adv_acc")),
        "n_train_eval": as_float(tr.get("n")), "n_test_eval": as_float(te.get("n")),
        "attacks": ",".join(map(str, ev.get("attacks") or [])),
        "eps": as_float(ev.get("eps")), "norm": ev.get("norm"),
    }


def training_row(rec: StoredRecord) -> dict[str, Any]:
    cfg, res = rec.config, rec.result
    ev = res.get("evaluation") if isinstance(res.get("evaluation"), dict) else {}
    cols = evaluation_columns(ev)
    params = cfg.get("method_params") if isinstance(cfg.get("method_params"), dict) else {}
    row = {
        "dataset": cfg.get("dataset") or ev.get("dataset"),
        "setting": rec.folder.parent.name, "run": cfg.get("name") or rec.folder.name,
        "source": "training", "method": cfg.get("method"), "method_params": json.dumps(params, sort_keys=True),
        "method_label": method_label(cfg.get("method"), params),
        "dropout": as_float(cfg.get("dropout")) or 0.0,
        **cols,
        "eps": cols["eps"] if cols["eps"] is not None else as_float(cfg.get("eps")),
        "norm": cols["norm"] or cfg.get("norm"),
        "certified_test_astuteness": None, "lipschitz_bound": None, "lipschitz_measured": None,
        "profile": cfg.get("profile"), "arch": cfg.get("arch"), "epochs": as_float(cfg.get("epochs")),
        "epochs_completed": as_float(res.get("epochs_completed")),
        "train_subset": as_float(cfg.get("train_subset")),
        "train_points": as_float(res.get("train_points")) or as_float(cfg.get("train_subset")),
        "train_seconds": as_float(rec.timing.get("train_seconds")),
        "eval_seconds": as_float(rec.timing.get("eval_seconds")),
        "device": res.get("device_used") or cfg.get("device"),
        "record": rec.label,
    }
    return row


def _construct_eps(rec: StoredRecord) -> float | None:
    ds = rec.config.get("dataset") or rec.folder.parent.name
    astu = rec.result.get("test_astuteness") or {}
    keys = [as_float(k) for k in astu] if isinstance(astu, dict) else []
    keys = [k for k in keys if k is not None]
    cfg_eps = rec.config.get("eps")
    cfg_eps = cfg_eps[0] if isinstance(cfg_eps, list) and cfg_eps else cfg_eps
    for cand in (as_float(cfg_eps), PAPER_EPS.get(str(ds))):
        if cand is not None and any(math.isclose(cand, k, rel_tol=1e-9) for k in keys):
            return cand
    return keys[0] if keys else as_float(cfg_eps)


def _astuteness_at(rec: StoredRecord, eps: float | None) -> float | None:
    astu = rec.result.get("test_astuteness")
    if isinstance(astu, dict) and eps is not None:
        for k, v in astu.items():
            if as_float(k) is not None and math.isclose(as_float(k), eps, rel_tol=1e-9):
                return as_float(v)
    if not isinstance(astu, dict):
        return as_float(astu)
    curve = rec.result.get("astuteness_curve") or {}
    xs, ys = curve.get("eps") or [], curve.get("astuteness") or []
    for x, y in zip(xs, ys):
        if eps is not None and as_float(x) is not None and math.isclose(as_float(x), eps, rel_tol=1e-9):
            return as_float(y)
    return None


def _norm_suffix(norm: Any) -> str:
    """``""`` for l-inf (the tables' threat model), else ``", ℓ2"``."""
    return "" if norm in (None, "linf") else f", {NORM_NAMES.get(str(norm), str(norm))}"


def construct_row(rec: StoredRecord) -> dict[str, Any]:
    """The constructed classifier as checked by ``lipschitz_construct.verify`` (certified)."""
    res, cfg = rec.result, rec.config
    r = finite(res.get("r"))
    bound = finite(res.get("lipschitz_bound"))
    if bound is None and r:
        bound = 1.0 / r
    chk = res.get("lipschitz_check") or {}
    measured = [finite(chk.get(k)) for k in ("random_max_ratio", "adversarial_max_ratio")]
    measured = [m for m in measured if m is not None]
    eps = _construct_eps(rec)
    tr, te = as_float(res.get("train_accuracy")), as_float(res.get("test_accuracy"))
    n_train = as_float(res.get("n_train")) or as_float(cfg.get("n_train"))
    return {
        "dataset": cfg.get("dataset") or rec.folder.parent.name, "setting": "lipschitz_construct.verify",
        "run": rec.folder.name, "source": "construct", "method": "constructed", "method_params": "{}",
        "method_label": "Constructed (certified" + _norm_suffix(cfg.get("norm") or rec.folder.name.split("-")[0]) + ")",
        "dropout": 0.0,
        "train_acc": tr, "test_acc": te, "train_adv_acc": None, "test_adv_acc": None,
        "test_adv_acc_pgd": None, "test_adv_acc_mt": None, "test_adv_acc_aa": None,
        "train_lipschitz": None, "test_lipschitz": None, "train_lipschitz_official": None,
        "test_lipschitz_official": None,
        "gap_clean": None if tr is None or te is None else tr - te, "gap_adv": None,
        "n_train_eval": n_train, "n_test_eval": as_float(res.get("n_test")) or as_float(cfg.get("n_test")),
        "attacks": "", "eps": eps, "norm": cfg.get("norm") or rec.folder.name.split("-")[0],
        "certified_test_astuteness": _astuteness_at(rec, eps), "lipschitz_bound": bound,
        "lipschitz_measured": max(measured) if measured else None,
        "lipschitz_check_held": chk.get("held"),
        "r": r, "train_astuteness_at_r": as_float(res.get("train_astuteness_at_r")),
        "certified_radius_min": as_float(dig(res, "certified_radius", "min")),
        "certified_radius_mean": as_float(dig(res, "certified_radius", "mean")),
        "profile": None, "arch": "constructed", "epochs": None, "epochs_completed": None,
        "train_subset": as_float(cfg.get("subset")), "train_points": n_train,
        "train_seconds": None, "eval_seconds": _seconds(res.get("seconds") or rec.timing),
        "device": None, "record": rec.label,
    }


def is_constructed(rec: StoredRecord) -> bool:
    m = rec.result.get("model") or {}
    return m.get("arch") == "constructed" or dig(rec.config, "model", "config", "kind") == "constructed"


def evaluate_row(rec: StoredRecord) -> dict[str, Any]:
    """A model evaluated by ``python -m analysis.evaluate`` (the constructed one or a checkpoint)."""
    res, cfg = rec.result, rec.config
    cols = evaluation_columns(res)
    model = res.get("model") or {}
    constructed = is_constructed(rec)
    row = {
        "dataset": res.get("dataset") or cfg.get("dataset") or rec.folder.parent.name,
        "setting": "analysis.evaluate", "run": rec.folder.name, "source": "evaluate",
        "method": "constructed" if constructed else (model.get("name") or rec.folder.name),
        "method_params": "{}",
        "method_label": ("Constructed (attacked" + _norm_suffix(cols["norm"]) + ")") if constructed
        else str(model.get("name") or rec.folder.name),
        "dropout": 0.0, **cols,
        "certified_test_astuteness": None, "lipschitz_bound": None, "lipschitz_measured": None,
        "profile": None, "arch": model.get("arch"), "epochs": None, "epochs_completed": None,
        "train_subset": as_float(cfg.get("subset_of_dataset") or cfg.get("subset")),
        "train_points": as_float(dig(cfg, "model", "config", "n_fit")),
        "train_seconds": None, "eval_seconds": as_float(rec.timing.get("total")),
        "device": cfg.get("device"), "record": rec.label,
    }
    if constructed:
        # the estimator measures ||f(x) - f(x')||_1 over all K logits -f_i = -dist(x, X_i)/r, each
        # (1/r)-Lipschitz: its bound is K/r (K = the number of classes the classifier was fitted on)
        r = finite(dig(cfg, "model", "config", "r"))
        arrays = rec.arrays()
        labels = [np.asarray(arrays[k]).ravel() for k in ("train_labels",) if k in arrays]
        k = int(np.unique(labels[0]).size) if labels and labels[0].size else \
            (int(dig(cfg, "model", "config", "n_classes")) if dig(cfg, "model", "config", "n_classes") else None)
        row.update(r=r, n_classes=k)
        row["lipschitz_bound"] = k / r if r and k else None
        lip = arrays.get("test_lipschitz")
        if lip is not None and np.size(lip):
            row["lipschitz_measured"] = float(np.nanmax(np.asarray(lip, dtype=float)))
    return row


_METHOD_DISPLAY = [
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


def _sort_rows(rows: list[dict]) -> list[dict]:
    src_rank = {"training": 0, "evaluate": 1, "construct": 1}
    return sorted(rows, key=lambda r: (_dataset_rank(r["dataset"]), src_rank.get(r["source"], 2),
                                       str(r["setting"]) if r["source"] == "training" else "",
                                       _method_rank(r["method"], json.loads(r["method_params"] or "{}")),
                                       r["source"] != "construct", r.get("norm") not in (None, "linf"),
                                       r.get("dropout") or 0.0, str(r["run"])))


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


def training_budget(records: Sequence[StoredRecord], rows: Sequence[dict]) -> list[str]:
    """One sentence per (dataset, grid): profile, epochs, points, evaluation, hardware, time."""
    groups: dict[tuple, list[tuple[StoredRecord, dict]]] = {}
    for rec, row in zip(records, rows):
        groups.setdefault((row["dataset"], row["setting"]), []).append((rec, row))
    out = []
    for (ds, setting) in sorted(groups, key=lambda k: (_dataset_rank(k[0]), str(k[1]))):
        items = groups[(ds, setting)]
        recs = [i[0] for i in items]
        rws = [i[1] for i in items]
        cfgs = [r.config for r in recs]
        epochs = _summarize((c.get("epochs") for c in cfgs), fmt_int)
        done = [rw.get("epochs_completed") for rw in rws]
        points = _summarize((rw.get("train_points") for rw in rws),
                            lambda v: f"{fmt_int(v)}", none="all")
        subset = any(c.get("train_subset") for c in cfgs)
        seeds = _summarize((c.get("subset_seed", 0) for c in cfgs))
        opt = _summarize((f"{c.get('optimizer', '?')} lr {c.get('lr', '?')}, batch {c.get('batch_size', '?')}"
                          for c in cfgs))
        n_eval = _summarize((f"{fmt_int(rw.get('n_train_eval'))} train / {fmt_int(rw.get('n_test_eval'))} test"
                             for rw in rws))
        counts: dict[str, int] = {}
        for rw in rws:
            a = attack_names(rw.get("attacks"))
            counts[a] = counts.get(a, 0) + 1
        attacks = next(iter(counts)) if len(counts) == 1 else \
            ", ".join(f"{a} in {n} run{'s' if n > 1 else ''}" for a, n in counts.items())
        lip = _summarize(("ascent + official" if rw.get("test_lipschitz_official") is not None else
                          "ascent" if rw.get("test_lipschitz") is not None else "none" for rw in rws))
        train_s = sum(v for v in (rw.get("train_seconds") for rw in rws) if v is not None)
        eval_s = sum(v for v in (rw.get("eval_seconds") for rw in rws) if v is not None)
        incomplete = [rw["run"] for rw, d in zip(rws, done)
                      if d is not None and rw.get("epochs") is not None and d < rw["epochs"]]
        text = (f"{dataset_name(ds)}, grid `{setting}` ({len(recs)} runs): profile "
                f"{_summarize(c.get('profile') for c in cfgs)}, {epochs} epoch(s) ({opt}) on "
                f"{points} training points" + (f" (fixed random subset, seed {seeds})" if subset else "")
                + f"; architecture {_summarize(c.get('arch') for c in cfgs)}; evaluated on {n_eval} points, "
                f"ε = {_summarize((rw.get('eps') for rw in rws), fmt_eps)} ({_summarize(rw.get('norm') for rw in rws)}), "
                f"attacks: {attacks}, Lipschitz estimate: {lip}; "
                f"{hardware_text(recs, (rw.get('device') for rw in rws))}; "
                f"{_duration(train_s)} training + {_duration(eval_s)} evaluation in all; {provenance_text(recs)}.")
        if incomplete:
            text += f" Not all epochs completed: {', '.join(incomplete)}."
        out.append(text)
    return out


def _claims_text(rec: StoredRecord) -> str:
    claims = rec.result.get("claims")
    if not isinstance(claims, dict) or not claims:
        return "claims of the theorem not recorded"
    failed = [k for k, v in claims.items() if not v]
    return ("all claims of the theorem held (" + ", ".join(claims) + ")") if not failed else \
        f"claims FAILED: {', '.join(failed)}"


def _other_budget(records: Sequence[StoredRecord], rows: Sequence[dict]) -> list[str]:
    out = []
    for rec, row in zip(records, rows):
        if row["source"] == "construct":
            out.append(
                f"{dataset_name(row['dataset'])}, constructed classifier (`{rec.label}`): fitted on "
                f"{fmt_int(row.get('train_points'))} training points, certified on {fmt_int(row.get('n_test_eval'))} "
                f"test points, r = {fmt_sig(row.get('r'), 4)}, {_claims_text(rec)}; "
                f"{_duration(row.get('eval_seconds'))} on "
                f"{hardware_text([rec])}; {provenance_text([rec])}.")
        else:
            fit = row.get("train_points")
            out.append(
                f"{dataset_name(row['dataset'])}, {row['method_label']} (`{rec.label}`): "
                + (f"fitted on {fmt_int(fit)} training points, " if fit else "")
                + f"evaluated on {fmt_int(row.get('n_train_eval'))} train / {fmt_int(row.get('n_test_eval'))} "
                f"test points, attacks: {attack_names(row.get('attacks'))}; {_duration(row.get('eval_seconds'))} on "
                f"{hardware_text([rec], [row.get('device')])}; {provenance_text([rec])}.")
    return out


def _method_display_row(row: dict, *, dropout_col: bool = False, autoattack: bool = False) -> dict[str, str]:
    d = {"Dataset": dataset_name(row["dataset"]), "Setting": _setting_cell(row), "Method": row["method_label"]}
    if dropout_col:
        d["Dropout"] = fmt_eps(row["dropout"]) if row.get("dropout") else "none"
    for title, key, f in _METHOD_DISPLAY:
        d[title] = f(row.get(key))
        if key == "test_adv_acc_mt" and autoattack:  # a column only when some model was run with it
            d["Adv test acc (AA)"] = fmt_pct(row.get("test_adv_acc_aa"))
    return d


def _has_autoattack(rows: Sequence[dict]) -> bool:
    return any(r.get("test_adv_acc_aa") is not None for r in rows)


_METHOD_NOTES = [
    "Accuracies in %, on the evaluated points (see the budget). Adv test acc: accuracy under the attack "
    "at radius ε (PGD: projected gradient descent; MT: the multi-targeted attack; AA: AutoAttack, a column "
    "only when some model was evaluated with it); " + DASH +
    " where that attack was not run under the budget.",
    "Lip: the empirical local Lipschitz constant, mean over the evaluated points of "
    "max ‖f(x) − f(x′)‖₁ / ‖x − x′‖∞ over the ε-ball (gradient ascent; a lower bound on the true value). "
    "The official procedure's values are in the CSV (columns *_lipschitz_official).",
    "Gap clean / Gap adv: train minus test accuracy (clean / adversarial), in percentage points.",
]


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


def methods_table(training: Sequence[StoredRecord], construct: Sequence[StoredRecord] = (),
                  evaluate: Sequence[StoredRecord] = (), *, missing: Sequence[Missing] = (),
                  include_dropout: bool = False) -> Table:
    """Table 2: one row per method (runs without dropout unless ``include_dropout``), plus the
    constructed classifier: certified (``lipschitz_construct.verify``) and attacked
    (``analysis.evaluate --model constructed``)."""
    train_pairs = [(r, training_row(r)) for r in training]
    if not include_dropout:
        train_pairs = [(r, row) for r, row in train_pairs if not row["dropout"]]
    other_pairs = [(r, construct_row(r)) for r in construct] + [(r, evaluate_row(r)) for r in evaluate]
    pairs = train_pairs + other_pairs
    rows = [p[1] for p in pairs]
    uniquify_labels(rows)
    order = _sort_rows(rows)
    index = {id(r): i for i, r in enumerate(rows)}
    pairs = [pairs[index[id(r)]] for r in order]
    rows = order
    disp = []
    aa = _has_autoattack(rows)
    for row in rows:
        d = _method_display_row(row, autoattack=aa)
        astute = row.get("certified_test_astuteness")
        d["Certified test astuteness"] = DASH if finite(astute) is None else \
            f"{fmt_pct(astute)} (ε={float(row['eps']):.3g})" if finite(row.get("eps")) is not None else fmt_pct(astute)
        d["Lipschitz bound (measured max)"] = _bound_cell(row)
        disp.append(d)
    data = pd.DataFrame(rows)
    notes = list(_METHOD_NOTES)
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
        _other_budget([p[0] for p in pairs if p[1]["source"] != "training"],
                      [p[1] for p in pairs if p[1]["source"] != "training"])
    return Table(TABLE_KEYS["methods"],
                 "Table 2 – Accuracy, adversarial accuracy, local Lipschitz constant and generalization gaps "
                 "per training method", data, pd.DataFrame(disp), notes, budget, [p[0].label for p in pairs],
                 list(missing))


def _pair_key(rec: StoredRecord) -> str:
    cfg = {k: v for k, v in rec.config.items() if k not in ("name", "dropout", "device", "num_threads")}
    return json.dumps({"grid": rec.folder.parent.name, **cfg}, sort_keys=True, default=str)


def dropout_table(training: Sequence[StoredRecord], *, missing: Sequence[Missing] = ()) -> Table:
    """Table 3: each method with and without dropout (same everything else), with the change of
    the clean and adversarial gaps (with dropout minus without)."""
    groups: dict[str, list[tuple[StoredRecord, dict]]] = {}
    for rec in training:
        groups.setdefault(_pair_key(rec), []).append((rec, training_row(rec)))
    kept: list[tuple[StoredRecord, dict]] = []
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
    rows = [k[1] for k in kept]
    uniquify_labels(rows)
    order = _sort_rows(rows)
    index = {id(r): i for i, r in enumerate(rows)}
    kept = [kept[index[id(r)]] for r in order]
    rows = order
    disp = []
    aa = _has_autoattack(rows)
    for row in rows:
        d = _method_display_row(row, dropout_col=True, autoattack=aa)
        d["Δ gap clean"] = fmt_pp(row.get("delta_gap_clean"), signed=True)
        d["Δ gap adv"] = fmt_pp(row.get("delta_gap_adv"), signed=True)
        disp.append(d)
    notes = list(_METHOD_NOTES) + [
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
