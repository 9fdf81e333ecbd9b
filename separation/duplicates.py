"""Exact duplicate images by hashing: O(N), before any distance work.

:func:`exact_duplicates` hashes every image of the training (and test) set, groups equal digests,
and keeps a group only after comparing its images' bytes -- a digest never decides equality on its
own. Groups whose images carry different labels are the points no classifier gets robustly right at
any radius (their separation is 0); same-label groups are harmless repeats. The search-based
separation finds the same cross-label training pairs (``SplitSummary.cross_class_duplicates``) but
only as nearest-neighbour pairs; the groups here list every copy.
"""
from __future__ import annotations

import dataclasses
import hashlib
from typing import Callable

import numpy as np

from .core.arrays import as_labels, as_points, common_storage

SPLITS = ("train", "test")
#: Bytes of the digest each image is grouped by (collisions are resolved by the byte comparison).
DIGEST_BYTES = 16


def _digest(row: bytes) -> bytes:
    return hashlib.blake2b(row, digest_size=DIGEST_BYTES).digest()


@dataclasses.dataclass(frozen=True)
class DuplicateGroup:
    """Identical images: ``members`` ``(split, index)`` pairs in split then index order, and their
    ``labels`` (class indices, in the same order)."""

    members: tuple[tuple[str, int], ...]
    labels: tuple[int, ...]

    @property
    def cross_label(self) -> bool:
        """Whether the copies carry more than one label."""
        return len(set(self.labels)) > 1


@dataclasses.dataclass(frozen=True)
class DuplicateReport:
    """Every group of two or more identical images of the given splits, in the order of their
    first member."""

    groups: tuple[DuplicateGroup, ...]

    @property
    def cross_label(self) -> tuple[DuplicateGroup, ...]:
        return tuple(g for g in self.groups if g.cross_label)

    @property
    def same_label(self) -> tuple[DuplicateGroup, ...]:
        return tuple(g for g in self.groups if not g.cross_label)

    def counts(self) -> dict[str, int]:
        """Groups and images in each kind: ``{"cross_label_groups": ..., "cross_label_images": ...,
        "same_label_groups": ..., "same_label_images": ...}``."""
        out = {}
        for kind, groups in (("cross_label", self.cross_label), ("same_label", self.same_label)):
            out[f"{kind}_groups"] = len(groups)
            out[f"{kind}_images"] = sum(len(g.members) for g in groups)
        return out

    def to_frame(self, paths: Callable[[str, int], str] | None = None):
        """One row per image of a group: ``group``, ``kind`` (cross-label / same-label), ``split``,
        ``index``, ``label``; with ``paths(split, index)`` also its source ``path``."""
        import pandas as pd

        rows = []
        for gi, g in enumerate(self.groups):
            kind = "cross-label" if g.cross_label else "same-label"
            for (split, index), label in zip(g.members, g.labels):
                row = {"group": gi, "kind": kind, "split": split, "index": index, "label": label}
                if paths is not None:
                    row["path"] = paths(split, index)
                rows.append(row)
        columns = ["group", "kind", "split", "index", "label"] + (["path"] if paths is not None else [])
        return pd.DataFrame(rows, columns=columns)


def exact_duplicates(x_train, y_train, x_test=None, y_test=None) -> DuplicateReport:
    """Groups of identical images within and across the training and test sets.

    Args:
        x_train: ``(n, *image_shape)`` uint8 or floats in [0, 1]; ``y_train``: ``(n,)`` labels.
        x_test, y_test: optional second split, compared with itself and with the training set.

    Images are equal when their stored values are (floats that are exact 8-bit images count as
    those bytes). One pass hashes every image; only images with equal digests are compared, byte
    for byte, so memory beyond the inputs is ``DIGEST_BYTES`` per image.
    """
    xs = [as_points(x_train, "x_train")]
    ys = [as_labels(y_train, len(xs[0]), "y_train")]
    if x_test is not None:
        xs.append(as_points(x_test, "x_test"))
        ys.append(as_labels(y_test, len(xs[1]), "y_test"))
    xs, _ = common_storage(*xs)
    by_digest: dict[bytes, list[tuple[int, int]]] = {}
    for s, x in enumerate(xs):
        for i in range(len(x)):
            by_digest.setdefault(_digest(x[i].tobytes()), []).append((s, i))
    groups = []
    for members in by_digest.values():
        while len(members) > 1:  # split a digest's images into classes of equal bytes
            first = xs[members[0][0]][members[0][1]]
            equal = [np.array_equal(xs[s][i], first) for s, i in members]
            same = [m for m, e in zip(members, equal) if e]
            members = [m for m, e in zip(members, equal) if not e]
            if len(same) > 1:
                groups.append(DuplicateGroup(members=tuple((SPLITS[s], i) for s, i in same),
                                             labels=tuple(int(ys[s][i]) for s, i in same)))
    groups.sort(key=lambda g: (SPLITS.index(g.members[0][0]), g.members[0][1]))
    return DuplicateReport(groups=tuple(groups))


__all__ = ["DIGEST_BYTES", "DuplicateGroup", "DuplicateReport", "exact_duplicates"]
