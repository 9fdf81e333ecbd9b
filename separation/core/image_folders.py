"""Image collections stored as files in class folders, decoded with Pillow into ``(n, 3, H, W)`` uint8.

Layouts (``root`` is ``--data-root``):

* ``imagefolder``: ``root/train/<class>/...`` and ``root/val/<class>/...`` (or ``test/``), any
  Pillow-readable format, images found at any depth below their class folder; classes are the
  sorted folder names of ``train/`` (as torchvision's ``ImageFolder``).
* ``tiny-imagenet``: the ``tiny-imagenet-200`` folder as distributed (``wnids.txt``,
  ``train/<wnid>/images/*.JPEG``, ``val/images/*.JPEG`` labelled by ``val/val_annotations.txt``);
  its unlabelled ``test/`` is not used: the validation split is the test split.
* ``imagenet``: ILSVRC ``train/<wnid>/`` and ``val/<wnid>/`` class folders below ``root/imagenet``
  (or ``root``), as ``torchvision.datasets.ImageNet`` prepares them.
* ``restricted-imagenet`` (in :mod:`.datasets`): the same folders, mapped to 9 super-classes.

``image_size=N`` applies the paper's pipeline to every image: the shorter side resized to
``int(N * 9 / 8)`` (bilinear, the other side scaled as torchvision's ``Resize`` does), then the
centre ``N x N`` crop (torchvision's ``CenterCrop``). Without it, images are used exactly as
they are, and must all share one size. Every image is converted to RGB.

The pixels come from a decoded store (:mod:`.decoded_store`): decoded once, by worker threads,
then memory-mapped and verified by every later command.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from .decoded_store import StoreOptions, decoded_images
from .errors import CorruptDataError, DatasetNotFoundError, InvalidInputError

#: File name endings read as images (case-insensitive; torchvision's ``IMG_EXTENSIONS``).
IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")

Samples = list[tuple[Path, int]]
#: Where the layouts are documented (named in errors).
LAYOUTS = "docs/guide/datasets.md"


def _visible(p: Path) -> bool:
    return not p.name.startswith(".")


def class_folders(folder: Path) -> list[str]:
    """The sorted names of the class folders of ``folder`` (hidden ones left out)."""
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and _visible(p))


def images_below(folder: Path) -> list[Path]:
    """Every image file below ``folder`` (any depth) in torchvision ``ImageFolder``'s order (by folder
    path, then file name: a folder's own files before those of its subfolders); hidden files and
    folders left out."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        found += [(dirpath, f) for f in filenames if not f.startswith(".") and f.lower().endswith(IMG_EXTENSIONS)]
    return [Path(d) / f for d, f in sorted(found)]


def labelled_images(split_dir: Path, classes: Sequence[str], *, allow_empty: bool = False) -> Samples:
    """``(path, class index)`` of every image of ``split_dir/<class>/``; a class folder that is not
    in ``classes``, or (unless ``allow_empty``) one without images, is an error naming it."""
    names = class_folders(split_dir)
    index = {c: k for k, c in enumerate(classes)}
    unknown = [c for c in names if c not in index]
    if unknown:
        raise InvalidInputError(f"{split_dir} has class folders that the training split lacks: "
                                f"{', '.join(unknown[:5])}{' ...' if len(unknown) > 5 else ''}; "
                                "every test class needs a folder of the same name under train/.")
    out = []
    for c in names:
        found = images_below(split_dir / c)
        if not found and not allow_empty:
            raise InvalidInputError(_empty_class(split_dir / c))
        out += [(p, index[c]) for p in found]
    return out


def _empty_class(folder: Path) -> str:
    return (f"the class folder {folder} has no image files ({', '.join(IMG_EXTENSIONS)}); add its images or "
            "remove the folder.")


def resize_and_crop(image, size: int):
    """The paper's pipeline on one PIL image: shorter side to ``int(size * 9 / 8)`` (bilinear),
    then the centre ``size x size`` crop -- torchvision's ``Resize`` + ``CenterCrop`` on PIL images."""
    short = int(size * 9 / 8)
    w, h = image.size
    new_w, new_h = (short, int(short * h / w)) if w <= h else (int(short * w / h), short)
    image = image.resize((new_w, new_h), Image.Resampling.BILINEAR)
    top, left = int(round((new_h - size) / 2.0)), int(round((new_w - size) / 2.0))
    return image.crop((left, top, left + size, top + size))


def _open_rgb(path: Path):
    try:
        with Image.open(path) as im:
            return im.convert("RGB")
    except (OSError, SyntaxError) as exc:  # Pillow's errors for unreadable or truncated files
        raise CorruptDataError(f"{path} is not a readable image ({exc}); replace or remove the file.") from None


def decode_image(path: Path, image_size: int | None) -> np.ndarray:
    """One image file as ``(3, H, W)`` uint8 RGB: through :func:`resize_and_crop` when ``image_size``
    is given, else as it is."""
    image = _open_rgb(path)
    if image_size is not None:
        image = resize_and_crop(image, image_size)
    return np.asarray(image, dtype=np.uint8).transpose(2, 0, 1)


def decode(paths: Sequence[Path], image_size: int | None, *, what: str, progress: bool | None = None,
           store: StoreOptions | None = None) -> np.ndarray:
    """``(n, 3, H, W)`` uint8 of ``paths`` (memory-mapped from their decoded store, :mod:`.decoded_store`):
    ``H = W = image_size`` through :func:`resize_and_crop`, else each image as it is (all of one size,
    or an error that asks for ``--image-size``)."""
    if not paths:
        raise InvalidInputError(f"{what}: no image files ({', '.join(IMG_EXTENSIONS)}) found.")
    return decoded_images(paths, image_size, decode_image, what=what, options=store, progress=progress)


def _same_size(x_train: np.ndarray, x_test: np.ndarray, what: str) -> None:
    """Train and test images must have one size, as the distances compare them pixel by pixel."""
    if x_train.shape[1:] != x_test.shape[1:]:
        raise InvalidInputError(f"{what}: the training images are {x_train.shape[3]}x{x_train.shape[2]} but the test "
                                f"images {x_test.shape[3]}x{x_test.shape[2]}; pass --image-size N (image_size=N) to "
                                "bring both to N x N.")


def _labels(samples: Samples) -> np.ndarray:
    return np.array([t for _, t in samples], dtype=np.int64)


def _split_dir(base: Path, names: Sequence[str], name: str, root: Path) -> Path:
    for n in names:
        if (base / n).is_dir():
            return base / n
    raise DatasetNotFoundError(f"{name}: no {' or '.join(n + '/' for n in names)} folder under {base}; point "
                               f"--data-root at a folder in the layout of {LAYOUTS} (data root given: {root}).")


def load_imagefolder(root: Path, image_size: int | None = None, progress: bool | None = None,
                     store: StoreOptions | None = None):
    """``(x_train, y_train, x_test, y_test, files, classes)`` of ``root/train`` and ``root/val`` (or
    ``test``); ``files``: the images' source paths per split."""
    train_dir = _split_dir(root, ("train",), "imagefolder", root)
    test_dir = _split_dir(root, ("val", "test"), "imagefolder", root)
    classes = class_folders(train_dir)
    if len(classes) < 2:
        raise InvalidInputError(f"imagefolder: {train_dir} has {len(classes)} class folder(s); "
                                "the separation needs at least two classes, one folder each.")
    train, test = labelled_images(train_dir, classes), labelled_images(test_dir, classes)
    return decode_splits(train, test, image_size, "imagefolder", progress, store) + (classes,)


def decode_splits(train: Samples, test: Samples, image_size: int | None, name: str, progress: bool | None,
                  store: StoreOptions | None = None):
    """``(x_train, y_train, x_test, y_test, files)`` of two lists of samples, of one image size;
    ``files``: the source paths of the training and the test images, in the arrays' order."""
    x_train = decode([p for p, _ in train], image_size, what=f"{name} train", progress=progress, store=store)
    x_test = decode([p for p, _ in test], image_size, what=f"{name} test", progress=progress, store=store)
    _same_size(x_train, x_test, name)
    files = (tuple(str(p) for p, _ in train), tuple(str(p) for p, _ in test))
    return x_train, _labels(train), x_test, _labels(test), files


def tiny_imagenet_base(root: Path) -> Path:
    """``root/tiny-imagenet-200``, or ``root`` itself when it holds ``wnids.txt``."""
    for base in (root / "tiny-imagenet-200", root):
        if (base / "wnids.txt").is_file():
            return base
    raise DatasetNotFoundError(f"tiny-imagenet: no tiny-imagenet-200/wnids.txt under {root}; unpack "
                               "tiny-imagenet-200.zip (http://cs231n.stanford.edu/tiny-imagenet-200.zip) "
                               "there, or pass --data-root with the folder that holds it.")


def load_tiny_imagenet(root: Path, image_size: int | None = None, progress: bool | None = None,
                       store: StoreOptions | None = None):
    """Tiny-ImageNet's 200 classes: ``train/<wnid>/images/`` and the labelled validation split."""
    base = tiny_imagenet_base(root)
    classes = sorted({w.strip() for w in (base / "wnids.txt").read_text().splitlines() if w.strip()})
    train = []
    for k, c in enumerate(classes):
        found = images_below(base / "train" / c)
        if not found:
            raise InvalidInputError(_empty_class(base / "train" / c))
        train += [(p, k) for p in found]
    notes = base / "val" / "val_annotations.txt"
    if not notes.is_file():
        raise DatasetNotFoundError(f"tiny-imagenet: {notes} is missing; unpack the whole tiny-imagenet-200.zip.")
    index = {c: k for k, c in enumerate(classes)}
    test = []
    for n, line in enumerate(notes.read_text().splitlines(), 1):
        fields = line.split("\t")
        if not line.strip():
            continue
        if len(fields) < 2 or fields[1] not in index:
            raise CorruptDataError(f"tiny-imagenet: line {n} of {notes} is not '<file>\\t<wnid>...' with a wnid "
                                   f"of wnids.txt: {line[:80]!r}; unpack tiny-imagenet-200.zip again.")
        test.append((base / "val" / "images" / fields[0], index[fields[1]]))
    test.sort()
    return decode_splits(train, test, image_size, "tiny-imagenet", progress, store) + (classes,)


def imagenet_base(root: Path, name: str) -> Path:
    """``root/<name>`` when it has ``train/``, else ``root``."""
    return root / name if (root / name / "train").is_dir() else root


def imagenet_samples(root: Path, name: str, *, allow_empty: bool = False) -> tuple[Samples, Samples, list[str], Path]:
    """``(train, val, classes, base)`` of the ILSVRC class folders below ``root/<name>`` (or ``root``);
    ``allow_empty``: class folders without images are allowed (classes that a mapping drops)."""
    base = imagenet_base(root, name)
    train_dir = _split_dir(base, ("train",), name, root)
    val_dir = _split_dir(base, ("val",), name, root)
    classes = class_folders(train_dir)
    if not class_folders(val_dir):
        raise InvalidInputError(f"{name}: {val_dir} has no class folders; ILSVRC's flat val/ must first be sorted "
                                "into one folder per WordNet id (torchvision.datasets.ImageNet does this).")
    return (labelled_images(train_dir, classes, allow_empty=allow_empty),
            labelled_images(val_dir, classes, allow_empty=allow_empty), classes, base)


def load_imagenet(root: Path, image_size: int | None = None, progress: bool | None = None,
                  store: StoreOptions | None = None):
    train, val, classes, _ = imagenet_samples(root, "imagenet")
    return decode_splits(train, val, image_size, "imagenet", progress, store) + (classes,)


__all__ = ["IMG_EXTENSIONS", "LAYOUTS", "class_folders", "decode", "decode_image", "decode_splits", "imagenet_base", "imagenet_samples", "images_below",
           "labelled_images", "load_imagefolder", "load_imagenet", "load_tiny_imagenet", "resize_and_crop",
           "tiny_imagenet_base"]
