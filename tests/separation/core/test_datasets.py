"""Dataset loaders on tiny fake files written in the real on-disk formats (as torchvision's tests do)."""
from __future__ import annotations

import gzip
import re
import pickle
import shutil
import struct

import numpy as np
import pytest
from PIL import Image

from separation import load_dataset
from separation.core.errors import CorruptDataError
from separation.core.datasets import (DATASET_NAMES, RESTRICTED_IMAGENET_RANGES, DatasetNotFoundError,
                                 default_data_root)


def _write_cifar(root, n_per_batch=4, hundred=False, seed=0):
    rng = np.random.default_rng(seed)
    folder = root / ("cifar-100-python" if hundred else "cifar-10-batches-py")
    folder.mkdir(parents=True)
    key = "fine_labels" if hundred else "labels"
    ncls = 100 if hundred else 10
    files = ["train", "test"] if hundred else [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for f in files:
        entry = {"data": rng.integers(0, 256, (n_per_batch, 3072), dtype=np.uint8),
                 key: rng.integers(0, ncls, n_per_batch).tolist()}
        with open(folder / f, "wb") as fh:
            pickle.dump(entry, fh)
    meta = {"fine_label_names": [f"c{i}" for i in range(100)]} if hundred else \
        {"label_names": [f"c{i}" for i in range(10)]}
    with open(folder / ("meta" if hundred else "batches.meta"), "wb") as fh:
        pickle.dump(meta, fh)
    return folder


@pytest.mark.parametrize("name, hundred", [("cifar10", False), ("cifar100", True)])
def test_cifar_fake_format(tmp_path, name, hundred):
    folder = _write_cifar(tmp_path, hundred=hundred)
    ds = load_dataset(name, root=tmp_path, check_integrity=False)
    n_train = 4 if hundred else 20  # one train file vs five batches
    assert ds.x_train.shape == (n_train, 3, 32, 32) and ds.x_train.dtype == np.uint8
    assert ds.x_test.shape == (4, 3, 32, 32)
    # channel-first layout: the first 1024 bytes of a CIFAR row are the red plane
    with open(folder / ("test" if hundred else "test_batch"), "rb") as fh:
        raw = pickle.load(fh)
    np.testing.assert_array_equal(ds.x_test[0, 0].ravel(), raw["data"][0, :1024])
    assert len(ds.classes) == (100 if hundred else 10)
    # with checksums on, fake files are rejected as corrupt, with a way out
    with pytest.raises(ValueError, match="corrupt"):
        load_dataset(name, root=tmp_path)


def test_svhn_fake_format(tmp_path):
    from scipy.io import savemat

    rng = np.random.default_rng(0)
    (tmp_path / "SVHN").mkdir()
    for split, n in (("train", 6), ("test", 3)):
        x = rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8)
        y = rng.integers(1, 11, (n, 1)).astype(np.uint8)
        y[0] = 10  # SVHN stores digit 0 as label 10
        savemat(tmp_path / "SVHN" / f"{split}_32x32.mat", {"X": x, "y": y})
    ds = load_dataset("svhn", root=tmp_path, check_integrity=False)
    assert ds.x_train.shape == (6, 3, 32, 32) and ds.y_train[0] == 0 and ds.y_train.max() <= 9
    with pytest.raises(ValueError, match="corrupt"):
        load_dataset("svhn", root=tmp_path)


def _write_idx(path, arr):
    magic = {1: 0x0801, 3: 0x0803}[arr.ndim]
    with open(path, "wb") as fh:
        fh.write(struct.pack(">I", magic) + b"".join(struct.pack(">I", s) for s in arr.shape))
        fh.write(arr.astype(np.uint8).tobytes())


@pytest.mark.parametrize("name, folder", [("mnist", "MNIST"), ("fashion-mnist", "FashionMNIST")])
def test_mnist_like_fake_idx(tmp_path, name, folder):
    raw = tmp_path / folder / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(1)
    for prefix, n in (("train", 7), ("t10k", 3)):
        _write_idx(raw / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)))
        _write_idx(raw / f"{prefix}-labels-idx1-ubyte", rng.integers(0, 10, n))
    ds = load_dataset(name, root=tmp_path, check_integrity=False)
    assert ds.x_train.shape == (7, 1, 28, 28) and ds.x_test.shape == (3, 1, 28, 28)
    # verified by content: unpacked files that are not the published ones are refused, naming the file
    with pytest.raises(CorruptDataError, match=rf"^{re.escape(str(raw / 'train-images-idx3-ubyte'))} does not hold the "
                                               r"published data \(its sha256 differs\)"):
        load_dataset(name, root=tmp_path)


def test_mnist_corrupt_archive_is_reported(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for f in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
              "t10k-labels-idx1-ubyte"):
        with gzip.open(raw / f"{f}.gz", "wb") as fh:
            fh.write(b"<html>not found</html>")
    with pytest.raises(CorruptDataError, match=r"train-images-idx3-ubyte\.gz does not have the published content "
                                               r"\(md5 [0-9a-f]{32}, expected f68b3c2dcbeaaa9fbdd348bbdeb94873\)"):
        load_dataset("mnist", root=tmp_path)


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist", "cifar10", "cifar100", "svhn",
                                  "restricted-imagenet"])
def test_missing_data_says_how_to_get_it(tmp_path, name):
    with pytest.raises(DatasetNotFoundError, match="--download|--data-root"):
        load_dataset(name, root=tmp_path)


def _png(path, color):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (80, 90), color).save(path)


def test_restricted_imagenet_wnid_layout(tmp_path):
    for split in ("train", "val"):
        for i in range(1000):
            (tmp_path / "restricted-imagenet" / split / f"n{i:08d}").mkdir(parents=True)
        _png(tmp_path / "restricted-imagenet" / split / "n00000151" / "a.png", (255, 0, 0))  # dog
        _png(tmp_path / "restricted-imagenet" / split / "n00000283" / "b.png", (0, 255, 0))  # cat
        _png(tmp_path / "restricted-imagenet" / split / "n00000500" / "c.png", (0, 0, 255))  # not kept
    ds = load_dataset("restricted-imagenet", root=tmp_path)
    assert ds.x_train.shape == (2, 3, 64, 64) and ds.x_train.dtype == np.uint8
    assert ds.classes == list(RESTRICTED_IMAGENET_RANGES)
    assert sorted(ds.y_train.tolist()) == [0, 1]  # dog, cat
    assert ds.x_train[ds.y_train == 0][0, 0].min() == 255  # resized + cropped, colour kept
    # each kept image names its source file (the super-class left out has none)
    names = {split: [f.split("/")[-2:] for f in files] for split, files in (("train", ds.train_files),
                                                                            ("test", ds.test_files))}
    assert names["train"] == names["test"] == [["n00000151", "a.png"], ["n00000283", "b.png"]]
    assert ds.file_of("test", 1).endswith("val/n00000283/b.png")


def test_restricted_imagenet_grouped_layout_and_bad_layout(tmp_path):
    for split in ("train", "val"):
        _png(tmp_path / split / "fish" / "x.png", (1, 2, 3))
        _png(tmp_path / split / "crab" / "y.png", (4, 5, 6))
    ds = load_dataset("restricted-imagenet", root=tmp_path)
    assert sorted(ds.y_train.tolist()) == [6, 7]
    _png(tmp_path / "train" / "n123" / "z.png", (0, 0, 0))
    with pytest.raises(ValueError, match="1000 ImageNet"):
        load_dataset("restricted-imagenet", root=tmp_path)


def test_digits_is_embedded():
    ds = load_dataset("digits")
    assert ds.x_train.shape == (1347, 1, 8, 8) and ds.x_test.shape == (450, 1, 8, 8)
    assert 0.0 <= ds.x_train.min() and ds.x_train.max() <= 1.0
    assert ds.fingerprint() == load_dataset("digits").fingerprint()
    sub = ds.subset(100, seed=3)
    assert len(sub.x_train) == 100 and len(sub.x_test) == 100


def test_npz(tmp_path, rng):
    path = tmp_path / "d.npz"
    np.savez(path, x_train=rng.integers(0, 256, (5, 2, 2), dtype=np.uint8), y_train=np.arange(5) % 2)
    ds = load_dataset("npz", npz_path=path)
    assert ds.x_test is None and ds.x_train.shape == (5, 2, 2)
    np.savez(tmp_path / "bad.npz", x=np.zeros(3))
    with pytest.raises(ValueError, match="lacks x_train, y_train"):
        load_dataset("npz", npz_path=tmp_path / "bad.npz")
    with pytest.raises(DatasetNotFoundError):
        load_dataset("npz", npz_path=tmp_path / "missing.npz")
    with pytest.raises(ValueError, match="needs a file"):
        load_dataset("npz")


def test_unknown_dataset_and_root(monkeypatch, tmp_path):
    with pytest.raises(ValueError, match="Unknown dataset 'imagenet21k'"):
        load_dataset("imagenet21k")
    assert "digits" in DATASET_NAMES and "npz" in DATASET_NAMES
    monkeypatch.setenv("SEPARATION_DATA_ROOT", str(tmp_path))
    assert default_data_root() == tmp_path
    monkeypatch.delenv("SEPARATION_DATA_ROOT")
    assert default_data_root().name == "data"


@pytest.mark.realdata
def test_real_mnist_from_shared(mnist):
    assert mnist.x_train.shape == (60000, 1, 28, 28) and mnist.x_test.shape == (10000, 1, 28, 28)
    assert mnist.y_train[:5].tolist() == [5, 0, 4, 1, 9]


def _snapshot(root):
    """Every file below ``root``: its path, size and modification time."""
    return {str(f.relative_to(root)): (f.stat().st_size, f.stat().st_mtime_ns) for f in sorted(root.rglob("*"))}


@pytest.mark.realdata
@pytest.mark.parametrize("command", [
    ["separation.compute", "--norm", "linf"],
    ["lipschitz_construct.verify", "--norm", "linf", "--pairs", "10", "--adversarial-pairs", "0",
     "--gradient-steps", "0"],
    ["lipschitz_construct.bounds", "--norm", "linf", "--eps", "0.4"],
])
def test_a_data_root_of_compressed_files_is_read_and_never_written(shared_data_root, tmp_path, command):
    """A folder holding only MNIST's published .gz files, made read-only: every command that reads
    it leaves it exactly as it was (no unpacked files, nothing touched), also when run as root."""
    import importlib

    root = tmp_path / "data"
    shutil.copytree(shared_data_root / "MNIST" / "raw", root / "MNIST" / "raw",
                    ignore=shutil.ignore_patterns("*-ubyte"))
    (root / "MNIST" / "raw").chmod(0o555)
    before = _snapshot(root)
    try:
        module = importlib.import_module(command[0])
        assert module.main([*command[1:], "--dataset", "mnist", "--subset", "200", "--data-root", str(root),
                            "--out", str(tmp_path / "out"), "--no-progress"]) == 0
    finally:
        (root / "MNIST" / "raw").chmod(0o755)
    assert _snapshot(root) == before and all(name.endswith(".gz") for name in before if "." in name)


@pytest.mark.parametrize("arrays, match", [
    ({"x_train": np.zeros((0, 4), np.uint8), "y_train": np.zeros(0, int)}, r"x_train in .* is empty or not points \(shape \(0, 4\)\)"),
    ({"x_train": np.zeros((3, 4), np.uint8), "y_train": np.zeros(2, int)}, "x_train has 3 points but y_train has 2"),
    ({"x_train": np.zeros((3, 4), np.uint8), "y_train": np.arange(3), "x_test": np.zeros((0, 4), np.uint8),
      "y_test": np.zeros(0, int)}, r"x_test in .* is empty or not points \(shape \(0, 4\)\)"),
])
def test_an_npz_with_an_empty_or_mismatched_split_is_refused_before_any_work(tmp_path, arrays, match):
    path = tmp_path / "d.npz"
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match=match):
        load_dataset("npz", npz_path=path)
    from separation.compute import main

    assert main(["--dataset", "npz", "--npz", str(path), "--out", str(tmp_path / "o")]) == 2
    assert not (tmp_path / "o").exists()


def test_truncated_or_altered_idx_files_name_the_file_and_the_fix(tmp_path):
    from separation.core import idx_files

    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(2)
    for prefix, n in (("train", 7), ("t10k", 3)):
        _write_idx(raw / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)))
        _write_idx(raw / f"{prefix}-labels-idx1-ubyte", rng.integers(0, 10, n))
    images = raw / "train-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[:-5])  # truncated
    with pytest.raises(CorruptDataError, match=rf"^{re.escape(str(images))} holds 5,483 bytes of data but its header "
                                               r"says \(7, 28, 28\) \(5,488\): it is truncated or corrupt"):
        load_dataset("mnist", root=tmp_path, check_integrity=False)
    images.write_bytes(b"\x00\x00\x09\x03" + images.read_bytes()[4:])
    with pytest.raises(CorruptDataError, match="is not an IDX file of bytes"):
        idx_files.parse_idx(images.read_bytes(), str(images))


@pytest.mark.realdata
def test_altered_mnist_bytes_of_the_same_size_are_refused(tmp_path):
    """The issue's case: unpacked MNIST with a few altered bytes (same size) was accepted; now the
    content digest refuses it, naming the file -- and reading the .gz archives writes nothing."""
    import gzip as gz
    import shutil

    from helpers.paths import SHARED_DATA

    if not (SHARED_DATA / "MNIST" / "raw").is_dir():
        pytest.skip("needs ../shared/data")
    raw = tmp_path / "MNIST" / "raw"
    shutil.copytree(SHARED_DATA / "MNIST" / "raw", raw)
    for p in raw.iterdir():
        p.chmod(0o644)
    before = sorted(p.name for p in raw.iterdir())
    ds = load_dataset("mnist", root=tmp_path)  # from the archives, verified, decompressed in memory
    assert len(ds.x_train) == 60000 and sorted(p.name for p in raw.iterdir()) == before
    for p in list(raw.glob("*.gz")):
        p.with_suffix("").write_bytes(gz.decompress(p.read_bytes()))
        p.unlink()
    assert load_dataset("mnist", root=tmp_path).fingerprint() == ds.fingerprint()  # unpacked, verified
    images = raw / "train-images-idx3-ubyte"
    data = bytearray(images.read_bytes())
    data[5000:5050] = bytes(255 - b for b in data[5000:5050])
    images.write_bytes(bytes(data))
    with pytest.raises(CorruptDataError, match=rf"^{re.escape(str(images))} does not hold the published data"):
        load_dataset("mnist", root=tmp_path)
