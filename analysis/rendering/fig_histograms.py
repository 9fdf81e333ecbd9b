"""Train--train and test--train distance histograms per dataset, the minimum and 2 eps marked."""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from separation import SeparationRecord

from .fig_base import FigureSkipped, new_figure, save_figure
from .format import NORM_NAMES, dataset_name

log = logging.getLogger(__name__)


def _eps_of(rec: SeparationRecord) -> float | None:
    vals = rec.result.eps_values or list(rec.config.eps)
    return vals[0] if vals else None


def _hist_panel(ax, d: np.ndarray, *, title: str, eps: float | None, color: str, hi: float) -> None:
    d = np.asarray(d, dtype=float)
    d = d[np.isfinite(d)]
    ax.set_title(title, fontsize=10)
    if d.size == 0:
        ax.text(0.5, 0.5, "no finite distances", ha="center", va="center", transform=ax.transAxes)
        return
    mn = float(d.min())
    # log counts: the few points near the minimum (what the theorem is about) stay visible
    # next to bins of thousands
    ax.hist(d, bins=80, range=(0.0, hi), color=color, alpha=0.75, edgecolor="none", log=True)
    ax.axvline(mn, color="#c00000", lw=1.6, label=f"min = {mn:.3f}")
    if eps:
        ax.axvline(2 * eps, color="black", lw=1.4, ls="--", label=f"2ε = {2 * eps:g}")
    ax.set_xlim(0.0, hi)
    ax.set_ylabel("points (log scale)")
    ax.set_ylim(bottom=0.7)
    ax.legend(fontsize=8, loc="upper left", framealpha=0.9)
    ax.grid(alpha=0.25, lw=0.5)


def _upper(arrays: dict, eps: float | None) -> float:
    """A common x range for both panels of a dataset: up to the largest distance (and 2 eps)."""
    hi = 2 * eps if eps else 0.0
    for key in ("train_distances", "test_distances"):
        d = np.asarray(arrays.get(key, []), dtype=float)
        d = d[np.isfinite(d)]
        if d.size:
            hi = max(hi, float(d.max()))
    return hi * 1.03 if hi > 0 else 1.0


def separation_histograms(records: Sequence[SeparationRecord], out_dir: str | os.PathLike, *,
                          norm: str) -> list[Path]:
    """One figure per norm: a row per dataset, train--train and test--train columns."""
    recs = [r for r in records if r.config.norm == norm]
    usable = []
    for r in recs:
        a = r.load_arrays()
        if "train_distances" not in a:
            log.warning("%s: no arrays.npz with train_distances; left out of the histograms "
                        "(re-run the separation command to store the per-point distances)", r.label)
            continue
        usable.append((r, a))
    if not usable:
        raise FigureSkipped(f"no {norm} separation record with per-point distances (arrays.npz)")
    fig = new_figure(10.0, 2.6 * len(usable) + 0.6)
    axes = fig.subplots(len(usable), 2, squeeze=False)
    for i, (r, a) in enumerate(usable):
        ds = dataset_name(r.config.data.dataset)
        eps = _eps_of(r)
        sub = r.config.data.subset
        tag = f" (subset {sub})" if sub else ""
        hi = _upper(a, eps)
        _hist_panel(axes[i, 0], a["train_distances"], title=f"{ds}{tag}: train–train", eps=eps,
                    color="#4c72b0", hi=hi)
        if "test_distances" in a:
            _hist_panel(axes[i, 1], a["test_distances"], title=f"{ds}{tag}: test–train", eps=eps,
                        color="#dd8452", hi=hi)
        else:
            axes[i, 1].set_axis_off()
            axes[i, 1].text(0.5, 0.5, "no test split in the record", ha="center", va="center")
    for ax in axes[-1]:
        ax.set_xlabel(f"{NORM_NAMES.get(norm, norm)} distance to the nearest other-class training point")
    fig.suptitle(f"Separation ({NORM_NAMES.get(norm, norm)}, pixel values in [0, 1]): distance of each "
                 "point to the nearest training point of another class", fontsize=11)
    return save_figure(fig, out_dir, f"separation_hist_{norm}")


__all__ = ["separation_histograms"]
