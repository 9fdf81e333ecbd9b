"""Fake image collections in the real on-disk layouts, written by the tests (PNG: values exact)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

WNIDS = ["n01", "n02", "n03"]


def _png(path: Path, pixels: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)


def write_tiny_imagenet(root: Path, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``root/tiny-imagenet-200`` with 3 classes of 3 training images (8x8) and 3 labelled validation
    images, holding known duplicates: a cross-label one (train n01_1 = val_0, labelled n02), a
    same-label one (train n03_0 = n03_2) and a near-duplicate (val_1, n01: train n02_2 with one value
    off by one). Returns the images of the cross-label and of the same-label group (H, W, 3)."""
    base = root / "tiny-imagenet-200"
    base.mkdir(parents=True)
    (base / "wnids.txt").write_text("\n".join(WNIDS) + "\n")
    img = {(w, i): rng.integers(0, 256, (8, 8, 3), dtype=np.uint8) for w in WNIDS for i in range(3)}
    cross, same = img[("n01", 1)], img[("n03", 0)]
    img[("n03", 2)] = same
    near = img[("n02", 2)].copy()
    near[0, 0, 0] ^= 1
    for (w, i), a in img.items():
        _png(base / "train" / w / "images" / f"{w}_{i}.JPEG.png", a)
    val = {"val_0.png": ("n02", cross), "val_1.png": ("n01", near),
           "val_2.png": ("n03", rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))}
    for name, (w, a) in val.items():
        _png(base / "val" / "images" / name, a)
    (base / "val" / "val_annotations.txt").write_text("".join(f"{n}\t{w}\t0\t0\t8\t8\n" for n, (w, _) in val.items()))
    return cross, same
