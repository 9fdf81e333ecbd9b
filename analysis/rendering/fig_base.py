"""What every figure shares: a :class:`matplotlib.figure.Figure` on the Agg canvas (no pyplot state,
no display needed), written atomically as PNG and PDF without timestamps, so unchanged records give
byte-identical files."""
from __future__ import annotations

import io
import logging
import os
from pathlib import Path

from .collect import write_artefact

log = logging.getLogger(__name__)


class FigureSkipped(Exception):
    """A figure that cannot be drawn from what is stored (the message says why and what to do)."""


def new_figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig, out_dir: str | os.PathLike, stem: str, *, dpi: int = 150) -> list[Path]:
    """``<stem>.png`` and ``<stem>.pdf``, atomically, without creation dates in the metadata."""
    out = []
    for fmt, meta in (("png", {"Software": None}), ("pdf", {"CreationDate": None, "Producer": None,
                                                           "Creator": None})):
        buf = io.BytesIO()
        fig.savefig(buf, format=fmt, dpi=dpi, metadata=meta)
        out.append(write_artefact(Path(out_dir) / f"{stem}.{fmt}", buf.getvalue()))
    log.info("wrote %s.png/.pdf", Path(out_dir) / stem)
    return out


__all__ = ["FigureSkipped", "new_figure", "save_figure"]
