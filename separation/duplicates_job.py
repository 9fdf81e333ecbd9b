"""The job of ``python -m separation.find_duplicates``: exact duplicate images of a dataset, as a record."""
from __future__ import annotations

import argparse
import hashlib
import json
import os
from typing import Any

import numpy as np

from .core.datasets import Dataset, default_data_root
from .core.pipeline import Computed, RecordJob, add_data_arguments
from .duplicate_record import DuplicateImage, DuplicatesConfig, DuplicatesRecord, DuplicateSet, DuplicatesSummary
from .duplicates import exact_duplicates

#: Groups listed by the printed summary (the record holds them all).
SHOWN = 10


def relative_files(data: Dataset, root) -> tuple[list[str] | None, list[str] | None]:
    """The source files of the training and test images relative to ``root`` (None without files)."""
    rel = (lambda files: None if files is None else [os.path.relpath(f, root) for f in files])
    return rel(data.train_files), rel(data.test_files)


def format_duplicates(record: DuplicatesRecord) -> str:
    """The counts and the first :data:`SHOWN` groups of each kind."""
    r = record.result
    c = r.counts
    lines = [f"dataset {record.config.data.dataset}: {c['cross_label_groups']} cross-label group(s) "
             f"({c['cross_label_images']} images), {c['same_label_groups']} same-label group(s) "
             f"({c['same_label_images']} images)"]
    for kind in ("cross-label", "same-label"):
        groups = r.of_kind(kind)
        for g in groups[:SHOWN]:
            lines.append(f"  {kind}: " + ", ".join(
                f"{im.split} {im.index} ({r.classes[im.label]}{', ' + im.path if im.path else ''})" for im in g.images))
        if len(groups) > SHOWN:
            lines.append(f"  ... {len(groups) - SHOWN} more {kind} group(s) in the record (to_frame())")
    return "\n".join(lines)


class DuplicatesJob(RecordJob):
    """``python -m separation.find_duplicates``: every group of identical images (hashing, O(N))."""

    module = "separation.find_duplicates"
    description = ("Exact duplicate images of a dataset, found by hashing and verified byte for byte: groups within "
                   "and across the training and test splits, cross-label (no classifier gets them robustly right) "
                   "and same-label, with their source files.")
    record_type = DuplicatesRecord
    out_kind = "duplicates"
    always_shown = ("dataset",)

    def add_data_arguments(self, p: argparse.ArgumentParser) -> None:
        add_data_arguments(p, norms=())

    def add_arguments(self, p: argparse.ArgumentParser) -> None:
        pass

    def configure(self, args: argparse.Namespace, data: Dataset) -> DuplicatesConfig:
        train, test = relative_files(data, self._root(args))
        files = "" if train is None else hashlib.sha256(json.dumps([train, test]).encode()).hexdigest()
        return DuplicatesConfig(data=data.spec(with_test=True, subset=args.subset, seed=args.seed), files=files)

    @staticmethod
    def _root(args: argparse.Namespace):
        return args.data_root if args.data_root is not None else default_data_root()

    def compute(self, args: argparse.Namespace, data: Dataset, config: DuplicatesConfig) -> Computed:
        import time

        t0 = time.perf_counter()
        report = exact_duplicates(data.x_train, data.y_train, data.x_test, data.y_test)
        files = dict(zip(("train", "test"), relative_files(data, self._root(args))))
        x = {"train": data.x_train, "test": data.x_test}
        sets = [DuplicateSet(kind="cross-label" if g.cross_label else "same-label",
                             images=[DuplicateImage(split, index, label, None if files[split] is None else files[split][index])
                                     for (split, index), label in zip(g.members, g.labels)])
                for g in report.cross_label + report.same_label]
        firsts = [x[g.members[0][0]][g.members[0][1]] for g in report.cross_label]
        images = np.stack(firsts) if firsts else np.zeros((0,) + tuple(data.image_shape), dtype=data.x_train.dtype)
        summary = DuplicatesSummary(counts=report.counts(), classes=list(data.classes), groups=sets)
        return Computed(summary, {"duplicates": time.perf_counter() - t0}, {"cross_label_images": images})

    def values_of(self, config: DuplicatesConfig) -> dict[str, Any]:
        d = config.data
        return {"dataset": d.dataset, "subset": d.subset, "seed": d.seed if d.subset else 0}

    def summary(self, record: DuplicatesRecord) -> str:
        return format_duplicates(record)


__all__ = ["DuplicatesJob", "format_duplicates", "relative_files"]
