"""The CPU engines against this machine's measured roofline, in one run.

1. **Peaks**: what the arithmetic of each norm reaches here with no pruning and the data in cache
   (a numba brute-force kernel: byte ``|a - b|`` then max for l-inf, then add for l1; the int8,
   float32 and float64 GEMMs l2 can use), and the memory bandwidth, on 1 thread and on all.
2. **Engines on a full dataset** (train--train + test--train, MNIST by default), per norm: seconds,
   the rate in pair-dims/s of the work a brute force must do (every cross-class pair once, times the
   dimension), that rate as a fraction of the norm's peak, and the share of pairs whose distance was
   fully computed (the rest were pruned); above 1 the algorithm beats the arithmetic.
3. **Range search** (train--train), per norm: the default engine's range search at the radius the
   robustness bounds run at, at the same rate measure as its nearest-neighbour search beside it.
4. **Competitors on a subset**, same arrays, per norm: scikit-learn's brute force (the paper's
   route), faiss-cpu ``IndexFlat`` and ``torch.cdist`` beside the default engine; whether each
   gives every point the same distance.

    python benchmarks/roofline.py --data-root ./data
"""
from __future__ import annotations

import argparse
import logging
import os
import platform
import sys
import time
from pathlib import Path

import numba
import numpy as np
from numba import njit, prange

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from competitors import ROUTES, same_distances  # noqa: E402
from publish import add_output_arguments, publish  # noqa: E402
from separation import compute_separation, load_dataset  # noqa: E402
from separation.core.records import run_metadata  # noqa: E402
from separation.core.records.benchmark import BenchmarkConfig, BenchmarkResult, BenchmarkRow  # noqa: E402
from separation.engines import CPUEngine  # noqa: E402
from separation.engines.sad import LANES, padded, sad  # noqa: E402

log = logging.getLogger("roofline")
NORMS = ("linf", "l2", "l1")
#: the engines timed per norm: label -> (CPUEngine options, the peak it is measured against, how its
#: fully computed pairs are known: "probe" / "pooled" counted, "gemm" all, None not counted)
ENGINES = {"linf": {"cpu (probe)": ({}, "linf", "probe"), "cpu (tiled)": ({"linf": "tiled"}, "linf", None)},
           "l2": {"cpu (pooled bound)": ({}, "float32 GEMM", "pooled"),
                  "cpu (integer GEMM)": ({"l2": "int8"}, "integer GEMM", "gemm"),
                  "cpu (float32 GEMM + recheck)": ({"l2": "float32"}, "float32 GEMM", "gemm")},
           "l1": {"cpu (pooled bound)": ({}, "l1", "pooled"), "cpu (l2 bound)": ({"l1": "bound"}, "l1", None),
                  "cpu (tiled)": ({"l1": "tiled"}, "l1", None)}}
#: the range search's radius per norm (pixel units): twice the largest eps of Table 4 on MNIST
RANGE_RADII = {"linf": "84/85", "l2": "6", "l1": "48"}
PEAKS = {"linf": "l-inf kernel: byte |a-b| then max", "l1": "l1 kernel: byte |a-b| summed 32 at a time",
         "int8 GEMM": "int8 GEMM, int32 sums (torch._int_mm)", "float32 GEMM": "float32 GEMM (BLAS)",
         "float64 GEMM": "float64 GEMM (BLAS)"}
DESCRIPTION = (
    "Rates are in G pair-dims/s: (query, point) pairs times features per second. A brute force "
    "must compute every cross-class pair once (train--train pairs once, not twice); an engine's "
    "rate is that work divided by its seconds, so a rate above the peak (fraction > 1) is what "
    "pruning buys. Peaks: the fastest brute-force numba kernels written for this page (every term, "
    "bytes kept as bytes, l-inf four query rows per database row read, l1 the engine's sums of "
    "32 absolute differences at a time: vpsadbw where the CPU has AVX2), on cache-resident blocks "
    "(64 x 256 rows of 784 bytes) -- what the arithmetic reaches here without pruning, not the "
    "instruction-level limit; GEMMs of 2048 x 2048 x 784 (one multiply-add per pair-dim), memory: a parallel copy of "
    "512 MiB (bytes read + written). Exact pairs: the share of cross-class pairs whose distance was "
    "fully computed (the probe search's and the pooled bounds' count, the pooled l2 search measured against the "
    "float32 GEMM its bound runs on; every pair for a GEMM; not counted for the tiled "
    "kernels, which stop each pair early, nor for l1's l2 bound). The integer GEMM's peak is that of "
    "the GEMM it runs on here (int8 where torch._int_mm is the faster, else float32). Range search: "
    "train--train only, every cross-class pair within the radius (pixel units) found, at the rate "
    "of the same work (every cross-class train pair once) beside the nearest-neighbour search of the "
    "same engine; l-inf: the probe search finds the points with another-class point within the "
    "radius, and the range kernel, which stops each pair early (not counted), compares only those. Load: the "
    "1-minute load average before the row.")


# -- peaks --------------------------------------------------------------------------------------
@njit(inline="always")
def _absdiff(a, b):  # pragma: no cover - numba; |a - b| of two bytes, as a byte
    return np.uint8(max(a, b) - min(a, b))


@njit(parallel=True, cache=True, fastmath=True)
def _linf_brute(Q, D, out):  # pragma: no cover - numba
    """``out[i, j] = max_k |Q[i, k] - D[j, k]|`` for uint8 rows, every term (no early exit), four
    query rows per database row read (``len(Q)`` a multiple of 4)."""
    for i4 in prange(Q.shape[0] // 4):
        i = 4 * i4
        for j in range(D.shape[0]):
            m0 = m1 = m2 = m3 = np.uint8(0)
            for k in range(Q.shape[1]):
                b = D[j, k]
                m0 = max(m0, _absdiff(Q[i, k], b))
                m1 = max(m1, _absdiff(Q[i + 1, k], b))
                m2 = max(m2, _absdiff(Q[i + 2, k], b))
                m3 = max(m3, _absdiff(Q[i + 3, k], b))
            out[i, j], out[i + 1, j], out[i + 2, j], out[i + 3, j] = m0, m1, m2, m3


@njit(parallel=True, cache=True)
def _l1_brute(Q, D, out):  # pragma: no cover - numba
    """``out[i, j] = sum_k |Q[i, k] - D[j, k]|`` for uint8 rows padded to whole chunks
    (:func:`separation.engines.sad`), every term."""
    n = Q.shape[1] // LANES
    for i in prange(Q.shape[0]):
        for j in range(D.shape[0]):
            out[i, j] = sad(Q[i], D[j], 0, n)


@njit(parallel=True, cache=True)
def _copy(src, dst):  # pragma: no cover - numba
    for i in prange(src.shape[0]):
        dst[i] = src[i]


def _timed(fn, seconds: float) -> tuple[float, int]:
    """Run ``fn`` once to warm up, then repeatedly for at least ``seconds``: (seconds, runs)."""
    fn()
    runs, t0 = 0, time.perf_counter()
    while True:
        fn()
        runs += 1
        dt = time.perf_counter() - t0
        if dt >= seconds:
            return dt, runs


def measure_peaks(threads: int, seconds: float) -> list[tuple[str, float, float]]:
    """``(peak name, seconds timed, G ops/s)`` on ``threads`` threads."""
    import torch

    numba.set_num_threads(threads)
    torch.set_num_threads(threads)
    rng = np.random.default_rng(0)
    Q, D = rng.integers(0, 256, (64, 784), dtype=np.uint8), rng.integers(0, 256, (256, 784), dtype=np.uint8)
    out8, out64 = np.empty((64, 256), np.uint8), np.empty((64, 256), np.int64)
    res = []
    for name, fn, out, q, d in (("linf", _linf_brute, out8, Q, D), ("l1", _l1_brute, out64, padded(Q), padded(D))):
        dt, runs = _timed(lambda: fn(q, d, out), seconds)
        res.append((name, dt, runs * Q.size * len(D) / dt / 1e9))
    a8 = torch.from_numpy(rng.integers(-128, 128, (2048, 784), dtype=np.int8))
    b8 = torch.from_numpy(rng.integers(-128, 128, (2048, 784), dtype=np.int8))
    for name, a, b, mm in (("int8 GEMM", a8, b8, torch._int_mm), ("float32 GEMM", a8.float(), b8.float(), torch.mm),
                           ("float64 GEMM", a8.double(), b8.double(), torch.mm)):
        bt = b.T
        dt, runs = _timed(lambda: mm(a, bt), seconds)
        res.append((name, dt, runs * 2048 * 2048 * 784 / dt / 1e9))
    src = np.ones((512, 1 << 20), np.uint8)
    dst = np.empty_like(src)
    dt, runs = _timed(lambda: _copy(src, dst), seconds)
    res.append(("memory", dt, runs * 2 * src.nbytes / dt / 1e9))
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    torch.set_num_threads(os.cpu_count() or 1)
    return res


# -- engines ------------------------------------------------------------------------------------
def pair_work(y, yt, d: int) -> float:
    """Pair-dims of a brute force: every cross-class train pair once, every test--train cross-class pair."""
    ntr = np.bincount(y, minlength=int(max(y.max(), yt.max())) + 1)
    nte = np.bincount(yt, minlength=len(ntr))
    other = len(y) - ntr
    return float((ntr * other).sum() / 2 + (nte * other).sum()) * d


def time_engine(options: dict, norm: str, x, y, xt, yt):
    """``(seconds, result, engine)`` of one train--train + test--train run of a fresh engine."""
    warm = CPUEngine(**options)
    compute_separation(x[:64], y[:64], xt[:8], yt[:8], norm=norm, engine=warm)  # JIT caches loaded
    engine = CPUEngine(**options)
    t0 = time.perf_counter()
    res = compute_separation(x, y, xt, yt, norm=norm, engine=engine)
    return time.perf_counter() - t0, res, engine


def engines_section(ds, peaks: dict, rows: list) -> None:
    x, y = ds.x_train.reshape(len(ds.x_train), -1), ds.y_train
    xt, yt = ds.x_test.reshape(len(ds.x_test), -1), ds.y_test
    work = pair_work(y, yt, x.shape[1])
    pairs = work / x.shape[1]
    group = f"{ds.name} {len(x)}+{len(xt)} ({x.shape[1]} features)"
    for norm in NORMS:
        ref = None
        for label, (options, peak, counted) in ENGINES[norm].items():
            load = os.getloadavg()[0]
            sec, res, engine = time_engine(options, norm, x, y, xt, yt)
            dists = (res.train_distances, res.test_distances)
            agrees = None if ref is None else all(np.array_equal(a, b) for a, b in zip(dists, ref))
            ref = ref or dists
            rate = work / sec / 1e9
            counts = {"probe": engine.probe_pairs, "pooled": engine.pooled_pairs}.get(counted)
            exact = 1.0 if counted == "gemm" else None
            if counts and counts["pairs"]:  # counted, where that path ran
                exact = counts["exact"] / counts["pairs"]
            if peak == "integer GEMM":  # the GEMM the exact integer path runs on here
                peak = f"{engine.integer_gemm} GEMM"
            metrics = {"G pair-dims/s": rate, "fraction of peak": rate / peaks[peak],
                       "exact pairs": exact, "pairs (G)": pairs / 1e9, "load": load}
            rows.append(BenchmarkRow(f"Engines on {ds.name} ({norm}, train–train + test–train)", group, label,
                                     round(sec, 3), agrees, metrics))
            log.info("%s %s %s: %.2fs (%.1f G pair-dims/s)", group, norm, label, sec, rate)


# -- range search ----------------------------------------------------------------------------------
def range_section(ds, radii: dict, rows: list) -> None:
    """Per norm, train--train: the default engine's nearest-neighbour search and its range search
    at the radius ``radii[norm]`` (what the robustness bounds run at 2 eps), at their rates; for l2
    also the integer GEMM's range search, which must find the same pairs."""
    x, y = ds.x_train.reshape(len(ds.x_train), -1), ds.y_train
    sizes = np.bincount(y)
    work = float((sizes * (len(y) - sizes)).sum() / 2) * x.shape[1]  # every cross-class pair once
    for norm in NORMS:
        section = f"Range search for the bounds on {ds.name} ({norm}, train–train)"
        group = f"{len(x)} points, radius {radii[norm]}"
        warm = CPUEngine()
        warm.cross_class(x[:64], y[:64], x[:64], y[:64], norm=norm, same_set=True)
        warm.range_search(x[:64], y[:64], x[:64], y[:64], norm=norm, radius=radii[norm], same_set=True)
        runs = [("nearest: cpu", {}, None), ("range: cpu", {}, radii[norm])]
        if norm == "l2":
            runs.append(("range: cpu (integer GEMM)", {"l2": "int8"}, radii[norm]))
        found = None
        for label, options, radius in runs:
            engine, load = CPUEngine(**options), os.getloadavg()[0]
            t0 = time.perf_counter()
            if radius is None:
                engine.cross_class(x, y, x, y, norm=norm, same_set=True)
            else:
                got = engine.range_search(x, y, x, y, norm=norm, radius=radius, same_set=True)
            sec = time.perf_counter() - t0
            # l-inf range: the probe search's count is of finding the points within reach, not of the range kernel
            counts = {"linf": engine.probe_pairs if radius is None else None}.get(norm, engine.pooled_pairs)
            metrics = {"G pair-dims/s": work / sec / 1e9, "pairs found": None if radius is None else len(got[0]),
                       "exact pairs": counts["exact"] / counts["pairs"] if counts and counts["pairs"] else None,
                       "load": load}
            agrees = None
            if radius is not None:
                agrees = None if found is None else all(np.array_equal(a, b) for a, b in zip(got, found))
                found = found or got
            rows.append(BenchmarkRow(section, group, label, round(sec, 3), agrees, metrics))
            log.info("%s %s: %.2fs", section, label, sec)


def radius_pairs(text: str) -> tuple[str, str]:
    """``NORM=RADIUS`` of ``--range-radii`` (the radius as text: exact, see ``exact_eps``)."""
    norm, _, radius = text.partition("=")
    if norm not in NORMS or not radius:
        raise argparse.ArgumentTypeError(f"expected NORM=RADIUS with NORM one of {', '.join(NORMS)}, got {text!r}")
    return norm, radius


# -- competitors on a subset ---------------------------------------------------------------------
def competitors_section(ds, args, rows: list) -> None:
    sub = ds.subset(args.subset, seed=0)
    xs, ys = sub.x_train.reshape(len(sub.x_train), -1), sub.y_train
    xt, yt = sub.x_test.reshape(len(sub.x_test), -1)[:args.test_subset], sub.y_test[:args.test_subset]
    group = f"{ds.name} {len(xs)}+{len(xt)}"
    for norm in NORMS:
        section = f"Same data, every tool ({norm}, train–train + test–train)"
        load = os.getloadavg()[0]
        sec, res, _ = time_engine({}, norm, xs, ys, xt, yt)
        ours = (res.train_distances, res.test_distances)
        rows.append(BenchmarkRow(section, group, "ours: cpu", round(sec, 3), True, {"load": load}))
        for name in [c for c in args.competitors.split(",") if c]:
            route = ROUTES[name](norm)
            load = os.getloadavg()[0]
            t0 = time.perf_counter()
            got = (route(xs, ys, xs, ys), route(xt, yt, xs, ys))
            sec = time.perf_counter() - t0
            agrees = all(same_distances(a, b, norm, bytes_=xs.dtype == np.uint8) for a, b in zip(got, ours))
            rows.append(BenchmarkRow(section, group, name, round(sec, 3), agrees, {"load": load}))
            log.info("%s %s %s: %.2fs", group, norm, name, sec)


def get_args_parser():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="mnist", help="dataset of the engine runs (default mnist)")
    p.add_argument("--data-root", default=None, help="folder with the dataset in torchvision's layout")
    p.add_argument("--subset", type=int, default=10000, help="training points for the competitors (default 10000)")
    p.add_argument("--test-subset", type=int, default=2000, help="test points for the competitors (default 2000)")
    p.add_argument("--competitors", default=",".join(ROUTES), help="comma list ('' for none)")
    p.add_argument("--peak-seconds", type=float, default=2.0, help="seconds per peak measurement (default 2)")
    p.add_argument("--range-radii", type=radius_pairs, nargs="+", default=list(RANGE_RADII.items()), metavar="NORM=R",
                   help="radius of the range search per norm, pixel units (default: twice the largest eps of "
                        "Table 4 on MNIST: " + " ".join(f"{k}={v}" for k, v in RANGE_RADII.items()) + ")")
    add_output_arguments(p, "roofline")
    return p


def main(argv=None):
    args = get_args_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    for c in [c for c in args.competitors.split(",") if c]:
        if c not in ROUTES:
            print(f"error: unknown competitor {c!r}; choose from {', '.join(ROUTES)}", file=sys.stderr)
            return 2
    ds = load_dataset(args.dataset, root=args.data_root)
    rows: list[BenchmarkRow] = []
    peaks: dict[str, float] = {}
    cores = os.cpu_count() or 1
    for threads in sorted({1, cores}):
        load = os.getloadavg()[0]
        for name, sec, rate in measure_peaks(threads, args.peak_seconds):
            if threads == cores:
                peaks[name] = rate
            unit = "GB/s" if name == "memory" else "G pair-dims/s"
            rows.append(BenchmarkRow("Measured peaks of this machine", PEAKS.get(name, "memory: parallel copy"),
                                     f"{threads} thread{'s' if threads > 1 else ''}", round(sec, 3), None,
                                     {unit: rate, "load": load}))
            log.info("peak %s, %d threads: %.1f", name, threads, rate)
    engines_section(ds, peaks, rows)
    range_section(ds, RANGE_RADII | dict(args.range_radii), rows)
    competitors_section(ds, args, rows)
    meta = run_metadata()
    device = f"{meta.hardware.cpus}-core {platform.machine()} CPU"
    result = BenchmarkResult(device=device, title="CPU engines against the measured roofline", description=DESCRIPTION,
                             rows=rows, baselines=["sklearn (paper)"],
                             references={s: "ours: cpu" for s in {r.section for r in rows if r.section.startswith("Same")}}
                             | {s: next(r.competitor for r in rows if r.section == s)
                                for s in {r.section for r in rows if r.section.startswith("Engines")}}
                             | {s: "range: cpu" for s in {r.section for r in rows if r.section.startswith("Range")}},
                             notes=[f"Peaks and engines on all {cores} cores unless the row says 1 thread."])
    config = BenchmarkConfig(args.name, "benchmarks/roofline.py", list(argv if argv is not None else sys.argv[1:]),
                             {"dataset": args.dataset, "subset": args.subset, "test_subset": args.test_subset,
                              "range_radii": RANGE_RADII | dict(args.range_radii)})
    publish(args, args.name, config, result, meta)
    return 0


if __name__ == "__main__":
    sys.exit(main())
