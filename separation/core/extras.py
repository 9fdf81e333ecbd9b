"""Optional dependencies: the core install (separation, records, reports) needs only numpy, scipy,
numba, pandas, matplotlib and a few small libraries; what needs more is an *extra* of the package:

==========  ===========================================================================
``torch``   torch, torchvision, torchattacks: trained models, attacks, training, the
            constructed classifier's ``nn.Module``, the l2 CPU search, CIFAR/SVHN/ImageNet
``cluster`` dask, distributed, dask-jobqueue: ``--scheduler``, :class:`~separation.engines.DaskEngine`
``faiss``   faiss-cpu: the ``faiss`` engine
``gpu``     faiss-gpu, dask-cuda (with ``torch``): GPU engines and GPU workers
==========  ===========================================================================

:func:`require` imports a module of an extra or raises one line that names the extra to install;
:func:`installed` says whether it is there (for code that has a way without it).
"""
from __future__ import annotations

import importlib
from types import ModuleType

from .errors import MissingDependencyError

#: module -> the extra that installs it
EXTRA_OF = {"torch": "torch", "torchvision": "torch", "torchattacks": "torch", "dask": "cluster",
            "distributed": "cluster", "dask_jobqueue": "cluster", "faiss": "faiss"}


def install_hint(extra: str) -> str:
    """How to install an extra, from PyPI or in a clone."""
    return f"pip install 'separation-toolkit[{extra}]' (in a clone: pip install -e '.[{extra}]')"


def _imported(module: str) -> ModuleType | None:
    """``module`` imported, or None when it is not installed (an ImportError of another module --
    the module is there but broken -- propagates)."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        if exc.name is not None and exc.name.split(".")[0] != module.split(".")[0]:
            raise  # the module is there but broken: not a missing extra
        return None


def installed(module: str) -> bool:
    """Whether ``module`` of an extra can be imported here (it is imported to find out)."""
    return _imported(module) is not None


def require(module: str, feature: str) -> ModuleType:
    """``module`` imported, or :class:`MissingDependencyError`: "``feature`` needs ``module``: install ..."."""
    found = _imported(module)
    if found is None:
        extra = EXTRA_OF.get(module.split(".")[0], module)
        raise MissingDependencyError(f"{feature} needs {module}, which is not installed: {install_hint(extra)}")
    return found


__all__ = ["EXTRA_OF", "install_hint", "installed", "require"]
