"""Achieved vs achievable: ``analysis.evaluate`` at several eps (a robust-accuracy curve of the
test points), beside the data's optimum on the same points (``--bounds`` / ``--bounds-from``), the
avoidable errors, and Table 5 / the figure rendered from such a record."""
from __future__ import annotations

import dataclasses
import shlex
import shutil
import subprocess

import numpy as np
import pytest

from analysis import report
from analysis.evaluate import main
from analysis.model_metrics import EvalConfig, evaluate_model as evaluate
from analysis.records import EvaluationRecord, curve_name
from helpers.paths import REPO
from helpers.records import only_record, record_folders
from lipschitz_construct import robustness_bounds
from lipschitz_construct.bounds import main as bounds_main
from separation.core.records import find_records, load_record
from helpers.digits_model import trained_digits_cnn

pytestmark = pytest.mark.usefixtures("one_torch_thread")

ATTACKS = ("pgd", {"name": "multitargeted", "steps": 2})
#: digits' test points drop below 100% optimal robust accuracy between 0.3 and 0.45 (subset 100)
EPS = (0.3, 0.4, 0.45)
FAST = ["--attacks", "pgd", "--pgd-steps", "2", "--lipschitz", "none", "--no-progress", "--threads", "1"]


@pytest.fixture(scope="module")
def digits():
    from separation import load_dataset

    return load_dataset("digits")


@pytest.fixture(scope="module")
def cnn(digits):
    """cnn001 (8x8 input) trained for a few steps on digits: robust on some points, not all."""
    return trained_digits_cnn(digits.x_train, digits.y_train, steps=30)


def _config(eps, **kw):
    return EvalConfig(eps=eps, subset=60, attacks=ATTACKS, lipschitz=("ascent",), lipschitz_steps=2, batch_size=16,
                      **kw)


def test_the_curve_equals_single_eps_evaluations_run_separately(tmp_path, cnn, digits):
    radii = (0.05, 0.1, 0.2)
    ev = evaluate(cnn, digits, _config(radii), out=tmp_path / "curve")
    res, arrays = ev.result, ev.arrays
    assert [p.eps for p in res.curve] == list(radii) and res.achievable is None
    assert res.eps == 0.1 and ev.record.config.curve_eps == radii  # the paper's eps is the headline one
    assert "_linf_eps0.05-0.2_subset60-" in ev.folder.name
    for k, e in enumerate(radii):
        single = evaluate(cnn, digits, _config(e), out=tmp_path / f"single{k}")
        assert single.record.config.curve_eps is None and not single.result.curve
        s = single.result.test
        p = res.curve[k]
        assert p.adv_acc == s.adv_acc and p.adv_acc_per_attack == s.adv_acc_per_attack
        assert p.n_robust == int(single.arrays["test_adv_correct"].sum())
        np.testing.assert_array_equal(arrays[curve_name("test_adv_correct", k)], single.arrays["test_adv_correct"])
        for a in ("pgd", "multitargeted"):
            np.testing.assert_array_equal(arrays[curve_name(f"test_adv_correct_{a}", k)],
                                          single.arrays[f"test_adv_correct_{a}"])
        if e == res.eps:  # the headline numbers are the single evaluation's, both splits
            assert res.train == single.result.train and res.test == single.result.test
    frame = ev.to_frame()
    assert "adv_correct_e02" in frame.columns and len(frame) == 120


def test_avoidable_errors_equal_an_independent_count(tmp_path, cnn, digits):
    ev = evaluate(cnn, digits, _config(EPS, bounds=True), out=tmp_path)
    res, arrays = ev.result, ev.arrays
    assert res.achievable.source == "computed" and res.achievable.n_points == 60
    sub = digits.subset(60, seed=0)
    b = robustness_bounds(sub.x_test, sub.y_test, norm="linf", eps=list(EPS))
    assert res.achievable.threshold_eps == b.threshold_eps
    dropped = False
    for k, e in enumerate(EPS):
        single = evaluate(cnn, digits, _config(e))  # the model's robust points at e, run on their own
        robust = single.arrays["test_adv_correct"]
        kept = b.kept_mask(e)
        p = res.curve[k]
        assert p.avoidable_errors == int((kept & ~robust).sum())
        assert p.beyond_witness == int((robust & ~kept).sum())
        np.testing.assert_array_equal(arrays[curve_name("test_kept", k)], kept)
        np.testing.assert_array_equal(arrays[curve_name("test_avoidable", k)], kept & ~robust)
        assert p.n_kept == kept.sum() and p.witness_acc == pytest.approx(1 - b.upper_error[k])
        assert p.optimal_acc == pytest.approx(1 - b.optimal_error[k]) and p.lp_bound_acc == pytest.approx(1 - b.lower_error[k])
        assert p.n_robust - p.beyond_witness == p.n_kept - p.avoidable_errors  # both count robust & kept
        assert p.avoidable_errors >= p.n_kept - p.n_robust
        dropped |= p.optimal_acc < 1
    assert dropped  # the radii reach where the optimum is below 100%
    rec = load_record(only_record(tmp_path), EvaluationRecord)
    assert rec.result == res and rec.config.achievable.source == "computed"


def _bounds_record(root, *args):
    """The folder of the bounds record ``args`` make below ``root``."""
    before = set(record_folders(root))
    assert bounds_main(["--dataset", "digits", "--norm", "linf", "--no-progress", "--out", str(root), *args]) == 0
    [folder] = set(record_folders(root)) - before
    return folder


def test_a_stored_bounds_record_of_the_same_points_gives_the_computed_numbers(tmp_path, capsys):
    """From the command line: --bounds-from a matching record, and the bounds/ folder beside --out
    searched by default, give what --bounds computes; a record of other points there is ignored."""
    argv = ["--model", "constructed", "--dataset", "digits", "--subset", "60", "--eps", *map(str, EPS), *FAST]
    assert main(argv + ["--bounds", "--out", str(tmp_path / "computed")]) == 0
    computed = load_record(only_record(tmp_path / "computed"), EvaluationRecord)
    _bounds_record(tmp_path / "bounds", "--split", "test", "--subset", "50", "--eps", *map(str, EPS))
    assert main(argv + ["--out", str(tmp_path / "evaluate")]) == 0  # default root: no record of these points
    assert load_record(only_record(tmp_path / "evaluate"), EvaluationRecord).result.achievable is None
    folder = _bounds_record(tmp_path / "bounds", "--split", "test", "--subset", "60", "--eps", *map(str, EPS), "0.5",
                            "--randomized")
    for extra, out in ((["--bounds-from", str(folder)], "explicit"), ([], "evaluate")):
        capsys.readouterr()
        assert main(argv + extra + ["--out", str(tmp_path / out)]) == 0
        assert "avoidable" in capsys.readouterr().out
        rec = next(r for r in find_records(tmp_path / out).of(EvaluationRecord) if r.result.achievable)
        assert rec.result.achievable.source == "record" and rec.config.achievable.record_key == load_record(folder).key
        for p, q in zip(rec.result.curve, computed.result.curve):
            assert dataclasses.astuple(p) == dataclasses.astuple(q)
        np.testing.assert_array_equal(rec.load_arrays()["test_kept_e02"], computed.load_arrays()["test_kept_e02"])
        assert "--bounds-from BOUNDS_RECORD" in rec.command()


@pytest.mark.parametrize("bounds, eval_args, msg", [
    (["--split", "test", "--subset", "50"], [], "it bounds 50 points, this evaluation has 60 test points"),
    (["--split", "test", "--subset", "60", "--seed", "1"], [], "not the points this evaluation attacks"),
    (["--split", "train", "--subset", "60"], [], "it bounds the train split"),
    (["--split", "test", "--subset", "60", "--norm", "l2"], [], "its norm is l2, not linf"),
    (["--split", "test", "--subset", "60"], ["--eps", "0.3", "0.35"], "it has no radius 0.35"),
])
def test_a_bounds_record_of_other_points_is_refused_with_a_clear_error(tmp_path, capsys, bounds, eval_args, msg):
    bounds = bounds + ([] if "--norm" in bounds else ["--norm", "linf"])
    assert bounds_main(["--dataset", "digits", "--no-progress", "--out", str(tmp_path / "b"), "--eps", "0.3", "0.4",
                        *bounds]) == 0
    folder = only_record(tmp_path / "b")
    argv = ["--model", "constructed", "--dataset", "digits", "--subset", "60", "--eps", "0.3", "0.4", *FAST,
            *eval_args, "--out", str(tmp_path / "o")]
    for where in (folder, tmp_path / "b"):  # the record itself, or a root holding only it
        capsys.readouterr()
        assert main(argv + ["--bounds-from", str(where)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1 and msg in err, err
        said = "is not of the evaluated points" if where == folder else "no bounds record of the evaluated points"
        assert said in err and not (tmp_path / "o").exists()


@pytest.mark.parametrize("extra, msg", [
    (["--bounds", "--bounds-from", "x"], "pass one"),
    (["--bounds", "--attacks", "none"], "at least one attack"),
    (["--bounds-from", "{tmp}/nowhere"], "no such folder"),
    (["--bounds-from", "{tmp}"], "no bounds record of the evaluated points"),
])
def test_bad_bounds_options_exit_2(tmp_path, capsys, extra, msg):
    extra = [e.replace("{tmp}", str(tmp_path)) for e in extra]
    argv = ["--model", "constructed", "--dataset", "digits", "--subset", "20", "--eps", "0.1", "0.2",
            "--lipschitz", "none", "--no-progress", "--out", str(tmp_path / "o"), *extra]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and msg in err and not (tmp_path / "o").exists()


def test_single_eps_records_keep_their_key_and_load():
    """Curves added fields to the evaluate record: the shipped single-eps records still load, have
    no curve, and keep the key they were written with (so `make records` still reuses them)."""
    recs = find_records(REPO / "results" / "evaluate").of(EvaluationRecord)
    singles = [r for r in recs if r.config.curve_eps is None]
    assert len(singles) >= 3 and all(not r.result.curve and r.result.achievable is None for r in singles)
    constructed = next(r for r in singles if r.constructed)
    assert constructed.key == EvaluationRecord.key_for(constructed.config)


def test_table_and_figure_render_from_the_record(tmp_path, cnn, digits):
    results = tmp_path / "results"
    ev = evaluate(cnn, digits, _config(EPS, bounds=True), out=results / "evaluate")
    out = tmp_path / "reports"
    assert report.main(["achieved", "--results", str(results), "--out", str(out)]) == 0
    md = (out / "tables" / "table5_achieved_vs_achievable.md").read_text()
    csv = (out / "tables" / "table5_achieved_vs_achievable.csv").read_text().splitlines()
    assert len(csv) == 1 + len(EPS) and "avoidable_errors" in csv[0]
    for p in ev.result.curve:
        assert f" {p.avoidable_errors} ({100 * p.avoidable_errors / 60:.1f}%) |" in md
        assert f" {100 * p.adv_acc:.1f} |" in md
    pictures = []
    for _ in range(2):  # rendered twice: the same bytes
        assert report.main(["figures", "--results", str(results), "--out", str(out), "--no-images"]) == 0
        pictures.append([(out / "figures" / f"achieved_vs_achievable.{e}").read_bytes() for e in ("png", "pdf")])
    assert pictures[0] == pictures[1] and pictures[0][0][:4] == b"\x89PNG"
    assert report.main(["readme", "--results", str(results), "--out", str(out)]) == 0
    readme = (out / "README.md").read_text()
    assert "## Table 5 – Achieved vs achievable" in readme and "figures/achieved_vs_achievable.png" in readme
    # rendered from the record alone: the model and the data are not needed
    shutil.copytree(results, tmp_path / "copy")
    assert report.main(["achieved", "--results", str(tmp_path / "copy"), "--out", str(tmp_path / "r2")]) == 0
    again = (tmp_path / "r2" / "tables" / "table5_achieved_vs_achievable.md").read_text()
    assert again.replace(str(tmp_path / "copy"), str(results)) == md


def test_no_curve_record_means_no_table_5(tmp_path):
    (tmp_path / "results").mkdir()
    assert report.main(["achieved", "--results", str(tmp_path / "results"), "--out", str(tmp_path / "r")]) == 1


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_evaluate_achieved_runs_the_command_the_readme_lists():
    from analysis.rendering.collect import ACHIEVED_RUNS
    from analysis.rendering.commands import achieved_command

    made = subprocess.run(["make", "-s", "-n", "evaluate-achieved", "PYTHON=python", "RESULTS=R", "DATA_ROOT=D"],
                          cwd=REPO, capture_output=True, text=True, check=True).stdout
    [(ck, name, ds, norm, eps, n)] = ACHIEVED_RUNS
    listed = achieved_command(ck, name, ds, norm, eps, subset=n, data_root="D", out="R/evaluate")
    made_words = [w for w in shlex.split(made.replace("\\\n", " ")) if w != "--no-progress"]
    assert sorted(made_words) == sorted(shlex.split(listed))
