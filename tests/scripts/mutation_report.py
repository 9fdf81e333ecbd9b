"""Write ``reports/quality/mutation.md`` from the stored mutation results (``make mutation``).

The results are the record ``reports/quality/mutmut-results.json`` (``mutation_store.py``), which
carries mutmut's verdicts from clone to clone. Run after ``mutmut run``, this script first merges the
verdicts of this clone's ``mutants/`` into the record (``mutmut show`` gives each new survivor's
diff), then renders the report from the record alone; without ``mutants/`` it only re-renders. The
scope is the ``[mutmut]`` section of setup.cfg. Mutants not yet run are counted as such: a partial
run gives a partial report that says so.

``--restore`` writes the stored verdicts into ``mutants/`` before a run, so that ``mutmut run``
continues where any earlier run stopped (``make mutation`` does this first). ``--sample N`` instead
prints a seeded random sample of N not-yet-run mutants of each module, one name per line, for
``mutmut run`` (``make mutation-sample``): a full run takes many hours on 2 cores, a sample gives
every module an unbiased estimate first. ``--first-pass FILE`` (after that run) stores the sample's
verdicts as its first run gave them, and the report scores the stored samples.

A survivor that no test can kill -- an equivalent mutant -- is listed in
``tests/mutation_equivalents.yaml`` with the changed line and the reason. An entry counts only while
its ``line`` still occurs in the mutant's diff (mutant numbers shift when a function is edited): a
stale entry is reported, and its mutant counts as a survivor again.
"""
from __future__ import annotations

import collections
import configparser
import subprocess
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import mutation_store as store  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
EQUIVALENTS = Path("tests") / "mutation_equivalents.yaml"
REPORT = Path("reports") / "quality" / "mutation.md"
# mutmut's exit codes; a test process that died of a signal (segfault, abort) is "crashed", and any
# other code (skipped, suspicious, ...) "other", so that every mutant lands in a column of the report
STATUS = {1: "killed", 3: "killed", 0: "survived", 5: "no tests", 33: "no tests", 36: "timeout",
          24: "timeout", -24: "timeout", 152: "timeout", 255: "timeout", -11: "crashed", -9: "crashed",
          -6: "crashed", None: "not run"}
COLUMNS = ["killed", "survived", "equivalent", "no tests", "timeout", "crashed", "other", "not run"]


def status_of(code: int | None) -> str:
    return STATUS.get(code, "other")


def statuses(files: dict) -> dict[str, str]:
    """mutant name -> status, from the ``files`` of a record."""
    return {name: status_of(code) for entry in files.values() for name, code in entry["verdicts"].items()}


def results() -> dict[str, str]:
    """mutant name -> status: the stored record completed by this clone's ``mutants/``, if any."""
    return statuses(store.merge(store.load(REPO).get("files", {}), store.from_mutants(REPO)))


def diff_of(name: str) -> str:
    """The changed lines of a mutant, ``- old / + new``, as ``mutmut show`` prints them."""
    p = subprocess.run(["mutmut", "show", name], cwd=REPO, capture_output=True, text=True)
    lines = [ln for ln in p.stdout.splitlines() if ln[:1] in "+-" and not ln.startswith(("+++", "---"))]
    return " / ".join(ln.strip() for ln in lines)


def equivalents(res: dict[str, str], diffs: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """(mutant -> reason for the survivors listed as equivalent, the stale entries)."""
    path = REPO / EQUIVALENTS
    listed = (yaml.safe_load(path.read_text()) or {}) if path.exists() else {}
    ok, stale = {}, []
    for name, entry in sorted(listed.items()):
        if res.get(name) == "survived" and entry["line"] in diffs.get(name, ""):
            ok[name] = entry["reason"]
        elif res.get(name) != "not run":  # killed, gone, or its line changed
            stale.append(name)
    return ok, stale


def sample(per_module: int, seed: int) -> list[str]:
    """``per_module`` not-yet-run mutants of each module, drawn with ``random.Random(seed)``."""
    import random

    todo = collections.defaultdict(list)
    for name, st in sorted(results().items()):
        if st == "not run":
            todo[name.split(".x")[0]].append(name)
    rng = random.Random(seed)
    return [n for mod in sorted(todo) for n in rng.sample(todo[mod], min(per_module, len(todo[mod])))]


def module_score(c: collections.Counter) -> float | None:
    """killed / (killed + survived + no tests) of one module's counts; None without a verdict. A mutant
    that no selected test reaches is not killed: it counts against the score."""
    done = c["killed"] + c["survived"] + c["no tests"]
    return c["killed"] / done if done else None


def scope_estimate(per: dict[str, collections.Counter]) -> tuple[float | None, int]:
    """``(estimated score of the whole scope, mutants of the modules with no verdict)``: each module's
    score weighted by its number of non-equivalent mutants, run or not (the sample of each module
    stands for the whole module)."""
    num = den = unseen = 0
    for c in per.values():
        size = sum(c.values()) - c["equivalent"]
        score = module_score(c)
        if score is None:
            unseen += size
        else:
            num, den = num + score * size, den + size
    return (num / den if den else None), unseen


def _new_survivors(record: dict, fresh: dict) -> list[str]:
    """Survivors in ``fresh`` (this clone's files) whose diff the record lacks or may have wrong (their
    function changed since it was stored)."""
    out = []
    for path, entry in fresh.items():
        old = record["files"].get(path, {}).get("hashes", {})
        for name, code in entry["verdicts"].items():
            func = store.function_of(name)
            if code == 0 and (name not in record.get("diffs", {}) or old.get(func) != entry["hashes"].get(func)):
                out.append(name)
    return out


def sample_estimates(record: dict, eq: dict[str, str]) -> list[tuple[str, int, int, int, float | None]]:
    """One row per stored fresh sample, then one for all of them: ``(label, mutants, killed at the
    first run, listed as equivalent since, killed / (killed + survived + no tests) of the rest)``."""
    rows, total = [], collections.Counter()
    for smp in record.get("samples", []):
        c = collections.Counter()
        for name, code in smp["first_pass"].items():
            st = status_of(code)
            c["equivalent" if st == "survived" and name in eq else st] += 1
        total += c
        commit = (smp.get("git_commit") or "")[:7]
        rows.append((f"seed {smp['seed']}, {smp['per_module']} per module" + (f", `{commit}`" if commit else ""),
                     len(smp["first_pass"]), c))
    if len(rows) > 1:
        rows.append(("all samples", sum(r[1] for r in rows), total))
    return [(label, n, c["killed"], c["equivalent"], module_score(c)) for label, n, c in rows]


def render(record: dict) -> str:
    """The report, from the record alone (the same record always gives the same text)."""
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    scope = [s for s in cfg.get("mutmut", "only_mutate").split() if s]
    skipped = [s for s in cfg.get("mutmut", "do_not_mutate", fallback="").split() if s]
    tests = [s for s in cfg.get("mutmut", "pytest_add_cli_args_test_selection", fallback="").split() if s]
    res = statuses(record["files"])
    diffs = record.get("diffs", {})
    eq, stale = equivalents(res, diffs)
    for name in eq:
        res[name] = "equivalent"
    per = collections.defaultdict(collections.Counter)
    for name, st in res.items():
        per[name.split(".x")[0]][st] += 1
    total = collections.Counter(res.values())
    checked = total["killed"] + total["survived"] + total["no tests"]
    est, unseen = scope_estimate(per)
    commit = (record.get("git_commit") or "")[:7]
    L = ["<!-- Generated by `python tests/scripts/mutation_report.py` from "
         f"`{store.STORE.as_posix()}`; do not edit. -->",
         "", "# Mutation testing of the core modules", "",
         f"mutmut {record['mutmut']} on {record['machine']}; results last merged {record['updated']}"
         + (f" at commit `{commit}`" if commit else "") + ". Scope (`[mutmut]` in setup.cfg): "
         + ", ".join(f"`{s}`" for s in scope) + (" except " + ", ".join(f"`{s}`" for s in skipped) if skipped else "")
         + "; tests: " + (", ".join(f"`{t}`" for t in tests) or "`tests/`") + ".", "",
         f"**Score: {total['killed']} killed of {checked} non-equivalent mutants run to a verdict "
         f"({100 * total['killed'] / max(1, checked):.1f}%)**, the {total['no tests']} that no test reaches "
         f"counted as not killed; {total['equivalent']} equivalent (`{EQUIVALENTS.as_posix()}`, each with "
         f"its reason); {total['not run']} of {len(res)} not run yet"
         + (" (a partial run: `make mutation` continues where it stopped)." if total["not run"] else "."), ""]
    if total["not run"] and est is not None:
        L += [f"Estimated score of the whole scope: **{100 * est:.1f}%** -- each module's score weighted by its "
              "number of mutants, the mutants run in a module standing for all of it (mostly seeded random "
              "samples: `make mutation-sample`). It leans high where a sample's survivors were since killed "
              "by new tests: a fresh sample, scored before its survivors are looked at, gives an unbiased one"
              + (" (below)" if record.get("samples") else "")
              + (f"; {unseen} mutants are in modules without any verdict." if unseen else "."), ""]
    samples = sample_estimates(record, eq)
    if samples:
        L += ["Fresh samples (`make mutation-sample`), scored as their first run left them, before any test "
              "was written for their survivors; a survivor listed as equivalent since is left out:", "",
              "| sample | mutants | killed at the first run | equivalent | estimate |", "|---|---:|---:|---:|---:|"]
        L += [f"| {label} | {n} | {k} | {e} | " + ("–" if score is None else f"**{100 * score:.1f}%**") + " |"
              for label, n, k, e, score in samples]
        L += [""]
    L += ["| module | " + " | ".join(COLUMNS) + " | score |", "|---|" + "---:|" * (len(COLUMNS) + 1)]
    for mod in sorted(per):
        c = per[mod]
        score = "–" if module_score(c) is None else f"{100 * module_score(c):.0f}%"
        L.append(f"| `{mod}` | " + " | ".join(str(c[x]) for x in COLUMNS) + f" | {score} |")
    L += ["", "`no tests`: no selected test runs the mutated function. `timeout`, `crashed`: the tests ran past "
          "their time or their process died (a segfault, an abort): the mutant was detected, but not by an "
          "assertion. `score`: killed / (killed + survived + no tests).", ""]
    if stale:
        L += ["## Stale equivalence entries", "", "Their line no longer matches the mutant, or it was killed: "
              "review them.", ""] + [f"- `{n}`" for n in stale] + [""]
    L += ["## Survivors", "", "Each is a missing test until a test kills it or it is listed as equivalent.", ""]
    L += [f"- `{n}`: `{diffs.get(n, '?')[:300]}`" for n in sorted(n for n, st in res.items() if st == "survived")] \
        or ["None."]
    unreached = sorted(n for n, st in res.items() if st == "no tests")
    if unreached:
        L += ["", "## Reached by no selected test", "",
              "Counted as not killed: no selected test runs the mutated function.", ""] + [f"- `{n}`" for n in unreached]
    L += ["", "## Equivalent mutants", ""] + [f"- `{n}` (`{diffs[n][:200]}`): {eq[n]}" for n in sorted(eq)]
    return "\n".join(L) + "\n"


def main(argv: list[str] | None = None) -> int:
    import argparse

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sample", type=int, metavar="N", help="print N not-yet-run mutants per module instead")
    p.add_argument("--seed", type=int, default=0, help="seed of the sample (default 0)")
    p.add_argument("--restore", action="store_true", help="write the stored verdicts into mutants/ and stop")
    p.add_argument("--first-pass", type=Path, metavar="FILE",
                   help="store the verdicts of the fresh sample listed in FILE (from --sample, with --seed and "
                        "--per-module) as its unbiased first run, then merge and render as usual")
    p.add_argument("--per-module", type=int, default=None, help="the sample's N (with --first-pass)")
    args = p.parse_args(argv)
    if args.first_pass is not None and args.per_module is None:
        p.error("--first-pass needs --per-module N (and --seed S): the sample's settings")
    if args.restore:
        print(f"restored {store.restore(REPO)} stored verdicts into mutants/")
        return 0
    if args.sample is not None:
        if args.sample < 1:
            p.error("--sample N needs N >= 1")
        if not results():
            print("no mutation results: run `mutmut run` once first (make mutation)", file=sys.stderr)
            return 2
        print("\n".join(sample(args.sample, args.seed)))
        return 0
    if args.first_pass is not None:  # checked and stored before anything else is written
        try:
            store.add_sample(REPO, args.first_pass.read_text().split(), args.seed, args.per_module)
        except (OSError, ValueError) as exc:
            print(f"--first-pass {args.first_pass}: {exc}", file=sys.stderr)
            return 2
    record = store.load(REPO)
    if (REPO / "mutants").is_dir():
        record = store.save(REPO, {n: diff_of(n) for n in _new_survivors(record, store.from_mutants(REPO))})
    if not record.get("files"):
        print("no mutation results: run `mutmut run` first (make mutation)", file=sys.stderr)
        return 2
    (REPO / REPORT).parent.mkdir(parents=True, exist_ok=True)
    (REPO / REPORT).write_text(render(record))
    total = collections.Counter(statuses(record["files"]).values())
    print(f"wrote {REPORT.as_posix()}: {total['killed']} killed, {total['survived']} survived (equivalents "
          f"included), {total['not run']} not run")
    return 0


if __name__ == "__main__":
    sys.exit(main())
