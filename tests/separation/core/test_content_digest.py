"""``content_digest``: what an index is reused by. Equal content gives equal digests however the
array is laid out or read; one changed value, another dtype or another shape gives another."""
from __future__ import annotations

import numpy as np
import pytest

from separation.core.arrays import content_digest


@pytest.fixture
def x():
    return np.random.default_rng(0).integers(0, 256, (37, 5, 3), dtype=np.uint8)


def test_same_content_same_digest_in_any_layout_and_read_size(x):
    want = content_digest(x)
    assert content_digest(x.copy()) == want
    assert content_digest(np.asfortranarray(x)) == want
    assert all(content_digest(x, rows=r) == want for r in (1, 2, 36, 37, 38))  # the slab switch
    strided = x[:, ::2]
    assert content_digest(strided) == content_digest(np.ascontiguousarray(strided))


def test_one_changed_value_dtype_shape_or_order_changes_it(x):
    want = content_digest(x)
    y = x.copy()
    y[36, 4, 2] ^= 1  # the last value, read in the last slab
    assert content_digest(y) != want
    assert content_digest(y, rows=36) != content_digest(x, rows=36)
    assert content_digest(x.astype(np.int16)) != want
    assert content_digest(x.reshape(37, 15)) != want
    assert content_digest(x, np.zeros(1)) != content_digest(x)
    assert content_digest(np.zeros((0, 3))) != content_digest(np.zeros((0, 4)))
    labels = np.arange(37)
    assert content_digest(x, labels) != content_digest(x, labels[::-1].copy())
