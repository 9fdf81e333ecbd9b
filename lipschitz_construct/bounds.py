"""``python -m lipschitz_construct.bounds``: the best robust accuracy any classifier can reach on a
dataset, at each radius eps -- exactly where solved, with an LP bound and a certified witness.

See :func:`lipschitz_construct.robustness_bounds` for what is computed. ``--split train`` bounds
the training points (train--train conflicts), ``--split test`` the test points (test--test
conflicts). The record holds the bounds and, per radius, the indices of the witness' points.

Examples::

    python -m lipschitz_construct.bounds --dataset digits --norm linf --eps 0.2 0.25 0.3
    python -m lipschitz_construct.bounds --dataset mnist --norm l2 --split train --eps 1.2 1.5 2 2.5 \\
        --data-root ./data

Exit status: 0 on success, 2 on bad input (one line on stderr; no record is written), 130 on Ctrl-C.
"""
from __future__ import annotations

import argparse
import logging
import sys
import time

import numpy as np

from separation import ThreatModel
from separation.cli import (UsageError, add_data_arguments, add_record_arguments, nonnegative_float, positive_float,
                            print_outcome, run_main, setup_logging, writable_folder)
from separation.datasets import DatasetNotFoundError, load_dataset
from separation.engines import ENGINES
from separation.records import RecordError, reusable, run_metadata, toolkit_version, write_record

from .records import BoundsConfig, BoundsRecord, BoundsResult, kept_name
from .robustness import check_eps, robustness_bounds

log = logging.getLogger("lipschitz_construct.bounds")

SPLITS = ("train", "test")


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m lipschitz_construct.bounds",
        description="The optimal robust accuracy of any classifier on a dataset at each radius eps: exact "
                    "(maximum independent set of the conflict graph), the LP bound valid for randomized "
                    "classifiers, and a certified witness classifier.", add_help=add_help)
    add_data_arguments(p)
    p.add_argument("--split", default="train", choices=SPLITS,
                   help="points to bound: train (train-train conflicts, default) or test (test-test conflicts)")
    p.add_argument("--eps", type=nonnegative_float, nargs="+", required=True,
                   help="radii, in [0, 1] pixel units (two points conflict when they are at most 2 eps apart)")
    p.add_argument("--engine", default="auto", choices=["auto", "cpu", "cuda", "reference"],
                   help="exact range search (default auto: the fastest available); every engine is exact")
    p.add_argument("--cliques", action="store_true",
                   help="l-inf only: also the clique LP bound (tighter for randomized classifiers)")
    p.add_argument("--time-limit", type=positive_float, default=60.0,
                   help="seconds of MILP per eps for the components no matching solves (default 60); "
                        "where it runs out the optimum is left open and the best witness found is kept")
    add_record_arguments(p, kind="bounds")
    p.add_argument("--version", action="version", version=f"%(prog)s {toolkit_version()}")
    return p


def _split_arrays(ds, split: str):
    if split == "train":
        return ds.x_train, ds.y_train
    if ds.x_test is None or len(ds.x_test) == 0:
        raise UsageError(f"--split test needs a test split, and {ds.name} has none; pass --split train.")
    return ds.x_test, ds.y_test


def run(args: argparse.Namespace) -> tuple[BoundsRecord, bool]:
    """Compute (or reuse) the record ``args`` describe: ``(record, reused)``."""
    t_start = time.perf_counter()
    out = writable_folder(args.out)
    if args.cliques and args.norm != "linf":
        raise UsageError(f"--cliques needs --norm linf (the clique bound rests on l-inf balls being boxes); "
                         f"got --norm {args.norm}.")
    if args.engine not in ("auto", *ENGINES):  # pragma: no cover - argparse's choices
        raise UsageError(f"unknown --engine {args.engine}")
    eps = tuple(check_eps(args.eps))
    ds = load_dataset(args.dataset, root=args.data_root, download=args.download, npz_path=args.npz)
    if args.subset is not None and args.subset > len(ds.x_train):
        raise UsageError(f"--subset {args.subset} is larger than the {len(ds.x_train)} training points of "
                         f"{args.dataset}; pass a smaller --subset or leave it out.")
    ds = ds.subset(args.subset, seed=args.seed)
    x, y = _split_arrays(ds, args.split)
    if len(x) != len(np.asarray(y).reshape(-1)):
        raise UsageError(f"the {args.split} split has {len(x)} points but {np.asarray(y).size} labels; "
                         "they must have the same length.")
    d = int(np.asarray(x[0]).size)
    for e in eps:
        if e > 0:
            ThreatModel(args.norm, e).check_dimension(d)
    if np.unique(np.asarray(y)).size < 2:
        raise UsageError(f"the {args.split} split of {args.dataset} has fewer than two classes: with one class "
                         "every classifier is robustly correct; nothing to bound.")
    config = BoundsConfig(data=ds.spec(with_test=args.split == "test", subset=args.subset, seed=args.seed),
                          norm=args.norm, split=args.split, eps=eps, cliques=args.cliques,
                          time_limit=float(args.time_limit))
    folder = BoundsRecord.folder_for(out, config)
    rec = reusable(BoundsRecord, folder, config, force=args.force)
    if rec is not None:
        return rec, True
    res = robustness_bounds(x, y, norm=args.norm, eps=eps, engine=args.engine, cliques=args.cliques,
                            time_limit=args.time_limit, progress=not args.no_progress)
    from separation.engines import get_engine

    result = BoundsResult(n_points=res.n, n_classes=res.n_classes, engine=get_engine(args.engine).name,
                          separation=res.separation, threshold_eps=res.threshold_eps, points=res.points)
    timing = dict(res.seconds)
    timing["total"] = time.perf_counter() - t_start
    arrays = {kept_name(k): np.asarray(kept, dtype=np.int32) for k, kept in enumerate(res.kept)}
    rec = BoundsRecord(config=config, result=result, timing=timing,
                       meta=run_metadata(args.seed, data_source=ds.source))
    return write_record(folder, rec, arrays=arrays), False


def _pct(v) -> str:
    return "open" if v is None or not np.isfinite(v) else f"{100 * v:.3f}%"


def format_summary(rec: BoundsRecord) -> str:
    """A plain-text table of a record: per eps the conflicts and the robust accuracies."""
    c, res = rec.config, rec.result
    sep = "none within 2 max(eps)" if res.separation is None else f"{res.separation:.6g}"
    first = "above every eps" if res.threshold_eps is None else f"{res.threshold_eps:.6g}"
    lines = [f"dataset {c.data.dataset}  split {c.split}  norm {c.norm}  points {res.n_points}  "
             f"classes {res.n_classes}  search {res.engine}",
             f"separation {sep}; the optimum is below 100% from eps = {first}",
             "robust accuracy: optimal = best deterministic classifier (exact), LP = no classifier does better "
             "(randomized included), witness = the certified classifier found",
             "",
             f"{'eps':>9} {'conflicts':>10} {'points':>7} {'components':>10} {'optimal':>9} {'LP bound':>9}"
             + (f" {'clique LP':>9}" if c.cliques else "") + f" {'witness':>9} {'exact':>5} {'seconds':>8}"]
    for p in res.points:
        row = (f"{p.eps:>9.6g} {p.n_conflicts:>10} {p.n_conflicted_points:>7} {p.n_components:>10} "
               f"{_pct(1 - p.optimal_error):>9} {_pct(1 - p.lower_error):>9}")
        if c.cliques:
            row += f" {_pct(None if p.clique_lower_error is None else 1 - p.clique_lower_error):>9}"
        row += f" {_pct(1 - p.upper_error):>9} {'yes' if p.solved else 'no':>5} {p.seconds.get('total', 0.0):>8.2f}"
        lines.append(row)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    setup_logging(args.verbose)

    def work() -> int:
        rec, reused = run(args)
        print(format_summary(rec))
        print_outcome(rec, reused)
        return 0

    return run_main(work, (ValueError, TypeError, DatasetNotFoundError, PermissionError, RuntimeError, MemoryError,
                           RecordError, UsageError, OSError))


__all__ = ["SPLITS", "format_summary", "get_args_parser", "main", "run"]


if __name__ == "__main__":
    sys.exit(main())
