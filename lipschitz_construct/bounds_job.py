"""The job of ``python -m lipschitz_construct.bounds``: the best robust accuracy any classifier can
reach on a dataset at each radius eps -- exactly where solved, with an LP bound and a certified witness.

See :func:`lipschitz_construct.robustness_bounds` for what is computed. ``--split train`` bounds
the training points (train--train conflicts), ``--split test`` the test points (test--test
conflicts). The record holds the bounds and, per radius, the indices of the witness' points.
"""
from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

from separation.cluster import add_cluster_arguments, cluster_engine, cluster_engine_name
from separation.core.cli import eps_value, positive_float, progress_of
from separation.core.datasets import Dataset
from separation.core.errors import UsageError
from separation.core.pipeline import Computed, RecordJob
from separation.core.threat import ThreatModel, eps_text, exact_eps_list
from separation.engines import get_engine

from .records import BoundsConfig, BoundsRecord, BoundsResult, kept_name
from .robustness import robustness_bounds

SPLITS = ("train", "test")
#: The engines that search conflicts exactly: on one machine, or ``dask`` on the cluster of ``--scheduler``.
ENGINE_CHOICES = ("auto", "cpu", "cuda", "reference", "dask")


def _split_arrays(ds: Dataset, split: str):
    if split == "train":
        return ds.x_train, ds.y_train
    if ds.x_test is None or len(ds.x_test) == 0:
        raise UsageError(f"--split test needs a test split, and {ds.name} has none; pass --split train.")
    return ds.x_test, ds.y_test


def _pct(v) -> str:
    return "open" if v is None or not np.isfinite(v) else f"{100 * v:.3f}%"


def format_summary(rec: BoundsRecord) -> str:
    """A plain-text table of a record: per eps the conflicts and the robust accuracies."""
    c, res = rec.config, rec.result
    sep = "none within 2 max(eps)" if res.separation is None else f"{res.separation:.6g}"
    first = ("above every eps" if res.threshold_eps is None else res.threshold_eps_text
             or f"{res.threshold_eps:.6g}")
    lines = [f"dataset {c.data.dataset}  split {c.split}  norm {c.norm}  points {res.n_points}  "
             f"classes {res.n_classes}  search {res.engine}",
             f"separation {sep}; the optimum is below 100% from eps = {first}",
             "robust accuracy: optimal = best deterministic classifier (exact), LP = pairwise LP bound (no "
             "classifier does better)" + (", cover LP = LP over a greedy clique cover" if c.cliques else "")
             + (", random. = best randomized classifier (exact)" if c.randomized else "")
             + ", witness = the certified classifier found",
             "",
             f"{'eps':>9} {'conflicts':>10} {'points':>7} {'components':>10} {'optimal':>9} {'LP bound':>9}"
             + (f" {'cover LP':>9}" if c.cliques else "") + (f" {'random.':>9}" if c.randomized else "")
             + f" {'witness':>9} {'exact':>5} {'seconds':>8}"]
    for p in res.points:
        eps = p.eps_text or format(p.eps, ".6g")
        row = (f"{eps:>9} {p.n_conflicts:>10} {p.n_conflicted_points:>7} {p.n_components:>10} "
               f"{_pct(1 - p.optimal_error):>9} {_pct(1 - p.lower_error):>9}")
        if c.cliques:
            row += f" {_pct(None if p.clique_lower_error is None else 1 - p.clique_lower_error):>9}"
        if c.randomized:
            row += f" {_pct(None if p.randomized_optimal_error is None else 1 - p.randomized_optimal_error):>9}"
        row += f" {_pct(1 - p.upper_error):>9} {'yes' if p.solved else 'no':>5} {p.seconds.get('total', 0.0):>8.2f}"
        lines.append(row)
    return "\n".join(lines)


class BoundsJob(RecordJob):
    """``python -m lipschitz_construct.bounds``: the optimal robust accuracy of any classifier at each eps."""

    module = "lipschitz_construct.bounds"
    description = ("The optimal robust accuracy of any classifier on a dataset at each radius eps: exact "
                   "(maximum independent set of the conflict graph), the LP bound valid for randomized "
                   "classifiers, and a certified witness classifier.")
    record_type = BoundsRecord
    out_kind = "bounds"
    always_shown = ("dataset", "norm", "split", "eps")

    def add_arguments(self, p: argparse.ArgumentParser) -> None:
        p.add_argument("--split", default="train", choices=SPLITS,
                       help="points to bound: train (train-train conflicts, default) or test (test-test conflicts)")
        p.add_argument("--eps", type=eps_value, nargs="+", required=True,
                       help="radii, in [0, 1] pixel units, exact: 0.3 is 3/10, 8/255 and 251/510 are fractions "
                            "(two points conflict when they are at most 2 eps apart; on byte data decided on "
                            "the integer distance)")
        p.add_argument("--engine", default="auto", choices=ENGINE_CHOICES,
                       help="exact range search (default auto: the fastest available; dask: on the cluster of "
                            "--scheduler); every engine is exact")
        add_cluster_arguments(p)
        p.add_argument("--randomized", action="store_true",
                       help="also the exact optimal robust accuracy of randomized classifiers (the LP over every "
                            "set of points whose eps-balls share a point, proven by an exact certificate), with its "
                            "own --time-limit per eps")
        p.add_argument("--cliques", action="store_true",
                       help="l-inf only: also the clique LP bound (tighter for randomized classifiers)")
        p.add_argument("--time-limit", type=positive_float, default=60.0,
                       help="seconds per eps (default 60) for the greedy witness and the MILPs of the components "
                            "no matching solves (with --cliques: three quarters of it, the clique LP the rest); where it "
                            "runs out the optimum is left open and the best witness found is kept")

    def configure(self, args: argparse.Namespace, data: Dataset) -> BoundsConfig:
        cluster_engine_name(args)  # contradicting engine options are a bad call, found before any work
        if args.cliques and args.norm != "linf":
            raise UsageError(f"--cliques needs --norm linf (the clique bound rests on l-inf balls being boxes); "
                             f"got --norm {args.norm}.")
        exact = exact_eps_list(args.eps)
        x, y = _split_arrays(data, args.split)
        d = int(np.asarray(x[0]).size)
        for e in exact:
            if e > 0:
                ThreatModel(args.norm, float(e)).check_dimension(d)
        if np.unique(np.asarray(y)).size < 2:
            raise UsageError(f"the {args.split} split of {args.dataset} has fewer than two classes: with one class "
                             "every classifier is robustly correct; nothing to bound.")
        return BoundsConfig(data=data.spec(with_test=args.split == "test", subset=args.subset, seed=args.seed),
                            norm=args.norm, split=args.split, eps=tuple(eps_text(e) for e in exact),
                            cliques=args.cliques, randomized=args.randomized,
                            time_limit=float(args.time_limit))

    def compute(self, args: argparse.Namespace, data: Dataset, config: BoundsConfig) -> Computed:
        t_start = time.perf_counter()
        x, y = _split_arrays(data, config.split)
        with cluster_engine(args) as engine:  # a cluster is checked (and connected) before any work
            res = robustness_bounds(x, y, norm=config.norm, eps=config.eps, engine=engine, cliques=config.cliques,
                                    randomized=config.randomized,
                                    time_limit=config.time_limit, progress=progress_of(args))
            name = get_engine(engine).name if isinstance(engine, str) else engine.name
        result = BoundsResult(n_points=res.n, n_classes=res.n_classes, engine=name,
                              separation=res.separation, threshold_eps=res.threshold_eps, points=res.points,
                              threshold_eps_text=res.threshold_eps_text)
        timing = dict(res.seconds)
        timing["total"] = time.perf_counter() - t_start
        arrays = {kept_name(k): np.asarray(kept, dtype=np.int32) for k, kept in enumerate(res.kept)}
        return Computed(result, timing, arrays)

    def values_of(self, config: BoundsConfig) -> dict[str, Any]:
        d = config.data
        return {"dataset": d.dataset, "norm": config.norm, "split": config.split, "eps": list(config.eps),
                "subset": d.subset, "seed": d.seed if d.subset else 0, "cliques": config.cliques,
                "randomized": config.randomized,
                "time_limit": config.time_limit}

    def summary(self, record: BoundsRecord) -> str:
        return format_summary(record)


__all__ = ["BoundsJob", "ENGINE_CHOICES", "SPLITS", "format_summary"]
