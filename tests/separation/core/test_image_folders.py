"""Image collections in class folders (imagefolder, tiny-imagenet, imagenet): fake files in the real
on-disk layouts and formats, written by the tests, read through ``load_dataset`` and the commands."""
from __future__ import annotations

import re
import shlex

import numpy as np
import pytest
from PIL import Image

from separation.core.datasets import load_dataset
from separation.core.errors import CorruptDataError, DatasetNotFoundError, InvalidInputError
from separation.core.image_folders import resize_and_crop
from separation.core.records import load_record

from helpers.paths import REPO


def _write(path, pixels: np.ndarray, fmt: str | None = None) -> np.ndarray:
    """Save ``pixels`` (h, w, 3) or (h, w) uint8; return the RGB bytes Pillow reads back (c, h, w)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, format=fmt)
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB")).transpose(2, 0, 1)


def _rng_image(rng, h=6, w=5, grey=False):
    return rng.integers(0, 256, (h, w) if grey else (h, w, 3), dtype=np.uint8)


def test_imagefolder_reads_every_image_of_each_class_folder_as_it_is(tmp_path, rng):
    """Classes from the sorted folders of train/, images at any depth, any Pillow format (a
    greyscale PNG becomes RGB); hidden and non-image files are left out; val/ is the test split."""
    expect = {}
    expect[("train", "b", "1.png")] = _write(tmp_path / "train" / "b" / "1.png", _rng_image(rng))
    expect[("train", "a", "x.PNG")] = _write(tmp_path / "train" / "a" / "deep" / "x.PNG", _rng_image(rng, grey=True))
    expect[("train", "a", "y.bmp")] = _write(tmp_path / "train" / "a" / "y.bmp", _rng_image(rng))
    expect[("val", "b", "2.tif")] = _write(tmp_path / "val" / "b" / "2.tif", _rng_image(rng))
    _write(tmp_path / "train" / "a" / ".hidden.png", _rng_image(rng, 3, 3))  # another size: would fail if read
    (tmp_path / "train" / "a" / "notes.txt").write_text("not an image")
    ds = load_dataset("imagefolder", root=tmp_path)
    assert ds.classes == ["a", "b"] and ds.x_train.dtype == np.uint8 and ds.x_train.shape == (3, 3, 6, 5)
    # by class, then as torchvision's ImageFolder lists them: a folder's own files before its subfolders'
    for k, key in enumerate([("train", "a", "y.bmp"), ("train", "a", "x.PNG"), ("train", "b", "1.png")]):
        assert np.array_equal(ds.x_train[k], expect[key])
    assert ds.y_train.tolist() == [0, 0, 1] and ds.y_test.tolist() == [1]
    assert np.array_equal(ds.x_test[0], expect[("val", "b", "2.tif")])
    # a test/ folder instead of val/ is the test split as well
    (tmp_path / "val").rename(tmp_path / "test")
    assert np.array_equal(load_dataset("imagefolder", root=tmp_path).x_test, ds.x_test)


def test_duplicates_of_an_image_folder_name_their_files(tmp_path, rng):
    """A tree with a cross-label duplicate across train and val (PNG: values exact) and a same-label
    one within train: ``exact_duplicates`` finds both, and the dataset's source files name each copy,
    also after ``subset``; datasets that are not read from files say so."""
    from separation import exact_duplicates

    same, cross = _rng_image(rng), _rng_image(rng)
    _write(tmp_path / "train" / "a" / "1.png", same)
    _write(tmp_path / "train" / "a" / "2.png", same)
    _write(tmp_path / "train" / "a" / "3.png", _rng_image(rng))
    _write(tmp_path / "train" / "b" / "4.png", cross)
    _write(tmp_path / "train" / "b" / "5.png", _rng_image(rng))
    _write(tmp_path / "val" / "a" / "6.png", cross)
    ds = load_dataset("imagefolder", root=tmp_path)
    frame = exact_duplicates(ds.x_train, ds.y_train, ds.x_test, ds.y_test).to_frame(paths=ds.file_of)
    got = [(kind, split, label, path.split("/")[-1])
           for kind, split, label, path in frame[["kind", "split", "label", "path"]].itertuples(index=False)]
    assert got == [("same-label", "train", 0, "1.png"), ("same-label", "train", 0, "2.png"),
                   ("cross-label", "train", 1, "4.png"), ("cross-label", "test", 0, "6.png")]
    assert all(p.startswith(str(tmp_path)) for p in frame.path)
    sub = ds.subset(3, seed=1)
    for split, x, files in (("train", sub.x_train, sub.train_files), ("test", sub.x_test, sub.test_files)):
        for i, path in enumerate(files):
            assert sub.file_of(split, i) == path
            with Image.open(path) as im:
                assert np.array_equal(x[i], np.asarray(im.convert("RGB")).transpose(2, 0, 1))
    digits = load_dataset("digits")
    with pytest.raises(InvalidInputError, match="no source file per image"):
        digits.file_of("train", 0)


def test_images_are_listed_in_the_order_of_torchvisions_image_folder(tmp_path, rng):
    """Nested folders, a folder's own files beside its subfolders', names that sort differently as
    path parts and as strings ("a b", "a-b", "a/b"): the same files in the same order as
    ``torchvision.datasets.ImageFolder``."""
    tvd = pytest.importorskip("torchvision.datasets")
    for rel in ["c0/z.png", "c0/a-b/1.png", "c0/a/2.png", "c0/a/b/3.png", "c0/a b/4.png", "c0/A.PNG", "c1/x/y/5.jpg",
                "c1/6.bmp", "c1/x/7.png"]:
        _write(tmp_path / rel, _rng_image(rng))
    from separation.core.image_folders import class_folders, labelled_images

    ours = [(str(p), t) for p, t in labelled_images(tmp_path, class_folders(tmp_path))]
    assert ours == [(p, t) for p, t in tvd.ImageFolder(str(tmp_path)).samples]


def test_images_of_several_sizes_need_image_size_and_get_it(tmp_path, rng):
    _write(tmp_path / "train" / "a" / "1.png", _rng_image(rng, 10, 12))
    _write(tmp_path / "train" / "b" / "2.png", _rng_image(rng, 11, 12))
    _write(tmp_path / "val" / "a" / "3.png", _rng_image(rng, 10, 12))
    with pytest.raises(InvalidInputError, match=r"2\.png is 12x11 but .*1\.png is 12x10; images of several sizes "
                                                r"need --image-size N"):
        load_dataset("imagefolder", root=tmp_path)
    ds = load_dataset("imagefolder", root=tmp_path, image_size=8)
    assert ds.x_train.shape == (2, 3, 8, 8) and ds.x_test.shape == (1, 3, 8, 8)
    assert ds.fingerprint() != load_dataset("imagefolder", root=tmp_path, image_size=7).fingerprint()


@pytest.mark.parametrize("size", [1, 7, 8, 32, 64])
def test_the_paper_pipeline_equals_torchvision_resize_and_center_crop(rng, size):
    """Byte for byte what ``Resize(int(N*9/8))`` + ``CenterCrop(N)`` give on PIL images, for
    portrait, landscape and square images, odd and even sizes, the shorter side exactly 9N/8 too."""
    T = pytest.importorskip("torchvision.transforms")
    short = int(size * 9 / 8)
    reference = T.Compose([T.Resize(short), T.CenterCrop(size)])
    for h, w in [(short, short), (short, short + 3), (2 * size + 5, size + 2), (size + 2, 3 * size + 1), (97, 60)]:
        image = Image.fromarray(_rng_image(rng, h, w))
        got = np.asarray(resize_and_crop(image, size))
        assert got.shape == (size, size, 3) and np.array_equal(got, np.asarray(reference(image))), (h, w)


def _tiny(base, rng, wnids=("n02", "n01", "n03")):
    base.mkdir(parents=True)
    (base / "wnids.txt").write_text("\n".join(wnids) + "\n")
    for k, w in enumerate(wnids):
        for i in range(2):
            _write(base / "train" / w / "images" / f"{w}_{i}.JPEG", _rng_image(rng, 64, 64), "JPEG")
        (base / "train" / w / f"{w}_boxes.txt").write_text("boxes, not an image\n")
    notes = []
    for i, w in enumerate(["n03", "n01", "n01", "n02"]):
        _write(base / "val" / "images" / f"val_{i}.JPEG", _rng_image(rng, 64, 64), "JPEG")
        notes.append(f"val_{i}.JPEG\t{w}\t0\t1\t60\t61")
    (base / "val" / "val_annotations.txt").write_text("\n".join(notes) + "\n")
    return base


def test_tiny_imagenet_as_distributed(tmp_path, rng):
    """wnids.txt's sorted ids are the classes; val labels come from val_annotations.txt; JPEG files
    are decoded by Pillow exactly (compared with a direct read of one file)."""
    base = _tiny(tmp_path / "tiny-imagenet-200", rng)
    ds = load_dataset("tiny-imagenet", root=tmp_path)
    assert ds.classes == ["n01", "n02", "n03"] and ds.x_train.shape == (6, 3, 64, 64)
    assert ds.y_train.tolist() == [0, 0, 1, 1, 2, 2]
    assert ds.y_test.tolist() == [2, 0, 0, 1]  # val_0 .. val_3
    with Image.open(base / "val" / "images" / "val_3.JPEG") as im:
        assert np.array_equal(ds.x_test[3], np.asarray(im.convert("RGB")).transpose(2, 0, 1))
    assert load_dataset("tiny-imagenet", root=base).fingerprint() == ds.fingerprint()  # the folder itself
    assert load_dataset("tiny-imagenet", root=tmp_path, image_size=32).x_train.shape == (6, 3, 32, 32)
    (base / "val" / "val_annotations.txt").write_text("val_0.JPEG\tn99\t0\t0\t1\t1\n")
    with pytest.raises(CorruptDataError, match=r"line 1 of .*val_annotations\.txt .*'val_0\.JPEG\\tn99"):
        load_dataset("tiny-imagenet", root=tmp_path)


def test_imagenet_class_folders_and_a_flat_val_folder(tmp_path, rng):
    for split in ("train", "val"):
        for w in ("n01440764", "n01443537"):
            _write(tmp_path / "imagenet" / split / w / f"{split}_{w}.JPEG", _rng_image(rng, 40 + len(split), 50),
                   "JPEG")
    with pytest.raises(InvalidInputError, match="training images are 50x45 but the test images 50x43; pass "
                                                "--image-size N"):
        load_dataset("imagenet", root=tmp_path)
    ds = load_dataset("imagenet", root=tmp_path, image_size=16)
    assert ds.classes == ["n01440764", "n01443537"] and ds.x_test.shape == (2, 3, 16, 16)
    val = tmp_path / "imagenet" / "val"
    for f in list(val.rglob("*.JPEG")):
        f.rename(val / f.name)
    for d in val.iterdir():
        if d.is_dir():
            d.rmdir()
    with pytest.raises(InvalidInputError, match="flat val/ must first be sorted into one folder per WordNet id"):
        load_dataset("imagenet", root=tmp_path, image_size=16)


def test_folder_datasets_say_what_is_missing_and_refuse_what_does_not_apply(tmp_path, rng):
    for name in ("imagefolder", "tiny-imagenet", "imagenet"):
        with pytest.raises(DatasetNotFoundError, match="--data-root"):
            load_dataset(name, root=tmp_path)
        with pytest.raises(DatasetNotFoundError, match="is not a folder"):
            load_dataset(name, root=tmp_path / "nowhere")
        with pytest.raises(InvalidInputError, match="cannot be downloaded by the toolkit"):
            load_dataset(name, root=tmp_path, download=True)
    with pytest.raises(InvalidInputError, match="digits has a fixed image size: leave --image-size out"):
        load_dataset("digits", image_size=8)
    for bad in (0, -3, 2.5, True):
        with pytest.raises(InvalidInputError, match="must be a positive whole number"):
            load_dataset("imagefolder", root=tmp_path, image_size=bad)
    _write(tmp_path / "train" / "a" / "1.png", _rng_image(rng))
    _write(tmp_path / "val" / "z" / "2.png", _rng_image(rng))
    with pytest.raises(InvalidInputError, match="1 class folder"):
        load_dataset("imagefolder", root=tmp_path)
    _write(tmp_path / "train" / "b" / "3.png", _rng_image(rng))
    with pytest.raises(InvalidInputError, match=r"class folders that the training split lacks: z"):
        load_dataset("imagefolder", root=tmp_path)


def test_an_unreadable_image_through_the_command_is_one_error_line_and_nothing_is_written(tmp_path, rng):
    import subprocess
    import sys

    for rel in ("train/a/1.png", "train/b/2.png", "train/b/5.png", "val/a/3.png"):
        _write(tmp_path / "data" / rel, _rng_image(rng))
    bad = tmp_path / "data" / "train" / "b" / "5.png"
    bad.write_bytes(bad.read_bytes()[:30])
    p = subprocess.run([sys.executable, "-m", "separation.compute", "--dataset", "imagefolder", "--data-root",
                        str(tmp_path / "data"), "--out", str(tmp_path / "out"), "--store-dir",
                        str(tmp_path / "stores" / "new")], cwd=REPO, capture_output=True, text=True)
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert p.returncode == 2 and len(lines) == 1, p.stderr
    assert lines[0].startswith(f"error: {bad} is not a readable image") and "replace or remove the file" in lines[0]
    assert not (tmp_path / "out").exists() and not (tmp_path / "stores").exists()


@pytest.mark.parametrize("empty", ["train/b", "val/a", "tiny"])
def test_a_class_folder_without_images_is_one_error_line_and_nothing_is_written(tmp_path, rng, empty):
    """An empty class folder (train or val; a Tiny-ImageNet class without training images) stops
    the command: one error line naming the folder, exit 2, no record and no decoded store."""
    import subprocess
    import sys

    if empty == "tiny":
        base = tmp_path / "data" / "tiny-imagenet-200"
        for w in ("n01", "n02"):
            (base / "train" / w / "images").mkdir(parents=True)
        _write(base / "train" / "n01" / "images" / "1.png", _rng_image(rng))
        _write(base / "val" / "images" / "v.png", _rng_image(rng))
        (base / "wnids.txt").write_text("n01\nn02\n")
        (base / "val" / "val_annotations.txt").write_text("v.png\tn01\t0\t0\t5\t6\n")
        dataset, folder = "tiny-imagenet", base / "train" / "n02"
    else:
        for rel in ("train/a/1.png", "train/b/2.png", "val/a/3.png", "val/b/4.png"):
            if not rel.startswith(empty):
                _write(tmp_path / "data" / rel, _rng_image(rng))
        (tmp_path / "data" / empty).mkdir(parents=True, exist_ok=True)
        dataset, folder = "imagefolder", tmp_path / "data" / empty
    p = subprocess.run([sys.executable, "-m", "separation.compute", "--dataset", dataset, "--data-root",
                        str(tmp_path / "data"), "--out", str(tmp_path / "out"), "--store-dir", str(tmp_path / "stores")],
                       cwd=REPO, capture_output=True, text=True)
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert p.returncode == 2 and len(lines) == 1, p.stderr
    assert lines[0] == (f"error: the class folder {folder} has no image files (.jpg, .jpeg, .png, .ppm, .bmp, .pgm, "
                        ".tif, .tiff, .webp); add its images or remove the folder.")
    assert not (tmp_path / "out").exists() and not (tmp_path / "stores").exists()


def test_a_truncated_image_names_the_file(tmp_path, rng):
    _write(tmp_path / "train" / "a" / "1.png", _rng_image(rng))
    _write(tmp_path / "train" / "b" / "2.png", _rng_image(rng))
    _write(tmp_path / "val" / "a" / "3.png", _rng_image(rng))
    data = (tmp_path / "train" / "b" / "2.png").read_bytes()
    (tmp_path / "train" / "b" / "2.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptDataError, match=r"2\.png is not a readable image .*replace or remove the file"):
        load_dataset("imagefolder", root=tmp_path)


def _documented_commands() -> list[str]:
    text = (REPO / "docs" / "guide" / "datasets.md").read_text(encoding="utf-8")
    return re.findall(r"^python -m separation\.compute --dataset imagefolder .*$", text, flags=re.M)


def test_the_guide_has_the_imagefolder_commands():
    assert len(_documented_commands()) == 3 and "--scheduler local:2" in _documented_commands()[2]


@pytest.mark.parametrize("which", [0, 1, pytest.param(2, marks=pytest.mark.slow)])  # 2: a local Dask cluster
def test_the_documented_imagefolder_command_computes_the_exact_separation(tmp_path, rng, capsys, which):
    """Each of the guide's commands, run on folders of images of several sizes: the record holds
    each point's distance to the nearest training image of another class, equal to a float64 brute
    force on the decoded images; the data root is left as it was (a store named by the command is
    where it says)."""
    from separation.compute import main

    for split, n in (("train", 5), ("val", 3)):
        for c in ("cat", "dog", "emu"):
            for i in range(n):
                _write(tmp_path / "my_images" / split / c / f"{i}.png", _rng_image(rng, 20 + i, 30 - i))
    before = sorted((p, p.stat().st_mtime_ns) for p in (tmp_path / "my_images").rglob("*"))
    words = shlex.split(_documented_commands()[which])
    argv = [str(tmp_path / "stores") if w == "stores" else w.replace("my_images", str(tmp_path / "my_images"))
            for w in words[3:]]
    assert main(argv + ["--out", str(tmp_path / "out"), "--no-progress"]) == 0
    [folder] = [p for p in (tmp_path / "out" / "imagefolder").iterdir() if p.is_dir()]
    rec = load_record(folder)
    ds = load_dataset("imagefolder", root=tmp_path / "my_images", image_size=32)
    x = ds.x_train.reshape(len(ds.x_train), -1).astype(np.int64)
    d = np.abs(x[:, None] - x[None]).max(-1) / 255  # exact byte differences, in [0, 1] units
    d[ds.y_train[:, None] == ds.y_train[None]] = np.inf
    assert np.array_equal(rec.load_arrays()["train_distances"], d.min(1))
    assert rec.config.data.fingerprint == ds.fingerprint()
    assert sorted((p, p.stat().st_mtime_ns) for p in (tmp_path / "my_images").rglob("*")) == before
    assert (tmp_path / "stores").is_dir() == ("--store-dir" in words)
