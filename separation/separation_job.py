"""The job of ``python -m separation.compute``: its options, its configuration, its work, its summary."""
from __future__ import annotations

import argparse
from typing import Any

from .cluster import add_cluster_arguments, cluster_engine, cluster_engine_name
from .core.cli import integer, nonnegative_float, positive_eps_float, positive_float, progress_of
from .core.datasets import Dataset
from .core.errors import UsageError
from .core.paper import default_eps, radius
from .core.pipeline import Computed, RecordJob
from .core.threat import ThreatModel
from .engines import ENGINES
from .search import compute_separation
from .separation_record import SeparationConfig, SeparationRecord, SeparationSummary

#: What a separation run can compute: train--train (always), test--train, test--test.
SPLITS = ("train", "test", "test-test")
#: The summary's timing entries, in order (a cluster run adds none of its own).
STEPS = ("train_train", "test_train", "test_test", "knn", "class_distances")


def format_summary(summary: SeparationSummary, dataset: str) -> str:
    """A short human-readable table of a separation summary (the ratios to ``2 eps`` for the radii of
    the record: ``--eps``, else the dataset's conventional radius in this norm, :data:`~separation.core.paper.RADII`)."""
    lines = [f"dataset {dataset}  norm {summary.norm}  engine {summary.engine}  r = {summary.r:.6g}",
             f"{'split':<9} {'n':>7} {'min':>10} {'mean':>10} {'min excl. dup':>14} {'dups':>5}"]
    for name in SPLITS:
        s = summary.split(name)
        if s is None:
            continue
        excl = "-" if s.min_excluding_duplicates is None else f"{s.min_excluding_duplicates:.6g}"
        lines.append(f"{name:<9} {s.n:>7} {s.min:>10.6g} {s.mean:>10.6g} {excl:>14} "
                     f"{len(s.cross_class_duplicates):>5}")
        for e, v in s.eps.items():
            lines.append(f"          eps={e}: separation/2eps = {v.ratio_to_2eps:.3g}, points closer than 2eps: "
                         f"{100 * v.fraction_below_2eps:.3g}%")
    if not summary.train.eps:
        lines.append(f"          no eps: {radius(dataset, summary.norm).source}")
    c = summary.cluster
    if c is not None:
        lines.append(f"cluster {c.scheduler}: {c.workers} workers ({c.threads} threads, engine {c.inner}), "
                     f"{c.shards} block pairs: {c.computed} computed, {c.shards - c.computed} reused from shards")
    return "\n".join(lines)


def _random_labels_seed(labels: str) -> int | None:
    """The seed of ``random(seed=S)`` labels (the random-label control), else None."""
    if labels.startswith("random(seed=") and labels.endswith(")"):
        return int(labels[len("random(seed="):-1])
    return None


class SeparationJob(RecordJob):
    """``python -m separation.compute``: exact separation of a dataset, written as a separation record."""

    module = "separation.compute"
    description = ("Exact separation: the distance from every point to the nearest training point of another "
                   "class (train-train), from every test point to the training set (test), and optionally to "
                   "the other test points (test-test).")
    record_type = SeparationRecord
    out_kind = "separation"

    def add_arguments(self, p: argparse.ArgumentParser) -> None:
        p.add_argument("--splits", nargs="+", default=None, choices=SPLITS, metavar="SPLIT",
                       help="what to compute: train (train-train, always done), test (test-train), "
                            "test-test (default: train test, or train alone for data without a test split)")
        p.add_argument("--eps", type=positive_eps_float, nargs="+", default=None,
                       help="attack radii to compare with (default: the dataset's conventional radius in this norm: "
                            "the paper's for l-inf; none where no radius is conventional)")
        p.add_argument("--engine", default="auto", choices=["auto", *ENGINES, "dask"],
                       help="nearest-neighbour engine (default: auto = fastest available; dask: on the cluster "
                            "of --scheduler); every engine is exact")
        add_cluster_arguments(p)
        p.add_argument("--exclude-below", type=nonnegative_float, default=0.0,
                       help="pairs at or below this distance count as duplicates and are left out of "
                            "the '*_excluding_duplicates' statistics (default 0: exact duplicates)")
        p.add_argument("--near-duplicates", type=positive_float, default=None,
                       help="also list cross-class pairs closer than this distance")
        p.add_argument("--k", type=integer(1, 1024), default=1,
                       help="also store the K nearest other-class training points of every point (default 1)")
        p.add_argument("--class-matrix", action="store_true",
                       help="also compute the nearest training point of every class (the class x class matrix)")
        p.add_argument("--random-labels", type=integer(0), default=None, metavar="SEED",
                       help="the random-label control: permute the labels under SEED first")

    def configure(self, args: argparse.Namespace, data: Dataset) -> SeparationConfig:
        cluster_engine_name(args)  # contradicting engine options are a bad call, found before any work
        asked = args.splits if args.splits is not None else (["train", "test"] if data.x_test is not None else ["train"])
        splits = tuple(s for s in SPLITS if s == "train" or s in asked)
        conventional = default_eps(args.dataset, args.norm)
        eps = tuple(args.eps) if args.eps is not None else ((conventional,) if conventional is not None else ())
        labels = "given"
        if args.random_labels is not None:
            labels = f"random(seed={args.random_labels})"
        for e in eps:
            ThreatModel(args.norm, e).check_dimension(int(data.x_train[0].size))
        if data.x_test is None and len(splits) > 1:
            raise UsageError(f"--splits {' '.join(splits[1:])} needs a test split, and {args.dataset} has none; "
                             "pass --splits train.")
        return SeparationConfig(
            data=data.spec(with_test=len(splits) > 1, subset=args.subset, seed=args.seed, labels=labels),
            norm=args.norm, splits=splits, eps=eps, exclude_below=args.exclude_below,
            near_duplicates=args.near_duplicates, k=args.k, class_matrix=args.class_matrix)

    def load(self, args: argparse.Namespace) -> Dataset:
        """With ``--random-labels SEED``: the same images, labels permuted (the random-label control)."""
        data = super().load(args)
        return data if args.random_labels is None else data.with_random_labels(args.random_labels)

    def compute(self, args: argparse.Namespace, data: Dataset, config: SeparationConfig) -> Computed:
        with_test = len(config.splits) > 1
        with cluster_engine(args) as engine:  # a cluster is checked (and connected) before any work
            res = compute_separation(data.x_train, data.y_train, data.x_test if with_test else None,
                                     data.y_test if with_test else None, norm=config.norm, engine=engine,
                                     exclude_below=config.exclude_below, test_test="test-test" in config.splits,
                                     k=config.k, class_distances=config.class_matrix,
                                     progress=progress_of(args))
            summary = res.summary(config.eps, near_duplicate_threshold=config.near_duplicates)
            if hasattr(engine, "cluster_run"):  # workers and shards of a cluster run (not part of the key)
                summary.cluster = engine.cluster_run()
        return Computed(summary, res.seconds, res.arrays())

    def values_of(self, config: SeparationConfig) -> dict[str, Any]:
        d = config.data
        return {"dataset": d.dataset, "norm": config.norm, "subset": d.subset, "seed": d.seed if d.subset else 0,
                "splits": None if config.splits == ("train", "test") else list(config.splits),
                "eps": list(config.eps) or None, "k": config.k,
                "class_matrix": config.class_matrix, "random_labels": _random_labels_seed(d.labels)}

    def summary(self, record: SeparationRecord) -> str:
        return format_summary(record.result, record.config.data.dataset)


__all__ = ["SPLITS", "SeparationJob", "format_summary"]
