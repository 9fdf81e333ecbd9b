"""Table rows from typed records: one dict per row, the columns of the CSV files (fractions in [0, 1])."""
from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from lipschitz_construct.records import VerificationRecord
from separation import SeparationRecord
from separation.core.errors import InvalidInputError
from separation.core.paper import default_eps

from ..records import EvalResult, EvaluationRecord, TrainingRecord
from .format import NORM_NAMES, finite, method_label


def total_seconds(timing: dict[str, float]) -> float | None:
    """A record's run time: its ``total`` if it has one, else the sum of its parts."""
    if "total" in timing:
        return timing["total"]
    return sum(timing.values()) if timing else None


# -- separation -------------------------------------------------------------------------------------
def eps_values(rec: SeparationRecord) -> list[float]:
    """The radii a separation record compares with: its own, else the dataset's conventional radius
    in the record's norm (:data:`~separation.core.paper.RADII`); none where there is none."""
    vals = rec.result.eps_values or list(rec.config.eps)
    conventional = default_eps(rec.config.data.dataset, rec.config.norm)
    return vals or ([conventional] if conventional is not None else [])


def _eps_stat(split, eps):
    """The split's statistics at ``eps``, or None (no split, no radius, or a radius not computed)."""
    if split is None or eps is None:
        return None
    try:
        return split.eps_stat(eps)
    except InvalidInputError:
        return None


def separation_rows(rec: SeparationRecord) -> list[dict[str, Any]]:
    res, data = rec.result, rec.config.data
    rows = []
    for eps in eps_values(rec) or [None]:
        row: dict[str, Any] = {"dataset": data.dataset, "norm": rec.config.norm, "subset": data.subset,
                               "n_train": res.train.n, "n_test": res.test.n if res.test else None,
                               "eps": eps, "two_eps": None if eps is None else 2 * eps}
        for name, s in (("train", res.train), ("test", res.test)):
            e = _eps_stat(s, eps)
            ratio = e.ratio_to_2eps if e else (s.min / (2 * eps) if s and eps else None)
            has_dups = bool(s and (s.cross_class_duplicates or s.n_excluded))
            row.update({
                f"{name}_min": s.min if s else None, f"{name}_min_over_2eps": ratio,
                f"{name}_fraction_below_2eps": e.fraction_below_2eps if e else None,
                f"{name}_mean": s.mean if s else None,
                f"{name}_cross_class_duplicates": len(s.cross_class_duplicates) if s else None,
                f"{name}_n_excluded": s.n_excluded if s else None,
                f"{name}_min_excl_duplicates": s.min_excluding_duplicates if has_dups else None,
                f"{name}_mean_excl_duplicates": s.mean_excluding_duplicates if has_dups else None,
            })
        row.update({"test_in_train": len(res.test_train_duplicates) if res.test else None, "r": res.r,
                    "exclude_below": res.exclude_below, "engine": res.engine, "seconds": total_seconds(rec.timing),
                    "record": rec.label})
        rows.append(row)
    return rows


# -- models -----------------------------------------------------------------------------------------
def evaluation_columns(ev: EvalResult | None) -> dict[str, Any]:
    """The numbers of one evaluation result."""
    tr = ev.train if ev else None
    te = ev.test if ev else None

    def get(s, attr):
        return getattr(s, attr) if s is not None else None

    def per(s, attack):
        return s.adv_acc_per_attack.get(attack) if s is not None else None

    return {
        "train_acc": get(tr, "clean_acc"), "test_acc": get(te, "clean_acc"),
        "train_adv_acc": get(tr, "adv_acc"), "test_adv_acc": get(te, "adv_acc"),
        "test_adv_acc_pgd": per(te, "pgd"), "test_adv_acc_mt": per(te, "multitargeted"),
        "test_adv_acc_aa": per(te, "autoattack"),
        "train_lipschitz": get(tr, "lipschitz_mean"), "test_lipschitz": get(te, "lipschitz_mean"),
        "train_lipschitz_official": get(tr, "lipschitz_paper_mean"),
        "test_lipschitz_official": get(te, "lipschitz_paper_mean"),
        "gap_clean": ev.gaps.clean if ev else None, "gap_adv": ev.gaps.adv if ev else None,
        "n_train_eval": get(tr, "n"), "n_test_eval": get(te, "n"),
        "attacks": ",".join(ev.attacks) if ev else "",
        "eps": ev.eps if ev else None, "norm": ev.norm if ev else None,
    }


def training_row(rec: TrainingRecord) -> dict[str, Any]:
    cfg, res = rec.config, rec.result
    cols = evaluation_columns(res.evaluation)
    params = dict(cfg.method_params)
    return {
        "dataset": cfg.dataset, "setting": rec.folder.parent.name, "run": cfg.name, "source": "training",
        "method": cfg.method, "method_params": json.dumps(params, sort_keys=True),
        "method_label": method_label(cfg.method, params), "dropout": float(cfg.dropout or 0.0),
        **cols,
        "eps": cols["eps"] if cols["eps"] is not None else cfg.eps, "norm": cols["norm"] or cfg.norm,
        "certified_test_astuteness": None, "lipschitz_bound": None, "lipschitz_measured": None,
        "profile": cfg.profile, "arch": cfg.arch, "epochs": cfg.epochs, "epochs_completed": res.epochs_completed,
        "train_subset": cfg.train_subset, "train_points": res.train_points or cfg.train_subset,
        "train_seconds": rec.timing.get("train_seconds"), "eval_seconds": rec.timing.get("eval_seconds"),
        "device": res.device_used or cfg.device, "record": rec.label,
    }


def construct_eps(rec: VerificationRecord) -> float | None:
    """The radius of a verification record's row: its first ``--eps``, else the paper's."""
    keys = [float(k) for k in rec.result.test_astuteness]
    cfg_eps = rec.config.eps[0] if rec.config.eps else None
    for cand in (cfg_eps, default_eps(rec.config.data.dataset, rec.config.norm)):
        if cand is not None and any(math.isclose(cand, k, rel_tol=1e-9) for k in keys):
            return cand
    return keys[0] if keys else cfg_eps


def norm_suffix(norm: str | None) -> str:
    """``""`` for l-inf (the tables' threat model), else ``", ℓ2"``."""
    return "" if norm in (None, "linf") else f", {NORM_NAMES.get(str(norm), str(norm))}"


def construct_row(rec: VerificationRecord) -> dict[str, Any]:
    """The constructed classifier as checked by ``lipschitz_construct.verify`` (certified)."""
    res, cfg = rec.result, rec.config
    r = finite(res.r)
    bound = finite(res.lipschitz_bound) or (1.0 / r if r else None)
    chk = res.lipschitz_check
    measured = [m for m in (finite(chk.random_max_ratio), finite(chk.adversarial_max_ratio)) if m is not None]
    eps = construct_eps(rec)
    tr, te = res.train_accuracy, res.test_accuracy
    return {
        "dataset": cfg.data.dataset, "setting": "lipschitz_construct.verify", "run": rec.folder.name,
        "source": "construct", "method": "constructed", "method_params": "{}",
        "method_label": "Constructed (certified" + norm_suffix(cfg.norm) + ")", "dropout": 0.0,
        "train_acc": tr, "test_acc": te, "train_adv_acc": None, "test_adv_acc": None,
        "test_adv_acc_pgd": None, "test_adv_acc_mt": None, "test_adv_acc_aa": None,
        "train_lipschitz": None, "test_lipschitz": None, "train_lipschitz_official": None,
        "test_lipschitz_official": None,
        "gap_clean": None if tr is None or te is None else tr - te, "gap_adv": None,
        "n_train_eval": res.n_train, "n_test_eval": res.n_test, "attacks": "", "eps": eps, "norm": cfg.norm,
        "certified_test_astuteness": res.astuteness_at(eps) if eps is not None else None, "lipschitz_bound": bound,
        "lipschitz_measured": max(measured) if measured else None, "lipschitz_check_held": chk.held,
        "r": r, "train_astuteness_at_r": res.train_astuteness_at_r,
        "certified_radius_min": res.certified_radius.min if res.certified_radius else None,
        "certified_radius_mean": res.certified_radius.mean if res.certified_radius else None,
        "profile": None, "arch": "constructed", "epochs": None, "epochs_completed": None,
        "train_subset": cfg.data.subset, "train_points": res.n_train,
        "train_seconds": None, "eval_seconds": total_seconds(rec.timing), "device": None, "record": rec.label,
    }


def evaluate_row(rec: EvaluationRecord) -> dict[str, Any]:
    """A model evaluated by ``python -m analysis.evaluate`` (the constructed one or a checkpoint)."""
    res, cfg = rec.result, rec.config
    cols = evaluation_columns(res)
    constructed = rec.constructed
    row = {
        "dataset": res.dataset, "setting": "analysis.evaluate", "run": rec.folder.name, "source": "evaluate",
        "method": "constructed" if constructed else res.model.name, "method_params": "{}",
        "method_label": ("Constructed (attacked" + norm_suffix(cols["norm"]) + ")") if constructed else res.model.name,
        "dropout": 0.0, **cols,
        "certified_test_astuteness": None, "lipschitz_bound": None, "lipschitz_measured": None,
        "profile": None, "arch": res.model.arch, "epochs": None, "epochs_completed": None,
        "train_subset": cfg.data.subset, "train_points": cfg.model.config.get("n_fit"),
        "train_seconds": None, "eval_seconds": rec.timing.get("total"), "device": cfg.device, "record": rec.label,
    }
    if constructed:
        # the estimator measures ||f(x) - f(x')||_1 over all K logits -f_i = -dist(x, X_i)/r, each
        # (1/r)-Lipschitz: its bound is K/r (K = the number of classes the classifier was fitted on)
        r = finite(cfg.model.config.get("r"))
        arrays = rec.load_arrays()
        labels = arrays.get("train_labels")
        k = int(np.unique(labels).size) if labels is not None and labels.size else \
            len(cfg.model.config.get("classes") or []) or None
        row.update(r=r, n_classes=k, lipschitz_bound=k / r if r and k else None)
        lip = arrays.get("test_lipschitz")
        if lip is not None and np.size(lip):
            row["lipschitz_measured"] = float(np.nanmax(np.asarray(lip, dtype=float)))
    return row


__all__ = ["construct_eps", "construct_row", "eps_values", "evaluate_row", "evaluation_columns", "norm_suffix",
           "separation_rows", "total_seconds", "training_row"]
