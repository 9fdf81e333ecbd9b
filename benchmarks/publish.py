"""What every benchmark script shares: where its record and page go, and writing them.

A benchmark writes one :class:`~separation.core.records.benchmark.BenchmarkRecord` under
``--out/<name>/`` and renders its page ``--page-out/<name>.md`` from that record (``python -m
analysis.report benchmarks`` renders it again later).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from analysis.rendering.page_benchmarks import benchmark_page
from separation.core.records import atomic_write_bytes, write_record
from separation.core.records.benchmark import BenchmarkConfig, BenchmarkRecord, BenchmarkResult


def add_output_arguments(p: argparse.ArgumentParser, name: str | None, name_help: str | None = None) -> None:
    """``--out`` (records root), ``--page-out`` (folder of the page) and ``--name`` (default ``name``)."""
    p.add_argument("--out", default="results/benchmarks", help="records root (default results/benchmarks)")
    p.add_argument("--page-out", default="reports/benchmarks", help="folder of the Markdown page (default "
                   "reports/benchmarks; python -m analysis.report benchmarks renders it again from the record)")
    p.add_argument("--name", default=name, help=name_help or f"record folder and page name (default {name})")


def publish(args: argparse.Namespace, name: str, config: BenchmarkConfig, result: BenchmarkResult, meta) -> str:
    """Write the record ``args.out/name`` and its page ``args.page_out/name.md``; the page (printed too)."""
    rec = write_record(Path(args.out) / name, BenchmarkRecord(config, result, meta=meta))
    page = benchmark_page(rec)
    atomic_write_bytes(Path(args.page_out) / f"{name}.md", page.encode())
    print(page)
    return page


__all__ = ["add_output_arguments", "publish"]
