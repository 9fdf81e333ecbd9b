"""Fault injection for tests: make the toolkit's write paths and tasks interruptible at named points.

``$SEPARATION_FAULT`` names one point and what happens there: ``kill:POINT`` (SIGKILL),
``sigint:POINT`` (SIGINT), ``bug:POINT`` (an internal ``TypeError``, as a bug would raise) or
``pause:POINT`` (create ``$SEPARATION_FAULT_DIR/POINT.paused``, then wait for ``POINT.go``).
Unset, :func:`fault` does nothing. Points: ``startup`` (a command's first line), ``before-work``
(a record command, after its checks), ``after-arrays`` / ``after-json`` / ``before-replace`` (a
record write), ``block-task`` (a cluster task).
"""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path


def fault(point: str) -> None:
    """Interrupt here when ``$SEPARATION_FAULT`` names this point (tests only; a no-op otherwise)."""
    spec = os.environ.get("SEPARATION_FAULT")
    if not spec or ":" not in spec:
        return
    action, _, where = spec.partition(":")
    if where != point:
        return
    if action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif action == "sigint":
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(1)  # the handler runs at the next bytecode boundary
    elif action == "bug":
        raise TypeError(f"fault injected at {point} (SEPARATION_FAULT)")
    elif action == "pause":
        folder = Path(os.environ.get("SEPARATION_FAULT_DIR", "."))
        (folder / f"{point}.paused").touch()
        while not (folder / f"{point}.go").exists():
            time.sleep(0.02)


__all__ = ["fault"]
