"""The Dask engine against the single-process CPU engine on the same cores, and a cost model.

One run, on this machine:

1. full MNIST l-inf (train-train + test-train) with the ``cpu`` engine in this process (numba on
   ``--workers`` threads) and with ``DaskEngine("local:N")`` (N worker processes, one thread each),
   alternating, ``--reps`` times each (the fastest of each is reported); every result is checked
   bit for bit against the ``cpu`` result (and against the stored record, when present); then the
   Dask run once more with every shard on disk (a resumed run: nothing computed);
2. the per-task overhead of the cluster (scheduling, store reads, shard writes) from a job of many
   tiny block pairs, and the client's cost of fingerprinting and writing the data store;
3. a cost model: ImageNet at 64x64 (1.28 M x 12,288 bytes) l-inf and l2 on 8 and 64 H200 GPUs
   (one Dask worker per GPU), from the H200 kernel rates in
   ``results/benchmarks/separation_engines_gpu`` and the overheads measured here.

The record goes to ``results/benchmarks/distributed_separation/`` and the page to
``reports/benchmarks/distributed_separation.md``::

    python benchmarks/distributed_separation.py --data-root ./data
"""
from __future__ import annotations

import argparse
import heapq
import logging
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from publish import add_output_arguments, publish  # noqa: E402
from separation import compute_separation, load_dataset  # noqa: E402
from separation.engines import CPUEngine, DaskEngine  # noqa: E402
from separation.engines.block_tasks import clear_prepared  # noqa: E402
from separation.engines.dask_engine import plan_blocks  # noqa: E402
from separation.engines.shards import fingerprint, write_store  # noqa: E402
from separation.core.records import find_records, load_record, run_metadata  # noqa: E402
from separation.core.records.benchmark import BenchmarkConfig, BenchmarkResult, BenchmarkRow  # noqa: E402

log = logging.getLogger("benchmark")

#: ImageNet at 64x64: training and validation points, bytes per point, classes.
IMAGENET64 = {"n": 1_281_167, "n_test": 50_000, "d": 64 * 64 * 3, "classes": 1000}
#: Assumed I/O of one GPU worker: blocks from the shared store, and host to device (bytes/s).
READ_BW, H2D_BW = 2e9, 20e9
MEASURED = "Full MNIST ℓ∞, train–train + test–train, the same cores"
ONE_CORE = "The same work on one core (15,000 MNIST queries against the 60,000 training points)"
OVERHEAD = "Cluster overheads measured here"
PREDICTED = "Predicted: ImageNet-64 on H200 GPUs (cost model)"


def pair_dims(y, yt, d) -> float:
    """Plain work: every (query, other-class training point) pair, times the dimension."""
    classes, inv = np.unique(np.concatenate([y, yt]), return_inverse=True)
    ntr = np.bincount(inv[:len(y)], minlength=len(classes))
    nte = np.bincount(inv[len(y):], minlength=len(classes))
    return float(((ntr + nte) * (len(y) - ntr)).sum() * d)


def h200_rates(root: Path, y, yt) -> tuple[dict, str]:
    """Plain-work rates (pair-dims/s) of the H200 runs in the stored GPU benchmark record."""
    rec = load_record(root / "separation_engines_gpu")
    rows = {r.group: r.seconds for r in rec.result.rows if r.seconds}
    cifar = rows["CIFAR-shaped 50000+10000 (3072) linf"]
    l2 = rows["full MNIST 60000+10000 l2"]
    return ({"linf": 60000 * 50000 * 0.9 * 3072 / cifar, "l2": pair_dims(y, yt, 784) / l2},
            f"{rec.label} ({rec.result.device}, {rec.meta.created[:10]})")


def makespan(times: list[float], workers: int) -> float:
    """Tasks started in order on the first free worker (how Dask runs an equal-priority batch)."""
    free = [0.0] * workers
    for t in times:
        heapq.heappush(free, heapq.heappop(free) + t)
    return max(free)


def predict(norm: str, rate: float, gpus: int, task_overhead: float, client_bw: float) -> dict:
    """Wall time of ImageNet-64 separation (train-train pairs + test-train rows) on ``gpus`` workers."""
    n, nt, d, c = IMAGENET64["n"], IMAGENET64["n_test"], IMAGENET64["d"], IMAGENET64["classes"]
    other = 1 - 1 / c
    times, work, tasks, rows = [], 0.0, 0, None
    for same in (True, False):
        _, q_rows, _, spans = plan_blocks(nt if not same else n, n, d, pairs=same, threads=gpus)
        rows = rows or q_rows
        for (a0, a1), (b0, b1) in spans:
            na, nb = a1 - a0, b1 - b0
            w = (na * nb if (not same or (a0, a1) == (b0, b1)) else 2 * na * nb) * other * d
            moved = (na + (nb if (a0, a1) != (b0, b1) else 0)) * (d + 8)
            times.append(w / rate + task_overhead + moved / READ_BW + moved / H2D_BW)
            work += w
        tasks += len(spans)
    client = (n + nt) * d / client_bw
    wall = makespan(times, gpus) + client
    return {"seconds": wall, "hours": wall / 3600, "compute only s": work / rate / gpus, "client s": client,
            "tasks": tasks, "block rows": rows, "P pair-dims": work / 1e15}


def run_dask(engine, x, y, xt, yt, shard_dir: Path, *, cold: bool = True):
    """One timed run; ``cold``: the workers first drop their prepared database blocks (as fresh
    workers would have none), so the run pays for building its index as the cpu engine does."""
    if cold:
        engine.client.run(clear_prepared)
    engine.shard_dir = shard_dir
    engine.passes.clear()
    t0 = time.perf_counter()
    res = compute_separation(x, y, xt, yt, norm="linf", engine=engine)
    return time.perf_counter() - t0, res, list(engine.passes)


def identical(a, b) -> bool:
    return all(np.array_equal(v, b.arrays()[k]) for k, v in a.arrays().items())


def stored_record_agrees(res, results: Path) -> bool | None:
    """The stored MNIST l-inf record's arrays equal ``res``'s (None: no such record here)."""
    for rec in find_records(results / "separation", ["separation"]).records:
        c = rec.config
        if (c.data.dataset, c.norm, c.data.subset, tuple(c.splits)) == ("mnist", "linf", None, ("train", "test")):
            stored = rec.load_arrays()
            return all(np.array_equal(stored[k], v) for k, v in res.arrays().items() if k in stored)
    return None


def tiny_task_overhead(engine, workers: int, shard_dir: Path) -> tuple[float, int]:
    """Seconds per task and worker of a job whose tasks compute almost nothing."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 255, (2000, 16), dtype=np.uint8)
    y = rng.integers(0, 10, 2000)
    engine.shard_dir, engine.block_size = shard_dir, (10, 2000)
    engine.cross_class(x[:5], y[:5], x, y, norm="linf")  # warm
    t0 = time.perf_counter()
    engine.cross_class(x, y, x, y, norm="linf")
    wall = time.perf_counter() - t0
    engine.block_size = None
    return wall * workers / engine.passes[-1].shards, engine.passes[-1].shards


def one_core(x, y, shard_dir: Path, reps: int) -> tuple[list[float], list[float], bool]:
    """cpu engine on one thread vs a one-worker cluster, same 15,000 queries (two tasks), alternating."""
    import numba

    q = slice(0, 15000)
    cpu, agree, cpu_s, dask_s = CPUEngine(), True, [], []
    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        with DaskEngine("local:1", inner="cpu", shard_dir=shard_dir, block_size=(7500, len(x))) as engine:
            engine.cross_class(x[:3000], y[:3000], x[:3000], y[:3000], norm="linf")
            for r in range(reps):
                t0 = time.perf_counter()
                want = cpu.cross_class(x[q], y[q], x, y, norm="linf")
                cpu_s.append(time.perf_counter() - t0)
                engine.client.run(clear_prepared)
                engine.shard_dir = shard_dir / f"rep{r}"
                t0 = time.perf_counter()
                got = engine.cross_class(x[q], y[q], x, y, norm="linf")
                dask_s.append(time.perf_counter() - t0)
                agree &= all(np.array_equal(a, b) for a, b in zip(got, want))
    finally:
        numba.set_num_threads(threads)
    return cpu_s, dask_s, agree


def client_rate(x: np.ndarray, y: np.ndarray, folder: Path) -> float:
    """Bytes per second of fingerprinting plus writing the data store, on the client."""
    t0 = time.perf_counter()
    fingerprint(x, y)
    write_store(folder, x, y)
    return x.nbytes / (time.perf_counter() - t0)


def get_args_parser():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-root", default=None, help="folder with MNIST in torchvision's layout")
    p.add_argument("--workers", type=int, default=2, help="local worker processes = cpu engine threads")
    p.add_argument("--reps", type=int, default=2, help="timed runs of each (the fastest is reported)")
    p.add_argument("--results", default="results", help="stored records (for the GPU rates and the MNIST record)")
    add_output_arguments(p, "distributed_separation")
    return p


def main(argv=None):
    args = get_args_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    for noisy in ("distributed", "numba", "faiss"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    import numba

    numba.set_num_threads(args.workers)
    ds = load_dataset("mnist", root=args.data_root)
    x, y, xt, yt = ds.x_train, ds.y_train, ds.x_test, ds.y_test
    rates, rates_from = h200_rates(Path(args.results) / "benchmarks", y, yt)
    tmp = Path(tempfile.mkdtemp(prefix="distributed-separation-"))
    t0 = time.perf_counter()
    engine = DaskEngine(f"local:{args.workers}", inner="cpu", shard_dir=tmp / "warm")
    start = time.perf_counter() - t0
    cpu = CPUEngine()
    try:
        compute_separation(x[:3000], y[:3000], xt[:500], yt[:500], engine=engine)  # warm: workers' kernels
        compute_separation(x[:3000], y[:3000], xt[:500], yt[:500], engine=cpu)
        cpu_s, dask_s, agree = [], [], True
        for r in range(args.reps):
            t1 = time.perf_counter()
            ref = compute_separation(x, y, xt, yt, norm="linf", engine=cpu)
            cpu_s.append(time.perf_counter() - t1)
            sec, res, passes = run_dask(engine, x, y, xt, yt, tmp / f"rep{r}")
            dask_s.append(sec)
            agree &= identical(res, ref)
            log.info("rep %d: cpu %.2fs, dask %.2fs, identical %s", r, cpu_s[-1], sec, agree)
        resumed_s, _, resumed = run_dask(engine, x, y, xt, yt, tmp / f"rep{args.reps - 1}", cold=False)
        stored = stored_record_agrees(res, Path(args.results))
        per_task, tiny_tasks = tiny_task_overhead(engine, args.workers, tmp / "tiny")
        bw = client_rate(x.reshape(len(x), -1), y, tmp / "rate")
    finally:
        engine.close()
    one_cpu, one_dask, one_agree = one_core(x.reshape(len(x), -1), y, tmp / "one", args.reps)
    best_cpu, best_dask = min(cpu_s), min(dask_s)
    shards = sum(p.shards for p in passes)
    mean = (lambda attr: sum(getattr(p, attr) * p.shards for p in passes) / shards)
    rows = [BenchmarkRow(MEASURED, "MNIST 60000+10000 (uint8, 784)", f"cpu engine (1 process, {args.workers} threads)",
                         round(best_cpu, 3), True, {"runs (s)": " / ".join(f"{s:.1f}" for s in cpu_s)}),
            BenchmarkRow(MEASURED, "MNIST 60000+10000 (uint8, 784)", f"dask local:{args.workers} (1 thread each)",
                         round(best_dask, 3), agree,
                         {"runs (s)": " / ".join(f"{s:.1f}" for s in dask_s), "time / cpu": round(best_dask / best_cpu, 3),
                          "shards": shards, "MB read per task": round(mean("read_bytes_per_task") / 1e6, 2),
                          "KB returned per task": round(mean("result_bytes_per_task") / 1e3, 2),
                          "bytes of task spec": round(mean("spec_bytes_per_task"))}),
            BenchmarkRow(MEASURED, "MNIST 60000+10000 (uint8, 784)", f"dask local:{args.workers}, resumed (all shards on disk)",
                         round(resumed_s, 3), None, {"shards": sum(p.shards for p in resumed),
                                                     "computed": sum(p.computed for p in resumed)}),
            BenchmarkRow(ONE_CORE, "MNIST 15000 x 60000 (uint8, 784)", "cpu engine (1 thread)", round(min(one_cpu), 3),
                         True, {"runs (s)": " / ".join(f"{s:.1f}" for s in one_cpu)}),
            BenchmarkRow(ONE_CORE, "MNIST 15000 x 60000 (uint8, 784)", "dask local:1 (2 tasks)", round(min(one_dask), 3),
                         one_agree, {"runs (s)": " / ".join(f"{s:.1f}" for s in one_dask),
                                     "time / cpu": round(min(one_dask) / min(one_cpu), 3)}),
            BenchmarkRow(OVERHEAD, "tiny block pairs (10 x 2000 rows of 16 bytes)", f"dask local:{args.workers}",
                         round(per_task, 5), None, {"tasks": tiny_tasks, "meaning": "seconds per task and worker"}),
            BenchmarkRow(OVERHEAD, "cluster start (local processes, engines loaded)", f"dask local:{args.workers}",
                         round(start, 3), None, {}),
            BenchmarkRow(OVERHEAD, "client: fingerprint + write the data store", "this machine",
                         round(x.nbytes / bw, 3), None, {"MB/s": round(bw / 1e6)})]
    overhead = max(per_task, 1e-3)
    for norm in ("linf", "l2"):
        for gpus in (1, 8, 64):
            p = predict(norm, rates[norm], gpus, overhead, bw)
            rows.append(BenchmarkRow(PREDICTED, f"ImageNet-64 {'ℓ∞' if norm == 'linf' else 'ℓ2'} 1.28M+50k (12288 bytes)",
                                     f"{gpus} x H200", round(p.pop("seconds"), 1), None,
                                     {k: (round(v, 3) if isinstance(v, float) else v) for k, v in p.items()}))
    notes = [
        f"Measured here: {args.reps} alternating runs of each; the fastest of each is shown (the machine is shared "
        "with other work, which the two layouts do not feel alike: the one-core section compares the same work "
        "without that effect). Before each timed cluster run the workers drop their prepared indexes, so each run "
        "builds its own, as the cpu engine does; the cluster start (processes, engines loaded) is shown apart. "
        "`same answer`: distances and indices bit for bit equal to the cpu engine's"
        + ("" if stored is None else f"; equal to the stored MNIST ℓ∞ record's arrays: {'yes' if stored else 'NO'}")
        + ". `MB read per task`: the blocks a task reads from the memory-mapped store (not through the scheduler; "
        "a worker reads its database block once and keeps its index); `KB returned per task`: the (distance, "
        "index) vectors sent back; `bytes of task spec`: the task's description as sent to the worker.",
        f"Cost model. Rates (plain work: every query times every other-class training point times d, per second) "
        f"from {rates_from}: ℓ∞ {rates['linf'] / 1e12:.2f} T pair-dims/s (the CIFAR-shaped d = 3072 run), ℓ2 "
        f"{rates['l2'] / 1e12:.2f} T (full MNIST ℓ2; a larger d makes the GEMM faster, so this is conservative). "
        "Assumptions: one Dask worker per H200 (dask-cuda), each block pair runs at the single-GPU rate; the blocks "
        "come from the engine's own plan (train–train: pairs of square blocks, each computed once; test–train: query "
        f"blocks x database blocks; at most 1 GiB per block); each task also pays the per-task overhead measured here "
        f"({overhead * 1e3:.1f} ms) and moves its blocks from the shared store at {READ_BW / 1e9:g} GB/s and to the GPU "
        f"at {H2D_BW / 1e9:g} GB/s; tasks go to the first free GPU in submission order; the client fingerprints and "
        "writes the 15.7 GB store once at the rate measured here; 1000 balanced classes. `compute only s` is the "
        "work divided by the GPUs' rate (no overhead, perfect balance).",
        "No GPU was available for this run: the GPU rows are predictions, not measurements.",
    ]
    meta = run_metadata()
    device = meta.hardware.gpu or f"{meta.hardware.cpus}-core {platform.machine()} CPU"
    result = BenchmarkResult(device=device, rows=rows, baselines=[rows[0].competitor, rows[3].competitor],
                             references={MEASURED: rows[0].competitor, ONE_CORE: rows[3].competitor}, title="Separation on a Dask cluster",
                             description="`DaskEngine` (block pairs on a Dask cluster, shards on disk) against the "
                                         "single-process engine on the same cores, what a task costs, and what "
                                         "that predicts for ImageNet-64 on many GPUs.", notes=notes)
    config = BenchmarkConfig(args.name, "benchmarks/distributed_separation.py",
                             list(argv if argv is not None else sys.argv[1:]), {"workers": args.workers, "reps": args.reps})
    publish(args, args.name, config, result, meta)
    return 0


if __name__ == "__main__":
    sys.exit(main())
