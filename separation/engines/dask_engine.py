"""``DaskEngine``: the exact search split into block pairs, run on a Dask cluster.

::

    from separation import compute_separation
    from separation.engines import DaskEngine

    with DaskEngine("local:2") as engine:                 # or "tcp://host:8786", or a Client
        result = compute_separation(x, y, x_test, y_test, engine=engine)
    engine.cluster_run()                                  # workers, shards computed / reused

How it runs (see :mod:`~separation.engines.block_tasks` and :mod:`~separation.engines.shards`):

1. the points are written once into ``shard_dir/data`` (memory-mapped ``.npy``, named by the
   sha256 of their content); ``shard_dir`` must be a folder that the client and every worker see;
2. the work is cut into block pairs. Train--train with an engine whose block kernel visits each
   pair once (l2, l1, and l-inf on a GPU) uses square blocks, pairs ``(I, J)`` with ``I <= J``,
   each returning row *and* column minima; engines that prune per query (the CPU l-inf probe
   search) get (query block, database block) tasks with large database blocks instead;
3. a block pair already in ``shard_dir/jobs/<job>/`` (a verified shard of the same data, norm and
   blocks) is read, not computed: a killed client or cluster resumes where it stopped. Dask
   retries the tasks of a lost worker;
4. the partial minima are merged with the one tie rule of :func:`~separation.engines.merge_better`
   (smaller distance, then smaller index): the result equals the inner engine's bit for bit.

:meth:`DaskEngine.range_search` runs the same way with ``range`` tasks (square blocks ``I <= J``
of one set, or every query block against every database block); their pairs are merged by
:class:`~separation.engines.range_merge.RangeMerge`.

Memory per worker is bounded by the block size (``block_size`` rows, default: about 1 GiB of
points per block).
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import hashlib
import importlib.util
import json
import logging
import os
import time
import uuid
from pathlib import Path

import numpy as np

from ..core.decoded_store import store_file
from ..core.errors import ClusterError, InvalidInputError, InvalidTypeError, UnwritableError
from ..core.threat import eps_text
from .base import Engine
from .block_pairs import NearestMerge
from .block_plan import DEFAULT_BLOCK_BYTES, TASKS_PER_THREAD, plan_blocks
from .block_tasks import BlockTask, check_worker, run_block
from .cluster_run import ClusterPass, ClusterRun
from .range_merge import RangeMerge
from .shards import SHARD_VERSION, read_shard, write_store

log = logging.getLogger(__name__)

#: Seconds to wait for a scheduler (and for its first worker).
CONNECT_TIMEOUT = 10.0


def default_shard_dir() -> Path:
    """``$SEPARATION_SHARD_DIR``, else ``~/.cache/separation/shards``."""
    return Path(os.environ.get("SEPARATION_SHARD_DIR") or Path.home() / ".cache" / "separation" / "shards")


def parse_scheduler(text: str) -> str | int:
    """``"local:N"`` -> ``N`` (worker processes to start, N >= 1); anything with a ``:`` (e.g.
    ``tcp://10.0.0.5:8786``, ``localhost:8786``) -> the address. ValueError says how to fix it."""
    text = str(text).strip()
    if text.startswith("local:"):
        n = text[len("local:"):]
        if not n.isdigit() or int(n) < 1:
            raise InvalidInputError(f"scheduler {text!r}: write local:N with N >= 1 worker processes (e.g. local:2)")
        return int(n)
    if ":" not in text:
        raise InvalidInputError(f"scheduler {text!r} is not an address: pass local:N or a scheduler address such as "
                         "tcp://HOST:8786")
    return text


def handshake(address: str, timeout: float) -> None:
    """Open a Dask connection to ``address`` and close it, all within ``timeout`` s (the TCP
    connection *and* the handshake, which Dask itself waits for without a limit). OSError
    (TimeoutError: nothing answered), or MemoryError (a server that answers with something other
    than a Dask handshake, read as an impossible frame length)."""
    from distributed.comm import connect as comm_connect
    from distributed.security import Security

    args = Security().get_connection_args("client")  # what a Client would use (TLS from the dask config)

    async def bounded():
        comm = await asyncio.wait_for(comm_connect(address, timeout=timeout, **args), timeout)
        await comm.close()

    # a thread of its own: its event loop never meets the caller's (e.g. a notebook's)
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="separation-handshake") as pool:
        pool.submit(asyncio.run, bounded()).result()


def connect(target, *, timeout: float | None = None):
    """``(client, cluster or None)`` for a :class:`distributed.Client`, ``"local:N"`` (a new
    ``LocalCluster`` of N single-threaded processes, owned by the caller) or an address.
    ClusterError (a ConnectionError) when no Dask scheduler answers within ``timeout`` s (default
    :data:`CONNECT_TIMEOUT`; the handshake included: a server that accepts and stays silent is
    no wait without end), or it has no worker."""
    from distributed import Client, LocalCluster

    timeout = CONNECT_TIMEOUT if timeout is None else float(timeout)

    if isinstance(target, Client):
        return target, None
    where = parse_scheduler(target)
    if isinstance(where, int):
        cluster = LocalCluster(n_workers=where, threads_per_worker=1, processes=True, dashboard_address=":0",
                               silence_logs=logging.ERROR)
        return Client(cluster), cluster
    try:
        handshake(where, timeout)
        client = Client(where, timeout=f"{timeout}s")
    except (OSError, MemoryError) as exc:
        what = ("nothing answered as a Dask scheduler there" if isinstance(exc, TimeoutError)
                else "what answered is not a Dask scheduler" if isinstance(exc, MemoryError) else "no connection")
        raise ClusterError(f"cannot reach a Dask scheduler at {where} within {timeout:g} s ({type(exc).__name__}: "
                           f"{what}); check the address (a scheduler's port, 8786 by default), start one (dask "
                           "scheduler, or a dask-jobqueue cluster) and pass its address, or pass local:N") from None
    try:
        client.wait_for_workers(1, timeout=timeout)
    except TimeoutError:
        client.close()
        raise ClusterError(f"the Dask scheduler at {where} has no worker after {timeout:g} s; start workers "
                              f"(dask worker {where}) or pass local:N") from None
    return client, None


class DaskEngine(Engine, register="dask"):
    """Exact search on a Dask cluster, block pair by block pair, resumable from shard files.

    Args:
        client_or_address: a :class:`distributed.Client`, a scheduler address
            (``"tcp://host:8786"``) or ``"local:N"`` (starts N worker processes, one thread each).
        inner: the engine each task runs (``"auto"``: the fastest on that worker, ``"cpu"``,
            ``"cuda"`` ...; or an :class:`Engine`). Every worker must resolve it alike.
        block_size: rows per block (``int``), or ``(query rows, database rows)``; default from
            :data:`DEFAULT_BLOCK_BYTES` and the number of worker threads. Speed and memory only.
        shard_dir: folder for the data store and the shards, seen by the client and every worker
            (default :func:`default_shard_dir`). Keep it to resume; delete it any time no run is going.
        task_threads: compute threads of one task (size workers as ``--nthreads`` = cores).
        timeout: seconds to wait for the scheduler and its first worker (default
            :data:`CONNECT_TIMEOUT`).
    """

    name = "dask"
    by_name = False

    def __init__(self, client_or_address, *, inner: str | Engine = "auto", block_size=None, shard_dir=None,
                 task_threads: int = 1, timeout: float | None = None):
        if isinstance(inner, DaskEngine):
            raise InvalidTypeError("inner must be a local engine ('cpu', 'cuda', 'auto' or an Engine), not a DaskEngine.")
        if not isinstance(inner, (str, Engine)):
            raise InvalidTypeError(f"inner must be an engine name or an Engine, got {type(inner).__name__}.")
        self.block_size = _check_block_size(block_size)
        if isinstance(task_threads, bool) or not isinstance(task_threads, int) or task_threads < 1:
            raise InvalidInputError(f"task_threads must be an integer >= 1, got {task_threads!r}.")
        self.inner, self.task_threads = inner, task_threads
        self.shard_dir = Path(shard_dir) if shard_dir is not None else default_shard_dir()
        self.passes: list[ClusterPass] = []
        self.client, self._cluster = connect(client_or_address, timeout=timeout)
        try:
            self._check_workers()
        except BaseException:
            self.close()
            raise

    @classmethod
    def available(cls) -> bool:
        return importlib.util.find_spec("distributed") is not None

    # -- cluster ------------------------------------------------------------------------------
    def _check_workers(self) -> None:
        """Every worker can write ``shard_dir`` (and has loaded the inner engine); so can the client."""
        results = self.client.run(check_worker, str(self.shard_dir), self.inner)
        bad = {a: r["error"] for a, r in results.items() if not r["ok"]}
        if bad:
            addr, err = next(iter(bad.items()))
            raise UnwritableError(f"{len(bad)} of {len(results)} workers cannot write shard_dir {self.shard_dir} "
                                  f"({addr}: {err}); pass a shard_dir that every worker can write (a shared "
                                  "filesystem)")
        try:
            self.shard_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UnwritableError(f"shard_dir {self.shard_dir} cannot be created by this client ({exc}); pass a "
                                  "folder that the client and every worker can write") from None

    def workers(self) -> dict[str, int]:
        """``{worker address: threads}`` of the cluster now."""
        info = self.client.scheduler_info(n_workers=-1)["workers"]
        return {a: int(w.get("nthreads", 1)) for a, w in info.items()}

    def close(self) -> None:
        """Close the client and the local cluster this engine started (an existing cluster stays)."""
        if self._cluster is not None:
            self.client.close()
            self._cluster.close()
            self._cluster = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def cluster_run(self) -> ClusterRun:
        """Scheduler, workers, threads, inner engine and every pass run so far (for the record)."""
        w = self.workers()
        return ClusterRun(scheduler=str(self.client.scheduler.address), workers=len(w), threads=sum(w.values()),
                          inner=getattr(self, "_inner_name", str(self.inner)), passes=list(self.passes))

    # -- the engine interface -----------------------------------------------------------------
    def nearest(self, queries, database, *, norm):
        return self.cross_class(queries, np.zeros(len(queries), np.int64), database,
                                np.ones(len(database), np.int64), norm=norm)

    def cross_class(self, x_query, y_query, x_db, y_db, *, norm, same_set=False, progress=None):
        if len(x_query) == 0 or len(x_db) == 0:
            return np.full(len(x_query), np.inf), np.full(len(x_query), -1, dtype=np.int64)
        t0 = time.perf_counter()
        qref, dref = self._stores(x_query, y_query, x_db, y_db, same_set)
        traits = self._traits(norm, x_query.dtype)
        tasks, q_rows, d_rows = self._plan(qref, dref, norm, same_set and traits["pairs_once"])
        merged = NearestMerge(y_query, y_db, progress)
        computed = self._resume(tasks, merged.add)
        self._record("same-set" if same_set else "cross-set", tasks, q_rows, d_rows, computed, t0,
                     float(np.mean([t.result_bytes() for t in tasks])))
        return merged.arrays()

    def range_search(self, x_query, y_query, x_db, y_db, *, norm, radius, same_set=False, max_pairs=None,
                     progress=None):
        """Range search as ``range`` block tasks on the cluster (see :mod:`.block_tasks`): square
        blocks ``I <= J`` of one set (``same_set``) or every (query block, database block); each
        runs the inner engine's :meth:`~.base.Engine.range_search` and leaves a shard (a rerun
        reuses it). The pairs equal the inner engine's; ``max_pairs`` is checked as they arrive.
        The tasks carry the exact radius as its text (:func:`~separation.core.threat.eps_text`)."""
        merged = RangeMerge(max_pairs, radius, np.asarray(y_query), np.asarray(y_db), progress)
        if len(x_query) == 0 or len(x_db) == 0:
            return merged.arrays()
        t0 = time.perf_counter()
        qref, dref = self._stores(x_query, y_query, x_db, y_db, same_set)
        self._traits(norm, x_query.dtype, "range_search")
        tasks, q_rows, d_rows = self._plan(qref, dref, norm, same_set, radius=eps_text(radius), same_set=same_set,
                                           max_pairs=max_pairs)
        computed = self._resume(tasks, merged.add)
        self._record("same-set" if same_set else "cross-set", tasks, q_rows, d_rows, computed, t0,
                     merged.nbytes / len(tasks))
        return merged.arrays()

    # -- internals ----------------------------------------------------------------------------
    def _stores(self, x_query, y_query, x_db, y_db, same_set):
        """The query and database stores, written (or verified) under ``shard_dir/data``; points of
        a decoded image store are not copied, workers read them in place."""
        data = self.shard_dir / "data"
        qref = write_store(data, x_query, y_query, x_file=store_file(x_query))
        return qref, qref if same_set else write_store(data, x_db, y_db, x_file=store_file(x_db))

    def _traits(self, norm, dtype, capability=None) -> dict:
        """What the inner engine is on a worker (InvalidInputError if it lacks ``capability``)."""
        traits = self.client.submit(_traits, self.inner, norm, np.dtype(dtype).str, capability, pure=False).result()
        self._inner_name = traits["name"]
        return traits

    def _plan(self, qref, dref, norm, pairs, **range_args):
        """The tasks of one pass, and their (query rows, database rows); with ``range_args``
        (``radius``, ``same_set``, ``max_pairs``) ``range`` tasks."""
        threads = sum(self.workers().values())
        kind, q_rows, d_rows, spans = plan_blocks(qref.n, dref.n, qref.d * np.dtype(qref.dtype).itemsize,
                                                  pairs=pairs, threads=threads, block_size=self.block_size)
        kind = "range" if range_args else kind
        ident = {"v": SHARD_VERSION, "kind": kind, "norm": norm, "query": qref.fingerprint,
                 "database": dref.fingerprint, "q_rows": q_rows, "d_rows": d_rows}
        if range_args:
            ident.update(radius=range_args["radius"], same_set=range_args["same_set"])
        job = hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:24]
        folder = self.shard_dir / "jobs" / f"{norm}-{job}"
        tasks = [BlockTask(job, kind, norm, self.inner, qref, dref, a, b, "", self.task_threads, **range_args)
                 for a, b in spans]
        return [dataclasses.replace(t, shard=str(folder / f"{t.name}.shard")) for t in tasks], q_rows, d_rows

    def _resume(self, tasks, merge) -> int:
        """Merge the tasks whose shard is there, run the others; the number computed."""
        todo = []
        for task in tasks:
            old = read_shard(task.shard, task.header())
            if old is None:
                todo.append(task)
            else:
                merge(task, old)
        return self._run(todo, merge)

    def _record(self, name, tasks, q_rows, d_rows, computed, t0, result_bytes) -> None:
        self.passes.append(ClusterPass(
            name=name, schedule=tasks[0].kind, query_rows=q_rows, database_rows=d_rows, shards=len(tasks),
            computed=computed, reused=len(tasks) - computed,
            read_bytes_per_task=float(np.mean([t.read_bytes() for t in tasks])), result_bytes_per_task=result_bytes,
            spec_bytes_per_task=float(np.mean([t.spec_bytes() for t in tasks])), seconds=time.perf_counter() - t0))
        log.info("dask: %s %s pass, %d block pairs (%d computed, %d reused) in %.2fs", name, tasks[0].kind,
                 len(tasks), computed, len(tasks) - computed, self.passes[-1].seconds)

    def _run(self, tasks, merge) -> int:
        """Submit ``tasks``, merge their results as they finish; the number computed (not found)."""
        from distributed import as_completed

        if not tasks:
            return 0
        token = uuid.uuid4().hex[:8]
        futures = {self.client.submit(run_block, t, key=f"separation-{t.name}-{t.job[:12]}-{token}", retries=1): t
                   for t in tasks}
        computed = 0
        try:
            for fut in as_completed(list(futures)):
                task = futures.pop(fut)
                try:
                    vectors, fresh = fut.result()  # a task's error comes back as it was raised
                except BaseException as exc:
                    exc.add_note(f"(block task {task.name} of job {task.job} on the cluster)")
                    raise
                fut.release()
                computed += bool(fresh)
                merge(task, vectors)
        finally:
            if futures:
                self.client.cancel(list(futures))
        return computed

    def __repr__(self) -> str:
        return f"DaskEngine({self.client.scheduler.address!r}, inner={self.inner!r}, shard_dir={str(self.shard_dir)!r})"


def _traits(inner, norm: str, dtype: str, capability: str | None = None) -> dict:
    """Run on a worker: the engine ``inner`` resolves to there (one with ``capability``, when
    given), and whether its block kernel visits each pair once for ``norm`` and ``dtype``."""
    from .registry import get_engine

    eng = get_engine(inner, capability=capability)
    if not eng.supports(norm, np.dtype(dtype)):
        raise InvalidInputError(f"engine {eng.name!r} does not support norm {norm!r}; pick another inner engine")
    return {"name": eng.name, "pairs_once": bool(eng.pairs_once(norm, np.dtype(dtype)))}


def _check_block_size(block_size):
    if block_size is None:
        return None
    sizes = block_size if isinstance(block_size, tuple) else (block_size, block_size)
    if len(sizes) != 2 or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in sizes):
        raise InvalidInputError(f"block_size must be an integer >= 1 or a pair (query rows, database rows), got "
                         f"{block_size!r}.")
    return tuple(sizes)


__all__ = ["CONNECT_TIMEOUT", "DEFAULT_BLOCK_BYTES", "DaskEngine", "TASKS_PER_THREAD", "connect", "default_shard_dir",
           "handshake", "parse_scheduler", "plan_blocks"]
