"""Exact duplicates by hashing: the groups equal an independent grouping (``np.unique`` on the rows),
known groups in and across splits come out with their kinds, and colliding digests never merge
different images."""
from __future__ import annotations

import numpy as np
import pytest

from separation import DuplicateGroup, exact_duplicates
from separation import duplicates as dup_module
from separation.core.errors import InvalidInputError


def _oracle(xs, ys):
    """Groups of equal rows by ``np.unique`` (no hashing): sorted ``(split, index)`` tuples -> labels."""
    splits = ("train", "test")
    rows = np.concatenate([x.reshape(len(x), -1) for x in xs])
    who = [(splits[s], i) for s, x in enumerate(xs) for i in range(len(x))]
    labels = np.concatenate(ys)
    _, inverse, counts = np.unique(rows, axis=0, return_inverse=True, return_counts=True)
    out = {}
    for g in np.flatnonzero(counts > 1):
        members = np.flatnonzero(inverse.ravel() == g)
        out[tuple(who[m] for m in members)] = tuple(int(labels[m]) for m in members)
    return out


def _groups(report):
    return {g.members: g.labels for g in report.groups}


def test_known_groups_in_and_across_splits_with_their_kinds():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (8, 3, 3), dtype=np.uint8)
    y = np.array([0, 1, 2, 3, 0, 1, 2, 3])
    xt = rng.integers(0, 256, (4, 3, 3), dtype=np.uint8)
    yt = np.array([5, 5, 6, 7])
    x[4] = x[0]  # same label (0, 0) in train
    x[5] = x[2]  # cross label (2 vs 1) in train
    xt[0] = x[3]  # train 3 (label 3) = test 0 and test 1 (label 5): one cross-label group of three
    xt[1] = x[3]
    report = exact_duplicates(x, y, xt, yt)
    assert report.groups == (
        DuplicateGroup(members=(("train", 0), ("train", 4)), labels=(0, 0)),
        DuplicateGroup(members=(("train", 2), ("train", 5)), labels=(2, 1)),
        DuplicateGroup(members=(("train", 3), ("test", 0), ("test", 1)), labels=(3, 5, 5)),
    )
    assert [g.cross_label for g in report.groups] == [False, True, True]
    assert report.counts() == {"cross_label_groups": 2, "cross_label_images": 5,
                               "same_label_groups": 1, "same_label_images": 2}
    frame = report.to_frame(paths=lambda split, i: f"{split}/{i}.png")
    assert list(frame.columns) == ["group", "kind", "split", "index", "label", "path"]
    assert frame[frame.kind == "cross-label"].path.tolist() == ["train/2.png", "train/5.png", "train/3.png",
                                                                 "test/0.png", "test/1.png"]
    # the same images as floats in [0, 1] (exact 8-bit values): the same groups
    assert exact_duplicates(x / 255.0, y, xt / 255.0, yt) == report


@pytest.mark.parametrize("seed", range(4))
def test_groups_equal_an_independent_grouping(seed):
    """Many repeats drawn from a few templates, in one split and in two: every group, exactly."""
    rng = np.random.default_rng(seed)
    templates = rng.integers(0, 256, (6, 5), dtype=np.uint8)
    x = templates[rng.integers(0, 6, 30)]
    y = rng.integers(0, 3, 30)
    xt = templates[rng.integers(0, 6, 9)]
    yt = rng.integers(0, 3, 9)
    assert _groups(exact_duplicates(x, y)) == _oracle([x], [y])
    assert _groups(exact_duplicates(x, y, xt, yt)) == _oracle([x, xt], [y, yt])


def test_colliding_digests_never_merge_different_images(monkeypatch):
    """Every image given the same digest (foreign images of the same size collide): the byte
    comparison still separates them, and the groups are the true ones."""
    rng = np.random.default_rng(7)
    templates = rng.integers(0, 256, (4, 6), dtype=np.uint8)
    x = templates[rng.integers(0, 4, 20)]
    y = rng.integers(0, 2, 20)
    want = _groups(exact_duplicates(x, y))
    monkeypatch.setattr(dup_module, "_digest", lambda row: b"same")
    assert _groups(exact_duplicates(x, y)) == want == _oracle([x], [y])


def test_no_duplicates_and_bad_labels():
    x = np.arange(12, dtype=np.uint8).reshape(4, 3)
    report = exact_duplicates(x, [0, 1, 0, 1])
    assert report.groups == () and report.to_frame().empty
    with pytest.raises(InvalidInputError, match="3 labels but the data has 4 points"):
        exact_duplicates(x, [0, 1, 0])
