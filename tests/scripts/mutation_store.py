"""The stored mutation results: ``reports/quality/mutmut-results.json``, kept in git.

mutmut keeps its verdicts in ``mutants/**/*.meta``, which is git-ignored and so lost with every fresh
clone; a run over the whole scope takes many hours on 2 cores. This record carries the verdicts from
one clone to the next, so that ``make mutation`` resumes where any earlier run stopped.

A verdict is valid exactly while its function is unchanged: the record keeps mutmut's own hash of
each mutated function, and a verdict is used only where that hash equals the current one (mutmut
itself re-tests the mutants of a changed function). The record is JSON::

    {"mutmut": "3.8.1", "machine": "x86_64, 2 CPUs", "updated": "2026-12-05 14:10 UTC",
     "git_commit": "...",
     "files": {"separation/threat.py": {"hashes": {"x_f": "..."},
                                         "verdicts": {"separation.core.threat.x_f__mutmut_1": 1 | null}}},
     "diffs": {"<name of a surviving mutant>": "- old line / + new line"},
     "samples": [{"seed": 2, "per_module": 8, "git_commit": "...",
                  "first_pass": {"<mutant name>": 1}}]}

``verdicts`` holds every mutant of the file, ``null`` for one not run yet; the numbers are mutmut's
exit codes (1: killed, 0: survived, 33: no test reaches it, ...). ``diffs`` holds the changed lines
of each survivor, so that the report renders from this record alone. ``samples`` keeps the verdicts
of each fresh random sample as its first run gave them, before any test was written for its
survivors: an unbiased estimate of the score of the whole scope.
"""
from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
from pathlib import Path

__all__ = ["STORE", "function_of", "load", "merge", "from_mutants", "restore", "save", "add_sample"]

STORE = Path("reports") / "quality" / "mutmut-results.json"


def function_of(mutant: str) -> str:
    """The key of a mutant's function in mutmut's ``hash_by_function_name``:
    ``pkg.mod.x_f__mutmut_3`` -> ``x_f``."""
    return mutant.partition("__mutmut_")[0].rpartition(".")[2]


def load(repo: Path) -> dict:
    """The stored record (an empty one when there is none yet)."""
    path = repo / STORE
    return json.loads(path.read_text()) if path.exists() else {"files": {}, "diffs": {}}


def _valid(entry: dict, name: str, hashes: dict) -> int | None:
    """The stored verdict of ``name`` if its function still has the stored hash, else None."""
    func = function_of(name)
    if entry.get("hashes", {}).get(func) is None or entry["hashes"][func] != hashes.get(func):
        return None
    return entry.get("verdicts", {}).get(name)


def merge(stored: dict, fresh: dict) -> dict:
    """``files`` of ``fresh`` (this clone's mutants/) completed by the still-valid verdicts of
    ``stored``: a mutant that ``fresh`` has not run keeps its stored verdict while its function's hash
    is unchanged. Files that ``fresh`` lacks are kept as stored."""
    out = {path: entry for path, entry in stored.items() if path not in fresh}
    for path, entry in fresh.items():
        old = stored.get(path, {})
        verdicts = {name: code if code is not None else _valid(old, name, entry["hashes"])
                    for name, code in entry["verdicts"].items()}
        out[path] = {"hashes": dict(sorted(entry["hashes"].items())), "verdicts": dict(sorted(verdicts.items()))}
    return dict(sorted(out.items()))


def from_mutants(repo: Path) -> dict:
    """``files`` as read from ``mutants/**/*.meta`` (mutmut's own result files)."""
    files = {}
    root = repo / "mutants"
    for meta in sorted(root.rglob("*.py.meta")):
        data = json.loads(meta.read_text())
        files[meta.relative_to(root).as_posix()[:-len(".meta")]] = {
            "hashes": data.get("hash_by_function_name", {}), "verdicts": data.get("exit_code_by_key", {})}
    return files


def restore(repo: Path) -> int:
    """Write the stored verdicts into ``mutants/``, where mutmut's next run picks them up (it keeps a
    verdict while the function's hash is unchanged). Fills only verdicts mutants/ lacks; returns how
    many it wrote."""
    written = 0
    for path, entry in load(repo).get("files", {}).items():
        meta = repo / "mutants" / (path + ".meta")
        data = json.loads(meta.read_text()) if meta.exists() else {
            "exit_code_by_key": {}, "hash_by_function_name": dict(entry["hashes"]), "type_check_error_by_key": {},
            "durations_by_key": {}, "estimated_durations_by_key": {}}
        codes = data["exit_code_by_key"]
        for name, code in entry["verdicts"].items():
            if code is not None and codes.get(name) is None and _valid(entry, name, data["hash_by_function_name"]) is not None:
                codes[name] = code
                written += 1
            codes.setdefault(name, None)
        meta.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write(meta, json.dumps(data, indent=4))
    return written


def save(repo: Path, diffs: dict[str, str]) -> dict:
    """Merge this clone's ``mutants/`` into the stored record and write it (atomically). ``diffs``:
    the changed lines of the survivors whose diff mutants/ can show. Returns the new record."""
    old = load(repo)
    files = merge(old.get("files", {}), from_mutants(repo))
    survivors = {n for entry in files.values() for n, c in entry["verdicts"].items() if c == 0}
    kept = {n: d for n, d in {**old.get("diffs", {}), **diffs}.items() if n in survivors}
    record = {"mutmut": _version(), "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
              "updated": f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
              "git_commit": _git_head(repo), "files": files, "diffs": dict(sorted(kept.items())),
              "samples": old.get("samples", [])}
    _write(repo, record)
    return record


def add_sample(repo: Path, names: list[str], seed: int, per_module: int) -> dict:
    """Store the first-run verdicts of a fresh sample (``names``, as this clone's ``mutants/`` has
    them) in the record; a sample stored before with the same mutants is kept as it was. Raises
    ValueError naming a mutant without a verdict. Returns the record."""
    record = load(repo)
    codes = {n: c for entry in from_mutants(repo).values() for n, c in entry["verdicts"].items()}
    missing = [n for n in names if codes.get(n) is None]
    if missing:
        raise ValueError(f"{len(missing)} sampled mutants have no verdict yet (e.g. {missing[0]}): "
                         "run `mutmut run` on the sample first")
    samples = record.setdefault("samples", [])
    if not any(set(s["first_pass"]) == set(names) for s in samples):
        samples.append({"seed": seed, "per_module": per_module, "git_commit": _git_head(repo),
                        "first_pass": {n: codes[n] for n in sorted(names)}})
        _write(repo, record)
    return record


def _write(repo: Path, record: dict) -> None:
    path = repo / STORE
    path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(path, _dumps(record))


def _dumps(record: dict) -> str:
    """JSON with one mutant a line, so that a new verdict is a one-line change in git."""
    return json.dumps(record, indent=1, sort_keys=False) + "\n"


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _git_head(repo: Path) -> str | None:
    p = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True)
    return p.stdout.strip() or None


def _version() -> str:
    from importlib.metadata import version

    return version("mutmut")
