"""The engine interface: exact nearest-neighbour search on stored-unit arrays.

Every engine answers two questions on ``(n, d)`` arrays (uint8 raw bytes or float64):

* :meth:`Engine.nearest` -- for each query, the exact nearest database point;
* :meth:`Engine.cross_class` -- for each query, the exact nearest database point *with another label*;
* :meth:`Engine.class_search` -- an index answering, for queries, the nearest point of *every* class
  (what :class:`separation.ClassIndex` and the nearest-class classifier are built on);
* :meth:`Engine.range_search` -- every pair of differently-labelled points within a radius.

Each of these (and :meth:`Engine.cross_class_k`, :meth:`Engine.block_pair`) is a *capability*
(:data:`CAPABILITIES`): an engine either has it or names it in :attr:`Engine.unsupported` with the
reason, and calling it then raises an :class:`~separation.core.errors.InvalidInputError` that
names the engines that have it (:meth:`Engine.can` asks first).

Distances come back as float64 in *stored units* (raw byte values for uint8); callers scale them.
Ties are broken towards the smallest database index, in every engine, so that all engines return
the same indices as the float64 brute-force reference.
"""
from __future__ import annotations

import abc
from typing import ClassVar

import numpy as np

from ..core.errors import InvalidInputError
from ..core.paper import NORMS
from .knn import cross_class_k

INF = np.inf
#: What an engine may be asked (its methods of these names); see :meth:`Engine.can`.
CAPABILITIES = ("nearest", "cross_class", "cross_class_k", "class_search", "block_pair", "range_search")


def check_capability(capability) -> str:
    """``capability`` if it is one of :data:`CAPABILITIES`, else an InvalidInputError listing them."""
    if capability not in CAPABILITIES:
        raise InvalidInputError(f"Unknown capability {capability!r}; the capabilities are {', '.join(CAPABILITIES)}.")
    return capability


#: name -> engine class, as the engine modules define them (``class X(Engine, register="x")``)
_REGISTERED: dict[str, type] = {}


def engines_with(capability: str) -> list[str]:
    """Names of the engines that have ``capability`` (see :data:`CAPABILITIES`), available here or
    not; an engine made only as an instance (``dask``) says so."""
    check_capability(capability)
    return [name if cls.by_name else f"{name} (a {cls.__name__} instance)"
            for name, cls in _REGISTERED.items() if cls.can(capability)]


def lacks(engine_name: str, capability: str, reason: str) -> InvalidInputError:
    """The error for an engine without ``capability``: why, and which engines have it."""
    return InvalidInputError(f"The {engine_name} engine has no {capability} ({reason}); use an engine that has it: "
                             f"{', '.join(engines_with(capability))}.")


def _unimplemented(fn):
    """Marks a base method that is only a placeholder: an engine must override it or name it in
    :attr:`Engine.unsupported`."""
    fn.unimplemented = True
    return fn


def _refusal(capability: str, reason: str):
    def refuse(self, *args, **kwargs):
        raise lacks(self.name, capability, reason)

    refuse.__name__ = capability
    refuse.__doc__ = f"Not supported by this engine: {reason}."
    refuse.unimplemented = True
    return refuse


def merge_better(best_d, best_i, d, i):
    """In place: where (d, i) beats (best_d, best_i) -- smaller distance, then smaller index -- take it."""
    better = (d < best_d) | ((d == best_d) & (i < best_i))
    best_d[better] = d[better]
    best_i[better] = i[better]
    return best_d, best_i


def cross_pairs(y_query, y_db) -> int:
    """Number of (query, database point) pairs with different labels: the unit of progress."""
    classes, inv = np.unique(np.concatenate([y_query, y_db]), return_inverse=True)
    nq = np.bincount(inv[:len(y_query)], minlength=len(classes))
    nd = np.bincount(inv[len(y_query):], minlength=len(classes))
    return int((nq * (len(y_db) - nd)).sum())


class Engine(abc.ABC):
    """Exact nearest-neighbour engine. Subclasses implement :meth:`nearest` and
    :meth:`range_search` (or name it in :attr:`unsupported`); they may override :meth:`cross_class`
    with something faster (e.g. computing each pair of classes once)."""

    name: str = "engine"
    norms: tuple[str, ...] = NORMS
    #: capability (see :data:`CAPABILITIES`) -> the one-line reason this engine lacks it.
    unsupported: ClassVar[dict[str, str]] = {}
    #: whether :func:`~separation.engines.get_engine` makes one from its name (a cluster engine
    #: needs a cluster: it is passed as an instance).
    by_name: ClassVar[bool] = True
    #: points (either side of a search) over this many bytes are searched out of core, in blocks
    #: (the engine's memory is then bounded by its blocks); None: held whole
    stream_bytes: int | None = None

    def __init_subclass__(cls, register: str | None = None, **kwargs):
        """``register``: the engine's name among the toolkit's engines (:func:`engines_with`). An
        unsupported capability's method raises the error of :func:`lacks`."""
        super().__init_subclass__(**kwargs)
        if register is not None:
            _REGISTERED[register] = cls
        for capability, reason in cls.unsupported.items():
            check_capability(capability)
            if capability in vars(cls) and not getattr(vars(cls)[capability], "unimplemented", False):
                raise TypeError(f"{cls.__name__} implements {capability} but names it in unsupported")
            setattr(cls, capability, _refusal(capability, reason))

    @classmethod
    def available(cls) -> bool:
        return True

    @classmethod
    def can(cls, capability: str) -> bool:
        """Whether this engine has ``capability`` (one of :data:`CAPABILITIES`)."""
        check_capability(capability)
        return capability not in cls.unsupported and not getattr(getattr(cls, capability), "unimplemented", False)

    def supports(self, norm: str, dtype: np.dtype) -> bool:
        return norm in self.norms

    @abc.abstractmethod
    def nearest(self, queries: np.ndarray, database: np.ndarray, *, norm: str):
        """Exact 1-NN. Returns ``(distances float64 (nq,), indices int64 (nq,))`` in stored units."""

    def cross_class(self, x_query, y_query, x_db, y_db, *, norm: str, same_set: bool = False,
                    progress=None):
        """Nearest database point of a *different* label for every query.

        ``same_set`` says that the queries are the database itself (train--train), which lets
        engines compute each pair of classes once. Returns ``(distances, indices)``; a query with no
        differently-labelled database point gets ``inf`` and index ``-1``.
        """
        nq = x_query.shape[0]
        best_d = np.full(nq, INF)
        best_i = np.full(nq, -1, dtype=np.int64)
        classes = np.unique(y_db)
        for c in classes:
            db_idx = np.flatnonzero(y_db == c)
            q_idx = np.flatnonzero(y_query != c)
            if q_idx.size:
                d, i = self.nearest(x_query[q_idx], x_db[db_idx], norm=norm)
                sub_d, sub_i = best_d[q_idx], best_i[q_idx]
                merge_better(sub_d, sub_i, d, db_idx[i])
                best_d[q_idx], best_i[q_idx] = sub_d, sub_i
            if progress is not None:
                progress(int(q_idx.size) * int(db_idx.size))
        return best_d, best_i

    # -- blocks (the units of work of a cluster run, see separation.engines.dask_engine) ----------
    def pairs_once(self, norm: str, dtype: np.dtype) -> bool:
        """Whether :meth:`block_pair` visits each pair of points once (a symmetric kernel): then a
        cluster splits train--train work into pairs of square blocks, each computed once."""
        return False

    def block_pair(self, xa, ya, xb, yb, *, norm: str):
        """Blocks ``a`` ``(na, d)`` and ``b`` ``(nb, d)``: for every row of ``a`` its nearest
        other-label row of ``b`` and for every row of ``b`` its nearest of ``a``:
        ``(da (na,), ia (na,), db (nb,), ib (nb,))``, stored units, indices into the other block,
        ties to the smallest index. The default runs :meth:`cross_class` both ways."""
        da, ia = self.cross_class(xa, ya, xb, yb, norm=norm)
        db, ib = self.cross_class(xb, yb, xa, ya, norm=norm)
        return da, ia, db, ib

    def prepare(self, x_db, y_db, *, norm: str):
        """``x_db`` ``(n, d)`` with labels ``y_db`` made ready for repeated cross-class queries: a
        callable ``(x_query, y_query, bound=None) -> (distances, indices)`` equal to :meth:`cross_class`
        on it (a cluster worker keeps it for the next task on the same block). ``bound`` ``(m,)``
        (stored units, inf: none): an answer found before this block, from rows of smaller indices;
        a search may then skip the points that are not strictly closer (they lose the tie), and
        return for such a query any real pair no better than its bound, or ``(inf, -1)``. The
        default prepares nothing and uses no bound."""
        def search(x_query, y_query, bound=None):
            return self.cross_class(x_query, y_query, x_db, y_db, norm=norm)

        return search

    def cross_class_k(self, x_query, y_query, x_db, y_db, *, norm: str, k: int):
        """The ``k`` nearest database points of another label: ``(m, k)`` distances (stored units)
        and indices, sorted by distance then index (``inf`` / ``-1`` padding). Every engine shares
        :func:`separation.engines.knn.cross_class_k` (bytes: the integer kernel; floats: the float64
        formula of the reference), so all agree bit for bit."""
        return cross_class_k(x_query, y_query, x_db, y_db, norm=norm, k=k)

    def class_search(self, support: np.ndarray, labels: np.ndarray, n_classes: int, *, norm: str):
        """An index of ``support`` ``(n, d)`` (stored units) with class indices ``labels`` in
        ``0..n_classes-1``: see :class:`PerClassSearch` for the interface. Engines with a faster
        fused search override this; the default runs :meth:`nearest` once per class."""
        return PerClassSearch(self, support, labels, n_classes, norm=norm)

    @_unimplemented
    def range_search(self, x_query, y_query, x_db, y_db, *, norm: str, radius: float, same_set: bool = False,
                     max_pairs: int | None = None, progress=None):
        """Every (query ``i``, database point ``j``) with ``y_query[i] != y_db[j]`` and distance
        ``<= radius``, exactly (ties included; bytes decided on the integer distance, see
        :mod:`separation.engines.conflicts`).

        ``x_query`` ``(m, d)``, ``x_db`` ``(n, d)``: uint8 bytes or float64 in [0, 1] (stored units);
        ``radius`` in [0, 1] pixel units, exact (a Fraction, or anything
        :func:`~separation.core.threat.exact_eps` reads). ``same_set``: the queries are the database, each pair is
        reported once, ``i < j``. ``progress``: a callable taking a count of compared pairs.
        Returns ``(i int64, j int64, d float64 [0, 1] pixel units)`` sorted by ``(i, j)``; more
        than ``max_pairs`` pairs raise :class:`~separation.core.errors.LimitError`.
        """
        raise lacks(self.name, "range_search", "not implemented")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


def _storage(q: np.ndarray, like: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Queries and support in one storage type (uint8 when both are, else float64 in [0, 1])."""
    if q.dtype == np.uint8 and like.dtype == np.uint8:
        return q, like, 255.0
    f = (lambda a: a.astype(np.float64) / 255.0 if a.dtype == np.uint8 else a)
    return f(q), f(like), 1.0


class PerClassSearch:
    """Exact class distances by one :meth:`Engine.nearest` call per class.

    ``all(q)`` -> ``(dist (m, C), idx (m, C))``: for every class the distance (float64, [0, 1]
    pixel units) to its nearest support point and that point's position in the support (smallest
    position among ties); ``top2(q)`` -> ``(argmin class, smallest, second smallest)``;
    ``other_class(q, own)`` -> the nearest support point of a class other than ``own`` ``(m,)``
    (-1: any). ``q``: ``(m, d)`` uint8 or float64 in [0, 1], as from :func:`separation.core.arrays.as_points`.
    """

    def __init__(self, engine: Engine, support: np.ndarray, labels: np.ndarray, n_classes: int, *, norm: str):
        self.engine = engine
        self.norm = norm
        self.n_classes = int(n_classes)
        self.class_index = [np.flatnonzero(labels == c) for c in range(self.n_classes)]
        self.class_support = [np.ascontiguousarray(support[i]) for i in self.class_index]

    def all(self, q: np.ndarray):
        dist = np.empty((len(q), self.n_classes))
        idx = np.empty((len(q), self.n_classes), dtype=np.int64)
        for c, (where, Xc) in enumerate(zip(self.class_index, self.class_support)):
            qq, db, divisor = _storage(q, Xc)
            d, i = self.engine.nearest(qq, db, norm=self.norm)
            dist[:, c] = d / divisor
            idx[:, c] = where[i]
        return dist, idx

    def top2(self, q: np.ndarray):
        return top2_from_all(self.all(q)[0])

    def other_class(self, q: np.ndarray, own: np.ndarray):
        return other_class_from_all(*self.all(q), own)


def top2_from_all(dist: np.ndarray):
    """(argmin class, smallest, second smallest) of each row; argmin ties to the smaller index."""
    pred = np.argmin(dist, axis=1)
    if dist.shape[1] == 1:
        return pred, dist[:, 0].copy(), np.full(len(dist), np.inf)
    part = np.partition(dist, 1, axis=1)
    return pred, part[:, 0].copy(), part[:, 1].copy()


def other_class_from_all(dist: np.ndarray, idx: np.ndarray, own: np.ndarray):
    """The nearest point of a class other than ``own`` (per row; -1: any class) from the per-class
    ``(dist, idx)``: ``(distances, indices)``, ties to the smallest support index; inf/-1 if none."""
    big = np.iinfo(np.int64).max
    cls = np.arange(dist.shape[1])
    dist = np.where(cls[None, :] == np.asarray(own)[:, None], np.inf, dist)
    best = dist.min(axis=1)
    pick = np.where(dist == best[:, None], np.where(idx >= 0, idx, big), big).min(axis=1)
    pick[~np.isfinite(best)] = -1
    return best, pick


__all__ = ["CAPABILITIES", "Engine", "INF", "PerClassSearch", "check_capability", "cross_pairs", "engines_with",
           "lacks", "merge_better", "other_class_from_all", "top2_from_all"]
