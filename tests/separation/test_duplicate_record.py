"""``python -m separation.find_duplicates`` on a fake Tiny-ImageNet tree (PNG: exact values) with
known duplicates: cross-label across train and val, same-label within train, and a near-duplicate
that only the separation's ``--near-duplicates`` lists."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from separation.core.records import load_record  # noqa: E402
from separation.find_duplicates import main  # noqa: E402

from helpers.image_trees import write_tiny_imagenet  # noqa: E402

@pytest.fixture
def tree(tmp_path, rng):
    """The fake Tiny-ImageNet of :func:`helpers.image_trees.write_tiny_imagenet`: ``(root, cross, same)``."""
    cross, same = write_tiny_imagenet(tmp_path / "data", rng)
    return tmp_path / "data", cross, same


def test_the_record_lists_every_group_with_its_files_and_draws_the_cross_label_ones(tree, tmp_path, capsys):
    root, cross, same = tree
    argv = ["--dataset", "tiny-imagenet", "--data-root", str(root), "--out", str(tmp_path / "out"), "--no-progress"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "1 cross-label group(s) (2 images), 1 same-label group(s) (2 images)" in printed
    [folder] = list((tmp_path / "out" / "tiny-imagenet").iterdir())
    rec = load_record(folder)
    frame = rec.to_frame()
    assert frame[["kind", "split", "class", "path"]].values.tolist() == [
        ["cross-label", "train", "n01", "tiny-imagenet-200/train/n01/images/n01_1.JPEG.png"],
        ["cross-label", "test", "n02", "tiny-imagenet-200/val/images/val_0.png"],
        ["same-label", "train", "n03", "tiny-imagenet-200/train/n03/images/n03_0.JPEG.png"],
        ["same-label", "train", "n03", "tiny-imagenet-200/train/n03/images/n03_2.JPEG.png"]]
    assert np.array_equal(rec.load_arrays()["cross_label_images"], cross.transpose(2, 0, 1)[None])
    fig = rec.figure()
    [shown] = [ax for ax in fig.axes if ax.images]
    assert np.allclose(shown.images[0].get_array(), cross / 255.0) and shown.get_title() == "n01\nn02"
    assert main(argv) == 0 and "reused the record" in capsys.readouterr().out


def test_the_near_duplicate_is_found_by_the_separation_not_by_hashing(tree, tmp_path, capsys):
    """The off-by-one copy is no exact duplicate; ``separation.compute --near-duplicates`` lists it
    (l-inf distance 1/255) beside the exact cross-label pair (distance 0)."""
    from separation.compute import main as compute

    root, _, _ = tree
    assert compute(["--dataset", "tiny-imagenet", "--data-root", str(root), "--near-duplicates", "0.005",
                    "--out", str(tmp_path / "sep"), "--no-progress"]) == 0
    [folder] = list((tmp_path / "sep" / "tiny-imagenet").iterdir())
    near = load_record(folder).result.test.near_duplicates
    assert sorted((p.index, p.neighbor, round(p.distance * 255)) for p in near) == [(0, 1, 0), (1, 5, 1)]  # train 5: n02_2


def test_a_dataset_without_files_has_no_paths(tmp_path):
    assert main(["--dataset", "digits", "--subset", "40", "--out", str(tmp_path), "--no-progress"]) == 0
    [folder] = list((tmp_path / "digits").iterdir())
    rec = load_record(folder)
    assert rec.config.files == "" and rec.to_frame().empty and rec.figure().axes
