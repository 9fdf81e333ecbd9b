"""``--download`` offline: torchvision's URLs are pointed at a local file server that serves small
fake files in the real formats (with their real checksums patched in); a download into a new
folder works for every torchvision-backed dataset, and a failed one is one line, exit 2, nothing
left behind."""
from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import io
import pickle
import struct
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest

from separation import compute, load_dataset
from separation.core.datasets import DownloadError

tvd = pytest.importorskip("torchvision.datasets")


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.fixture
def server(tmp_path):
    """A local HTTP server over ``tmp_path / "www"``; yields (folder, base URL)."""
    www = tmp_path / "www"
    www.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(www))
    handler.log_message = lambda *a, **k: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield www, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def idx_bytes(arr: np.ndarray) -> bytes:
    magic = {1: 0x0801, 3: 0x0803}[arr.ndim]
    return struct.pack(">I", magic) + b"".join(struct.pack(">I", s) for s in arr.shape) + arr.astype(np.uint8).tobytes()


def serve_mnist(monkeypatch, cls, www: Path, url: str, n=(7, 3)):
    """Serve fake IDX archives as the dataset's mirror; the toolkit's table of published digests
    (:data:`separation.core.idx_files.FILES`) names theirs, so they verify like the real ones."""
    from separation.core import idx_files

    rng = np.random.default_rng(0)
    (www / "mnist").mkdir()
    resources, published = [], {}
    for prefix, split, k in (("train", "train", n[0]), ("t10k", "test", n[1])):
        for kind, part, arr in (("images-idx3", "images", rng.integers(0, 256, (k, 28, 28))),
                                ("labels-idx1", "labels", rng.integers(0, 10, k))):
            f = www / "mnist" / f"{prefix}-{kind}-ubyte.gz"
            content = idx_bytes(arr)
            f.write_bytes(gzip.compress(content))
            resources.append((f.name, md5(f)))
            published[f"{split}_{part}"] = (f.name[:-3], md5(f), hashlib.sha256(content).hexdigest())
    monkeypatch.setattr(cls, "mirrors", [f"{url}/mnist/"])
    monkeypatch.setattr(cls, "resources", resources)
    monkeypatch.setitem(idx_files.FILES, cls.__name__, published)


def serve_cifar(monkeypatch, cls, www: Path, url: str, hundred: bool):
    rng = np.random.default_rng(1)
    folder = cls.base_folder
    key = "fine_labels" if hundred else "labels"
    members, train_list, test_list = {}, [], []
    names = ["train", "test"] if hundred else [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for f in names:
        entry = {"data": rng.integers(0, 256, (4, 3072), dtype=np.uint8),
                 key: rng.integers(0, 100 if hundred else 10, 4).tolist()}
        members[f] = pickle.dumps(entry)
        (test_list if "test" in f else train_list).append([f, hashlib.md5(members[f]).hexdigest()])
    meta_name = "meta" if hundred else "batches.meta"
    members[meta_name] = pickle.dumps({"fine_label_names" if hundred else "label_names":
                                       [f"c{i}" for i in range(100 if hundred else 10)]})
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(f"{folder}/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    archive = www / cls.filename
    archive.write_bytes(buf.getvalue())
    monkeypatch.setattr(cls, "url", f"{url}/{cls.filename}")
    monkeypatch.setattr(cls, "tgz_md5", md5(archive))
    monkeypatch.setattr(cls, "train_list", train_list)
    monkeypatch.setattr(cls, "test_list", test_list)
    monkeypatch.setattr(cls, "meta", {**cls.meta, "md5": hashlib.md5(members[meta_name]).hexdigest()})


def serve_svhn(monkeypatch, www: Path, url: str):
    from scipy.io import savemat

    rng = np.random.default_rng(2)
    split_list = dict(tvd.SVHN.split_list)
    for split, n in (("train", 6), ("test", 3)):
        f = www / f"{split}_32x32.mat"
        savemat(f, {"X": rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8),
                    "y": rng.integers(1, 11, (n, 1)).astype(np.uint8)})
        split_list[split] = [f"{url}/{f.name}", f.name, md5(f)]
    monkeypatch.setattr(tvd.SVHN, "split_list", split_list)


SIZES = {"mnist": (7, 3), "fashion-mnist": (7, 3), "cifar10": (20, 4), "cifar100": (4, 4), "svhn": (6, 3)}


@pytest.mark.parametrize("name", list(SIZES))
def test_download_into_a_new_folder(tmp_path, server, monkeypatch, name):
    www, url = server
    if name in ("mnist", "fashion-mnist"):
        serve_mnist(monkeypatch, tvd.MNIST if name == "mnist" else tvd.FashionMNIST, www, url)
    elif name.startswith("cifar"):
        serve_cifar(monkeypatch, tvd.CIFAR10 if name == "cifar10" else tvd.CIFAR100, www, url, name == "cifar100")
    else:
        serve_svhn(monkeypatch, www, url)
    root = tmp_path / "new" / "data"  # does not exist yet
    ds = load_dataset(name, root=root, download=True)
    assert (len(ds.x_train), len(ds.x_test)) == SIZES[name]
    assert not [p for p in root.iterdir() if p.name.startswith(".download-")]
    again = load_dataset(name, root=root)  # now present: no download needed
    np.testing.assert_array_equal(again.x_train, ds.x_train)


def test_download_through_the_command_line(tmp_path, server, monkeypatch, capsys):
    www, url = server
    serve_mnist(monkeypatch, tvd.MNIST, www, url, n=(40, 20))
    root = tmp_path / "fresh"
    argv = ["--dataset", "mnist", "--norm", "linf", "--download", "--data-root", str(root), "--out",
            str(tmp_path / "runs"), "--engine", "reference"]
    assert compute.main(argv) == 0
    assert "record:" in capsys.readouterr().out


@pytest.mark.parametrize("name", ["mnist", "cifar10", "svhn"])
def test_failed_download_is_one_line_and_leaves_nothing(tmp_path, monkeypatch, capsys, name):
    dead = "http://127.0.0.1:9"  # the discard port: connection refused
    if name == "mnist":
        monkeypatch.setattr(tvd.MNIST, "mirrors", [f"{dead}/a/", f"{dead}/b/"])
    elif name == "cifar10":
        monkeypatch.setattr(tvd.CIFAR10, "url", f"{dead}/cifar-10-python.tar.gz")
    else:
        monkeypatch.setattr(tvd.SVHN, "split_list", {k: [f"{dead}/{v[1]}", *v[1:]]
                                                     for k, v in tvd.SVHN.split_list.items()})
    root = tmp_path / "new" / "data"
    with pytest.raises(DownloadError, match=f"could not download {name} from {dead}"):
        load_dataset(name, root=root, download=True)
    assert not (tmp_path / "new").exists()  # nothing half-written, not even the folders
    argv = ["--dataset", name, "--norm", "linf", "--download", "--data-root", str(root), "--out", str(tmp_path / "o")]
    assert compute.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith(f"error: could not download {name} from {dead}")
    assert "put the files at" in err and "refused" in err.lower()
    assert not (tmp_path / "new").exists() and not (tmp_path / "o").exists()
