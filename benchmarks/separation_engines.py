"""Side-by-side benchmark of separation engines: the original paper's route and ours, same data.

One run times, on the *same* arrays, the cross-class nearest-neighbour search (train-train and
test-train) of:

* ``sklearn``  -- ``NearestNeighbors(algorithm="brute", p=inf)`` per class (the paper's code),
* ``faiss-cpu`` -- ``IndexFlat(METRIC_Linf)`` per class,
* ``torch.cdist`` -- ``p=inf`` in blocks, per class,
* every engine of this toolkit that runs here (``cpu``, ``faiss``, ``cuda`` ...),

checks that all give identical distances, and writes a Markdown table (plus a JSON record) to
``reports/benchmarks/``. It then times the full-size jobs of the default engine: full MNIST
(l-inf and l2, train-train + test-train) and a CIFAR-10-sized uint8 array, each in a child
process so that its peak memory can be reported.

    python benchmarks/separation_engines.py --data-root ./data
"""
from __future__ import annotations

import argparse
import logging
import multiprocessing as mp
import platform
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from separation import compute_separation, load_dataset  # noqa: E402
from separation.engines import auto_engine_name, available_engines  # noqa: E402
from separation.core.records import run_metadata  # noqa: E402
from separation.core.records.benchmark import ENGINES_DESCRIPTION, BenchmarkConfig, BenchmarkResult, BenchmarkRow  # noqa: E402
from competitors import ROUTES  # noqa: E402
from publish import add_output_arguments, publish  # noqa: E402

log = logging.getLogger("benchmark")


# -- competitors: cross-class 1-NN distance per point, in grey levels (l-inf) ----------------------
COMPETITORS = {name: make("linf") for name, make in ROUTES.items()}


CUDA_OPTIONS: dict = {}


def make_engine(name):
    """An engine by name; the CUDA engine takes the --cuda-* options of this benchmark."""
    if name == "cuda" and CUDA_OPTIONS:
        from separation.engines import CUDAEngine

        return CUDAEngine(**CUDA_OPTIONS)
    return name


def ours(engine):
    engine = make_engine(engine)

    def run(x, y, xt, yt):
        r = compute_separation(x, y, xt, yt, norm="linf", engine=engine)
        return r.train_distances * 255, r.test_distances * 255
    return run


# -- data ----------------------------------------------------------------------------------------
def cifar_shaped(n: int, n_test: int, seed: int = 0):
    """A CIFAR-10-shaped uint8 array (n, 3, 32, 32): smooth random images plus noise, 10 classes
    with a class-dependent mean image (real CIFAR-10 is not available here)."""
    import torch
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(seed)
    total = n + n_test
    y = torch.randint(0, 10, (total,), generator=g)
    protos = torch.rand(10, 3, 4, 4, generator=g)
    out = np.empty((total, 3, 32, 32), dtype=np.uint8)
    for s in range(0, total, 5000):
        e = min(total, s + 5000)
        low = 0.5 * protos[y[s:e]] + 0.5 * torch.rand(e - s, 3, 8, 8, generator=g)[:, :, :4, :4]
        img = F.interpolate(torch.rand(e - s, 3, 8, 8, generator=g) * 0.6 + F.interpolate(low, size=8), size=32,
                            mode="bilinear", align_corners=False)
        img = img / 1.6 + 0.08 * torch.randn(e - s, 3, 32, 32, generator=g)
        out[s:e] = (img.clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    y = y.numpy()
    return out[:n], y[:n], out[n:], y[n:]


def _pair_dims(y, yt, d):
    """Work of the plain approach: every (query, other-class point) pair times the dimension."""
    counts = np.bincount(np.concatenate([y, yt]))
    ntr = np.bincount(y, minlength=len(counts))
    nte = np.bincount(yt, minlength=len(counts))
    other = len(y) - ntr
    return float(((ntr + nte) * other).sum() * d)


# -- full-size jobs in a child process (peak memory) ------------------------------------------------
def _child(job, conn):
    try:
        t0 = time.perf_counter()
        if job["kind"] == "mnist":
            ds = load_dataset("mnist", root=job["root"])
            x, y, xt, yt = ds.x_train, ds.y_train, ds.x_test, ds.y_test
        else:
            x, y, xt, yt = cifar_shaped(job["n"], job["n_test"])
        t1 = time.perf_counter()
        CUDA_OPTIONS.update(job.get("cuda_options", {}))
        r = compute_separation(x, y, xt, yt, norm=job["norm"], engine=make_engine(job["engine"]))
        t2 = time.perf_counter()
        conn.send({"seconds": t2 - t1, "load_seconds": t1 - t0, "engine": r.engine,
                   "train_min": float(r.train_distances.min()), "test_min": float(r.test_distances.min()),
                   "split_seconds": r.seconds,
                   "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20})
    except Exception as exc:  # pragma: no cover - reported in the table
        conn.send({"error": repr(exc)})


def run_child(job):
    ctx = mp.get_context("spawn")
    a, b = ctx.Pipe()
    p = ctx.Process(target=_child, args=(job, b))
    p.start()
    res = a.recv()
    p.join()
    return res


def get_args_parser():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-root", default=None, help="folder with MNIST in torchvision's layout")
    p.add_argument("--subset", type=int, default=10000, help="MNIST training points for the comparison")
    p.add_argument("--test-subset", type=int, default=2000, help="MNIST test points for the comparison")
    p.add_argument("--cifar-n", type=int, default=50000, help="CIFAR-shaped training points (full-size job)")
    p.add_argument("--cifar-test", type=int, default=10000)
    p.add_argument("--cifar-compare", type=int, default=5000,
                   help="CIFAR-shaped points for the side-by-side comparison")
    p.add_argument("--competitors", default=",".join(COMPETITORS),
                   help="comma list of competitors to time ('' for none)")
    p.add_argument("--engines", default=None, help="comma list of our engines (default: all available)")
    p.add_argument("--skip-full", action="store_true", help="skip the full-size jobs")
    p.add_argument("--cuda-pair-tile", default=None,
                   help="CUDA integer kernel tile 'points,features,check' (default: the engine's)")
    p.add_argument("--cuda-no-prune", action="store_true", help="CUDA integer kernel without early exit")
    p.add_argument("--cuda-warps", type=int, default=None)
    add_output_arguments(p, None, "file stem (default separation_engines[_<device>])")
    return p


def compare(label, x, y, xt, yt, competitors, engines, rows):
    work = _pair_dims(y, yt, x[0].size)
    results = {}
    for name in competitors:
        t0 = time.perf_counter()
        d_tr = COMPETITORS[name](x.reshape(len(x), -1), y, x.reshape(len(x), -1), y)
        d_te = COMPETITORS[name](xt.reshape(len(xt), -1), yt, x.reshape(len(x), -1), y)
        results[name] = (time.perf_counter() - t0, d_tr, d_te)
        log.info("%s %s: %.2fs", label, name, results[name][0])
    for eng in engines:
        ours(eng)(x[:64], y[:64], xt[:8], yt[:8])  # warm-up: JIT cache / CUDA context
        t0 = time.perf_counter()
        d_tr, d_te = ours(eng)(x, y, xt, yt)
        results[f"ours: {eng}"] = (time.perf_counter() - t0, d_tr, d_te)
        log.info("%s ours %s: %.2fs", label, eng, results[f"ours: {eng}"][0])
    ref_name = next(iter(results))
    _, r_tr, r_te = results[ref_name]
    for name, (sec, d_tr, d_te) in results.items():
        same = bool(np.array_equal(np.asarray(d_tr, np.float64), np.asarray(r_tr, np.float64))
                    and np.array_equal(np.asarray(d_te, np.float64), np.asarray(r_te, np.float64)))
        rows.append({"data": label, "method": name, "seconds": round(sec, 3),
                     "G pair-dim/s": round(work / sec / 1e9, 2), "same": same, "reference": ref_name})


def main(argv=None):
    args = get_args_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    logging.getLogger("faiss").setLevel(logging.WARNING)
    if args.cuda_pair_tile:
        CUDA_OPTIONS["pair_tile"] = tuple(int(v) for v in args.cuda_pair_tile.split(","))
    if args.cuda_no_prune:
        CUDA_OPTIONS["prune"] = False
    if args.cuda_warps:
        CUDA_OPTIONS["num_warps"] = args.cuda_warps
    competitors = [c for c in args.competitors.split(",") if c]
    for c in competitors:
        if c not in COMPETITORS:
            print(f"error: unknown competitor {c!r}; choose from {', '.join(COMPETITORS)}", file=sys.stderr)
            return 2
    engines = args.engines.split(",") if args.engines else [e for e in available_engines() if e != "reference"]
    rows: list[dict] = []
    ds = load_dataset("mnist", root=args.data_root).subset(args.subset, seed=0)
    xte, yte = ds.x_test[:args.test_subset], ds.y_test[:args.test_subset]
    compare(f"MNIST {len(ds.x_train)}+{len(xte)} (uint8, 784)", ds.x_train, ds.y_train, xte, yte,
            competitors, engines, rows)
    if args.cifar_compare:
        x, y, xt, yt = cifar_shaped(args.cifar_compare, args.cifar_compare // 5, seed=1)
        compare(f"CIFAR-shaped {len(x)}+{len(xt)} (uint8, 3072)", x, y, xt, yt, competitors, engines, rows)
    full = []
    if not args.skip_full:
        default = auto_engine_name()
        for job in ({"kind": "mnist", "norm": "linf"}, {"kind": "mnist", "norm": "l2"},
                    {"kind": "cifar", "norm": "linf", "n": args.cifar_n, "n_test": args.cifar_test}):
            job.update(engine=default, root=args.data_root, cuda_options=dict(CUDA_OPTIONS))
            res = run_child(job)
            label = ("full MNIST 60000+10000" if job["kind"] == "mnist"
                     else f"CIFAR-shaped {args.cifar_n}+{args.cifar_test} (3072)")
            full.append({"job": label, "norm": job["norm"], **res})
            log.info("full %s %s: %s", label, job["norm"], res)
    meta = run_metadata()
    device = meta.hardware.gpu or f"{meta.hardware.cpus}-core {platform.machine()} CPU"
    stem = args.name or ("separation_engines" + ("_gpu" if "cuda" in engines else ""))
    notes = [f"CUDA engine options: {CUDA_OPTIONS}."] if CUDA_OPTIONS else []
    if "cuda" not in engines:
        notes.append("No GPU was available for this run: GPU engines were not timed here "
                     "(see `separation_engines_gpu.md` when present).")
    section = "Same data, every method (ℓ∞, train–train + test–train)"
    ref = rows[0]["reference"] if rows else None
    result = BenchmarkResult(
        device=device, title="Separation engines", description=ENGINES_DESCRIPTION, notes=notes,
        baselines=[b for b in ("sklearn (paper)", "faiss-cpu IndexFlat") if b in competitors],
        references={section: ref} if ref else {},
        rows=[BenchmarkRow(section, r["data"], r["method"], r["seconds"], r["same"],
                           {"G pair-dim/s": r["G pair-dim/s"]}) for r in rows]
        + [BenchmarkRow("Full-size jobs of the default engine", f"{f['job']} {f['norm']}",
                        f"ours: {f.get('engine', '?')}", f.get("seconds"), None,
                        {k: f.get(k) for k in ("load_seconds", "train_min", "test_min", "peak_rss_gib")},
                        f.get("error")) for f in full])
    config = BenchmarkConfig(stem, "benchmarks/separation_engines.py", list(argv if argv is not None else sys.argv[1:]),
                             {"subset": args.subset, "test_subset": args.test_subset, "cifar_compare": args.cifar_compare})
    publish(args, stem, config, result, meta)
    return 0


if __name__ == "__main__":
    sys.exit(main())
