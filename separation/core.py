"""``compute_separation``: per-point distance to the nearest differently-labelled training point."""
from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any, Callable, Sequence

import numpy as np

from ._validation import as_labels, as_points, check_norm, common_storage
from .engines import Engine, get_engine
from .engines.base import cross_pairs

log = logging.getLogger(__name__)

DEFAULT_QUANTILES = (0.001, 0.01, 0.05, 0.25, 0.5, 0.75, 0.95)


def _exact_row_duplicates(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (i, j) with a[i] byte-identical to b[j] (first matching j), by hashing rows."""
    if a.shape[1] != b.shape[1]:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    va = np.ascontiguousarray(a).view(np.dtype((np.void, a.dtype.itemsize * a.shape[1]))).ravel()
    vb = np.ascontiguousarray(b).view(np.dtype((np.void, b.dtype.itemsize * b.shape[1]))).ravel()
    lookup: dict[bytes, int] = {}
    for j, row in enumerate(vb.tolist()):
        lookup.setdefault(row, j)
    hits = [(i, lookup[row]) for i, row in enumerate(va.tolist()) if row in lookup]
    if not hits:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    ii, jj = np.array(hits, dtype=np.int64).T
    return ii, jj


@dataclasses.dataclass
class SeparationResult:
    """Per-point separation. Distances are in [0, 1] pixel units (uint8 values / 255).

    ``train_distances[i]`` is the distance from training point ``i`` to its nearest training point
    of another class, ``train_neighbors[i]`` that point's index; ``test_*`` likewise for test
    points (neighbours index the *training* set). ``inf`` / ``-1`` where no other class exists.
    """

    norm: str
    engine: str
    y_train: np.ndarray
    train_distances: np.ndarray
    train_neighbors: np.ndarray
    y_test: np.ndarray | None = None
    test_distances: np.ndarray | None = None
    test_neighbors: np.ndarray | None = None
    #: test points byte-identical to a training point (any label): (test index, train index)
    test_train_duplicates: np.ndarray | None = None
    seconds: dict[str, float] = dataclasses.field(default_factory=dict)
    exclude_below: float = 0.0

    # -- derived ----------------------------------------------------------------------------
    @property
    def r(self) -> float:
        """Half the train--train separation: the radius of the theorem."""
        return float(self.train_distances.min()) / 2

    def cross_class_pairs(self, split: str = "train", *, below: float = 0.0,
                          inclusive: bool = True) -> list[dict[str, Any]]:
        """Points whose nearest other-class training point is within ``below`` (0: exact duplicates)."""
        d, nbr, y = self._split(split)
        hit = d <= below if inclusive else d < below
        out = []
        for i in np.flatnonzero(hit):
            j = int(nbr[i])
            if split == "train" and j < i and hit[j] and nbr[j] == i:
                continue  # report a symmetric train pair once
            out.append({"index": int(i), "neighbor": j, "label": int(y[i]),
                        "neighbor_label": int(self.y_train[j]), "distance": float(d[i])})
        return out

    def excluded_mask(self, split: str = "train") -> np.ndarray:
        """Points left out of the 'excluding duplicates' statistics: distance <= ``exclude_below``.

        For the training set both ends of each such pair are left out; for the test set, test
        points at or below the threshold, and test points whose nearest other-class training
        point was itself left out are *kept* with their (lower-bound) distance.
        """
        d, _, _ = self._split(split)
        return d <= self.exclude_below

    def _split(self, split):
        if split == "train":
            return self.train_distances, self.train_neighbors, self.y_train
        if split == "test":
            if self.test_distances is None:
                raise ValueError("This result has no test split; pass x_test/y_test to compute_separation.")
            return self.test_distances, self.test_neighbors, self.y_test
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")

    def summary(self, eps: Sequence[float] = (), *, quantiles: Sequence[float] = DEFAULT_QUANTILES,
                near_duplicate_threshold: float | None = None) -> dict[str, Any]:
        """Plain-dict summary: min, mean, quantiles, per-class minima, closest pair, r, eps ratios,
        duplicates, and the same statistics with duplicate pairs excluded."""
        out: dict[str, Any] = {"norm": self.norm, "engine": self.engine, "r": self.r,
                               "exclude_below": self.exclude_below}
        splits = ["train"] + (["test"] if self.test_distances is not None else [])
        for split in splits:
            d, nbr, y = self._split(split)
            finite = np.isfinite(d)
            s: dict[str, Any] = {"n": int(d.size), "min": float(d.min()),
                                 "mean": float(d[finite].mean()) if finite.any() else float("inf"),
                                 "quantiles": {str(q): float(np.quantile(d[finite], q)) for q in quantiles}
                                 if finite.any() else {}}
            s["per_class_min"] = {str(int(c)): float(d[y == c].min()) for c in np.unique(y)}
            i = int(np.argmin(d))
            s["closest_pair"] = {"index": i, "neighbor": int(nbr[i]), "label": int(y[i]),
                                 "neighbor_label": int(self.y_train[nbr[i]]) if nbr[i] >= 0 else None,
                                 "distance": float(d[i])}
            s["eps"] = {str(e): {"ratio_to_2eps": float(d.min() / (2 * e)),
                                 "fraction_below_2eps": float(np.mean(d < 2 * e))} for e in eps}
            dups = self.cross_class_pairs(split, below=0.0)
            s["cross_class_duplicates"] = dups
            if near_duplicate_threshold is not None:
                s["near_duplicates"] = self.cross_class_pairs(split, below=near_duplicate_threshold,
                                                              inclusive=False)
            keep = ~self.excluded_mask(split)
            s["n_excluded"] = int((~keep).sum())
            if keep.any():
                s["min_excluding_duplicates"] = float(d[keep].min())
                s["mean_excluding_duplicates"] = float(d[keep & finite].mean()) if (keep & finite).any() else float("inf")
            else:
                s["min_excluding_duplicates"] = None
                s["mean_excluding_duplicates"] = None
            out[split] = s
        if self.test_train_duplicates is not None:
            out["test_train_duplicates"] = [
                {"test_index": int(a), "train_index": int(b)} for a, b in self.test_train_duplicates]
        out["seconds"] = dict(self.seconds)
        return out

    def arrays(self) -> dict[str, np.ndarray]:
        """The per-point arrays, for ``np.savez``."""
        out = {"y_train": self.y_train, "train_distances": self.train_distances,
               "train_neighbors": self.train_neighbors}
        if self.test_distances is not None:
            out.update(y_test=self.y_test, test_distances=self.test_distances,
                       test_neighbors=self.test_neighbors,
                       test_train_duplicates=self.test_train_duplicates.reshape(-1, 2))
        return out

    @classmethod
    def from_arrays(cls, arrays, *, norm: str, engine: str, seconds=None, exclude_below: float = 0.0):
        get = arrays.get if hasattr(arrays, "get") else (lambda k: arrays[k] if k in arrays else None)
        return cls(norm=norm, engine=engine, y_train=np.asarray(get("y_train")),
                   train_distances=np.asarray(get("train_distances")),
                   train_neighbors=np.asarray(get("train_neighbors")),
                   y_test=None if get("y_test") is None else np.asarray(get("y_test")),
                   test_distances=None if get("test_distances") is None else np.asarray(get("test_distances")),
                   test_neighbors=None if get("test_neighbors") is None else np.asarray(get("test_neighbors")),
                   test_train_duplicates=None if get("test_train_duplicates") is None
                   else np.asarray(get("test_train_duplicates")),
                   seconds=dict(seconds or {}), exclude_below=exclude_below)


def _progress_bar(total: int, desc: str, enabled: bool):
    if not enabled:
        return None, None
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc=desc, unit="pair", unit_scale=True, leave=False)
    return bar, bar.update


def compute_separation(x_train, y_train, x_test=None, y_test=None, *, norm: str = "linf",
                       engine: str | Engine = "auto", exclude_below: float = 0.0,
                       progress: bool = False) -> SeparationResult:
    """Exact train--train and test--train separation.

    Args:
        x_train: ``(n, *image_shape)`` uint8 (0..255) or float in [0, 1]; numpy or torch.
        y_train: ``(n,)`` integer labels; at least two classes.
        x_test, y_test: optional test split, same image shape.
        norm: ``"linf"``, ``"l2"`` or ``"l1"``.
        engine: ``"auto"`` (fastest available), ``"cpu"``, ``"faiss"``, ``"cuda"``, ``"reference"``
            or an :class:`~separation.engines.Engine` instance.
        exclude_below: distance (pixel units) at or below which a pair counts as a duplicate and is
            left out of the ``*_excluding_duplicates`` statistics (0: exact duplicates only).
        progress: show a tqdm progress bar.

    Returns:
        :class:`SeparationResult` (distances in [0, 1] pixel units, exact).
    """
    check_norm(norm)
    xtr = as_points(x_train, "x_train")
    ytr = as_labels(y_train, len(xtr), "y_train")
    if np.unique(ytr).size < 2:
        raise ValueError("y_train has fewer than two classes: separation needs at least two labels.")
    have_test = x_test is not None or y_test is not None
    if have_test:
        if x_test is None or y_test is None:
            raise ValueError("Pass both x_test and y_test (or neither).")
        xte = as_points(x_test, "x_test")
        yte = as_labels(y_test, len(xte), "y_test")
        if xte.shape[1] != xtr.shape[1]:
            raise ValueError(
                f"x_test has {xte.shape[1]} features per point but x_train has {xtr.shape[1]}: "
                "train and test images must have the same shape.")
        (xtr, xte), divisor = common_storage(xtr, xte)
    else:
        (xtr,), divisor = common_storage(xtr)
    if exclude_below < 0:
        raise ValueError("exclude_below must be >= 0.")
    eng = get_engine(engine)
    if not eng.supports(norm, xtr.dtype):
        raise ValueError(f"Engine {eng.name!r} does not support norm {norm!r}.")
    seconds: dict[str, float] = {}

    bar, upd = _progress_bar(cross_pairs(ytr, ytr), f"train-train ({eng.name}, {norm})", progress)
    t0 = time.perf_counter()
    d_tr, i_tr = eng.cross_class(xtr, ytr, xtr, ytr, norm=norm, same_set=True, progress=upd)
    seconds["train_train"] = time.perf_counter() - t0
    if bar is not None:
        bar.close()
    result = SeparationResult(norm=norm, engine=eng.name, y_train=ytr,
                              train_distances=d_tr / divisor, train_neighbors=i_tr,
                              seconds=seconds, exclude_below=float(exclude_below))
    if have_test:
        bar, upd = _progress_bar(cross_pairs(yte, ytr), f"test-train ({eng.name}, {norm})", progress)
        t0 = time.perf_counter()
        d_te, i_te = eng.cross_class(xte, yte, xtr, ytr, norm=norm, same_set=False, progress=upd)
        seconds["test_train"] = time.perf_counter() - t0
        if bar is not None:
            bar.close()
        dup_i, dup_j = _exact_row_duplicates(xte, xtr)
        result.y_test = yte
        result.test_distances = d_te / divisor
        result.test_neighbors = i_te
        result.test_train_duplicates = np.stack([dup_i, dup_j], axis=1) if dup_i.size else np.empty((0, 2), np.int64)
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
        raise ValueError(f"queries have {q.shape[1]} features per point but database has {db.shape[1]}.")
    (q, db), divisor = common_storage(q, db)
    d, i = get_engine(engine).nearest(q, db, norm=norm)
    return d / divisor, i


ProgressFn = Callable[[int], Any]
