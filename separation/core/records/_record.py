"""Typed result records: one dataclass per kind, stored as ``record.json`` (+ ``arrays.npz``).

A record folder holds ``record.json``::

    {"kind": ..., "schema": 2, "key": ..., "config": {...}, "result": {...}, "timing": {...},
     "meta": {...}, "arrays": {"file": "arrays.npz", "sha256": ..., "size": ..., "names": [...]},
     "digest": ...}

``config`` is everything that changes the result; ``key`` hashes it with the kind, the schema and
the toolkit version, and names the folder, so another configuration never overwrites this one.
``digest`` hashes the JSON itself and ``arrays`` the array file: a record whose JSON was edited, or
whose arrays are missing, truncated or from another run, fails to load (:class:`RecordIntegrityError`)
and is recomputed, never reused. Writers take the folder's lock, write the arrays, then the JSON.
"""
from __future__ import annotations

import dataclasses
import logging
import zipfile
import os
from pathlib import Path
from typing import Any, ClassVar, Iterable, TypeVar

import numpy as np

from ._codec import RecordFormatError, decode, encode
from ..faults import fault
from ._io import (atomic_write_bytes, atomic_write_json, canonical_json, clean_temporaries, folder_lock,
                  npz_bytes, read_json, sha256_bytes, sha256_file)
from ..errors import RecordError
from ..paths import below
from ._meta import Meta, toolkit_version
from .kinds import entry_point, names

log = logging.getLogger("separation.core.records")

RECORD_FILE = "record.json"
ARRAYS_FILE = "arrays.npz"
SCHEMA = 2

#: The entry-point group that names the record class of each kind (see :mod:`.kinds`).
KINDS_GROUP = "separation.record_kinds"
#: The entry-point group that names the job (:class:`separation.core.pipeline.RecordJob`) of each kind.
JOBS_GROUP = "separation.record_jobs"
_KINDS: dict[str, type["Record"]] = {}

R = TypeVar("R", bound="Record")


class RecordIntegrityError(RecordError):
    """A record whose files do not match each other: edited JSON, missing or changed arrays."""


@dataclasses.dataclass(frozen=True)
class DataSpec:
    """The data a record was computed on: identified by the sha256 of its arrays (``fingerprint``;
    ``train_fingerprint`` over the training split alone), never by where it was read from (that is
    provenance: ``meta.data_source``). ``labels``: ``"given"``, or how they were changed (e.g.
    ``"permuted-seed3"`` for the random-label control)."""

    dataset: str
    fingerprint: str
    image_shape: tuple[int, ...]
    n_train: int
    n_test: int
    subset: int | None = None
    seed: int = 0
    labels: str = "given"
    train_fingerprint: str = ""

    def subset_suffix(self) -> str:
        """``-subsetN`` (and ``-seedS`` for a seed other than 0) for a subset, else ``""``: the
        part of every record folder name that says which points were used."""
        return f"-subset{self.subset}" + (f"-seed{self.seed}" if self.seed else "") if self.subset else ""


@dataclasses.dataclass
class ArraysInfo:
    file: str
    sha256: str
    size: int
    names: list[str]


@dataclasses.dataclass
class Record:
    """Base of every record kind. Subclasses set ``KIND``, type ``config`` and ``result``, and
    implement :meth:`folder_name` and :meth:`command`."""

    KIND: ClassVar[str] = ""

    config: Any
    result: Any
    timing: dict[str, float] = dataclasses.field(default_factory=dict)
    meta: Meta | None = None
    arrays: ArraysInfo | None = None
    key: str | None = None
    digest: str | None = None
    folder: Path | None = dataclasses.field(default=None, compare=False, repr=False, metadata={"json": False})
    legacy: bool = dataclasses.field(default=False, compare=False, repr=False, metadata={"json": False})

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        if cls.KIND:
            _KINDS[cls.KIND] = cls

    # -- identity ------------------------------------------------------------------------------
    @classmethod
    def key_for(cls, config: Any, version: str | None = None) -> str:
        """The key of the record ``config`` would produce with this toolkit version (16 hex digits)."""
        ident = {"kind": cls.KIND, "schema": SCHEMA, "toolkit": version or toolkit_version(), "config": config}
        return sha256_bytes(canonical_json(ident))[:16]

    @classmethod
    def folder_name(cls, config: Any, key: str) -> str:
        """The record's folder below its root (e.g. ``mnist/linf-1a2b3c4d``): readable settings
        and the key, so each configuration has a folder of its own."""
        raise NotImplementedError

    @classmethod
    def folder_for(cls, root: str | os.PathLike, config: Any) -> Path:
        """The record's folder: ``root / folder_name``, never outside ``root``."""
        return below(root, cls.folder_name(config, cls.key_for(config)))

    def command(self) -> str:
        """The command line that produces this record: generated from the parser of the job that
        writes its kind (the ``separation.record_jobs`` entry points)."""
        job = entry_point(JOBS_GROUP, self.KIND)
        if job is None:
            raise RecordError(f"no command is known for records of kind {self.KIND!r} (install the toolkit: "
                              "pip install -e .)")
        return job().record_command(self)

    @property
    def label(self) -> str:
        """The folder as shown in reports: relative to the working directory when below it."""
        return f"<{self.KIND} record>" if self.folder is None else label_of(self.folder)

    # -- JSON ---------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        out = {"kind": self.KIND, "schema": SCHEMA}
        out.update(encode(self))
        return out

    @classmethod
    def from_json(cls: type[R], data: Any, *, where: str = "record.json") -> R:
        if not isinstance(data, dict):
            raise RecordError(f"{where}: expected a JSON object, got {type(data).__name__}")
        body = {k: v for k, v in data.items() if k not in ("kind", "schema")}
        try:
            return decode(cls, body, where)
        except RecordFormatError as exc:
            raise RecordError(f"ill-typed record: {exc}") from None

    @classmethod
    def upgrade(cls, data: dict[str, Any]) -> dict[str, Any]:
        """A schema-1 JSON object (written before typed records) in the current layout."""
        raise RecordError(f"a schema-1 {cls.KIND!r} record cannot be read; recompute it")

    def compute_digest(self) -> str:
        body = self.to_json()
        body.pop("digest", None)
        return sha256_bytes(canonical_json(body))

    # -- arrays -------------------------------------------------------------------------------
    def load_arrays(self) -> dict[str, np.ndarray]:
        """The per-point arrays (empty when the record has none)."""
        if self.arrays is None or self.folder is None:
            return {}
        with np.load(Path(self.folder) / self.arrays.file, allow_pickle=False) as f:
            return {k: f[k] for k in f.files}


def upgrade_envelope(data: dict[str, Any], config: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
    """A schema-1 record's envelope in the current layout around its upgraded ``config`` and
    ``result``: timing, ``meta`` (with the data's source, which schema 1 kept in the config) and
    the array file found beside it."""
    m = dict(data.get("meta") or {})
    hw = m.get("hardware") or {}
    meta = {"created": m.get("created", ""), "toolkit_version": None, "git_commit": m.get("git_commit"),
            "versions": m.get("versions") or {},
            "hardware": {"machine": hw.get("machine", ""), "cpus": hw.get("cpus"),
                         "processor": hw.get("processor", ""), "gpu": hw.get("gpu")},
            "host": m.get("host", ""), "seed": m.get("seed"),
            "data_source": (data.get("config") or {}).get("source"), "command": None}
    out = {"kind": data["kind"], "schema": 2, "config": config, "result": result,
           "timing": data.get("timing") or {}, "meta": meta}
    if data.get("_arrays") is not None:
        out["arrays"] = data["_arrays"]
    return out



def record_class(kind: str) -> type[Record]:
    """The record type of ``kind``: registered on import, or found through the entry points."""
    if kind not in _KINDS and isinstance(kind, str):
        entry_point(KINDS_GROUP, kind)  # importing the class registers it
    if kind not in _KINDS:
        known = sorted(set(_KINDS) | set(names(KINDS_GROUP)))
        raise RecordError(f"unknown record kind {str(kind)[:40]!r} (known: {', '.join(known)})")
    return _KINDS[kind]


def write_record(folder: str | os.PathLike, record: R, arrays: dict[str, np.ndarray] | None = None) -> R:
    """Write ``record`` (and ``arrays``) into ``folder``, holding the folder's lock: arrays first,
    JSON last, each atomically; the JSON names the arrays' sha256. Returns the record as written."""
    folder = Path(folder)
    with folder_lock(folder):
        clean_temporaries(folder)
        info = None
        if arrays:
            data = npz_bytes(arrays)
            atomic_write_bytes(folder / ARRAYS_FILE, data)
            info = ArraysInfo(ARRAYS_FILE, sha256_bytes(data), len(data), sorted(arrays))
        elif (folder / ARRAYS_FILE).exists():
            (folder / ARRAYS_FILE).unlink()  # arrays of an earlier run must not sit beside this JSON
        fault("after-arrays")
        record = dataclasses.replace(record, arrays=info, key=record.key or type(record).key_for(record.config),
                                     folder=folder, legacy=False)
        record.digest = record.compute_digest()
        atomic_write_json(folder / RECORD_FILE, record.to_json())
        fault("after-json")
    return record


def load_record(folder: str | os.PathLike, kind: type[R] | None = None, *, allow_legacy: bool = True) -> R:
    """Read and verify the record in ``folder``. Raises :class:`RecordError` (not a record, other
    kind, ill-typed) or :class:`RecordIntegrityError` (edited JSON, missing/changed arrays)."""
    folder = Path(folder)
    path = folder / RECORD_FILE
    try:
        data = read_json(path)
    except FileNotFoundError:
        raise RecordError(f"no record at {path}") from None
    except OSError as exc:
        raise RecordError(f"{path} cannot be read ({type(exc).__name__}: {exc.strerror or exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("kind"), str):
        raise RecordError(f"{path} is not a record (no 'kind')")
    cls = record_class(data["kind"]) if kind is None else kind
    if data["kind"] != cls.KIND:
        raise RecordError(f"{path} is a {data['kind']!r} record, not {cls.KIND!r}")
    schema = data.get("schema", 1)
    legacy = schema == 1
    if legacy:
        if not allow_legacy:
            raise RecordError(f"{path} was written before typed records (schema 1); run "
                              "`python -m separation.records migrate` or recompute it")
        arr = folder / ARRAYS_FILE
        if arr.is_file():
            try:
                with np.load(arr, allow_pickle=False) as f:
                    names = sorted(f.files)
            except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
                raise RecordError(f"{arr} is not a readable array file ({type(exc).__name__})") from None
            data = {**data, "_arrays": {"file": ARRAYS_FILE, "sha256": sha256_file(arr),
                                        "size": arr.stat().st_size, "names": names}}
        try:  # the upgrade reads a file written by anybody: a missing or mistyped field is a bad record
            data = cls.upgrade(data)
        except (KeyError, TypeError, AttributeError, ValueError, IndexError) as exc:
            raise RecordError(f"{path}: a schema-1 record without the expected fields ({type(exc).__name__}: "
                              f"{str(exc)[:120]})") from None
    elif schema != SCHEMA:
        shown = schema if isinstance(schema, int) and abs(schema) < 10**9 else str(schema)[:20]
        raise RecordError(f"{path} has schema {shown!r}; this toolkit reads schema {SCHEMA}")
    if not legacy:  # over the JSON as stored: fields added later (with defaults) do not break old records
        body = {k: v for k, v in data.items() if k != "digest"}
        if data.get("digest") != sha256_bytes(canonical_json(body)):
            raise RecordIntegrityError(f"{path} was changed after it was written (its digest does not match)")
    rec = cls.from_json(data, where=str(path))
    rec.folder, rec.legacy = folder, legacy
    if rec.arrays is not None:
        arr = folder / rec.arrays.file
        if not arr.is_file():
            raise RecordIntegrityError(f"{arr} is missing")
        if arr.stat().st_size != rec.arrays.size or sha256_file(arr) != rec.arrays.sha256:
            raise RecordIntegrityError(f"{arr} is not the file {RECORD_FILE} describes (truncated, or "
                                       "written by another run)")
    return rec


def reusable(cls: type[R], folder: str | os.PathLike, config: Any, *, force: bool = False) -> R | None:
    """The verified record in ``folder`` made with exactly ``config`` by this toolkit version, else
    None (with a log line saying why an existing record is not used)."""
    folder = Path(folder)
    if force or not (folder / RECORD_FILE).exists():
        return None
    try:
        rec = load_record(folder, cls, allow_legacy=False)
    except RecordError as exc:
        log.warning("not reusing %s: %s; recomputing", folder, exc)
        return None
    if rec.key != cls.key_for(config):
        log.info("the record in %s was made with another configuration or toolkit version; recomputing", folder)
        return None
    return rec


@dataclasses.dataclass
class RecordSet:
    """Every record found below a root, and the folders that could not be read."""

    root: Path
    records: list[Record] = dataclasses.field(default_factory=list)
    problems: list[str] = dataclasses.field(default_factory=list)

    def of(self, kind: type[R] | str) -> list[R]:
        k = kind if isinstance(kind, str) else kind.KIND
        return [r for r in self.records if r.KIND == k]

    def __len__(self) -> int:
        return len(self.records)


def find_records(root: str | os.PathLike, kinds: Iterable[str] | None = None) -> RecordSet:
    """Every ``record.json`` below ``root`` (sorted by path); unreadable or inconsistent ones are
    listed in ``problems`` (and logged), never raised."""
    root = Path(root)
    out = RecordSet(root)
    wanted = set(kinds) if kinds is not None else None
    for path in sorted(root.rglob(RECORD_FILE)) if root.is_dir() else []:
        try:
            data = read_json(path)
            data_kind = data.get("kind") if isinstance(data, dict) else None
        except (RecordError, OSError):  # reported below through load_record's message
            data_kind = None
        if wanted is not None and data_kind is not None and data_kind not in wanted:
            continue
        try:
            out.records.append(load_record(path.parent))
        except (RecordError, AttributeError) as exc:
            out.problems.append(f"{label_of(path.parent)}: {exc}; skipped")
    for p in out.problems:
        log.warning("%s", p)
    return out


def label_of(folder: str | os.PathLike) -> str:
    p = Path(folder)
    try:
        return p.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return p.as_posix()


__all__ = ["ARRAYS_FILE", "ArraysInfo", "DataSpec", "JOBS_GROUP", "KINDS_GROUP", "RECORD_FILE", "Record", "RecordError",
           "RecordIntegrityError", "RecordSet", "SCHEMA", "find_records", "label_of", "load_record",
           "record_class", "reusable", "upgrade_envelope", "write_record"]
