"""Datasets as uint8 (or float) arrays in channel-first layout, loaded through torchvision.

Every loader returns a :class:`Dataset` whose images are ``(n, C, H, W)``: ``uint8`` for 8-bit
data (distances are then reported in value/255 units), float64 in [0, 1] otherwise (``digits``).
"""
from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import zipfile
from pathlib import Path
from typing import Callable

import numpy as np

from .extras import require
from .download import download_into, torchvision_url
from .idx_files import CLASSES, FILES, read_verified
from .decoded_store import StoreOptions
from .image_folders import LAYOUTS, decode_splits, imagenet_samples, load_imagefolder, load_imagenet, load_tiny_imagenet
from .errors import CorruptDataError, DatasetNotFoundError, DownloadError, InvalidInputError
from .paths import cache_folder
from .records import DataSpec

log = logging.getLogger(__name__)

#: Restricted ImageNet: super-class -> inclusive ranges of ImageNet class indices (sorted WordNet ids).
RESTRICTED_IMAGENET_RANGES = {
    "dog": (151, 268), "cat": (281, 285), "frog": (30, 32), "turtle": (33, 37), "bird": (80, 100),
    "primate": (365, 382), "fish": (389, 397), "crab": (118, 121), "insect": (300, 319),
}


@dataclasses.dataclass
class Dataset:
    """A labelled train/test split. ``x_*``: ``(n, C, H, W)`` uint8 or float64 in [0, 1]."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray | None
    y_test: np.ndarray | None
    classes: list[str]
    source: str = ""
    #: source file of each training / test image, in the arrays' order (image-folder datasets)
    train_files: tuple[str, ...] | None = None
    test_files: tuple[str, ...] | None = None

    @property
    def image_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    def fingerprint(self, *, train_only: bool = False) -> str:
        """sha256 over the arrays (shapes, dtypes and bytes): identifies the exact data a record
        was computed on; ``train_only``: over the training split alone."""
        h = hashlib.sha256()
        arrays = (self.x_train, self.y_train) + (() if train_only else (self.x_test, self.y_test))
        for a in arrays:
            if a is not None:
                h.update(str(a.shape).encode() + str(a.dtype).encode())
                step = max(1, (64 << 20) // max(1, a[:1].nbytes))  # rows: memory-mapped stores stay on disk
                for s in range(0, len(a), step):
                    h.update(np.ascontiguousarray(a[s:s + step]).data)
        return h.hexdigest()

    def spec(self, *, with_test: bool = True, subset: int | None = None, seed: int = 0,
             labels: str = "given") -> DataSpec:
        """What a record says about its data: the fingerprint (over the arrays actually used; the
        test split counts only ``with_test``), shape and sizes, and how the data was derived."""
        test = with_test and self.x_test is not None
        data = self if test else dataclasses.replace(self, x_test=None, y_test=None)
        return DataSpec(dataset=self.name, fingerprint=data.fingerprint(), image_shape=tuple(self.image_shape),
                        n_train=int(len(self.x_train)), n_test=int(len(self.x_test)) if test else 0,
                        subset=subset, seed=int(seed), labels=labels,
                        train_fingerprint=self.fingerprint(train_only=True))

    def subset(self, n: int | None, *, seed: int = 0) -> Dataset:
        """A fixed random subset of ``n`` training and ``n`` test points (sorted indices)."""
        if n is None:
            return self
        if n < 2:
            raise InvalidInputError("--subset must be at least 2.")
        rng = np.random.default_rng(seed)
        itr = np.sort(rng.choice(len(self.x_train), min(n, len(self.x_train)), replace=False))
        pick = (lambda files, idx: None if files is None else tuple(files[i] for i in idx))
        out = dataclasses.replace(self, x_train=self.x_train[itr], y_train=self.y_train[itr],
                                  train_files=pick(self.train_files, itr))
        if self.x_test is not None:
            ite = np.sort(rng.choice(len(self.x_test), min(n, len(self.x_test)), replace=False))
            out = dataclasses.replace(out, x_test=self.x_test[ite], y_test=self.y_test[ite],
                                      test_files=pick(self.test_files, ite))
        return out

    def file_of(self, split: str, index: int) -> str:
        """The source file of image ``index`` of ``split`` ("train" or "test"); for datasets read
        from image folders (others have no files: InvalidInputError)."""
        files = self.train_files if split == "train" else self.test_files if split == "test" else None
        if files is None:
            raise InvalidInputError(f"{self.name} has no source file per image for split {split!r}; image "
                                    "paths exist for datasets read from image folders (train or test).")
        return files[index]

    def with_random_labels(self, seed: int) -> Dataset:
        """The random-label control: the same images with the training labels (and, separately,
        the test labels) permuted under ``seed``. Class sizes are kept; whatever separation is left
        is not due to the labels."""
        rng = np.random.default_rng(seed)
        out = dataclasses.replace(self, y_train=self.y_train[rng.permutation(len(self.y_train))])
        if self.y_test is not None:
            out = dataclasses.replace(out, y_test=self.y_test[rng.permutation(len(self.y_test))])
        return out


def default_data_root() -> Path:
    """``$SEPARATION_DATA_ROOT``, else ``$XDG_CACHE_HOME/separation/data`` (``~/.cache/...``)."""
    return cache_folder("SEPARATION_DATA_ROOT", "data")


def _nchw(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim == 3:
        x = x[:, None]
    return np.ascontiguousarray(x)


def _permissive(cls):
    """A torchvision dataset class whose checksum test only asks that the files exist."""

    class Unchecked(cls):
        def _load_meta(self):  # CIFAR: read the label names without their md5
            import pickle

            with open(Path(self.root) / self.base_folder / self.meta["filename"], "rb") as f:
                data = pickle.load(f, encoding="latin1")
            self.classes = data[self.meta["key"]]
            self.class_to_idx = {c: i for i, c in enumerate(self.classes)}

        def _check_integrity(self):  # CIFAR, SVHN
            folder = getattr(self, "base_folder", "")
            root = Path(self.root) / folder
            files = [f for f, _ in getattr(self, "train_list", []) + getattr(self, "test_list", [])]
            if not files:  # SVHN: one .mat file per split
                files = [self.filename]
            return all((root / f).exists() for f in files)

    Unchecked.__name__ = cls.__name__
    return Unchecked


def _not_found(name: str, root: Path, what: str) -> DatasetNotFoundError:
    return DatasetNotFoundError(
        f"{name}: {what} not found under {root}. Pass --download (download=True) to fetch it, or "
        f"point --data-root / $SEPARATION_DATA_ROOT at a folder in torchvision's layout.")


def _load_mnist_like(name: str, cls_name: str, root: Path, download: bool, check_integrity: bool):
    """MNIST / Fashion-MNIST from ``root/<cls_name>/raw`` (compressed or unpacked IDX files), verified
    by content and decompressed in memory (:mod:`.idx_files`): the data folder is never written,
    except by an explicit ``download``."""
    raw = root / cls_name / "raw"
    files = FILES[cls_name]

    def read_all():
        return {part: read_verified(raw, *files[part], verify=check_integrity) for part in files}

    arrays = read_all()
    missing = [files[p][0] for p, a in arrays.items() if a is None]
    if missing:
        if not download:
            raise _not_found(name, root, f"{cls_name}/raw/{missing[0]}.gz")
        tvd = require("torchvision.datasets", f"downloading {name}")

        cls = getattr(tvd, cls_name)
        download_into(name, root, lambda tmp: cls(str(tmp), train=True, download=True),
                      url=torchvision_url(cls), where=str(raw))
        arrays = read_all()
    splits = {}
    for split in ("train", "test"):
        x, y = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if x is None or y is None or len(x) != len(y):
            raise CorruptDataError(f"{name}: the {split} images and labels under {raw} do not match "
                                   f"({None if x is None else len(x)} vs {None if y is None else len(y)}); "
                                   "copy the original files again.")
        splits[split] = (_nchw(x), y.astype(np.int64))
    return Dataset(name, *splits["train"], *splits["test"], classes=list(CLASSES[cls_name]),
                   source=f"IDX files in {raw}")


def _load_cifar(name: str, cls_name: str, root: Path, download: bool, check_integrity: bool):
    tvd = require("torchvision.datasets", f"loading {name}")

    real = getattr(tvd, cls_name)
    cls = real if check_integrity else _permissive(real)
    splits = {}
    for train in (True, False):
        try:
            ds = cls(str(root), train=train, download=False)
        except RuntimeError:
            if (root / cls.base_folder).exists():
                raise CorruptDataError(
                    f"{name}: files under {root / cls.base_folder} are corrupt or incomplete "
                    "(checksum mismatch). Delete that folder and re-run with --download.") from None
            if not download:
                raise _not_found(name, root, cls.base_folder) from None
            download_into(name, root, lambda tmp: real(str(tmp), train=True, download=True),
                          url=torchvision_url(real), where=str(root / cls.base_folder))
            ds = cls(str(root), train=train, download=False)
        x = np.ascontiguousarray(np.asarray(ds.data).transpose(0, 3, 1, 2))  # NHWC -> NCHW
        splits[train] = (x, np.asarray(ds.targets, dtype=np.int64))
    return Dataset(name, *splits[True], *splits[False], classes=list(ds.classes),
                   source=f"torchvision.datasets.{cls_name}({root})")


def _load_svhn(name: str, root: Path, download: bool, check_integrity: bool):
    tvd = require("torchvision.datasets", f"loading {name}")

    cls = tvd.SVHN if check_integrity else _permissive(tvd.SVHN)
    folder = root / "SVHN"  # torchvision keeps SVHN's .mat files directly in the root it is given
    splits = {}
    for split in ("train", "test"):
        try:
            ds = cls(str(folder), split=split, download=False)
        except RuntimeError:
            if (folder / cls.split_list[split][1]).exists():
                raise CorruptDataError(f"{name}: {folder / cls.split_list[split][1]} is corrupt (checksum "
                                 "mismatch). Delete it and re-run with --download.") from None
            if not download:
                raise _not_found(name, root, f"SVHN/{cls.split_list[split][1]}") from None
            download_into(name, root, lambda tmp: tvd.SVHN(str(tmp / "SVHN"), split=split, download=True),
                          url=tvd.SVHN.split_list[split][0], where=str(folder))
            ds = cls(str(folder), split=split, download=False)
        splits[split] = (np.ascontiguousarray(ds.data), np.asarray(ds.labels, dtype=np.int64))
    return Dataset(name, *splits["train"], *splits["test"], classes=[str(i) for i in range(10)],
                   source=f"torchvision.datasets.SVHN({folder})")


def _restricted_imagenet_targets(class_names: list[str]) -> tuple[dict[int, int], list[str]]:
    """Map ImageFolder class indices to the 9 super-classes (index -> super index)."""
    supers = list(RESTRICTED_IMAGENET_RANGES)
    if set(class_names) <= set(supers):  # already grouped: one folder per super-class
        return {i: supers.index(c) for i, c in enumerate(class_names)}, supers
    if len(class_names) != 1000:
        raise InvalidInputError(
            f"restricted-imagenet: found {len(class_names)} class folders; expected the 1000 ImageNet "
            "WordNet-id folders (n01440764, ...) or one folder per super-class "
            f"({', '.join(supers)}).")
    mapping = {}
    for s, (lo, hi) in enumerate(RESTRICTED_IMAGENET_RANGES.values()):
        for i in range(lo, hi + 1):
            mapping[i] = s
    return mapping, supers


def _load_restricted_imagenet(root: Path, image_size: int | None, progress: bool | None,
                              store: StoreOptions | None = None) -> Dataset:
    """The ImageNet class folders mapped to the 9 super-classes; ``image_size`` default 64 (the paper's)."""
    name = "restricted-imagenet"
    # a super-class needs images, not each of its wnid folders (nor the wnids it drops)
    train, val, classes_found, base = imagenet_samples(root, name, allow_empty=True)
    mapping, classes = _restricted_imagenet_targets(classes_found)
    kept = []
    for split, samples in (("train", train), ("val", val)):
        kept.append([(p, mapping[t]) for p, t in samples if t in mapping])
        if not kept[-1]:
            raise InvalidInputError(f"restricted-imagenet: no images of the 9 super-classes in {base / split}.")
    *arrays, (train_files, test_files) = decode_splits(*kept, 64 if image_size is None else image_size, name, progress,
                                                           store)
    return Dataset(name, *arrays, classes=classes, source=f"ImageFolder({base})",
                   train_files=train_files, test_files=test_files)


def _folder_dataset(name: str, loader: Callable):
    def load(root: Path, image_size: int | None, progress: bool | None, store: StoreOptions | None = None) -> Dataset:
        *arrays, (train_files, test_files), classes = loader(root, image_size, progress, store)
        return Dataset(name, *arrays, classes=list(classes), source=f"{name} image folders ({root})",
                       train_files=train_files, test_files=test_files)
    return load


def _load_digits(name: str, root: Path, download: bool, check_integrity: bool):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    x = (bunch.images / 16.0)[:, None].astype(np.float64)  # 0..16 grey levels -> [0, 1]
    y = bunch.target.astype(np.int64)
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.25, random_state=0, stratify=y)
    return Dataset(name, np.ascontiguousarray(xtr), ytr, np.ascontiguousarray(xte), yte,
                   classes=[str(i) for i in range(10)],
                   source="sklearn.datasets.load_digits (stratified 75/25 split, random_state=0)")


def load_npz(path: str | os.PathLike, name: str = "npz") -> Dataset:
    """A user file with ``x_train, y_train`` and optionally ``x_test, y_test``."""
    path = Path(path)
    if not path.is_file():
        raise DatasetNotFoundError(f"npz: file {path} not found. Pass --npz PATH to an existing .npz file.")
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise CorruptDataError(f"npz: {path} is not a readable .npz file ({exc}).") from None
    missing = [k for k in ("x_train", "y_train") if k not in arrays]
    if missing:
        raise InvalidInputError(f"npz: {path} lacks {', '.join(missing)}; it must hold x_train, y_train "
                         f"(and optionally x_test, y_test). Found: {', '.join(arrays) or 'nothing'}.")
    if ("x_test" in arrays) != ("y_test" in arrays):
        raise InvalidInputError("npz: give both x_test and y_test, or neither.")
    for split in ("train", "test"):
        x, y = arrays.get(f"x_{split}"), arrays.get(f"y_{split}")
        if x is None:
            continue
        if x.ndim < 2 or len(x) == 0:
            raise InvalidInputError(f"npz: x_{split} in {path} is empty or not points (shape {x.shape}); it must hold "
                                    "at least one point (n, *features) -- a test split without points can be left out.")
        if y.reshape(-1).shape[0] != len(x):
            raise InvalidInputError(f"npz: x_{split} has {len(x)} points but y_{split} has {y.size} labels in {path}; "
                                    "they must have the same length.")
    x_test = arrays.get("x_test")
    return Dataset(name, arrays["x_train"], arrays["y_train"].reshape(-1),
                   x_test, None if x_test is None else arrays["y_test"].reshape(-1),
                   classes=[str(c) for c in np.unique(arrays["y_train"])], source=str(path))


DATASETS: dict[str, Callable] = {
    "mnist": lambda r, d, c: _load_mnist_like("mnist", "MNIST", r, d, c),
    "fashion-mnist": lambda r, d, c: _load_mnist_like("fashion-mnist", "FashionMNIST", r, d, c),
    "cifar10": lambda r, d, c: _load_cifar("cifar10", "CIFAR10", r, d, c),
    "cifar100": lambda r, d, c: _load_cifar("cifar100", "CIFAR100", r, d, c),
    "svhn": lambda r, d, c: _load_svhn("svhn", r, d, c),
    "digits": lambda r, d, c: _load_digits("digits", r, d, c),
}
#: Collections of image files (:mod:`.image_folders`): ``loader(root, image_size, progress, store)``. They
#: take ``image_size``, are decoded into a store (:mod:`.decoded_store`) and are never downloaded.
FOLDER_DATASETS: dict[str, Callable] = {
    "imagefolder": _folder_dataset("imagefolder", load_imagefolder),
    "tiny-imagenet": _folder_dataset("tiny-imagenet", load_tiny_imagenet),
    "imagenet": _folder_dataset("imagenet", load_imagenet),
    "restricted-imagenet": _load_restricted_imagenet,
}
DATASET_NAMES = tuple(DATASETS) + tuple(FOLDER_DATASETS) + ("npz",)


def load_dataset(name: str, *, root: str | os.PathLike | None = None, download: bool = False,
                 check_integrity: bool = True, npz_path: str | os.PathLike | None = None,
                 image_size: int | None = None, progress: bool | None = None,
                 store: StoreOptions | None = None) -> Dataset:
    """Load a dataset by name (see :data:`DATASET_NAMES`).

    Args:
        root: data folder in torchvision's layout; default: :func:`default_data_root`.
        download: let torchvision download missing files (never done otherwise).
        check_integrity: verify torchvision's md5 checksums (turn off only for test fixtures).
        npz_path: the file, for ``name="npz"``.
        image_size: image-folder datasets only (:data:`FOLDER_DATASETS`): resize the shorter side
            to ``image_size * 9 / 8`` and crop the centre ``image_size`` square (the paper's pipeline).
        progress: a bar while image files are decoded (None: where a person watches).
        store: image-folder datasets only: where their decoded store lives and how many processes
            decode (:class:`~separation.core.decoded_store.StoreOptions`; default: the cache folder,
            every core).
    """
    if name not in DATASET_NAMES:
        raise InvalidInputError(f"Unknown dataset {name!r}. Choose one of: {', '.join(DATASET_NAMES)}.")
    if image_size is not None and name not in FOLDER_DATASETS:
        raise InvalidInputError(f"--image-size applies to the image-folder datasets ({', '.join(FOLDER_DATASETS)}); "
                                f"{name} has a fixed image size: leave --image-size out.")
    if image_size is not None and (isinstance(image_size, bool) or not isinstance(image_size, (int, np.integer))
                                   or image_size < 1):
        raise InvalidInputError(f"image_size={image_size!r} must be a positive whole number of pixels.")
    if name == "npz":
        if npz_path is None:
            raise InvalidInputError("dataset 'npz' needs a file: pass --npz PATH (npz_path=...).")
        return load_npz(npz_path)
    root = Path(root).expanduser() if root is not None else default_data_root()
    if name in FOLDER_DATASETS:
        if download:
            raise InvalidInputError(f"{name} cannot be downloaded by the toolkit: place its image folders under "
                                    f"--data-root (layouts: {LAYOUTS}) and leave --download out.")
        if not root.is_dir():
            raise DatasetNotFoundError(f"{name}: the data root {root} is not a folder; point --data-root at the "
                                       f"folder that holds its images (layouts: {LAYOUTS}).")
        ds = FOLDER_DATASETS[name](root, image_size, progress, store)
    else:
        ds = DATASETS[name](root, download, check_integrity)
    for split, x in (("train", ds.x_train), ("test", ds.x_test)):
        if x is not None and len(x) == 0:
            raise InvalidInputError(f"{name}: the {split} split is empty under {root}.")
    return ds


__all__ = ["DATASETS", "DATASET_NAMES", "Dataset", "FOLDER_DATASETS", "DatasetNotFoundError", "DownloadError", "RESTRICTED_IMAGENET_RANGES",
           "default_data_root", "load_dataset", "load_npz"]
