"""The other tools' routes to the cross-class nearest-neighbour distance, for side-by-side benchmarks.

Each route takes ``(query, y_query, database, y_database)`` (rows of grey levels) and returns every
query's distance (in grey levels) to its nearest database point of another class, the way a user of
that tool would compute it: one search per class against the points of the other classes.
"""
from __future__ import annotations

import numpy as np

#: norm -> (scikit-learn's Minkowski p, faiss metric name, torch.cdist p)
NORMS = {"linf": (np.inf, "METRIC_Linf", float("inf")), "l2": (2, "METRIC_L2", 2.0), "l1": (1, "METRIC_L1", 1.0)}


def per_class(query, yq, db, ydb, search):
    """``search(q, d)`` (nearest distance of each row of ``q`` in ``d``) per query class."""
    out = np.full(len(query), np.inf)
    for c in np.unique(ydb):
        q_idx = np.flatnonzero(yq == c)
        other = np.flatnonzero(ydb != c)
        if q_idx.size and other.size:
            out[q_idx] = search(query[q_idx], db[other])
    return out


def sklearn_route(norm: str):
    """``NearestNeighbors(algorithm="brute")`` per class (the paper's code, l-inf)."""
    from sklearn.neighbors import NearestNeighbors

    p = NORMS[norm][0]

    def route(query, yq, db, ydb):
        def search(q, d):
            nn = NearestNeighbors(n_neighbors=1, algorithm="brute", p=p, n_jobs=-1).fit(d.astype(np.float32))
            return nn.kneighbors(q.astype(np.float32))[0][:, 0]

        return per_class(query, yq, db, ydb, search)
    return route


def faiss_route(norm: str):
    """faiss-cpu ``IndexFlat`` per class (squared distances for l2, as faiss returns them, rooted)."""
    import faiss

    metric = getattr(faiss, NORMS[norm][1])

    def route(query, yq, db, ydb):
        def search(q, d):
            index = faiss.IndexFlat(d.shape[1], metric)
            index.add(np.ascontiguousarray(d, dtype=np.float32))
            dist = index.search(np.ascontiguousarray(q, dtype=np.float32), 1)[0][:, 0]
            return np.sqrt(np.maximum(dist, 0)) if norm == "l2" else dist

        return per_class(query, yq, db, ydb, search)
    return route


def cdist_route(norm: str):
    """``torch.cdist`` in blocks of 1024 queries, per class."""
    import torch

    p = NORMS[norm][2]

    def route(query, yq, db, ydb):
        def search(q, d):
            dt = torch.from_numpy(d.astype(np.float32))
            out = []
            for s in range(0, len(q), 1024):
                qt = torch.from_numpy(q[s:s + 1024].astype(np.float32))
                out.append(torch.cdist(qt, dt, p=p).min(dim=1).values.numpy())
            return np.concatenate(out)

        return per_class(query, yq, db, ydb, search)
    return route


#: display name -> route factory (takes the norm)
ROUTES = {"sklearn (paper)": sklearn_route, "faiss-cpu IndexFlat": faiss_route, "torch.cdist": cdist_route}


def same_distances(got, ours, norm: str, *, bytes_: bool) -> bool:
    """Whether a tool gave every point the toolkit's distance ``ours`` ([0, 1] pixel units). For
    byte data the tool's distances are grey levels: exactly ``255 * ours`` for l-inf and l1 (integer
    sums, exact in float32), the same integer squared distance for l2 (float routes round the root).
    For float data: equal as float64."""
    got, ours = np.asarray(got, np.float64), np.asarray(ours, np.float64)
    if not bytes_:
        return bool(np.array_equal(got, ours))
    if norm == "l2":
        return bool(np.array_equal(np.rint(got * got), np.rint((ours * 255) ** 2)))
    return bool(np.array_equal(got / 255.0, ours))


__all__ = ["NORMS", "ROUTES", "cdist_route", "faiss_route", "per_class", "same_distances", "sklearn_route"]
