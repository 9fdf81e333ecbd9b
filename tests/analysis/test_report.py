"""analysis.report: tables, figures and README rendered from the fixture records in
tests/fixtures/records (regenerate them with ``python tests/fixtures/records/_generate.py``)."""
from __future__ import annotations

import dataclasses
import json
import logging
import shutil
from pathlib import Path

import pandas as pd
import pytest

from analysis import report
from analysis.rendering import fig_bounds, fig_lipschitz, fig_pairs, readme_why
from analysis.rendering.collect import expected_missing, load_report_records
from analysis.rendering.fig_base import FigureSkipped
from analysis.rendering.fig_lipschitz import lipschitz_vs_adversarial
from analysis.rendering.format import finite, fmt_pp
from analysis.rendering.rows import construct_row, evaluate_row, training_row
from analysis.rendering.table_dropout import dropout_table
from analysis.rendering.table_methods import methods_table
from analysis.rendering.table_separation import separation_table
from analysis.rendering.writers import to_markdown, write_table
from lipschitz_construct.records import BoundsConfig, BoundsRecord, BoundsResult, EpsBounds
from separation.core.records import DataSpec, load_record, write_record
from separation.core.records.benchmark import BenchmarkConfig, BenchmarkRecord, BenchmarkResult, BenchmarkRow

from helpers.paths import FIXTURES, REPO
FIXTURES = FIXTURES / "records"
GRID = REPO / "configs" / "mnist_cpu.yaml"


@pytest.fixture(scope="module")
def records():
    return load_report_records(FIXTURES)


def by(table, *keys):
    """Rows of the display frame keyed by the given columns."""
    return {tuple(r[k] for k in keys) if len(keys) > 1 else r[keys[0]]: r
            for r in table.display.to_dict("records")}


# -- records -------------------------------------------------------------------------------------

def test_finds_every_fixture_record(records):
    assert [len(records.of(k)) for k in ("separation", "construct", "evaluate", "training")] == [4, 1, 1, 5]
    assert records.problems == []


def test_finite_numbers_and_signed_points():
    assert finite(3) == 3.0 and finite(None) is None and finite(float("nan")) is None
    assert finite(float("inf")) is None and finite("abc") is None and finite(True) is None
    assert fmt_pp(-0.002, signed=True) == "−0.2" and fmt_pp(0.004, signed=True) == "+0.4" and fmt_pp(None) == "—"


def test_unreadable_record_is_reported_not_raised(tmp_path):
    shutil.copytree(FIXTURES / "separation" / "mnist", tmp_path / "separation" / "mnist")
    bad = tmp_path / "separation" / "cifar10" / "linf"
    bad.mkdir(parents=True)
    (bad / "record.json").write_text("{not json")
    edited = tmp_path / "separation" / "mnist" / "l2" / "record.json"
    edited.write_text(edited.read_text().replace('"min": 2.5019', '"min": 2.4'))  # digest no longer matches
    rs = load_report_records(tmp_path)
    assert [r.config.norm for r in rs.separation] == ["linf"]
    assert len(rs.problems) == 2
    assert any("cifar10/linf" in p for p in rs.problems) and any("mnist/l2" in p and "digest" in p for p in rs.problems)


# -- Table 1 -------------------------------------------------------------------------------------

def test_separation_table_cells(records):
    t = separation_table(records.separation)
    assert list(zip(t.display["Dataset"], t.display["Norm"])) == [
        ("MNIST", "ℓ∞"), ("MNIST", "ℓ2"), ("Fashion-MNIST", "ℓ∞"), ("digits (8×8)", "ℓ∞")]
    rows = by(t, "Dataset", "Norm")
    mnist = rows[("MNIST", "ℓ∞")]
    assert (mnist["ε"], mnist["Train–train min"], mnist["Train–train ÷ 2ε"]) == ("0.1", "0.737", "3.69")
    assert (mnist["Test–train min"], mnist["Test–train ÷ 2ε"]) == ("0.812", "4.06")
    assert mnist["Points (train / test)"] == "200 / 100"
    assert mnist["Cross-class duplicates (train pairs / test points)"] == "0 / 0"
    assert mnist["Min. excl. duplicates (train–train / test–train)"] == "—"
    fm = rows[("Fashion-MNIST", "ℓ∞")]
    assert fm["Train–train min"] == "0.000" and fm["Train–train ÷ 2ε"] == "0.00"
    assert fm["Cross-class duplicates (train pairs / test points)"] == "2 / 1"
    assert fm["Min. excl. duplicates (train–train / test–train)"] == "0.412 / 0.500"
    assert rows[("digits (8×8)", "ℓ∞")]["Points (train / test)"] == "60 / 60 (subset)"
    # the CSV keeps full precision
    d = t.data.set_index(["dataset", "norm"])
    assert d.loc[("mnist", "linf"), "train_min"] == pytest.approx(0.7373)
    assert d.loc[("mnist", "linf"), "train_min_over_2eps"] == pytest.approx(3.6865)
    assert d.loc[("fashion-mnist", "linf"), "test_in_train"] == 1
    assert any("full dataset" in b and "MNIST ℓ∞" in b for b in t.budget)
    assert any("subset of 60 points" in b for b in t.budget)


def test_one_row_per_data_and_norm_the_full_dataset_first(tmp_path):
    """A --subset run is other data (another fingerprint): a row of its own, after the full dataset;
    a second record of the very same data and norm is not shown twice (the newest is)."""
    src = FIXTURES / "separation" / "mnist" / "linf"
    shutil.copytree(src, tmp_path / "separation" / "mnist" / "linf")
    full = load_record(src)
    data = dataclasses.replace(full.config.data, subset=50, fingerprint="f" * 64, n_train=50)
    train = dataclasses.replace(full.result.train, min=0.9)
    sub = dataclasses.replace(full, config=dataclasses.replace(full.config, data=data),
                              result=dataclasses.replace(full.result, train=train), key=None, digest=None)
    write_record(tmp_path / "separation" / "mnist" / "linf-subset50", sub, full.load_arrays())
    again = dataclasses.replace(full, config=dataclasses.replace(full.config, exclude_below=0.5), key=None, digest=None)
    write_record(tmp_path / "separation" / "mnist" / "linf-again", again, full.load_arrays())
    t = separation_table(load_report_records(tmp_path).separation)
    assert list(t.display["Train–train min"]) == ["0.737", "0.900"]
    assert list(t.display["Points (train / test)"])[1].endswith("(subset)")
    assert sum("linf-again" in n or "separation/mnist/linf`" in n for n in t.notes) >= 1


# -- Table 2 and 3 -------------------------------------------------------------------------------

def test_methods_table_cells(records):
    t = methods_table(records.training, records.construct, records.evaluate)
    assert list(t.display["Method"]) == ["Natural", "AT", "TRADES (β=6)", "Constructed (certified)",
                                         "Constructed (attacked)"]  # no dropout runs in Table 2
    rows = by(t, "Method")
    nat = rows["Natural"]
    assert [nat[c] for c in ("Train acc", "Test acc", "Adv test acc (PGD)", "Adv test acc (MT)", "Train Lip",
                             "Test Lip", "Gap clean", "Gap adv")] == \
        ["99.0", "97.5", "1.2", "—", "40.0", "45.0", "1.5", "−0.2"]
    assert nat["Setting"] == "mnist_tiny"
    trades = rows["TRADES (β=6)"]
    assert (trades["Adv test acc (PGD)"], trades["Adv test acc (MT)"], trades["Test Lip"]) == ("88.2", "87.1", "3.40")
    cert = rows["Constructed (certified)"]
    assert (cert["Train acc"], cert["Test acc"], cert["Certified test astuteness"]) == ("100.0", "96.2", "95.3 (ε=0.1)")
    assert cert["Lipschitz bound (measured max)"] == "1/r = 2.71 (2.69)"
    att = rows["Constructed (attacked)"]
    assert (att["Adv test acc (PGD)"], att["Test Lip"]) == ("95.0", "1.90")
    assert att["Lipschitz bound (measured max)"] == "10/r = 27.1 (2.20)"  # K = 10 classes
    assert att["Setting"] == "analysis.evaluate (500 pts)"
    d = t.data.set_index("run")
    assert d.loc["natural", "test_lipschitz_official"] == pytest.approx(22.5)
    budget = " ".join(t.budget)
    for piece in ("grid `mnist_tiny` (3 runs)", "profile cpu", "2 epoch(s)", "2,000 training points",
                  "500 train / 500 test", "x86_64, 2 CPUs", "30.0 min training"):
        assert piece in budget


def test_dropout_table_cells(records):
    t = dropout_table(records.training)
    assert list(zip(t.display["Method"], t.display["Dropout"])) == [
        ("Natural", "none"), ("Natural", "0.5"), ("TRADES (β=6)", "none"), ("TRADES (β=6)", "0.5")]
    rows = by(t, "Method", "Dropout")
    assert rows[("Natural", "0.5")]["Gap clean"] == "0.7"
    assert rows[("Natural", "0.5")]["Δ gap clean"] == "−0.8"
    assert rows[("Natural", "0.5")]["Δ gap adv"] == "+0.4"
    assert rows[("TRADES (β=6)", "0.5")]["Δ gap adv"] == "−1.6"
    assert rows[("Natural", "none")]["Δ gap clean"] == "—"
    assert any("at" in n and "without a partner" in n for n in t.notes)  # AT has no dropout run


def test_writers(tmp_path, records):
    t = methods_table(records.training, records.construct, records.evaluate)
    md, csv, tex = write_table(t, tmp_path)
    text = md.read_text()
    assert to_markdown(t.display) in text and "**Budget.**" in text
    back = pd.read_csv(csv)
    assert list(back["method_label"]) == list(t.data["method_label"])
    assert back["train_acc"].iloc[0] == pytest.approx(0.99)
    latex = tex.read_text()
    assert "\\toprule" in latex and "TRADES ($\\beta$=6)" in latex and "$-$0.2" in latex
    assert "\\caption{Accuracy" in latex
    # right-aligned numbers, left-aligned text
    header = to_markdown(t.display).splitlines()[1]
    assert header.startswith("| ---") and "--: |" in header


# -- figures -------------------------------------------------------------------------------------

def test_image_grid_without_data_is_skipped_with_a_message(tmp_path, records):
    rec = next(r for r in records.separation if r.config.data.dataset == "mnist")
    with pytest.raises(FigureSkipped, match="mnist images are not available"):
        fig_pairs.load_record_dataset(rec, tmp_path)


def test_image_grid_checks_the_fingerprint(tmp_path):
    src = FIXTURES / "separation" / "digits" / "linf-subset60"
    rec = load_record(src)
    other = dataclasses.replace(rec, config=dataclasses.replace(
        rec.config, data=dataclasses.replace(rec.config.data, fingerprint="0" * 64)), key=None, digest=None)
    write_record(tmp_path / "separation" / "digits" / "linf-subset60", other, rec.load_arrays())
    stored = load_report_records(tmp_path).separation[0]
    with pytest.raises(FigureSkipped, match="fingerprint differs"):
        fig_pairs.load_record_dataset(stored, None)


def test_closest_train_pairs_are_distinct():
    import numpy as np

    d = np.array([0.5, 0.5, 0.7, 0.9])
    nbr = np.array([1, 0, 3, 2])
    assert fig_pairs.closest_train_pairs(d, nbr, 3) == [(0, 1, 0.5), (2, 3, 0.7)]


# -- the command line ----------------------------------------------------------------------------

def test_cli_renders_everything_from_fixtures(tmp_path, caplog):
    out = tmp_path / "reports"
    argv = ["all", "--results", str(FIXTURES), "--out", str(out), "--grid", str(tmp_path / "none.yaml"),
            "--pairs", "3"]
    with caplog.at_level(logging.INFO):
        assert report.main(argv) == 0
    for stem in ("table1_separation", "table2_methods", "table3_dropout"):
        for ext in ("md", "csv", "tex"):
            assert (out / "tables" / f"{stem}.{ext}").stat().st_size > 0
    for stem in ("separation_hist_linf", "separation_hist_l2", "lipschitz_vs_adversarial",
                 "closest_pairs_digits_linf-subset60"):
        assert (out / "figures" / f"{stem}.png").read_bytes()[:4] == b"\x89PNG"
        assert (out / "figures" / f"{stem}.pdf").read_bytes()[:4] == b"%PDF"
    readme = (out / "README.md").read_text()
    assert "## Table 1 – Separation" in readme and "| MNIST" in readme and "**Budget.**" in readme
    assert "figures/separation_hist_linf.png" in readme
    # MNIST images are not in the fixtures: that grid is skipped, and the README says so
    assert "mnist images are not available" in readme
    assert "python -m separation.compute --dataset cifar10 --norm linf --data-root DATA_ROOT" in readme
    sources = json.loads((out / "sources.json").read_text())
    assert any(s["record"].endswith("training/mnist_tiny/natural") for s in sources["tables/table2_methods"])
    # rendering again gives byte-identical tables and README (the README keeps the list of
    # skipped figures although this time no figure is rendered)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    for cmd in ("separation", "methods", "dropout", "readme"):
        assert report.main([cmd] + argv[1:]) == 0
    after = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert [p for p in before if before[p] != after[p]] == []


def test_image_grid_of_an_unchanged_record_is_kept_without_data(tmp_path, monkeypatch):
    shutil.copytree(FIXTURES / "separation" / "digits", tmp_path / "results" / "separation" / "digits")
    out = tmp_path / "reports"
    argv = ["figures", "--results", str(tmp_path / "results"), "--out", str(out), "--grid",
            str(tmp_path / "none.yaml"), "--pairs", "2"]
    assert report.main(argv) == 0
    grid = out / "figures" / "closest_pairs_digits_linf-subset60.png"
    first = grid.read_bytes()

    def no_data(rec, data_root):
        raise FigureSkipped("no data here")

    monkeypatch.setattr(fig_pairs, "load_record_dataset", no_data)
    assert report.main(argv) == 0
    sources = json.loads((out / "sources.json").read_text())
    assert "figures/closest_pairs_digits_linf-subset60" in sources  # kept: same record, same config key
    assert "figures/separation_hist_linf" in sources
    assert not any("closest-pairs" in s for s in sources["_skipped"])
    assert grid.read_bytes() == first


def test_figures_are_byte_identical_across_renderings(tmp_path, records):
    rows = [training_row(r) for r in records.training] + [evaluate_row(r) for r in records.evaluate]
    first = [p.read_bytes() for p in lipschitz_vs_adversarial(rows, tmp_path / "a")]
    second = [p.read_bytes() for p in lipschitz_vs_adversarial(rows, tmp_path / "b")]
    assert first == second and first[0][:4] == b"\x89PNG" and first[1][:4] == b"%PDF"
    assert b"CreationDate" not in first[1]


def test_missing_record_gives_the_command(tmp_path, caplog):
    (tmp_path / "results").mkdir()
    argv = ["separation", "--results", str(tmp_path / "results"), "--out", str(tmp_path / "out"),
            "--data-root", "/data/here"]
    with caplog.at_level(logging.INFO):
        assert report.main(argv) == 1
    text = caplog.text
    assert "no separation records" in text
    assert "python -m separation.compute --dataset mnist --norm linf --data-root /data/here" in text
    assert "python -m separation.compute --dataset digits --norm l2" in text
    assert not (tmp_path / "out" / "tables" / "table1_separation.md").exists()


def test_missing_training_records_name_the_grid_command(tmp_path, caplog):
    if not GRID.is_file():
        pytest.skip(f"{GRID} not in this checkout")
    shutil.copytree(FIXTURES / "separation", tmp_path / "results" / "separation")
    argv = ["methods", "--results", str(tmp_path / "results"), "--out", str(tmp_path / "out"), "--grid", str(GRID)]
    with caplog.at_level(logging.INFO):
        assert report.main(argv) == 1
    assert "python -m lipschitz_construct.verify --dataset mnist --norm linf --eps 0.1" in caplog.text
    missing = expected_missing(load_report_records(tmp_path / "results"), grid_files=[GRID])
    grid = [m for m in missing if m.kind == "training"]
    assert grid and "python -m analysis.grid" in grid[0].command and "20 of 20 training runs" in grid[0].what


def test_status_and_absent_results_folder(tmp_path, capsys):
    assert report.main(["status", "--results", str(FIXTURES), "--grid", str(tmp_path / "x.yaml")]) == 1
    out = capsys.readouterr().out
    assert "training     5" in out and "python -m separation.compute --dataset fashion-mnist --norm l2" in out
    assert report.main(["all", "--results", str(tmp_path / "nope")]) == 2  # a bad argument
    assert "does not exist" in capsys.readouterr().err


def test_image_grid_shows_duplicates(tmp_path):
    """A record with a cross-class duplicate pair and a test image found in the training set."""
    import types

    import numpy as np

    from separation import Pair

    rng = np.random.default_rng(0)
    x_train = rng.integers(0, 256, (6, 1, 5, 5), dtype=np.uint8)
    x_train[1] = x_train[0]
    x_test = rng.integers(0, 256, (3, 1, 5, 5), dtype=np.uint8)
    x_test[2] = x_train[4]
    ds = types.SimpleNamespace(x_train=x_train, y_train=np.array([0, 1, 0, 1, 0, 1]), x_test=x_test,
                               y_test=np.array([0, 1, 1]), classes=["zero", "one"])
    arrays = {"train_distances": np.array([0.0, 0.0, 0.5, 0.6, 0.7, 0.8]),
              "train_neighbors": np.array([1, 0, 3, 2, 5, 4]), "test_distances": np.array([0.4, 0.3, 0.2]),
              "test_neighbors": np.array([1, 0, 4]), "test_train_duplicates": np.array([[2, 4]])}
    base = load_record(FIXTURES / "separation" / "mnist" / "linf")
    train = dataclasses.replace(base.result.train, cross_class_duplicates=[Pair(0, 1, 0, 1, 0.0)])
    test = dataclasses.replace(base.result.test, cross_class_duplicates=[])
    rec = dataclasses.replace(base, result=dataclasses.replace(base.result, train=train, test=test),
                              key=None, digest=None)
    rec = write_record(tmp_path / "toy" / "linf", rec, arrays)
    png, pdf = fig_pairs.closest_pairs_grid(rec, ds, tmp_path, k=2)
    assert png.name == "closest_pairs_mnist_linf.png" and png.stat().st_size > 0 and pdf.stat().st_size > 0


# -- figures a reader can read, and the case for the toolkit ---------------------------------------

def _capture(monkeypatch, module) -> list:
    """The figures ``module`` would save, kept instead of written."""
    figs: list = []
    monkeypatch.setattr(module, "save_figure", lambda fig, out, stem, **kw: figs.append(fig) or [])
    return figs


#: An MNIST l-inf bounds record's radii: (eps, optimal, LP, witness, clique) errors.
BOUNDS = [(0.3, 0.001, 0.001, 0.001, 0.001), (0.4, 0.02, 0.015, 0.02, 0.02), (0.45, 0.08, 0.06, 0.08, None)]


def _bounds_record(points=BOUNDS):
    pts = [EpsBounds(e, 1, 2, 1, 2, 0, 0, 0, opt, lp, cl, wit, True, 100) for e, opt, lp, wit, cl in points]
    return BoundsRecord(BoundsConfig(DataSpec("mnist", "f" * 64, (1, 28, 28), 1000, 100), "linf",
                                     eps=tuple(p.eps for p in pts)), BoundsResult(1000, 10, "cpu", 0.6, 0.3, pts))


def test_bounds_panel_zooms_on_the_curves_and_leaves_lines_on_the_exact_one_out_of_the_legend(monkeypatch, tmp_path):
    figs = _capture(monkeypatch, fig_bounds)
    model = {"source": "training", "dataset": "mnist", "norm": "linf", "eps": 0.1, "train_adv_acc": 0.5}
    fig_bounds.robustness_bounds_figure([_bounds_record()], [model], tmp_path)
    ax = figs[0].axes[0]
    legend = ax.get_legend()
    labels = [t.get_text() for t in legend.get_texts()]
    assert "optimal (exact)" in labels and "LP bound, any classifier" in labels  # below the optimum at 0.4
    assert "certified witness" not in labels and "clique-cover LP bound" not in labels  # equal to it everywhere
    assert "witness and clique-cover LP bound" in legend.get_title().get_text()
    assert "MNIST ℓ∞ train: witness and clique-cover LP bound" in fig_bounds.coinciding_note([_bounds_record()])
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    for e, *errors in BOUNDS:
        assert x0 <= e <= x1 and all(y0 <= 100 * (1 - err) <= y1 for err in errors if err is not None)
    assert 0.1 < x0 and 50 < y0 and y1 < 101 and x1 < 0.5  # zoomed; the model is not in the panel
    inset = ax.child_axes[0]  # but in an inset
    assert [tuple(p) for c in inset.collections for p in c.get_offsets()][0] == pytest.approx((0.1, 50.0))


def test_lipschitz_figure_labels_stay_inside_and_name_the_fit_sizes(monkeypatch, tmp_path, records):
    figs = _capture(monkeypatch, fig_lipschitz)
    rows = [training_row(r) for r in records.training] + [evaluate_row(r) for r in records.evaluate]
    far = dict(rows[0], method="cnn", method_label="a model evaluated outside any grid, with a long name",
               source="evaluate", test_lipschitz=max(r["test_lipschitz"] for r in rows))
    certified = [construct_row(r) for r in records.construct]
    fig_lipschitz.lipschitz_vs_adversarial(rows + [far], tmp_path, certified)
    renderer = figs[0].canvas.get_renderer()
    ax = figs[0].axes[0]
    frame = ax.get_window_extent(renderer)
    texts = {t.get_text(): t.get_window_extent(renderer) for t in ax.texts}
    assert [s for s, b in texts.items() if b.x0 < frame.x0 - 1 or b.x1 > frame.x1 + 1] == []
    n_fit, n_train = records.evaluate[0].config.model.config["n_fit"], records.construct[0].result.n_train
    assert f"constructed, fitted on {n_fit:,} points" in texts
    assert f"constructed, certified (verify), fitted on {n_train:,} points" in texts
    note = fig_lipschitz.constructed_note(rows, certified)
    assert f"fitted on {n_fit:,} training points" in note and f"fitted on {n_train:,} training points" in note


def _benchmark(root: Path, paper: float, ours: float) -> None:
    sec = "Same data, every method (ℓ∞, train–train + test–train)"
    rows = [BenchmarkRow(sec, "MNIST 100+20", "sklearn (paper)", paper, True),
            BenchmarkRow(sec, "MNIST 100+20", "ours: cpu", ours, True)]
    write_record(root / "benchmarks" / "separation_engines",
                 BenchmarkRecord(BenchmarkConfig("separation_engines", "benchmarks/separation_engines.py"),
                                 BenchmarkResult("2-core x86_64 CPU", rows, ["sklearn (paper)"],
                                                 {sec: "sklearn (paper)"})))


def test_readme_case_for_the_toolkit_is_rendered_from_the_benchmark_record(tmp_path):
    results, out = tmp_path / "results", tmp_path / "out"
    shutil.copytree(FIXTURES, results)
    argv = ["readme", "--results", str(results), "--out", str(out), "--grid", str(tmp_path / "none.yaml")]
    assert report.main(argv) == 0  # no benchmark record: the command that stores one, not a crash
    text = (out / "README.md").read_text()
    assert "## Why exact, why this toolkit" in text and readme_why.BENCHMARK_COMMAND in text
    assert f"(reports/README.md#{readme_why.ANCHOR})" in (REPO / "README.md").read_text()
    assert "Fashion-MNIST 2 / 1" in text  # the duplicates of the fixture records
    for paper, ours, shown in ((10.0, 2.0, "5.0×"), (10.0, 4.0, "2.5×")):
        _benchmark(results, paper, ours)
        assert report.main(argv) == 0
        row = next(ln for ln in (out / "README.md").read_text().splitlines() if ln.startswith("| MNIST 100+20"))
        assert shown in row and "| yes" in row


def test_readme_case_shows_only_the_linf_rows_of_a_benchmark_of_every_norm(tmp_path):
    """The headline compares the paper's route (p = inf): of a benchmark that times every norm
    (the roofline page's sections, the toolkit as the reference) only the l-inf workload is shown,
    with the paper's route's agreement with the toolkit."""
    results, out = tmp_path / "results", tmp_path / "out"
    shutil.copytree(FIXTURES, results)
    rows = []
    for norm, paper_agrees in (("linf", True), ("l2", False), ("l1", True)):
        sec = f"Same data, every tool ({norm}, train–train + test–train)"
        rows += [BenchmarkRow(sec, f"MNIST 100+20 {norm}", "ours: cpu", 1.0, True),
                 BenchmarkRow(sec, f"MNIST 100+20 {norm}", "sklearn (paper)", 8.0, paper_agrees)]
    sections = dict.fromkeys(r.section for r in rows)
    write_record(results / "benchmarks" / "roofline",
                 BenchmarkRecord(BenchmarkConfig("roofline", "benchmarks/roofline.py"),
                                 BenchmarkResult("2-core x86_64 CPU", rows, ["sklearn (paper)"],
                                                 {sec: "ours: cpu" for sec in sections})))
    argv = ["readme", "--results", str(results), "--out", str(out), "--grid", str(tmp_path / "none.yaml")]
    assert report.main(argv) == 0
    shown = [ln for ln in (out / "README.md").read_text().splitlines() if ln.startswith("| MNIST 100+20")]
    assert len(shown) == 1 and shown[0].startswith("| MNIST 100+20 linf") and "8.0×" in shown[0] and "| yes" in shown[0]


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_evaluate_constructed_runs_the_command_the_report_asks_for():
    """``make evaluate-constructed`` writes below ``$(RESULTS)/evaluate`` as the command that the
    report lists for a missing attacked constructed classifier does (one record root, the record's
    own folder below it), never a folder nested inside a record folder."""
    import shlex
    import subprocess

    from analysis.rendering.collect import CONSTRUCT_RUNS, CONSTRUCTED_EVAL_SUBSET
    from analysis.rendering.commands import evaluate_constructed_command

    made = subprocess.run(["make", "-s", "-n", "evaluate-constructed", "PYTHON=python", "RESULTS=R", "DATA_ROOT=D"],
                          cwd=REPO, capture_output=True, text=True, check=True).stdout
    [(ds, norm, eps)] = CONSTRUCT_RUNS
    asked = evaluate_constructed_command(ds, norm, eps, subset=CONSTRUCTED_EVAL_SUBSET, data_root="D", out="R/evaluate")

    def options(cmd: str) -> dict[str, str]:
        words = shlex.split(cmd.replace("\\\n", " "))
        return {w: (words[i + 1] if i + 1 < len(words) and not words[i + 1].startswith("--") else "")
                for i, w in enumerate(words) if w.startswith("--") and w != "--no-progress"}

    assert options(made) == options(asked) and options(made)["--out"] == "R/evaluate"
