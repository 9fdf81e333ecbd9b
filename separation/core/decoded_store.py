"""A decoded, content-addressed store of image files: decode once (in parallel, resumable), then
memory-map the uint8 pixels in every later command.

:func:`decoded_images` turns a list of image files into ``(n, 3, H, W)`` uint8. The first call
decodes them into a store folder; every later call with the same files reads that store back.

* **Content-addressed.** A store is named by the sha256 of the files' *contents* (their blake2b
  digests, in order) and of ``image_size``: a source file that changes, even with the same size
  and modification time, names another store, and is decoded anew. The same images moved to another
  folder reuse their store.
* **Layout** of ``<store root>/<key>/``: ``images.npy`` ``(n, 3, H, W)`` uint8, written in place
  in chunks of ``chunk`` images; ``chunks/<k>.json``, the sha256 of chunk ``k``'s bytes, written
  (atomically) when that chunk is decoded; ``manifest.json``, written last: shape, chunk size,
  every chunk digest, the source files and their digests.
* **Verified when read.** Every chunk of ``images.npy`` is checked against its digest before the
  store is used; a chunk that does not match is decoded again (logged), never used.
* **Read in place by a cluster.** A Dask run on these points (:func:`store_file`) gives its
  workers the path of ``images.npy`` instead of a copy; they read their rows there, verified
  against the run's manifest (:mod:`separation.engines.shards`).
* **Parallel and resumable.** ``workers`` threads decode chunks at once (Pillow releases the GIL
  while it decodes and resizes; each writes its rows of ``images.npy``); an interrupted run keeps
  its finished chunks, and the next run decodes only the rest. An unreadable image or a mix of sizes stops the call with one error, and the
  folders that this call created are removed again.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .arrays import memmap_base
from .errors import CorruptDataError, InvalidInputError
from .faults import fault
from .paths import cache_folder
from .progress import progress_bar
from .records import atomic_write_bytes, atomic_write_json, folder_lock

log = logging.getLogger(__name__)

#: Version of the store layout (part of every key: a new layout never reads an old store).
STORE_VERSION = 1
#: Images per chunk: the unit of parallel work, of resuming and of verification.
CHUNK = 256
_READ = 1 << 20
#: Files per hashing task (a task per file would hold a future per file: a million of them).
HASH_BATCH = 1024


def default_store_root() -> Path:
    """``$SEPARATION_STORE_DIR``, else ``$XDG_CACHE_HOME/separation/decoded`` (``~/.cache/...``)."""
    return cache_folder("SEPARATION_STORE_DIR", "decoded")


def default_workers() -> int:
    """The CPU cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


@dataclasses.dataclass(frozen=True)
class StoreOptions:
    """Where decoded stores live and how they are written: ``root`` (None: :func:`default_store_root`),
    ``workers`` decoding threads (None: :func:`default_workers`), ``chunk`` images per chunk."""

    root: Path | None = None
    workers: int | None = None
    chunk: int = CHUNK

    def __post_init__(self):
        for name, low in (("workers", 1), ("chunk", 1)):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < low):
                raise InvalidInputError(f"{name}={v!r} must be a whole number >= {low} (--{name} N).")

    @property
    def folder(self) -> Path:
        return Path(self.root).expanduser() if self.root is not None else default_store_root()

    @property
    def threads(self) -> int:
        return self.workers if self.workers is not None else default_workers()


def file_digest(path: Path) -> str:
    """blake2b (128 bits) of a file's bytes; an unreadable file is a CorruptDataError naming it."""
    h = hashlib.blake2b(digest_size=16)
    try:
        with open(path, "rb") as f:
            while block := f.read(_READ):
                h.update(block)
    except OSError as exc:
        raise CorruptDataError(f"{path} cannot be read ({exc.strerror or exc}); make it readable or remove it.") from None
    return h.hexdigest()


def _digest_batch(paths: Sequence[Path]) -> list[str]:
    return [file_digest(p) for p in paths]


def _file_digests(paths: list[Path], threads: int, progress, what: str) -> list[str]:
    """:func:`file_digest` of every path, in order, by up to 8 threads; tasks of
    :data:`HASH_BATCH` files, so the pending work stays small however many files there are."""
    batches = [(paths[s:s + HASH_BATCH],) for s in range(0, len(paths), HASH_BATCH)]
    out: list[str] = []
    with progress_bar(total=len(paths), enabled=progress, desc=f"hashing {what}", unit="file") as bar:
        for done in _in_order(_digest_batch, batches, min(8, threads)):
            out += done
            bar.update(len(done))
    return out


def store_key(digests: Sequence[str], image_size: int | None) -> str:
    """The store's name: sha256 of the layout version, ``image_size`` and the files' digests in order."""
    h = hashlib.sha256(f"decoded-store:{STORE_VERSION}:{image_size}:{len(digests)}:".encode())
    h.update(",".join(digests).encode())
    return h.hexdigest()


def _sha(rows: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(rows).data).hexdigest()


def _decode_chunk(decode: Callable, paths: Sequence[Path], image_size: int | None, out: np.ndarray, start: int,
                  what: str, first: Path) -> str:
    """Decode ``paths`` into rows ``start..`` of ``out`` (the store's ``images.npy``, mapped for
    writing; a task, run by a worker thread); returns the sha256 of the rows written. ``what``,
    ``first``: the split and its first file, named when an image's size differs."""
    want = out.shape[2:]
    rows = np.empty((len(paths),) + out.shape[1:], dtype=np.uint8)
    for k, p in enumerate(paths):
        a = decode(Path(p), image_size)
        if a.shape[1:] != want:
            raise InvalidInputError(
                f"{what}: {p} is {a.shape[2]}x{a.shape[1]} but {first} is {want[1]}x{want[0]}; images of several "
                "sizes need --image-size N (image_size=N: shorter side to N*9/8, centre crop N, as in the paper).")
        rows[k] = a
    out[start:start + len(paths)] = rows  # the page cache keeps it if this process is killed
    return _sha(rows)


class _Store:
    """One store folder: its files and what is known about its chunks."""

    def __init__(self, folder: Path, n: int, chunk: int):
        self.folder, self.n, self.chunk = folder, n, chunk
        self.images = folder / "images.npy"
        self.manifest = folder / "manifest.json"
        self.chunks = folder / "chunks"

    def spans(self) -> list[tuple[int, int]]:
        return [(s, min(self.n, s + self.chunk)) for s in range(0, self.n, self.chunk)]

    def read_manifest(self, key: str) -> dict | None:
        try:
            head = json.loads(self.manifest.read_text())
        except (OSError, ValueError):
            return None
        ok = (isinstance(head, dict) and head.get("key") == key and head.get("n") == self.n
              and head.get("chunk") == self.chunk and len(head.get("digests", ())) == len(self.spans()))
        return head if ok else None

    def open(self, shape: tuple[int, ...], mode: str) -> np.ndarray | None:
        try:
            a = np.load(self.images, mmap_mode=mode)
        except (OSError, ValueError):
            return None
        return a if a.shape == shape and a.dtype == np.uint8 else None

    def good_chunks(self, images: np.ndarray, digests: Sequence[str | None]) -> list[bool]:
        """Which chunks of ``images`` hold the bytes of their digest (None: not decoded yet)."""
        return [d is not None and _sha(images[s:e]) == d for (s, e), d in zip(self.spans(), digests)]

    def chunk_digests(self) -> list[str | None]:
        """The digests of the chunks finished so far (``chunks/<k>.json``), None for the others."""
        out: list[str | None] = []
        for k, (s, e) in enumerate(self.spans()):
            try:
                head = json.loads((self.chunks / f"{k}.json").read_text())
            except (OSError, ValueError):
                head = None
            ok = isinstance(head, dict) and head.get("rows") == [s, e] and isinstance(head.get("sha256"), str)
            out.append(head["sha256"] if ok else None)
        return out


def decoded_images(paths: Sequence[Path], image_size: int | None, decode: Callable, *, what: str,
                   options: StoreOptions | None = None, progress: bool | None = None) -> np.ndarray:
    """``(n, 3, H, W)`` uint8 of the image files ``paths``, memory-mapped (read-only) from their
    verified store, decoded into it first where needed (see the module docstring).

    ``decode(path, image_size)`` gives one image as ``(3, H, W)`` uint8 (called by worker threads).
    Without ``image_size`` the first image sets the size that all must share.
    """
    options = options or StoreOptions()
    if not paths:
        raise InvalidInputError(f"{what}: no image files found.")
    paths = [Path(p) for p in paths]
    digests = _file_digests(paths, options.threads, progress, what)
    key = store_key(digests, image_size)
    store = _Store(options.folder / key[:40], len(paths), options.chunk)
    images = _verified(store, key, what)
    if images is not None:
        return images
    first = decode(paths[0], image_size)
    shape = (len(paths),) + tuple(first.shape)
    created = None  # the topmost folder this call creates (removed again after a failure)
    if not store.folder.exists():
        created = store.folder
        while not created.parent.exists():
            created = created.parent
    try:
        with folder_lock(store.folder):  # one decoder per store; a waiting one finds it done
            images = _verified(store, key, what, quiet=True)
            if images is not None:
                return images
            return _fill(store, key, shape, paths, digests, image_size, decode, what, options, progress)
    except (InvalidInputError, CorruptDataError):
        if created is not None:
            shutil.rmtree(created, ignore_errors=True)
        raise


def _verified(store: _Store, key: str, what: str, *, quiet: bool = False) -> np.ndarray | None:
    """The store's images (read-only) when its manifest is there and every chunk matches its
    digest; else None (a mismatch is logged unless ``quiet``)."""
    head = store.read_manifest(key)
    if head is None:
        return None
    images = store.open(tuple(head["shape"]), "r")
    if images is not None and all(store.good_chunks(images, head["digests"])):
        log.info("%s: %d decoded images read from %s", what, store.n, store.folder)
        return images
    if not quiet:
        log.warning("%s: the decoded store %s does not match its digests; the chunks that differ are decoded "
                    "again", what, store.folder)
    return None


def _fill(store: _Store, key: str, shape: tuple[int, ...], paths: list[Path], digests: list[str],
          image_size: int | None, decode: Callable, what: str, options: StoreOptions,
          progress: bool | None) -> np.ndarray:
    """Decode the chunks of ``store`` that are missing or wrong, then write its manifest."""
    store.chunks.mkdir(parents=True, exist_ok=True)
    for stale in store.folder.glob(".images.*.npy"):  # left by a killed run (we hold the lock)
        stale.unlink()
    images = store.open(shape, "r")
    if images is None:
        tmp = store.folder / f".images.{os.getpid()}.npy"
        np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=shape).flush()
        os.replace(tmp, store.images)
        for old in store.chunks.glob("*.json"):
            old.unlink()
        images = store.open(shape, "r")
    done = store.good_chunks(images, store.chunk_digests())
    del images
    spans = store.spans()
    todo = [k for k, ok in enumerate(done) if not ok]
    if any(done):
        log.info("%s: resuming: %d of %d chunks already decoded in %s", what, sum(done), len(spans), store.folder)
    final = store.chunk_digests()
    bar = progress_bar(total=len(paths), initial=sum(e - s for (s, e), ok in zip(spans, done) if ok),
                       enabled=progress, desc=f"decoding {what}", unit="image")
    out = np.load(store.images, mmap_mode="r+")
    jobs = [(decode, paths[s:e], image_size, out, s, what, paths[0]) for s, e in (spans[k] for k in todo)]
    try:
        for k, digest in zip(todo, _in_order(_decode_chunk, jobs, options.threads)):
            atomic_write_json(store.chunks / f"{k}.json", {"rows": list(spans[k]), "sha256": digest})
            final[k] = digest
            bar.update(spans[k][1] - spans[k][0])
            fault("decoded-chunk")
    finally:
        bar.close()
    out.flush()
    del out
    head = {"version": STORE_VERSION, "key": key, "n": len(paths), "shape": list(shape), "chunk": store.chunk,
            "image_size": image_size, "digests": final, "files": [str(p) for p in paths], "file_digests": digests}
    atomic_write_bytes(store.manifest, json.dumps(head, sort_keys=True).encode())
    log.info("%s: %d images decoded into %s", what, len(paths), store.folder)
    return store.open(shape, "r")


def store_file(a: np.ndarray) -> str | None:
    """The ``images.npy`` of a decoded store when ``a`` is the whole of it (any C-contiguous view of
    its memory map, reshaped or not), else None: a cluster run reads those points where they are."""
    base = memmap_base(a)
    if base is None:
        return None
    path = Path(base.filename)
    if path.name != "images.npy" or not (path.parent / "manifest.json").is_file():
        return None
    whole = (a.flags.c_contiguous and a.nbytes == base.nbytes
             and a.__array_interface__["data"][0] == base.__array_interface__["data"][0])
    return str(path) if whole else None


def _in_order(fn: Callable, jobs: list[tuple], workers: int):
    """``fn(*job)`` of every job, yielded in order: in the calling thread when one worker or one
    job, else by ``workers`` threads (at most one per job); what is not started yet is cancelled if
    the caller stops. Threads, not processes: Pillow releases the GIL while it decodes and resizes
    (hashlib while it hashes), and a thread needs neither a process start nor a re-import of the
    caller's main module."""
    if workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            yield fn(*job)
        return
    with ThreadPoolExecutor(max_workers=min(workers, len(jobs)), thread_name_prefix="separation-store") as pool:
        futures = [pool.submit(fn, *job) for job in jobs]
        try:
            for f in futures:
                yield f.result()
        finally:
            for f in futures:
                f.cancel()


__all__ = ["CHUNK", "STORE_VERSION", "StoreOptions", "decoded_images", "default_store_root", "default_workers",
           "file_digest", "store_file", "store_key"]
