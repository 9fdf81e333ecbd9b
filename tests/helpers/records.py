"""Record folders as the tests look for them."""
from __future__ import annotations

from pathlib import Path


def record_folders(root) -> list[Path]:
    """Every record folder below ``root`` (sorted)."""
    return sorted(p.parent for p in Path(root).rglob("record.json"))


def only_record(root) -> Path:
    """The one record folder below ``root`` (the test fails if there is not exactly one)."""
    found = record_folders(root)
    assert len(found) == 1, f"expected one record below {root}, found {found}"
    return found[0]
