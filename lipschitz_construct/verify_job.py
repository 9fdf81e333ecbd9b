"""The job of ``python -m lipschitz_construct.verify``: build the classifier of the proof on a dataset
and check, exactly, each claim of the theorem (Yang et al. 2020, Thm 4.1). With ``r`` half the
train--train separation:

1. the nearest-class classifier is 100% accurate on the training data;
2. it is astute at radius ``r`` on the training data (every training point certified at ``r``);
3. each ``f_i = dist(., X_i) / r`` is ``(1/r)``-Lipschitz (checked on random and adversarial pairs).

It also reports test accuracy, certified test astuteness at each ``--eps`` and as a curve, and the
certified-radius distribution, and writes a result record (``record.json`` + ``arrays.npz``).
"""
from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from separation import SeparationRecord
from separation.core.cli import RUNS_ROOT, integer, positive_eps_float, positive_float, progress_of
from separation.core.datasets import Dataset
from separation.core.errors import UsageError
from separation.core.paper import default_eps
from separation.core.pipeline import Computed, RecordJob, add_data_arguments
from separation.core.progress import progress_bar
from separation.core.records import find_records
from separation.core.threat import ThreatModel
from separation.engines import ENGINES

from .classifier import LocallyLipschitzClassifier, NotSeparatedError, astuteness_from, certified_fraction
from .bound_check import lipschitz_check
from .records import Curve, RadiusSummary, VerificationRecord, VerifyConfig, VerifyResult

log = logging.getLogger("lipschitz_construct.verify")

QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
CURVE_POINTS = 21
CHUNK = 4096  # points certified per step (progress granularity)
#: The claims of the theorem, as the summary states them.
CLAIMS = {"train_accuracy_is_1": "the classifier is 100% accurate on the training set",
          "train_astuteness_at_r_is_1": "it is astute at radius r on the training set",
          "lipschitz_bound_held": "each f_i is (1/r)-Lipschitz on every checked pair"}


def _r_value(text: str):
    return "auto" if text == "auto" else positive_float(text)


def _radius_summary(radius: np.ndarray) -> RadiusSummary:
    return RadiusSummary(float(radius.min()), float(radius.mean()),
                         {str(q): float(np.quantile(radius, q)) for q in QUANTILES})


def separation_r(root: Path, norm: str, train_fingerprint: str) -> tuple[float, str] | None:
    """r from a verified ``separation.compute`` record of exactly this training set and norm."""
    for rec in find_records(root, kinds=["separation"]).of(SeparationRecord):
        if rec.legacy or rec.config.norm != norm or rec.config.data.train_fingerprint != train_fingerprint:
            continue
        if rec.result.r > 0:
            return rec.result.r, f"separation record {rec.label}"
    return None


def _curve_eps(eps: list[float], r: float) -> list[float]:
    hi = max(2 * max(eps), 1.25 * r)
    grid = np.concatenate([np.linspace(0.0, hi, CURVE_POINTS), eps, [r]])
    return [float(e) for e in np.unique(grid)]


def _certify(clf, x, *, progress: bool | None, desc: str):
    """``predict_with_radius`` in chunks (with a progress bar)."""
    it = progress_bar(range(0, len(x), CHUNK), enabled=progress, desc=desc, unit="point", unit_scale=CHUNK)
    parts = [clf.predict_with_radius(x[s:s + CHUNK]) for s in it]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def _fmt(v, spec=".6g") -> str:
    return "n/a" if v is None else format(v, spec)


def format_summary(rec: VerificationRecord) -> str:
    """A plain-text table of a record: numbers, then each claim and whether it held."""
    c, res = rec.config, rec.result
    lines = [f"dataset {c.data.dataset}  norm {c.norm}  train {res.n_train}  test {res.n_test}  search {res.engine}",
             f"r = {_fmt(res.r)}  ({res.r_source})   Lipschitz bound 1/r = {_fmt(res.lipschitz_bound)}",
             "", f"{'quantity':<44} {'value':>12}", f"{'-' * 44} {'-' * 12}"]

    def row(name, value):
        lines.append(f"{name:<44} {_fmt(value):>12}")

    row("train accuracy", res.train_accuracy)
    row("train astuteness at r", res.train_astuteness_at_r)
    row("train certified radius, min (= r?)", res.min_train_certified_radius)
    row("test accuracy", res.test_accuracy)
    if res.test_astuteness_at_r is not None:
        row("certified test astuteness at r", res.test_astuteness_at_r)
    for e, v in res.test_astuteness.items():
        row(f"certified test astuteness at eps={float(e):.4g}", v)
    if res.certified_radius:
        row("test certified radius, min", res.certified_radius.min)
        row("test certified radius, median", res.certified_radius.quantiles["0.5"])
        row("test certified radius, mean", res.certified_radius.mean)
    lip = res.lipschitz_check
    row(f"Lipschitz ratio, random pairs (n={lip.n_random})", lip.random_max_ratio)
    row(f"Lipschitz ratio, adversarial (n={lip.n_adversarial})", lip.adversarial_max_ratio)
    row("Lipschitz bound 1/r", lip.bound)
    if res.astuteness_curve.eps:
        pts = "  ".join(f"{e:.3g}:{a:.3f}" for e, a in zip(res.astuteness_curve.eps, res.astuteness_curve.astuteness))
        lines += ["", "certified test astuteness curve (eps:astuteness)", "  " + pts]
    lines += ["", "claims of the theorem:"]
    for k, held in res.claims.items():
        lines.append(f"  [{'HELD' if held else 'FAILED'}] {CLAIMS.get(k, k)}")
    if not res.r_equals_min_train_radius and res.train_accuracy == 1.0:
        lines.append("  note: the smallest train certified radius differs from r "
                     "(r was given, or the separation record disagrees)")
    return "\n".join(lines)


class VerifyJob(RecordJob):
    """``python -m lipschitz_construct.verify``: fit the classifier of the proof, certify every
    point, check each claim of the theorem; exit 1 when a claim fails."""

    module = "lipschitz_construct.verify"
    description = ("Build the locally Lipschitz nearest-class classifier of the proof on a dataset and check "
                   "each claim of the theorem exactly.")
    record_type = VerificationRecord
    out_kind = "construct"
    shown_steps = ("fit", "certify_train", "certify_test", "lipschitz_check", "total")

    def add_data_arguments(self, p: argparse.ArgumentParser) -> None:
        add_data_arguments(p, seed_help="seed of --subset and of the pair sampling (default 0)")

    def add_arguments(self, p: argparse.ArgumentParser) -> None:
        p.add_argument("--eps", type=positive_eps_float, nargs="+", default=None,
                       help="radii for the certified test astuteness, in [0, 1] pixel units (default: the "
                            "paper's l-inf eps for the dataset; r for l2 / l1)")
        p.add_argument("--engine", default="auto", choices=["auto", *ENGINES],
                       help="exact search (default auto: the fastest available; on a CPU the probe-pruned "
                            "l-inf kernel)")
        p.add_argument("--r", type=_r_value, default="auto",
                       help="radius of the theorem: 'auto' (default: half the train-train separation) "
                            "or a positive number to test another radius")
        p.add_argument("--separation-records", type=Path, default=RUNS_ROOT / "separation",
                       help="where `python -m separation.compute` wrote records; with --r auto, a verified "
                            "record there for exactly this training set and norm gives r without recomputing "
                            f"it (default {RUNS_ROOT / 'separation'})")
        p.add_argument("--no-reuse-separation", action="store_true",
                       help="always recompute the separation for --r auto")
        p.add_argument("--pairs", type=integer(0, 10**8), default=1000,
                       help="random pairs for the Lipschitz check (default 1000)")
        p.add_argument("--adversarial-pairs", type=integer(0, 10**8), default=200,
                       help="adversarial pairs of each kind for the Lipschitz check (default 200)")
        p.add_argument("--gradient-steps", type=integer(0, 10**6), default=10,
                       help="gradient-ascent steps of the adversarial Lipschitz check (default 10; 0: off)")
        p.add_argument("--lipschitz-eps", type=positive_eps_float, default=None,
                       help="pair distance of the Lipschitz check (default: the largest --eps)")

    def configure(self, args: argparse.Namespace, data: Dataset) -> VerifyConfig:
        for e in list(args.eps or []) + ([args.lipschitz_eps] if args.lipschitz_eps else []):
            ThreatModel(args.norm, e).check_dimension(int(data.x_train[0].size))
        has_test = data.x_test is not None and len(data.x_test) > 0
        return VerifyConfig(data=data.spec(with_test=has_test, subset=args.subset, seed=args.seed), norm=args.norm,
                            r=None if args.r == "auto" else args.r, eps=tuple(args.eps) if args.eps else None,
                            pairs=args.pairs, adversarial_pairs=args.adversarial_pairs,
                            gradient_steps=args.gradient_steps, lipschitz_eps=args.lipschitz_eps)

    def compute(self, args: argparse.Namespace, ds: Dataset, config: VerifyConfig) -> Computed:
        try:
            return self._compute(args, ds, config)
        except NotSeparatedError as exc:
            raise UsageError(f"{exc} (e.g. --r 0.01)") from None

    def _compute(self, args: argparse.Namespace, ds: Dataset, config: VerifyConfig) -> Computed:
        t_start = time.perf_counter()
        has_test = config.data.n_test > 0
        progress = progress_of(args)
        seconds: dict[str, float] = {}
        r_arg, r_source = args.r, "given (--r)"
        if args.r == "auto":
            r_source = "computed (separation.compute_separation)"
            found = None if args.no_reuse_separation else separation_r(args.separation_records, args.norm,
                                                                       config.data.train_fingerprint)
            if found is not None:
                r_arg, r_source = found
                log.info("r = %.6g from %s", r_arg, r_source)
        clf = LocallyLipschitzClassifier(norm=args.norm, r=r_arg, engine=args.engine)
        t0 = time.perf_counter()
        clf.fit(ds.x_train, ds.y_train)
        seconds["fit"] = time.perf_counter() - t0
        seconds.update({f"fit_{k}": v for k, v in clf.fit_seconds_.items()})
        r = clf.r_
        eps = list(args.eps) if args.eps else ([default_eps(args.dataset, "linf")] if args.norm == "linf" else [r])

        t0 = time.perf_counter()
        train_pred, train_rad = _certify(clf, ds.x_train, progress=progress, desc="certify train")
        seconds["certify_train"] = time.perf_counter() - t0
        y_train = np.asarray(ds.y_train)
        train_acc = float(np.mean(train_pred == y_train))
        train_ast = astuteness_from(train_pred, train_rad, y_train, r)
        arrays = {"train_certified_radius": train_rad, "train_pred": train_pred}
        test: dict[str, Any] = {}
        if has_test:
            t0 = time.perf_counter()
            test_pred, test_rad = _certify(clf, ds.x_test, progress=progress, desc="certify test")
            seconds["certify_test"] = time.perf_counter() - t0
            y_test = np.asarray(ds.y_test)
            curve_eps = _curve_eps(eps, r)
            test = dict(
                test_accuracy=float(np.mean(test_pred == y_test)),
                test_astuteness={str(e): astuteness_from(test_pred, test_rad, y_test, e) for e in eps},
                test_certified_fraction={str(e): float(v) for e, v in zip(eps, certified_fraction(test_rad, eps))},
                astuteness_curve=Curve(curve_eps, astuteness_from(test_pred, test_rad, y_test, curve_eps).tolist()),
                certified_radius=_radius_summary(test_rad),
                test_astuteness_at_r=astuteness_from(test_pred, test_rad, y_test, r),
                certify_test_search=clf.index_.stats_)
            arrays.update(test_pred=test_pred, test_certified_radius=test_rad, y_test=y_test)

        t0 = time.perf_counter()
        lip = lipschitz_check(clf, ds.x_test if has_test else ds.x_train, eps=args.lipschitz_eps or max(eps),
                              n_random=args.pairs, n_adversarial=args.adversarial_pairs,
                              gradient_steps=args.gradient_steps, seed=args.seed)
        seconds["lipschitz_check"] = time.perf_counter() - t0
        claims = {"train_accuracy_is_1": train_acc == 1.0, "train_astuteness_at_r_is_1": train_ast == 1.0,
                  "lipschitz_bound_held": lip.held}
        seconds["total"] = time.perf_counter() - t_start
        # train points sit at distance 0 from their own class, so their certified radius is half their
        # distance to the nearest other class: the smallest must be r itself
        result = VerifyResult(
            r=r, lipschitz_bound=1.0 / r, r_source=r_source, engine=clf.search_engine_, n_classes=len(clf.classes_),
            train_accuracy=train_acc, train_astuteness_at_r=train_ast,
            train_certified_radius=_radius_summary(train_rad), min_train_certified_radius=float(train_rad.min()),
            r_equals_min_train_radius=float(train_rad.min()) == r, lipschitz_check=lip, claims=claims,
            all_claims_held=all(claims.values()), n_train=len(ds.x_train),
            n_test=len(ds.x_test) if has_test else 0, **test)
        return Computed(result, seconds, arrays)

    def values_of(self, config: VerifyConfig) -> dict[str, Any]:
        d = config.data
        return {"dataset": d.dataset, "norm": config.norm, "subset": d.subset, "seed": d.seed if d.subset else 0,
                "eps": list(config.eps) if config.eps else None, "r": "auto" if config.r is None else config.r,
                "pairs": config.pairs, "adversarial_pairs": config.adversarial_pairs,
                "gradient_steps": config.gradient_steps, "lipschitz_eps": config.lipschitz_eps}

    def summary(self, record: VerificationRecord) -> str:
        return format_summary(record)

    def exit_code(self, record: VerificationRecord) -> int:
        return 0 if record.result.all_claims_held else 1


__all__ = ["CHUNK", "CLAIMS", "CURVE_POINTS", "QUANTILES", "VerifyJob", "format_summary", "separation_r"]
