"""The paper's figures from stored records, as PNG (for reading) and PDF (for papers).

- :func:`separation_histograms` -- train--train and test--train distance histograms per dataset,
  the minimum and 2 eps marked;
- :func:`lipschitz_vs_adversarial` -- test local Lipschitz constant against adversarial test
  accuracy, one point per training run (and the constructed classifier);
- :func:`closest_pairs_grid` -- images of the closest cross-class pairs and of duplicates. The only
  artefact that reads data (:func:`separation.load_dataset`); without the data it is skipped with
  a message, never an error.

Figures are drawn on :class:`matplotlib.figure.Figure` with the Agg canvas (no pyplot state, no
display needed) and written atomically without timestamps, so unchanged records give
byte-identical files.
"""
from __future__ import annotations

import io
import json
import logging
import os
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from .records import StoredRecord, as_float, dig, write_artefact
from .tables import DATASET_NAMES, METHOD_MAIN_PARAM, METHOD_NAMES, METHOD_ORDER, NORM_NAMES, dataset_name

log = logging.getLogger(__name__)

METHOD_COLORS = {"natural": "#1f77b4", "gr": "#ff7f0e", "llr": "#2ca02c", "at": "#d62728",
                 "rst": "#9467bd", "trades": "#8c564b", "constructed": "#111111"}
METHOD_MARKERS = {"natural": "o", "gr": "s", "llr": "D", "at": "^", "rst": "v", "trades": "P",
                  "constructed": "*"}


class FigureSkipped(Exception):
    """A figure that cannot be drawn from what is stored (the message says why and what to do)."""


def new_figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig, out_dir: str | os.PathLike, stem: str, *, dpi: int = 150) -> list[Path]:
    """``<stem>.png`` and ``<stem>.pdf``, atomically, without creation dates in the metadata."""
    out = []
    for fmt, meta in (("png", {"Software": None}), ("pdf", {"CreationDate": None, "Producer": None,
                                                           "Creator": None})):
        buf = io.BytesIO()
        fig.savefig(buf, format=fmt, dpi=dpi, metadata=meta)
        out.append(write_artefact(Path(out_dir) / f"{stem}.{fmt}", buf.getvalue()))
    log.info("wrote %s.png/.pdf", Path(out_dir) / stem)
    return out


# -- distance histograms ------------------------------------------------------------------------

def _eps_of(rec: StoredRecord) -> float | None:
    keys = [as_float(k) for k in (dig(rec.result, "train", "eps") or {})]
    keys = [k for k in keys if k is not None]
    if keys:
        return keys[0]
    e = rec.config.get("eps")
    return as_float(e[0] if isinstance(e, list) and e else e)


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


def separation_histograms(records: Sequence[StoredRecord], out_dir: str | os.PathLike, *,
                          norm: str) -> list[Path]:
    """One figure per norm: a row per dataset, train--train and test--train columns."""
    recs = [r for r in records if (r.config.get("norm") or r.result.get("norm")) == norm]
    usable = []
    for r in recs:
        a = r.arrays()
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
        ds = dataset_name(r.config.get("dataset") or r.folder.parent.name)
        eps = _eps_of(r)
        sub = r.config.get("subset")
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


# -- Lipschitz against adversarial accuracy -----------------------------------------------------

def _place_labels(fig, ax, items: list[tuple[float, float, str, str]], fontsize: float = 7.5) -> None:
    """Annotate points without overlapping labels: for each label try a few offsets around its
    point and keep the first whose box is free (boxes estimated in display pixels)."""
    fig.draw_without_rendering()  # settle the constrained layout before measuring
    px_per_pt = fig.dpi / 72.0
    char_w, line_h = 0.58 * fontsize * px_per_pt, 1.25 * fontsize * px_per_pt
    placed: list[tuple[float, float, float, float]] = []
    pts = [tuple(ax.transData.transform((x, y))) for x, y, _, _ in items]
    for (px, py) in pts:  # the markers themselves are obstacles too
        placed.append((px - 7, py - 7, px + 7, py + 7))
    order = sorted(range(len(items)), key=lambda i: (-pts[i][1], pts[i][0]))
    for i in order:
        x, y, text, color = items[i]
        px, py = pts[i]
        w, h = char_w * len(text), line_h
        best = None
        for dx, dy in ((6, 2), (6, -h - 2), (-w - 6, 2), (-w - 6, -h - 2), (6, h + 2), (6, -2 * h - 4),
                       (-w - 6, h + 2), (-w - 6, -2 * h - 4), (6, 2 * h + 4), (6, -3 * h - 6)):
            box = (px + dx, py + dy, px + dx + w, py + dy + h)
            if not any(box[0] < b[2] and b[0] < box[2] and box[1] < b[3] and b[1] < box[3] for b in placed):
                best = (dx, dy, box)
                break
        if best is None:
            best = (6, 2, (px + 6, py + 2, px + 6 + w, py + 2 + h))
        dx, dy, box = best
        placed.append(box)
        ax.annotate(text, (x, y), xytext=(dx / px_per_pt, dy / px_per_pt), textcoords="offset points",
                    fontsize=fontsize, color=color, ha="left", va="bottom",
                    arrowprops=None if -h - 3 <= dy <= 3 else
                    {"arrowstyle": "-", "color": color, "lw": 0.5, "alpha": 0.6})


def lipschitz_vs_adversarial(rows: Sequence[dict[str, Any]], out_dir: str | os.PathLike) -> list[Path]:
    """Test local Lipschitz (x, log scale) against adversarial test accuracy (y), one panel per
    dataset and setting; filled markers without dropout, open markers with dropout."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    pts = [r for r in rows if as_float(r.get("test_lipschitz")) is not None
           and as_float(r.get("test_adv_acc")) is not None]
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
                v = as_float(json.loads(r.get("method_params") or "{}").get(key_))
                label = f"{sym}={v:g}" if v is not None else ""
            elif m in METHOD_COLORS:
                label = ""
            else:
                label = str(r["method_label"])
            if label:
                items.append((x, y, label, color))
        xs = [float(r["test_lipschitz"]) for r in panels[key]]
        ax.set_xscale("log")
        ax.set_xlim(min(xs) / 1.5, max(xs) * 2.5)
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
               for m in list(METHOD_ORDER) + ["constructed"]
               if any(str(r["method"]) == m for p in panels.values() for r in p)]
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


# -- image grids of close pairs -----------------------------------------------------------------

def closest_train_pairs(distances: np.ndarray, neighbors: np.ndarray, k: int) -> list[tuple[int, int, float]]:
    """The ``k`` closest distinct train--train pairs (a symmetric pair once)."""
    order = np.argsort(distances, kind="stable")
    out, seen = [], set()
    for i in order:
        j = int(neighbors[i])
        if j < 0 or not np.isfinite(distances[i]):
            continue
        key = (min(int(i), j), max(int(i), j))
        if key in seen:
            continue
        seen.add(key)
        out.append((int(i), j, float(distances[i])))
        if len(out) == k:
            break
    return out


def closest_test_pairs(distances: np.ndarray, neighbors: np.ndarray, k: int) -> list[tuple[int, int, float]]:
    order = np.argsort(distances, kind="stable")
    return [(int(i), int(neighbors[i]), float(distances[i])) for i in order[:k]
            if neighbors[i] >= 0 and np.isfinite(distances[i])]


DatasetLoader = Callable[[StoredRecord], Any]


def load_record_dataset(rec: StoredRecord, data_root: str | os.PathLike | None):
    """The exact data ``rec`` was computed on (same subset), checked against its fingerprint;
    raises :class:`FigureSkipped` with a clear message otherwise."""
    from separation import load_dataset
    from separation.datasets import DatasetNotFoundError, default_data_root

    cfg = rec.config
    name = cfg.get("dataset")
    if not name:
        raise FigureSkipped(f"{rec.label}: the record does not name its dataset")
    folder = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}.get(name)
    root = Path(data_root) if data_root is not None else default_data_root()
    where = data_root if data_root is not None else "the default data root (no --data-root given)"
    if folder and not (root / folder).is_dir():
        # fail fast, before torchvision is imported (seconds), when the folder is plainly absent
        raise FigureSkipped(f"{name} images are not available: no {folder}/ under {where} (pass --data-root "
                            "to a folder in torchvision's layout; make data creates ./data)")
    try:
        if name == "npz":
            ds = load_dataset("npz", npz_path=cfg.get("source"))
        else:
            ds = load_dataset(name, root=data_root)
    except (DatasetNotFoundError, FileNotFoundError, PermissionError, ValueError, RuntimeError) as exc:
        raise FigureSkipped(f"{name} images are not available: {exc}") from None
    if cfg.get("subset"):
        ds = ds.subset(int(cfg["subset"]), seed=int(cfg.get("seed") or 0))
    want = cfg.get("data_fingerprint")
    if want and ds.fingerprint() != want:
        raise FigureSkipped(f"{name}: the data found under {data_root or 'the default data root'} is not "
                            f"the data {rec.label} was computed on (fingerprint differs); skipped")
    return ds


def _image(x: np.ndarray) -> tuple[np.ndarray, dict]:
    x = np.asarray(x)
    if x.ndim == 3 and x.shape[0] in (1, 3):
        x = x[0] if x.shape[0] == 1 else np.transpose(x, (1, 2, 0))
    if x.dtype == np.uint8:
        vmax = 255
    else:
        vmax = 1.0
    return x, ({"cmap": "gray", "vmin": 0, "vmax": vmax} if x.ndim == 2 else {})


def closest_pairs_grid(rec: StoredRecord, dataset, out_dir: str | os.PathLike, *, k: int = 8) -> list[Path]:
    """Closest train--train and test--train cross-class pairs, and duplicates, as image pairs
    (upper image: the point; lower: its nearest training point of another class)."""
    a = rec.arrays()
    if "train_distances" not in a or "train_neighbors" not in a:
        raise FigureSkipped(f"{rec.label}: no per-point arrays (arrays.npz) to find the pairs")
    classes = list(getattr(dataset, "classes", []) or [])

    def cname(y: int) -> str:
        return classes[y] if 0 <= y < len(classes) else str(y)

    blocks: list[tuple[str, list[tuple[str, np.ndarray, str, np.ndarray, str]]]] = []
    xtr, ytr = dataset.x_train, dataset.y_train
    pairs = closest_train_pairs(a["train_distances"], a["train_neighbors"], k)
    blocks.append(("Closest train–train pairs of different classes",
                   [(f"train #{i}\n{cname(int(ytr[i]))}", xtr[i], f"train #{j}\n{cname(int(ytr[j]))}", xtr[j],
                     f"d = {d:.3f}") for i, j, d in pairs]))
    if "test_distances" in a and getattr(dataset, "x_test", None) is not None:
        xte, yte = dataset.x_test, dataset.y_test
        tp = closest_test_pairs(a["test_distances"], a["test_neighbors"], k)
        blocks.append(("Closest test–train pairs of different classes",
                       [(f"test #{i}\n{cname(int(yte[i]))}", xte[i], f"train #{j}\n{cname(int(ytr[j]))}", xtr[j],
                         f"d = {d:.3f}") for i, j, d in tp]))
    dups = []
    for split, x_s, y_s in (("train", xtr, ytr), ("test", getattr(dataset, "x_test", None),
                                                    getattr(dataset, "y_test", None))):
        for p in (dig(rec.result, split, "cross_class_duplicates") or []):
            i, j = int(p["index"]), int(p["neighbor"])
            dups.append((f"{split} #{i}\n{cname(int(y_s[i]))}", x_s[i], f"train #{j}\n{cname(int(ytr[j]))}",
                         xtr[j], "identical"))
    n_dups = len(dups)
    if dups:
        blocks.append((f"Cross-class duplicates (identical images, different labels): {n_dups} in all",
                       dups[:k]))
    ttd = a.get("test_train_duplicates")
    if ttd is not None and len(ttd) and getattr(dataset, "x_test", None) is not None:
        same = [(int(t), int(s)) for t, s in np.asarray(ttd).reshape(-1, 2)]
        blocks.append((f"Test images that also occur in the training set: {len(same)} in all",
                       [(f"test #{t}\n{cname(int(dataset.y_test[t]))}", dataset.x_test[t],
                         f"train #{s}\n{cname(int(ytr[s]))}", xtr[s], "identical") for t, s in same[:k]]))
    absent = []
    if not dups:
        absent.append("no cross-class duplicates (identical images with different labels)")
    if ttd is not None and not len(ttd):
        absent.append("no test image identical to a training image")
    ncol = max(len(b[1]) for b in blocks)
    heights = []
    for _ in blocks:
        heights += [0.35, 1, 1]
    fig = new_figure(max(1.35 * ncol, 6.0), sum(1.45 * h for h in heights) + 0.5)
    gs = fig.add_gridspec(len(heights), ncol, height_ratios=heights)
    row = 0
    for title, items in blocks:
        tax = fig.add_subplot(gs[row, :])
        tax.set_axis_off()
        tax.text(0.0, 0.2, title, fontsize=11, fontweight="bold", transform=tax.transAxes)
        for c in range(ncol):
            for rr in (1, 2):
                ax = fig.add_subplot(gs[row + rr, c])
                ax.set_xticks([])
                ax.set_yticks([])
                if c >= len(items):
                    ax.set_axis_off()
                    continue
                top_t, top_x, bot_t, bot_x, dist = items[c]
                img, kw = _image(top_x if rr == 1 else bot_x)
                ax.imshow(img, interpolation="nearest", **kw)
                ax.set_title(top_t if rr == 1 else bot_t, fontsize=7)
                if rr == 2:
                    ax.set_xlabel(dist, fontsize=8)
        row += 3
    if absent:
        fig.supxlabel("Duplicates: " + "; ".join(absent) + ".", fontsize=9)
    norm = rec.config.get("norm") or rec.result.get("norm")
    ds_name = dataset_name(rec.config.get("dataset"))
    fig.suptitle(f"{ds_name}, {NORM_NAMES.get(norm, norm)}: nearest points of different classes\n"
                 "(upper: the point, lower: its nearest other-class training point)", fontsize=10)
    ds_key = rec.config.get("dataset") or rec.folder.parent.name
    return save_figure(fig, out_dir, f"closest_pairs_{ds_key}_{rec.folder.name}", dpi=110)
