"""``conflict_pairs``: every pair of differently-labelled points within a radius, exactly.

Two points of different classes at distance ``<= 2 eps`` *conflict*: their eps-balls intersect,
so no classifier is robustly correct on both. The conflict graph behind
:func:`lipschitz_construct.robustness_bounds` is this range search at radius ``2 eps``.

The radius is exact (:func:`~separation.core.threat.exact_eps`): ``"251/255"``, a Fraction, or a
decimal taken as the number it spells (the float ``0.6`` is 6/10). Bytes are decided on their
integer distance in exact arithmetic; floats compare their float64 distance with the float
nearest to the radius (see :mod:`separation.engines.conflicts`).
"""
from __future__ import annotations

import logging
import time
from fractions import Fraction
from typing import NamedTuple

import numpy as np

from .core.arrays import as_labels, as_points, check_norm, common_storage
from .core.errors import InvalidInputError
from .core.progress import progress_bar, resolve
from .core.threat import exact_eps
from .engines import Engine, get_engine
from .engines.conflicts import Layout

log = logging.getLogger("separation")

#: The most pairs a search keeps before it stops with a LimitError (a MemoryError; about 24 bytes each).
DEFAULT_MAX_PAIRS = 100_000_000


class ConflictPairs(NamedTuple):
    """The pairs found: ``i`` and ``j`` (int64 indices; one sample: ``i < j``; query x database:
    ``i`` a query, ``j`` a database point), ``d`` their distances (float64, [0, 1] pixel units),
    sorted by ``(i, j)``. Unpacks as ``i, j, d = conflict_pairs(...)``."""

    i: np.ndarray
    j: np.ndarray
    d: np.ndarray


def _run(engine, xq, yq, xd, yd, *, same_set, norm, radius, max_pairs, progress):
    eng = get_engine(engine, capability="range_search")
    on = resolve(progress)
    bar = progress_bar(enabled=on, total=Layout(yq, yd, same_set).work() if on else None,
                       desc=f"conflicts ({eng.name}, {norm}, radius {float(radius):g})", unit="pair", unit_scale=True)
    t0 = time.perf_counter()
    try:
        out = eng.range_search(xq, yq, xd, yd, norm=norm, radius=radius, same_set=same_set, max_pairs=max_pairs,
                               progress=bar.update if on else None)
    finally:
        bar.close()
    log.debug("conflict pairs (%s, %s, radius %g): %d in %.2fs", eng.name, norm, float(radius), len(out[0]),
              time.perf_counter() - t0)
    return out


def _labels_ok(y: np.ndarray, name: str) -> None:
    if np.unique(y).size < 2:
        raise InvalidInputError(f"{name} has fewer than two classes: conflicts are pairs of different labels.")


def conflict_pairs(x, y, *, norm: str = "linf", radius: float | Fraction | str, engine: str | Engine = "auto",
                   max_pairs: int | None = DEFAULT_MAX_PAIRS, progress: bool | None = False) -> ConflictPairs:
    """Every pair ``i < j`` with ``y[i] != y[j]`` and ``d(x[i], x[j]) <= radius``, exactly.

    Args:
        x: ``(n, *shape)`` uint8 (0..255) or floats in [0, 1]; numpy or torch.
        y: ``(n,)`` integer labels, at least two classes.
        norm: ``"linf"``, ``"l2"`` or ``"l1"``.
        radius: in [0, 1] pixel units, ``>= 0``, exact: a Fraction, text (``"251/255"``,
            ``"0.6"``) or a number, a float taken as the decimal of its shortest repr (``0.6`` is
            3/5, not the double nearest to it). A pair at exactly ``radius`` is included: for
            bytes the test is on the integer distance ``k`` in exact arithmetic (``k / 255``, l2
            ``sqrt(k) / 255``, is ``<= radius``: ``k <= floor(255 radius)``, l2
            ``k <= floor((255 radius)**2)``); floats compare their float64 distance with the float
            nearest to ``radius``.
        engine: ``"auto"`` (the fastest engine here with a range search), ``"cpu"`` (numba kernel
            with exact early exit; l2 by GEMM with an exact recheck), ``"cuda"`` (torch blocks on
            the GPU), ``"reference"`` (float64 brute force), or an engine instance that has
            ``range_search`` (e.g. a :class:`~separation.engines.DaskEngine`: block tasks on a
            cluster). An engine without it is an InvalidInputError naming those that have it.
        max_pairs: stop with a :class:`~separation.core.errors.LimitError` (a MemoryError) once
            more pairs than this are found (None: no limit).
        progress: a progress bar over the pair comparisons (None: when a person is watching).

    Returns:
        :class:`ConflictPairs` ``(i, j, d)`` sorted by ``(i, j)``; memory grows with the number
        of pairs found, not with ``n**2``.
    """
    check_norm(norm)
    r = exact_eps(radius, "radius")
    xs = as_points(x, "x")
    ys = as_labels(y, len(xs), "y")
    _labels_ok(ys, "y")
    (xs,), _ = common_storage(xs)
    i, j, d = _run(engine, xs, ys, xs, ys, same_set=True, norm=norm, radius=r, max_pairs=max_pairs,
                   progress=progress)
    return ConflictPairs(i, j, d)


def conflict_pairs_between(x_query, y_query, x_db, y_db, *, norm: str = "linf", radius: float | Fraction | str,
                           engine: str | Engine = "auto", max_pairs: int | None = DEFAULT_MAX_PAIRS,
                           progress: bool | None = False) -> ConflictPairs:
    """Every (query ``i``, database point ``j``) with different labels and ``d <= radius``
    (e.g. test--train conflicts); the same conventions as :func:`conflict_pairs`."""
    check_norm(norm)
    r = exact_eps(radius, "radius")
    xq = as_points(x_query, "x_query")
    yq = as_labels(y_query, len(xq), "y_query")
    xd = as_points(x_db, "x_db")
    yd = as_labels(y_db, len(xd), "y_db")
    if xq.shape[1] != xd.shape[1]:
        raise InvalidInputError(f"x_query has {xq.shape[1]} features per point but x_db has {xd.shape[1]}; "
                         "they must have the same shape.")
    (xq, xd), _ = common_storage(xq, xd)
    i, j, d = _run(engine, xq, yq, xd, yd, same_set=False, norm=norm, radius=r, max_pairs=max_pairs,
                   progress=progress)
    return ConflictPairs(i, j, d)


__all__ = ["ConflictPairs", "DEFAULT_MAX_PAIRS", "conflict_pairs", "conflict_pairs_between"]
