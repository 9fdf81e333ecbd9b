"""Engines own their capabilities: :meth:`Engine.range_search` on every engine equals the float64
reference (ties at exactly the radius, tiny blocks, ``max_pairs`` at its boundary); every engine
either has a capability or says why not; ``get_engine`` picks and refuses by capability.
tests/test_dask_engine.py runs the Dask engine's range search on a real two-worker cluster."""
from __future__ import annotations

import math
import re
from fractions import Fraction

import numpy as np
import pytest

import separation.engines as engines
from separation import conflict_pairs, conflict_pairs_between
from separation.core.errors import InvalidInputError, LimitError
from separation.engines import (CAPABILITIES, ENGINES, CPUEngine, CUDAEngine, DaskEngine, Engine, FaissEngine,
                                ReferenceEngine, engines_with, get_engine)
from separation.engines.blocks import CPUBlocks
from separation.engines.conflicts import Layout

from helpers.engine_variants import NO_PROBES, SMALL, tied

NORMS = ("linf", "l2", "l1")


def range_engines() -> dict[str, Engine]:
    """Every local engine that has a range search, with default and with tiny block sizes."""
    return {"reference": ReferenceEngine(), "reference-tiny-blocks": ReferenceEngine(block_bytes=8),
            "cpu": CPUEngine(), "cpu-small": CPUEngine(blocks=SMALL), "cpu-gemm-rows-1": CPUEngine(blocks=NO_PROBES),
            "cpu-gemm-rows-3": CPUEngine(blocks=CPUBlocks(gemm_rows=3)),
            "torch-on-cpu": CUDAEngine(device="cpu", use_triton=False)}


def data(kind, seed, n=40, d=6):
    """Tied bytes (few levels, a cross-class duplicate) or dyadic floats (exact sums, many ties)."""
    rng = np.random.default_rng(seed)
    x, y = tied(rng, n, d, 3, values=4)
    return (x, y) if kind == "bytes" else (x / 4.0, y)


def exact_tie(d: float, norm: str):
    """The radius at exactly byte distance ``d`` (``k/255``; l2 ``sqrt(k)/255``, or the 12-digit
    decimal just above it where ``k`` is no square: no pair lies between)."""
    k = int(np.rint((d * 255) ** (2 if norm == "l2" else 1)))
    if norm != "l2":
        return Fraction(k, 255)
    root = math.isqrt(k * 10**24)
    return Fraction(root + (root * root < k * 10**24), 255 * 10**12)


def radii(x, y, norm):
    """0, the smallest distance, exactly a tied distance in the bulk (bytes: the exact tie, as a
    Fraction), one ulp below its float, the largest (floats: one of them for bytes)."""
    _, _, d = ReferenceEngine().range_search(x, y, x, y, norm=norm, radius=2.0 * x.shape[1], same_set=True)
    ds = np.unique(d)
    mid = ds[len(ds) // 3]
    tie = exact_tie(float(mid), norm) if x.dtype == np.uint8 else float(mid)
    return [0.0, float(ds[0]), tie, float(np.nextafter(mid, 0)), float(ds[-1])]


def same(a, b):
    return all(np.array_equal(u, v) and u.dtype == v.dtype for u, v in zip(a, b))


@pytest.mark.parametrize("kind", ["bytes", "floats"])
@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("name", list(range_engines()))
def test_every_engine_range_search_equals_the_reference(kind, norm, name):
    x, y = data(kind, 1)
    xq, yq = data(kind, 2, n=17)
    eng, ref = range_engines()[name], ReferenceEngine()
    for radius in radii(x, y, norm):
        kw = dict(norm=norm, radius=radius)
        got = eng.range_search(x, y, x, y, same_set=True, **kw)
        want = ref.range_search(x, y, x, y, same_set=True, **kw)
        assert same(got, want), (radius, len(got[0]), len(want[0]))
        assert got[0].dtype == got[1].dtype == np.int64 and got[2].dtype == np.float64
        assert np.all(got[0] < got[1]) and np.all(y[got[0]] != y[got[1]])
        assert same(eng.range_search(xq, yq, x, y, **kw), ref.range_search(xq, yq, x, y, **kw)), radius
    i, j, d = ref.range_search(x, y, x, y, norm=norm, radius=radii(x, y, norm)[2], same_set=True)
    assert len(i) > 0 and np.array_equal(np.lexsort((j, i)), np.arange(len(i)))  # sorted by (i, j)


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("name", list(range_engines()))
def test_max_pairs_at_its_boundary(norm, name):
    """``max_pairs`` equal to the number of pairs passes, one less is a LimitError with the remedy."""
    x, y = data("bytes", 3)
    eng = range_engines()[name]
    radius = radii(x, y, norm)[2]
    for xq, yq, same_set in ((x, y, True), (x[:23], y[:23], False)):
        want = ReferenceEngine().range_search(xq, yq, x, y, norm=norm, radius=radius, same_set=same_set)
        n = len(want[0])
        assert n > 1
        got = eng.range_search(xq, yq, x, y, norm=norm, radius=radius, same_set=same_set, max_pairs=n)
        assert same(got, want)
        with pytest.raises(LimitError, match=rf"^more than {n - 1:,} cross-class pairs lie within radius .*; pass a "
                                             r"smaller radius \(or a larger max_pairs"):
            eng.range_search(xq, yq, x, y, norm=norm, radius=radius, same_set=same_set, max_pairs=n - 1)


@pytest.mark.parametrize("name", list(range_engines()))
def test_progress_counts_every_pair_comparison_once(name):
    x, y = data("bytes", 4)
    for norm in NORMS:
        for xq, yq, same_set in ((x, y, True), (x[:9], y[:9], False)):
            seen = []
            range_engines()[name].range_search(xq, yq, x, y, norm=norm, radius=0.5, same_set=same_set,
                                               progress=seen.append)
            assert sum(seen) == Layout(yq, y, same_set).work() > 0


# -- capabilities -------------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", [*ENGINES.values(), DaskEngine], ids=[*ENGINES, "dask"])
def test_every_engine_has_each_capability_or_says_why_not(cls):
    """Each capability is a method the engine implements (``range_search`` overridden: the base
    method is only a placeholder; the others have working defaults built on ``nearest``), or an
    entry of ``unsupported`` with a one-line reason, whose method refuses with an error naming the
    engines that have it."""
    assert set(cls.unsupported) <= set(CAPABILITIES)
    for cap in CAPABILITIES:
        method = getattr(cls, cap)
        if cap in cls.unsupported:
            reason = cls.unsupported[cap]
            assert not cls.can(cap) and reason and "\n" not in reason and cap in vars(cls)
            with pytest.raises(InvalidInputError, match=re.escape(f"has no {cap} ({reason}); use an engine that "
                                                                  f"has it: {', '.join(engines_with(cap))}.")):
                method(object.__new__(cls), *[np.zeros((2, 2), np.uint8), np.arange(2)] * 2, norm="linf")
        else:
            assert cls.can(cap) and not getattr(method, "unimplemented", False), cap
            assert not getattr(method, "__isabstractmethod__", False), cap
    assert "range_search" in cls.unsupported or cls.range_search is not Engine.range_search


def test_an_engine_must_implement_or_decline_range_search():
    class Nearest(Engine):
        name = "nearest-only"

        def nearest(self, queries, database, *, norm):
            return ReferenceEngine().nearest(queries, database, norm=norm)

    x, y = data("bytes", 5)
    assert not Nearest.can("range_search") and Nearest.can("cross_class") and Nearest.can("class_search")
    with pytest.raises(InvalidInputError, match=r"^The nearest-only engine has no range_search \(not implemented\); "
                                                r"use an engine that has it: reference, cpu, cuda, dask"):
        Nearest().range_search(x, y, x, y, norm="linf", radius=0.1)
    with pytest.raises(InvalidInputError, match="nearest-only engine has no range_search"):
        conflict_pairs(x, y, radius=0.1, engine=Nearest())
    with pytest.raises(TypeError, match="implements range_search but names it in unsupported"):
        class Both(ReferenceEngine):  # noqa: F841
            unsupported = {"range_search": "no"}

            def range_search(self, *a, **kw):
                return super().range_search(*a, **kw)
    with pytest.raises(InvalidInputError, match="Unknown capability 'teleport'"):
        class Bad(ReferenceEngine):  # noqa: F841
            unsupported = {"teleport": "no"}
    with pytest.raises(InvalidInputError, match="^Unknown capability 'nope'; the capabilities are nearest, "):
        CPUEngine.can("nope")
    with pytest.raises(InvalidInputError, match="Unknown capability"):
        get_engine("cpu", capability="nope")


@pytest.mark.parametrize("cuda, faiss, gpus", [(c, f, g) for c in (True, False) for f in (True, False)
                                               for g in (0, 1)])
def test_auto_never_picks_an_engine_without_the_capability(monkeypatch, cuda, faiss, gpus):
    monkeypatch.setattr(engines.registry, "cuda_available", lambda: cuda)
    monkeypatch.setattr(engines.CUDAEngine, "available", staticmethod(lambda: cuda))
    monkeypatch.setattr(engines.FaissEngine, "available", staticmethod(lambda: faiss))
    monkeypatch.setattr(engines.registry, "num_gpus", lambda: gpus)
    fastest = "cuda" if cuda else "faiss" if faiss and gpus else "cpu"
    assert engines.auto_engine_name() == fastest
    for cap in CAPABILITIES:
        eng = get_engine("auto", capability=cap)
        assert eng.can(cap) and eng.available(), cap
        assert eng.name == (fastest if ENGINES[fastest].can(cap) else "cpu"), cap
    assert get_engine("auto", capability="range_search").name == ("cuda" if cuda else "cpu")


def test_an_explicit_engine_without_the_capability_names_those_with_it():
    x, y = data("bytes", 6)
    want = ("^" + re.escape("The faiss engine has no range_search (FAISS range search is float32 with no exact "
                            "recheck here); use an engine that has it: reference, cpu, cuda, dask (a DaskEngine "
                            "instance).") + "$")
    assert engines_with("range_search") == ["reference", "cpu", "cuda", "dask (a DaskEngine instance)"]
    for call in (lambda: get_engine("faiss", capability="range_search"),
                 lambda: get_engine(FaissEngine(), capability="range_search"),
                 lambda: FaissEngine().range_search(x, y, x, y, norm="linf", radius=0.1),
                 lambda: conflict_pairs(x, y, radius=0.1, engine="faiss"),
                 lambda: conflict_pairs_between(x[:5], y[:5], x, y, radius=0.1, engine=FaissEngine())):
        with pytest.raises(InvalidInputError, match=want) as exc:
            call()
        assert "engine='auto'" not in str(exc.value)
    if FaissEngine.available():
        assert get_engine("faiss", capability="nearest").name == "faiss"


def test_conflict_pairs_run_through_the_engines_range_search(monkeypatch):
    """The public functions dispatch on the capability, not on engine classes: any engine with a
    range search serves them (here a subclass that records its calls)."""
    calls = []

    class Recording(ReferenceEngine):
        name = "recording"

        def range_search(self, *args, **kwargs):
            calls.append(kwargs)
            return super().range_search(*args, **kwargs)

    x, y = data("bytes", 7)
    got = conflict_pairs(x, y, norm="l1", radius=0.5, engine=Recording(), max_pairs=10**6)
    assert same(got, conflict_pairs(x, y, norm="l1", radius=0.5, engine="cpu"))
    assert calls == [dict(norm="l1", radius=0.5, same_set=True, max_pairs=10**6, progress=None)]


@pytest.mark.gpu
def test_the_cuda_engine_range_search_on_the_gpu_equals_the_reference():
    for kind in ("bytes", "floats"):
        x, y = data(kind, 8, n=300, d=40)
        for norm in NORMS:
            for radius in radii(x, y, norm)[1:4]:
                want = ReferenceEngine().range_search(x, y, x, y, norm=norm, radius=radius, same_set=True)
                assert same(CUDAEngine().range_search(x, y, x, y, norm=norm, radius=radius, same_set=True), want)
                assert same(get_engine("auto", capability="range_search").range_search(
                    x[:50], y[:50], x, y, norm=norm, radius=radius),
                    ReferenceEngine().range_search(x[:50], y[:50], x, y, norm=norm, radius=radius))
