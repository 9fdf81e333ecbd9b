"""The repository's places, wherever a test lives below ``tests/``."""
from __future__ import annotations

import os
from pathlib import Path

#: The repository root.
REPO = Path(__file__).resolve().parents[2]
#: ``tests/`` itself, and its fixtures (record sets and old-layout records).
TESTS = REPO / "tests"
FIXTURES = TESTS / "fixtures"
#: ``../shared/data`` beside the repository (``$SHARED_DATA`` overrides it, e.g. in mutation testing's copy).
SHARED_DATA = Path(os.environ.get("SHARED_DATA") or REPO.parent / "shared" / "data")
