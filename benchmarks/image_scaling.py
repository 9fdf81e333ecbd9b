"""Image collections at scale on this machine: decoding into the store, its size, and the exact
separation of synthetic stores of growing size, on the local engine and on a local Dask cluster.

1. **Decoding.** Synthetic JPEG files, written once (photo-sized, 500x375, and Tiny-ImageNet-sized,
   64x64), decoded into a decoded store through the paper's pipeline (``--image-size``) by 1 and
   by 2 worker threads: images per second, per worker, and the store's bytes per image.
2. **Separation.** CIFAR-shaped synthetic images (32x32x3, 10 classes), ``n`` training points and
   ``n/5`` test points, memory-mapped from a ``.npy`` store: train--train + test--train in l-inf and
   l2 on the ``cpu`` engine and on ``DaskEngine("local:2")`` (its time includes writing the
   cluster's data store; the cluster is started before the clock).

The page states the extrapolation to ImageNet sizes from the largest measured store, with its
assumption (time proportional to pairs times dimensions). ``--max-seconds S`` leaves out a run
whose time, carried from the smaller sizes, would exceed ``S``; its row says so and why.

    python benchmarks/image_scaling.py --sizes 10000 40000
"""
from __future__ import annotations

import argparse
import dataclasses
import itertools
import math
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from publish import add_output_arguments, publish  # noqa: E402
from separation import compute_separation  # noqa: E402
from separation.core.decoded_store import StoreOptions, decoded_images  # noqa: E402
from separation.core.image_folders import decode_image  # noqa: E402
from separation.core.records import load_record, run_metadata  # noqa: E402
from separation.core.records.benchmark import BenchmarkConfig, BenchmarkResult, BenchmarkRow  # noqa: E402
from separation.engines import DaskEngine  # noqa: E402

from separation_engines import cifar_shaped  # noqa: E402

DECODE = "Decoding JPEG files into the store"
SEPARATION = "Separation of synthetic 32x32x3 stores (train–train + test–train)"
EXTRAPOLATION = ("Extrapolation, from the two largest stores (assumptions: the time keeps growing as measured "
                 "between them, or at worst as the number of pairs, n^2; it grows in proportion to the values per "
                 "image; synthetic images prune differently from real ones):")
#: (name, training images, test images, values per image) of the extrapolation
TARGETS = [("ImageNet-64 (64x64x3)", 1_281_167, 50_000, 64 * 64 * 3),
           ("ImageNet-1k at 224 (224x224x3)", 1_281_167, 50_000, 224 * 224 * 3)]


def write_jpegs(folder: Path, n: int, size: tuple[int, int], seed: int) -> list[Path]:
    """``n`` smooth random RGB JPEG files (quality 90) of ``size`` (width, height)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k in range(n):
        low = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
        img = Image.fromarray(low).resize(size, Image.Resampling.BILINEAR)
        paths.append(folder / f"{k:06d}.jpg")
        img.save(paths[-1], quality=90)
    return paths


def decode_rows(tmp: Path, n: int, image_size: int) -> list[BenchmarkRow]:
    rows = []
    for label, size in (("500x375", (500, 375)), ("64x64", (64, 64))):
        paths = write_jpegs(tmp / f"jpeg-{label}", n, size, seed=len(rows))
        for workers in (1, 2):
            store = tmp / f"store-{label}-{workers}"
            t0 = time.perf_counter()
            x = decoded_images(paths, image_size, decode_image, what=label,
                               options=StoreOptions(root=store, workers=workers), progress=False)
            seconds = time.perf_counter() - t0
            nbytes = sum(p.stat().st_size for p in store.rglob("*") if p.is_file())
            rows.append(BenchmarkRow(DECODE, f"{n} JPEG files of {label} to {image_size}x{image_size}",
                                     f"{workers} worker(s)", round(seconds, 3), None,
                                     {"images/s": round(n / seconds, 1),
                                      "images/s per worker": round(n / seconds / workers, 1),
                                      "store bytes per image": round(nbytes / n, 1),
                                      "pixel bytes per image": int(x[0].size)}))
            print(rows[-1], flush=True)
    return rows


def measured(rows: list[BenchmarkRow], norm: str, competitor: str) -> list[BenchmarkRow]:
    """The separation rows of ``norm`` and ``competitor`` that ran, by increasing ``n``."""
    return sorted((r for r in rows if r.section == SEPARATION and r.seconds and r.metrics["norm"] == norm
                   and r.competitor == competitor), key=lambda r: r.metrics["n"])


def growth(mine: list[BenchmarkRow]) -> float:
    """``k`` of ``t ~ n^k`` between the two largest of ``mine`` (:func:`measured`, two at least)."""
    a, b = mine[-2], mine[-1]
    return math.log(b.seconds / a.seconds) / math.log(b.metrics["n"] / a.metrics["n"])


def projection(rows: list[BenchmarkRow], n: int, norm: str, competitor: str) -> tuple[float, str] | None:
    """``(seconds, how)``: the time of ``n`` images carried from the largest measured store of
    ``norm`` and ``competitor`` at the growth between the two largest (at ``n^2``, the number of
    pairs, from one); None where none ran."""
    mine = measured(rows, norm, competitor)
    if not mine:
        return None
    k, how = (growth(mine), "the growth between the two largest sizes") if len(mine) > 1 else (2.0, "the pairs")
    seconds = mine[-1].seconds * (n / mine[-1].metrics["n"]) ** k
    return seconds, f"n^{k:.2f} from {mine[-1].metrics['n']} images ({how})"


def left_out(rows: list[BenchmarkRow], n: int, norms: list[str], competitors: tuple[str, ...],
             max_seconds: float | None) -> dict[tuple[str, str], str]:
    """``{(norm, competitor): why}`` of the runs of ``n`` images whose :func:`projection` exceeds
    ``max_seconds`` (None: none left out)."""
    skip = {}
    for norm, competitor in itertools.product(norms, competitors):
        guess = projection(rows, n, norm, competitor)
        if max_seconds is not None and guess is not None and guess[0] > max_seconds:
            skip[norm, competitor] = (f"not run: {guess[0] / 3600:.1f} hours projected ({guess[1]}), "
                                      f"over --max-seconds {max_seconds:g}")
    return skip


def separation_rows(tmp: Path, sizes: list[int], norms: list[str], workers: int,
                    max_seconds: float | None = None) -> list[BenchmarkRow]:
    """Rows of every size, norm and competitor; one whose :func:`projection` exceeds ``max_seconds``
    is not run (its row says so)."""
    rows = []
    competitors = ("cpu", f"dask local:{workers}")
    with DaskEngine(f"local:{workers}", inner="cpu", shard_dir=tmp / "warm") as engine:
        tiny = np.zeros((8, 3, 32, 32), np.uint8)
        compute_separation(tiny, np.arange(8) % 2, norm="linf", engine=engine)  # workers warm
        for n in sizes:
            metrics = {"store MiB": round((n + n // 5) * 3072 / 2**20, 1), "n": n, "n_test": n // 5, "d": 3072}
            skip = left_out(rows, n, norms, competitors, max_seconds)
            if len(skip) < len(norms) * len(competitors):
                x, y, xt, yt = cifar_shaped(n, n // 5, seed=n)
                np.save(tmp / f"x-{n}.npy", x)
                np.save(tmp / f"xt-{n}.npy", xt)
                # from here on only the memory-mapped files: no name may keep the generated array alive
                x, xt = np.load(tmp / f"x-{n}.npy", mmap_mode="r"), np.load(tmp / f"xt-{n}.npy", mmap_mode="r")
            for norm in norms:
                answers = {}
                for competitor in competitors:
                    group = f"{n}+{n // 5} images, {norm}"
                    if (norm, competitor) in skip:
                        rows.append(BenchmarkRow(SEPARATION, group, competitor, None, None, {**metrics, "norm": norm},
                                                 error=skip[norm, competitor]))
                        print(rows[-1], flush=True)
                        continue
                    if competitor != "cpu":
                        engine.shard_dir = tmp / f"shards-{n}-{norm}"
                    t0 = time.perf_counter()
                    r = compute_separation(x, y, xt, yt, norm=norm, engine="cpu" if competitor == "cpu" else engine)
                    seconds = time.perf_counter() - t0
                    answers[competitor] = (r.train_distances, r.test_distances)
                    same = (all(np.array_equal(a, b) for a, b in zip(answers[competitor], answers["cpu"]))
                            if "cpu" in answers else None)
                    rows.append(BenchmarkRow(SEPARATION, group, competitor, round(seconds, 3), same,
                                             {**metrics, "norm": norm}))
                    print(rows[-1], flush=True)
            for name in ("x", "xt"):
                (tmp / f"{name}-{n}.npy").unlink(missing_ok=True)
    return rows


def extrapolation(rows: list[BenchmarkRow]) -> list[str]:
    """Notes: per norm and competitor, the growth exponent ``k`` of the time between the two largest
    measured stores (``t ~ n^k``), and the times it and ``k = 2`` give at ImageNet sizes."""
    notes = []
    ran = [r for r in rows if r.section == SEPARATION and r.seconds]
    pairs = sorted({(r.metrics["norm"], r.competitor) for r in ran})
    for (norm, competitor), target in itertools.product(pairs, TARGETS):
        mine = measured(ran, norm, competitor)
        if len(mine) < 2:
            continue
        (a, b), k = mine[-2:], growth(mine)
        name, n, _, d = target
        hours = [b.seconds * (n / b.metrics["n"]) ** e * d / b.metrics["d"] / 3600 for e in (k, 2.0)]
        notes.append(f"{norm}, {competitor}: time grew as n^{k:.2f} from {a.metrics['n']} to {b.metrics['n']} "
                     f"images; {name}: {hours[0]:,.1f} hours at that growth, {hours[1]:,.0f} hours at n^2")
    return notes


def get_args_parser():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[10000, 40000], help="training images per store")
    p.add_argument("--norms", nargs="+", default=["linf", "l2"], choices=["linf", "l2", "l1"])
    p.add_argument("--decode-images", type=int, default=1000, help="JPEG files per decoding workload")
    p.add_argument("--image-size", type=int, default=32, help="--image-size of the decoding workloads")
    p.add_argument("--workers", type=int, default=2, help="local Dask workers")
    p.add_argument("--max-seconds", type=float, default=None,
                   help="do not run a separation whose time, carried from the smaller sizes, would exceed this "
                        "(its row says so; default: run every one)")
    p.add_argument("--republish", action="store_true",
                   help="recompute the notes of the stored record (--out/--name) from its rows; measures nothing")
    add_output_arguments(p, "image_scaling")
    return p


def republish(args) -> int:
    """The notes of the stored record recomputed from its measured rows (nothing is measured)."""
    rec = load_record(Path(args.out) / args.name)
    notes = [n for n in rec.result.notes if not n.startswith(("Extrapolation", "l2,", "linf,", "l1,"))]
    result = dataclasses.replace(rec.result, notes=notes + [EXTRAPOLATION] + extrapolation(rec.result.rows))
    publish(args, args.name, rec.config, result, rec.meta)
    return 0


def main(argv=None):
    args = get_args_parser().parse_args(argv)
    if args.republish:
        return republish(args)
    tmp = Path(tempfile.mkdtemp(prefix="image-scaling-"))
    try:
        rows = decode_rows(tmp, args.decode_images, args.image_size)
        rows += separation_rows(tmp, args.sizes, args.norms, args.workers, args.max_seconds)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    meta = run_metadata()
    notes = ["Decoding: each image is read, decoded by Pillow, resized (shorter side to N*9/8, bilinear) and "
             "centre-cropped to N x N, then written to the store with its chunk digests; the store bytes include "
             "the chunk and manifest files.",
             "Separation: `agrees` compares every distance with the cpu engine's. The Dask time includes writing "
             "the cluster's data store from the memory-mapped arrays.",
             EXTRAPOLATION] + extrapolation(rows)
    result = BenchmarkResult(device=f"{meta.hardware.cpus}-core {platform.machine()} CPU", rows=rows,
                             baselines=["1 worker(s)", "cpu"], title="Image collections at scale",
                             description=__doc__.split("\n\n")[1], notes=notes)
    config = BenchmarkConfig(args.name, "benchmarks/image_scaling.py", list(argv if argv is not None else sys.argv[1:]),
                             {"sizes": args.sizes, "norms": args.norms, "decode_images": args.decode_images,
                              "image_size": args.image_size, "workers": args.workers,
                              "max_seconds": args.max_seconds})
    publish(args, args.name, config, result, meta)
    return 0


if __name__ == "__main__":
    sys.exit(main())
