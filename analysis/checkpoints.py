"""Checkpoint format shared by training and evaluation, with safe loading and clear errors.

A checkpoint is a file written by :func:`torch.save` holding a dict::

    {"model": state_dict,                       # required
     "config": {"arch": "cnn001",               # required for --arch-free loading
                "dropout": 0.0,                 # build_model's dropout argument
                "in_channels": 1, "num_classes": 10, "input_size": 28,   # optional, else the dataset's
                "arch_kwargs": {"relu_after_conv2": False},              # optional build_model kwargs
                "normalization": {"mean": [...], "std": [...]},         # optional: trained on normalised
                ...},                                                    #   inputs (Normalize wrapper)
     "optimizer": ..., "scheduler": ..., "epoch": int, "rng": ...}      # optional

A bare ``state_dict`` (as saved by ``torch.save(model.state_dict(), path)``) is accepted too; the
architecture must then come from elsewhere (``--arch``).

Files are read with ``torch.load(..., weights_only=True)``: only tensors, numbers, strings, lists,
tuples and dicts can be loaded, never arbitrary pickled objects. Store RNG states accordingly
(``torch.get_rng_state()`` tensors, ``numpy.random.Generator.bit_generator.state`` dicts of ints;
not ``np.random.get_state()``, which holds a numpy array).
"""
from __future__ import annotations

import io
import pickle
import struct
import logging
import os
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any, Mapping

import torch
import torch.nn as nn

from separation.core.errors import CheckpointError
from separation.core.records import atomic_write_bytes
from separation.core.errors import InvalidInputError

log = logging.getLogger(__name__)

#: config keys that map onto build_model arguments
_BUILD_KEYS = ("in_channels", "num_classes", "input_size")
_STRIP_PREFIXES = ("module.", "_orig_mod.")
#: What ``torch.load`` raises for a file that is not a (safely loadable) checkpoint.
_UNREADABLE = (pickle.UnpicklingError, RuntimeError, ValueError, EOFError, OSError, zipfile.BadZipFile,
               UnicodeDecodeError, AttributeError, KeyError, IndexError, struct.error)


def save_checkpoint(path: str | os.PathLike, *, model: nn.Module | Mapping[str, torch.Tensor],
                    config: Mapping[str, Any], optimizer=None, scheduler=None, epoch: int | None = None,
                    rng: Any = None, **extra: Any) -> Path:
    """Write a checkpoint in the shared format atomically (never a half-written file).

    ``model`` may be a module or a state dict; ``optimizer`` / ``scheduler`` objects or state dicts.
    ``config`` must name the architecture (``"arch"``).
    """
    if "arch" not in config:
        raise InvalidInputError("checkpoint config must contain 'arch' (e.g. {'arch': 'cnn001', 'dropout': 0.0}).")
    state = model.state_dict() if isinstance(model, nn.Module) else dict(model)
    ckpt: dict[str, Any] = {"model": state, "config": dict(config)}
    for key, obj in (("optimizer", optimizer), ("scheduler", scheduler)):
        if obj is not None:
            ckpt[key] = obj.state_dict() if hasattr(obj, "state_dict") else obj
    if epoch is not None:
        ckpt["epoch"] = int(epoch)
    if rng is not None:
        ckpt["rng"] = rng
    ckpt.update(extra)
    buf = io.BytesIO()
    torch.save(ckpt, buf)
    data = buf.getvalue()
    # fail now, not at load time, when something cannot be read back safely
    try:
        torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except _UNREADABLE as exc:
        raise CheckpointError(f"the checkpoint would not load with weights_only=True ({exc}). Store only "
                              "tensors, numbers, strings, lists and dicts (e.g. RNG states as tensors "
                              "or dicts of ints).") from None
    return atomic_write_bytes(path, data)


def _sniff(path: Path) -> str | None:
    """Why a file is not a torch checkpoint, judged from its first bytes; None if it looks like one."""
    with open(path, "rb") as f:
        head = f.read(512)
    if not head:
        return "the file is empty"
    text = head.lstrip().lower()
    if text.startswith(b"version https://git-lfs"):
        return "the file is a Git LFS pointer, not the checkpoint (run `git lfs pull`)"
    if text.startswith((b"<!doctype html", b"<html", b"<?xml", b"<head", b"<body", b"<")):
        return "the file looks like an HTML/XML page (a failed or redirected download?)"
    if text.startswith((b"{", b"[")):
        return "the file looks like JSON text, not a torch checkpoint"
    if head[:2] == b"PK":
        if not zipfile.is_zipfile(path):
            return "the zip archive is corrupt or truncated (an interrupted download or copy?)"
        return None
    if head[:1] == b"\x80":  # a pickle: torch's legacy format
        return None
    return "the file is not a torch checkpoint, or it is corrupt"


def load_checkpoint(path: str | os.PathLike, *, map_location="cpu") -> dict[str, Any]:
    """Read a checkpoint safely; return ``{"model": state_dict, "config": dict, ...}``.

    A bare state dict comes back as ``{"model": it, "config": {}}``. Raises
    :class:`CheckpointError` with the likely cause for anything else.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint {path} does not exist.")
    if path.is_dir():
        raise CheckpointError(f"checkpoint {path} is a folder; pass the checkpoint file inside it.")
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except _UNREADABLE as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        why = _sniff(path)
        if why is None and ("weights_only" in str(exc) or "Weights only load failed" in str(exc)):
            raise CheckpointError(
                f"{path}: refusing to unpickle arbitrary objects (torch.load weights_only=True failed: "
                f"{msg}). The file probably holds a whole pickled model; re-save it as "
                "{'model': model.state_dict(), 'config': {...}} with analysis.checkpoints.save_checkpoint "
                "(or torch.save(model.state_dict(), path)).") from None
        why = why or "the file is corrupt or truncated"
        raise CheckpointError(f"{path} cannot be read as a torch checkpoint: {why} "
                              f"(torch.load: {msg[:200]}). Re-download or re-create it.") from None
    if isinstance(obj, Mapping) and "model" in obj and isinstance(obj["model"], Mapping):
        out = dict(obj)
        out["config"] = dict(obj.get("config") or {})
        return out
    if isinstance(obj, Mapping) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return {"model": obj, "config": {}}
    if isinstance(obj, Mapping) and "state_dict" in obj and isinstance(obj["state_dict"], Mapping):
        out = {k: v for k, v in obj.items() if k != "state_dict"}
        out.update(model=obj["state_dict"], config=dict(obj.get("config") or {}))
        return out
    kind = type(obj).__name__ if not isinstance(obj, Mapping) else f"dict with keys {sorted(map(str, obj))[:8]}"
    raise CheckpointError(f"{path} holds a {kind}, not a checkpoint: expected a dict with 'model' "
                          "(a state dict) and 'config', or a bare state dict.")


def _clean_state_dict(sd: Mapping[str, torch.Tensor]) -> "OrderedDict[str, torch.Tensor]":
    """Strip DataParallel (``module.``) and torch.compile (``_orig_mod.``) prefixes."""
    out = OrderedDict(sd)
    changed = True
    while changed:
        changed = False
        for prefix in _STRIP_PREFIXES:
            if out and all(k.startswith(prefix) for k in out):
                out = OrderedDict((k[len(prefix):], v) for k, v in out.items())
                changed = True
    return out


def load_state_dict_checked(model: nn.Module, state_dict: Mapping[str, torch.Tensor], *,
                            what: str = "checkpoint") -> None:
    """``load_state_dict(strict=True)`` with an error that lists what does not match."""
    sd = _clean_state_dict(state_dict)
    own = model.state_dict()
    missing = [k for k in own if k not in sd]
    unexpected = [k for k in sd if k not in own]
    shapes = [f"{k}: {tuple(sd[k].shape)} vs {tuple(v.shape)}" for k, v in own.items()
              if k in sd and hasattr(sd[k], "shape") and tuple(sd[k].shape) != tuple(v.shape)]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} key(s) (e.g. {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected key(s) (e.g. {', '.join(unexpected[:3])})")
        if shapes:
            parts.append(f"{len(shapes)} shape mismatch(es) (e.g. {'; '.join(shapes[:3])}, checkpoint vs model)")
        raise CheckpointError(f"the {what} does not fit the model: {'; '.join(parts)}. Check --arch, the "
                              "dataset (channels, classes, image size) and the architecture options "
                              "(dropout does not change the keys; relu_after_conv2, depth, widen_factor "
                              "do not either, but the image size changes fc shapes).")
    model.load_state_dict(sd, strict=True)


def model_from_checkpoint(checkpoint: str | os.PathLike | Mapping[str, Any], *, arch: str | None = None,
                          in_channels: int | None = None, num_classes: int | None = None,
                          input_size: int | None = None, dropout=None, map_location="cpu",
                          **arch_kwargs) -> tuple[nn.Module, dict[str, Any]]:
    """Build the architecture a checkpoint names and load its weights.

    Explicit arguments fill in what the checkpoint's config lacks; an ``arch`` that contradicts
    the config is an error. Returns ``(model in eval mode, merged config)``; a config with
    ``normalization`` gives a :class:`analysis.models.Normalize`-wrapped model.
    """
    from .models import Normalize, build_model, canonical_arch

    ckpt = load_checkpoint(checkpoint, map_location=map_location) if not isinstance(checkpoint, Mapping) \
        else dict(checkpoint)
    cfg = dict(ckpt.get("config") or {})
    where = checkpoint if not isinstance(checkpoint, Mapping) else "checkpoint"
    if arch is not None and cfg.get("arch") is not None and canonical_arch(arch) != canonical_arch(cfg["arch"]):
        raise CheckpointError(f"--arch {arch} contradicts the checkpoint, whose config says arch "
                              f"{cfg['arch']!r}; drop --arch or pass the matching one.")
    arch = arch or cfg.get("arch")
    if arch is None:
        raise CheckpointError(f"{where} does not say which architecture it holds (no config['arch']): "
                              "pass --arch (arch=...).")
    dims = {"in_channels": in_channels, "num_classes": num_classes, "input_size": input_size}
    for k in _BUILD_KEYS:
        if cfg.get(k) is not None and dims[k] is not None and int(cfg[k]) != int(dims[k]):
            raise CheckpointError(f"the checkpoint was trained with {k}={cfg[k]} but the data has "
                                  f"{k}={dims[k]}: wrong dataset?")
        dims[k] = dims[k] if dims[k] is not None else cfg.get(k)
        if dims[k] is None:
            raise CheckpointError(f"{k} is unknown: the checkpoint config lacks it; pass it explicitly.")
        dims[k] = int(dims[k])
    kwargs = dict(cfg.get("arch_kwargs") or {})
    for k in ("relu_after_conv2", "depth", "widen_factor", "layers"):
        if k in cfg and k not in kwargs:
            kwargs[k] = cfg[k]
    kwargs.update(arch_kwargs)
    drop = dropout if dropout is not None else cfg.get("dropout", 0.0)
    model = build_model(arch, dropout=drop, **dims, **kwargs)
    sd = ckpt["model"]
    norm_cfg = cfg.get("normalization")
    if norm_cfg:
        wrapped = Normalize(model, mean=norm_cfg["mean"], std=norm_cfg["std"])
        target = wrapped if all(k.startswith("model.") or k in ("mean", "std") for k in _clean_state_dict(sd)) \
            else model
        load_state_dict_checked(target, sd)
        model = wrapped
    else:
        load_state_dict_checked(model, sd)
    model.eval()
    merged = {**cfg, "arch": canonical_arch(arch), "dropout": drop, **dims}
    if kwargs:
        merged["arch_kwargs"] = kwargs
    return model, merged


__all__ = ["CheckpointError", "load_checkpoint", "load_state_dict_checked",
           "model_from_checkpoint", "save_checkpoint"]
