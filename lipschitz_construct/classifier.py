"""The locally Lipschitz classifier of the proof (Yang et al., NeurIPS 2020, Theorem 4.1).

With ``X_i`` the training points of class ``i`` and ``r`` half the train--train separation,

    f_i(x) = dist(x, X_i) / r          g(x) = argmin_i f_i(x)   (the nearest class)

Each ``dist(., X_i)`` is 1-Lipschitz in the chosen norm, so each ``f_i`` is ``(1/r)``-Lipschitz and
the prediction cannot change within half the gap between the two smallest class distances: that
gap is a *certificate*, not an attack estimate.
"""
from __future__ import annotations

import logging
import numbers
import time
from typing import Sequence

import numpy as np

from separation import ClassIndex, compute_separation
from separation.core.arrays import as_labels, as_points, check_norm
from separation.core.errors import InvalidInputError
from separation.core.extras import require
from separation.core.threat import check_eps
from separation.engines import ENGINES, Engine

log = logging.getLogger(__name__)


class NotFittedError(InvalidInputError, AttributeError):
    """A method that needs the training data was called before :meth:`fit` (as in scikit-learn)."""


class InvalidParameterError(InvalidInputError, TypeError):
    """A constructor argument has a wrong value or type (a ``ValueError``, as in scikit-learn)."""


class NotSeparatedError(InvalidInputError):
    """The training set has identical points with different labels: ``r = 0``, no theorem applies."""


def _check_r(r):
    if isinstance(r, str):
        if r != "auto":
            raise InvalidParameterError(
                f"r={r!r}: pass r='auto' (half the train--train separation) or a positive number.")
        return r
    if isinstance(r, bool) or not isinstance(r, numbers.Real):
        raise InvalidParameterError(
            f"r must be 'auto' or a positive number (in [0, 1] pixel units), got {type(r).__name__}.")
    r = float(r)
    if not np.isfinite(r) or r <= 0:
        raise InvalidParameterError(
            f"r={r:g} is not a valid radius: pass a positive finite number (in [0, 1] pixel units), "
            "or r='auto' to use half the train--train separation.")
    return r


def _check_engine(engine):
    if isinstance(engine, Engine) or engine == "auto" or engine in ENGINES:
        return engine
    raise InvalidParameterError(f"Unknown engine {engine!r}. Use 'auto' or one of {', '.join(ENGINES)} "
                                "(or a separation.engines.Engine).")


class LocallyLipschitzClassifier:
    """The nearest-class classifier ``g(x) = argmin_i dist(x, X_i) / r`` with exact certificates.

    Args:
        norm: ``"linf"``, ``"l2"`` or ``"l1"``; distances are in [0, 1] pixel units (uint8 / 255).
        r: the radius of the theorem. ``"auto"``: half the train--train separation, computed exactly
            by :func:`separation.compute_separation` at :meth:`fit` time; or a positive number.
        engine: exact search behind :class:`separation.ClassIndex`: ``"auto"`` (the fastest
            available: on a CPU the one-pass probe-pruned l-inf kernel), an engine name (``"cpu"``,
            ``"faiss"``, ``"cuda"``, ``"reference"``) or a :class:`separation.engines.Engine`.

    Attributes after :meth:`fit`: ``classes_`` (sorted labels; column ``i`` of :meth:`scores` is
    ``classes_[i]``), ``r_``, ``lipschitz_bound_`` (``1 / r_``), ``n_features_in_``,
    ``input_shape_``, ``index_`` (the fitted :class:`separation.ClassIndex`), ``separation_`` (the
    :class:`~separation.SeparationResult` when ``r="auto"``), ``search_engine_`` (the engine's
    name), ``fit_seconds_``.

    Ties: :meth:`predict` returns the class of smallest index (smallest label) among the classes at
    the smallest distance.
    """

    def __init__(self, *, norm: str = "linf", r="auto", engine="auto"):
        try:
            self.norm = check_norm(norm)
        except ValueError as exc:
            raise InvalidParameterError(str(exc)) from None
        self.r = _check_r(r)
        self.engine = _check_engine(engine)

    # -- scikit-learn style plumbing -------------------------------------------------------------
    def get_params(self, deep: bool = True) -> dict:
        return {"norm": self.norm, "r": self.r, "engine": self.engine}

    def set_params(self, **params) -> "LocallyLipschitzClassifier":
        bad = set(params) - {"norm", "r", "engine"}
        if bad:
            raise InvalidParameterError(f"Unknown parameter(s) {', '.join(sorted(bad))}; valid: norm, r, engine.")
        p = {**self.get_params(), **params}
        self.__init__(**p)
        return self

    def __repr__(self) -> str:
        return f"LocallyLipschitzClassifier(norm={self.norm!r}, r={self.r!r}, engine={self.engine!r})"

    def _check_fitted(self, what: str):
        if not hasattr(self, "index_"):
            raise NotFittedError(
                f"This LocallyLipschitzClassifier is not fitted yet: call fit(x_train, y_train) "
                f"before {what}().")

    # -- fit --------------------------------------------------------------------------------------
    def fit(self, x, y) -> "LocallyLipschitzClassifier":
        """Index the class supports and set ``r_``.

        Args:
            x: ``(n, *shape)`` uint8 (0..255) or float in [0, 1]; numpy or torch.
            y: ``(n,)`` integer labels, at least two classes.
        Raises:
            NotSeparatedError: ``r="auto"`` and two identical points carry different labels.
        """
        for attr in ("index_", "separation_"):
            self.__dict__.pop(attr, None)
        arr = x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)
        X = as_points(x, "x")
        labels = as_labels(y, len(X), "y")
        if np.unique(labels).size < 2:
            raise InvalidInputError("y has fewer than two classes: the nearest-class classifier needs at least two.")
        seconds: dict[str, float] = {}
        if self.r == "auto":
            t0 = time.perf_counter()
            sep = compute_separation(X, labels, norm=self.norm, engine=self.engine)
            seconds["separation"] = time.perf_counter() - t0
            if not sep.r > 0:
                dups = sep.cross_class_pairs("train", below=0.0)
                ex = ", ".join(f"#{p.index} (label {p.label}) = #{p.neighbor} (label {p.neighbor_label})"
                               for p in dups[:3])
                raise NotSeparatedError(
                    f"The training set is not separated: {len(dups)} pair(s) of identical points have "
                    f"different labels (e.g. {ex}), so r = 0 and the theorem does not apply. Remove "
                    "those duplicates, or pass an explicit r > 0 to study the classifier anyway.")
            r = sep.r
            self.separation_ = sep
        else:
            r = self.r
        index = ClassIndex(X, labels, norm=self.norm, engine=self.engine)
        seconds["index"] = index.build_seconds_
        self.index_ = index
        self.classes_ = index.classes_
        self.r_ = float(r)
        self.lipschitz_bound_ = 1.0 / self.r_
        self.n_features_in_ = index.n_features_in_
        self.input_shape_ = tuple(arr.shape[1:])
        self.search_engine_ = index.engine_
        self.fit_seconds_ = seconds
        log.info("fitted %s: %d points, %d classes, r=%.6g, search=%s", self.norm, len(X),
                 len(self.classes_), self.r_, index.engine_)
        return self

    # -- queries ----------------------------------------------------------------------------------
    def _queries(self, x, what: str) -> np.ndarray:
        self._check_fitted(what)
        q = as_points(x, "x")
        if q.shape[1] != self.n_features_in_:
            raise InvalidInputError(
                f"x has {q.shape[1]} features per point but the classifier was fitted on "
                f"{self.n_features_in_} (shape {self.input_shape_}); pass points of the training shape.")
        return q

    def class_distances(self, x, *, return_indices: bool = False):
        """Exact ``dist(x, X_i)`` for every class: ``(n, n_classes)`` float64 in [0, 1] units.

        With ``return_indices``, also ``(n, n_classes)`` int64 training-set indices of a nearest
        point of each class (the smallest index among equally near ones).
        """
        q = self._queries(x, "class_distances")
        return self.index_.distances(q, return_indices=return_indices)

    def scores(self, x) -> np.ndarray:
        """``f_i(x) = dist(x, X_i) / r``: ``(n, n_classes)`` float64, exact; lower is more likely."""
        self._check_fitted("scores")
        return self.class_distances(x) / self.r_

    def _top2(self, x, what: str):
        q = self._queries(x, what)
        return self.index_.top2(q)

    def predict(self, x) -> np.ndarray:
        """``argmin_i f_i(x)`` as labels ``(n,)``; ties go to the smaller class index."""
        pred, _, _ = self._top2(x, "predict")
        return self.classes_[pred]

    def certified_radius(self, x) -> np.ndarray:
        """``(d_2 - d_1) / 2`` per point, ``(n,)`` float64 in [0, 1] units.

        ``d_1 <= d_2`` are the two smallest class distances. Every ``x'`` with ``|x' - x| < radius``
        gets the same prediction as ``x`` (each ``dist(., X_i)`` is 1-Lipschitz): a proof, not an
        attack estimate. At ``|x' - x| = radius`` exactly a tie is possible.
        """
        _, d1, d2 = self._top2(x, "certified_radius")
        return (d2 - d1) / 2

    def predict_with_radius(self, x):
        """``(labels (n,), certified radius (n,))`` from one search."""
        pred, d1, d2 = self._top2(x, "predict_with_radius")
        return self.classes_[pred], (d2 - d1) / 2

    def astuteness(self, x, y, eps):
        """Fraction of points predicted correctly *and* certified at ``eps``.

        A point is certified at ``eps`` when its certified radius is ``>= eps``: no perturbation of
        norm ``< eps`` changes its prediction (the open ball; the theorem's ``astuteness 1 at r`` is
        exactly this). ``eps``: a number (returns a float) or a sequence (returns an array); exact
        values (``"8/255"``, a Fraction) are compared as the float nearest to them (the certified
        radius is a float: ``(d2 - d1) / 2`` of the float distances).
        """
        labels, radius = self.predict_with_radius(x)
        yy = as_labels(y, len(labels), "y")
        return astuteness_from(labels, radius, yy, eps)

    def as_torch_module(self):
        """An ``nn.Module`` mapping float ``(n, *input_shape)`` in [0, 1] to logits ``-f(x)``, in
        eval mode (it has no dropout or batch statistics: the mode changes nothing)."""
        self._check_fitted("as_torch_module")
        require("torch", "the constructed classifier as a torch module (nn.Module)")
        from .torch_module import NearestClassLogits

        return NearestClassLogits(self).eval()


def astuteness_from(pred, radius, y, eps):
    """``mean(pred == y and radius >= eps)`` for a number or each entry of a sequence ``eps`` (text
    and Fractions as the float nearest to them: :func:`~separation.core.threat.check_eps`)."""
    correct = np.asarray(pred) == np.asarray(y)
    radius = np.asarray(radius)
    if isinstance(eps, str) or np.ndim(eps) == 0:
        return float(np.mean(correct & (radius >= check_eps(eps))))
    return np.array([float(np.mean(correct & (radius >= check_eps(e)))) for e in eps])


def certified_fraction(radius: np.ndarray, eps: Sequence[float]) -> np.ndarray:
    """Fraction of points with certified radius ``>= eps``, for each ``eps`` (as :func:`astuteness_from`)."""
    radius = np.asarray(radius)
    return np.array([float(np.mean(radius >= check_eps(e))) for e in eps])


__all__ = ["InvalidParameterError", "LocallyLipschitzClassifier", "NotFittedError", "NotSeparatedError",
           "astuteness_from", "certified_fraction"]
