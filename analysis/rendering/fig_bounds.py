"""Optimal robust accuracy against eps, per dataset and norm: achievable (exact optimum, the LP bound
no classifier beats, the certified witness) against achieved (the trained models' robust accuracy
from their training records), with the paper's eps and half the separation marked."""
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


def _panel(ax, recs: list[BoundsRecord], rows, dataset: str, norm: str) -> None:
    lo = 1.0
    hi_eps = 0.0
    for rec in recs:
        res, split = rec.result, rec.config.split
        col = SPLIT_COLORS.get(split, "#444444")
        eps = [p.eps for p in res.points]
        lp = [1 - p.lower_error for p in res.points]
        wit = [1 - p.upper_error for p in res.points]
        hi_eps = max(hi_eps, max(eps))
        tag = f" ({split})" if len(recs) > 1 or split != "train" else ""
        if res.threshold_eps is not None and res.threshold_eps > 0:  # exactly 100% below half the separation
            ax.plot([0.0, res.threshold_eps], [100, 100], color=col, lw=1.8)
            ax.axvline(res.threshold_eps, color=col, lw=0.8, ls=":", alpha=0.8)
        ax.plot(eps, [100 * v for v in lp], color=col, lw=1.2, ls="--", label=f"LP bound, any classifier{tag}")
        ax.plot(eps, [100 * v for v in wit], color=col, lw=1.0, ls=":", marker="o", ms=2.5, mfc="white",
                label=f"certified witness{tag}")
        solved = [(p.eps, 100 * (1 - p.optimal_error)) for p in res.points if p.solved]
        if solved:
            ax.plot(*zip(*solved), color=col, lw=1.8, marker="o", ms=3.5, label=f"optimal (exact){tag}")
        cl = [(p.eps, 100 * (1 - p.clique_lower_error)) for p in res.points if p.clique_lower_error is not None]
        if cl:
            ax.plot(*zip(*cl), color=col, lw=0.9, ls="-.", label=f"clique LP bound{tag}")
        lo = min(lo, min(wit), min(lp))
        models = _models(rows, dataset, norm, split)
        if models:
            ax.scatter([m[0] for m in models], [100 * m[1] for m in models], s=14, marker="x", color="#c00000",
                       label=f"trained models, robust {split} acc.", zorder=3)
            lo = min(lo, min(m[1] for m in models))
            hi_eps = max(hi_eps, max(m[0] for m in models))
    usual = default_eps(dataset, norm)
    if usual is not None:  # the paper's radius (l-inf), or the conventional one of this norm
        who = "paper's" if norm == "linf" and PAPER_EPS.get(dataset) == usual else "usual"
        ax.axvline(usual, color="black", lw=1.0, ls="--", alpha=0.7, label=f"{who} ε = {usual:g}")
        hi_eps = max(hi_eps, usual)
    ax.set_xlim(0.0, hi_eps * 1.04 if hi_eps > 0 else 1.0)
    ax.set_ylim(max(0.0, 100 * lo - 0.08 * (100 - 100 * lo) - 0.5), 100.5)
    ax.set_title(f"{dataset_name(dataset)}, {NORM_NAMES.get(norm, norm)}", fontsize=10)
    ax.set_xlabel(f"ε ({NORM_NAMES.get(norm, norm)}, pixel values in [0, 1])")
    ax.set_ylabel("robust accuracy (%)")
    ax.grid(alpha=0.25, lw=0.5)
    ax.legend(fontsize=6.5, loc="lower left", framealpha=0.9)


def robustness_bounds_figure(records: Sequence[BoundsRecord], model_rows: Sequence[dict[str, Any]],
                             out_dir: str | os.PathLike) -> list[Path]:
    """One panel per dataset (rows) and norm (columns) with a bounds record."""
    shown, _ = select_bounds(records)
    if not shown:
        raise FigureSkipped("no bounds record (python -m lipschitz_construct.bounds)")
    datasets = list(dict.fromkeys(r.config.data.dataset for r in shown))
    norms = list(dict.fromkeys(r.config.norm for r in shown))
    fig = new_figure(4.6 * len(norms) + 0.4, 3.4 * len(datasets) + 0.6)
    axes = fig.subplots(len(datasets), len(norms), squeeze=False)
    for a, ds in enumerate(datasets):
        for b, norm in enumerate(norms):
            recs = [r for r in shown if r.config.data.dataset == ds and r.config.norm == norm]
            if recs:
                _panel(axes[a, b], recs, model_rows, ds, norm)
            else:
                axes[a, b].set_axis_off()
                axes[a, b].text(0.5, 0.5, "no bounds record", ha="center", va="center")
    fig.suptitle("Achievable vs achieved: the best robust accuracy any classifier can reach on the data, "
                 "and what trained models reach", fontsize=11)
    return save_figure(fig, out_dir, STEM)


__all__ = ["SPLIT_COLORS", "STEM", "robustness_bounds_figure"]
