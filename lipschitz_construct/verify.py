"""``python -m lipschitz_construct.verify``: build the classifier of the proof and check its claims.

Fits :class:`~lipschitz_construct.LocallyLipschitzClassifier` on a training set and checks, exactly,
each claim of the theorem (Yang et al. 2020, Thm 4.1): with ``r`` half the train--train separation,

1. the nearest-class classifier is 100% accurate on the training data;
2. it is astute at radius ``r`` on the training data (every training point certified at ``r``);
3. each ``f_i = dist(., X_i) / r`` is ``(1/r)``-Lipschitz (checked on random and adversarial pairs).

It also reports test accuracy, certified test astuteness at each ``--eps`` and as a curve, and the
certified-radius distribution, and writes a result record (``record.json`` + ``arrays.npz``).

Examples::

    python -m lipschitz_construct.verify --dataset digits --norm linf
    python -m lipschitz_construct.verify --dataset mnist --norm linf --eps 0.1 --data-root ./data

Exit status: 0 when every claim held, 1 when one did not, 2 on bad input (message on stderr; no
record is written).
"""
from __future__ import annotations

import argparse
import logging
import math
import sys
import time
from pathlib import Path

import numpy as np

from separation.cli import add_data_arguments, add_record_arguments
from separation.compute import record_folder
from separation.datasets import DEFAULT_EPS, DatasetNotFoundError, load_dataset
from separation.engines import ENGINES
from separation.records import load_record, reusable_record, write_record

from .classifier import (FUSED, LocallyLipschitzClassifier, NotSeparatedError, astuteness_from,
                         certified_fraction)
from .lipschitz import lipschitz_check

log = logging.getLogger("lipschitz_construct.verify")

QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
CURVE_POINTS = 21


def _positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(v) or v <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive finite number")
    return v


def _r_value(text: str):
    return "auto" if text == "auto" else _positive_float(text)


def _count(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be >= 0")
    return v


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m lipschitz_construct.verify",
        description="Build the locally Lipschitz nearest-class classifier of the proof on a dataset "
                    "and check each claim of the theorem exactly.", add_help=add_help)
    add_data_arguments(p, seed_help="seed of --subset and of the pair sampling (default 0)")
    p.add_argument("--eps", type=_positive_float, nargs="+", default=None,
                   help="radii for the certified test astuteness, in [0, 1] pixel units (default: the "
                        "paper's l-inf eps for the dataset; r for l2 / l1)")
    p.add_argument("--engine", default="auto", choices=["auto", FUSED, *ENGINES],
                   help="exact search: auto (default: the fused l-inf kernel on a CPU-only machine, "
                        "else the fastest separation engine), fused, or a separation engine")
    p.add_argument("--r", type=_r_value, default="auto",
                   help="radius of the theorem: 'auto' (default: half the train-train separation) "
                        "or a positive number to test another radius")
    p.add_argument("--separation-records", default="results/separation",
                   help="where `python -m separation.compute` writes records; with --r auto, a record "
                        "there for exactly this data and norm gives r without recomputing it "
                        "(default results/separation)")
    p.add_argument("--no-reuse-separation", action="store_true",
                   help="always recompute the separation for --r auto")
    p.add_argument("--pairs", type=_count, default=1000,
                   help="random pairs for the Lipschitz check (default 1000)")
    p.add_argument("--adversarial-pairs", type=_count, default=200,
                   help="adversarial pairs of each kind for the Lipschitz check (default 200)")
    p.add_argument("--gradient-steps", type=_count, default=10,
                   help="gradient-ascent steps of the adversarial Lipschitz check (default 10; 0: off)")
    p.add_argument("--lipschitz-eps", type=_positive_float, default=None,
                   help="pair distance of the Lipschitz check (default: the largest --eps)")
    add_record_arguments(p, out="results/construct")
    return p


def _radius_summary(radius: np.ndarray) -> dict:
    return {"min": float(radius.min()), "mean": float(radius.mean()),
            "quantiles": {str(q): float(np.quantile(radius, q)) for q in QUANTILES}}


def _separation_r(args, ds) -> tuple[float, str] | None:
    """r from a matching ``separation.compute`` record, if there is one."""
    folder = record_folder(args.separation_records, args.dataset, args.norm, args.subset, args.seed)
    try:
        rec = load_record(folder)
    except (FileNotFoundError, ValueError):
        return None
    cfg = rec.get("config", {})
    if cfg.get("norm") != args.norm or cfg.get("data_fingerprint") != ds.fingerprint():
        log.info("separation record in %s is for other data or norm; recomputing", folder)
        return None
    r = rec.get("result", {}).get("r")
    if not isinstance(r, (int, float)) or not r > 0:
        return None
    return float(r), f"separation record {folder / 'record.json'}"


def _curve_eps(eps: list[float], r: float) -> list[float]:
    hi = max(2 * max(eps), 1.25 * r)
    grid = np.concatenate([np.linspace(0.0, hi, CURVE_POINTS), eps, [r]])
    return [float(e) for e in np.unique(grid)]


def run(args: argparse.Namespace) -> tuple[dict, Path]:
    """Compute (or reuse) the record ``args`` describe; return (record, folder)."""
    t_start = time.perf_counter()
    ds = load_dataset(args.dataset, root=args.data_root, download=args.download, npz_path=args.npz)
    ds = ds.subset(args.subset, seed=args.seed)
    has_test = ds.x_test is not None and len(ds.x_test) > 0
    config = {"dataset": args.dataset, "norm": args.norm, "subset": args.subset, "seed": args.seed,
              "eps": args.eps, "engine": args.engine, "r": args.r, "pairs": args.pairs,
              "adversarial_pairs": args.adversarial_pairs, "gradient_steps": args.gradient_steps,
              "lipschitz_eps": args.lipschitz_eps, **ds.describe(with_test=has_test)}
    folder = record_folder(args.out, args.dataset, args.norm, args.subset, args.seed)
    rec = reusable_record(folder, config, force=args.force)
    if rec is not None:
        log.info("reusing the record in %s (use --force to recompute)", folder)
        return rec, folder

    seconds: dict[str, float] = {}
    r_arg, r_source = args.r, "given (--r)"
    if args.r == "auto":
        r_source = "computed (separation.compute_separation)"
        found = None if args.no_reuse_separation else _separation_r(args, ds)
        if found is not None:
            r_arg, r_source = found
            log.info("r = %.6g from %s", r_arg, r_source)
    clf = LocallyLipschitzClassifier(norm=args.norm, r=r_arg, engine=args.engine)
    t0 = time.perf_counter()
    clf.fit(ds.x_train, ds.y_train)
    seconds["fit"] = time.perf_counter() - t0
    seconds.update({f"fit_{k}": v for k, v in clf.fit_seconds_.items()})
    r = clf.r_
    eps = list(args.eps) if args.eps else ([DEFAULT_EPS.get(args.dataset, 0.031)] if args.norm == "linf"
                                           else [r])

    t0 = time.perf_counter()
    train_pred, train_rad = clf.predict_with_radius(ds.x_train)
    seconds["certify_train"] = time.perf_counter() - t0
    y_train = np.asarray(ds.y_train)
    train_acc = float(np.mean(train_pred == y_train))
    train_ast = astuteness_from(train_pred, train_rad, y_train, r)

    result: dict = {"r": r, "lipschitz_bound": 1.0 / r, "r_source": r_source,
                    "engine": clf.search_engine_, "n_classes": int(len(clf.classes_)),
                    "train_accuracy": train_acc, "train_astuteness_at_r": train_ast,
                    "train_certified_radius": _radius_summary(train_rad),
                    # train points sit at distance 0 from their own class, so their radius is half
                    # their distance to the nearest other class: its minimum must be r itself
                    "r_crosscheck": {"min_train_certified_radius": float(train_rad.min()),
                                     "equals_r": bool(float(train_rad.min()) == r)}}
    arrays = {"train_certified_radius": train_rad, "train_pred": train_pred}

    if has_test:
        t0 = time.perf_counter()
        test_pred, test_rad = clf.predict_with_radius(ds.x_test)
        seconds["certify_test"] = time.perf_counter() - t0
        result["certify_test_search"] = dict(clf._search.last_stats)  # exact rows / probes per query
        y_test = np.asarray(ds.y_test)
        curve_eps = _curve_eps(eps, r)
        result.update({
            "test_accuracy": float(np.mean(test_pred == y_test)),
            "test_astuteness": {str(e): astuteness_from(test_pred, test_rad, y_test, e) for e in eps},
            "test_certified_fraction": {str(e): float(v) for e, v in
                                        zip(eps, certified_fraction(test_rad, eps))},
            "astuteness_curve": {"eps": curve_eps,
                                 "astuteness": astuteness_from(test_pred, test_rad, y_test, curve_eps).tolist()},
            "certified_radius": _radius_summary(test_rad),
            "test_astuteness_at_r": astuteness_from(test_pred, test_rad, y_test, r),
        })
        arrays.update(test_pred=test_pred, test_certified_radius=test_rad, y_test=y_test)
    else:
        result.update({"test_accuracy": None, "test_astuteness": {}, "astuteness_curve": {"eps": [], "astuteness": []},
                       "certified_radius": None})

    lip_eps = args.lipschitz_eps or max(eps)
    t0 = time.perf_counter()
    lip = lipschitz_check(clf, ds.x_test if has_test else ds.x_train, eps=lip_eps, n_random=args.pairs,
                          n_adversarial=args.adversarial_pairs, gradient_steps=args.gradient_steps,
                          seed=args.seed)
    seconds["lipschitz_check"] = time.perf_counter() - t0
    lip_seconds = lip.pop("seconds")
    seconds.update({f"lipschitz_{k}": v for k, v in lip_seconds.items()})
    result["lipschitz_check"] = lip
    claims = {"train_accuracy_is_1": train_acc == 1.0,
              "train_astuteness_at_r_is_1": train_ast == 1.0,
              "lipschitz_bound_held": bool(lip["held"])}
    result["claims"] = claims
    result["all_claims_held"] = all(claims.values())
    result["n_train"] = int(len(ds.x_train))
    result["n_test"] = int(len(ds.x_test)) if has_test else 0
    seconds["total"] = time.perf_counter() - t_start
    result["seconds"] = seconds
    write_record(folder, kind="lipschitz_construct", config=config, result=result, arrays=arrays,
                 seed=args.seed, timing=seconds)
    return load_record(folder), folder


def _fmt(v, spec=".6g") -> str:
    return "n/a" if v is None else format(v, spec)


def format_summary(rec: dict) -> str:
    """A plain-text table of a record: numbers, then each claim and whether it held."""
    cfg, res = rec["config"], rec["result"]
    lines = [f"dataset {cfg['dataset']}  norm {cfg['norm']}  train {res['n_train']}  test {res['n_test']}"
             f"  search {res.get('engine')}",
             f"r = {_fmt(res['r'])}  ({res.get('r_source')})   Lipschitz bound 1/r = {_fmt(res['lipschitz_bound'])}",
             "", f"{'quantity':<44} {'value':>12}", f"{'-' * 44} {'-' * 12}"]

    def row(name, value, spec=".6g"):
        lines.append(f"{name:<44} {_fmt(value, spec):>12}")

    row("train accuracy", res["train_accuracy"])
    row("train astuteness at r", res["train_astuteness_at_r"])
    row("train certified radius, min (= r?)", res["r_crosscheck"]["min_train_certified_radius"])
    row("test accuracy", res["test_accuracy"])
    if res.get("test_astuteness_at_r") is not None:
        row("certified test astuteness at r", res["test_astuteness_at_r"])
    for e, v in res["test_astuteness"].items():
        row(f"certified test astuteness at eps={float(e):.4g}", v)
    cr = res.get("certified_radius")
    if cr:
        row("test certified radius, min", cr["min"])
        row("test certified radius, median", cr["quantiles"]["0.5"])
        row("test certified radius, mean", cr["mean"])
    lip = res["lipschitz_check"]
    row(f"Lipschitz ratio, random pairs (n={lip['n_random']})", lip["random_max_ratio"])
    row(f"Lipschitz ratio, adversarial (n={lip['n_adversarial']})", lip["adversarial_max_ratio"])
    row("Lipschitz bound 1/r", lip["bound"])
    curve = res.get("astuteness_curve") or {}
    if curve.get("eps"):
        pts = "  ".join(f"{e:.3g}:{a:.3f}" for e, a in zip(curve["eps"], curve["astuteness"]))
        lines += ["", "certified test astuteness curve (eps:astuteness)", "  " + pts]
    names = {"train_accuracy_is_1": "the classifier is 100% accurate on the training set",
             "train_astuteness_at_r_is_1": "it is astute at radius r on the training set",
             "lipschitz_bound_held": "each f_i is (1/r)-Lipschitz on every checked pair"}
    lines += ["", "claims of the theorem:"]
    for k, held in res["claims"].items():
        lines.append(f"  [{'HELD' if held else 'FAILED'}] {names.get(k, k)}")
    if not res["r_crosscheck"]["equals_r"] and res["train_accuracy"] == 1.0:
        lines.append("  note: the smallest train certified radius differs from r "
                     "(r was given, or the separation record disagrees)")
    secs = res.get("seconds", {})
    main = [k for k in ("fit", "certify_train", "certify_test", "lipschitz_check", "total") if k in secs]
    if main:
        lines += ["", "time: " + ", ".join(f"{k} {secs[k]:.2f}s" for k in main)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("faiss").setLevel(logging.WARNING)
    logging.getLogger("numba").setLevel(logging.WARNING)
    try:
        if args.subset is not None and args.subset < 2:
            raise ValueError("--subset must be at least 2.")
        rec, folder = run(args)
    except NotSeparatedError as exc:
        print(f"error: {exc} (e.g. --r 0.01)", file=sys.stderr)
        return 2
    except (ValueError, TypeError, DatasetNotFoundError, PermissionError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(format_summary(rec))
    print(f"record: {folder}")
    return 0 if rec["result"]["all_claims_held"] else 1


if __name__ == "__main__":
    sys.exit(main())
