"""What an evaluation computes (:class:`EvalConfig`, torch-free: training configs embed it) and what
it returns (:class:`Evaluation`), with its printed summary."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from separation.core.errors import InvalidInputError
from separation.core.paper import LIPSCHITZ_STEP_SIZE, LIPSCHITZ_STEPS

from .records import EvalResult, EvaluationRecord

SPLITS = ("train", "test")
LIPSCHITZ_RNGS = ("generator", "official")


@dataclasses.dataclass(frozen=True)
class EvalConfig:
    """What to compute. ``eps=None``: the paper's radius for the dataset; a sequence of radii: the
    test points are attacked at each (a robust-accuracy curve), the headline numbers (splits,
    Lipschitz ball) are at the paper's radius when it is one of them, else at the smallest.
    ``bounds``: the data's optimal robust accuracy on the same test points at each radius
    (:func:`lipschitz_construct.robustness_bounds`, ``bounds_time_limit`` seconds per radius) and
    the avoidable errors beside the curve. ``attacks``: names from
    :data:`analysis.attack_specs.ATTACK_NAMES` or dicts ``{"name": ..., **params}`` (robust accuracy
    is the per-example worst case). ``lipschitz``: estimator modes (``ascent``, ``paper``; ``()``
    for none) on a ball of ``lipschitz_eps`` (default ``eps``); ``lipschitz_rng``: ``generator`` (a
    private generator seeded by ``seed``) or ``official`` (torch's global generator seeded by
    ``seed``, consumed as the official code does: the paper mode then returns the official values
    seed for seed). ``subset``: a fixed random subset of that many train and test points."""

    eps: float | Sequence[float] | None = None
    norm: str = "linf"
    attacks: tuple = ("pgd", "multitargeted")
    lipschitz: tuple[str, ...] = ("ascent", "paper")
    lipschitz_eps: float | None = None
    lipschitz_steps: int = LIPSCHITZ_STEPS
    lipschitz_step_size: float = LIPSCHITZ_STEP_SIZE
    lipschitz_rng: str = "generator"
    subset: int | None = None
    seed: int = 0
    batch_size: int = 128
    splits: tuple[str, ...] = SPLITS
    device: str = "auto"
    bounds: bool = False
    bounds_time_limit: float = 60.0

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], **fixed: Any) -> "EvalConfig":
        """From a mapping (e.g. a training config's ``evaluation``); unknown keys are an error."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise InvalidInputError(f"evaluation: unknown setting(s) {', '.join(unknown)}; valid: {', '.join(sorted(names))}.")
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return cls(**{**values, **fixed})


@dataclasses.dataclass
class Evaluation:
    """An evaluation: its record (``config``, ``result``, ``timing``, ``meta``), the per-point
    arrays, and whether the record was reused."""

    record: EvaluationRecord
    arrays: dict[str, np.ndarray]
    reused: bool = False

    @property
    def result(self) -> EvalResult:
        return self.record.result

    @property
    def folder(self) -> Path | None:
        return self.record.folder

    def __repr__(self) -> str:
        r = self.result
        parts = [f"model={r.model.name!r}", f"dataset={r.dataset!r}", f"{r.norm} eps={r.eps:g}"]
        for name in SPLITS:
            s = r.split(name)
            if s is not None:
                adv = "" if s.adv_acc is None else f" adv {100 * s.adv_acc:.1f}%"
                lip = "" if s.lipschitz_mean is None else f" lip {s.lipschitz_mean:.4g}"
                parts.append(f"{name} n={s.n} clean {100 * s.clean_acc:.1f}%{adv}{lip}")
        where = f", record={self.record.label!r}" if self.folder else ""
        return f"Evaluation({', '.join(parts)}{where}{', reused' if self.reused else ''})"

    def _repr_html_(self) -> str:
        return self.to_frame("splits").to_html(float_format=lambda v: f"{v:.4g}") + f"<p>{self!r}</p>"

    def to_frame(self, kind: str = "points"):
        """A pandas DataFrame: ``"points"`` (one row per evaluated point: model, split, index,
        label, correct, adv_correct, per-attack correctness, local Lipschitz estimates) or
        ``"splits"`` (one row per split with the record's numbers, and the model's name), so that
        the frames of several models can be concatenated side by side."""
        import pandas as pd

        model = self.result.model.name
        if kind == "splits":
            rows = [{"model": model, "split": n, **dataclasses.asdict(s)} for n in SPLITS
                    if (s := self.result.split(n)) is not None]
            return pd.DataFrame(rows).set_index(["model", "split"])
        if kind != "points":
            raise InvalidInputError(f"kind must be 'points' or 'splits', got {kind!r}.")
        frames = []
        for split in SPLITS:
            labels = self.arrays.get(f"{split}_labels")
            if labels is None:
                continue
            cols = {"model": model, "split": split, "index": np.arange(len(labels)), "label": labels}
            for key, arr in self.arrays.items():
                if key.startswith(f"{split}_") and key != f"{split}_labels":
                    cols[key[len(split) + 1:]] = arr
            frames.append(pd.DataFrame(cols))
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def format_summary(result: EvalResult) -> str:
    """A short human-readable table of an evaluation result."""
    def fmt(v, pct=False):
        return "-" if v is None else (f"{100 * v:.2f}%" if pct else f"{v:.4g}")

    m = result.model
    lines = [f"model {m.name} ({m.arch or '?'}, {m.n_params:,} parameters)  dataset {result.dataset}  "
             f"{result.norm} eps={result.eps:g}  attacks: {', '.join(result.attacks) or 'none'}",
             f"{'split':<6} {'n':>6} {'clean':>8} {'adv':>8} {'lip':>10} {'lip(paper)':>11}  per attack"]
    for split in SPLITS:
        s = result.split(split)
        if s is None:
            continue
        per = ", ".join(f"{k} {fmt(v, True)}" for k, v in s.adv_acc_per_attack.items())
        lines.append(f"{split:<6} {s.n:>6} {fmt(s.clean_acc, True):>8} {fmt(s.adv_acc, True):>8} "
                     f"{fmt(s.lipschitz_mean):>10} {fmt(s.lipschitz_paper_mean):>11}  {per}")
    g = result.gaps
    lines.append("gaps (train-test acc, test-train lip): " + ", ".join(
        f"{k} {fmt(v)}" for k, v in dataclasses.asdict(g).items() if v is not None or k != "lipschitz_paper"))
    lines += curve_lines(result)
    lines += [f"warning: {w}" for w in result.warnings]
    return "\n".join(lines)


def curve_lines(result: EvalResult) -> list[str]:
    """The robust-accuracy curve of the test points, beside the data's optimum when known."""
    if not result.curve:
        return []
    ach = result.achievable

    def pct(v):
        return "-" if v is None else f"{100 * v:.2f}%"

    n = result.test.n if result.test is not None else None
    title = f"robust test accuracy at each eps ({len(result.curve)} radii, {n} points)"
    if ach is not None:
        where = "computed" if ach.source == "computed" else f"record {ach.record}"
        title += (f"; the data's optimum on the same points ({where}): optimal = best deterministic classifier, "
                  "LP = no classifier does better, avoidable = kept by the optimal witness, lost by the model")
    out = ["", title]
    head = f"{'eps':>9} {'model':>8}"
    if ach is not None:
        head += f" {'optimal':>8} {'random.':>8} {'LP bound':>8} {'witness':>8} {'avoidable':>9}"
    out.append(head)
    for p in result.curve:
        row = f"{p.eps:>9.6g} {pct(p.adv_acc):>8}"
        if ach is not None:
            row += (f" {pct(p.optimal_acc):>8} {pct(p.randomized_optimal_acc):>8} {pct(p.lp_bound_acc):>8} "
                    f"{pct(p.witness_acc):>8} {'-' if p.avoidable_errors is None else p.avoidable_errors:>9}")
        out.append(row)
    return out


__all__ = ["EvalConfig", "Evaluation", "LIPSCHITZ_RNGS", "SPLITS", "curve_lines", "format_summary"]
