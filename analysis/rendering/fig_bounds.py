"""Optimal robust accuracy against eps, per dataset and norm: achievable (exact optimum, the LP bound
no classifier beats, the certified witness) against achieved (the trained models' robust accuracy
from their training records, in an inset at their own eps), with the paper's eps and half the
separation marked.

Each panel zooms where its curves move: eps from just below the first radius with a drop (or half
the separation) to the last radius, accuracy from just below the lowest curve value to 100%. A
line equal to the exact curve at every point it has is drawn under it and left out of the legend
(:func:`coinciding_lines` names them for the caption)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

from lipschitz_construct.records import BoundsRecord
from separation.core.paper import PAPER_EPS, default_eps

from .fig_base import FigureSkipped, new_figure, save_figure
from .format import NORM_NAMES, dataset_name, finite
from .table_bounds import select_bounds

STEM = "robustness_bounds"
SPLIT_COLORS = {"train": "#1f4e9c", "test": "#b5541c"}
EXACT = "optimal (exact)"
#: The lines besides the exact curve, with their matplotlib style.
LINES = {"randomized optimum (exact)": {"lw": 1.4, "ls": "-", "marker": "s", "ms": 2.5, "alpha": 0.6},
         "LP bound, any classifier": {"lw": 1.2, "ls": "--"},
         "certified witness": {"lw": 1.0, "ls": ":", "marker": "o", "ms": 2.5, "mfc": "white"},
         "clique-cover LP bound": {"lw": 0.9, "ls": "-."}}
#: The lines' names in notes.
SHORT = {"randomized optimum (exact)": "randomized optimum", "LP bound, any classifier": "LP bound",
         "certified witness": "witness", "clique-cover LP bound": "clique-cover LP bound"}
SAME = 1e-9  # robust accuracies (fractions) closer than this are the same number
#: A line closer than this fraction of its panel's height to the exact curve is hidden under it.
HIDDEN = 0.0025


def curves(rec: BoundsRecord) -> dict[str, list[tuple[float, float]]]:
    """(eps, robust accuracy in %) of each line of one record; the exact curve where solved."""
    pts = rec.result.points
    return {EXACT: [(p.eps, 100 * (1 - p.optimal_error)) for p in pts if p.solved],
            "randomized optimum (exact)": [(p.eps, 100 * (1 - p.randomized_optimal_error)) for p in pts
                                           if finite(p.randomized_optimal_error) is not None],
            "LP bound, any classifier": [(p.eps, 100 * (1 - p.lower_error)) for p in pts],
            "certified witness": [(p.eps, 100 * (1 - p.upper_error)) for p in pts],
            "clique-cover LP bound": [(p.eps, 100 * (1 - p.clique_lower_error)) for p in pts
                                      if finite(p.clique_lower_error) is not None]}


def coinciding_lines(rec: BoundsRecord, tol: float = 100 * SAME) -> list[str]:
    """The lines within ``tol`` (accuracy in %) of the exact curve at every radius they have, so
    hidden under it; a radius without an exact value (not solved) keeps a line visible."""
    c = curves(rec)
    exact = dict(c[EXACT])
    return [name for name in LINES if c[name]
            and all(e in exact and abs(v - exact[e]) <= tol for e, v in c[name])]


def hidden_tolerance(recs: Sequence[BoundsRecord]) -> float:
    """What "hidden under the exact curve" means in a panel of these records, in %: a fraction
    :data:`HIDDEN` of its height."""
    (_, _), (y0, y1) = panel_limits(recs)
    return HIDDEN * (y1 - y0)


def panel_limits(recs: Sequence[BoundsRecord]) -> tuple[tuple[float, float], tuple[float, float]]:
    """((eps from, to), (accuracy % from, to)) of a panel: from just below the first radius where
    a curve drops below 100% (or half the separation, if smaller) to the last radius; from just
    below the lowest curve value to 100%."""
    pts = [pt for rec in recs for line in curves(rec).values() for pt in line]
    if not pts:
        return (0.0, 1.0), (0.0, 100.5)
    drops = [e for e, v in pts if v < 100 * (1 - SAME)]
    first = min(drops) if drops else min(e for e, _ in pts)
    first = min([first] + [r.result.threshold_eps for r in recs if finite(r.result.threshold_eps)])
    last = max(e for e, _ in pts)
    pad = 0.04 * (last - first) if last > first else 0.05 * max(abs(last), 1e-3)
    span = max(100 - min(v for _, v in pts), 0.2)
    return ((max(0.0, first - pad), last + pad),
            (max(0.0, min(v for _, v in pts) - 0.08 * span), 100 + 0.04 * span))


def _names(lines: Sequence[str]) -> str:
    """``LP bound, witness and clique-cover LP bound``."""
    short = [SHORT.get(n, n) for n in lines]
    return short[0] if len(short) == 1 else ", ".join(short[:-1]) + " and " + short[-1]


def _models(rows: Sequence[dict[str, Any]], dataset: str, norm: str, split: str) -> list[tuple[float, float, str]]:
    """(eps, robust accuracy, label) of the trained models on this dataset and threat model."""
    key = "train_adv_acc" if split == "train" else "test_adv_acc"
    out = []
    for r in rows:
        eps, acc = finite(r.get("eps")), finite(r.get(key))
        if r.get("source") == "training" and r.get("dataset") == dataset and (r.get("norm") or "linf") == norm \
                and eps is not None and acc is not None:
            out.append((eps, acc, str(r.get("method_label", ""))))
    return sorted(out)


def _models_inset(ax, recs: list[BoundsRecord], rows, dataset: str, norm: str) -> None:
    """The trained models' robust accuracy at their own eps, in an inset of the panel (0-100%),
    beside the optimum there when it is exactly 100% (below half the separation)."""
    groups = [(rec, _models(rows, dataset, norm, rec.config.split)) for rec in recs]
    groups = [(rec, m) for rec, m in groups if m]
    if not groups:
        return
    ins = ax.inset_axes([0.07, 0.40, 0.26, 0.42])
    eps_all = sorted({m[0] for _, ms in groups for m in ms})
    for rec, ms in groups:
        ins.scatter([m[0] for m in ms], [100 * m[1] for m in ms], s=10, marker="x", color="#c00000", zorder=3,
                    lw=0.8)
        thr = finite(rec.result.threshold_eps)
        below = [e for e in eps_all if thr is not None and e < thr]
        if below:
            ins.scatter(below, [100.0] * len(below), s=16, marker="o", color=SPLIT_COLORS.get(rec.config.split,
                                                                                                 "#444444"), zorder=4)
    split = "/".join(dict.fromkeys(rec.config.split for rec, _ in groups))
    ins.set_title(f"trained models (×), robust {split} acc.;\n• the optimum (exact, 100%)", fontsize=5.5, pad=2)
    width = max(eps_all) - min(eps_all)
    pad = 0.5 * width if width > 0 else 0.5 * max(eps_all)
    ins.set_xlim(min(eps_all) - pad, max(eps_all) + pad)
    ins.set_ylim(0, 105)
    ins.set_xticks(eps_all)
    ins.set_yticks([0, 50, 100])
    ins.tick_params(labelsize=5.5, length=2, pad=1)
    ins.set_xlabel("ε", fontsize=5.5, labelpad=0)
    ins.grid(alpha=0.25, lw=0.4)


def _panel(ax, recs: list[BoundsRecord], rows, dataset: str, norm: str) -> None:
    (x0, x1), (y0, y1) = panel_limits(recs)
    notes: list[str] = []
    for rec in recs:
        split = rec.config.split
        col = SPLIT_COLORS.get(split, "#444444")
        tag = f" ({split})" if len(recs) > 1 or split != "train" else ""
        thr = finite(rec.result.threshold_eps)
        if thr is not None and thr > 0:  # exactly 100% below half the separation
            ax.plot([0.0, thr], [100, 100], color=col, lw=1.8)
            ax.axvline(thr, color=col, lw=0.8, ls=":", alpha=0.8, label=f"half the separation{tag}")
        c = curves(rec)
        hidden = coinciding_lines(rec, HIDDEN * (y1 - y0))  # as hidden_tolerance(recs)
        for name, style in LINES.items():
            if c[name]:
                ax.plot(*zip(*c[name]), color=col, **style, zorder=2,
                        label=None if name in hidden else f"{name}{tag}")
        if c[EXACT]:
            ax.plot(*zip(*c[EXACT]), color=col, lw=1.8, marker="o", ms=3.5, label=f"{EXACT}{tag}", zorder=3)
        if hidden:
            notes.append(f"{_names(hidden)}{tag}:\non the optimum at every ε")
    usual = default_eps(dataset, norm)
    if usual is not None:  # the paper's radius (l-inf), or the conventional one of this norm
        who = "paper's" if norm == "linf" and PAPER_EPS.get(dataset) == usual else "usual"
        if x0 <= usual <= x1:
            ax.axvline(usual, color="black", lw=1.0, ls="--", alpha=0.7, label=f"{who} ε = {usual:g}")
        else:
            notes.append(f"{who} ε = {usual:g}: " + ("left" if usual < x0 else "right") + " of the axis")
    _models_inset(ax, recs, rows, dataset, norm)
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_title(f"{dataset_name(dataset)}, {NORM_NAMES.get(norm, norm)}", fontsize=10)
    ax.set_xlabel(f"ε ({NORM_NAMES.get(norm, norm)}, pixel values in [0, 1])")
    ax.set_ylabel("robust accuracy (%)")
    ax.grid(alpha=0.25, lw=0.5)
    leg = ax.legend(fontsize=6.5, loc="lower left", framealpha=0.9, title="\n".join(notes) or None,
                    title_fontsize=6, alignment="left")
    leg.set_zorder(5)


def _panels(records: Sequence[BoundsRecord]) -> dict[tuple[str, str], list[BoundsRecord]]:
    """The records shown in each panel, by (dataset, norm), in the order of Table 4."""
    out: dict[tuple[str, str], list[BoundsRecord]] = {}
    for r in select_bounds(records)[0]:
        out.setdefault((r.config.data.dataset, r.config.norm), []).append(r)
    return out


def bounds_figure(records: Sequence[BoundsRecord], model_rows: Sequence[dict[str, Any]]):
    """The figure (not saved): one panel per dataset (rows) and norm (columns) with a bounds record."""
    panels = _panels(records)
    if not panels:
        raise FigureSkipped("no bounds record (python -m lipschitz_construct.bounds)")
    datasets = list(dict.fromkeys(ds for ds, _ in panels))
    norms = list(dict.fromkeys(norm for _, norm in panels))
    fig = new_figure(4.6 * len(norms) + 0.4, 3.4 * len(datasets) + 0.6)
    axes = fig.subplots(len(datasets), len(norms), squeeze=False)
    for a, ds in enumerate(datasets):
        for b, norm in enumerate(norms):
            recs = panels.get((ds, norm))
            if recs:
                _panel(axes[a, b], recs, model_rows, ds, norm)
            else:
                axes[a, b].set_axis_off()
                axes[a, b].text(0.5, 0.5, "no bounds record", ha="center", va="center")
    fig.suptitle("Achievable vs achieved: the best robust accuracy any classifier can reach on the data, "
                 "and what trained models reach", fontsize=11)
    return fig


def robustness_bounds_figure(records: Sequence[BoundsRecord], model_rows: Sequence[dict[str, Any]],
                             out_dir: str | os.PathLike) -> list[Path]:
    """``robustness_bounds.png`` / ``.pdf`` in ``out_dir`` (see :func:`bounds_figure`)."""
    return save_figure(bounds_figure(records, model_rows), out_dir, STEM)


def coinciding_note(records: Sequence[BoundsRecord]) -> str:
    """The caption's sentence on the lines hidden under the exact curve, per panel ("" if none)."""
    parts = []
    for (ds, norm), recs in _panels(records).items():
        tol = hidden_tolerance(recs)
        for rec in recs:
            hidden = coinciding_lines(rec, tol)
            if hidden:
                parts.append(f"{dataset_name(ds)} {NORM_NAMES.get(norm, norm)} {rec.config.split}: "
                             + _names(hidden))
    if not parts:
        return ""
    return (f"Lines within {100 * HIDDEN:g}% of a panel's height of the exact optimum at every radius they have "
            "coincide with it: they are drawn under it and left out of the legend (" + "; ".join(parts)
            + "; Table 4 has their values).")


__all__ = ["EXACT", "LINES", "SPLIT_COLORS", "STEM", "bounds_figure", "coinciding_lines", "coinciding_note",
           "curves", "hidden_tolerance", "panel_limits", "robustness_bounds_figure"]
