"""Benchmark records: competitors timed side by side in one run, on one machine.

A :class:`BenchmarkRecord` holds what a benchmark script measured (one :class:`BenchmarkRow` per
competitor and workload) and the machine it ran on (``meta.hardware``); the Markdown page in
``reports/benchmarks/`` is rendered from it (``python -m analysis.report benchmarks``), never typed
by hand. Ratios are computed at rendering time, between rows of the same run only.
"""
from __future__ import annotations

import dataclasses
import shlex
from typing import Any

from ._record import Record

#: Where benchmark scripts put their records (one folder per benchmark name).
BENCHMARK_ROOT = "results/benchmarks"


@dataclasses.dataclass
class BenchmarkRow:
    """One timed workload of one competitor.

    ``section``: the table the row belongs to; ``group``: the workload (data and size);
    ``competitor``: the method or engine; ``seconds``: wall time (None when it failed, see
    ``error``); ``agrees``: whether its answer equals the section's reference (None: not compared);
    ``metrics``: further measured columns (e.g. ``peak_rss_gib``)."""

    section: str
    group: str
    competitor: str
    seconds: float | None
    agrees: bool | None = None
    metrics: dict[str, Any] = dataclasses.field(default_factory=dict)
    error: str | None = None


@dataclasses.dataclass
class BenchmarkConfig:
    """What was run: the benchmark's name (its folder and page), the script and its arguments."""

    name: str
    script: str
    argv: list[str] = dataclasses.field(default_factory=list)
    params: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class BenchmarkResult:
    """The rows, the device they ran on (in words), the competitors that ratio columns divide by
    (``baselines``), the reference each section's ``agrees`` compares with, and notes."""

    device: str
    rows: list[BenchmarkRow]
    baselines: list[str] = dataclasses.field(default_factory=list)
    references: dict[str, str] = dataclasses.field(default_factory=dict)
    title: str = ""
    description: str = ""
    notes: list[str] = dataclasses.field(default_factory=list)

    def sections(self) -> list[str]:
        out: list[str] = []
        for r in self.rows:
            if r.section not in out:
                out.append(r.section)
        return out


@dataclasses.dataclass
class BenchmarkRecord(Record):
    """A benchmark run (kind ``benchmark``), in ``results/benchmarks/<name>/``."""

    KIND = "benchmark"
    config: BenchmarkConfig
    result: BenchmarkResult

    @classmethod
    def folder_name(cls, config: BenchmarkConfig, key: str) -> str:
        return config.name

    def command(self) -> str:
        return shlex.join(["python", self.config.script, *self.config.argv])

    @classmethod
    def upgrade(cls, data: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError("benchmark records have no schema 1; see legacy_engines_benchmark")


def legacy_engines_benchmark(data: dict[str, Any], *, name: str, argv: list[str]) -> dict[str, Any]:
    """The record JSON (schema 2, without key and digest) of a ``separation_engines.json`` written
    by ``benchmarks/separation_engines.py`` before benchmark records ({rows, full, meta})."""
    rows = []
    for r in data["rows"]:
        same = [k for k in r if k.startswith("same distances as ")]
        rows.append({"section": "Same data, every method (ℓ∞, train–train + test–train)", "group": r["data"],
                     "competitor": r["method"], "seconds": r["seconds"],
                     "agrees": r[same[0]] if same else None,
                     "metrics": {"G pair-dim/s": r.get("G pair-dim/s")}})
    reference = next((k[len("same distances as "):] for k in data["rows"][0] if k.startswith("same distances as ")),
                     None) if data["rows"] else None
    for f in data.get("full", []):
        rows.append({"section": "Full-size jobs of the default engine", "group": f"{f['job']} {f['norm']}",
                     "competitor": f"ours: {f.get('engine', '?')}", "seconds": f.get("seconds"),
                     "metrics": {k: f.get(k) for k in ("load_seconds", "train_min", "test_min", "peak_rss_gib")},
                     "error": f.get("error")})
    m = data["meta"]
    hw = m.get("hardware") or {}
    device = hw.get("gpu") or f"{hw.get('cpus')}-core {hw.get('machine')} CPU"
    baselines = [b for b in ("sklearn (paper)", "faiss-cpu IndexFlat") if any(r["method"] == b for r in data["rows"])]
    meta = {"created": m.get("created", ""), "toolkit_version": None, "git_commit": m.get("git_commit"),
            "versions": m.get("versions") or {},
            "hardware": {"machine": hw.get("machine", ""), "cpus": hw.get("cpus"), "processor": hw.get("processor", ""),
                         "gpu": hw.get("gpu")}, "host": m.get("host", ""), "seed": m.get("seed"),
            "data_source": None, "command": ["benchmarks/separation_engines.py", *argv]}
    return {"kind": "benchmark", "schema": 2,
            "config": {"name": name, "script": "benchmarks/separation_engines.py", "argv": argv, "params": {}},
            "result": {"device": device, "rows": rows, "baselines": baselines,
                       "references": {rows[0]["section"]: reference} if reference else {},
                       "title": "Separation engines", "description": ENGINES_DESCRIPTION, "notes": []},
            "timing": {}, "meta": meta}


ENGINES_DESCRIPTION = ("All methods ran in this one run on the same arrays; `G pair-dim/s` counts the work of "
                       "the plain method (every query against every other-class training point, times the "
                       "dimension), so engines that skip work show it as a higher rate.")

__all__ = ["BENCHMARK_ROOT", "BenchmarkConfig", "BenchmarkRecord", "BenchmarkResult", "BenchmarkRow",
           "ENGINES_DESCRIPTION", "legacy_engines_benchmark"]
