"""Downloads that leave either the complete files or nothing.

torchvision's ``download=True`` writes into the data folder as it goes: a failed or interrupted
download leaves partial archives there. :func:`download_into` runs it in a fresh temporary folder
beside the data and moves the files into place only once every file has arrived (and passed
torchvision's checksum); any failure becomes one :class:`DownloadError` line that names the URL, the
reason and where the files can be put by hand.
"""
from __future__ import annotations

import contextlib
import io
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable

from .errors import DatasetNotFoundError, DownloadError, UnwritableError


def nearest_existing(path: Path) -> Path:
    p = Path(path).absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def check_writable(path: Path, what: str) -> None:
    """Raise :class:`UnwritableError` unless ``path`` can be created (or, existing, written)."""
    anc = nearest_existing(path)
    if not anc.is_dir() or not os.access(anc, os.W_OK | os.X_OK):
        raise UnwritableError(f"{what}: {anc} is not a writable folder (needed for {path}). Pass --data-root "
                              "to a folder you can write.")


def _reason(exc: BaseException, printed: str) -> str:
    """The innermost cause, in one line (torchvision prints the per-mirror errors)."""
    lines = [ln.strip() for ln in printed.splitlines() if ln.strip()]
    errors = [ln for ln in lines if "rror" in ln or "refused" in ln or "timed out" in ln]
    text = errors[-1] if errors else str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
    for line in str(exc).splitlines()[::-1]:  # torchvision's "Tried <mirror>, got: <error>" summary
        if line.strip() and not line.startswith(("Tried", "Error downloading")):
            text = line.strip()
            break
    return " ".join(text.split())


def _merge(src: Path, dst: Path) -> None:
    for path in sorted(src.rglob("*")):
        if path.is_file():
            target = dst / path.relative_to(src)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, target)


def download_into(name: str, root: Path, fetch: Callable[[Path], None], *, url: str, where: str) -> None:
    """Run ``fetch(folder)`` (a torchvision download into ``folder``) in a temporary folder under
    ``root``; on success move what it wrote into ``root``, else raise :class:`DownloadError`."""
    root = Path(root).absolute()
    check_writable(root, name)
    existing = nearest_existing(root)
    created = [p for p in [root, *root.parents] if p != existing and existing in p.parents]
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".download-{name}-", dir=root))
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
            fetch(tmp)
        _merge(tmp, root)
    except (OSError, RuntimeError, ValueError) as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        for p in created:  # the folders this call made, deepest first, if still empty
            with contextlib.suppress(OSError):
                p.rmdir()
        raise DownloadError(f"could not download {name} from {url}: {_reason(exc, printed.getvalue())}; put the "
                            f"files at {where} (torchvision's layout) and run again without --download") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def torchvision_url(cls) -> str:
    """Where a torchvision dataset class downloads from (its first mirror)."""
    if getattr(cls, "mirrors", None):
        return str(cls.mirrors[0])
    if getattr(cls, "url", None):
        return str(cls.url)
    if getattr(cls, "split_list", None):
        return str(next(iter(cls.split_list.values()))[0]).rsplit("/", 1)[0] + "/"
    return f"torchvision.datasets.{cls.__name__}"


__all__ = ["DatasetNotFoundError", "DownloadError", "check_writable", "download_into", "nearest_existing", "torchvision_url"]
