"""Number formatting and display names of the reports (accuracies in %, distances with three
decimals, a dash for what was not measured)."""
from __future__ import annotations

import math
from typing import Any, Callable, Iterable

import numpy as np

from separation.core.paper import DATASET_ORDER

from ..methods import METHODS

DASH = "—"
DATASET_NAMES = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST", "cifar10": "CIFAR-10",
                 "cifar100": "CIFAR-100", "svhn": "SVHN", "restricted-imagenet": "Restricted ImageNet",
                 "digits": "digits (8×8)", "npz": "npz", "imagefolder": "image folders",
                 "tiny-imagenet": "Tiny-ImageNet", "imagenet": "ImageNet"}
NORM_NAMES = {"linf": "ℓ∞", "l2": "ℓ2", "l1": "ℓ1"}
METHOD_NAMES = {m.name: m.paper_name for m in METHODS.values()}
#: The parameter that names a method's variant in the tables (as in the run names).
METHOD_MAIN_PARAM = {m.name: m.main_param for m in METHODS.values() if m.main_param is not None}
ATTACK_NAMES = {"pgd": "PGD", "multitargeted": "multi-targeted", "autoattack": "AutoAttack"}


def finite(v: Any) -> float | None:
    """``v`` as a finite float, else None (None, booleans, strings, NaN and infinities)."""
    if not isinstance(v, (int, float, np.integer, np.floating)) or isinstance(v, (bool, np.bool_)):
        return None
    f = float(v)
    return f if math.isfinite(f) else None


def fmt_pct(v: Any, digits: int = 1) -> str:
    v = finite(v)
    return DASH if v is None else f"{100 * v:.{digits}f}"


def fmt_pp(v: Any, digits: int = 1, signed: bool = False) -> str:
    """A difference of fractions in percentage points (``+1.2`` with ``signed``)."""
    v = finite(v)
    if v is None:
        return DASH
    if round(100 * v, digits) == 0:
        return f"{0:.{digits}f}"  # no "+0.0" / "−0.0"
    s = f"{100 * v:+.{digits}f}" if signed else f"{100 * v:.{digits}f}"
    return s.replace("-", "−")


def fmt_num(v: Any, digits: int = 3) -> str:
    """Fixed decimals; ``∞`` for infinity."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return DASH
    f = float(v)
    if math.isinf(f):
        return "∞" if f > 0 else "−∞"
    return f"{f:.{digits}f}"


def fmt_sig(v: Any, digits: int = 3) -> str:
    """Significant digits (Lipschitz constants span decades)."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return DASH
    f = float(v)
    if math.isinf(f):
        return "∞"
    if f != 0 and abs(f) >= 10 ** digits:
        return f"{f:,.0f}"
    return f"{f:#.{digits}g}".rstrip(".")


def fmt_int(v: Any) -> str:
    f = finite(v)
    return DASH if f is None else f"{int(round(f)):,}"


def fmt_eps(v: Any) -> str:
    f = finite(v)
    return DASH if f is None else f"{f:g}"


def dataset_name(ds: Any) -> str:
    return DATASET_NAMES.get(str(ds), str(ds))


def dataset_rank(ds: Any) -> tuple[int, str]:
    ds = str(ds)
    return (DATASET_ORDER.index(ds) if ds in DATASET_ORDER else len(DATASET_ORDER), ds)


def method_rank(method: Any, params: dict | None) -> tuple:
    m = str(method)
    order = list(METHODS)
    rank = order.index(m) if m in order else len(order)
    v = finite((params or {}).get(METHOD_MAIN_PARAM[m][0])) if m in METHOD_MAIN_PARAM else None
    return (rank, m, v if v is not None else -1.0)


def method_label(method: Any, params: dict | None) -> str:
    m = str(method)
    name = METHOD_NAMES.get(m, m)
    if m in METHOD_MAIN_PARAM:
        key, sym = METHOD_MAIN_PARAM[m]
        v = finite((params or {}).get(key))
        if v is not None:
            name += f" ({sym}={v:g})"
    return name


def summarize(values: Iterable[Any], fmt: Callable[[Any], str] = str, *, none: str = "n/a") -> str:
    """One value, or the distinct values joined (kept in first-seen order)."""
    seen: list[str] = []
    for v in values:
        s = none if v is None else fmt(v)
        if s not in seen:
            seen.append(s)
    return seen[0] if len(seen) == 1 else ", ".join(seen) if seen else none


def attack_names(attacks: Any) -> str:
    """``"pgd,multitargeted"`` -> ``"PGD + multi-targeted"`` (``"none"`` when empty)."""
    names = [a for a in (attacks.split(",") if isinstance(attacks, str) else attacks or []) if a]
    return " + ".join(ATTACK_NAMES.get(str(a), str(a)) for a in names) or "none"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


__all__ = ["ATTACK_NAMES", "DASH", "DATASET_NAMES", "METHOD_MAIN_PARAM", "METHOD_NAMES", "NORM_NAMES", "attack_names",
           "dataset_name", "dataset_rank", "duration", "finite", "fmt_eps", "fmt_int", "fmt_num", "fmt_pct", "fmt_pp",
           "fmt_sig", "method_label", "method_rank", "summarize"]
