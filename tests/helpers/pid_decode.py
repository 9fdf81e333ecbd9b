"""An image decoder for the decoded-store tests that notes which process ran it: the real
``decode_image``, plus an empty file named by the process id in ``$PID_DECODE_DIR``."""
from __future__ import annotations

import os
from pathlib import Path

from separation.core.image_folders import decode_image


def decode_noting_pid(path: Path, image_size: int | None):
    Path(os.environ["PID_DECODE_DIR"], str(os.getpid())).touch()
    return decode_image(path, image_size)
