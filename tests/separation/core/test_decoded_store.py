"""The decoded store of image-folder datasets: equal to an independent Pillow decode, read back
instead of decoded again, keyed by file content, verified when read, parallel and resumable; fake
PNG/JPEG/BMP trees written by the tests."""
from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from separation.core.datasets import load_dataset
from separation.core.decoded_store import StoreOptions, decoded_images, default_store_root
from separation.core.errors import CorruptDataError, InvalidInputError
from separation.core.image_folders import decode_image

from helpers.paths import REPO


def _tree(root, rng, *, n=(5, 3), fmt="png", size=(6, 5)):
    """``n`` images per class (train, val) of classes a, b; returns the independent decode by split."""
    truth = {"train": [], "val": []}
    for split, count in zip(("train", "val"), n):
        for c in ("a", "b"):
            for i in range(count):
                path = root / split / c / f"{i}.{fmt}"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(rng.integers(0, 256, size + (3,), dtype=np.uint8)).save(path)
                with Image.open(path) as im:
                    truth[split].append(np.asarray(im.convert("RGB")).transpose(2, 0, 1))
    return {k: np.stack(v) for k, v in truth.items()}


def _stores(root):
    return sorted(p for p in root.iterdir() if p.is_dir()) if root.exists() else []


@pytest.mark.parametrize("fmt", ["png", "jpeg"])
def test_the_store_equals_an_independent_decode_and_is_read_back(tmp_path, rng, caplog, fmt):
    """Decoded in chunks of 2 by 2 threads into the store (PNG exact; JPEG through the same
    Pillow decoder); the next load memory-maps the verified store instead of decoding."""
    truth = _tree(tmp_path / "imgs", rng, fmt=fmt)
    options = StoreOptions(root=tmp_path / "stores", workers=2, chunk=2)
    ds = load_dataset("imagefolder", root=tmp_path / "imgs", store=options)
    assert np.array_equal(ds.x_train, truth["train"]) and np.array_equal(ds.x_test, truth["val"])
    assert len(_stores(tmp_path / "stores")) == 2  # one per split
    with caplog.at_level(logging.INFO, logger="separation.core.decoded_store"):
        again = load_dataset("imagefolder", root=tmp_path / "imgs", store=options)
    assert isinstance(again.x_train, np.memmap) and not again.x_train.flags.writeable
    assert np.array_equal(again.x_train, truth["train"]) and again.fingerprint() == ds.fingerprint()
    assert sum("decoded images read from" in r.message for r in caplog.records) == 2
    assert not any("decoded into" in r.message for r in caplog.records)


def test_the_default_store_is_the_users_cache_unless_set(tmp_path, monkeypatch):
    monkeypatch.delenv("SEPARATION_STORE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert default_store_root() == tmp_path / "cache" / "separation" / "decoded"
    monkeypatch.setenv("SEPARATION_STORE_DIR", str(tmp_path / "mine"))
    assert default_store_root() == tmp_path / "mine" == StoreOptions().folder


def test_a_changed_source_file_of_the_same_size_and_time_is_decoded_anew(tmp_path, rng):
    """BMP files of one size have one byte length: the changed file keeps its size and its times,
    and still names another store, decoded from the new content."""
    _tree(tmp_path / "imgs", rng, fmt="bmp")
    path = tmp_path / "imgs" / "train" / "b" / "1.bmp"
    options = StoreOptions(root=tmp_path / "stores", workers=1)
    before = load_dataset("imagefolder", root=tmp_path / "imgs", store=options).x_train.copy()
    stat = path.stat()
    new = rng.integers(0, 256, (6, 5, 3), dtype=np.uint8)
    Image.fromarray(new).save(path)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert path.stat().st_size == stat.st_size and path.stat().st_mtime_ns == stat.st_mtime_ns
    after = load_dataset("imagefolder", root=tmp_path / "imgs", store=options)
    assert np.array_equal(after.x_train[6], new.transpose(2, 0, 1)) and not np.array_equal(before[6], after.x_train[6])
    assert np.array_equal(np.delete(after.x_train, 6, 0), np.delete(before, 6, 0))
    assert len(_stores(tmp_path / "stores")) == 3  # the old train store, the new one, the val store


def test_a_store_changed_on_disk_is_decoded_again_where_it_differs(tmp_path, rng, caplog):
    """Foreign rows of the same size written over one chunk of images.npy: the load notices it by
    the chunk digests, decodes that chunk again, and returns the true images."""
    truth = _tree(tmp_path / "imgs", rng, n=(4, 1))
    options = StoreOptions(root=tmp_path / "stores", workers=1, chunk=3)
    load_dataset("imagefolder", root=tmp_path / "imgs", store=options)
    [train] = [p for p in _stores(tmp_path / "stores") if json.loads((p / "manifest.json").read_text())["n"] == 8]
    images = np.load(train / "images.npy", mmap_mode="r+")
    images[3:6] = truth["train"][[7, 0, 1]]  # other images of the same dataset, same size
    images.flush()
    del images
    with caplog.at_level(logging.INFO, logger="separation.core.decoded_store"):
        ds = load_dataset("imagefolder", root=tmp_path / "imgs", store=options)
    assert np.array_equal(ds.x_train, truth["train"])
    assert any("does not match its digests" in r.message for r in caplog.records)
    assert any("resuming: 2 of 3 chunks" in r.message for r in caplog.records)


_KILLED = """
import sys
from separation.core.datasets import load_dataset
from separation.core.decoded_store import StoreOptions
load_dataset("imagefolder", root=sys.argv[1], store=StoreOptions(root=sys.argv[2], workers=1, chunk=3))
"""


def test_an_interrupted_decoding_resumes_with_the_chunks_it_finished(tmp_path, rng, caplog):
    """A process killed (SIGKILL) right after its first chunk of 3: the next load keeps that chunk
    (verified), decodes the other two, and equals the independent decode."""
    truth = _tree(tmp_path / "imgs", rng, n=(4, 1))
    env = dict(os.environ, SEPARATION_FAULT="kill:decoded-chunk")
    done = subprocess.run([sys.executable, "-c", _KILLED, str(tmp_path / "imgs"), str(tmp_path / "stores")],
                          env=env, cwd=REPO, capture_output=True, text=True)
    assert done.returncode == -9, done.stderr
    [store] = _stores(tmp_path / "stores")
    assert not (store / "manifest.json").exists() and sorted(p.name for p in (store / "chunks").iterdir()) == ["0.json"]
    with caplog.at_level(logging.INFO, logger="separation.core.decoded_store"):
        ds = load_dataset("imagefolder", root=tmp_path / "imgs",
                          store=StoreOptions(root=tmp_path / "stores", workers=1, chunk=3))
    assert np.array_equal(ds.x_train, truth["train"]) and np.array_equal(ds.x_test, truth["val"])
    assert any("resuming: 1 of 3 chunks" in r.message for r in caplog.records)


@pytest.mark.parametrize("n, pool", [(4, False), (5, True)])
def test_worker_threads_decode_only_when_there_are_two_chunks_or_more(tmp_path, rng, n, pool):
    """With 2 workers and chunks of 4: 4 images (one chunk) decode in the calling thread, 5 (two
    chunks) in worker threads; the result is the same."""
    import threading

    paths = []
    for i in range(n):
        paths.append(tmp_path / f"{i}.png")
        Image.fromarray(rng.integers(0, 256, (3, 4, 3), dtype=np.uint8)).save(paths[-1])
    threads = set()

    def decode_noting_thread(path, image_size):
        threads.add(threading.current_thread().name)
        return decode_image(path, image_size)

    x = decoded_images(paths, None, decode_noting_thread, what="t", options=StoreOptions(root=tmp_path / "s", workers=2, chunk=4))
    assert np.array_equal(x, np.stack([decode_image(p, None) for p in paths]))
    workers = {t for t in threads if t.startswith("separation-store")}
    assert bool(workers) == pool and (threading.current_thread().name in threads)  # the shape comes from here


def test_a_failed_decoding_leaves_no_store_and_a_bad_option_is_refused(tmp_path, rng):
    _tree(tmp_path / "imgs", rng)
    bad = tmp_path / "imgs" / "train" / "b" / "2.png"
    bad.write_bytes(bad.read_bytes()[:40])
    with pytest.raises(CorruptDataError, match=r"2\.png is not a readable image"):
        load_dataset("imagefolder", root=tmp_path / "imgs", store=StoreOptions(root=tmp_path / "stores", chunk=2))
    assert _stores(tmp_path / "stores") == []
    for kw in ({"workers": 0}, {"chunk": 0}, {"workers": 1.5}):
        with pytest.raises(InvalidInputError, match="must be a whole number >= 1"):
            StoreOptions(**kw)


def test_the_commands_decode_into_store_dir_and_say_how_to_fix_a_bad_one(tmp_path, rng):
    """``--store-dir`` / ``--workers`` through the command line: the store lands where asked; a
    store folder that is a file, or 0 workers, is one error line, exit 2, nothing written."""
    _tree(tmp_path / "imgs", rng)
    base = [sys.executable, "-m", "separation.compute", "--dataset", "imagefolder", "--data-root",
            str(tmp_path / "imgs"), "--no-progress"]
    ok = subprocess.run(base + ["--store-dir", str(tmp_path / "stores"), "--workers", "2", "--out", str(tmp_path / "out")],
                        cwd=REPO, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert len(_stores(tmp_path / "stores")) == 2
    (tmp_path / "file").write_text("x")
    for extra, message in ((["--store-dir", str(tmp_path / "file")], "--store-dir .* is a file"),
                           (["--workers", "0"], "--workers")):
        bad = subprocess.run(base + extra + ["--out", str(tmp_path / "out2")], cwd=REPO, capture_output=True, text=True)
        assert bad.returncode == 2 and not (tmp_path / "out2").exists()
        last = [line for line in bad.stderr.splitlines() if line.strip()][-1]  # argparse prints its usage first
        assert "error:" in last and re.search(message, last) and "Traceback" not in bad.stderr, bad.stderr


def test_store_file_names_the_store_only_for_its_whole_array(tmp_path, rng):
    """A cluster run may read the points in place only when they are the whole store, in any shape
    (the flat rows the engines use included); slices, copies and other memory maps are copied."""
    from separation.core.decoded_store import store_file

    _tree(tmp_path / "imgs", rng)
    x = load_dataset("imagefolder", root=tmp_path / "imgs").x_train
    path = store_file(x)
    assert path is not None and path.endswith("images.npy") and np.array_equal(np.load(path), x)
    flat = np.ascontiguousarray(np.asarray(x).reshape(len(x), -1))
    assert store_file(x.reshape(len(x), -1)) == store_file(flat) == path
    assert store_file(x[1:]) is None and store_file(x[:-1]) is None and store_file(np.array(x)) is None
    assert store_file(x[[0, 1]]) is None
    np.save(tmp_path / "images.npy", np.asarray(x))  # a memory map of a file that is no decoded store
    assert store_file(np.load(tmp_path / "images.npy", mmap_mode="r")) is None


_LOAD = """
import logging, sys
logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(message)s")
from separation.core.decoded_store import StoreOptions, decoded_images
from separation.core.image_folders import decode_image
from pathlib import Path
paths = sorted(Path(sys.argv[1]).glob("*.png"))
x = decoded_images(paths, None, decode_image, what="t", options=StoreOptions(root=sys.argv[2], workers=1, chunk=2))
print("sum", int(x.sum()))
"""


def test_two_commands_on_one_store_decode_it_once(tmp_path, rng):
    """A second process that asks for a store while the first decodes it waits for the store's
    lock, then reads what the first wrote: one decoder, the same images."""
    import time

    for i in range(5):
        Image.fromarray(rng.integers(0, 256, (3, 4, 3), dtype=np.uint8)).save(tmp_path / f"{i}.png")
    want = sum(int(decode_image(tmp_path / f"{i}.png", None).sum()) for i in range(5))
    args = [sys.executable, "-c", _LOAD, str(tmp_path), str(tmp_path / "stores")]
    first = subprocess.Popen(args, cwd=REPO, stdout=subprocess.PIPE, text=True,
                             env=dict(os.environ, SEPARATION_FAULT="pause:decoded-chunk", SEPARATION_FAULT_DIR=str(tmp_path)))
    while not (tmp_path / "decoded-chunk.paused").exists():
        time.sleep(0.02)
    second = subprocess.Popen(args, cwd=REPO, stdout=subprocess.PIPE, text=True)
    time.sleep(1.0)
    assert second.poll() is None  # waiting for the lock
    (tmp_path / "decoded-chunk.go").touch()
    out1, out2 = first.communicate(timeout=120)[0], second.communicate(timeout=120)[0]
    assert first.returncode == 0 and second.returncode == 0
    assert "decoded into" in out1 and "decoded into" not in out2 and "decoded images read from" in out2
    assert f"sum {want}" in out1 and f"sum {want}" in out2


def test_files_are_hashed_in_batches_in_their_order(tmp_path, monkeypatch):
    """Hashing runs in tasks of HASH_BATCH files (bounded pending work); the digests keep the file
    order at and around the batch size, on one thread and on several."""
    from separation.core import decoded_store

    paths = []
    for k in range(7):
        paths.append(tmp_path / f"{k}.bin")
        paths[-1].write_bytes(bytes([k]) * (k + 1))
    want = [decoded_store.file_digest(p) for p in paths]
    assert len(set(want)) == 7
    for batch in (6, 7, 8, 1):
        monkeypatch.setattr(decoded_store, "HASH_BATCH", batch)
        for threads in (1, 3):
            assert decoded_store._file_digests(paths, threads, False, "files") == want
