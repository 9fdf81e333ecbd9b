"""``python -m lipschitz_construct.verify``: records, reuse, claims, and clear errors on bad input."""
from __future__ import annotations

import json

import numpy as np
import pytest

from helpers.records import only_record, record_folders
from lipschitz_construct.records import VerificationRecord
from lipschitz_construct.verify import main
from separation.core.records import load_record

FAST = ["--pairs", "100", "--adversarial-pairs", "20", "--gradient-steps", "2", "--no-progress"]


def run_cli(tmp_path, *args, sep=None):
    sep = sep or tmp_path / "no-separation-records"
    return main(["--out", str(tmp_path / "out"), "--separation-records", str(sep), *FAST, *args])


def verification(tmp_path) -> VerificationRecord:
    return load_record(only_record(tmp_path / "out"), VerificationRecord)


def test_digits_linf_record_and_claims(tmp_path, capsys):
    assert run_cli(tmp_path, "--dataset", "digits", "--norm", "linf", "--eps", "0.1", "0.2") == 0
    out = capsys.readouterr().out
    assert out.count("[HELD]") == 3 and "FAILED" not in out and "record:" in out
    rec = verification(tmp_path)
    res = rec.result
    assert rec.folder.parent == tmp_path / "out" / "digits" and rec.folder.name == f"linf-{rec.key[:8]}"
    assert res.r == 0.21875  # half the digits l-inf separation, 0.4375 (exact: 7/16)
    assert res.lipschitz_bound == pytest.approx(1 / 0.21875)
    assert res.train_accuracy == 1.0 and res.train_astuteness_at_r == 1.0
    assert res.claims == {"train_accuracy_is_1": True, "train_astuteness_at_r_is_1": True,
                          "lipschitz_bound_held": True}
    assert set(res.test_astuteness) == {"0.1", "0.2"}
    assert res.lipschitz_check.held and res.lipschitz_check.bound == res.lipschitz_bound
    assert {"fit", "certify_test", "lipschitz_check"} <= set(rec.timing)
    curve = res.astuteness_curve
    assert len(curve.eps) == len(curve.astuteness) and 0.1 in curve.eps
    assert all(a >= b for a, b in zip(curve.astuteness, curve.astuteness[1:]))  # non-increasing
    arrays = rec.load_arrays()
    assert {"test_pred", "test_certified_radius", "train_certified_radius"} <= set(arrays)
    assert len(arrays["test_pred"]) == res.n_test == 450
    # the recorded numbers follow from the recorded arrays
    correct = arrays["test_pred"] == arrays["y_test"]
    assert res.test_accuracy == pytest.approx(correct.mean())
    assert res.test_astuteness["0.1"] == pytest.approx(np.mean(correct & (arrays["test_certified_radius"] >= 0.1)))
    json.dumps(rec.to_json())  # plain JSON
    assert rec.command() == ("python -m lipschitz_construct.verify --dataset digits --norm linf --eps 0.1 0.2 "
                             "--pairs 100 --adversarial-pairs 20 --gradient-steps 2")
    assert (rec.config.pairs, rec.config.adversarial_pairs, rec.config.gradient_steps) == (100, 20, 2)  # FAST
    # the printed summary is the record's: a row per number
    for label, value in (("test certified radius, min", res.certified_radius.min),
                         ("test certified radius, median", res.certified_radius.quantiles["0.5"]),
                         ("test certified radius, mean", res.certified_radius.mean)):
        assert f"{label:<44} {value:>12.6g}" in out.splitlines()


def test_matching_record_is_reused_unless_forced(tmp_path, capsys):
    args = ("--dataset", "digits", "--norm", "l2", "--subset", "300")
    assert run_cli(tmp_path, *args) == 0
    folder = only_record(tmp_path / "out")
    stamp = (folder / "record.json").stat().st_mtime_ns
    assert run_cli(tmp_path, *args) == 0
    assert (folder / "record.json").stat().st_mtime_ns == stamp and "reused the record" in capsys.readouterr().out
    assert run_cli(tmp_path, *args, "--force") == 0
    assert (folder / "record.json").stat().st_mtime_ns != stamp
    rec = verification(tmp_path)
    assert rec.config.data.subset == 300 and "--subset 300" in rec.command()
    res = rec.result
    assert res.n_train == 300 and res.engine == "cpu"
    assert list(res.test_astuteness) == [str(res.r)]  # default eps for l2: r itself
    assert run_cli(tmp_path, *args, "--eps", "0.5") == 0  # another configuration: another folder
    assert len(record_folders(tmp_path / "out")) == 2


def test_r_from_a_separation_record(tmp_path, capsys):
    from separation.compute import main as separation_main

    sep = tmp_path / "sep"
    assert separation_main(["--dataset", "digits", "--norm", "linf", "--out", str(sep), "--no-progress"]) == 0
    assert run_cli(tmp_path, "--dataset", "digits", sep=sep) == 0
    res = verification(tmp_path).result
    assert "separation record" in res.r_source and res.r == 0.21875
    assert res.r_equals_min_train_radius


def test_too_large_r_fails_a_claim_with_exit_1(tmp_path, capsys):
    assert run_cli(tmp_path, "--dataset", "digits", "--r", "0.4") == 1
    out = capsys.readouterr().out
    assert "[FAILED] it is astute at radius r" in out
    res = verification(tmp_path).result
    assert res.claims["train_astuteness_at_r_is_1"] is False and res.all_claims_held is False


@pytest.mark.parametrize("args, message", [
    (["--subset", "9999"], "larger than"),
    (["--eps", "3"], "exceeds the linf diameter"),
    (["--dataset", "mnist", "--data-root", "{tmp}/nothing"], "not found"),
    (["--dataset", "npz", "--npz", "{tmp}/missing.npz"], "not found"),
])
def test_bad_input_exits_2_without_a_record(tmp_path, capsys, args, message):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    assert run_cli(tmp_path, *args) == 2
    err = capsys.readouterr().err
    assert "error:" in err and message in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("args", [["--eps", "-1"], ["--eps", "0"], ["--eps", "nan"], ["--pairs", "-3"], ["--r", "0"],
                                  ["--norm", "l7"], ["--engine", "fused"], ["--subset", "1"]])
def test_bad_flags_are_argparse_errors(tmp_path, capsys, args):
    with pytest.raises(SystemExit) as exc:
        run_cli(tmp_path, *args)
    assert exc.value.code == 2
    assert "error" in capsys.readouterr().err


def test_a_dataset_without_a_test_split_is_verified_on_its_training_set(tmp_path, capsys):
    """An npz file with x_train / y_train only: no test numbers, the Lipschitz check on train points."""
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.uniform(0, 0.3, (15, 4)), rng.uniform(0.7, 1, (15, 4))])
    np.savez(tmp_path / "train.npz", x_train=x, y_train=np.repeat([0, 1], 15))
    assert run_cli(tmp_path, "--dataset", "npz", "--npz", str(tmp_path / "train.npz"), "--norm", "linf") == 0
    res = verification(tmp_path).result
    assert (res.n_train, res.n_test, res.test_accuracy) == (30, 0, None) and res.all_claims_held
    assert "test accuracy" in capsys.readouterr().out


def test_not_separated_data_exit_2(tmp_path, capsys):
    x = np.zeros((4, 1, 2, 2), dtype=np.uint8)
    x[2:] = 255
    np.savez(tmp_path / "dup.npz", x_train=x, y_train=np.array([0, 1, 0, 1]))
    assert run_cli(tmp_path, "--dataset", "npz", "--npz", str(tmp_path / "dup.npz")) == 2
    err = capsys.readouterr().err
    assert "not separated" in err and "--r" in err
    assert not (tmp_path / "out").exists()


def test_a_separation_record_of_other_data_is_not_used(tmp_path, capsys):
    """A verified separation record of other data (another training set) gives no r; an edited
    one (its r changed by hand) fails its digest check and gives none either."""
    from separation.compute import main as separation_main

    sep = tmp_path / "sep"
    assert separation_main(["--dataset", "digits", "--norm", "linf", "--subset", "500", "--out", str(sep),
                            "--no-progress"]) == 0
    assert run_cli(tmp_path, "--dataset", "digits", sep=sep) == 0  # the full set: not the subset's record
    res = verification(tmp_path).result
    assert res.r == 0.21875 and res.r_source.startswith("computed")
    assert separation_main(["--dataset", "digits", "--norm", "linf", "--out", str(sep), "--no-progress"]) == 0
    full = [f for f in record_folders(sep) if "subset" not in f.name][0]
    path = full / "record.json"
    rec = json.loads(path.read_text())
    rec["result"]["r"] = 0.001
    path.write_text(json.dumps(rec))
    assert run_cli(tmp_path, "--dataset", "digits", "--force", sep=sep) == 0
    res = verification(tmp_path).result
    assert res.r == 0.21875 and res.r_source.startswith("computed")


def test_every_option_of_the_verify_cli_says_what_it_does():
    from lipschitz_construct.verify_job import VerifyJob

    parser = VerifyJob().parser()
    assert parser.description and all(a.help for a in parser._actions), "an option without --help text"


def test_the_cli_defaults_are_the_config_defaults():
    """What ``--help`` promises (e.g. "default 1000") is what ``VerifyConfig`` records by default."""
    import dataclasses

    from lipschitz_construct.records import VerifyConfig
    from lipschitz_construct.verify_job import VerifyJob

    args = VerifyJob().parser().parse_args(["--dataset", "digits"])
    defaults = {f.name: f.default for f in dataclasses.fields(VerifyConfig)}
    assert (args.pairs, args.adversarial_pairs, args.gradient_steps) == (1000, 200, 10)
    for name in ("pairs", "adversarial_pairs", "gradient_steps", "lipschitz_eps", "eps"):
        assert getattr(args, name) == defaults[name], name
