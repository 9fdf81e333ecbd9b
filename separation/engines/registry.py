"""The engines by name, and :func:`get_engine`: the fastest available engine that has a capability."""
from __future__ import annotations

import logging

from ..core.errors import InvalidInputError
from ..core.extras import install_hint
from .base import Engine, check_capability, lacks
# the engines register themselves in this order (the order engines_with names them)
from .reference import ReferenceEngine
from .cpu import CPUEngine
from .faiss_engine import FaissEngine, num_gpus
from .cuda import CUDAEngine, cuda_available

log = logging.getLogger("separation.engines")

ENGINES: dict[str, type[Engine]] = {
    "reference": ReferenceEngine,
    "cpu": CPUEngine,
    "faiss": FaissEngine,
    "cuda": CUDAEngine,
}
# what an engine that is not available needs (the reference engine always is)
_MISSING = {"cpu": "install numba (a dependency of this package: reinstall it)",
            "cuda": "it needs a CUDA GPU visible to torch (and torch: " + install_hint("torch") + ")",
            "faiss": "it needs faiss: " + install_hint("faiss") + ", or faiss-gpu: the 'gpu' extra"}


def available_engines() -> list[str]:
    """Names of the engines that can run on this machine."""
    return [name for name, cls in ENGINES.items() if cls.available()]


def auto_engine_name(capability: str | None = None) -> str:
    """The fastest available engine (that has ``capability``, when given): CUDA (torch) > FAISS on
    GPU > numba CPU (> the reference)."""
    order = []
    if cuda_available():
        order.append("cuda")
    if FaissEngine.available() and num_gpus() > 0:
        order.append("faiss")
    order += ["cpu", "reference"]
    if capability is not None:
        check_capability(capability)
        order = [name for name in order if ENGINES[name].can(capability)]
    return order[0]


def get_engine(engine: str | Engine = "auto", *, capability: str | None = None) -> Engine:
    """Resolve an engine name (or pass an :class:`Engine` instance through). With ``capability``
    (one of :data:`~.base.CAPABILITIES`), ``"auto"`` picks the fastest available engine that has
    it, and an engine without it is an InvalidInputError naming those that have it."""
    if capability is not None:
        check_capability(capability)
    if isinstance(engine, Engine):
        if capability is not None and not engine.can(capability):
            raise lacks(engine.name, capability, engine.unsupported.get(capability, "not implemented"))
        return engine
    if engine == "auto":
        engine = auto_engine_name(capability)
    if engine == "dask":
        raise InvalidInputError("The dask engine needs a cluster: pass engine=DaskEngine(client_or_address) "
                                "(or --engine dask --scheduler ADDRESS|local:N on the command line).")
    if engine not in ENGINES:
        raise InvalidInputError(
            f"Unknown engine {engine!r}. Use 'auto' or one of {', '.join(ENGINES)}."
        )
    cls = ENGINES[engine]
    if capability is not None and not cls.can(capability):
        raise lacks(engine, capability, cls.unsupported.get(capability, "not implemented"))
    if not cls.available():
        raise InvalidInputError(f"Engine {engine!r} is not available here: {_MISSING[engine]}. Use engine='auto'.")
    log.debug("using engine %s", engine)
    return cls()


__all__ = ["ENGINES", "auto_engine_name", "available_engines", "get_engine"]
