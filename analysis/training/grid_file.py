"""Grid files (torch-free): a named list of training runs, expanded into one TrainConfig each.

A grid file (YAML or JSON)::

    grid: mnist_cpu              # name: checkpoints/<grid>/<run>/, <results root>/<grid>/<run>/
    base:                        # TrainConfig fields shared by every run (``profile`` supplies
      profile: cpu               #   the per-dataset budget, see configs/profiles/)
      dataset: mnist
    vary:                        # optional: every run is repeated for each combination
      dropout: [0.0, 0.5]
    runs:                        # one entry per method setting (TrainConfig fields)
      - {method: natural}
      - {method: trades, method_params: {beta: 6}}

A run's name is its ``name`` field, else derived from method, main parameter and dropout
(``trades-b6-drop0.5``); varied fields other than dropout (or an explicit name) add a
``-<field><value>`` suffix.
"""
from __future__ import annotations

import dataclasses
import itertools
import os
from typing import Any, Mapping

from separation.core.config_files import load_mapping
from separation.core.errors import ConfigError, UsageError
from separation.core.paths import safe_name

from ..train_config import TrainConfig, build_config

_GRID_KEYS = {"grid", "base", "vary", "runs", "description"}


@dataclasses.dataclass
class Grid:
    """A named list of run configs."""

    name: str
    configs: list[TrainConfig]
    description: str = ""

    def names(self) -> list[str]:
        return [c.name for c in self.configs]


def _suffix(key: str, value: Any) -> str:
    return f"-{key}{value:g}" if isinstance(value, float) else f"-{key}{value}"


def expand_grid(spec: Mapping[str, Any], *, overrides: list[str] | tuple[str, ...] = (),
                source: str = "grid") -> Grid:
    """Turn a grid mapping into one :class:`TrainConfig` per run (overrides apply to every run)."""
    unknown = sorted(set(spec) - _GRID_KEYS)
    if unknown:
        raise ConfigError(f"{source}: unknown key(s) {', '.join(unknown)}; a grid has "
                          f"{', '.join(sorted(_GRID_KEYS))}.")
    name = spec.get("grid")
    if not name or not isinstance(name, str):
        raise ConfigError(f"{source}: 'grid' must name the grid (a folder name, e.g. mnist_cpu).")
    try:
        safe_name(name, "grid")
    except UsageError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    base = spec.get("base") or {}
    runs = spec.get("runs") or []
    vary = spec.get("vary") or {}
    if not isinstance(runs, list) or not runs:
        raise ConfigError(f"{source}: 'runs' must be a non-empty list of run settings.")
    if not isinstance(vary, Mapping) or any(not isinstance(v, list) or not v for v in vary.values()):
        raise ConfigError(f"{source}: 'vary' must map fields to non-empty lists of values.")
    keys = list(vary)
    configs = []
    for i, run in enumerate(runs):
        if not isinstance(run, Mapping):
            raise ConfigError(f"{source}: runs[{i}] must be a mapping of TrainConfig fields.")
        for combo in itertools.product(*(vary[k] for k in keys)):
            assignment = dict(zip(keys, combo))
            try:
                cfg = build_config(base, run, assignment, overrides=overrides)
            except ConfigError as exc:
                raise ConfigError(f"{source}: runs[{i}] {dict(run)} with {assignment}: {exc}") from None
            explicit = bool(run.get("name"))
            name_ = cfg.name
            for k, v in assignment.items():
                if explicit or k != "dropout":
                    name_ += _suffix(k, v)
            if name_ != cfg.name:
                cfg = dataclasses.replace(cfg, name=name_)
            configs.append(cfg)
    names = [c.name for c in configs]
    for n in names:
        try:
            safe_name(n, "run name")
        except UsageError as exc:
            raise ConfigError(f"{source}: {exc}") from None
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ConfigError(f"{source}: run names repeat ({', '.join(dup)}); give those runs distinct "
                          "'name' fields.")
    return Grid(name, configs, str(spec.get("description") or ""))


def load_grid(path: str | os.PathLike, *, overrides: list[str] | tuple[str, ...] = ()) -> Grid:
    return expand_grid(load_mapping(path), overrides=overrides, source=str(path))


__all__ = ["Grid", "expand_grid", "load_grid"]
