"""Images of the closest cross-class pairs and of duplicates. The only artefact that reads data
(:func:`separation.load_dataset`); without the data it is skipped with a message, never an error."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from separation import SeparationRecord

from .fig_base import FigureSkipped, new_figure, save_figure
from .format import NORM_NAMES, dataset_name


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


def load_record_dataset(rec: SeparationRecord, data_root: str | os.PathLike | None):
    """The exact data ``rec`` was computed on (same subset), checked against its fingerprint;
    raises :class:`FigureSkipped` with a clear message otherwise."""
    from separation import load_dataset
    from separation.core.datasets import DatasetNotFoundError, default_data_root

    data = rec.config.data
    name = data.dataset
    folder = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}.get(name)
    root = Path(data_root) if data_root is not None else default_data_root()
    where = data_root if data_root is not None else "the default data root (no --data-root given)"
    if folder and not (root / folder).is_dir():
        # fail fast, before torchvision is imported (seconds), when the folder is plainly absent
        raise FigureSkipped(f"{name} images are not available: no {folder}/ under {where} (pass --data-root "
                            "to a folder in torchvision's layout, e.g. ../shared/data)")
    try:
        if name == "npz":
            ds = load_dataset("npz", npz_path=rec.meta.data_source if rec.meta else None)
        else:
            ds = load_dataset(name, root=data_root)
    except (DatasetNotFoundError, FileNotFoundError, PermissionError, ValueError, RuntimeError) as exc:
        raise FigureSkipped(f"{name} images are not available: {exc}") from None
    if data.subset:
        ds = ds.subset(int(data.subset), seed=int(data.seed))
    if ds.spec(with_test=rec.result.test is not None).fingerprint != data.fingerprint:
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


def closest_pairs_grid(rec: SeparationRecord, dataset, out_dir: str | os.PathLike, *, k: int = 8) -> list[Path]:
    """Closest train--train and test--train cross-class pairs, and duplicates, as image pairs
    (upper image: the point; lower: its nearest training point of another class)."""
    a = rec.load_arrays()
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
        summary = rec.result.split(split)
        for p in (summary.cross_class_duplicates if summary is not None else []):
            i, j = p.index, p.neighbor
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
    norm = rec.config.norm
    ds_name = dataset_name(rec.config.data.dataset)
    fig.suptitle(f"{ds_name}, {NORM_NAMES.get(norm, norm)}: nearest points of different classes\n"
                 "(upper: the point, lower: its nearest other-class training point)", fontsize=10)
    return save_figure(fig, out_dir, pairs_stem(rec), dpi=110)


def pairs_stem(rec: SeparationRecord) -> str:
    """The file stem of a record's image grid."""
    return f"closest_pairs_{rec.config.data.dataset}_{rec.folder.name}"


__all__ = ["closest_pairs_grid", "closest_test_pairs", "closest_train_pairs", "load_record_dataset", "pairs_stem"]
