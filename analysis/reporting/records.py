"""Finding stored records, and saying which expected ones are missing (with the command for each).

Records live under one results root (default ``results/``)::

    separation/<dataset>/<norm>[-subsetN]/        python -m separation.compute
    construct/<dataset>/<norm>[-subsetN]/         python -m lipschitz_construct.verify
    evaluate/<dataset>/<name>/                    python -m analysis.evaluate
    training/<grid>/<run>/                        python -m analysis.grid <grid file>

Every folder holds ``record.json`` (and optionally ``arrays.npz``), read with
:func:`separation.records.load_record`. The readers here never recompute anything: a record that
is absent is reported as a :class:`Missing` whose message names the command that produces it.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import shlex
from pathlib import Path
from typing import Any, Iterable, Mapping

log = logging.getLogger(__name__)

KINDS = ("separation", "construct", "evaluate", "training")

#: Datasets whose data is on this machine (../shared/data, or sklearn's embedded digits).
LOCAL_DATASETS = ("mnist", "fashion-mnist", "digits")
#: Datasets of the paper that need data this machine does not have.
REMOTE_DATASETS = ("cifar10", "svhn", "restricted-imagenet")
SEPARATION_NORMS = ("linf", "l2")
#: The training grids whose records the methods and dropout tables expect.
DEFAULT_GRID_FILES = ("configs/mnist_cpu.yaml",)
#: The constructed classifier checked on these (dataset, norm, eps).
CONSTRUCT_RUNS = (("mnist", "linf", 0.1),)
#: The constructed classifier attacked by analysis.evaluate on this many train / test points.
CONSTRUCTED_EVAL_SUBSET = 500
#: Placeholder for the data folder in printed commands (``make data`` creates ./data).
DATA_ROOT_PLACEHOLDER = "DATA_ROOT"


def as_float(value: Any) -> float | None:
    """A number from a record value: ints, floats and the strings ``"inf"``/``"nan"`` that
    :func:`separation.records.atomic_write_json` writes for non-finite floats; else ``None``."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    try:  # numpy scalars
        return float(value)
    except (TypeError, ValueError):
        return None


def finite(value: Any) -> float | None:
    v = as_float(value)
    return v if v is not None and math.isfinite(v) else None


def dig(mapping: Any, *keys: str, default: Any = None) -> Any:
    """``mapping[k1][k2]...`` or ``default`` where any level is absent or not a mapping."""
    cur = mapping
    for k in keys:
        if not isinstance(cur, Mapping) or k not in cur:
            return default
        cur = cur[k]
    return cur


def display_path(path: str | os.PathLike) -> str:
    """``path`` relative to the working directory when it lies below it (stable in reports)."""
    p = Path(path)
    try:
        return Path(os.path.relpath(p.resolve(), Path.cwd().resolve())).as_posix() \
            if p.resolve().is_relative_to(Path.cwd().resolve()) else p.as_posix()
    except (OSError, ValueError):
        return p.as_posix()


@dataclasses.dataclass
class StoredRecord:
    """One record folder and its parsed ``record.json``."""

    kind: str
    folder: Path
    record: dict[str, Any]
    _arrays: dict[str, Any] | None = dataclasses.field(default=None, repr=False)

    @property
    def config(self) -> dict[str, Any]:
        c = self.record.get("config")
        return c if isinstance(c, dict) else {}

    @property
    def result(self) -> dict[str, Any]:
        r = self.record.get("result")
        return r if isinstance(r, dict) else {}

    @property
    def meta(self) -> dict[str, Any]:
        m = self.record.get("meta")
        return m if isinstance(m, dict) else {}

    @property
    def timing(self) -> dict[str, Any]:
        t = self.record.get("timing")
        return t if isinstance(t, dict) else {}

    @property
    def label(self) -> str:
        return display_path(self.folder)

    def arrays(self) -> dict[str, Any]:
        """``arrays.npz`` as a dict (empty if the record has none); read once, then cached."""
        if self._arrays is None:
            from separation.records import load_record

            try:
                _, self._arrays = load_record(self.folder, with_arrays=True)
            except Exception as exc:  # noqa: BLE001 - a broken npz must not stop the other artefacts
                log.warning("%s: cannot read arrays.npz (%s)", self.label, exc)
                self._arrays = {}
        return self._arrays


@dataclasses.dataclass(frozen=True)
class Missing:
    """An expected record that is not stored, and the command that produces it."""

    what: str
    folder: str
    command: str
    local: bool = True  # False: needs data that is not on this machine
    kind: str = ""  # separation, construct, evaluate or training

    def message(self) -> str:
        return (f"missing {self.what}: no record at {self.folder}/record.json. Produce it with:\n"
                f"    {self.command}")


@dataclasses.dataclass
class RecordSet:
    """Every record found under one results root."""

    root: Path
    separation: list[StoredRecord] = dataclasses.field(default_factory=list)
    construct: list[StoredRecord] = dataclasses.field(default_factory=list)
    evaluate: list[StoredRecord] = dataclasses.field(default_factory=list)
    training: list[StoredRecord] = dataclasses.field(default_factory=list)
    problems: list[str] = dataclasses.field(default_factory=list)

    def of(self, kind: str) -> list[StoredRecord]:
        return getattr(self, kind)

    def __len__(self) -> int:
        return sum(len(self.of(k)) for k in KINDS)


def _load(kind: str, folder: Path, problems: list[str]) -> StoredRecord | None:
    from separation.records import load_record

    try:
        rec = load_record(folder)
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        problems.append(f"{display_path(folder)}: unreadable record.json ({exc}); skipped")
        return None
    if not isinstance(rec, dict) or not isinstance(rec.get("result"), dict):
        problems.append(f"{display_path(folder)}: record.json has no 'result' mapping; skipped")
        return None
    stored_kind = rec.get("kind")
    if stored_kind in KINDS and stored_kind != kind:
        problems.append(f"{display_path(folder)}: a {stored_kind!r} record under {kind}/; skipped")
        return None
    return StoredRecord(kind, folder, rec)


def find_records(root: str | os.PathLike = "results") -> RecordSet:
    """Every ``<root>/<kind>/<a>/<b>/record.json`` (sorted by path); unreadable ones are listed in
    ``problems`` and logged, not raised."""
    root = Path(root)
    out = RecordSet(root)
    for kind in KINDS:
        base = root / kind
        if not base.is_dir():
            continue
        for path in sorted(base.glob("*/*/record.json")):
            rec = _load(kind, path.parent, out.problems)
            if rec is not None:
                out.of(kind).append(rec)
    for p in out.problems:
        log.warning("%s", p)
    return out


def write_artefact(path: str | os.PathLike, data: bytes | str) -> Path:
    """Atomic write (:func:`separation.records.atomic_write_bytes`) with the ordinary permissions
    of a new file (the temporary file it renames is private, 0600)."""
    from separation.records import atomic_write_bytes

    path = atomic_write_bytes(path, data.encode() if isinstance(data, str) else data)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)
    return path


# -- expected records and the commands that produce them ---------------------------------------

def _cmd(prefix: str, *parts: Any) -> str:
    """``prefix`` (literal) followed by shell-quoted ``parts`` (None and "" dropped)."""
    return " ".join([prefix] + [shlex.quote(str(p)) for p in parts if p is not None and p != ""])


def _default_results(root: Path) -> bool:
    return Path(root).as_posix().rstrip("/") in ("results", "./results")


def separation_command(dataset: str, norm: str, *, data_root: str | None = None,
                       results_root: str | os.PathLike = "results") -> str:
    data = [] if dataset == "digits" else ["--data-root", data_root or DATA_ROOT_PLACEHOLDER]
    out = [] if _default_results(Path(results_root)) else ["--out", Path(results_root) / "separation"]
    return _cmd("python -m separation.compute --dataset", dataset, "--norm", norm, *data, *out)


def construct_command(dataset: str, norm: str, eps: float, *, data_root: str | None = None,
                      results_root: str | os.PathLike = "results") -> str:
    data = [] if dataset == "digits" else ["--data-root", data_root or DATA_ROOT_PLACEHOLDER]
    out = [] if _default_results(Path(results_root)) else ["--out", Path(results_root) / "construct"]
    return _cmd("python -m lipschitz_construct.verify --dataset", dataset, "--norm", norm,
                "--eps", f"{eps:g}", *data, *out)


def constructed_eval_folder(dataset: str, norm: str, eps: float, subset: int | None) -> str:
    """The folder ``python -m analysis.evaluate --model constructed`` writes to by default."""
    return f"constructed_{norm}_eps{eps:g}" + (f"_subset{subset}" if subset else "")


def constructed_eval_command(dataset: str, norm: str, eps: float, subset: int | None, *,
                             data_root: str | None = None,
                             results_root: str | os.PathLike = "results") -> str:
    data = [] if dataset == "digits" else ["--data-root", data_root or DATA_ROOT_PLACEHOLDER]
    out = [] if _default_results(Path(results_root)) else [
        "--out", Path(results_root) / "evaluate" / dataset / constructed_eval_folder(dataset, norm, eps, subset)]
    return _cmd("python -m analysis.evaluate --model constructed --dataset", dataset, "--norm", norm,
                "--eps", f"{eps:g}", *(["--subset", subset] if subset else []), *data, *out)


def grid_command(grid_file: str | os.PathLike, *, data_root: str | None = None,
                 results_root: str | os.PathLike = "results") -> str:
    out = [] if _default_results(Path(results_root)) else ["--results-root", Path(results_root) / "training"]
    return _cmd("python -m analysis.grid", Path(grid_file).as_posix(), "--data-root",
                data_root or DATA_ROOT_PLACEHOLDER, *out)


def grid_runs(grid_file: str | os.PathLike) -> tuple[str, list[str]] | None:
    """(grid name, run names) of a grid file, through :func:`analysis.grid.load_grid`; None (and a
    log line) when the file or the training code is not available."""
    path = Path(grid_file)
    if not path.is_file():
        log.debug("grid file %s not found", path)
        return None
    try:
        from analysis.grid import load_grid

        grid = load_grid(path)
    except Exception as exc:  # noqa: BLE001 - the report must still render what exists
        log.warning("cannot read the grid file %s (%s); its missing runs are not listed", path, exc)
        return None
    return grid.name, grid.names()


def expected_missing(records: RecordSet, *, data_root: str | None = None,
                     grid_files: Iterable[str | os.PathLike] = DEFAULT_GRID_FILES,
                     construct_runs: Iterable[tuple[str, float]] = CONSTRUCT_RUNS,
                     constructed_eval_subset: int | None = CONSTRUCTED_EVAL_SUBSET,
                     separation_datasets: Iterable[str] = LOCAL_DATASETS,
                     kinds: Iterable[str] = KINDS) -> list[Missing]:
    """The records this machine can produce that are not stored yet (``local=True``), and those of
    the paper's other datasets (``local=False``: they need data that is not here)."""
    root = records.root
    kinds = set(kinds)
    have = {k: {r.folder.resolve() for r in records.of(k)} for k in KINDS}
    out: list[Missing] = []

    def check(kind: str, folder: Path, what: str, command: str, local: bool = True) -> None:
        if folder.resolve() not in have[kind]:
            out.append(Missing(what, display_path(folder), command, local, kind))

    if "separation" in kinds:
        stored = {(r.config.get("dataset"), r.config.get("norm")) for r in records.separation}
        for local, datasets in ((True, tuple(separation_datasets)), (False, REMOTE_DATASETS)):
            for ds in datasets:
                for norm in SEPARATION_NORMS:
                    if (ds, norm) in stored:  # a subset record counts: the table shows it, marked
                        continue
                    check("separation", root / "separation" / ds / norm,
                          f"separation record for {ds} ({norm})",
                          separation_command(ds, norm, data_root=data_root, results_root=root), local)
    if "construct" in kinds:
        for ds, norm, eps in construct_runs:
            if not any(r.config.get("dataset", r.folder.parent.name) == ds and
                       r.config.get("norm", r.folder.name.split("-")[0]) == norm for r in records.construct):
                check("construct", root / "construct" / ds / norm,
                      f"constructed-classifier record for {ds} ({norm}, eps {eps:g})",
                      construct_command(ds, norm, eps, data_root=data_root, results_root=root))
    if "evaluate" in kinds and constructed_eval_subset is not None:
        for ds, norm, eps in construct_runs:
            check("evaluate", root / "evaluate" / ds / constructed_eval_folder(ds, norm, eps, constructed_eval_subset),
                  f"attacked constructed classifier on {ds} ({norm}, eps {eps:g}, {constructed_eval_subset} points)",
                  constructed_eval_command(ds, norm, eps, constructed_eval_subset, data_root=data_root,
                                           results_root=root))
    if "training" in kinds:
        for gf in grid_files:
            spec = grid_runs(gf)
            if spec is None:
                continue
            name, runs = spec
            absent = [r for r in runs if (root / "training" / name / r).resolve() not in have["training"]]
            if absent:
                shown = ", ".join(absent[:6]) + (f", ... ({len(absent)} in all)" if len(absent) > 6 else "")
                out.append(Missing(f"{len(absent)} of {len(runs)} training runs of grid {name} ({shown})",
                                   display_path(root / "training" / name / (absent[0] if len(absent) == 1 else "<run>")),
                                   grid_command(gf, data_root=data_root, results_root=root), True,
                                   "training"))
    return out
