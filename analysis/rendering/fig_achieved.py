"""Achieved against achievable, one panel per evaluation with a robust-accuracy curve: the model's
robust accuracy on the evaluated test points at each eps, beside the data's optimal curves on the
same points (exact deterministic optimum, randomized optimum where computed, the LP bound, the
certified witness), the avoidable errors written at each radius and half the separation marked; a
zoom panel beside it where the optimum's drop is squeezed at the right edge.
Drawn from the ``evaluate`` records only (:mod:`.table_achieved` selects them)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from ..records import EvaluationRecord
from .fig_base import FigureSkipped, new_figure, save_figure
from .format import NORM_NAMES, dataset_name, finite
from .table_achieved import curve_records, row_labels

STEM = "achieved_vs_achievable"
MODEL_COLOR = "#c00000"
BOUND_COLOR = "#1f4e9c"
#: The data's curves: (name, CurvePoint attribute, matplotlib style).
LINES = (("optimal (exact, deterministic)", "optimal_acc", {"lw": 1.8, "marker": "o", "ms": 3.5, "zorder": 3}),
         ("randomized optimum", "randomized_optimal_acc", {"lw": 1.2, "ls": "-.", "color": "#7a3d9c", "zorder": 2}),
         ("LP bound, any classifier", "lp_bound_acc", {"lw": 1.2, "ls": "--", "zorder": 2}),
         ("certified witness", "witness_acc", {"lw": 1.0, "ls": ":", "marker": "s", "ms": 2.5, "mfc": "white",
                                                "zorder": 2}))
#: A zoom panel is drawn when the radii where the optimum drops span less than this share of the curve.
ZOOM_SHARE = 0.25


def _line(rec: EvaluationRecord, attr: str) -> list[tuple[float, float]]:
    return [(p.eps, 100 * v) for p in rec.result.curve if (v := finite(getattr(p, attr))) is not None]


def zoom_range(rec: EvaluationRecord) -> tuple[float, float] | None:
    """The eps range of a zoom panel on where the data's optimum drops (from just below half the
    separation, or the first radius below 100%, to the last radius), when it is under
    :data:`ZOOM_SHARE` of the whole curve's range; else None."""
    res = rec.result
    eps = [p.eps for p in res.curve]
    drops = [p.eps for p in res.curve if (v := finite(p.witness_acc)) is not None and v < 1]
    if not drops or max(eps) <= min(eps):
        return None
    thr = finite(res.achievable.threshold_eps) if res.achievable is not None else None
    first = min(drops + ([thr] if thr is not None else []))
    hi = max(eps)
    if hi - first > ZOOM_SHARE * (hi - min(0.0, min(eps))):
        return None
    pad = max(0.25 * (hi - first), 1e-3 * max(hi, 1e-3))
    return first - pad, hi + 0.3 * pad


def _draw(ax, rec: EvaluationRecord, *, legend: bool, annotate: tuple[float, float]) -> bool:
    """The curves of one record on ``ax``; the avoidable errors written at the radii in ``annotate``
    (an eps range). Returns whether any avoidable errors were written."""
    res = rec.result
    ach = res.achievable
    model = _line(rec, "adv_acc")
    thr = finite(ach.threshold_eps) if ach is not None else None
    if thr is not None and ach.separation is not None and any(p.witness_acc is not None for p in res.curve):
        # exactly 100% below half the separation (no two points of different classes conflict there)
        ax.plot([0.0, thr], [100, 100], color=BOUND_COLOR, lw=1.8, zorder=2, alpha=0.35,
                label="optimum: 100% below half the separation" if legend else None)
    for name, attr, style in LINES:
        pts = _line(rec, attr)
        if pts:
            ax.plot(*zip(*pts), label=name if legend else None, **{"color": BOUND_COLOR, **style})
    ax.plot(*zip(*model), color=MODEL_COLOR, lw=1.8, marker="x", ms=5, zorder=4,
            label=f"{res.model.name}: achieved" if legend else None)
    witness = dict(_line(rec, "witness_acc"))
    shared = [(e, v, witness[e]) for e, v in model if e in witness]
    if shared:  # the avoidable gap: what the witness keeps above what the model keeps
        ax.fill_between([s[0] for s in shared], [s[1] for s in shared], [s[2] for s in shared], color=MODEL_COLOR,
                        alpha=0.07, lw=0, zorder=1)
    wrote = False
    for p in res.curve:
        if p.avoidable_errors is not None and annotate[0] <= p.eps <= annotate[1]:
            ax.annotate(f"{p.avoidable_errors}", (p.eps, 100 * p.adv_acc), textcoords="offset points", xytext=(0, 5),
                        ha="center", fontsize=6.5, color=MODEL_COLOR)
            wrote = True
    if thr is not None and thr <= max(p.eps for p in res.curve):
        ax.axvline(thr, color=BOUND_COLOR, lw=0.8, ls=":", alpha=0.8,
                   label=f"half the separation ({thr:.4g})" if legend else None)
    ax.set_ylim(-3, 109)
    ax.set_xlabel(f"ε ({NORM_NAMES.get(res.norm, res.norm)}, pixel values in [0, 1])")
    ax.grid(alpha=0.25, lw=0.5)
    return wrote


def _row(fig, spec, rec: EvaluationRecord, label: str) -> None:
    """One record: the whole curve, and a zoom on where the optimum drops when it is squeezed."""
    res = rec.result
    zoom = zoom_range(rec)
    if zoom is None:
        main, axz = fig.add_subplot(spec), None
    else:
        inner = spec.subgridspec(1, 2, width_ratios=[2.6, 1.2], wspace=0.05)
        main, axz = fig.add_subplot(inner[0]), fig.add_subplot(inner[1])
    eps = [p.eps for p in res.curve]
    hi = max(eps)
    wrote = _draw(main, rec, legend=True, annotate=(-1.0, zoom[0] if zoom else 2 * hi + 1))
    pad = 0.03 * hi if hi > 0 else 0.01
    main.set_xlim(min(0.0, min(eps)) - pad, hi + pad)
    main.set_ylabel("robust accuracy on the points (%)")
    n = res.test.n if res.test is not None else None
    arch = f" ({res.model.arch})" if res.model.arch and res.model.arch != res.model.name else ""
    main.set_title(f"{label}{arch}: {dataset_name(res.dataset)}, {NORM_NAMES.get(res.norm, res.norm)}, "
                   f"{n} test points", fontsize=9)
    if axz is not None:
        wrote |= _draw(axz, rec, legend=False, annotate=zoom)
        axz.set_xlim(*zoom)
        axz.tick_params(labelleft=False)
        axz.set_title("where the optimum drops", fontsize=8)
        main.axvspan(zoom[0], zoom[1], color="#999999", alpha=0.12, lw=0, zorder=0)
    has_bounds = res.achievable is not None
    title = ("numbers: avoidable errors (kept by the\nwitness, lost by the model); shaded: the gap"
             if wrote else "no bounds of these points stored\n(analysis.evaluate --bounds)" if not has_bounds else None)
    leg = main.legend(fontsize=6.5, loc="upper center", bbox_to_anchor=(0.5, -0.19), ncol=2, framealpha=0.9,
                      title=title and title.replace("\n", " "), title_fontsize=6.5)
    leg.set_zorder(5)


def achieved_figure(records: Sequence[EvaluationRecord]):
    """The figure (not saved): one row per evaluation with a curve (see the module docstring)."""
    recs = curve_records(records)
    if not recs:
        raise FigureSkipped("no evaluation record with a robust-accuracy curve (python -m analysis.evaluate --eps "
                            "E1 E2 ... --bounds)")
    fig = new_figure(8.6, 4.0 * len(recs) + 0.5)
    grid = fig.add_gridspec(len(recs), 1)
    labels = row_labels(recs)
    for i, rec in enumerate(recs):
        _row(fig, grid[i], rec, labels[rec.label])
    fig.suptitle("Achieved vs achievable: a model's robust accuracy, and the best any classifier\nreaches on the "
                 "same points", fontsize=10)
    return fig


def achieved_vs_achievable_figure(records: Sequence[EvaluationRecord], out_dir: str | os.PathLike) -> list[Path]:
    """``achieved_vs_achievable.png`` / ``.pdf`` in ``out_dir`` (see :func:`achieved_figure`)."""
    return save_figure(achieved_figure(records), out_dir, STEM)


__all__ = ["LINES", "STEM", "ZOOM_SHARE", "achieved_figure", "achieved_vs_achievable_figure", "zoom_range"]
