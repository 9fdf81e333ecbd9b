"""Where the toolkit may write: names from users as single safe path components, output roots
checked before any work, and record folders that stay below their root.

Every writer builds its paths through these functions, so that nothing is written or deleted
outside the roots the user chose.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from .errors import UsageError

#: The longest name accepted as one path component.
MAX_NAME = 120
_UNSAFE = re.compile(r"[^A-Za-z0-9._+=,@-]")


def safe_name(name, what: str = "name") -> str:
    """``name`` if it is one safe path component (letters, digits, ``._+=,@-``; not ``.``/``..``,
    no separator, not empty, at most :data:`MAX_NAME` characters), else :class:`UsageError`."""
    if not isinstance(name, str):
        raise UsageError(f"{what} must be a string, got {type(name).__name__}.")
    if not name or name in (".", "..") or name.startswith("-") or len(name) > MAX_NAME:
        raise UsageError(f"{what} {name!r} is not a usable name: pass 1 to {MAX_NAME} letters, digits or ._+=,@- "
                         "(not '.', '..' and not starting with '-').")
    bad = sorted(set(_UNSAFE.findall(name)))
    if bad:
        raise UsageError(f"{what} {name!r} contains {' '.join(map(repr, bad))}: a name is one folder name; use "
                         "letters, digits and ._+=,@- only (no path separators).")
    return name


def slug(text: str) -> str:
    """``text`` turned into a safe name by replacing every other character with ``-``."""
    out = _UNSAFE.sub("-", str(text)).strip("-.") or "x"
    return out[:MAX_NAME]


def below(root: str | os.PathLike, relative: str | os.PathLike) -> Path:
    """``root / relative``, refusing (UsageError) a path that would leave ``root``."""
    root = Path(root)
    rel = Path(relative)
    if rel.is_absolute() or any(part in ("..", "") for part in rel.parts):
        raise UsageError(f"{rel} is not a path below {root}: names are single folder names.")
    return root / rel


def cache_folder(env: str, name: str) -> Path:
    """``$<env>``, else ``$XDG_CACHE_HOME/separation/<name>`` (``~/.cache/separation/<name>``)."""
    given = os.environ.get(env)
    if given:
        return Path(given).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "separation" / name


def writable_folder(path: str | os.PathLike, what: str = "--out") -> Path:
    """``path`` if it is a folder that exists and can be written, or can be created (it is not
    created here: nothing is written before the work is done); else :class:`UsageError`."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UsageError(f"{what} {path} is a file; pass a folder (it is created if missing).")
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise UsageError(f"{what} {path} cannot be created: {existing} is a file; pass another folder.")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"{what} {path} is not writable ({existing} is read-only); pass a writable folder.")
    return path


__all__ = ["MAX_NAME", "below", "cache_folder", "safe_name", "slug", "writable_folder"]
