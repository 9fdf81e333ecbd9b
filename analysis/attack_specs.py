"""The attacks an evaluation can run, by name, with the paper's settings (torch-free).

The paper's evaluation (Yang et al. 2020, Sec. 5): PGD with 10 steps of size eps/5 and one random
restart, and the multi-targeted attack with 20 steps of size eps/10; robust accuracy is the
per-example worst case over the attacks (:mod:`analysis.attack_suite` runs them).
"""
from __future__ import annotations

from typing import Any, Mapping

from separation.core.errors import InvalidInputError, InvalidTypeError

#: Attack names understood by :func:`run_attacks` / ``--attacks``.
ATTACK_NAMES = ("pgd", "multitargeted", "autoattack")

#: The paper's settings; ``None`` step sizes mean eps/5 (PGD) and eps/10 (multi-targeted).
DEFAULT_ATTACK_PARAMS: dict[str, dict[str, Any]] = {
    "pgd": {"steps": 10, "step_size": None, "restarts": 1, "random_start": True, "loss": "ce"},
    "multitargeted": {"steps": 20, "step_size": None, "restarts": 1, "random_start": True},
    "autoattack": {"version": "standard"},
}


def attack_spec(spec: str | Mapping[str, Any]) -> dict[str, Any]:
    """Normalise ``"pgd"`` or ``{"name": "pgd", "steps": 20}`` to a full ``{"name": ..., **params}``."""
    if isinstance(spec, str):
        spec = {"name": spec}
    if not isinstance(spec, Mapping) or "name" not in spec:
        raise InvalidTypeError(f"An attack is a name or a dict with 'name', got {spec!r}.")
    name = str(spec["name"]).strip().lower().replace("-", "").replace("_", "")
    name = {"multitarget": "multitargeted", "mt": "multitargeted", "aa": "autoattack"}.get(name, name)
    if name not in ATTACK_NAMES:
        raise InvalidInputError(f"Unknown attack {spec['name']!r}. Choose from: {', '.join(ATTACK_NAMES)}.")
    params = dict(DEFAULT_ATTACK_PARAMS[name])
    unknown = set(spec) - {"name"} - set(params)
    if unknown:
        raise InvalidInputError(f"attack {name}: unknown option(s) {', '.join(sorted(unknown))}; "
                         f"accepted: {', '.join(params)}.")
    params.update({k: v for k, v in spec.items() if k != "name"})
    return {"name": name, **params}


__all__ = ["ATTACK_NAMES", "DEFAULT_ATTACK_PARAMS", "attack_spec"]
