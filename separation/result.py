"""``SeparationResult``: per-point separation of a dataset and its summary statistics."""
from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np

from .core.errors import InvalidInputError
from .separation_record import DupPair, EpsStat, Pair, SeparationSummary, SplitSummary

DEFAULT_QUANTILES = (0.001, 0.01, 0.05, 0.25, 0.5, 0.75, 0.95)


@dataclasses.dataclass
class SeparationResult:
    """Per-point separation. Distances are in [0, 1] pixel units (uint8 values / 255).

    ``train_distances[i]`` is the distance from training point ``i`` to its nearest training point
    of another class, ``train_neighbors[i]`` that point's index; ``test_*`` likewise for test
    points (neighbours index the *training* set); ``test_test_*`` from each test point to the
    nearest *test* point of another class (neighbours index the test set). ``inf`` / ``-1`` where
    no other class exists. Splits are named ``"train"``, ``"test"`` and ``"test-test"``.

    Optional (``compute_separation(..., k=K, class_distances=True)``): ``*_knn_distances`` /
    ``*_knn_neighbors`` ``(n, K)``, the K nearest training points of other classes, sorted by
    distance then index; ``*_class_distances`` / ``*_class_neighbors`` ``(n, C)``, the nearest
    training point of every class (columns: ``classes``), behind :meth:`class_matrix`.
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
    test_test_distances: np.ndarray | None = None
    test_test_neighbors: np.ndarray | None = None
    seconds: dict[str, float] = dataclasses.field(default_factory=dict)
    exclude_below: float = 0.0
    train_knn_distances: np.ndarray | None = None
    train_knn_neighbors: np.ndarray | None = None
    test_knn_distances: np.ndarray | None = None
    test_knn_neighbors: np.ndarray | None = None
    classes: np.ndarray | None = None
    train_class_distances: np.ndarray | None = None
    train_class_neighbors: np.ndarray | None = None
    test_class_distances: np.ndarray | None = None
    test_class_neighbors: np.ndarray | None = None

    #: the optional per-point arrays, stored in ``arrays.npz`` when present
    OPTIONAL = ("test_test_distances", "test_test_neighbors", "train_knn_distances", "train_knn_neighbors",
                "test_knn_distances", "test_knn_neighbors", "classes", "train_class_distances",
                "train_class_neighbors", "test_class_distances", "test_class_neighbors")

    # -- derived ----------------------------------------------------------------------------
    @property
    def r(self) -> float:
        """Half the train--train separation: the radius of the theorem."""
        return float(self.train_distances.min()) / 2

    def cross_class_pairs(self, split: str = "train", *, below: float = 0.0,
                          inclusive: bool = True) -> list[Pair]:
        """Points whose nearest other-class training point is within ``below`` (0: exact duplicates);
        a symmetric train--train pair is listed once."""
        d, nbr, y, y_nbr = self._split(split)
        hit = d <= below if inclusive else d < below
        out = []
        for i in np.flatnonzero(hit):
            j = int(nbr[i])
            if split != "test" and j < i and hit[j] and nbr[j] == i:
                continue  # a pair within one set is reported once
            out.append(Pair(int(i), j, int(y[i]), int(y_nbr[j]), float(d[i])))
        return out

    def excluded_mask(self, split: str = "train") -> np.ndarray:
        """Points left out of the 'excluding duplicates' statistics: distance <= ``exclude_below``."""
        return self._split(split)[0] <= self.exclude_below

    def _split(self, split):
        """(distances, neighbours, labels, neighbours' labels) of a split."""
        if split == "train":
            return self.train_distances, self.train_neighbors, self.y_train, self.y_train
        if split in ("test", "test-test"):
            d = self.test_distances if split == "test" else self.test_test_distances
            if d is None:
                raise InvalidInputError(f"This result has no {split} split; pass x_test/y_test to compute_separation"
                                 + (" with test_test=True." if split == "test-test" else "."))
            nbr = self.test_neighbors if split == "test" else self.test_test_neighbors
            return d, nbr, self.y_test, self.y_train if split == "test" else self.y_test
        raise InvalidInputError(f"split must be 'train', 'test' or 'test-test', got {split!r}")

    @property
    def splits(self) -> tuple[str, ...]:
        return ("train",) + (("test",) if self.test_distances is not None else ()) + \
            (("test-test",) if self.test_test_distances is not None else ())

    def summary(self, eps: Sequence[float] = (), *, quantiles: Sequence[float] = DEFAULT_QUANTILES,
                near_duplicate_threshold: float | None = None) -> SeparationSummary:
        """Min, mean, quantiles, per-class minima, closest pair, ``r``, the ratios to ``2 eps``,
        duplicates, and the same statistics with duplicate pairs excluded."""
        splits = {sp: self._split_summary(sp, eps, quantiles, near_duplicate_threshold) for sp in self.splits}
        dups = [] if self.test_train_duplicates is None else [
            DupPair(int(a), int(b)) for a, b in np.asarray(self.test_train_duplicates).reshape(-1, 2)]
        return SeparationSummary(norm=self.norm, engine=self.engine, r=self.r, exclude_below=self.exclude_below,
                                 train=splits["train"], test=splits.get("test"), test_train_duplicates=dups,
                                 test_test=splits.get("test-test"))

    def _split_summary(self, split, eps, quantiles, near) -> SplitSummary:
        d, nbr, y, y_nbr = self._split(split)
        finite = np.isfinite(d)
        i = int(np.argmin(d))
        keep = ~self.excluded_mask(split)
        kept = keep & finite
        return SplitSummary(
            n=int(d.size), min=float(d.min()),
            mean=float(d[finite].mean()) if finite.any() else float("inf"),
            quantiles={str(q): float(np.quantile(d[finite], q)) for q in quantiles} if finite.any() else {},
            per_class_min={str(int(c)): float(d[y == c].min()) for c in np.unique(y)},
            closest_pair=Pair(i, int(nbr[i]), int(y[i]), int(y_nbr[nbr[i]]) if nbr[i] >= 0 else None,
                              float(d[i])),
            eps={str(e): EpsStat(float(d.min() / (2 * e)), float(np.mean(d < 2 * e))) for e in eps},
            cross_class_duplicates=self.cross_class_pairs(split, below=0.0),
            n_excluded=int((~keep).sum()),
            min_excluding_duplicates=float(d[keep].min()) if keep.any() else None,
            mean_excluding_duplicates=(float(d[kept].mean()) if kept.any() else float("inf")) if keep.any() else None,
            near_duplicates=None if near is None else self.cross_class_pairs(split, below=near, inclusive=False))

    def arrays(self) -> dict[str, np.ndarray]:
        """The per-point arrays, for ``arrays.npz``."""
        out = {"y_train": self.y_train, "train_distances": self.train_distances,
               "train_neighbors": self.train_neighbors}
        if self.test_distances is not None:
            out.update(y_test=self.y_test, test_distances=self.test_distances,
                       test_neighbors=self.test_neighbors,
                       test_train_duplicates=np.asarray(self.test_train_duplicates).reshape(-1, 2))
        out.update({k: getattr(self, k) for k in self.OPTIONAL if getattr(self, k) is not None})
        return out

    @classmethod
    def from_arrays(cls, arrays, *, norm: str, engine: str, seconds=None, exclude_below: float = 0.0):
        """Rebuild from :meth:`arrays` (e.g. a record's ``arrays.npz``)."""
        def get(k):
            return None if k not in arrays else np.asarray(arrays[k])

        return cls(norm=norm, engine=engine, y_train=get("y_train"), train_distances=get("train_distances"),
                   train_neighbors=get("train_neighbors"), y_test=get("y_test"),
                   test_distances=get("test_distances"), test_neighbors=get("test_neighbors"),
                   test_train_duplicates=get("test_train_duplicates"), seconds=dict(seconds or {}),
                   exclude_below=exclude_below, **{k: get(k) for k in cls.OPTIONAL})

    # -- tables ---------------------------------------------------------------------------------
    def to_frame(self):
        """One row per point and split: ``split, index, label, distance, neighbor, neighbor_label``
        (a pandas DataFrame; distances in pixel units, ``neighbor`` indexes the training set, or
        the test set for ``test-test``)."""
        import pandas as pd

        parts = []
        for split in self.splits:
            d, nbr, y, y_nbr = self._split(split)
            parts.append(pd.DataFrame({
                "split": split, "index": np.arange(len(d)), "label": y, "distance": d, "neighbor": nbr,
                "neighbor_label": np.where(nbr >= 0, y_nbr[np.maximum(nbr, 0)], -1)}))
        return pd.concat(parts, ignore_index=True)

    def class_matrix(self, split: str = "train"):
        """Class x class minimum distances: row ``a``, column ``b`` is the smallest distance from a
        point of class ``a`` (in ``split``) to a training point of class ``b``; a long DataFrame
        with the pair (``index``, ``neighbor``) behind each minimum. ``.pivot(index="class",
        columns="other_class", values="distance")`` gives the square matrix. Needs
        ``compute_separation(..., class_distances=True)`` (``--class-matrix`` on the command line)."""
        import pandas as pd

        dist = getattr(self, f"{split}_class_distances", None)
        if dist is None:
            raise InvalidInputError("no per-class distances in this result: compute it with "
                             "compute_separation(..., class_distances=True) or --class-matrix")
        nbr = getattr(self, f"{split}_class_neighbors")
        y = self.y_train if split == "train" else self.y_test
        rows = []
        for a in self.classes:
            sel = np.flatnonzero(y == a)
            for col, b in enumerate(self.classes):
                if a == b or not sel.size:
                    continue
                i = sel[int(np.argmin(dist[sel, col]))]
                rows.append({"class": int(a), "other_class": int(b), "distance": float(dist[i, col]),
                             "index": int(i), "neighbor": int(nbr[i, col])})
        return pd.DataFrame(rows)

    # -- display --------------------------------------------------------------------------------
    def __repr__(self) -> str:
        parts = [f"{s} n={len(self._split(s)[0])} min={self._split(s)[0].min():.4g}" for s in self.splits]
        extra = []
        if self.train_knn_distances is not None:
            extra.append(f"k={self.train_knn_distances.shape[1]}")
        if self.classes is not None and self.train_class_distances is not None:
            extra.append("class distances")
        return (f"SeparationResult(norm={self.norm!r}, engine={self.engine!r}, r={self.r:.4g}; "
                + "; ".join(parts) + (f"; {', '.join(extra)}" if extra else "") + ")")

    def _repr_html_(self) -> str:
        rows = "".join(f"<tr><td>{s}</td><td>{len(self._split(s)[0])}</td><td>{self._split(s)[0].min():.4g}</td>"
                       f"<td>{np.mean(self._split(s)[0][np.isfinite(self._split(s)[0])]):.4g}</td></tr>"
                       for s in self.splits)
        return (f"<b>SeparationResult</b> ({self.norm}, engine {self.engine}, r = {self.r:.4g})"
                "<table><tr><th>split</th><th>n</th><th>min</th><th>mean</th></tr>" + rows + "</table>")


def load_result(folder) -> SeparationResult:
    """Rebuild a :class:`SeparationResult` from a separation record folder (verified on load)."""
    from .core.records import load_record
    from .separation_record import SeparationRecord

    rec = load_record(folder, SeparationRecord)
    return SeparationResult.from_arrays(rec.load_arrays(), norm=rec.config.norm, engine=rec.result.engine,
                                        seconds=rec.timing, exclude_below=rec.config.exclude_below)


__all__ = ["DEFAULT_QUANTILES", "SeparationResult", "load_result"]
