"""The l-inf range search on bytes narrowed by the probe search (:mod:`separation.engines.probe_range`):
a point is compared only when another-class point lies within reach -- decided at exactly the
radius's byte limit -- and the pairs equal the float64 reference's on every block size."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from separation.engines import CPUEngine, ReferenceEngine
from separation.engines.conflicts import Layout, reference_pairs
from separation.engines.probe_range import within_reach

from helpers.engine_variants import SMALL, SMALL_GIVEN, blobs


def same(got, want):
    assert len(got) == len(want)
    for u, v in zip(got, want):
        assert np.array_equal(u, v), (u, v)


@pytest.mark.parametrize("gap", [0, 1])
def test_a_point_is_within_reach_at_exactly_the_limit(gap):
    """Two classes whose closest pair is ``k`` grey levels apart: at limit ``k`` both points are
    within reach (the probe search's bound is strict, so it is ``k + 1``), at ``k - 1`` neither; a
    far point never is."""
    k = 40
    x = np.zeros((3, 5), np.uint8)
    x[1, 2] = k + gap
    x[2] = 200
    y = np.array([0, 1, 0])
    search = CPUEngine().probe_index(x, y)
    for limit, want in ((k, [0, 1] if gap == 0 else []), (k - 1, []), (k + 1, [0, 1])):
        assert within_reach(search, x, y, limit).tolist() == want, limit


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 30), m=st.integers(1, 12), d=st.integers(1, 20),
       values=st.sampled_from([3, 256]), blocks=st.sampled_from(["default", "small", "given"]))
def test_equal_to_the_reference_with_ties_at_the_radius(seed, n, m, d, values, blocks):
    """train--train and test--train at a radius equal to some pair's distance (a tie, within) and
    one grey level below, with tiny probe blocks and either layout."""
    rng = np.random.default_rng(seed)
    x, y = rng.integers(0, values, (n, d)).astype(np.uint8), rng.integers(0, 3, n)
    xq, yq = rng.integers(0, values, (m, d)).astype(np.uint8), rng.integers(0, 3, m)
    eng = CPUEngine(blocks={"small": SMALL, "given": SMALL_GIVEN}.get(blocks, CPUEngine().blocks))
    k = int(np.abs(x[0].astype(np.int64) - xq[0]).max())
    for radius in (f"{k}/255", f"{max(k - 1, 0)}/255"):
        same(eng.range_search(x, y, x, y, norm="linf", radius=radius, same_set=True),
             reference_pairs(x, y, x, y, same_set=True, norm="linf", radius=radius))
        same(eng.range_search(xq, yq, x, y, norm="linf", radius=radius),
             reference_pairs(xq, yq, x, y, same_set=False, norm="linf", radius=radius))


def test_only_points_within_reach_are_compared_on_images():
    """Smooth images at a radius below most nearest-neighbour distances: few points are within
    reach, the range kernel sees only those (its progress), and the pairs are the tiled kernel's."""
    x, y = blobs(3)
    d, _ = CPUEngine().cross_class(x, y, x, y, norm="linf", same_set=True)
    radius = f"{int(np.quantile(d, 0.1))}/255"
    seen = []
    got = CPUEngine().range_search(x, y, x, y, norm="linf", radius=radius, same_set=True, progress=seen.append)
    same(got, CPUEngine(linf="tiled").range_search(x, y, x, y, norm="linf", radius=radius, same_set=True))
    total = Layout(y, y, True).work()
    assert len(got[0]) > 0 and sum(seen) == total and seen[0] > 0.5 * total  # the rest skipped at once


def test_which_linf_range_path_runs():
    """Bytes with ``linf="probe"`` (default) take the narrowed search (the probe search counts its
    pairs); ``linf="tiled"`` and floats go straight to the range kernel; all equal the reference."""
    rng = np.random.default_rng(5)
    x, y = rng.integers(0, 256, (20, 8)).astype(np.uint8), np.arange(20) % 2
    for eng, data, probed in ((CPUEngine(), x, True), (CPUEngine(linf="tiled"), x, False),
                              (CPUEngine(), x / 255.0, False)):
        same(eng.range_search(data, y, data, y, norm="linf", radius=0.5, same_set=True),
             ReferenceEngine().range_search(data, y, data, y, norm="linf", radius=0.5, same_set=True))
        assert (eng.probe_pairs["pairs"] > 0) == probed
