"""robustness_bounds within its limits, measured on real runs: the time limit holds per radius
(within 10% + 5 s) on instances that need far longer, and is flagged; the memory stays within
``BYTES_PER_CONFLICT`` bytes per conflict end to end on a run with over a million conflicts; a
search that would outgrow the memory stops early with the estimate and the remedy."""
from __future__ import annotations

import time
import tracemalloc
from fractions import Fraction

import numpy as np
import pytest

import lipschitz_construct.robustness as rob
from lipschitz_construct import BoundsRecord, robustness_bounds
from lipschitz_construct import _independent as ind
from lipschitz_construct.bounds import main
from separation.core.errors import LimitError
from separation.core.records import load_record

from helpers.records import only_record


def slack(limit: float) -> float:
    """The most seconds a radius may take under ``limit``: 10% + 5 s."""
    return 1.1 * limit + 5.0


def hard_points():
    """3000 random points of 32 bytes in 50 classes: at eps 174/510 (~144,000 conflicts) one
    non-bipartite component that no MILP solves in seconds; at 222/510 (~2.5 million) one far above
    MILP_MAX_EDGES (the greedy witness only). Before the limit held, these took 12 s and 16 s at
    ``time_limit=1`` (HiGHS' presolve; a greedy in Python)."""
    rng = np.random.default_rng(7)
    eps = [Fraction(174, 510), Fraction(222, 510)]  # exact: the ties of byte distances 174 and 222
    return rng.integers(0, 256, size=(3000, 32)).astype(np.uint8), np.arange(3000) % 50, eps


def test_the_time_limit_holds_on_a_dense_graph_highs_cannot_solve_in_time():
    """A random graph of 2000 vertices and 150,000 edges (every vertex at 1/2, one component):
    the MILP stops at the limit (HiGHS' presolve alone overran 1 s by 14 s) and nothing is claimed."""
    rng = np.random.default_rng(0)
    u, v = np.triu_indices(2000, 1)
    pick = rng.random(len(u)) < 0.075
    a = ind.adjacency(2000, u[pick], v[pick])
    ind.compile_kernels()
    t = time.perf_counter()
    sol = ind.solve(a, time_limit=1.0)
    wall = time.perf_counter() - t
    assert wall <= slack(1.0), wall
    assert not sol.exact and sol.n_milp == 1 and sol.n_unsolved == 1 and sol.n_half == 2000
    assert ind.is_independent(a, sol.keep) and sol.keep.sum() > 0


def test_many_hard_components_share_the_time_left(monkeypatch):
    """20 components G(150, 1/2), none solvable in 0.1 s: each MILP is given the time left divided
    by the components left (the first 1/20 of the limit, none all of it), nearly all are tried (HiGHS
    overruns each short limit by milliseconds, so the last may find no time left), and the whole
    solve keeps the limit."""
    rng = np.random.default_rng(2)
    u, v = np.triu_indices(150, 1)
    pick = [rng.random(len(u)) < 0.5 for _ in range(20)]
    a = ind.adjacency(3000, np.concatenate([u[p] + 150 * k for k, p in enumerate(pick)]),
                      np.concatenate([v[p] + 150 * k for k, p in enumerate(pick)]))
    limits, real = [], ind.milp_independent
    monkeypatch.setattr(ind, "milp_independent", lambda g, t: limits.append(t) or real(g, t))
    ind.compile_kernels()
    t = time.perf_counter()
    sol = ind.solve(a, time_limit=2.0)
    wall = time.perf_counter() - t
    assert wall <= slack(2.0) and sol.n_milp == 20 and not sol.exact and ind.is_independent(a, sol.keep)
    assert 15 <= len(limits) <= 20 and limits[0] <= 2.0 / 20 and max(limits) < 1.0
    assert sol.n_unsolved == 20


def test_the_time_limit_holds_per_radius_and_an_unproven_optimum_is_flagged():
    x, y, eps = hard_points()
    t = time.perf_counter()
    b = robustness_bounds(x, y, norm="linf", eps=eps, time_limit=1.0, progress=False)
    wall = time.perf_counter() - t
    small, big = b.points
    assert 100_000 < small.n_conflicts <= ind.MILP_MAX_EDGES < 2_000_000 < big.n_conflicts
    for p in b.points:
        assert p.seconds["total"] <= slack(1.0), p.seconds
        assert not p.solved and np.isnan(p.optimal_error) and p.n_unsolved_components == 1
        assert p.lower_error <= p.upper_error < 1
    assert b.seconds["solve"] <= 2 * slack(1.0) and wall <= b.seconds["conflicts"] + 2 * slack(1.0)
    clf, mask = b.witness(eps[0])  # what was found in time is still a certified witness
    pred, radius = clf.predict_with_radius(x[mask])
    assert np.array_equal(pred, y[mask]) and radius.min() >= eps[0]


def test_the_command_keeps_its_time_limit_and_says_exact_no(tmp_path, capsys):
    x, y, eps = hard_points()
    data = tmp_path / "hard.npz"
    np.savez(data, x_train=x, y_train=y)
    out = tmp_path / "b"
    argv = ["--dataset", "npz", "--npz", str(data), "--norm", "linf", "--eps", *map(str, eps), "--time-limit", "2",
            "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    rec = load_record(only_record(out), BoundsRecord)
    assert rec.config.time_limit == 2.0 and rec.timing["solve"] <= 2 * slack(2.0)
    for p in rec.result.points:
        assert p.seconds["total"] <= slack(2.0) and not p.solved and np.isnan(p.optimal_error)
    lines = capsys.readouterr().out.splitlines()
    rows = [r.split() for r in lines[lines.index(next(r for r in lines if r.split()[:1] == ["eps"])) + 1:][:2]]
    assert [(r[4], r[7]) for r in rows] == [("open", "no"), ("open", "no")]  # optimal, exact


def test_the_clique_stage_gets_its_share_and_stops_in_time():
    """With cliques the MILP gets 1 - CLIQUE_SHARE of the limit and the cover and LP the rest: both
    stop in time."""
    x, y, eps = hard_points()
    b = robustness_bounds(x, y, norm="linf", eps=eps[:1], cliques=True, time_limit=2.0, progress=False)
    p = b.points[0]
    assert p.seconds["total"] <= slack(2.0) and p.seconds["milp"] <= slack(2.0 * (1 - rob.CLIQUE_SHARE)) and not p.solved
    assert p.clique_lower_error is None or p.lower_error <= p.clique_lower_error <= p.upper_error


def conflicts_peak(x, y, eps, **kw):
    """``(bytes per conflict at the largest eps, result)``: the peak numpy memory of the call
    beyond what was allocated before it (tracemalloc), per conflict."""
    robustness_bounds(x[:50], y[:50], norm="linf", eps=eps, progress=False)  # compiled, imported
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        b = robustness_bounds(x, y, norm="linf", eps=eps, progress=False, **kw)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return (peak - before) / b.points[-1].n_conflicts, b


def test_memory_per_conflict_end_to_end_on_a_million_conflicts():
    x, y, eps = hard_points()
    per_conflict, b = conflicts_peak(x, y, [0.3, 0.4], time_limit=5.0)
    assert b.points[-1].n_conflicts > 1_000_000
    assert per_conflict <= rob.BYTES_PER_CONFLICT, per_conflict


@pytest.mark.realdata
def test_memory_per_conflict_on_mnist(mnist):
    """5000 MNIST training points at eps 0.4981 (radius 254/255): about two million conflicts."""
    x, y = mnist.x_train[:5000], mnist.y_train[:5000]
    per_conflict, b = conflicts_peak(x, y, [0.4961, 0.4981], time_limit=10.0)
    assert b.points[-1].n_conflicts > 1_000_000
    assert per_conflict <= rob.BYTES_PER_CONFLICT, per_conflict


def test_conflicts_beyond_the_memory_stop_the_search_with_the_estimate_and_the_remedy(monkeypatch, tmp_path, capsys):
    """With room for 1000 conflicts only, a search that finds more stops there: the error says how
    much memory, how much there is and what to do; the caller's own max_pairs keeps its message.
    The command says it in one line and exits 2, writing nothing."""
    x, y, eps = hard_points()
    have = rob.BYTES_PER_CONFLICT * 1000 + rob.BYTES_PER_POINT * 400
    monkeypatch.setattr(rob, "available_bytes", lambda: have)
    with pytest.raises(LimitError, match=r"need about 0\.0 GiB for more than 1,000 conflicts \(pairs within "
                                         r"2 max\(eps\) = 0\.68\d*\), and 0\.0 GiB are available; pass smaller "
                                         r"eps or --subset"):
        robustness_bounds(x[:400], y[:400], norm="linf", eps=0.34)
    with pytest.raises(LimitError, match="more than 10 cross-class pairs"):
        robustness_bounds(x[:400], y[:400], norm="linf", eps=0.34, max_pairs=10)
    data = tmp_path / "d.npz"
    np.savez(data, x_train=x[:400], y_train=y[:400])
    out = tmp_path / "out"
    assert main(["--dataset", "npz", "--npz", str(data), "--norm", "linf", "--eps", "0.34", "--out", str(out),
                 "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "for more than 1,000 conflicts" in err[0] and "--subset" in err[0]
    assert not any(out.rglob("record.json"))


def test_conflicts_found_are_checked_against_the_memory_before_the_graphs_are_built(monkeypatch):
    """The search fits, but what is left does not hold the graphs: the real check_fits refuses it
    before they are built (the estimate, what is available, the remedy)."""
    import separation.core.memory as memory

    x, y, _ = hard_points()
    monkeypatch.setattr(memory, "available_bytes", lambda: 30 * 4000)
    monkeypatch.setattr(rob, "from_pairs", lambda *a, **k: pytest.fail("a graph was built"))
    with pytest.raises(LimitError, match=r"^the robustness bounds of [\d,]+ conflicts needs about 0\.0 GiB of memory "
                                         r"beyond its input, and 0\.0 GiB are available; pass smaller eps or "
                                         r"--subset \(fewer points\)$"):
        robustness_bounds(x[:400], y[:400], norm="linf", eps=0.34)
