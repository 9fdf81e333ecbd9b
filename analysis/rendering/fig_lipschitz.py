"""Test local Lipschitz constant against adversarial test accuracy, one point per evaluated model."""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Sequence


from ..methods import METHODS
from .fig_base import FigureSkipped, new_figure, save_figure
from .format import DATASET_NAMES, METHOD_MAIN_PARAM, METHOD_NAMES, dataset_name, finite, fmt_int

METHOD_COLORS = {"natural": "#1f77b4", "gr": "#ff7f0e", "llr": "#2ca02c", "at": "#d62728",
                 "rst": "#9467bd", "trades": "#8c564b", "constructed": "#111111"}
METHOD_MARKERS = {"natural": "o", "gr": "s", "llr": "D", "at": "^", "rst": "v", "trades": "P",
                  "constructed": "*"}


MARK = 7  # half the size of a marker's box, in pixels


def _offsets(w: float, h: float, mark: float) -> list[tuple[float, float]]:
    """Label offsets (pixels) around a point whose marker's box has half size ``mark``, nearest
    first: right, then left, at growing heights."""
    out = []
    for dy in (-h / 2, 2, -h - 2, h + 2, -2 * h - 4, 2 * h + 4, -3 * h - 6, 3 * h + 6, -4 * h - 8, 4 * h + 8):
        out += [(mark + 1, dy), (-w - mark - 1, dy)]
    return out


def _place_labels(fig, ax, items: list[tuple[float, float, str, str, float]], fontsize: float = 7.5) -> None:
    """Annotate points without overlapping labels and inside the axes: for each label try offsets
    around its point and keep the first whose box is free and inside; else the
    inside one that overlaps least (boxes estimated in display pixels). ``items``: (x, y, text,
    colour, half the size of the marker's box in pixels); an empty text marks an obstacle only."""
    fig.draw_without_rendering()  # settle the constrained layout before measuring
    px_per_pt = fig.dpi / 72.0
    char_w, line_h = 0.58 * fontsize * px_per_pt, 1.25 * fontsize * px_per_pt
    frame = ax.get_window_extent()
    placed: list[tuple[float, float, float, float]] = []
    pts = [tuple(ax.transData.transform((x, y))) for x, y, *_ in items]
    for (px, py), item in zip(pts, items):  # the markers themselves are obstacles too
        placed.append((px - item[4], py - item[4], px + item[4], py + item[4]))
    order = sorted((i for i in range(len(items)) if items[i][2]), key=lambda i: (-pts[i][1], pts[i][0]))
    for i in order:
        x, y, text, color, mark = items[i]
        px, py = pts[i]
        w, h = char_w * len(text), line_h
        scored = []
        for k, (dx, dy) in enumerate(_offsets(w, h, mark)):
            box = (px + dx, py + dy, px + dx + w, py + dy + h)
            inside = frame.x0 <= box[0] and box[2] <= frame.x1 and frame.y0 <= box[1] and box[3] <= frame.y1
            hits = sum(box[0] < b[2] and b[0] < box[2] and box[1] < b[3] and b[1] < box[3] for b in placed)
            scored.append((not inside, hits, k, dx, dy, box))
        _, _, _, dx, dy, box = min(scored)
        placed.append(box)
        ax.annotate(text, (x, y), xytext=(dx / px_per_pt, dy / px_per_pt), textcoords="offset points",
                    fontsize=fontsize, color=color, ha="left", va="bottom",
                    arrowprops=None if -h - 3 <= dy <= 3 else
                    {"arrowstyle": "-", "color": color, "lw": 0.5, "alpha": 0.6})


def certified_lines(panel_rows: Sequence[dict[str, Any]], certified: Sequence[dict[str, Any]]) -> list[dict]:
    """The certified rows (``lipschitz_construct.verify``) drawn in a panel: same dataset, radius and
    norm as one of its models (they have no Lipschitz estimate, so they are a horizontal line)."""
    keys = {(r["dataset"], r.get("norm") or "linf", finite(r.get("eps"))) for r in panel_rows}
    return [c for c in certified if finite(c.get("certified_test_astuteness")) is not None
            and any(c["dataset"] == d and (c.get("norm") or "linf") == n and e is not None
                    and finite(c.get("eps")) is not None and math.isclose(e, float(c["eps"]), rel_tol=1e-9)
                    for d, n, e in keys)]


def constructed_note(rows: Sequence[dict[str, Any]], certified: Sequence[dict[str, Any]] = ()) -> str:
    """The caption's sentence on the constructed classifier's two appearances: attacked (fitted on
    ``n_fit`` points by ``analysis.evaluate``) and certified (fitted on the whole training set by
    ``lipschitz_construct.verify``), with the sizes from the records ("" when neither is there)."""
    attacked = [r for r in rows if r.get("method") == "constructed" and r.get("source") == "evaluate"
                and finite(r.get("test_lipschitz")) is not None and finite(r.get("test_adv_acc")) is not None]
    shown = certified_lines(attacked or rows, certified)
    parts = [f"attacked ({dataset_name(r['dataset'])}, star; `analysis.evaluate`): fitted on "
             f"{fmt_int(r.get('train_points'))} training points, attacked on {fmt_int(r.get('n_test_eval'))} "
             "test points (its worst attack)" for r in attacked]
    parts += [f"certified ({dataset_name(r['dataset'])}, dashed line; `lipschitz_construct.verify`): fitted on "
              f"{fmt_int(r.get('train_points'))} training points, certified on {fmt_int(r.get('n_test_eval'))} "
              "test points (exact robust accuracy, no Lipschitz estimate)" for r in shown]
    if not parts:
        return ""
    return ("The constructed classifier of the paper's proof: " + "; ".join(parts) + "."
            + (" Fitted on different training points, they are different classifiers, hence different robust "
               "accuracies." if attacked and shown else ""))


def lipschitz_vs_adversarial(rows: Sequence[dict[str, Any]], out_dir: str | os.PathLike,
                             certified: Sequence[dict[str, Any]] = ()) -> list[Path]:
    """Test local Lipschitz (x, log scale) against adversarial test accuracy (y), one panel per
    dataset and setting; filled markers without dropout, open markers with dropout. ``certified``:
    rows of ``lipschitz_construct.verify`` records, a dashed line at their certified test
    astuteness in the panels of their dataset and radius."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    pts = [r for r in rows if finite(r.get("test_lipschitz")) is not None
           and finite(r.get("test_adv_acc")) is not None]
    if not pts:
        raise FigureSkipped("no evaluated model with both a test Lipschitz estimate and an adversarial "
                            "accuracy (training or evaluate records)")
    panels: dict[tuple[str, str | None], list[dict]] = {}
    for r in pts:
        setting = r["setting"] if r["source"] == "training" else None
        panels.setdefault((r["dataset"], setting), []).append(r)
    # models evaluated outside a grid (e.g. the constructed classifier) join every grid panel of
    # their dataset; alone they get their own panel
    for (ds, setting) in list(panels):
        grids = [k for k in panels if k[0] == ds and k[1] is not None]
        if setting is None and grids:
            extra = panels.pop((ds, None))
            for k in grids:
                panels[k].extend(extra)
    keys = sorted(panels, key=lambda k: (list(DATASET_NAMES).index(k[0]) if k[0] in DATASET_NAMES else 99,
                                         str(k[1])))
    fig = new_figure(9.5 * len(keys), 6.4)
    axes = fig.subplots(1, len(keys), squeeze=False)[0]
    for ax, key in zip(axes, keys):
        items = []
        for r in panels[key]:
            m = str(r["method"])
            x, y = float(r["test_lipschitz"]), 100 * float(r["test_adv_acc"])
            drop = bool(r.get("dropout"))
            color = METHOD_COLORS.get(m, "#7f7f7f")
            ax.scatter([x], [y], s=170 if m == "constructed" else 60, marker=METHOD_MARKERS.get(m, "o"),
                       facecolors="none" if drop else color, edgecolors=color, linewidths=1.5, zorder=3)
            # colour, marker and fill say the method and dropout (legend); the label only says what
            # they cannot: the variant's parameter, or the name of a model from outside the grid
            if m in METHOD_MAIN_PARAM:
                key_, sym = METHOD_MAIN_PARAM[m]
                v = finite(json.loads(r.get("method_params") or "{}").get(key_))
                label = f"{sym}={v:g}" if v is not None else ""
            elif m == "constructed":
                label = f"constructed, fitted on {fmt_int(r.get('train_points'))} points"
            elif m in METHOD_COLORS:
                label = ""
            else:
                label = str(r["method_label"])
            items.append((x, y, label, color, 11 if m == "constructed" else MARK))  # "": an obstacle only
        xs = [float(r["test_lipschitz"]) for r in panels[key]]
        ax.set_xscale("log")
        ax.set_xlim(min(xs) / 1.5, max(xs) * 2.5)
        for c in certified_lines(panels[key], certified):
            y = 100 * float(c["certified_test_astuteness"])
            ax.axhline(y, color=METHOD_COLORS["constructed"], lw=1.0, ls="--", zorder=2)
            ax.annotate(f"constructed, certified (verify), fitted on {fmt_int(c.get('train_points'))} points",
                        (1.0, y), xycoords=("axes fraction", "data"), xytext=(-4, 2), textcoords="offset points",
                        ha="right", va="bottom", fontsize=7.5, color=METHOD_COLORS["constructed"])
        ax.set_ylim(-4, 104)
        ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("test local Lipschitz constant (mean over test points, log scale)")
        ax.set_ylabel("adversarial test accuracy (%)")
        ds, setting = key
        ax.set_title(f"{dataset_name(ds)}" + (f": grid {setting} (labels: RST λ, TRADES β)" if setting else ""),
                     fontsize=11)
        ax.grid(alpha=0.3, lw=0.5, which="both")
        ax._report_items = items  # labels are placed once the layout is final
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], ls="", marker=METHOD_MARKERS[m], color=METHOD_COLORS[m], markersize=7,
                      label=METHOD_NAMES.get(m, "Constructed (attacked)"))
               for m in list(METHODS) + ["constructed"]
               if any(str(r["method"]) == m for p in panels.values() for r in p)]
    if any(certified_lines(p, certified) for p in panels.values()):
        handles.append(Line2D([], [], ls="--", color=METHOD_COLORS["constructed"], lw=1.0,
                              label="Constructed (certified astuteness)"))
    if any(str(r["method"]) not in METHOD_COLORS for p in panels.values() for r in p):
        handles.append(Line2D([], [], ls="", marker="o", color="#7f7f7f", markersize=7,
                              label="other evaluated model (named)"))
    handles.append(Line2D([], [], ls="", marker="o", markerfacecolor="none", color="#555555",
                          label="open marker: with dropout"))
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 5), fontsize=9,
               frameon=False)
    fig.suptitle("Test local Lipschitz constant vs adversarial test accuracy\n(one point per model; "
                 "accuracy: worst case over the attacks run)", fontsize=10.5)
    for ax in axes:
        _place_labels(fig, ax, ax._report_items)
    return save_figure(fig, out_dir, "lipschitz_vs_adversarial")


__all__ = ["METHOD_COLORS", "METHOD_MARKERS", "certified_lines", "constructed_note", "lipschitz_vs_adversarial"]
