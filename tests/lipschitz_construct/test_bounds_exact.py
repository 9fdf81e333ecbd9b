"""Exact eps in robustness_bounds and its record: on byte data a tie ``d <= 2 eps`` is decided on
integers (``k <= floor(2 eps 255)``, l2 ``k <= floor((2 eps 255)**2)``), so the optimum drops
below 100% at exactly half the separation and not a hair before; every engine agrees; the
record stores each eps as exact text and older records (floats) still load. The oracles are
integer brute force written here."""
from __future__ import annotations

import hashlib
import json
import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lipschitz_construct import BoundsRecord, robustness_bounds
from lipschitz_construct.bounds import main
from separation.core.errors import InvalidInputError
from separation.core.records import canonical_json, load_record
from separation.core.threat import eps_text
from separation.engines import CUDAEngine

from helpers.paths import REPO
from helpers.records import only_record

ENGINES = {"cpu": "cpu", "reference": "reference", "torch-on-cpu": CUDAEngine(device="cpu", use_triton=False)}
TINY = Fraction(1, 10**12)


def pair(a, b):
    return np.array([a, b], np.uint8), np.array([0, 1])


def conflicts(x, y, norm, eps, engine="cpu"):
    """The number of conflicts at each eps, one call."""
    return robustness_bounds(x, y, norm=norm, eps=eps, engine=engine, progress=False).n_conflicts.tolist()


@pytest.mark.parametrize("engine", list(ENGINES))
def test_the_251_510_tie_in_linf(engine):
    """Two points at l-inf byte distance 251: their eps-balls meet at eps = 251/510 exactly (a
    conflict) and not at any eps below it: 251/510 - 1e-12, the decimal 0.4921568627, nor the
    float 251/510 where its decimal is below the tie."""
    x, y = pair([0, 3], [251, 100])
    eng = ENGINES[engine]
    below = [Fraction(251, 510) - TINY, "0.4921568627"]
    assert conflicts(x, y, "linf", below + ["251/510"], eng) == [0, 0, 1]
    assert conflicts(x, y, "linf", Fraction(251, 510), eng) == [1]
    f = 251 / 510
    assert conflicts(x, y, "linf", f, eng) == [int(Fraction(repr(f)) >= Fraction(251, 510))]
    b = robustness_bounds(x, y, norm="linf", eps=below + [Fraction(251, 510)], engine=eng)
    assert b.optimal_error.tolist() == [0.0, 0.0, 0.5] and b.threshold_eps_text == "251/510"
    assert [p.eps_text for p in b.points] == ["0.4921568627", eps_text(below[0]), "251/510"]


@pytest.mark.parametrize("engine", list(ENGINES))
@pytest.mark.parametrize("norm, b", [("linf", [16, 3]), ("l1", [9, 7])])
def test_the_8_255_tie_at_byte_distance_16(engine, norm, b):
    x, y = pair([0, 0], b)
    assert conflicts(x, y, norm, [Fraction(8, 255) - TINY, "8/255", Fraction(8, 255) + TINY], ENGINES[engine]) == \
        [0, 1, 1]


@pytest.mark.parametrize("engine", list(ENGINES))
def test_the_decimal_0_3_is_3_10(engine):
    """153/255 = 0.6 = 2 x 0.3 exactly: a conflict at eps 0.3 given as a float or as text, none at
    the decimal 0.2999999999 or the float just below 0.3."""
    x, y = pair([0], [153])
    got = conflicts(x, y, "linf", [0.3, "0.2999999999", float(np.nextafter(0.3, 0))], ENGINES[engine])
    assert got == [0, 0, 1] and conflicts(x, y, "linf", "0.3", ENGINES[engine]) == [1]


@pytest.mark.parametrize("engine", list(ENGINES))
def test_an_l2_tie_at_a_squared_distance_of_900(engine):
    """Squared byte distance 18**2 + 24**2 = 900 = (2 eps 255)**2 at eps = 15/255 = 1/17."""
    x, y = pair([0, 0, 0], [18, 24, 0])
    got = conflicts(x, y, "l2", [Fraction(15, 255) - TINY, "1/17", "15/255", Fraction(15, 255) + TINY],
                    ENGINES[engine])
    assert got == [0, 1, 1]  # 1/17 and 15/255 are one radius
    b = robustness_bounds(x, y, norm="l2", eps="1/17", engine=ENGINES[engine])
    assert b.separation == 30 / 255 and b.separation_k == 900 and b.threshold_eps_text == "1/17"


def _byte_distances(x, norm):
    """Integer distances of every pair (l2: squared), by brute force."""
    diff = np.abs(x.astype(np.int64)[:, None, :] - x.astype(np.int64)[None, :, :])
    return diff.max(2) if norm == "linf" else diff.sum(2) if norm == "l1" else np.square(diff).sum(2)


def _half_separation(k, norm):
    """(eps just below half the separation, eps at or just above it), exact: for l2 the 12-digit
    decimals around sqrt(k)/510 (equal to it where k is a square)."""
    if norm != "l2":
        return Fraction(k, 510) - TINY, Fraction(k, 510)
    big = k * 10**24
    root = math.isqrt(big)
    at = Fraction(root + (root * root < big), 510 * 10**12)
    return (Fraction(math.isqrt(big - 1), 510 * 10**12) if k else -TINY), at


@settings(max_examples=40, deadline=None)
@given(st.integers(3, 25), st.integers(1, 4), st.integers(2, 3), st.integers(0, 2**32 - 1),
       st.sampled_from(["linf", "l2", "l1"]), st.integers(2, 256))
def test_zero_error_below_half_the_separation_and_a_drop_at_it(n, d, classes, seed, norm, top):
    """Property: with ``k`` the smallest cross-class byte distance (by brute force), every error is
    0 at every eps below half the separation, and at half of it exactly the conflicts are the
    pairs at ``k`` (the integer oracle) and the optimum is below 100%; cpu and reference agree."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, top, size=(n, d)).astype(np.uint8)
    y = rng.integers(0, classes, n)
    y[:2] = [0, 1]
    dist = _byte_distances(x, norm)
    cross = np.triu(y[:, None] != y[None, :], 1)
    k = int(dist[cross].min())
    below, at = _half_separation(k, norm)
    eps = [e for e in (below / 2, below, at) if e >= 0]
    runs = [robustness_bounds(x, y, norm=norm, eps=eps, engine=e, progress=False) for e in ("cpu", "reference")]
    for b in runs:
        assert b.separation_k == k and b.n_conflicts[-1] == int((cross & (dist == k)).sum()) > 0
        assert np.all(b.n_conflicts[:-1] == 0) and np.all(b.optimal_error[:-1] == 0)
        assert np.all(b.upper_error[:-1] == 0) and np.all(b.lower_error[:-1] == 0)
        assert b.optimal_error[-1] > 0 and b.threshold_eps == b.separation / 2
        if norm != "l2" or math.isqrt(k) ** 2 == k:
            half = Fraction(k, 510) if norm != "l2" else Fraction(math.isqrt(k), 510)
            assert Fraction(b.threshold_eps_text) == half
        else:
            assert b.threshold_eps_text == f"sqrt({k})/510"
    assert runs[0].n_conflicts.tolist() == runs[1].n_conflicts.tolist()


def test_the_levels_of_several_radii_are_integer_ties(rng):
    """One search at the largest eps, levels per radius by integer comparison: at the ties
    k/510 for k = 1..12 the conflicts are exactly the pairs at distance <= k (brute force)."""
    x = rng.integers(0, 14, size=(40, 3)).astype(np.uint8)
    y = np.arange(40) % 3
    dist = _byte_distances(x, "linf")
    cross = np.triu(y[:, None] != y[None, :], 1)
    ties = [Fraction(k, 510) for k in range(1, 13)]
    b = robustness_bounds(x, y, norm="linf", eps=ties + [t - TINY for t in ties], engine="cpu")
    want = {t: int((cross & (dist <= math.floor(t * 510))).sum()) for t in ties + [t - TINY for t in ties]}
    assert b.n_conflicts.tolist() == [want[e] for e in b.eps_exact]


def test_float_data_compare_with_the_float_nearest_to_2_eps():
    """Floats that are not bytes: the float64 distance against the float nearest to 2 eps (a float
    eps: exactly 2 eps); 0.1 and 0.3 are 0.2 apart in floats (0.19999999999999998)."""
    x, y = np.array([[0.1], [0.3]]), np.array([0, 1])
    gap = 0.3 - 0.1
    assert gap < 0.2
    assert conflicts(x, y, "linf", [gap / 2, float(np.nextafter(gap / 2, 0)), "0.1"], "reference") == [0, 1, 1]
    assert conflicts(x, y, "linf", [gap / 2, float(np.nextafter(gap / 2, 0))], "cpu") == [0, 1]


def test_radii_are_named_exactly_or_by_their_float():
    x = np.array([[0], [16], [40], [100]], np.uint8)
    y = np.array([0, 1, 0, 1])
    b = robustness_bounds(x, y, norm="linf", eps=["8/255", 0.3, Fraction(251, 510)], engine="reference")
    assert b.eps_exact == (Fraction(8, 255), Fraction(3, 10), Fraction(251, 510))
    assert b.eps == (8 / 255, 0.3, 251 / 510)
    assert [p.eps_text for p in b.points] == ["8/255", "0.3", "251/510"]
    assert [p.eps for p in b.points] == list(b.eps)
    for name in ("8/255", Fraction(16, 510), 8 / 255, np.float64(8 / 255)):
        assert b.kept_mask(name).tolist() == b.kept_mask(b.eps[0]).tolist()
    assert b._index("0.3") == b._index(0.3) == 1 and b._index("251/510") == 2
    clf, mask = b.witness("8/255")
    pred, radius = clf.predict_with_radius(x[mask])
    assert np.array_equal(pred, y[mask]) and radius.min() >= 8 / 255
    for missing in ("0.30000001", Fraction(1, 3), 0.31, 1):
        with pytest.raises(InvalidInputError, match=r"was not computed; the radii are 8/255, 0\.3, 251/510\."):
            b.kept_mask(missing)
    with pytest.raises(TypeError, match="must be a number"):
        b.kept_mask(None)


# -- the record and the command line -----------------------------------------------------------------
def test_the_command_takes_exact_eps_and_the_record_stores_the_text(tmp_path, capsys):
    out = tmp_path / "bounds"
    args = ["--dataset", "digits", "--norm", "linf", "--eps", "8/255", "0.3", "16/510", "--out", str(out),
            "--no-progress"]
    assert main(args) == 0
    text = capsys.readouterr().out
    rec = load_record(only_record(out), BoundsRecord)
    assert rec.config.eps == ("8/255", "0.3")  # sorted, distinct, canonical
    assert [p.eps_text for p in rec.result.points] == ["8/255", "0.3"]
    assert [p.eps for p in rec.result.points] == [8 / 255, 0.3]
    stored = json.loads((only_record(out) / "record.json").read_text())
    assert stored["config"]["eps"] == ["8/255", "0.3"] and stored["result"]["points"][0]["eps_text"] == "8/255"
    assert "--eps 8/255 0.3" in rec.command()
    assert rec.result.at("8/255") is rec.result.at(Fraction(16, 510)) is rec.result.at(8 / 255) is rec.result.points[0]
    assert rec.result.at("0.3") is rec.result.points[1] and rec.result.at("1/3") is None
    assert [ln.split()[0] for ln in text.splitlines() if ln.split()[:1] in (["8/255"], ["0.3"])] == ["8/255", "0.3"]
    assert main(args[:6] + ["0.30", "8/255"] + args[8:]) == 0 and "reused" in capsys.readouterr().out


def test_a_record_written_before_exact_eps_still_loads(tmp_path):
    """A bounds record with numbers in ``config.eps`` and no ``eps_text`` (the earlier layout, with a
    valid digest): it loads, its radii read as the decimals of their floats."""
    out = tmp_path / "bounds"
    assert main(["--dataset", "digits", "--norm", "linf", "--eps", "0.2", "0.25", "--out", str(out),
                 "--no-progress"]) == 0
    folder = only_record(out)
    data = json.loads((folder / "record.json").read_text())
    data["config"]["eps"] = [0.2, 0.25]
    for p in data["result"]["points"]:
        del p["eps_text"]
    del data["result"]["threshold_eps_text"]
    body = {k: v for k, v in data.items() if k != "digest"}
    data["digest"] = hashlib.sha256(canonical_json(body)).hexdigest()
    (folder / "record.json").write_text(json.dumps(data))
    rec = load_record(folder, BoundsRecord)
    assert rec.config.eps == ("0.2", "0.25") and [p.eps_text for p in rec.result.points] == ["0.2", "0.25"]
    assert rec.result.threshold_eps_text is None and rec.result.at("0.25") is rec.result.points[1]


def test_the_shipped_grids_start_at_exactly_half_the_separation():
    """BOUNDS_RUNS (and the Makefile) write each eps as its canonical exact text, and the first eps
    of each grid is half the separation of the shipped record: l-inf and l1 k/510 exactly, l2 the decimal
    whose (510 eps)**2 lies in [k, k + 1)."""
    from analysis.rendering.collect import BOUNDS_RUNS

    for ds, norm, eps, _ in BOUNDS_RUNS:
        assert all(eps_text(e) == e for e in eps) and list(eps) == sorted(eps, key=Fraction), (ds, norm)
        folders = sorted((REPO / "results" / "bounds" / ds).glob(f"train-{norm}-*"))
        if not folders:
            continue
        sep = json.loads((folders[0] / "record.json").read_text())["result"]["separation"]
        first = Fraction(eps[0])
        if norm in ("linf", "l1"):  # integer byte distances
            assert first == Fraction(round(sep * 255), 510), (ds, norm)
        else:
            k = round((sep * 255) ** 2)
            assert math.floor((510 * first) ** 2) == k and len(eps[0].split(".")[1]) <= 6, (ds, norm)
