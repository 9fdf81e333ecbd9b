"""Packages whose names load their module on first use (``separation.core.lazy``)."""
from __future__ import annotations

import subprocess
import sys

import pytest

from helpers.paths import REPO


def test_a_lazy_name_loads_its_module_on_first_use_and_dir_lists_it():
    code = ("import sys, separation, analysis, analysis.training, analysis.models\n"
            "assert 'separation.core.datasets' not in sys.modules and 'torch' not in sys.modules\n"
            "assert 'load_dataset' in dir(separation) and 'train' in dir(analysis.training)\n"
            "assert separation.load_dataset.__module__ == 'separation.core.datasets'\n"
            "assert 'separation.core.datasets' in sys.modules and 'torch' not in sys.modules\n"
            "assert analysis.training.train.__module__ == 'analysis.training.loop' and 'torch' in sys.modules\n")
    p = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr


def test_an_unknown_name_is_an_attribute_error():
    import analysis.models
    import separation

    for module in (separation, analysis.models):
        with pytest.raises(AttributeError, match=f"module '{module.__name__}' has no attribute 'nothing_here'"):
            getattr(module, "nothing_here")
