"""lipschitz_construct.robustness_bounds: the exact optimal robust accuracy, its LP bounds and the
certified witness -- against brute force, a generic LP solver and an exhaustive search of
classifiers -- and the ``python -m lipschitz_construct.bounds`` command."""
from __future__ import annotations

import dataclasses
import itertools
import json
from fractions import Fraction
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog

from lipschitz_construct import BoundsRecord, robustness_bounds
from lipschitz_construct import _independent as ind
from lipschitz_construct.bounds import main
from lipschitz_construct.bounds_job import BoundsJob, format_summary
from separation.core.records import load_record

from helpers.records import only_record, record_folders
from helpers.paths import REPO


def get_args_parser():
    return BoundsJob().parser()


def brute_alpha(n, edges):
    best = 0
    for mask in range(1 << n):
        if all(not ((mask >> u) & 1 and (mask >> v) & 1) for u, v in edges):
            best = max(best, bin(mask).count("1"))
    return best


def lp_value(n, edges, cliques=None):
    rows = cliques if cliques is not None else [list(e) for e in edges]
    if not rows:
        return float(n)
    A = np.zeros((len(rows), n))
    for k, r in enumerate(rows):
        A[k, list(r)] = 1
    return -linprog(-np.ones(n), A_ub=A, b_ub=np.ones(len(rows)), bounds=(0, 1), method="highs").fun


def exact(eps) -> Fraction:
    """``eps`` as the rational it spells (a float: the decimal of its shortest repr)."""
    return Fraction(eps) if isinstance(eps, (str, Fraction, int)) else Fraction(repr(float(eps)))


def graph_edges(x, y, eps):
    """Conflicts by brute force: integer l-inf distances ``k`` of byte data with ``k / 255 <= 2 eps``,
    in Python integers (``k q <= 2 * 255 p`` for ``eps = p / q``)."""
    k = np.abs(x.astype(int)[:, None, :] - x.astype(int)[None, :, :]).max(2)
    e, n = exact(eps), len(x)
    return [(u, v) for u in range(n) for v in range(u + 1, n)
            if y[u] != y[v] and int(k[u, v]) * e.denominator <= 2 * 255 * e.numerator]


def tiny(rng, n, d=2, classes=3, top=12):
    x = rng.integers(0, top, size=(n, d)).astype(np.uint8)
    y = rng.integers(0, classes, n)
    y[:2] = [0, 1]
    return x, y


# -- the graph algorithms --------------------------------------------------------------------------
def test_solver_equals_brute_force_and_lp_equals_linprog(rng):
    for _ in range(150):
        n = int(rng.integers(1, 12))
        edges = [(u, v) for u in range(n) for v in range(u + 1, n) if rng.random() < rng.uniform(0.1, 0.6)]
        a = ind.adjacency(n, np.array([e[0] for e in edges], int), np.array([e[1] for e in edges], int))
        sol = ind.solve(a)
        assert sol.exact and ind.is_independent(a, sol.keep) and sol.keep.sum() == brute_alpha(n, edges)
        lp, q = ind.half_integral_lp(a)
        assert lp == pytest.approx(lp_value(n, edges), abs=1e-9)  # the matching LP == the generic LP
        assert set(np.unique(q)) <= {0.0, 0.5, 1.0} and q.sum() == pytest.approx(lp)
        assert all(q[u] + q[v] <= 1 for u, v in edges)
        cliques = ind.clique_cover(a)
        assert {(int(k[s]), int(k[t])) for k in cliques for s in range(len(k)) for t in range(s + 1, len(k))} \
            >= set(edges)
        cl = ind.clique_lp(a)
        assert sol.keep.sum() - 1e-9 <= cl <= lp + 1e-9
        assert cl == pytest.approx(lp_value(n, edges, [list(k) for k in cliques]), abs=1e-9)


def test_odd_cycle_needs_the_milp_and_a_timeout_keeps_a_valid_set(monkeypatch):
    n = 7
    u, v = np.arange(n), (np.arange(n) + 1) % n
    a = ind.adjacency(n, np.minimum(u, v), np.maximum(u, v))
    sol = ind.solve(a)
    assert sol.exact and sol.keep.sum() == 3 and sol.lp_value == 3.5 and sol.n_milp == 1 and sol.n_half == 7
    monkeypatch.setattr(ind, "milp_independent", lambda g, t: (None, False))
    sol = ind.solve(a)
    assert not sol.exact and sol.n_unsolved == 1 and ind.is_independent(a, sol.keep) and sol.keep.sum() == 3


def _cycles(*sizes):
    """Disjoint cycles of the given sizes: ``(adjacency, n)``."""
    u, v, start = [], [], 0
    for m in sizes:
        u += list(range(start, start + m))
        v += [start + (k + 1) % m for k in range(m)]
        start += m
    u, v = np.array(u), np.array(v)
    return ind.adjacency(start, np.minimum(u, v), np.maximum(u, v)), start


def test_a_component_above_the_small_size_gets_its_own_milp():
    """An odd cycle of more than SMALL_COMPONENT points is solved alone, beside the group of small
    components (a triangle, a 5-cycle): the optimum is the sum of (m - 1) / 2 over the cycles."""
    big = ind.SMALL_COMPONENT + 1 + ind.SMALL_COMPONENT % 2  # odd, above the limit
    a, n = _cycles(3, big, 5)
    sol = ind.solve(a)
    assert sol.exact and sol.n_milp == 3 and ind.is_independent(a, sol.keep)
    assert sol.keep.sum() == 1 + (big - 1) // 2 + 2
    assert set(sol.seconds) == {"lp", "bipartite", "milp", "total"}


def test_a_time_limit_already_spent_skips_the_milp(monkeypatch):
    """With no time left the MILP is not started: the greedy set, marked not proven."""
    a, _ = _cycles(7)
    monkeypatch.setattr(ind, "milp_independent", lambda g, t: pytest.fail("the MILP ran without time left"))
    sol = ind.solve(a, time_limit=1e-12)
    assert not sol.exact and sol.n_unsolved == 1 and ind.is_independent(a, sol.keep) and sol.keep.sum() == 3



def test_less_than_a_second_left_still_runs_the_milp(monkeypatch):
    """Any time left, however short, goes to the MILP (HiGHS honours sub-second limits): a 7-cycle
    with half a second is solved exactly, and the MILP is told the time that is left."""
    a, _ = _cycles(7)
    limits, real = [], ind.milp_independent
    monkeypatch.setattr(ind, "milp_independent", lambda g, t: limits.append(t) or real(g, t))
    sol = ind.solve(a, time_limit=0.5)
    assert sol.exact and sol.n_unsolved == 0 and sol.keep.sum() == 3
    assert len(limits) == 1 and 0 < limits[0] <= 0.5


def test_the_clique_lp_passes_its_time_limit_to_highs(monkeypatch):
    """HiGHS is given the time left of the limit (after the clique cover); with no time left the
    LP is not started, and an LP it does not finish gives None."""
    import scipy.optimize

    a, _ = _cycles(3, 5)
    seen, real = [], scipy.optimize.linprog
    monkeypatch.setattr(scipy.optimize, "linprog", lambda *p, **k: seen.append(k["options"]) or real(*p, **k))
    assert ind.clique_lp(a, time_limit=7) == pytest.approx(1 + 2.5)
    assert ind.clique_lp(a, time_limit=0) is None
    assert len(seen) == 1 and set(seen[0]) == {"time_limit"} and 6.5 < seen[0]["time_limit"] <= 7.0
    monkeypatch.setattr(scipy.optimize, "linprog", lambda *p, **k: SimpleNamespace(status=1, fun=0.0))
    assert ind.clique_lp(a, time_limit=7) is None


def test_conflicted_points_are_counted_once_each():
    """On a line: 0.0 (class 0), 0.1 (1), 0.2 (0), 0.9 (1). At eps 0.06 (pairs within 0.12) the
    conflicts are 0-1 and 1-2: two conflicts among three points; the point at 0.9 has none."""
    x = np.array([[0.0], [0.1], [0.2], [0.9]])
    res = robustness_bounds(x, np.array([0, 1, 0, 1]), norm="linf", eps=[0.06, 0.5], engine="reference")
    assert (res.points[0].n_conflicts, res.points[0].n_conflicted_points) == (2, 3)
    assert (res.points[1].n_conflicts, res.points[1].n_conflicted_points) == (4, 4)


def test_every_option_of_the_bounds_cli_says_what_it_does():
    parser = get_args_parser()
    assert parser.description and all(a.help for a in parser._actions), "an option without --help text"


# -- robustness_bounds on data ---------------------------------------------------------------------
def test_optimum_equals_brute_force_and_lp_equals_linprog_on_data(rng):
    for _ in range(25):
        x, y = tiny(rng, int(rng.integers(3, 11)))
        eps = [0, Fraction(1, 510), "1/255", 2 / 255, Fraction(7, 510), "0.0235"]  # ties at k = 1, 2, 7 and floats
        b = robustness_bounds(x, y, norm="linf", eps=eps, cliques=True)
        n = len(x)
        assert [exact(e) for e in eps] == sorted(exact(e) for e in eps)
        for e, p in zip(eps, b.points, strict=True):
            edges = graph_edges(x, y, e)
            assert p.n_conflicts == len(edges) and p.solved
            assert p.optimal_error == pytest.approx(1 - brute_alpha(n, edges) / n, abs=1e-12)
            assert p.lower_error == pytest.approx(1 - lp_value(n, edges) / n, abs=1e-9)
            assert p.lower_error - 1e-12 <= p.clique_lower_error <= p.optimal_error + 1e-12
            assert p.upper_error == p.optimal_error


def test_optimum_equals_an_exhaustive_search_of_classifiers_on_a_1d_grid(rng):
    """On the line, a classifier is robustly correct on x_i iff it is y_i on [x_i - eps, x_i + eps];
    with integer positions and eps, the integer grid decides it: try every labelling of the grid."""
    grid = 9
    for _ in range(12):
        n, k = int(rng.integers(2, 8)), int(rng.integers(2, 4))
        x = rng.integers(0, grid, size=(n, 1)).astype(np.uint8)
        y = rng.integers(0, k, n)
        y[:2] = [0, 1]
        for e in (0, 1, 2):
            labelings = np.array(list(itertools.product(range(k), repeat=grid)))  # (k**grid, grid)
            z = np.arange(grid)
            best = 0
            ok_all = np.ones((len(labelings), n), bool)
            for i in range(n):
                ball = np.abs(z - int(x[i, 0])) <= e
                ok_all[:, i] = (labelings[:, ball] == y[i]).all(axis=1)
            best = int(ok_all.sum(axis=1).max())
            b = robustness_bounds(x, y, norm="linf", eps=Fraction(e, 255))  # the ball of e grid steps
            assert round(n * (1 - b.points[0].optimal_error)) == best


def test_two_classes_give_lower_equal_optimal_equal_upper(rng):
    for _ in range(10):
        x, y = tiny(rng, 30, classes=2, top=40)
        b = robustness_bounds(x, y, norm="l2", eps=[5 / 255, 10 / 255, 20 / 255])
        assert np.allclose(b.lower_error, b.optimal_error) and np.array_equal(b.optimal_error, b.upper_error)
        assert all(p.n_milp_components == 0 for p in b.points)


@settings(max_examples=30, deadline=None)
@given(st.integers(4, 40), st.integers(1, 4), st.integers(2, 4), st.integers(0, 2**32 - 1),
       st.sampled_from(["linf", "l2", "l1"]))
def test_properties_order_monotonicity_zero_below_separation_and_certified_witness(n, d, k, seed, norm):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, size=(n, d)).astype(np.uint8)
    y = rng.integers(0, k, n)
    y[:2] = [0, 1]
    scale = {"linf": 1.0, "l2": d ** 0.5, "l1": float(d)}[norm]
    eps = sorted(set(rng.uniform(0, 0.6 * scale, 5).tolist()))
    b = robustness_bounds(x, y, norm=norm, eps=eps)
    for name in ("optimal_error", "lower_error", "upper_error"):
        assert np.all(np.diff(getattr(b, name)) >= -1e-12), name
    assert np.all(b.lower_error <= b.optimal_error + 1e-12) and np.all(b.optimal_error <= b.upper_error)
    for e, p, kept in zip(b.eps, b.points, b.kept):
        if b.separation is None or 2 * e < b.separation:
            assert p.n_conflicts == 0 and p.optimal_error == p.lower_error == p.upper_error == 0
        assert len(kept) == round(n * (1 - p.upper_error)) == p.n_kept
        mask = b.kept_mask(e)
        if np.unique(y[mask]).size < 2:
            continue
        clf, m = b.witness(e)
        assert np.array_equal(m, mask)
        pred, radius = clf.predict_with_radius(x[mask])
        assert np.array_equal(pred, y[mask]) and np.all(radius >= e)


def test_witness_after_a_timeout_is_still_certified(monkeypatch):
    x = np.array([[0], [1], [2], [60], [61], [200]], np.uint8)
    y = np.array([0, 1, 2, 0, 1, 2])
    monkeypatch.setattr(ind, "milp_independent", lambda g, t: (None, False))
    b = robustness_bounds(x, y, norm="linf", eps="1/255")  # 0, 1, 2: a triangle of conflicts (2 <= 2 x 1)
    p = b.points[0]
    assert not p.solved and np.isnan(p.optimal_error) and p.lower_error <= p.upper_error
    clf, mask = b.witness(Fraction(1, 255))
    pred, radius = clf.predict_with_radius(x[mask])
    assert np.array_equal(pred, y[mask]) and np.all(radius >= 1 / 255)


@pytest.mark.parametrize("kwargs, match", [
    (dict(eps=-0.1), "finite number >= 0"), (dict(eps=float("nan")), "finite number >= 0"),
    (dict(eps=[]), "empty"), (dict(eps=0.1, norm="l2", cliques=True), "linf"),
    (dict(eps=0.1, time_limit=0), "time_limit"), (dict(eps=0.1, y=np.zeros(6, int)), "two classes"),
    (dict(eps=0.1, y=np.arange(5) % 2), "same length"),
])
def test_bad_input_is_a_clear_error(kwargs, match):
    x = np.arange(6, dtype=np.uint8).reshape(6, 1)
    args = {"y": np.arange(6) % 2, **kwargs}
    with pytest.raises(ValueError, match=match):
        robustness_bounds(x, args.pop("y"), **args)


@pytest.mark.realdata
def test_mnist_subset(mnist):
    x, y = mnist.x_train[:1500], mnist.y_train[:1500]
    b = robustness_bounds(x, y, norm="linf", eps=[0.3, 0.45, 0.49, 0.4961], cliques=True)
    assert b.separation is not None and b.points[-1].n_conflicts > 0
    for e, p in zip(b.eps, b.points):
        assert (p.n_conflicts > 0) == (2 * e >= b.separation)
        assert (p.optimal_error > 0) == (p.n_conflicts > 0)
        assert p.lower_error <= p.clique_lower_error <= p.upper_error
    clf, mask = b.witness(0.4961)
    pred, radius = clf.predict_with_radius(x[mask])
    assert np.array_equal(pred, y[mask]) and radius.min() >= 0.4961 and mask.sum() == b.points[-1].n_kept


# -- the command line ------------------------------------------------------------------------------
def test_cli_writes_a_record_and_reuses_it(tmp_path, capsys):
    out = tmp_path / "bounds"
    args = ["--dataset", "digits", "--norm", "linf", "--eps", "0.2", "0.25", "0.3", "--cliques", "--out", str(out),
            "--no-progress"]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "LP bound" in text and "record:" in text
    rec = load_record(only_record(out), BoundsRecord)
    assert rec.config.split == "train" and rec.config.eps == ("0.2", "0.25", "0.3") and rec.config.cliques
    assert [p.eps_text for p in rec.result.points] == ["0.2", "0.25", "0.3"]
    assert rec.folder == out / "digits" / f"train-linf-{rec.key[:8]}"  # where reports look for it
    assert set(rec.timing) == {"conflicts", "solve", "total"} and rec.timing["total"] >= rec.timing["solve"]
    assert rec.result.n_points == 1347 and rec.result.threshold_eps == rec.result.separation / 2
    for k, p in enumerate(rec.result.points):
        assert len(rec.kept(k)) == p.n_kept and p.solved
    assert rec.result.points[0].optimal_error == 0 < rec.result.points[-1].optimal_error
    # a radius is found to within 1e-12 relative; -0.2 is not 0.2
    at = rec.result.at
    assert at(0.2) is rec.result.points[0] and at(0.3 * (1 + 1e-13)) is rec.result.points[2]
    assert at(0.3 * (1 + 1e-11)) is None and at(-0.2) is None and at(0.0) is None
    assert at(0.2 + 1.5e-12) is None  # 1e-12 absolute below 1
    tiny = dataclasses.replace(rec.result, points=[dataclasses.replace(rec.result.points[0], eps=1e-12)])
    assert tiny.at(0.0) is tiny.points[0]  # exactly 1e-12 apart: the same radius
    big = dataclasses.replace(rec.result, points=[dataclasses.replace(rec.result.points[0], eps=3.0)])
    assert big.at(3.0 + 2e-12) is big.points[0] and big.at(3.0 + 4e-12) is None  # 1e-12 relative above 1
    assert "lipschitz_construct.bounds" in rec.command() and "--eps 0.2 0.25 0.3" in rec.command()
    assert "--cliques" in rec.command().split()
    table = format_summary(rec).splitlines()
    assert table[4].split() == ["eps", "conflicts", "points", "components", "optimal", "LP", "bound", "cover", "LP",
                                "witness", "exact", "seconds"]
    for p, line in zip(rec.result.points, table[5:], strict=True):
        f = line.split()
        assert f[:4] == [p.eps_text, str(p.n_conflicts), str(p.n_conflicted_points), str(p.n_components)]
        assert f[4:8] == [f"{100 * (1 - e):.3f}%" for e in (p.optimal_error, p.lower_error, p.clique_lower_error,
                                                             p.upper_error)]
        assert f[8] == "yes"
    rec.result.points[0].clique_lower_error = None  # the clique LP ran out of time
    rec.result.points[0].seconds = {**rec.result.points[0].seconds, "total": 12.5}
    assert format_summary(rec).splitlines()[5].split()[6] == "open"
    assert format_summary(rec).splitlines()[5].split()[-1] == "12.50"  # the point's total seconds
    assert main(args) == 0 and "reused" in capsys.readouterr().out
    assert main(["--dataset", "digits", "--norm", "l2", "--split", "test", "--eps", "0.7", "--out", str(out),
                 "--subset", "300", "--seed", "4", "--time-limit", "45", "--no-progress"]) == 0
    test_rec = [load_record(f) for f in record_folders(out) if "test-l2" in f.name][0]
    assert test_rec.result.n_points == 300 and "clique" not in format_summary(test_rec)
    assert "--cliques" not in test_rec.command().split()
    import shlex

    again = get_args_parser().parse_args(shlex.split(test_rec.command())[3:])
    assert (again.split, again.subset, again.seed, again.time_limit, again.eps) == ("test", 300, 4, 45.0,
                                                                                    [Fraction(7, 10)])


def _npz(tmp_path, **arrays):
    path = tmp_path / "data.npz"
    np.savez(path, **arrays)
    return str(path)


def _exit_code(argv) -> int:
    try:
        return main(argv)
    except SystemExit as exc:  # argparse rejects bad values itself (exit 2)
        return int(exc.code)


@pytest.mark.parametrize("extra, labels, match", [
    (["--eps", "-1"], "given", "must be >= 0"),
    (["--eps", "nan"], "given", "finite"),
    (["--eps", "0.1", "--cliques", "--norm", "l2"], "given", "--cliques needs --norm linf"),
    (["--eps", "0.1", "--split", "test"], "given", "needs a test split"),
    (["--eps", "0.1"], "one class", "fewer than two classes"),
    (["--eps", "0.1"], "one label short", "labels"),
    (["--eps", "9"], "given", "exceeds"),
    (["--eps", "0.1", "--engine", "gpu"], "given", "invalid choice: 'gpu'"),
])
def test_cli_bad_input_exits_2_and_writes_nothing(tmp_path, capsys, extra, labels, match):
    x = (np.arange(40).reshape(10, 4) % 256).astype(np.uint8)
    y = {"given": np.arange(10) % 2, "one class": np.zeros(10, int), "one label short": np.arange(9) % 2}[labels]
    out = tmp_path / "out"
    argv = ["--dataset", "npz", "--npz", _npz(tmp_path, x_train=x, y_train=y), "--norm", "linf", "--out", str(out),
            "--no-progress", *extra]
    assert _exit_code(argv) == 2
    assert match in capsys.readouterr().err
    assert not out.exists() or record_folders(out) == []


@pytest.mark.realdata
def test_cli_on_an_mnist_subset(shared_data_root, tmp_path, capsys):
    out = tmp_path / "b"
    assert main(["--dataset", "mnist", "--data-root", str(shared_data_root), "--subset", "2000", "--norm", "l2",
                 "--eps", "1.5", "2.5", "--out", str(out), "--no-progress"]) == 0
    rec = load_record(only_record(out))
    assert rec.result.n_points == 2000 and rec.result.points[-1].n_conflicts > 0
    assert json.loads((only_record(out) / "record.json").read_text())["kind"] == "bounds"


# -- the report: Table 4 and the figure ------------------------------------------------------------
def test_table_and_figure_render_from_records_deterministically(tmp_path, monkeypatch):
    from analysis import report
    from separation import compute

    monkeypatch.chdir(tmp_path)
    results, out = tmp_path / "results", tmp_path / "reports"
    assert compute.main(["--dataset", "digits", "--norm", "linf", "--out", str(results / "separation"),
                         "--no-progress"]) == 0
    for norm, eps in (("linf", ["0.2", "0.21875", "0.3"]), ("l2", ["0.6", "0.8"])):
        assert main(["--dataset", "digits", "--norm", norm, "--eps", *eps, "--out", str(results / "bounds"),
                     "--no-progress"]) == 0
    assert report.main(["bounds", "--results", str(results), "--out", str(out)]) == 0
    md = (out / "tables" / "table4_robustness_bounds.md").read_text()
    assert "Table 4" in md and "digits (8×8)" in md and "Table 1's minimum ÷ 2 is the same number" in md
    assert "DIFFERS" not in md
    csv = (out / "tables" / "table4_robustness_bounds.csv").read_text()
    assert csv.count("\n") == 1 + 5 and "optimal_accuracy" in csv
    pictures = []
    for _ in range(2):
        assert report.main(["figures", "--results", str(results), "--out", str(out), "--no-images"]) == 0
        pictures.append([(out / "figures" / f"robustness_bounds.{ext}").read_bytes() for ext in ("png", "pdf")])
    assert pictures[0] == pictures[1]
    assert report.main(["readme", "--results", str(results), "--out", str(out)]) == 0
    readme = (out / "README.md").read_text()
    assert "## Table 4 – Robustness bounds" in readme and "figures/robustness_bounds.png" in readme


def test_makefile_runs_the_expected_bounds_grids():
    from analysis.rendering.collect import BOUNDS_RUNS

    makefile = " ".join((REPO / "Makefile").read_text().replace("\\\n", " ").split())
    from analysis.rendering.collect import BOUNDS_RANDOMIZED

    assert ("BOUNDS_ARGS = --split train --randomized" in makefile) == BOUNDS_RANDOMIZED
    for ds, norm, eps, cliques in BOUNDS_RUNS:
        line = f"--dataset {ds} --norm {norm}" + (" --cliques" if cliques else "")
        assert line in makefile and "--eps " + " ".join(eps) in makefile, (ds, norm)


def test_a_larger_radius_witness_replaces_a_worse_one_at_a_smaller_radius(monkeypatch):
    """A set kept at a larger eps is independent at every smaller eps: where the solver returned a
    smaller witness at a smaller eps (here forced: a time-limited solve), the larger one is kept,
    with its counts and upper bound."""
    import lipschitz_construct.robustness as rob

    solve_eps, calls = rob._solve_eps, []

    def worse_first(*args, **kwargs):
        point, kept = solve_eps(*args, **kwargs)
        calls.append(1)
        if len(calls) < 3:  # the two smaller radii get one and two points
            kept = kept[:len(calls)]
            point.n_kept, point.upper_error = len(kept), 1.0 - len(kept) / 12
        return point, kept

    monkeypatch.setattr(rob, "_solve_eps", worse_first)
    x = (np.arange(12, dtype=np.float64) / 12)[:, None]
    res = robustness_bounds(x, np.arange(12) % 2, norm="linf", eps=[0.03, 0.05, 0.09], engine="reference")
    last = res.kept[2]
    assert len(last) > 2
    for k in range(3):
        np.testing.assert_array_equal(res.kept[k], last)
        assert res.points[k].n_kept == len(last) and res.points[k].upper_error == 1.0 - len(last) / 12


def test_the_commands_of_records_parse_back_to_their_settings():
    """The command lines of records (what reports print and records replay) are generated from the
    commands' own parsers and give back every setting through them."""
    import shlex
    from pathlib import Path

    from analysis.rendering.commands import bounds_command
    from lipschitz_construct.verify_job import VerifyJob

    cmd = BoundsJob().command_line({"dataset": "mnist", "norm": "l2", "split": "test", "eps": [0.1, 0.25],
                                    "subset": 500, "seed": 3, "cliques": True, "time_limit": 30.0}, out="runs/b")
    a = BoundsJob().parser().parse_args(shlex.split(cmd)[3:])
    assert (a.dataset, a.norm, a.split, a.eps, a.subset, a.seed, a.cliques, a.time_limit, a.data_root, a.out) == \
        ("mnist", "l2", "test", [Fraction(1, 10), Fraction(1, 4)], 500, 3, True, 30.0, "DATA_ROOT", Path("runs/b"))
    a = BoundsJob().parser().parse_args(shlex.split(bounds_command("digits", "linf", [0.2]))[3:])
    assert (a.split, a.subset, a.cliques, a.time_limit, a.data_root) == ("train", None, False, 60.0, None)
    cmd = VerifyJob().command_line({"dataset": "fashion-mnist", "norm": "l1", "eps": [0.5, 1.0], "subset": 300,
                                    "seed": 2, "r": 0.75}, out="runs/v")
    a = VerifyJob().parser().parse_args(shlex.split(cmd)[3:])
    assert (a.dataset, a.norm, a.eps, a.subset, a.seed, a.r, a.data_root, a.out) == \
        ("fashion-mnist", "l1", [0.5, 1.0], 300, 2, 0.75, "DATA_ROOT", Path("runs/v"))


def test_timings_and_a_one_class_witness_are_reported_by_name():
    """``seconds`` names its parts; a witness that keeps one class only is refused, saying why."""
    x = np.array([[0.0], [0.1], [0.2], [0.9]])
    res = robustness_bounds(x, np.array([0, 1, 0, 1]), norm="linf", eps=[0.01, 1.0], engine="reference")
    assert set(res.seconds) == {"conflicts", "solve", "total"} and res.seconds["total"] >= res.seconds["conflicts"]
    with pytest.raises(ValueError, match=r"keeps points of one class only; the nearest-class classifier needs two "
                                         r"\(it would be the constant classifier\)\.$"):
        res.witness(1.0)


@pytest.mark.parametrize("engine", ["auto", "cpu", "cuda", "reference"])
def test_every_documented_engine_is_a_choice(engine):
    argv = ["--dataset", "digits", "--eps", "0.1", "--engine", engine]
    assert get_args_parser().parse_args(argv).engine == engine
    assert get_args_parser().parse_args(argv[:-2]).engine == "auto"
