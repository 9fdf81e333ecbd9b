"""``python -m separation.compute``: exact separation of a dataset, written as a result record.

Examples::

    python -m separation.compute --dataset digits --norm linf
    python -m separation.compute --dataset mnist --norm linf --data-root ./data
    python -m separation.compute --dataset npz --npz my_data.npz --norm l2 --eps 0.5 1.0
    python -m separation.compute --dataset mnist --norm linf --engine dask --scheduler local:2

Exit status: 0 on success, 2 on bad input (one line on stderr, nothing written), 130 on Ctrl-C.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from . import (SeparationConfig, SeparationRecord, SeparationResult, SeparationSummary, ThreatModel, __version__,
               compute_separation)
from .cli import (UsageError, add_data_arguments, add_record_arguments, integer, nonnegative_float, positive_float,
                  print_outcome, run_main, setup_logging, writable_folder)
from .cluster import add_cluster_arguments, cluster_engine
from .datasets import DatasetNotFoundError, load_dataset
from .engines import ENGINES
from .paper import default_eps
from .records import RecordError, load_record, reusable, run_metadata, write_record

log = logging.getLogger("separation.compute")

SPLITS = ("train", "test", "test-test")


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m separation.compute",
        description="Exact separation: the distance from every point to the nearest training point of "
                    "another class (train-train), from every test point to the training set (test), and "
                    "optionally to the other test points (test-test).", add_help=add_help)
    add_data_arguments(p)
    p.add_argument("--splits", nargs="+", default=["train", "test"], choices=SPLITS, metavar="SPLIT",
                   help="what to compute: train (train-train, always done), test (test-train), "
                        "test-test (default: train test)")
    p.add_argument("--eps", type=positive_float, nargs="+", default=None,
                   help="attack radii to compare with (default: the paper's eps for the dataset)")
    p.add_argument("--engine", default="auto", choices=["auto", *ENGINES, "dask"],
                   help="nearest-neighbour engine (default: auto = fastest available; dask: on the cluster "
                        "of --scheduler); every engine is exact")
    add_cluster_arguments(p)
    p.add_argument("--exclude-below", type=nonnegative_float, default=0.0,
                   help="pairs at or below this distance count as duplicates and are left out of "
                        "the '*_excluding_duplicates' statistics (default 0: exact duplicates)")
    p.add_argument("--near-duplicates", type=positive_float, default=None,
                   help="also list cross-class pairs closer than this distance")
    p.add_argument("--k", type=integer(1), default=1,
                   help="also store the K nearest other-class training points of every point (default 1)")
    p.add_argument("--class-matrix", action="store_true",
                   help="also compute the nearest training point of every class (the class x class matrix)")
    p.add_argument("--random-labels", type=integer(0), default=None, metavar="SEED",
                   help="the random-label control: permute the labels under SEED first")
    add_record_arguments(p, kind="separation")
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return p


def format_summary(summary: SeparationSummary, dataset: str) -> str:
    """A short human-readable table of a separation summary."""
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
    c = summary.cluster
    if c is not None:
        lines.append(f"cluster {c.scheduler}: {c.workers} workers ({c.threads} threads, engine {c.inner}), "
                     f"{c.shards} block pairs: {c.computed} computed, {c.shards - c.computed} reused from shards")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> tuple[SeparationRecord, bool]:
    """Compute (or reuse) the record ``args`` describe: ``(record, reused)``."""
    out = writable_folder(args.out)
    with cluster_engine(args) as engine:  # a cluster is checked (and connected) before any work
        return _run(args, out, engine)


def _run(args: argparse.Namespace, out: Path, engine) -> tuple[SeparationRecord, bool]:
    splits = tuple(s for s in SPLITS if s == "train" or s in args.splits)
    eps = tuple(args.eps) if args.eps is not None else (default_eps(args.dataset),)
    ds = load_dataset(args.dataset, root=args.data_root, download=args.download, npz_path=args.npz)
    if args.subset is not None and args.subset > len(ds.x_train):
        raise UsageError(f"--subset {args.subset} is larger than the {len(ds.x_train)} training points of "
                         f"{args.dataset}; pass a smaller --subset or leave it out.")
    ds = ds.subset(args.subset, seed=args.seed)
    labels = "given"
    if args.random_labels is not None:
        ds, labels = ds.with_random_labels(args.random_labels), f"random(seed={args.random_labels})"
    d = int(ds.x_train[0].size)
    for e in eps:
        ThreatModel(args.norm, e).check_dimension(d)
    if ds.x_test is None and len(splits) > 1:
        raise UsageError(f"--splits {' '.join(splits[1:])} needs a test split, and {args.dataset} has none; "
                         "pass --splits train.")
    config = SeparationConfig(data=ds.spec(with_test=len(splits) > 1, subset=args.subset, seed=args.seed,
                                           labels=labels),
                              norm=args.norm, splits=splits, eps=eps, exclude_below=args.exclude_below,
                              near_duplicates=args.near_duplicates, k=args.k, class_matrix=args.class_matrix)
    folder = SeparationRecord.folder_for(out, config)
    rec = reusable(SeparationRecord, folder, config, force=args.force)
    if rec is not None:
        return rec, True
    with_test = len(splits) > 1
    res = compute_separation(ds.x_train, ds.y_train, ds.x_test if with_test else None,
                             ds.y_test if with_test else None, norm=args.norm, engine=engine,
                             exclude_below=args.exclude_below, test_test="test-test" in splits, k=args.k,
                             class_distances=args.class_matrix, progress=None if not args.no_progress else False)
    summary = res.summary(eps, near_duplicate_threshold=args.near_duplicates)
    if hasattr(engine, "cluster_run"):  # workers and shards of a cluster run (not part of the key)
        summary.cluster = engine.cluster_run()
    rec = SeparationRecord(config=config, result=summary, timing=res.seconds,
                           meta=run_metadata(args.seed, data_source=ds.source))
    return write_record(folder, rec, arrays=res.arrays()), False


def load_result(folder: str | Path) -> SeparationResult:
    """Rebuild a :class:`SeparationResult` from a separation record folder."""
    rec = load_record(folder, SeparationRecord)
    return SeparationResult.from_arrays(rec.load_arrays(), norm=rec.config.norm, engine=rec.result.engine,
                                        seconds=rec.timing, exclude_below=rec.config.exclude_below)


def main(argv: list[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    setup_logging(args.verbose)

    def work() -> int:
        rec, reused = run(args)
        print(format_summary(rec.result, args.dataset))
        print_outcome(rec, reused)
        return 0

    return run_main(work, (ValueError, TypeError, DatasetNotFoundError, PermissionError, RuntimeError, MemoryError,
                           RecordError, UsageError, OSError))


__all__ = ["SPLITS", "format_summary", "get_args_parser", "load_result", "main", "run"]


if __name__ == "__main__":
    sys.exit(main())
