"""The duplicates record (kind ``duplicates``): every group of identical images of a dataset, as a
table (counts, indices, labels, source files) and as an image grid of the cross-label groups.

The groups come from :func:`~separation.duplicates.exact_duplicates` (hashing, verified byte for
byte). The record keeps one image of each cross-label group in ``arrays.npz``
(``cross_label_images``, ``(groups, C, H, W)`` as the dataset stores them), so that its grid is
drawn from the record alone (:meth:`DuplicatesRecord.figure`).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from .core.records import DataSpec, Record

#: The kinds of group, in the order they are listed.
KINDS = ("cross-label", "same-label")


@dataclasses.dataclass
class DuplicateImage:
    """One copy: its split (``train``/``test``), index, label and source file (relative to the
    data root; None for datasets not read from image files)."""

    split: str
    index: int
    label: int
    path: str | None = None


@dataclasses.dataclass
class DuplicateSet:
    """Identical images; ``kind``: ``cross-label`` (more than one label) or ``same-label``."""

    kind: str
    images: list[DuplicateImage]


@dataclasses.dataclass
class DuplicatesSummary:
    """Counts (groups and images of each kind), the class names and every group, cross-label ones first."""

    counts: dict[str, int]
    classes: list[str]
    groups: list[DuplicateSet]

    def of_kind(self, kind: str) -> list[DuplicateSet]:
        return [g for g in self.groups if g.kind == kind]


@dataclasses.dataclass(frozen=True)
class DuplicatesConfig:
    """Everything that changes the record: the data (both splits) and ``files``, the sha256 of the
    images' source file names relative to the data root ("" for data not read from image files)."""

    data: DataSpec
    files: str = ""


@dataclasses.dataclass
class DuplicatesRecord(Record):
    """Kind ``duplicates``: the groups in ``result``, one image per cross-label group in ``arrays.npz``."""

    KIND = "duplicates"

    config: DuplicatesConfig
    result: DuplicatesSummary

    @classmethod
    def folder_name(cls, config: DuplicatesConfig, key: str) -> str:
        return f"{config.data.dataset}/duplicates{config.data.subset_suffix()}-{key[:8]}"

    def to_frame(self):
        """One row per image of a group: ``group``, ``kind``, ``split``, ``index``, ``label``,
        ``class`` (its name) and ``path``; cross-label groups first."""
        import pandas as pd

        names = self.result.classes
        rows = [{"group": g, "kind": s.kind, "split": im.split, "index": im.index, "label": im.label,
                 "class": names[im.label] if 0 <= im.label < len(names) else str(im.label), "path": im.path}
                for g, s in enumerate(self.result.groups) for im in s.images]
        return pd.DataFrame(rows, columns=["group", "kind", "split", "index", "label", "class", "path"])

    def figure(self, *, columns: int = 8, max_groups: int = 64):
        """A matplotlib figure: the image of each cross-label group (at most ``max_groups``), titled
        with its copies' classes; drawn from the record's arrays (nothing recomputed)."""
        import matplotlib.pyplot as plt

        images = self.load_arrays().get("cross_label_images", np.zeros((0,)))
        groups = self.result.of_kind("cross-label")[:max_groups]
        n = len(groups)
        rows = max(1, -(-n // columns))
        fig, axes = plt.subplots(rows, columns, figsize=(1.6 * columns, 1.9 * rows), squeeze=False)
        for ax in axes.flat:
            ax.axis("off")
        for k, (ax, g) in enumerate(zip(axes.flat, groups)):
            img = np.asarray(images[k])
            img = img.astype(np.float64) / 255.0 if img.dtype == np.uint8 else img
            ax.imshow(img[0] if img.shape[0] == 1 else img.transpose(1, 2, 0), cmap="gray", vmin=0, vmax=1)
            names = sorted({self.result.classes[im.label] for im in g.images})
            ax.set_title("\n".join(names[:3]) + ("\n..." if len(names) > 3 else ""), fontsize=7)
        if not n:
            axes.flat[0].text(0.5, 0.5, "no cross-label duplicates", ha="center", va="center")
        fig.suptitle(f"{self.config.data.dataset}: {n} cross-label duplicate group(s)", fontsize=9)
        return fig


__all__ = ["DuplicateImage", "DuplicateSet", "DuplicatesConfig", "DuplicatesRecord", "DuplicatesSummary", "KINDS"]
