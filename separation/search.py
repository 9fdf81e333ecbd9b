"""``compute_separation`` and ``nearest_neighbors``: exact separation and 1-NN on arrays."""
from __future__ import annotations

import logging
import time

import numpy as np

from .core.errors import InvalidInputError
from .core.arrays import as_labels, as_points, check_norm, common_storage
from .core.memory import check_fits, separation_bytes
from .core.progress import progress_bar, resolve
from .result import SeparationResult
from .engines import Engine, get_engine
from .engines.base import cross_pairs

log = logging.getLogger("separation")


def _row_hashes(a: np.ndarray, block: int = 512) -> np.ndarray:
    """A 64-bit hash of every row's bytes (a random linear form mod 2^64), ``(n,)`` uint64, in
    blocks of ``block`` rows (bounded memory)."""
    b = np.ascontiguousarray(a).view(np.uint8).reshape(len(a), -1)
    w = np.random.default_rng(0x5EED).integers(1, 2**63, size=b.shape[1], dtype=np.uint64) | np.uint64(1)
    out = np.empty(len(a), np.uint64)
    with np.errstate(over="ignore"):
        for s in range(0, len(a), block):
            out[s:s + block] = (b[s:s + block].astype(np.uint64) * w).sum(axis=1, dtype=np.uint64)
    return out


def _exact_row_duplicates(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (i, j) with a[i] byte-identical to b[j] (the smallest such j); ``a`` and ``b`` have the
    same width and dtype. Rows are matched by hash, then compared byte for byte."""
    ha, hb = _row_hashes(a), _row_hashes(b)
    order = np.argsort(hb, kind="stable")  # equal hashes keep increasing j
    hs = hb[order]
    pos = np.searchsorted(hs, ha)
    hits = []
    for i in np.flatnonzero(hs[np.minimum(pos, len(hs) - 1)] == ha) if len(hs) else []:
        p = int(pos[i])
        while p < len(hs) and hs[p] == ha[i]:
            if np.array_equal(a[i], b[order[p]]):
                hits.append((int(i), int(order[p])))
                break
            p += 1
    ii, jj = np.array(hits, dtype=np.int64).reshape(-1, 2).T
    return ii, jj


def _progress_bar(total: int, desc: str, enabled: bool | None):
    if not resolve(enabled):
        return None, None
    bar = progress_bar(total=total, desc=desc, unit="pair", unit_scale=True, enabled=True)
    return bar, bar.update


def _split(x, y, name: str, n_features: int | None):
    xs = as_points(x, f"x_{name}")
    ys = as_labels(y, len(xs), f"y_{name}")
    if n_features is not None and xs.shape[1] != n_features:
        raise InvalidInputError(f"x_{name} has {xs.shape[1]} features per point but x_train has {n_features}: "
                         "train and test images must have the same shape.")
    return xs, ys


def compute_separation(x_train, y_train, x_test=None, y_test=None, *, norm: str = "linf",
                       engine: str | Engine = "auto", exclude_below: float = 0.0, test_test: bool = False,
                       k: int = 1, class_distances: bool = False, progress: bool | None = None) -> SeparationResult:
    """Exact train--train, test--train and (optionally) test--test separation.

    Args:
        x_train: ``(n, *image_shape)`` uint8 (0..255) or float in [0, 1]; numpy or torch.
        y_train: ``(n,)`` integer labels; at least two classes.
        x_test: optional test images, same image shape as ``x_train``.
        y_test: their labels (pass both or neither).
        norm: ``"linf"``, ``"l2"`` or ``"l1"``.
        engine: ``"auto"`` (fastest available), ``"cpu"``, ``"faiss"``, ``"cuda"``, ``"reference"``
            or an :class:`~separation.engines.Engine` instance.
        exclude_below: distance (pixel units) at or below which a pair counts as a duplicate and is
            left out of the ``*_excluding_duplicates`` statistics (0: exact duplicates only).
        test_test: also the distance from each test point to the nearest test point of another class.
        k: with ``k > 1``, also the ``k`` nearest training points of other classes of every point
            (``*_knn_distances`` / ``*_knn_neighbors``, ``(n, k)``).
        class_distances: also the nearest training point of every class (``*_class_distances``,
            ``(n, C)``), for :meth:`SeparationResult.class_matrix`.
        progress: progress bars; None (default): where a person watches (a terminal, a notebook).

    Returns:
        :class:`SeparationResult` (distances in [0, 1] pixel units, exact).
    """
    check_norm(norm)
    xtr, ytr = _split(x_train, y_train, "train", None)
    if np.unique(ytr).size < 2:
        raise InvalidInputError("y_train has fewer than two classes: separation needs at least two labels.")
    have_test = x_test is not None or y_test is not None
    if have_test and (x_test is None or y_test is None):
        raise InvalidInputError("Pass both x_test and y_test (or neither).")
    if test_test and not have_test:
        raise InvalidInputError("test_test=True needs x_test and y_test.")
    if have_test:
        xte, yte = _split(x_test, y_test, "test", xtr.shape[1])
        (xtr, xte), divisor = common_storage(xtr, xte)
    else:
        (xtr,), divisor = common_storage(xtr)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise InvalidInputError(f"k must be an integer >= 1, got {k!r}.")
    if not (exclude_below >= 0 and np.isfinite(exclude_below)):
        raise InvalidInputError(f"exclude_below must be a finite number >= 0, got {exclude_below!r}.")
    eng = get_engine(engine)
    if not eng.supports(norm, xtr.dtype):
        raise InvalidInputError(f"Engine {eng.name!r} does not support norm {norm!r}.")
    need = separation_bytes(len(xtr), len(xte) if have_test else 0, xtr.shape[1], xtr.itemsize,
                            n_classes=int(np.unique(ytr).size), norm=norm, engine=eng.name,
                            stream_bytes=eng.stream_bytes)
    check_fits(need, f"separation of {len(xtr)} training points ({eng.name}, {norm})",
               remedy="run on fewer points (--subset N / Dataset.subset) or on a cluster")
    seconds: dict[str, float] = {}

    def one_pass(label, xq, yq, xd, yd, same_set):
        bar, upd = _progress_bar(cross_pairs(yq, yd), f"{label} ({eng.name}, {norm})", progress)
        t0 = time.perf_counter()
        try:
            d, i = eng.cross_class(xq, yq, xd, yd, norm=norm, same_set=same_set, progress=upd)
        finally:
            if bar is not None:
                bar.close()
        seconds[label.replace("-", "_")] = time.perf_counter() - t0
        return d / divisor, i

    d_tr, i_tr = one_pass("train-train", xtr, ytr, xtr, ytr, True)
    result = SeparationResult(norm=norm, engine=eng.name, y_train=ytr, train_distances=d_tr,
                              train_neighbors=i_tr, seconds=seconds, exclude_below=float(exclude_below))
    if have_test:
        result.y_test = yte
        result.test_distances, result.test_neighbors = one_pass("test-train", xte, yte, xtr, ytr, False)
        dup_i, dup_j = _exact_row_duplicates(xte, xtr)
        result.test_train_duplicates = np.stack([dup_i, dup_j], axis=1)
        if test_test:
            result.test_test_distances, result.test_test_neighbors = one_pass("test-test", xte, yte, xte, yte, True)
    if k > 1:
        t0 = time.perf_counter()
        d, i = eng.cross_class_k(xtr, ytr, xtr, ytr, norm=norm, k=int(k))
        result.train_knn_distances, result.train_knn_neighbors = d / divisor, i
        if have_test:
            d, i = eng.cross_class_k(xte, yte, xtr, ytr, norm=norm, k=int(k))
            result.test_knn_distances, result.test_knn_neighbors = d / divisor, i
        seconds["knn"] = time.perf_counter() - t0
    if class_distances:
        from .class_index import ClassIndex

        t0 = time.perf_counter()
        index = ClassIndex(xtr, ytr, norm=norm, engine=eng)
        result.classes = index.classes_
        result.train_class_distances, result.train_class_neighbors = index.distances(xtr, return_indices=True)
        if have_test:
            result.test_class_distances, result.test_class_neighbors = index.distances(xte, return_indices=True)
        seconds["class_distances"] = time.perf_counter() - t0
    log.info("separation (%s, %s): train min %.6g%s in %.2fs", norm, eng.name, result.train_distances.min(),
             f", test min {result.test_distances.min():.6g}" if have_test else "", sum(seconds.values()))
    return result


def nearest_neighbors(queries, database, *, norm: str = "linf", engine: str | Engine = "auto"):
    """Exact 1-NN of every query in ``database``: ``(distances, indices)``, distances in [0, 1] units.

    Shapes: ``queries (m, *s)``, ``database (n, *s)`` -> ``(m,)`` float64, ``(m,)`` int64.
    Ties go to the smallest database index.
    """
    check_norm(norm)
    q = as_points(queries, "queries")
    db = as_points(database, "database")
    if q.shape[1] != db.shape[1]:
        raise InvalidInputError(f"queries have {q.shape[1]} features per point but database has {db.shape[1]}.")
    (q, db), divisor = common_storage(q, db)
    d, i = get_engine(engine).nearest(q, db, norm=norm)
    return d / divisor, i


def k_nearest_other_class(x_query, y_query, x_db=None, y_db=None, *, k: int, norm: str = "linf",
                          engine: str | Engine = "auto"):
    """The ``k`` nearest points of a *different* label: ``(distances (m, k), indices (m, k))`` in
    [0, 1] pixel units, sorted by distance then index (``inf`` / ``-1`` where fewer exist).

    ``x_db``/``y_db`` default to the queries themselves (train--train). Exact on every engine.
    """
    check_norm(norm)
    xq, yq = _split(x_query, y_query, "query", None)
    xd, yd = (xq, yq) if x_db is None else _split(x_db, y_db, "db", xq.shape[1])
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise InvalidInputError(f"k must be an integer >= 1, got {k!r}.")
    (xq, xd), divisor = common_storage(xq, xd)
    d, i = get_engine(engine).cross_class_k(xq, yq, xd, yd, norm=norm, k=int(k))
    return d / divisor, i


__all__ = ["compute_separation", "k_nearest_other_class", "nearest_neighbors"]
