"""The mutation record and report: verdicts carried across clones while their function is unchanged,
the sampler, and the shipped report rendered from the shipped record."""
from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from helpers.paths import REPO  # noqa: E402

SCRIPTS = REPO / "tests" / "scripts"


def load(tmp_path, name="mutation_report"):
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(SCRIPTS))
    try:
        spec.loader.exec_module(mod)
    finally:
        sys.path.remove(str(SCRIPTS))
    mod.REPO = tmp_path
    return mod


def write_meta(root: Path, path: str, codes: dict, hashes: dict) -> None:
    meta = root / "mutants" / (path + ".meta")
    meta.parent.mkdir(parents=True, exist_ok=True)
    meta.write_text(json.dumps({"exit_code_by_key": codes, "hash_by_function_name": hashes,
                                "type_check_error_by_key": {}, "durations_by_key": {},
                                "estimated_durations_by_key": {}}))


def test_sample_draws_not_yet_run_mutants_per_module(tmp_path, capsys):
    mod = load(tmp_path)
    assert mod.main(["--sample", "2"]) == 2  # no results yet: says so, exit code 2
    assert "run `mutmut run` once first" in capsys.readouterr().err
    codes = {f"pkg.a.x_f__mutmut_{i}": (None if i % 2 else 1) for i in range(1, 11)}
    codes |= {f"pkg.b.x_g__mutmut_{i}": None for i in range(1, 4)} | {"pkg.c.x_h__mutmut_1": 0}
    write_meta(tmp_path, "pkg/a.py", codes, {"x_f": "1", "x_g": "2", "x_h": "3"})
    picked = mod.sample(2, 0)
    assert len(picked) == 4 and len(set(picked)) == 4
    assert all(codes[n] is None for n in picked)
    assert sum(n.startswith("pkg.a.") for n in picked) == 2 and sum(n.startswith("pkg.b.") for n in picked) == 2
    assert mod.sample(2, 0) == picked and set(mod.sample(5, 1)) == {n for n, c in codes.items() if c is None}
    assert mod.main(["--sample", "2"]) == 0
    assert capsys.readouterr().out.split() == picked


def test_function_of_names_mutmuts_hash_key():
    store = load(Path("."), "mutation_store")
    assert store.function_of("separation.engines.gemm.x__block__mutmut_16") == "x__block"
    assert store.function_of("lipschitz_construct.classifier.xǁLocallyLipschitzClassifierǁfit__mutmut_3") \
        == "xǁLocallyLipschitzClassifierǁfit"


def test_a_stored_verdict_is_kept_only_while_its_function_is_unchanged(tmp_path):
    store = load(tmp_path, "mutation_store")
    write_meta(tmp_path, "pkg/a.py", {"pkg.a.x_f__mutmut_1": 1, "pkg.a.x_f__mutmut_2": 0,
                                      "pkg.a.x_g__mutmut_1": 1, "pkg.a.x_g__mutmut_2": None},
               {"x_f": "f1", "x_g": "g1"})
    record = store.save(tmp_path, {"pkg.a.x_f__mutmut_2": "- a / + b"})
    assert record["diffs"] == {"pkg.a.x_f__mutmut_2": "- a / + b"}
    assert json.loads((tmp_path / store.STORE).read_text()) == record
    # a fresh clone: x_f unchanged, x_g edited; mutmut generated the meta anew, nothing run yet
    write_meta(tmp_path, "pkg/a.py", {"pkg.a.x_f__mutmut_1": None, "pkg.a.x_f__mutmut_2": None,
                                      "pkg.a.x_g__mutmut_1": None, "pkg.a.x_g__mutmut_2": None},
               {"x_f": "f1", "x_g": "g2"})
    merged = store.merge(record["files"], store.from_mutants(tmp_path))["pkg/a.py"]["verdicts"]
    assert merged == {"pkg.a.x_f__mutmut_1": 1, "pkg.a.x_f__mutmut_2": 0,
                      "pkg.a.x_g__mutmut_1": None, "pkg.a.x_g__mutmut_2": None}
    # a file this clone has not generated keeps its stored verdicts
    assert store.merge(record["files"], {})["pkg/a.py"] == record["files"]["pkg/a.py"]
    # saving again forgets the edited function's verdict, and a diff whose mutant no longer survives
    write_meta(tmp_path, "pkg/a.py", {"pkg.a.x_f__mutmut_1": None, "pkg.a.x_f__mutmut_2": 1,
                                      "pkg.a.x_g__mutmut_1": None, "pkg.a.x_g__mutmut_2": None},
               {"x_f": "f1", "x_g": "g2"})
    again = store.save(tmp_path, {})
    assert again["files"]["pkg/a.py"]["verdicts"] == {"pkg.a.x_f__mutmut_1": 1, "pkg.a.x_f__mutmut_2": 1,
                                                     "pkg.a.x_g__mutmut_1": None, "pkg.a.x_g__mutmut_2": None}
    assert again["diffs"] == {}


def test_restore_writes_valid_verdicts_into_mutants_for_the_next_run(tmp_path):
    store = load(tmp_path, "mutation_store")
    write_meta(tmp_path, "pkg/a.py", {"pkg.a.x_f__mutmut_1": 1, "pkg.a.x_g__mutmut_1": 0}, {"x_f": "f1", "x_g": "g1"})
    store.save(tmp_path, {})
    meta = tmp_path / "mutants" / "pkg" / "a.py.meta"
    meta.unlink()
    assert store.restore(tmp_path) == 2  # a fresh clone: the meta file is written whole
    data = json.loads(meta.read_text())
    assert data["exit_code_by_key"] == {"pkg.a.x_f__mutmut_1": 1, "pkg.a.x_g__mutmut_1": 0}
    assert set(data) == {"exit_code_by_key", "hash_by_function_name", "type_check_error_by_key",
                         "durations_by_key", "estimated_durations_by_key"}  # what mutmut's loader asserts
    # mutmut already generated this clone's meta and x_g changed: only x_f's verdict goes in
    write_meta(tmp_path, "pkg/a.py", {"pkg.a.x_f__mutmut_1": None, "pkg.a.x_g__mutmut_1": None},
               {"x_f": "f1", "x_g": "g2"})
    assert store.restore(tmp_path) == 1
    assert json.loads(meta.read_text())["exit_code_by_key"] == {"pkg.a.x_f__mutmut_1": 1, "pkg.a.x_g__mutmut_1": None}


def test_untested_mutants_count_against_the_score_and_modules_weigh_by_size(tmp_path):
    """Module a: 3 killed, 1 survivor, 1 reached by no test, 95 not run (score 3/5, weight 100);
    module b: 9 killed, 1 equivalent, 10 not run (score 1, weight 19); module c: nothing run yet."""
    from collections import Counter

    mod = load(tmp_path)
    per = {"a": Counter({"killed": 3, "survived": 1, "no tests": 1, "not run": 95}),
           "b": Counter({"killed": 9, "equivalent": 1, "not run": 10}),
           "c": Counter({"not run": 7})}
    assert [mod.module_score(per[m]) for m in "abc"] == [0.6, 1.0, None]
    est, unseen = mod.scope_estimate(per)
    assert est == pytest.approx((0.6 * 100 + 1.0 * 19) / 119) and unseen == 7
    assert mod.scope_estimate({"c": per["c"]}) == (None, 7)


def test_the_report_names_every_mutant_that_is_not_killed(tmp_path):
    mod = load(tmp_path)
    (tmp_path / "setup.cfg").write_text("[mutmut]\nonly_mutate = pkg/*\n")
    record = {"mutmut": "3.8.1", "machine": "x86_64, 2 CPUs", "updated": "2026-01-01 00:00 UTC",
              "files": {"pkg/a.py": {"hashes": {}, "verdicts": {"pkg.a.x_f__mutmut_1": 1, "pkg.a.x_f__mutmut_2": 0,
                                                                 "pkg.a.x_g__mutmut_1": 33, "pkg.a.x_g__mutmut_2": -11,
                                                                 "pkg.a.x_g__mutmut_3": 34}}},
              "diffs": {"pkg.a.x_f__mutmut_2": "- a < b / + a <= b"}}
    text = mod.render(record)
    assert "**Score: 1 killed of 3 non-equivalent mutants run to a verdict (33.3%)**" in text
    assert "- `pkg.a.x_f__mutmut_2`: `- a < b / + a <= b`" in text.split("## Survivors")[1]
    assert "- `pkg.a.x_g__mutmut_1`" in text.split("## Reached by no selected test")[1]
    assert "pkg.a.x_f__mutmut_1" not in text
    # every mutant is in one column: a crashed test process and a skipped mutant too
    assert "| `pkg.a` | 1 | 1 | 0 | 1 | 0 | 1 | 1 | 0 | 33% |" in text


def test_a_fresh_sample_keeps_its_first_run_and_gives_an_unbiased_estimate(tmp_path, capsys):
    """The sample's verdicts are stored as its first run left them: killing a survivor later does not
    change its estimate; a survivor listed as equivalent since leaves the denominator."""
    mod = load(tmp_path)
    (tmp_path / "setup.cfg").write_text("[mutmut]\nonly_mutate = pkg/*\n")
    (tmp_path / "tests").mkdir()
    names = [f"pkg.a.x_f__mutmut_{i}" for i in range(1, 6)]
    codes = dict(zip(names, [1, 1, 0, 0, 33])) | {"pkg.a.x_f__mutmut_6": None}
    write_meta(tmp_path, "pkg/a.py", codes, {"x_f": "1"})
    (tmp_path / "sample.txt").write_text("\n".join(names[:4] + ["pkg.a.x_f__mutmut_6"]))
    with pytest.raises(SystemExit):  # the sample's settings are part of its record
        mod.main(["--first-pass", str(tmp_path / "sample.txt")])
    args = ["--first-pass", str(tmp_path / "sample.txt"), "--seed", "3", "--per-module", "5"]
    assert mod.main(args) == 2 and "no verdict yet (e.g. pkg.a.x_f__mutmut_6)" in capsys.readouterr().err
    assert not (tmp_path / mod.store.STORE).exists()  # refused before anything was written
    (tmp_path / "sample.txt").write_text("\n".join(names))
    mod.diff_of = lambda name: "- a < b / + a <= b"
    assert mod.main(args) == 0
    assert "| seed 3, 5 per module | 5 | 2 | 0 | **40.0%** |" in (tmp_path / mod.REPORT).read_text()
    # a test kills mutant 3 later; mutant 4 is shown equivalent
    write_meta(tmp_path, "pkg/a.py", codes | {"pkg.a.x_f__mutmut_3": 1}, {"x_f": "1"})
    (tmp_path / "tests" / "mutation_equivalents.yaml").write_text(
        "pkg.a.x_f__mutmut_4:\n  line: 'a <= b'\n  reason: the same\n")
    assert mod.main(args) == 0  # the same sample again: stored once, as first run
    record = json.loads((tmp_path / mod.store.STORE).read_text())
    assert len(record["samples"]) == 1 and record["samples"][0]["first_pass"]["pkg.a.x_f__mutmut_3"] == 0
    assert "| seed 3, 5 per module | 5 | 2 | 1 | **50.0%** |" in (tmp_path / mod.REPORT).read_text()


def test_the_report_needs_results(tmp_path, capsys):
    assert load(tmp_path).main([]) == 2
    assert "run `mutmut run` first" in capsys.readouterr().err


def test_the_shipped_report_is_the_rendering_of_the_shipped_record():
    """``reports/quality/mutation.md`` is what the committed record renders to (with the committed
    equivalents): the report is never edited by hand and never out of date with its record."""
    mod = load(REPO)
    record = mod.store.load(REPO)
    if not record.get("files"):
        pytest.fail("reports/quality/mutmut-results.json is missing: run `make mutation`")
    assert (REPO / mod.REPORT).read_text() == mod.render(record), "re-render: python tests/scripts/mutation_report.py"


def test_make_mutation_sample_draws_runs_and_stores_the_first_pass():
    import shutil
    import subprocess

    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    out = subprocess.run(["make", "-n", "mutation-sample", "PER_MODULE=3", "SEED=4"], cwd=REPO, capture_output=True,
                         text=True, check=True).stdout.splitlines()
    steps = [next(i for i, line in enumerate(out) if part in line) for part in
             ("--restore", "--sample 3 --seed 4 > mutants/sample.txt", "mutmut run",
              "--first-pass mutants/sample.txt --seed 4 --per-module 3")]
    assert steps == sorted(steps)
