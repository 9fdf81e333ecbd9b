"""Command-line arguments shared by the toolkit's CLIs (``separation.compute``,
``lipschitz_construct.verify``): which data, and where the result record goes."""
from __future__ import annotations

import argparse

from ._validation import NORMS
from .datasets import DATASET_NAMES


def add_data_arguments(p: argparse.ArgumentParser, *, seed_help: str = "seed of --subset (default 0)") -> None:
    """--dataset, --npz, --norm, --data-root, --download, --subset, --seed."""
    p.add_argument("--dataset", default="digits", choices=DATASET_NAMES,
                   help="dataset name (default: digits, embedded in scikit-learn, no download)")
    p.add_argument("--npz", default=None, help="file for --dataset npz: x_train, y_train[, x_test, y_test]")
    p.add_argument("--norm", default="linf", choices=NORMS, help="distance (default: linf)")
    p.add_argument("--data-root", default=None,
                   help="data folder in torchvision's layout (default: $SEPARATION_DATA_ROOT or "
                        "~/.cache/separation/data)")
    p.add_argument("--download", action="store_true", help="download the dataset if missing")
    p.add_argument("--subset", type=int, default=None,
                   help="use a fixed random subset of N train and N test points")
    p.add_argument("--seed", type=int, default=0, help=seed_help)


def add_record_arguments(p: argparse.ArgumentParser, *, out: str) -> None:
    """--out, --force, --verbose."""
    p.add_argument("--out", default=out,
                   help=f"folder for records (default {out}); the record goes to "
                        "OUT/<dataset>/<norm>[-subsetN]")
    p.add_argument("--force", action="store_true", help="recompute even if a matching record exists")
    p.add_argument("--verbose", "-v", action="store_true")
