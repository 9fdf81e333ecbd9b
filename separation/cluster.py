"""Command-line pieces of a run on a Dask cluster: ``--scheduler ADDRESS|local:N`` (and, for
separation, ``--shard-dir`` and ``--block-size``), checked before any work, shared by
``python -m separation.compute`` and ``python -m analysis.grid``."""
from __future__ import annotations

import argparse
import contextlib
import logging
from pathlib import Path
from typing import Iterator

from .core.cli import integer
from .core.errors import UsageError
from .core.extras import require
from .core.paths import writable_folder
from .engines import Engine
from .engines.dask_engine import DaskEngine, connect, default_shard_dir, parse_scheduler


def scheduler_type(text: str) -> str:
    """argparse type of ``--scheduler``: ``local:N`` (N >= 1) or an address with a ``:``."""
    try:
        parse_scheduler(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def add_cluster_arguments(p: argparse.ArgumentParser, *, shards: bool = True) -> None:
    """``--scheduler`` (and with ``shards`` also ``--shard-dir``, ``--block-size``)."""
    p.add_argument("--scheduler", type=scheduler_type, default=None, metavar="ADDRESS|local:N",
                   help="run on a Dask cluster: the address of its scheduler (e.g. tcp://HOST:8786, started by "
                        "`dask scheduler` or dask-jobqueue) or local:N (N worker processes here)")
    if shards:
        p.add_argument("--shard-dir", type=Path, default=None,
                       help="folder of the data store and the finished block pairs, seen by every worker; "
                            "a rerun computes only the missing ones (default $SEPARATION_SHARD_DIR or "
                            "~/.cache/separation/shards)")
        p.add_argument("--block-size", type=integer(1), default=None,
                       help="rows per block of a cluster run (default: from the worker count, <= 1 GiB)")


def cluster_engine_name(args: argparse.Namespace) -> str:
    """The engine ``args`` ask for, with ``--scheduler`` meaning ``dask``; UsageError when the two
    options contradict each other."""
    if args.scheduler is not None and args.engine not in ("auto", "dask"):
        raise UsageError(f"--scheduler runs the dask engine; drop --engine {args.engine} or pass --engine dask.")
    if args.engine == "dask" and args.scheduler is None:
        raise UsageError("--engine dask needs --scheduler ADDRESS (a running Dask scheduler) or --scheduler "
                         "local:N (N worker processes here).")
    return "dask" if args.scheduler is not None else args.engine


def quiet_cluster_logs() -> None:
    """Dask's own INFO lines (scheduler, nanny, connections) off the terminal of a command line."""
    for name in list(logging.root.manager.loggerDict):
        if name.startswith("distributed"):
            logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLogger(name).level))


@contextlib.contextmanager
def cluster_engine(args: argparse.Namespace) -> Iterator[str | Engine]:
    """The engine of ``args``: its name, or a connected :class:`DaskEngine` (closed afterwards).
    Bad options, an unwritable shard folder, an unreachable scheduler -> UsageError / OSError
    before any work."""
    name = cluster_engine_name(args)
    if name != "dask":
        yield name
        return
    shard_dir = writable_folder(args.shard_dir if args.shard_dir is not None else default_shard_dir(),
                                "--shard-dir")
    require("distributed", "--scheduler (a run on a Dask cluster)")  # its loggers' levels are set on import

    quiet_cluster_logs()
    engine = DaskEngine(args.scheduler, block_size=args.block_size, shard_dir=shard_dir)
    try:
        yield engine
    finally:
        engine.close()


@contextlib.contextmanager
def cluster_client(scheduler: str) -> Iterator:
    """A :class:`distributed.Client` of ``scheduler`` (``local:N`` starts and then stops a cluster)."""
    require("distributed", "--scheduler (a run on a Dask cluster)")

    quiet_cluster_logs()
    client, cluster = connect(scheduler)
    try:
        yield client
    finally:
        if cluster is not None:
            client.close()
            cluster.close()


__all__ = ["add_cluster_arguments", "cluster_client", "cluster_engine", "cluster_engine_name", "quiet_cluster_logs",
           "scheduler_type"]
