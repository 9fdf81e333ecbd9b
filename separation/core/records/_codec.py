"""Dataclasses to plain JSON and back, checked against their type hints.

:func:`encode` turns a record (nested dataclasses, dicts, lists, tuples, numpy scalars, paths)
into JSON-able values; non-finite floats become the strings ``"inf"``, ``"-inf"`` and ``"nan"``
(JSON has no such numbers). :func:`decode` rebuilds the typed object from such values and raises
:class:`RecordFormatError`, naming the offending field, for anything that does not fit: a string
where a number belongs, a missing or unknown field, a list where a mapping belongs.
"""
from __future__ import annotations

import dataclasses
import math
import types
import typing
from pathlib import Path
from typing import Any

import numpy as np

_NONFINITE = {"inf": math.inf, "-inf": -math.inf, "nan": math.nan}


class RecordFormatError(ValueError):
    """A record's JSON does not have the shape of its type (the message names the field)."""


def encode(obj: Any) -> Any:
    """JSON-able values of ``obj`` (dataclass fields in declaration order; ``repr=False``-only
    fields with ``metadata={"json": False}`` are left out)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: encode(getattr(obj, f.name)) for f in dataclasses.fields(obj)
                if f.metadata.get("json", True)}
    if isinstance(obj, dict):
        return {str(k): encode(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [encode(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return encode(obj.tolist())
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        f = float(obj)
        return f if math.isfinite(f) else ("nan" if math.isnan(f) else "inf" if f > 0 else "-inf")
    if isinstance(obj, Path):
        return obj.as_posix()
    return obj


def _hints(cls) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def decode(tp: Any, data: Any, where: str = "record") -> Any:
    """``data`` (JSON values) as an instance of type ``tp``; RecordFormatError when it does not fit."""
    if tp is Any or tp is object:
        return data
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if data is None and type(None) in args:
            return None
        errors = []
        for arm in (a for a in args if a is not type(None)):
            try:
                return decode(arm, data, where)
            except RecordFormatError as exc:
                errors.append(str(exc))
        raise RecordFormatError(errors[0] if len(errors) == 1 else f"{where}: {data!r} fits none of {tp}")
    if origin is typing.Literal:
        if data in args:
            return data
        raise RecordFormatError(f"{where}: {data!r} is not one of {', '.join(map(repr, args))}")
    if dataclasses.is_dataclass(tp):
        return _decode_dataclass(tp, data, where)
    if origin in (list, tuple) or tp in (list, tuple):
        if not isinstance(data, list):
            raise RecordFormatError(f"{where}: expected a list, got {type(data).__name__}")
        if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
            if len(args) != len(data):
                raise RecordFormatError(f"{where}: expected {len(args)} values, got {len(data)}")
            return tuple(decode(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, data)))
        item = args[0] if args else Any
        out = [decode(item, v, f"{where}[{i}]") for i, v in enumerate(data)]
        return tuple(out) if (origin is tuple or tp is tuple) else out
    if origin is dict or tp is dict:
        if not isinstance(data, dict):
            raise RecordFormatError(f"{where}: expected a mapping, got {type(data).__name__}")
        value = args[1] if args else Any
        return {str(k): decode(value, v, f"{where}.{k}") for k, v in data.items()}
    if tp is float:
        if isinstance(data, str) and data in _NONFINITE:
            return _NONFINITE[data]
        if isinstance(data, (int, float)) and not isinstance(data, bool):
            return float(data)
        raise RecordFormatError(f"{where}: expected a number, got {data!r}")
    if tp is int:
        if isinstance(data, int) and not isinstance(data, bool):
            return data
        raise RecordFormatError(f"{where}: expected an integer, got {data!r}")
    if tp is bool:
        if isinstance(data, bool):
            return data
        raise RecordFormatError(f"{where}: expected true/false, got {data!r}")
    if tp is str:
        if isinstance(data, str):
            return data
        raise RecordFormatError(f"{where}: expected a string, got {data!r}")
    if tp is type(None):
        if data is None:
            return None
        raise RecordFormatError(f"{where}: expected null, got {data!r}")
    raise TypeError(f"{where}: cannot decode type {tp!r}")  # pragma: no cover - a programming error


def _decode_dataclass(cls, data: Any, where: str):
    if not isinstance(data, dict):
        raise RecordFormatError(f"{where}: expected a mapping, got {type(data).__name__}")
    hints = _hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init and f.metadata.get("json", True)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise RecordFormatError(f"{where}: unknown field(s) {', '.join(unknown)}")
    kwargs = {}
    for name, f in fields.items():
        if name in data:
            kwargs[name] = decode(hints[name], data[name], f"{where}.{name}")
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise RecordFormatError(f"{where}: missing field {name!r}")
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise RecordFormatError(f"{where}: {exc}") from None


__all__ = ["RecordFormatError", "decode", "encode"]
