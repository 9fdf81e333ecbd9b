"""The training methods the paper compares, in one registry (torch-free).

One :class:`Method` per method: its config name, the name the paper's tables use, the loss
function (by name, in :mod:`analysis.losses`), its parameters with their defaults (the values of
the official code where it has one), and the parameter its table labels show. Configurations
(:mod:`analysis.train_config`), the losses, the reports and the docs all read it; the order of
:data:`METHODS` is the order of the paper's Tables 2 and 3.

Adding a method: write its loss in :mod:`analysis.losses` (``loss(model, x, y, *, reduction, ...)``)
and add one :class:`Method` entry here; configs, ``make_loss``, the tables and the training
guide's method table pick it up.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Mapping

from separation.core.errors import ConfigError

#: Where an inner attack of a training loss runs: in train mode (the official code) or eval mode.
ATTACK_MODES = ("train", "eval")


@dataclasses.dataclass(frozen=True)
class Param:
    """One parameter of a method: its config key (``method_params.<name>``), default, the keyword of
    the loss function that takes it (when it differs: ``lambda`` is a Python keyword), allowed
    values of a string parameter, and whether a number must be strictly positive."""

    name: str
    default: Any
    keyword: str = ""
    choices: tuple[str, ...] = ()
    positive: bool = False

    @property
    def loss_keyword(self) -> str:
        return self.keyword or self.name

    def check(self, value: Any) -> Any:
        """``value`` as this parameter takes it, or :class:`ConfigError` naming the parameter."""
        key = f"method_params.{self.name}"
        if isinstance(self.default, bool):
            if not isinstance(value, bool):
                raise ConfigError(f"{key}: must be true/false, got {value!r}.")
        elif isinstance(self.default, int):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{key}: must be a positive integer, got {value!r}.")
        elif isinstance(self.default, float):
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
                raise ConfigError(f"{key}: must be a non-negative number, got {value!r}.")
            value = float(value)
            if self.positive and value <= 0:
                raise ConfigError(f"{key}: must be > 0, got {value!r}.")
        elif value not in self.choices:
            raise ConfigError(f"{key}: {value!r} is not one of {', '.join(self.choices)}.")
        return value


@dataclasses.dataclass(frozen=True)
class Method:
    """A training method: ``name`` (config), ``paper_name`` (tables), ``loss`` (the function's name in
    :mod:`analysis.losses`), ``params``, ``main_param`` (parameter and symbol shown in labels, e.g.
    ``("beta", "β")``), whether the loss takes the threat model's ``eps`` and ``norm``, and where
    the method comes from."""

    name: str
    paper_name: str
    loss: str
    params: tuple[Param, ...] = ()
    main_param: tuple[str, str] | None = None
    uses_eps: bool = True
    uses_norm: bool = True
    source: str = ""

    @property
    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.params}

    def complete(self, params: Mapping[str, Any] | None) -> dict[str, Any]:
        """``params`` with the defaults filled in, each checked; unknown keys are a ConfigError."""
        params = dict(params or {})
        known = {p.name for p in self.params}
        unknown = sorted(set(params) - known)
        if unknown:
            raise ConfigError(f"method_params: {', '.join(unknown)} not understood by method {self.name!r} "
                              f"(its parameters: {', '.join(p.name for p in self.params) or 'none'}).")
        return {p.name: p.check(params.get(p.name, p.default)) for p in self.params}

    def loss_keywords(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Completed config parameters as the loss function's keyword arguments."""
        return {p.loss_keyword: params[p.name] for p in self.params}


_INNER_PGD = (Param("steps", 10), Param("step_frac", 0.2, positive=True), Param("random_start", True),
              Param("attack_mode", "train", choices=ATTACK_MODES))

#: Every method, in the order of the paper's tables.
METHODS: dict[str, Method] = {m.name: m for m in (
    Method("natural", "Natural", "natural_loss", uses_eps=False, uses_norm=False,
           source="cross-entropy on clean points"),
    Method("gr", "GR", "gr_loss",
           (Param("lambda", 1.0, keyword="lam"), Param("fd_step", 1.0, positive=True),
            Param("direction", "l2", choices=("l2", "dual")), Param("same_dropout_mask", True)),
           uses_eps=False, source="TULIP gradient regularisation (Finlay & Oberman 2019)"),
    Method("llr", "LLR", "llr_loss",
           (Param("lambda", 4.0, keyword="lam"), Param("mu", 3.0), Param("steps", 2),
            Param("step_frac", 0.5, positive=True), Param("init_std", 0.001),
            Param("variant", "intended", choices=("intended", "official")), Param("same_dropout_mask", True)),
           source="local linearity regularisation (Qin et al. 2019)"),
    Method("at", "AT", "at_loss", _INNER_PGD, source="adversarial training (Madry et al. 2018)"),
    Method("rst", "RST", "rst_loss", (Param("lambda", 1.0, keyword="lam"), *_INNER_PGD), main_param=("lambda", "λ"),
           source="robust self-training's loss CE(x) + λ CE(x_adv) (Raghunathan et al. 2020)"),
    Method("trades", "TRADES", "trades_loss",
           (Param("beta", 6.0), Param("steps", 10), Param("step_frac", 0.2, positive=True),
            Param("init_std", 0.001), Param("clip_start", True)), main_param=("beta", "β"),
           source="TRADES (Zhang et al. 2019)"),
)}


def method(name: str) -> Method:
    """The registry entry of ``name``, or :class:`ConfigError` listing the methods."""
    if name not in METHODS:
        raise ConfigError(f"method: {name!r} is not one of {', '.join(METHODS)}.")
    return METHODS[name]


def complete_method_params(name: str, params: Mapping[str, Any] | None) -> dict[str, Any]:
    """The method's parameters with defaults filled in; unknown keys/values raise ConfigError."""
    return method(name).complete(params)


__all__ = ["ATTACK_MODES", "METHODS", "Method", "Param", "complete_method_params", "method"]
