"""The best robust accuracy any classifier can reach on a labelled sample, from its conflict graph.

Two points of different classes with ``d(x_i, x_j) <= 2 eps`` *conflict*: their closed eps-balls
meet (the midpoint is in both), so no classifier is robustly correct on both. With ``G`` the graph
of conflicts on the ``N`` points (:func:`separation.conflict_pairs` at radius ``2 eps``):

* **optimal** -- a deterministic classifier is robustly correct at most on an independent set of
  ``G``, and the nearest-class classifier fitted on a maximum independent set is robustly correct
  on all of it (its points are more than ``2 eps`` from every other class). The best robust
  accuracy is exactly ``alpha(G) / N``; :meth:`RobustnessBounds.witness` is that classifier.
* **lower** -- the pairwise packing LP (``q_u + q_v <= 1`` on edges) bounds the robust accuracy of
  *any* classifier, randomized ones included (at a point both balls share, the class
  probabilities sum to at most 1); solved exactly as a matching (see ``_independent``).
* **clique_lower** (l-inf, ``cliques=True``) -- l-inf balls are boxes, and pairwise intersecting
  boxes share a point (Helly), so every clique of ``G`` carries ``sum q <= 1``: a tighter LP.

All three are *errors* (fractions of the ``N`` points): ``lower <= clique_lower <= optimal <=
upper``, where ``upper`` is the error of the best witness found (``= optimal`` where solved).
Below the separation (``2 eps`` < the smallest cross-class distance) ``G`` is empty and every
error is 0, as the paper's theorem says.

**Exact eps.** Each eps is an exact rational (:func:`~separation.core.threat.exact_eps`: ``"8/255"``,
``"251/510"``, a Fraction, or a decimal as it is written, the float ``0.3`` being 3/10). On byte
data (uint8, or floats that are all k/255) a pair at integer distance ``k`` conflicts at eps iff
``k <= floor(2 eps 255)`` (l2, ``k`` the squared distance: ``k <= floor((2 eps 255)**2)``), decided
in integers: the optimum is 100% for every eps below half the separation and below 100% from
exactly half of it on (:attr:`RobustnessBounds.threshold_eps_text`). On float data the float64
distance of a pair is compared with the float nearest to ``2 eps``.
"""
from __future__ import annotations

import dataclasses
import math
import time
from fractions import Fraction
from typing import Sequence

import numpy as np

from separation import conflict_pairs
from separation.core.arrays import as_labels, as_points, check_norm
from separation.core.errors import InvalidInputError, LimitError
from separation.core.memory import GiB, available_bytes, check_fits
from separation.core.progress import progress_bar
from separation.core.threat import eps_text, exact_eps_list
from separation.engines.conflicts import TooManyPairs, byte_distances, byte_limit

from ._common_point import CommonPoint
from ._graph import from_pairs
from ._independent import clique_bound, compile_kernels, solve
from ._randomized import randomized_optimum
from .records import EpsBounds, radius_position

#: Peak memory per conflict, end to end (at the largest eps), with room to spare: the search holds
#: 16 bytes per pair and sorts them into its 24-byte int64 / float64 result (40 at its peak); then
#: 9 bytes per pair (int32 ends, the radius level) and per radius the graph (8 per edge), the
#: subgraph of the LP's 1/2 vertices (8) and its bipartite part (5): about 30.
BYTES_PER_CONFLICT = 64
#: Of which still needed once the pairs are found (checked before the graphs are built).
SOLVE_BYTES_PER_CONFLICT = 40
#: Memory per point (labels, LP values, the greedy's heap, masks), beyond the input.
BYTES_PER_POINT = 256
#: With ``cliques``, the share of the time limit kept for the clique cover and LP: the MILPs, which
#: decide the exact optimum, get the rest, and the clique stage also what they leave unused.
CLIQUE_SHARE = 0.25
#: What to do when the conflicts do not fit in memory.
REMEDY = "pass smaller eps or --subset (fewer points)"


class RobustnessBounds:
    """What :func:`robustness_bounds` found, one :class:`EpsBounds` per radius (ascending ``eps``).

    Attributes: ``norm``, ``n`` (points), ``n_classes``, ``eps`` (tuple of floats, the nearest to
    each radius: for plots), ``eps_exact`` (tuple of Fractions: the radii), ``points`` (list of
    :class:`EpsBounds`), ``kept`` (per radius, the sorted indices of the witness' points),
    ``separation`` (the smallest cross-class distance when it is ``<= 2 max(eps)``, else None: then
    no radius has a conflict), ``separation_k`` (on byte data its integer distance, squared for l2;
    else None), ``seconds`` (``conflicts``, ``solve``, ``total``). A radius is named by its exact
    value (text, Fraction, int) or by a float (the nearest float of a radius, to 1e-12 relative).
    """

    def __init__(self, *, norm, x, y, engine, eps, points, kept, separation, seconds, separation_k=None):
        self.norm = norm
        self.n = len(y)
        self.n_classes = int(np.unique(y).size)
        self.eps_exact = tuple(eps)
        self.eps = tuple(float(e) for e in self.eps_exact)
        self.separation_k = separation_k
        self.points = list(points)
        self.kept = list(kept)
        self.separation = separation
        self.seconds = dict(seconds)
        self._x, self._y, self._engine = x, y, engine

    def _column(self, name: str) -> np.ndarray:
        return np.array([np.nan if getattr(p, name) is None else getattr(p, name) for p in self.points], float)

    @property
    def optimal_error(self) -> np.ndarray:
        return self._column("optimal_error")

    @property
    def lower_error(self) -> np.ndarray:
        return self._column("lower_error")

    @property
    def clique_lower_error(self) -> np.ndarray:
        return self._column("clique_lower_error")

    @property
    def randomized_optimal_error(self) -> np.ndarray:
        """Per radius the exact optimal error of a randomized classifier (NaN: not computed or not proven)."""
        return self._column("randomized_optimal_error")

    @property
    def upper_error(self) -> np.ndarray:
        return self._column("upper_error")

    @property
    def n_conflicts(self) -> np.ndarray:
        return np.array([p.n_conflicts for p in self.points], np.int64)

    @property
    def threshold_eps(self) -> float | None:
        """The smallest eps with an optimum below 100%: half the separation (None: above every eps)."""
        return None if self.separation is None else self.separation / 2

    @property
    def threshold_eps_text(self) -> str | None:
        """:attr:`threshold_eps` exactly, on byte data: ``k/510`` (l2 ``sqrt(k)/510``, or the
        rational where ``k`` is a square) as :func:`~separation.core.threat.eps_text` writes it;
        None on float data or above every eps."""
        return None if self.separation_k is None else half_separation_text(self.separation_k, self.norm)

    def _index(self, eps) -> int:
        k = radius_position(self.eps_exact, eps)
        if k is None:
            raise InvalidInputError(f"eps={eps!r} was not computed; the radii are "
                                    f"{', '.join(eps_text(e) for e in self.eps_exact)}.")
        return k

    def point(self, eps) -> EpsBounds:
        """The :class:`EpsBounds` at the radius ``eps`` (a float or an exact value, as :meth:`kept_mask`)."""
        return self.points[self._index(eps)]

    def kept_mask(self, eps) -> np.ndarray:
        """``(n,)`` bool: the points the witness at ``eps`` keeps (robustly correct on each)."""
        mask = np.zeros(self.n, bool)
        mask[self.kept[self._index(eps)]] = True
        return mask

    def witness(self, eps):
        """``(classifier, kept_mask)``: a :class:`~lipschitz_construct.LocallyLipschitzClassifier`
        fitted on the kept points (``r="auto"``), correct and certified at radius ``>= eps`` on
        every kept point; its robust accuracy on the sample is ``1 - upper_error``. ``eps``: as
        :meth:`kept_mask` takes it."""
        from .classifier import LocallyLipschitzClassifier

        mask = self.kept_mask(eps)
        if np.unique(self._y[mask]).size < 2:
            shown = eps_text(self.eps_exact[self._index(eps)])
            raise InvalidInputError(f"the witness at eps={shown} keeps points of one class only; the nearest-class "
                             "classifier needs two (it would be the constant classifier).")
        clf = LocallyLipschitzClassifier(norm=self.norm, r="auto", engine=self._engine)
        return clf.fit(self._x[mask], self._y[mask]), mask

    def rows(self) -> list[dict]:
        """One dict per radius (the :class:`EpsBounds` fields)."""
        return [dataclasses.asdict(p) for p in self.points]

    def __repr__(self) -> str:
        return f"RobustnessBounds(norm={self.norm!r}, n={self.n}, eps={self.eps})"


def _solve_eps(n, u, v, level, k, eps, *, x, norm, cliques, randomized, time_limit):
    """The bounds at the ``k``-th radius ``eps`` (exact): the graph of the pairs with ``level <=
    k``, the deterministic optimum within ``time_limit`` seconds from the start (module docstring
    of ``_independent``), then the randomized optimum within ``time_limit`` more (``_randomized``)."""
    t0 = time.perf_counter()
    g = from_pairs(n, u, v, level, k)
    seconds = {"graph": time.perf_counter() - t0}
    sol = solve(g, deadline=t0 + time_limit * (1 - CLIQUE_SHARE if cliques else 1.0))
    seconds.update((name, float(s)) for name, s in sol.seconds.items() if name != "total")
    clique_value = None
    if cliques:
        t1 = time.perf_counter()
        clique_value = clique_bound(g, deadline=t0 + time_limit)
        seconds["cliques"] = time.perf_counter() - t1
    rand = None
    if randomized:
        t1 = time.perf_counter()
        rand = randomized_optimum(g, sol.q, CommonPoint(x, norm, eps), norm, deadline=t1 + time_limit)
        seconds["randomized"] = time.perf_counter() - t1
    kept = int(sol.keep.sum())
    point = EpsBounds(
        eps=float(eps), n_conflicts=g.m, n_conflicted_points=int(np.count_nonzero(g.degrees())),
        n_components=sol.n_components, largest_component=sol.largest_component, n_half_integral=sol.n_half,
        n_milp_components=sol.n_milp, n_unsolved_components=sol.n_unsolved,
        optimal_error=1.0 - kept / n if sol.exact else float("nan"),
        lower_error=max(0.0, 1.0 - sol.lp_value / n),
        clique_lower_error=None if clique_value is None else max(0.0, 1.0 - clique_value / n),
        upper_error=1.0 - kept / n, solved=sol.exact, n_kept=kept, seconds=seconds, eps_text=eps_text(eps))
    if rand is not None:
        point.randomized_optimal_error = 1.0 - float(rand.value) / n if rand.exact else float("nan")
        # the witness is a (deterministic, so randomized) classifier: its error bounds the optimum too
        point.randomized_bracket = [max(0.0, 1.0 - rand.upper / n),
                                    min(max(0.0, 1.0 - rand.lower / n), 1.0 - kept / n)]
        point.n_set_components, point.n_common_point_sets = rand.n_components, rand.n_sets
        point.largest_common_point_set, point.n_undecided_sets = rand.largest_set, rand.undecided
    point.seconds["total"] = time.perf_counter() - t0
    return point, np.flatnonzero(sol.keep)


def _search(xs, ys, *, norm, radius, engine, max_pairs, progress):
    """The conflicts within ``radius``, stopped before they outgrow the memory: at most the pairs
    :data:`BYTES_PER_CONFLICT` bytes each leave room for (and ``max_pairs``)."""
    have = available_bytes()
    cap = max_pairs
    if have is not None:
        room = max(0, (have - BYTES_PER_POINT * len(ys)) // BYTES_PER_CONFLICT)
        cap = room if max_pairs is None else min(max_pairs, room)
    try:
        return conflict_pairs(xs, ys, norm=norm, radius=radius, engine=engine, max_pairs=cap, progress=progress)
    except TooManyPairs as exc:
        if cap == max_pairs:
            raise
        need = BYTES_PER_CONFLICT * (cap + 1) + BYTES_PER_POINT * len(ys)
        raise LimitError(f"the robustness bounds need about {need / GiB:.1f} GiB for more than {cap:,} conflicts "
                         f"(pairs within 2 max(eps) = {eps_text(radius)}), and {have / GiB:.1f} GiB are available; "
                         f"{REMEDY}") from exc


def _compact(n, i, j, d, limits, byte_norm=None):
    """``(u int32, v int32, level uint8)`` of the pairs on ``n`` points: ``level`` the first radius
    ``2 eps`` they are within; 9 bytes per pair, made in chunks. Bytes (``byte_norm`` given): the
    pair's integer distance (:func:`~separation.engines.conflicts.byte_distances`) ``<=
    limits[level]``, the integer limits of the radii; floats: ``d <= limits[level]``, the floats
    nearest to them."""
    dt = np.int32 if n < 2**31 else np.int64
    u, v = i.astype(dt), j.astype(dt)
    level = np.empty(len(d), np.uint8 if len(limits) < 256 else np.uint16)
    for s in range(0, len(d), 1 << 20):
        part = d[s:s + (1 << 20)]
        if byte_norm is not None:  # integers held exactly in float64: one temporary array
            part = byte_distances(part, byte_norm, np.float64)
        level[s:s + (1 << 20)] = np.searchsorted(limits, part, "left")
    return u, v, level


def half_separation_text(k: int, norm: str) -> str:
    """Half the separation of byte data at integer distance ``k`` (l2: squared), exactly: the
    text of ``k/510`` (l2: of ``sqrt(k)/510`` where ``k`` is a square, else ``"sqrt(k)/510"``)."""
    if norm != "l2":
        return eps_text(Fraction(k, 510))
    root = math.isqrt(k)
    return eps_text(Fraction(root, 510)) if root * root == k else f"sqrt({k})/510"


def robustness_bounds(x, y, *, norm: str = "linf", eps: float | str | Fraction | Sequence, engine="auto",
                      cliques: bool = False, randomized: bool = False, time_limit: float = 60.0,
                      progress: bool | None = None,
                      max_pairs: int | None = 100_000_000) -> RobustnessBounds:
    """The optimal robust accuracy on ``(x, y)`` at each radius, with an LP bound and a witness.

    Args:
        x: ``(n, *shape)`` uint8 (0..255) or floats in [0, 1]; numpy or torch.
        y: ``(n,)`` integer labels, at least two classes.
        norm: ``"linf"``, ``"l2"`` or ``"l1"``.
        eps: a radius or a sequence of radii (``>= 0``, [0, 1] pixel units), exact: Fractions, text
            (``"8/255"``, ``"0.3"``) or numbers, a float being the decimal of its shortest repr
            (module docstring); sorted, duplicates dropped.
        engine: the exact range search (see :func:`separation.conflict_pairs`).
        cliques: l-inf only: also the LP bound over a greedy clique cover (``clique_lower_error``;
            looser than the randomized optimum, kept for comparison).
        randomized: also the exact optimum of randomized classifiers
            (``randomized_optimal_error``, :mod:`._randomized`), given its own ``time_limit``.
        time_limit: seconds per radius for the parts that may take long: the greedy witness, the
            MILPs of the non-bipartite components and (with ``cliques``, which then gets the last
            :data:`CLIQUE_SHARE` and what the MILPs leave) the clique cover and LP; a part not done in time is skipped or stopped, and its
            result flagged: the optimum NaN (``solved`` False; ``upper_error`` is the best witness
            found), the clique bound None. The matchings (exact, polynomial) always run.
        progress: progress bars (conflict search, radii); None: where a person watches.
        max_pairs: stop with a MemoryError when more conflicts than this are found.

    Returns:
        :class:`RobustnessBounds`. The conflict search runs once, at ``2 max(eps)``.

    Raises:
        LimitError: (a MemoryError) more conflicts than ``max_pairs``, or than the available memory
            holds at :data:`BYTES_PER_CONFLICT` bytes each (checked as they are found, before the
            graph is built); the message says how much memory and what to do.
    """
    check_norm(norm)
    exact = exact_eps_list(eps)
    if cliques and norm != "linf":
        raise InvalidInputError(f"cliques=True needs norm='linf' (the clique bound rests on l-inf balls being boxes); "
                         f"got norm={norm!r}.")
    if isinstance(time_limit, bool) or not isinstance(time_limit, (int, float)) or not time_limit > 0 \
            or not np.isfinite(time_limit):
        raise InvalidInputError(f"time_limit={time_limit!r} must be a positive number of seconds.")
    xs = as_points(x, "x")
    ys = as_labels(y, len(xs), "y")
    if np.unique(ys).size < 2:
        raise InvalidInputError("y has fewer than two classes: with one class every classifier is robustly correct.")
    t0 = time.perf_counter()
    i, j, d = _search(xs, ys, norm=norm, radius=2 * max(exact), engine=engine, max_pairs=max_pairs,
                      progress=progress)
    t_pairs = time.perf_counter() - t0
    n, m = len(ys), len(d)
    check_fits(SOLVE_BYTES_PER_CONFLICT * m + BYTES_PER_POINT * n, f"the robustness bounds of {m:,} conflicts",
               remedy=REMEDY)
    separation = float(d.min()) if m else None
    on_bytes = xs.dtype == np.uint8
    separation_k = int(byte_distances(d.min(), norm)) if m and on_bytes else None
    if on_bytes:  # the integer limit of each 2 eps, exactly
        limits = np.array([byte_limit(2 * e, norm, xs.shape[1]) for e in exact], np.float64)  # exact: < 2**53
    else:  # the float nearest to each 2 eps
        limits = np.array([float(2 * e) for e in exact])
    u, v, level = _compact(n, i, j, d, limits, norm if on_bytes else None)
    del i, j, d
    compile_kernels()
    points, kept = [], []
    for k, e in enumerate(progress_bar(exact, enabled=progress, desc=f"bounds ({norm})", unit="eps")):
        p, w = _solve_eps(n, u, v, level, k, e, x=xs, norm=norm, cliques=cliques, randomized=randomized,
                          time_limit=float(time_limit))
        points.append(p)
        kept.append(w)
    # an independent set at a larger eps is one at every smaller eps: keep the larger witness
    for k in range(len(exact) - 2, -1, -1):
        if len(kept[k + 1]) > len(kept[k]):
            kept[k] = kept[k + 1]
            p = points[k]
            p.n_kept = len(kept[k])
            p.upper_error = 1.0 - p.n_kept / n
            if p.randomized_bracket is not None:
                p.randomized_bracket[1] = min(p.randomized_bracket[1], p.upper_error)
    seconds = {"conflicts": t_pairs, "solve": time.perf_counter() - t0 - t_pairs, "total": time.perf_counter() - t0}
    return RobustnessBounds(norm=norm, x=xs, y=ys, engine=engine, eps=exact, points=points, kept=kept,
                            separation=separation, seconds=seconds, separation_k=separation_k)


__all__ = ["BYTES_PER_CONFLICT", "BYTES_PER_POINT", "CLIQUE_SHARE", "EpsBounds", "REMEDY", "RobustnessBounds",
           "SOLVE_BYTES_PER_CONFLICT", "half_separation_text", "robustness_bounds"]
