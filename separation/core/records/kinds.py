"""Record kinds and the jobs that write them, found by name through the package's entry points.

The foundation names no module above it: each kind registers itself in ``setup.cfg``
(``[options.entry_points]``, groups ``separation.record_kinds`` -> the record class and
``separation.record_jobs`` -> the job of its command), and a kind's class also registers on import
(:class:`~separation.core.records.Record` subclasses with a ``KIND``).
"""
from __future__ import annotations

import functools
import importlib.metadata as md
from typing import Any

#: The distribution whose entry points name the kinds.
DISTRIBUTION = "separation-toolkit"


@functools.lru_cache(maxsize=None)
def _group(group: str) -> dict[str, md.EntryPoint]:
    return {ep.name: ep for ep in md.entry_points(group=group)}


def entry_point(group: str, name: str) -> Any | None:
    """The object the entry point ``name`` of ``group`` names (imported now), or None."""
    ep = _group(group).get(name)
    return None if ep is None else ep.load()


def names(group: str) -> list[str]:
    """The names registered in ``group``, sorted."""
    return sorted(_group(group))


__all__ = ["DISTRIBUTION", "entry_point", "names"]
