"""``python -m separation.compute``: exact separation of a dataset, written as a result record.

Example::

    python -m separation.compute --dataset digits --norm linf
    python -m separation.compute --dataset mnist --norm linf --data-root ./data
    python -m separation.compute --dataset npz --npz my_data.npz --norm l2 --eps 0.5 1.0
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from . import __version__
from .cli import add_data_arguments, add_record_arguments
from .core import SeparationResult, compute_separation
from .datasets import DEFAULT_EPS, DatasetNotFoundError, load_dataset
from .engines import ENGINES
from .records import load_record, reusable_record, write_record

log = logging.getLogger("separation.compute")


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description="Exact train-train and test-train separation (distance from every point to the "
                    "nearest training point of another class).", add_help=add_help)
    add_data_arguments(p)
    p.add_argument("--splits", default="train,test", choices=["train", "train,test"],
                   help="'train' (train-train only) or 'train,test' (default)")
    p.add_argument("--eps", type=float, nargs="+", default=None,
                   help="attack radii to compare with (default: the paper's eps for the dataset)")
    p.add_argument("--engine", default="auto", choices=["auto", *ENGINES],
                   help="nearest-neighbour engine (default: auto = fastest available)")
    p.add_argument("--exclude-below", type=float, default=0.0,
                   help="pairs at or below this distance count as duplicates and are left out of "
                        "the '*_excluding_duplicates' statistics (default 0: exact duplicates)")
    p.add_argument("--near-duplicates", type=float, default=None,
                   help="also list cross-class pairs closer than this distance")
    add_record_arguments(p, out="results/separation")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return p


def record_folder(out: str | Path, dataset: str, norm: str, subset: int | None, seed: int = 0) -> Path:
    name = norm + (f"-subset{subset}" + (f"-seed{seed}" if seed else "") if subset else "")
    return Path(out) / dataset / name


def format_summary(summary: dict, dataset: str) -> str:
    """A short human-readable table of a separation summary."""
    lines = [f"dataset {dataset}  norm {summary['norm']}  engine {summary['engine']}  "
             f"r = {summary['r']:.6g}"]
    header = f"{'split':<6} {'n':>7} {'min':>10} {'mean':>10} {'min excl. dup':>14} {'dups':>5}"
    lines.append(header)
    for split in ("train", "test"):
        s = summary.get(split)
        if not s:
            continue
        excl = s.get("min_excluding_duplicates")
        lines.append(f"{split:<6} {s['n']:>7} {s['min']:>10.6g} {s['mean']:>10.6g} "
                     f"{excl if excl is None else format(excl, '.6g'):>14} "
                     f"{len(s['cross_class_duplicates']):>5}")
        for e, v in s["eps"].items():
            lines.append(f"       eps={e}: separation/2eps = {v['ratio_to_2eps']:.3g}, "
                         f"points closer than 2eps: {100 * v['fraction_below_2eps']:.3g}%")
    secs = summary.get("seconds", {})
    if secs:
        lines.append("time: " + ", ".join(f"{k} {v:.2f}s" for k, v in secs.items()))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> tuple[dict, Path]:
    """Compute (or reuse) the record that ``args`` describe; return (record, folder)."""
    eps = args.eps if args.eps is not None else [DEFAULT_EPS.get(args.dataset, 0.031)]
    ds = load_dataset(args.dataset, root=args.data_root, download=args.download, npz_path=args.npz)
    ds = ds.subset(args.subset, seed=args.seed)
    with_test = args.splits == "train,test" and ds.x_test is not None
    config = {"dataset": args.dataset, "norm": args.norm, "splits": "train,test" if with_test else "train",
              "subset": args.subset, "seed": args.seed, "eps": eps, "exclude_below": args.exclude_below,
              "near_duplicates": args.near_duplicates, **ds.describe(with_test=with_test)}
    folder = record_folder(args.out, args.dataset, args.norm, args.subset, args.seed)
    rec = reusable_record(folder, config, force=args.force)
    if rec is not None:
        log.info("reusing the record in %s (use --force to recompute)", folder)
        return rec, folder
    res = compute_separation(ds.x_train, ds.y_train, ds.x_test if with_test else None,
                             ds.y_test if with_test else None, norm=args.norm, engine=args.engine,
                             exclude_below=args.exclude_below, progress=not args.no_progress)
    summary = res.summary(eps, near_duplicate_threshold=args.near_duplicates)
    write_record(folder, kind="separation", config=config, result=summary, arrays=res.arrays(),
                 seed=args.seed, timing=res.seconds)
    return load_record(folder), folder


def load_result(folder: str | Path) -> SeparationResult:
    """Rebuild a :class:`SeparationResult` from a record folder."""
    rec, arrays = load_record(folder, with_arrays=True)
    return SeparationResult.from_arrays(arrays, norm=rec["config"]["norm"], engine=rec["result"].get("engine", ""),
                                        seconds=rec.get("timing"),
                                        exclude_below=rec["config"].get("exclude_below", 0.0))


def main(argv: list[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("faiss").setLevel(logging.WARNING)
    try:
        rec, folder = run(args)
    except (ValueError, TypeError, DatasetNotFoundError, PermissionError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(format_summary(rec["result"], args.dataset))
    print(f"record: {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
