"""Configuration input without surprises: YAML read as users mean it, values checked against the
types of the fields they fill.

- :func:`load_yaml`: PyYAML's safe loader, plus ``1e-4`` read as a number (YAML 1.1 wants ``1.0e-4``
  and otherwise gives the *string* ``"1e-4"``); aliases (``*name``, the way to a "billion laughs"
  bomb) refused; nesting bounded (:data:`MAX_DEPTH`) and size bounded (:data:`MAX_BYTES`).
- :func:`load_mapping` (a YAML/JSON file holding a mapping), :func:`parse_override`
  (``field=value``), :func:`deep_merge`;
- :func:`check_field_types`: every field of a dataclass against its annotation, with booleans not
  counted as numbers, integers accepted for floats, and non-finite floats refused.
"""
from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
import re
import types
import typing
from pathlib import Path
from typing import Any, Mapping

import yaml

from .errors import ConfigError

#: The deepest nesting of mappings and lists a config file may have.
MAX_DEPTH = 32
#: The largest config text read (bytes).
MAX_BYTES = 1 << 20
#: The largest integer a config field takes (a 64-bit signed integer: seeds, counts, sizes).
MAX_INT = 2**63 - 1


class StrictLoader(yaml.SafeLoader):
    """The safe loader without aliases, with bounded depth and YAML 1.2 floats."""

    def __init__(self, stream):
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            raise yaml.composer.ComposerError(None, None, "aliases (*name) are not allowed in config files; "
                                              "write the value out", mark)
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise yaml.composer.ComposerError(None, None, f"nested deeper than {MAX_DEPTH} levels",
                                                  self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"))


def load_yaml(text: str | bytes, where: str = "config") -> Any:
    """The value of YAML ``text`` (see the module docstring); raises :class:`ConfigError`."""
    if len(text) > MAX_BYTES:
        raise ConfigError(f"{where}: {len(text)} bytes; config input is limited to {MAX_BYTES} bytes")
    try:
        return yaml.load(text, Loader=StrictLoader)  # noqa: S506 - StrictLoader is a SafeLoader
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where}: not valid YAML ({' '.join(str(exc).split())})") from None
    except RecursionError:
        raise ConfigError(f"{where}: nested too deeply") from None
    except ValueError as exc:  # a number of more digits than Python converts
        raise ConfigError(f"{where}: {str(exc)[:100]}") from None


def _kind(tp: Any) -> str:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        arms = [a for a in args if a is not type(None)]
        return " or ".join(_kind(a) for a in arms) + (" or null" if len(arms) < len(args) else "")
    if origin is list or tp is list:
        plural = {int: "integers", float: "numbers", str: "strings", bool: "booleans"}
        return f"a list of {plural.get(args[0], 'values')}" if args else "a list"
    if origin is dict or tp is dict:
        return "a mapping"
    return {int: "an integer", float: "a number", bool: "true/false", str: "a string"}.get(tp, str(tp))


def check_value(field: str, tp: Any, value: Any) -> Any:
    """``value`` as the annotation ``tp`` wants it (ints become floats for float fields), or
    :class:`ConfigError` naming the field, what it expects and what it got."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)

    def bad() -> ConfigError:
        return ConfigError(f"{field}: expected {_kind(tp)}, got {value!r}")

    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        arms = [a for a in args if a is not type(None)]
        if len(arms) == 1 and value is not None:
            try:
                return check_value(field, arms[0], value)
            except ConfigError as exc:
                if "must be finite" in str(exc):
                    raise
                raise bad() from None
        for arm in arms:
            try:
                return check_value(field, arm, value)
            except ConfigError:
                continue
        raise bad()
    if origin is list or tp is list:
        if not isinstance(value, (list, tuple)):
            raise bad()
        item = args[0] if args else Any
        return [check_value(f"{field}[{i}]", item, v) for i, v in enumerate(value)]
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise bad()
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise bad()
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad()
        if abs(value) > MAX_INT:
            raise ConfigError(f"{field}: {str(value)[:12]}... is too large (at most {MAX_INT})")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad()
        if not math.isfinite(value):
            raise ConfigError(f"{field}: must be finite, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise bad()
        return value
    return value


def check_field_types(obj: Any) -> None:
    """Check (and normalise in place) every field of the dataclass instance ``obj``."""
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        setattr(obj, f.name, check_value(f.name, hints[f.name], getattr(obj, f.name)))


def load_mapping(path: str | os.PathLike) -> dict[str, Any]:
    """Read a YAML or JSON file that must hold a mapping."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"Config file {path} not found.")
    try:
        raw = path.read_bytes()
        if path.suffix == ".json":
            data = json.loads(raw)
        else:
            data = load_yaml(raw, str(path))
    except (ValueError, UnicodeDecodeError) as exc:  # bad JSON, or a number of more digits than Python converts
        raise ConfigError(f"{path}: not valid JSON ({str(exc)[:100]}).") from None
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply.") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: must hold a mapping of field -> value, got {type(data).__name__}.")
    return data


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Recursive dict merge (override wins; nested dicts merged, everything else replaced)."""
    out = copy.deepcopy(dict(base))
    for k, v in override.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def parse_override(text: str) -> dict[str, Any]:
    """``"a.b=3"`` -> ``{"a": {"b": 3}}``; the value is parsed as YAML (numbers, lists, null, true)."""
    if "=" not in text:
        raise ConfigError(f"Override {text!r} must look like field=value (e.g. lr=0.01, "
                          "method_params.beta=3, milestones=[2,3]).")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError(f"Override {text!r} has an empty field name.")
    try:
        value = load_yaml(raw, f"override {key}") if raw.strip() else None
    except ConfigError:
        value = raw
    for part in reversed(key.split(".")):
        value = {part: value}
    return value


__all__ = ["ConfigError", "MAX_BYTES", "MAX_DEPTH", "MAX_INT", "StrictLoader", "check_field_types", "check_value", "deep_merge",
           "load_mapping", "load_yaml", "parse_override"]
