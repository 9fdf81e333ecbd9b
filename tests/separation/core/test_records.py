"""Records that cannot lie: integrity checks on load and reuse, one folder per configuration, and a
fault-injection suite that interrupts ``separation.compute`` at every point of its write path
(``SEPARATION_FAULT=kill|sigint|pause:POINT``, see :func:`separation.core.records._io.fault`)."""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from separation import SeparationRecord, compute_separation, load_dataset
from separation.core.records import (RecordError, RecordIntegrityError, find_records, load_record, reusable,
                                write_record)

from helpers.paths import FIXTURES, REPO


@pytest.fixture(scope="module")
def small():
    """A real separation record of 80 digits (config, record, arrays)."""
    from separation import SeparationConfig

    ds = load_dataset("digits").subset(80, seed=0)
    res = compute_separation(ds.x_train, ds.y_train, ds.x_test, ds.y_test, norm="linf", engine="reference")
    cfg = SeparationConfig(ds.spec(subset=80, seed=0), "linf", eps=(0.1,))
    return cfg, SeparationRecord(config=cfg, result=res.summary([0.1])), res.arrays()


def written(tmp_path, small, name="rec"):
    cfg, rec, arrays = small
    return write_record(tmp_path / name, rec, arrays)


# -- integrity ---------------------------------------------------------------------------------

def test_round_trip_and_what_the_json_carries(tmp_path, small):
    rec = written(tmp_path, small)
    back = load_record(rec.folder)
    assert back == rec and back.config == small[0]
    data = json.loads((rec.folder / "record.json").read_text())
    assert data["kind"] == "separation" and data["schema"] == 2 and data["meta"] is None
    assert data["arrays"]["sha256"] and data["arrays"]["size"] == (rec.folder / "arrays.npz").stat().st_size
    assert len(data["key"]) == 16 and len(data["digest"]) == 64
    np.testing.assert_array_equal(back.load_arrays()["train_distances"], small[2]["train_distances"])


def test_an_edited_json_is_refused(tmp_path, small):
    rec = written(tmp_path, small)
    path = rec.folder / "record.json"
    data = json.loads(path.read_text())
    data["result"]["r"] = 0.5  # the reported radius, edited by hand
    path.write_text(json.dumps(data))
    with pytest.raises(RecordIntegrityError, match="changed after it was written"):
        load_record(rec.folder)


def test_truncated_or_foreign_arrays_are_refused(tmp_path, small):
    rec = written(tmp_path, small)
    arr = rec.folder / "arrays.npz"
    full = arr.read_bytes()
    arr.write_bytes(full[: len(full) // 2])
    with pytest.raises(RecordIntegrityError, match="truncated, or written by another run"):
        load_record(rec.folder)
    cfg, r, arrays = small  # another run's arrays of the same size: the hash tells them apart
    other = {**arrays, "train_distances": arrays["train_distances"][::-1].copy()}
    write_record(tmp_path / "other", r, other)
    arr.write_bytes((tmp_path / "other" / "arrays.npz").read_bytes())
    with pytest.raises(RecordIntegrityError):
        load_record(rec.folder)
    arr.unlink()
    with pytest.raises(RecordIntegrityError, match="missing"):
        load_record(rec.folder)


@pytest.mark.parametrize("content, match", [
    (b"\xff\xfe not utf-8", "is not UTF-8 text"),
    (b"[1, 2, 3]", "not a record"),
    (b"{not json", "is not valid JSON"),
    (b'{"kind": "separation", "schema": 9}', "schema 9"),
    (b'{"kind": "nonsense", "schema": 2}', "unknown record kind"),
])
def test_unreadable_json_is_a_record_error(tmp_path, content, match):
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "record.json").write_bytes(content)
    with pytest.raises(RecordError, match=match):
        load_record(tmp_path / "r")


def _rewrite(path, data):
    """Write edited record JSON with a matching digest: what a careless tool (not a typo) leaves."""
    from separation.core.records import canonical_json
    from separation.core.records._io import sha256_bytes

    body = {k: v for k, v in data.items() if k != "digest"}
    path.write_text(json.dumps({**body, "digest": sha256_bytes(canonical_json(body))}))


def test_ill_typed_fields_are_named(tmp_path, small):
    rec = written(tmp_path, small)
    path = rec.folder / "record.json"
    data = json.loads(path.read_text())
    data["result"]["train"] = "oops"
    _rewrite(path, data)
    with pytest.raises(RecordError, match=r"result\.train: expected a mapping"):
        load_record(rec.folder)
    data["result"]["train"] = json.loads(json.dumps(small[1].to_json()["result"]["train"]))
    data["result"]["r"] = "0.2"  # a string where a number belongs
    _rewrite(path, data)
    with pytest.raises(RecordError, match=r"result\.r: expected a number"):
        load_record(rec.folder)


def test_records_of_an_older_layout_with_fewer_fields_still_verify(tmp_path, small):
    """A field added later with a default: the digest is over the JSON as stored."""
    rec = written(tmp_path, small)
    path = rec.folder / "record.json"
    data = json.loads(path.read_text())
    del data["config"]["exclude_below"]  # as if written before that field existed
    _rewrite(path, data)
    assert load_record(rec.folder).config.exclude_below == small[0].exclude_below


def test_a_directory_at_record_json(tmp_path):
    (tmp_path / "r" / "record.json").mkdir(parents=True)
    with pytest.raises(RecordError):
        load_record(tmp_path / "r")
    assert len(find_records(tmp_path).problems) == 1


def test_reuse_recomputes_on_every_mismatch_with_a_message(tmp_path, small, caplog, monkeypatch):
    cfg, _, _ = small
    rec = written(tmp_path, small)
    assert reusable(SeparationRecord, rec.folder, cfg) == rec
    assert reusable(SeparationRecord, rec.folder, cfg, force=True) is None
    other = dataclasses.replace(cfg, eps=(0.2,))
    with caplog.at_level(logging.INFO):
        assert reusable(SeparationRecord, rec.folder, other) is None
    assert "another configuration or toolkit version" in caplog.text
    # a new toolkit version (e.g. an engine fix) does not reuse records of the old one
    monkeypatch.setattr("separation.core.records._record.toolkit_version", lambda: "9.9.9")
    assert reusable(SeparationRecord, rec.folder, cfg) is None
    monkeypatch.undo()
    (rec.folder / "arrays.npz").write_bytes(b"PK")
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert reusable(SeparationRecord, rec.folder, cfg) is None
    assert "not reusing" in caplog.text


def test_the_key_ignores_where_the_data_lives(tmp_path, small):
    """Data are identified by fingerprint: the same data under another path gives the same key."""
    cfg, _, _ = small
    assert "path" not in json.dumps(dataclasses.asdict(cfg.data)).lower()
    same = load_dataset("digits").subset(80, seed=0).spec(subset=80, seed=0)
    assert SeparationRecord.key_for(dataclasses.replace(cfg, data=same)) == SeparationRecord.key_for(cfg)
    assert SeparationRecord.key_for(dataclasses.replace(cfg, norm="l2")) != SeparationRecord.key_for(cfg)


def test_a_new_write_removes_leftover_temporaries_and_stale_arrays(tmp_path, small):
    rec = written(tmp_path, small)
    junk = rec.folder / ".arrays.npz.abc123.tmp"
    junk.write_bytes(b"x" * 1000)
    cfg, r, _ = small
    again = write_record(rec.folder, r)  # no arrays this time: the old file must not stay beside it
    assert not junk.exists() and not (rec.folder / "arrays.npz").exists() and again.arrays is None
    assert load_record(rec.folder).arrays is None


# -- fault injection on the command line --------------------------------------------------------

def compute(out: Path, *extra: str, env: dict | None = None, wait: bool = True):
    cmd = [sys.executable, "-m", "separation.compute", "--dataset", "digits", "--subset", "300", "--norm", "linf",
           "--engine", "cpu", "--out", str(out), *extra]
    e = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    if not wait:
        return subprocess.Popen(cmd, cwd=REPO, env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return subprocess.run(cmd, cwd=REPO, env=e, capture_output=True, text=True, timeout=300)


def record_folder(out: Path) -> Path:
    (folder,) = [p for p in (out / "digits").iterdir() if p.is_dir()]
    return folder


def leftovers(out: Path) -> list[str]:
    return sorted(p.name for p in out.rglob("*.tmp"))


@pytest.mark.slow
@pytest.mark.parametrize("point", ["before-replace", "after-arrays", "after-json"])
@pytest.mark.parametrize("action", ["kill", "sigint"])
def test_interrupted_write_is_never_reused_half_written(tmp_path, point, action):
    out = tmp_path / "runs"
    p = compute(out, env={"SEPARATION_FAULT": f"{action}:{point}"})
    if action == "kill":
        assert p.returncode == -signal.SIGKILL
    else:
        assert p.returncode == 130, p.stderr
        assert "Traceback" not in p.stderr and "interrupted" in p.stderr
    folder = record_folder(out)
    complete = point == "after-json"
    assert (folder / "record.json").exists() == complete
    if point == "before-replace" and action == "kill":
        assert leftovers(out)  # the killed writer's temporary file ...
    again = compute(out)
    assert again.returncode == 0, again.stderr
    assert ("reused the record" in again.stdout) == complete
    assert leftovers(out) == []  # ... is removed by the next write
    rec = load_record(folder)  # verified: digest and arrays' hash
    assert sorted(rec.arrays.names) == sorted(rec.load_arrays())


@pytest.mark.slow
def test_concurrent_writers_do_not_interleave(tmp_path):
    """Writer A holds the folder, paused between its arrays and its JSON; writer B of the same
    folder waits for the lock (it does not reach its own arrays) until A has finished; the folder
    ends up with one consistent record, never one writer's JSON beside the other's arrays."""
    out = tmp_path / "runs"
    assert compute(out).returncode == 0
    folder = record_folder(out)
    da, db = tmp_path / "a", tmp_path / "b"
    da.mkdir(), db.mkdir()

    def wait_for(path, proc):
        deadline = time.time() + 120
        while not path.exists():
            assert proc.poll() is None, proc.communicate()[1]
            assert time.time() < deadline
            time.sleep(0.05)

    a = compute(out, "--force", env={"SEPARATION_FAULT": "pause:after-arrays", "SEPARATION_FAULT_DIR": str(da)},
                wait=False)
    wait_for(da / "after-arrays.paused", a)
    b = compute(out, "--force", env={"SEPARATION_FAULT": "pause:after-arrays", "SEPARATION_FAULT_DIR": str(db)},
                wait=False)
    time.sleep(4)  # B computes (about a second) and then blocks on A's lock
    assert b.poll() is None and not (db / "after-arrays.paused").exists()
    (da / "after-arrays.go").touch()
    assert a.wait(120) == 0
    wait_for(db / "after-arrays.paused", b)  # only now B has written its arrays
    (db / "after-arrays.go").touch()
    assert b.wait(120) == 0
    rec = load_record(folder)  # verified: arrays and JSON of the same writer
    assert sorted(rec.arrays.names) == sorted(rec.load_arrays())
    assert leftovers(out) == []


# -- memory --------------------------------------------------------------------------------------

def test_too_large_inputs_are_refused_up_front(monkeypatch, capsys, tmp_path):
    from separation import compute

    monkeypatch.setattr("separation.core.memory.available_bytes", lambda: 1 << 16)
    assert compute.main(["--dataset", "digits", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: separation of 1347 training points (cpu, linf) needs about")
    assert "GiB are available" in err and "--subset" in err and "\n" not in err
    assert not (tmp_path / "o").exists()
    x = np.random.default_rng(0).random((500, 30)).astype(np.float32)  # not 8-bit: kept as float64
    with pytest.raises(MemoryError, match="kept exactly as float64"):
        compute_separation(x, np.arange(500) % 2)


def test_the_probe_index_copies_the_support_once_in_the_low_memory_layout():
    import tracemalloc

    from separation.engines.blocks import CPUBlocks
    from separation.engines.probe import ProbeSearch

    x = np.random.default_rng(0).integers(0, 256, (60000, 200), dtype=np.uint8)
    y = np.arange(60000) % 10  # (the probe histograms add 10 x 200 x 257 int32 = 0.17x here)
    ProbeSearch(x[:100], y[:100], 10).other_class(x[:5], y[:5])  # compile first (numba's own memory)
    peaks = {}
    for layout in ("given", "sorted"):
        tracemalloc.start()
        index = ProbeSearch(x, y, 10, blocks=CPUBlocks(probe_layout=layout, probe_query_chunk=1024))
        d, _ = index.other_class(x[:3000], y[:3000])
        peaks[layout] = tracemalloc.get_traced_memory()[1] / x.nbytes
        tracemalloc.stop()
        del index
    # one copy (given) or two (sorted), the histograms, the class order and one query chunk (the
    # sorted layout's pixel order copies it: 1024 x 200 bytes = 0.017x); another copy would add 1.0x
    assert peaks["given"] < 1.4 and peaks["sorted"] < 2.4, peaks


def test_record_commands_are_the_exact_command_lines():
    """What reports print and records replay, word for word: the module run with ``python -m``, a
    seed only where it differs from 0 (and only with a subset), no ``--data-root`` for the embedded
    ``digits`` or ``npz`` data or where none is given. Generated from each command's parser, in its
    order of options."""
    from lipschitz_construct.bounds_job import BoundsJob
    from lipschitz_construct.verify_job import VerifyJob

    verify, bounds = VerifyJob().command_line, BoundsJob().command_line
    v = "python -m lipschitz_construct.verify"
    assert verify({"dataset": "mnist", "norm": "linf"}) == f"{v} --dataset mnist --norm linf --data-root DATA_ROOT"
    assert verify({"dataset": "mnist", "norm": "l2"}, data_root=None) == f"{v} --dataset mnist --norm l2"
    assert verify({"dataset": "digits", "norm": "l2", "subset": 100}) == f"{v} --dataset digits --norm l2 --subset 100"
    assert verify({"dataset": "npz", "norm": "l1", "subset": 100, "seed": 4, "eps": [0.5]}) == \
        f"{v} --dataset npz --norm l1 --subset 100 --seed 4 --eps 0.5"
    b = "python -m lipschitz_construct.bounds"
    assert bounds({"dataset": "mnist", "norm": "linf", "split": "train", "eps": [0.1]}) == \
        f"{b} --dataset mnist --norm linf --split train --eps 0.1 --data-root DATA_ROOT"
    assert bounds({"dataset": "mnist", "norm": "linf", "eps": [0.1]}, data_root=None).endswith("--eps 0.1")
    assert bounds({"dataset": "digits", "norm": "l2", "split": "train", "eps": [1.0], "subset": 50}) == \
        f"{b} --dataset digits --norm l2 --subset 50 --split train --eps 1.0"
    assert bounds({"dataset": "npz", "norm": "l2", "split": "train", "eps": [1.0], "subset": 50, "seed": 2}) == \
        f"{b} --dataset npz --norm l2 --subset 50 --seed 2 --split train --eps 1.0"
    with pytest.raises(ValueError, match="has no option for colour"):
        bounds({"colour": "red"})


def test_astuteness_at_reads_the_eps_values_then_the_curve():
    """``VerifyResult.astuteness_at``: a ``--eps`` value first, else a point of the curve, matched to
    within 1e-12 relative (1e-12 absolute below 1); None where neither has that radius."""
    from types import SimpleNamespace

    from lipschitz_construct.records import Curve, VerifyResult

    res = SimpleNamespace(test_astuteness={"0.1": 0.9, "3.0": 0.25},
                          astuteness_curve=Curve(eps=[0.1, 0.2, 5.0], astuteness=[0.8, 0.5, 0.125]))
    at = VerifyResult.astuteness_at
    assert at(res, 0.1) == 0.9 and at(res, 0.1 + 5e-13) == 0.9 and at(res, 3.0 + 2e-12) == 0.25
    assert at(res, 0.2) == 0.5 and at(res, 5.0 + 4e-12) == 0.125
    assert at(res, 0.2 + 2e-12) is None and at(res, 3.0 + 4e-12) is None and at(res, 0.3) is None
    assert at(res, 0.1 + 1.5e-12) is None and at(res, 0.2 + 1.5e-12) is None  # 1e-12 absolute below 1
    # exactly 1e-12 apart is still the same radius, in the values and in the curve
    assert at(SimpleNamespace(test_astuteness={"1e-12": 0.75}, astuteness_curve=Curve(eps=[], astuteness=[])),
              0.0) == 0.75
    assert at(SimpleNamespace(test_astuteness={}, astuteness_curve=Curve(eps=[1e-12], astuteness=[0.5])), 0.0) == 0.5


SCHEMA1 = FIXTURES / "schema1"
#: schema-1 records as the repository shipped them before typed records (git 532cbfc~1), one per kind
#: with an upgrade; MIGRATED_COPIES holds what 532cbfc migrated them to, as results/ shipped them
#: until they were recomputed from clean code (the results/ copies now have keys of their own)
MIGRATED_COPIES = FIXTURES / "schema1_migrated"
MIGRATED = ["construct/digits/l2", "separation/digits/linf", "evaluate/mnist/constructed_linf_eps0.1_subset500",
            "training/mnist_cpu/natural"]


def test_migrate_turns_schema_1_records_into_the_shipped_ones(tmp_path, capsys):
    """``python -m separation.records migrate`` on the old records of every kind gives back the records
    that results/ ships (config, result, meta, timing, arrays); until then they load as legacy records,
    or not at all where the caller refuses those."""
    import shutil

    from separation.records import main

    root = tmp_path / "results"
    shutil.copytree(SCHEMA1, root)
    with pytest.raises(RecordError, match=r"schema 1\); run `python -m separation.records migrate` or recompute it"):
        load_record(root / MIGRATED[0], allow_legacy=False)
    assert main(["verify", str(root)]) == 0
    assert capsys.readouterr().out.count("schema 1 (run migrate)") == len(MIGRATED)
    assert main(["migrate", "--dry-run", str(root)]) == 0
    assert "4 record(s) to migrate, 0 skipped" in capsys.readouterr().out
    assert all(load_record(root / p).legacy for p in MIGRATED)  # a dry run writes nothing

    assert main(["migrate", str(root)]) == 0
    assert capsys.readouterr().out.endswith("4 record(s) migrated, 0 skipped\n")
    for path in MIGRATED:
        # a migrated record keeps its folder
        shipped_folder = MIGRATED_COPIES / path
        got, shipped = load_record(root / path), load_record(shipped_folder)
        assert not got.legacy and not load_record(root / path, allow_legacy=False).legacy, path
        assert (got.KIND, got.config, got.result, got.meta, got.timing) == \
            (shipped.KIND, shipped.config, shipped.result, shipped.meta, shipped.timing), path
        a, b = got.load_arrays(), shipped.load_arrays()
        assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a), path
    # the verification record's config has gained no field since: the very bytes that were shipped (the key
    # hashes the config, so a record kind with fields added since has another key than its shipped copy)
    assert (root / MIGRATED[0] / "record.json").read_bytes() == (MIGRATED_COPIES / MIGRATED[0] / "record.json").read_bytes()
    assert main(["migrate", str(root)]) == 0 and "0 record(s) migrated" in capsys.readouterr().out
    assert main(["verify", str(root)]) == 0 and "schema 1" not in capsys.readouterr().out


@pytest.mark.parametrize("given, want", [
    ({"subset": 300, "seed": 2, "eps": [0.1, 0.2], "r": 0.25, "pairs": 50, "adversarial_pairs": 20,
      "gradient_steps": 3, "lipschitz_eps": 0.05},
     {"subset": 300, "seed": 2, "eps": (0.1, 0.2), "r": 0.25, "pairs": 50, "adversarial_pairs": 20,
      "gradient_steps": 3, "lipschitz_eps": 0.05}),
    ({}, {"subset": None, "seed": 0, "eps": None, "r": None, "pairs": 1000, "adversarial_pairs": 200,
          "gradient_steps": 10, "lipschitz_eps": None}),  # the settings an early record left out
])
def test_a_schema_1_verification_keeps_its_settings_or_their_defaults(tmp_path, given, want):
    """The settings of a schema-1 ``lipschitz_construct`` record (the shipped ones all have the
    defaults) come through migration; those it lacks take the defaults of the time. A result
    without curve, r cross-check or seconds gets an empty curve, the cross-check from its train
    radius summary (smallest radius, and whether it is r) and the check's seconds from the timing."""
    import shutil

    folder = tmp_path / "rec"
    shutil.copytree(SCHEMA1 / MIGRATED[0], folder)
    data = json.loads((folder / "record.json").read_text())
    for k in want:
        data["config"].pop(k, None)
    data["config"].update(given)
    data["result"]["astuteness_curve"] = None
    for k in ("r_crosscheck", "seconds"):
        data["result"].pop(k)
    (folder / "record.json").write_text(json.dumps(data))
    rec = load_record(folder)
    got = {k: getattr(rec.config.data if k in ("subset", "seed") else rec.config, k) for k in want}
    assert got == want
    res = rec.result
    assert (res.astuteness_curve.eps, res.astuteness_curve.astuteness) == ([], [])
    assert res.min_train_certified_radius == res.train_certified_radius.min == data["result"]["r"]
    assert res.r_equals_min_train_radius is True  # the cross-check, from the stored summary
    assert res.lipschitz_check.seconds == {"random": data["timing"]["lipschitz_random"],
                                           "toward_nearest": data["timing"]["lipschitz_toward_nearest"],
                                           "gradient": data["timing"]["lipschitz_gradient"]}
    if given:
        assert rec.command() == ("python -m lipschitz_construct.verify --dataset digits --norm l2 --subset 300 "
                                 "--seed 2 --eps 0.1 0.2 --r 0.25 --pairs 50 --adversarial-pairs 20 "
                                 "--gradient-steps 3 --lipschitz-eps 0.05")
