"""``python -m separation.compute``: records, reuse, exit codes, no half-written records."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from helpers.records import only_record, record_folders
from separation import SeparationRecord
from separation.compute import main
from separation.result import load_result
from separation.core.records import RECORD_FILE, load_record


def test_cli_digits_writes_and_reuses_a_record(tmp_path, capsys):
    out = tmp_path / "res"
    argv = ["--dataset", "digits", "--norm", "linf", "--subset", "300", "--out", str(out), "--no-progress",
            "--eps", "0.1", "0.2"]
    assert main(argv) == 0
    folder = only_record(out)
    assert folder.parent == out / "digits" and folder.name.startswith("linf-subset300-")
    rec = load_record(folder, SeparationRecord)
    assert rec.config.data.n_train == 300 and rec.config.eps == (0.1, 0.2)
    assert rec.meta.toolkit_version and rec.meta.versions["numpy"] and rec.meta.hardware.cpus
    assert rec.timing["train_train"] >= 0 and rec.arrays.sha256
    res = load_result(folder)
    assert res.train_distances.min() == rec.result.train.min
    printed = capsys.readouterr().out
    assert "separation/2eps" in printed and f"record: {folder}" in printed
    mtime = (folder / RECORD_FILE).stat().st_mtime_ns
    assert main(argv) == 0
    assert (folder / RECORD_FILE).stat().st_mtime_ns == mtime  # reused, not recomputed
    assert f"reused the record computed {rec.meta.created}" in capsys.readouterr().out
    assert main(argv + ["--force"]) == 0
    assert (folder / RECORD_FILE).stat().st_mtime_ns != mtime
    # another configuration goes to another folder: the first record stays
    assert main(argv[:-2] + ["0.3"]) == 0
    assert len(record_folders(out)) == 2 and (folder / RECORD_FILE).stat().st_mtime_ns != mtime


def test_test_test_split(tmp_path, capsys):
    assert main(["--dataset", "digits", "--norm", "l2", "--subset", "200", "--splits", "train", "test", "test-test",
                 "--out", str(tmp_path), "--no-progress"]) == 0
    rec = load_record(only_record(tmp_path), SeparationRecord)
    assert rec.config.splits == ("train", "test", "test-test") and rec.result.test_test.n == 200
    arrays = rec.load_arrays()
    assert (arrays["y_test"][arrays["test_test_neighbors"]] != arrays["y_test"]).all()
    assert "test-test" in capsys.readouterr().out


def test_cli_npz_and_engines_agree(tmp_path, rng):
    path = tmp_path / "toy.npz"
    x = rng.integers(0, 256, (80, 1, 5, 5), dtype=np.uint8)
    np.savez(path, x_train=x, y_train=np.arange(80) % 3, x_test=x[:7], y_test=np.arange(7) % 3)
    outs = {}
    for engine in ("cpu", "faiss", "reference"):
        assert main(["--dataset", "npz", "--npz", str(path), "--norm", "l2", "--engine", engine,
                     "--out", str(tmp_path / engine), "--no-progress"]) == 0
        outs[engine] = load_result(only_record(tmp_path / engine))
    for engine in ("cpu", "faiss"):
        np.testing.assert_array_equal(outs[engine].train_neighbors, outs["reference"].train_neighbors)


def _bad_npz(path, kind):
    """A .npz file with one of the documented bad inputs."""
    x = np.random.default_rng(0).integers(0, 256, (6, 1, 3, 3), dtype=np.uint8)
    y = np.arange(6) % 2
    arrays = {"x_train": x, "y_train": y, "x_test": x[:2], "y_test": y[:2]}
    if kind == "lengths":
        arrays["y_train"] = y[:5]
    elif kind == "one-class":
        arrays["y_train"] = np.zeros(6, int)
    elif kind == "empty-test":
        arrays["x_test"], arrays["y_test"] = x[:0], y[:0]
    elif kind == "nan":
        arrays["x_train"] = np.full((6, 4), np.nan)
    elif kind == "range":
        arrays["x_train"] = np.full((6, 4), 7.0)
    elif kind == "shapes":
        arrays["x_test"] = x[:2, :, :2, :2]
    elif kind == "labels-float":
        arrays["y_train"] = y + 0.5
    np.savez(path, **arrays)
    return path


# the bad inputs the README lists for separation.compute, each: exit code 2, one line, no record
@pytest.mark.parametrize("args, message", [
    (["--dataset", "cifar10"], "not found"),
    (["--dataset", "mnist"], "--download"),
    (["--dataset", "npz"], "needs a file"),
    (["--dataset", "npz", "--npz", "{tmp}/missing.npz"], "not found"),
    (["--dataset", "npz", "--npz", "NPZ:lengths"], "same length"),
    (["--dataset", "npz", "--npz", "NPZ:one-class"], "two classes"),
    (["--dataset", "npz", "--npz", "NPZ:empty-test"], "empty"),
    (["--dataset", "npz", "--npz", "NPZ:nan"], "NaN"),
    (["--dataset", "npz", "--npz", "NPZ:range"], "must lie in"),
    (["--dataset", "npz", "--npz", "NPZ:shapes"], "same shape"),
    (["--dataset", "npz", "--npz", "NPZ:labels-float"], "integer class labels"),
    (["--dataset", "digits", "--subset", "5000"], "larger than the 1347 training points"),
    (["--dataset", "digits", "--eps", "1.5"], "exceeds the linf diameter"),
    (["--dataset", "digits", "--out", "{tmp}/afile"], "is a file; pass a folder"),
    (["--dataset", "npz", "--npz", "NPZ:lengths", "--splits", "train", "test-test"], "same length"),
])
def test_cli_bad_input_exits_2_without_record(tmp_path, capsys, args, message):
    (tmp_path / "afile").write_text("not a folder")
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    args = [str(_bad_npz(tmp_path / "bad.npz", a[4:])) if a.startswith("NPZ:") else a for a in args]
    out = [] if "--out" in args else ["--out", str(tmp_path / "out")]
    rc = main([*args, "--data-root", str(tmp_path / "nodata"), *out, "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert message in err and err.startswith("error: ") and "Traceback" not in err
    assert not list(tmp_path.rglob(RECORD_FILE))


@pytest.mark.parametrize("argv", [["--norm", "l3"], ["--dataset", "imagenet21k"], ["--engine", "abacus"],
                                  ["--subset", "many"], ["--subset", "1"], ["--eps", "wide"], ["--eps", "0"],
                                  ["--eps", "-1"], ["--eps", "nan"], ["--eps", "inf"], ["--exclude-below", "nan"],
                                  ["--exclude-below", "-0.1"], ["--near-duplicates", "0"], ["--seed", "-2"],
                                  ["--splits", "valid"]])
def test_cli_argparse_errors_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2 and "error:" in capsys.readouterr().err


def test_cli_unknown_norm_is_an_argparse_error():
    proc = subprocess.run([sys.executable, "-m", "separation.compute", "--norm", "l3"],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "invalid choice: 'l3'" in proc.stderr


@pytest.mark.slow
@pytest.mark.realdata
def test_mnist_subset_real_data(shared_data_root, tmp_path):
    """Real MNIST: cpu and faiss engines agree with the float64 reference on a 1,500-point subset."""
    from separation import compute_separation, load_dataset

    ds = load_dataset("mnist", root=shared_data_root).subset(1500, seed=1)
    ref = compute_separation(ds.x_train, ds.y_train, ds.x_test[:300], ds.y_test[:300], norm="linf",
                             engine="reference")
    for engine in ("cpu", "faiss"):
        res = compute_separation(ds.x_train, ds.y_train, ds.x_test[:300], ds.y_test[:300], norm="linf",
                                 engine=engine)
        np.testing.assert_array_equal(res.train_distances, ref.train_distances)
        np.testing.assert_array_equal(res.test_neighbors, ref.test_neighbors)
    # the paper's claim holds even on a subset: separation well above 2 * eps = 0.2
    assert ref.train_distances.min() > 0.2 and ref.test_distances.min() > 0.2
