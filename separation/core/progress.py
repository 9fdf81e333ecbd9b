"""Progress bars that appear where a person is watching, and stay out of logs.

``progress=None`` (the default of the toolkit's long-running functions) means *interactive*: on in
a terminal and in a Jupyter notebook, off when output goes to a file or a pipe. In a notebook
without ``ipywidgets`` the plain text bar is used (no ``IProgress not found`` warning).
:func:`compiling_notice` says once, before a numba kernel compiles for the first time on this
machine, that the wait is compilation (later runs load the compiled code from numba's cache).
"""
from __future__ import annotations

import importlib.util
import logging
import sys
from pathlib import Path
from typing import Any, Iterable

log = logging.getLogger("separation.core.progress")
_announced: set[str] = set()


def in_notebook() -> bool:
    """True inside a Jupyter (IPython kernel) session."""
    shell = sys.modules.get("IPython")
    if shell is None:
        return False
    try:
        ip = shell.get_ipython()
    except AttributeError:
        return False
    return ip is not None and "IPKernelApp" in getattr(ip, "config", {})


def interactive() -> bool:
    """A person is probably watching: stderr is a terminal, or this is a notebook."""
    try:
        tty = sys.stderr.isatty()
    except (AttributeError, ValueError):
        tty = False
    return tty or in_notebook()


def resolve(progress: bool | None) -> bool:
    """``progress`` as given, or :func:`interactive` for None."""
    return interactive() if progress is None else bool(progress)


def _tqdm():
    if in_notebook() and importlib.util.find_spec("ipywidgets") is not None:
        from tqdm.notebook import tqdm
    else:
        from tqdm.std import tqdm
    return tqdm


class _Silent:
    """The no-op stand-in for a disabled bar."""

    def __init__(self, iterable: Iterable | None = None):
        self.iterable = iterable

    def __iter__(self):
        return iter(self.iterable or ())

    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass


def progress_bar(iterable: Iterable | None = None, *, enabled: bool | None = None, **kwargs: Any):
    """A tqdm bar (``leave=False`` unless given) when enabled (see :func:`resolve`), else a no-op
    object with the same ``update`` / ``close`` / iteration interface."""
    if not resolve(enabled):
        return _Silent(iterable)
    kwargs.setdefault("leave", False)
    kwargs.setdefault("file", sys.stderr)
    return _tqdm()(iterable, **kwargs)


def _cached_on_disk(kernel) -> bool:
    cache = getattr(kernel, "_cache", None)
    path = getattr(cache, "_cache_path", None)
    func = getattr(kernel, "py_func", None)
    name = getattr(func, "__qualname__", None)
    if not path or not name:
        return True  # cannot tell: say nothing
    line = func.__code__.co_firstlineno  # numba's index file: <module>.<qualname>-<line>.py<ver>.nbi
    return any(Path(path).glob(f"*.{name}-{line}.py*.nbi"))


def compiling_notice(kernel, what: str, *, enabled: bool | None = None) -> None:
    """Before the first call of numba ``kernel`` in this process: if it is not in numba's
    on-disk cache yet, say that compilation (first run only) is what follows."""
    if what in _announced or getattr(kernel, "signatures", [None]):
        return
    _announced.add(what)
    if _cached_on_disk(kernel):
        return
    msg = f"compiling the {what} kernels (first run only; numba caches them for later runs) ..."
    if resolve(enabled):
        print(msg, file=sys.stderr, flush=True)
    else:
        log.info("%s", msg)


__all__ = ["compiling_notice", "in_notebook", "interactive", "progress_bar", "resolve"]
