"""Achieved against achievable: a model's robust accuracy on the evaluated test points beside the
data's optimal robust accuracy on *the same points* (:func:`lipschitz_construct.robustness_bounds`,
test--test conflicts), and the *avoidable errors* between them.

At a radius eps the optimal witness (the nearest-class classifier fitted on a maximum independent
set of the conflict graph) is robustly correct on its kept points, by proof. A kept point on which
the model is not robustly correct (clean and under every attack) is an **avoidable error**: some
classifier gets it right at eps, together with all the other kept points. Their number is at least
``(witness accuracy - model robust accuracy) * N``; the model may also keep points the witness does
not (``beyond_witness``: a maximum independent set is one of many).

The bounds come from :func:`compute_bounds` (``--bounds``) or from a stored ``bounds`` record of the
same points (:func:`find_bounds_record`, ``--bounds-from``), which is used only when its data, split,
norm and radii match exactly (:func:`bounds_mismatch`). Torch-free.
"""
from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from lipschitz_construct.records import BoundsRecord, EpsBounds, kept_name
from separation.core.errors import InvalidInputError
from separation.core.records import RECORD_FILE, RecordError, find_records, load_record

from .records import Achievable, CurvePoint

log = logging.getLogger("analysis.achievable")


def _points_text(subset: int | None, seed: int) -> str:
    return f"the {subset} test points of --subset {subset} --seed {seed}" if subset else "the whole test split"


def bounds_mismatch(rec: BoundsRecord, *, source, x_test: np.ndarray, y_test: np.ndarray, dataset: str, norm: str,
                    eps: Sequence[float]) -> str | None:
    """Why the bounds record ``rec`` is not of the evaluated test points (``x_test``, ``y_test``
    of ``dataset``) at every radius of ``eps`` in ``norm``; None when it is. ``source``: the dataset
    the record's ``--subset`` is drawn from (the whole dataset as loaded); the record's points are
    rebuilt from it, checked against the record's fingerprint, then compared byte for byte."""
    c, res = rec.config, rec.result
    if c.data.dataset != dataset:
        return f"it bounds {c.data.dataset}, not {dataset}"
    if c.split != "test":
        return f"it bounds the {c.split} split (train-train conflicts), not the test points (make one with --split test)"
    if c.norm != norm:
        return f"its norm is {c.norm}, not {norm}"
    if c.data.labels != "given":
        return f"its labels are {c.data.labels!r}, not the dataset's"
    missing = [e for e in eps if res.index(e) is None]
    if missing:
        return (f"it has no radius {', '.join(f'{e:g}' for e in missing)} (its radii: "
                f"{', '.join(f'{p.eps:g}' for p in res.points)})")
    if res.n_points != len(y_test):
        return f"it bounds {res.n_points} points, this evaluation has {len(y_test)} test points"
    if source is None or getattr(source, "x_test", None) is None:
        return "its points cannot be rebuilt (no dataset with a test split to draw them from)"
    if c.data.subset and c.data.subset > len(source.x_train):
        return f"its --subset {c.data.subset} is larger than this dataset"
    ref = source.subset(c.data.subset, seed=c.data.seed) if c.data.subset else source
    if ref.fingerprint() != c.data.fingerprint:
        return f"it was computed on other data than {dataset} as loaded here (its fingerprint differs)"
    if not (np.array_equal(np.asarray(ref.y_test), np.asarray(y_test)) and ref.x_test.shape == np.shape(x_test)
            and np.array_equal(np.asarray(ref.x_test), np.asarray(x_test))):
        return (f"it bounds {_points_text(c.data.subset, c.data.seed)}, which are not the points this evaluation "
                "attacks (pass the same --subset and --seed, or --bounds to compute the bounds on them)")
    return None


def _preference(rec: BoundsRecord) -> tuple:
    """Among matching records: every radius solved, then the newest, then the folder."""
    return (all(p.solved for p in rec.result.points), rec.meta.created if rec.meta else "", rec.label)


def find_bounds_record(where: str | os.PathLike, *, explicit: bool, **match) -> BoundsRecord | None:
    """The bounds record of the evaluated points at ``where``: a record folder, or a root searched
    for one (the most complete, then the newest, of those that match; ``match``: the keywords of
    :func:`bounds_mismatch`). ``explicit`` (given by ``--bounds-from``): a record that does not
    match, or a root without one, is an :class:`InvalidInputError` naming why; otherwise None."""
    where = Path(where)
    if (where / RECORD_FILE).is_file():
        try:
            rec = load_record(where)
        except RecordError as exc:
            raise InvalidInputError(f"--bounds-from {where}: {exc}") from None
        if not isinstance(rec, BoundsRecord):
            raise InvalidInputError(f"--bounds-from {where} is a {rec.KIND!r} record, not a bounds record "
                                    "(python -m lipschitz_construct.bounds --split test ...).")
        why = bounds_mismatch(rec, **match)
        if why:
            raise InvalidInputError(f"the bounds record {rec.label} is not of the evaluated points: {why}.")
        return rec
    if not where.is_dir():
        if explicit:
            raise InvalidInputError(f"--bounds-from {where}: no such folder; pass a bounds record's folder or a "
                                    "root holding bounds records (or --bounds to compute them).")
        return None
    candidates = find_records(where, kinds=["bounds"]).of(BoundsRecord)
    reasons = {c.label: bounds_mismatch(c, **match) for c in candidates}
    fits = [c for c in candidates if reasons[c.label] is None]
    if fits:
        rec = max(fits, key=_preference)
        log.info("the data's optimum on the evaluated points: the bounds record %s", rec.label)
        return rec
    if explicit:
        shown = "; ".join(f"{label}: {why}" for label, why in list(reasons.items())[:3])
        raise InvalidInputError(
            f"no bounds record of the evaluated points under {where}"
            + (f" ({len(candidates)} of other points or radii: {shown})" if candidates else "")
            + "; make one with python -m lipschitz_construct.bounds --split test and the same --dataset, --norm, "
              "--subset, --seed and --eps, or pass --bounds to compute them.")
    log.info("no bounds record of the evaluated points under %s (--bounds computes them)", where)
    return None


def bounds_from_record(rec: BoundsRecord, eps: Sequence[float]) -> tuple[Achievable, list[EpsBounds], list[np.ndarray]]:
    """``(achievable, bounds per radius, kept mask per radius)`` of ``eps`` from a matching record."""
    arrays = rec.load_arrays()
    n = rec.result.n_points
    points, masks = [], []
    for e in eps:
        k = rec.result.index(e)
        mask = np.zeros(n, bool)
        mask[arrays[kept_name(k)]] = True
        points.append(rec.result.points[k])
        masks.append(mask)
    res = rec.result
    return (Achievable(source="record", n_points=n, separation=res.separation, threshold_eps=res.threshold_eps,
                       engine=res.engine, record=rec.label, seconds=rec.timing.get("total")), points, masks)


def compute_bounds(x, y, *, norm: str, eps: Sequence[float], time_limit: float,
                   progress: bool | None = None) -> tuple[Achievable, list[EpsBounds], list[np.ndarray]]:
    """``(achievable, bounds per radius, kept mask per radius)`` computed on the points ``(x, y)``
    (:func:`lipschitz_construct.robustness_bounds` with the randomized optimum, ``time_limit``
    seconds per radius for each stage)."""
    from lipschitz_construct import robustness_bounds
    from separation.engines import get_engine

    t0 = time.perf_counter()
    b = robustness_bounds(x, y, norm=norm, eps=list(eps), randomized=True, time_limit=time_limit, progress=progress)
    return (Achievable(source="computed", n_points=b.n, separation=b.separation, threshold_eps=b.threshold_eps,
                       engine=get_engine("auto").name, seconds=time.perf_counter() - t0),
            [b.point(e) for e in eps], [b.kept_mask(e) for e in eps])


def _accuracy(err) -> float | None:
    """``1 - err``; None where the error is None or NaN (not computed, not proven)."""
    return None if err is None or not np.isfinite(err) else 1.0 - float(err)


def curve_points(eps: Sequence[float], robust: Sequence[np.ndarray], per_attack: Sequence[dict[str, np.ndarray]],
                 bounds: Sequence[EpsBounds] | None = None,
                 kept: Sequence[np.ndarray] | None = None) -> tuple[list[CurvePoint], dict[str, np.ndarray]]:
    """The curve (one :class:`CurvePoint` per radius) from the per-point robust-correct masks (and
    per attack), with the bounds and the witness' kept masks of the same points when given; and the
    arrays ``test_kept_eKK`` / ``test_avoidable_eKK`` (see :class:`~analysis.records.EvaluationRecord`)."""
    from .records import curve_name

    out, arrays = [], {}
    for k, e in enumerate(eps):
        r = np.asarray(robust[k], bool)
        pt = CurvePoint(eps=float(e), adv_acc=float(r.mean()) if r.size else float("nan"), n_robust=int(r.sum()),
                        adv_acc_per_attack={a: float(np.asarray(m).mean()) for a, m in per_attack[k].items()})
        if bounds is not None and kept is not None:
            mask = np.asarray(kept[k], bool)
            if mask.shape != r.shape:
                raise InvalidInputError(f"the bounds hold {mask.size} points, the curve {r.size}: not the same points.")
            avoidable = mask & ~r
            b = bounds[k]
            pt.optimal_acc = _accuracy(b.optimal_error) if b.solved else None
            pt.randomized_optimal_acc = _accuracy(b.randomized_optimal_error)
            pt.lp_bound_acc, pt.witness_acc = _accuracy(b.lower_error), _accuracy(b.upper_error)
            pt.n_kept, pt.n_conflicts, pt.solved = int(mask.sum()), int(b.n_conflicts), bool(b.solved)
            pt.avoidable_errors, pt.beyond_witness = int(avoidable.sum()), int((r & ~mask).sum())
            arrays[curve_name("test_kept", k)] = mask
            arrays[curve_name("test_avoidable", k)] = avoidable
        out.append(pt)
    return out, arrays


__all__ = ["bounds_from_record", "bounds_mismatch", "compute_bounds", "curve_points", "find_bounds_record"]
