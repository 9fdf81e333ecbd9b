"""MNIST and Fashion-MNIST read from their IDX files, verified by content, never unpacked to disk.

The files sit in torchvision's layout, ``<root>/<MNIST|FashionMNIST>/raw/``, compressed
(``train-images-idx3-ubyte.gz``, ...) or already unpacked (``train-images-idx3-ubyte``). A
compressed file must have the md5 torchvision publishes; an unpacked one the sha256 of that
content (:data:`FILES`). Compressed files are decompressed in memory: the data folder is read,
never written. A file that does not match, is truncated or is not IDX is one
:class:`~separation.core.errors.CorruptDataError` that names it and the fix.
"""
from __future__ import annotations

import gzip
import hashlib
import zlib
from pathlib import Path

import numpy as np

from .errors import CorruptDataError

#: Per dataset folder: (file stem, md5 of the ``.gz``, sha256 of the unpacked content).
FILES: dict[str, dict[str, tuple[str, str, str]]] = {
    "MNIST": {
        "train_images": ("train-images-idx3-ubyte", "f68b3c2dcbeaaa9fbdd348bbdeb94873",
                         "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"),
        "train_labels": ("train-labels-idx1-ubyte", "d53e105ee54ea40749a09fcbcd1e9432",
                         "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"),
        "test_images": ("t10k-images-idx3-ubyte", "9fb629c4189551a2d022fa330f9573f3",
                        "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"),
        "test_labels": ("t10k-labels-idx1-ubyte", "ec29112dd5afa0611ce80d1b7f02629c",
                        "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"),
    },
    "FashionMNIST": {
        "train_images": ("train-images-idx3-ubyte", "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                         "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"),
        "train_labels": ("train-labels-idx1-ubyte", "25c81989df183df01b3e8a0aad5dffbe",
                         "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"),
        "test_images": ("t10k-images-idx3-ubyte", "bef4ecab320f06d8554ea6380940ec79",
                        "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"),
        "test_labels": ("t10k-labels-idx1-ubyte", "bb300cfdad3c16e7a12a480ee83cd310",
                        "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"),
    },
}
#: Class names of each dataset, as torchvision names them.
CLASSES = {
    "MNIST": ["0 - zero", "1 - one", "2 - two", "3 - three", "4 - four", "5 - five", "6 - six", "7 - seven",
              "8 - eight", "9 - nine"],
    "FashionMNIST": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                     "Ankle boot"],
}
_UBYTE = 0x08


def parse_idx(data: bytes, where: str) -> np.ndarray:
    """The uint8 array of an IDX file's bytes (magic ``0 0 8 ndim``, big-endian dimensions, data);
    :class:`CorruptDataError` naming ``where`` when the bytes are not that or are truncated."""
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != _UBYTE or not 1 <= data[3] <= 4:
        raise CorruptDataError(f"{where} is not an IDX file of bytes (bad header); delete it and copy or download it again.")
    ndim = data[3]
    head = 4 + 4 * ndim
    if len(data) < head:
        raise CorruptDataError(f"{where} is truncated (its header is cut); delete it and copy or download it again.")
    shape = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    want = int(np.prod(shape, dtype=np.int64))
    if len(data) - head != want:
        raise CorruptDataError(f"{where} holds {len(data) - head:,} bytes of data but its header says {shape} "
                               f"({want:,}): it is truncated or corrupt; delete it and copy or download it again.")
    return np.frombuffer(data, dtype=np.uint8, offset=head).reshape(shape).copy()


def read_verified(raw: Path, stem: str, md5: str, sha256: str, *, verify: bool = True) -> np.ndarray | None:
    """The array of ``raw/<stem>[.gz]`` (the compressed file first), verified by its digest; None
    when neither file is there."""
    gz, plain = raw / f"{stem}.gz", raw / stem
    if gz.is_file():
        data = gz.read_bytes()
        if verify and hashlib.md5(data).hexdigest() != md5:
            raise CorruptDataError(f"{gz} does not have the published content (md5 {hashlib.md5(data).hexdigest()}, "
                                   f"expected {md5}): it is corrupt, truncated or another file; delete it and copy it "
                                   "again (or re-run with --download).")
        try:
            content = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise CorruptDataError(f"{gz} cannot be decompressed ({exc}); delete it and copy it again.") from None
        where = str(gz)
    elif plain.is_file():
        content, where = plain.read_bytes(), str(plain)
    else:
        return None
    if verify and hashlib.sha256(content).hexdigest() != sha256:
        raise CorruptDataError(f"{where} does not hold the published data (its sha256 differs): it is corrupt, "
                               "truncated or altered; delete it and copy the original (or re-run with --download).")
    return parse_idx(content, where)


__all__ = ["CLASSES", "FILES", "parse_idx", "read_verified"]
