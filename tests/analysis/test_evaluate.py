"""analysis.evaluate and analysis.checkpoints: records, the CLI, checkpoint loading and its errors."""
from __future__ import annotations

import dataclasses
import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn

from analysis.checkpoints import CheckpointError, load_checkpoint, model_from_checkpoint, save_checkpoint
from analysis.evaluate import main
from analysis.model_metrics import EvalConfig, evaluate_model as evaluate
from analysis.models import build_model
from analysis.records import EvaluationRecord, ModelSpec
from helpers.records import only_record, record_folders
from separation.core.records import load_record

from helpers.paths import REPO
from helpers.digits_model import trained_digits_cnn
ARRAY_KEYS = {"train_lipschitz", "test_lipschitz", "train_correct", "test_correct", "train_adv_correct",
              "test_adv_correct"}
FAST = ["--attacks", "pgd", "--pgd-steps", "3", "--lip-steps", "3", "--no-progress", "--threads", "1"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def digits():
    from separation import load_dataset

    return load_dataset("digits")


@pytest.fixture(scope="module")
def cnn(digits):
    """cnn001 (8x8 input) trained for a few steps on digits."""
    return trained_digits_cnn(digits.x_train, digits.y_train, steps=40)


@pytest.fixture
def ckpt(tmp_path, cnn):
    path = tmp_path / "cnn001_digits.pt"
    save_checkpoint(path, model=cnn, config={"arch": "cnn001", "dropout": 0.0, "in_channels": 1,
                                             "num_classes": 10, "input_size": 8},
                    epoch=3, rng={"torch": torch.get_rng_state()})
    return path


# -- the library -----------------------------------------------------------------------------------

def test_evaluate_record_layout(tmp_path, cnn, digits):
    config = EvalConfig(eps=0.1, subset=40, lipschitz_steps=3, batch_size=16,
                        attacks=("pgd", {"name": "multitargeted", "steps": 3}))
    ev = evaluate(cnn, digits, config, out=tmp_path, name="tiny", model_spec=ModelSpec("tiny", arch="cnn001"))
    res = ev.result
    assert res.model.n_params == sum(p.numel() for p in cnn.parameters()) and res.model.arch == "cnn001"
    assert res.attacks == ["pgd", "multitargeted"] and res.dataset == "digits" and res.eps == 0.1
    rec = load_record(only_record(tmp_path), EvaluationRecord)
    assert rec.result == res and rec.config.data.subset == 40 and rec.config.lipschitz.modes == ("ascent", "paper")
    assert "torchattacks" in rec.meta.versions and rec.timing["total"] > 0
    arrays = rec.load_arrays()
    assert set(arrays) >= ARRAY_KEYS | {"train_lipschitz_paper", "test_lipschitz_paper"}
    for split in ("train", "test"):
        s = res.split(split)
        assert s.n == 40 and set(s.adv_acc_per_attack) == {"pgd", "multitargeted"}
        assert s.clean_acc == pytest.approx(arrays[f"{split}_correct"].mean())
        assert s.adv_acc == pytest.approx(arrays[f"{split}_adv_correct"].mean())
        robust = arrays[f"{split}_correct"] & arrays[f"{split}_adv_correct_pgd"] & \
            arrays[f"{split}_adv_correct_multitargeted"]
        np.testing.assert_array_equal(arrays[f"{split}_adv_correct"], robust)
        # the same attacks run directly on the same points (the subset, the seed, the batches)
        from analysis.attack_suite import run_attacks

        sub = digits.subset(40, seed=0)
        xs = torch.tensor(getattr(sub, f"x_{split}"), dtype=torch.float32)
        direct = run_attacks(cnn, xs, getattr(sub, f"y_{split}"), eps=0.1, batch_size=16, seed=0,
                             attacks=["pgd", {"name": "multitargeted", "steps": 3}], num_classes=10)
        for name in ("pgd", "multitargeted"):
            np.testing.assert_array_equal(arrays[f"{split}_adv_correct_{name}"], direct.per_attack_correct[name])
        assert s.lipschitz_mean == pytest.approx(arrays[f"{split}_lipschitz"].mean())
        assert s.lipschitz_paper_mean == pytest.approx(arrays[f"{split}_lipschitz_paper"].mean())
    g = res.gaps
    assert g.clean == pytest.approx(res.train.clean_acc - res.test.clean_acc)
    assert g.adv == pytest.approx(res.train.adv_acc - res.test.adv_acc)
    assert g.lipschitz == pytest.approx(res.test.lipschitz_mean - res.train.lipschitz_mean)
    frame = ev.to_frame()
    assert len(frame) == 80 and {"split", "label", "correct", "adv_correct", "lipschitz"} <= set(frame.columns)
    assert "Evaluation(model='tiny'" in repr(ev) and len(repr(ev)) < 400 and "<table" in ev._repr_html_()


def test_reuse_force_and_one_folder_per_configuration(tmp_path, cnn, digits):
    config = EvalConfig(eps=0.1, subset=20, attacks=("pgd",), lipschitz=("ascent",), lipschitz_steps=2)
    first = evaluate(cnn, digits, config, out=tmp_path)
    again = evaluate(cnn, digits, config, out=tmp_path)
    assert not first.reused and again.reused and again.result == first.result
    assert not evaluate(cnn, digits, config, out=tmp_path, force=True).reused
    other = evaluate(cnn, digits, dataclasses.replace(config, eps=0.2), out=tmp_path)
    assert not other.reused and other.folder != first.folder
    steps = evaluate(cnn, digits, dataclasses.replace(config, attacks=({"name": "pgd", "steps": 3},)), out=tmp_path)
    assert steps.folder != first.folder  # attack settings are part of the configuration
    assert len(record_folders(tmp_path)) == 3


def test_official_lipschitz_rng_reproduces_the_official_procedure(digits, cnn):
    """lipschitz_rng='official': the paper-mode values are the official procedure's after
    torch.manual_seed(seed) -- seed for seed -- and torch's global generator is left as it was."""
    import sys

    sys.path.insert(0, str(REPO / "tests"))
    from test_lipschitz_estimator import _official_reference

    config = EvalConfig(eps=0.1, subset=32, attacks=(), lipschitz=("paper",), lipschitz_rng="official", seed=5,
                        splits=("test",))
    state = torch.get_rng_state()
    ev = evaluate(cnn, digits, config)
    assert torch.equal(torch.get_rng_state(), state)
    x = torch.tensor(digits.subset(32, seed=5).x_test, dtype=torch.float32)
    torch.manual_seed(5)
    ref = _official_reference(cnn, x, eps=0.1, norm="linf", steps=10, step_size=0.003)
    np.testing.assert_array_equal(ev.arrays["test_lipschitz_paper"], ref)


def test_train_mode_model_warns_and_is_restored(cnn, digits):
    model = build_model("cnn001", in_channels=1, num_classes=10, input_size=8, dropout=True).train()
    with pytest.warns(UserWarning, match="train mode"):
        ev = evaluate(model, digits, EvalConfig(eps=0.1, subset=8, attacks=(), lipschitz=("paper",), lipschitz_steps=1))
    assert all(m.training for m in model.modules())
    assert any("train mode" in w for w in ev.result.warnings)
    assert ev.result.train.adv_acc is None and ev.result.gaps.adv is None
    assert ev.result.train.lipschitz_mean is None and ev.result.train.lipschitz_paper_mean > 0


def test_library_input_errors(cnn, digits):
    def run(**kw):
        return evaluate(cnn, digits, EvalConfig(**{"eps": 0.1, "subset": 5, "attacks": (), "lipschitz": (), **kw}))

    with pytest.raises(ValueError, match="Unknown attack"):
        run(attacks=("fgsm",))
    with pytest.raises(ValueError, match="Lipschitz mode"):
        run(lipschitz=("upwards",))
    with pytest.raises(ValueError, match="norm"):
        run(norm="l1")
    with pytest.raises(ValueError, match="lipschitz_rng"):
        run(lipschitz=("paper",), lipschitz_rng="mine")
    with pytest.raises(TypeError, match="Dataset"):
        evaluate(cnn, (digits.x_train, digits.y_train), EvalConfig(eps=0.1))
    wrong = nn.Sequential(nn.Flatten(), nn.Linear(64, 3)).eval()
    with pytest.raises(ValueError, match=r"labels in \[0, \d\] but the model returns 3 logits"):
        evaluate(wrong, digits, EvalConfig(eps=0.1, subset=5, attacks=(), lipschitz=()))


def test_negative_labels_and_nan_models_are_refused(cnn, digits):
    bad = dataclasses.replace(digits, y_test=digits.y_test - 1)
    with pytest.raises(ValueError, match=r"labels in \[-1, 8\]"):
        evaluate(cnn, bad, EvalConfig(eps=0.1, subset=10, attacks=(), lipschitz=()))
    broken = build_model("cnn001", in_channels=1, num_classes=10, input_size=8)
    with torch.no_grad():
        broken.fc2.weight.fill_(float("nan"))
    with pytest.raises(ValueError, match="not finite"):
        evaluate(broken.eval(), digits, EvalConfig(eps=0.1, subset=10))


# -- checkpoints -----------------------------------------------------------------------------------

def test_checkpoint_roundtrip_and_formats(tmp_path, cnn, ckpt):
    state = load_checkpoint(ckpt)
    assert state["config"]["arch"] == "cnn001" and state["epoch"] == 3 and "rng" in state
    model, cfg = model_from_checkpoint(ckpt)
    x = torch.rand(3, 1, 8, 8)
    torch.testing.assert_close(model(x), cnn(x))
    assert cfg["input_size"] == 8 and not model.training
    # a bare state dict, and one saved from DataParallel (module. prefix)
    bare = tmp_path / "bare.pt"
    torch.save({f"module.{k}": v for k, v in cnn.state_dict().items()}, bare)
    with pytest.raises(CheckpointError, match="architecture"):
        model_from_checkpoint(bare, in_channels=1, num_classes=10, input_size=8)
    m2, _ = model_from_checkpoint(bare, arch="cnn001", in_channels=1, num_classes=10, input_size=8)
    torch.testing.assert_close(m2(x), cnn(x))
    with pytest.raises(CheckpointError, match="contradicts"):
        model_from_checkpoint(ckpt, arch="cnn002")
    with pytest.raises(CheckpointError, match="input_size=8 but the data has input_size=28"):
        model_from_checkpoint(ckpt, input_size=28)
    with pytest.raises(CheckpointError, match="does not fit the model.*shape mismatch"):
        model_from_checkpoint(bare, arch="cnn001", in_channels=1, num_classes=10, input_size=10)


def test_checkpoint_with_normalization(tmp_path):
    torch.manual_seed(0)
    inner = build_model("cnn001", in_channels=1, num_classes=10, input_size=8)
    path = tmp_path / "norm.pt"
    save_checkpoint(path, model=inner, config={"arch": "cnn001", "in_channels": 1, "num_classes": 10,
                                               "input_size": 8,
                                               "normalization": {"mean": [0.1307], "std": [0.3081]}})
    model, _ = model_from_checkpoint(path)
    x = torch.rand(2, 1, 8, 8)
    torch.testing.assert_close(model(x), inner.eval()((x - 0.1307) / 0.3081))


def test_save_checkpoint_refuses_unsafe_content(tmp_path, cnn):
    with pytest.raises(ValueError, match="'arch'"):
        save_checkpoint(tmp_path / "a.pt", model=cnn, config={})
    with pytest.raises(CheckpointError, match="weights_only"):
        save_checkpoint(tmp_path / "b.pt", model=cnn, config={"arch": "cnn001"}, rng=np.random.get_state())
    assert not (tmp_path / "b.pt").exists()


def _bad_files(tmp_path: Path, cnn) -> dict[str, tuple[Path, str]]:
    files = {}
    p = tmp_path / "page.pt"
    p.write_text("<!DOCTYPE html>\n<html><body>Sign in to continue</body></html>\n")
    files["html"] = (p, "HTML")
    p = tmp_path / "empty.pt"
    p.write_bytes(b"")
    files["empty"] = (p, "empty")
    p = tmp_path / "noise.pt"
    p.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    files["noise"] = (p, "not a torch checkpoint")
    buf = io.BytesIO()
    torch.save({"model": cnn.state_dict(), "config": {"arch": "cnn001"}}, buf)
    p = tmp_path / "truncated.pt"
    p.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    files["truncated"] = (p, "corrupt or truncated")
    p = tmp_path / "pickled_model.pt"
    torch.save(cnn, p)
    files["pickled"] = (p, "refusing to unpickle")
    p = tmp_path / "list.pt"
    torch.save([1, 2, 3], p)
    files["list"] = (p, "not a checkpoint")
    p = tmp_path / "lfs.pt"
    p.write_text("version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 123\n")
    files["lfs"] = (p, "LFS")
    return files


@pytest.mark.parametrize("kind", ["html", "empty", "noise", "truncated", "pickled", "list", "lfs"])
def test_bad_checkpoint_files_give_clear_errors(tmp_path, cnn, kind):
    path, msg = _bad_files(tmp_path, cnn)[kind]
    with pytest.raises(CheckpointError, match=msg):
        load_checkpoint(path)


def test_missing_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pt")
    with pytest.raises(CheckpointError, match="folder"):
        load_checkpoint(tmp_path)


# -- the command line ------------------------------------------------------------------------------

def evaluation(root) -> EvaluationRecord:
    return load_record(only_record(root), EvaluationRecord)


def test_cli_evaluates_a_checkpoint(tmp_path, ckpt, capsys):
    out = tmp_path / "rec"
    argv = ["--checkpoint", str(ckpt), "--dataset", "digits", "--subset", "24", "--out", str(out), *FAST]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    rec = evaluation(out)
    assert "cnn001" in printed and f"record: {rec.folder}" in printed
    res = rec.result
    assert res.model.name == "cnn001_digits" and res.model.arch == "cnn001"
    assert res.model.checkpoint == str(ckpt) and res.eps == 0.1  # the paper's default eps
    assert res.train.lipschitz_mean > 0 and res.train.lipschitz_paper_mean > 0
    assert rec.config.model.checkpoint_sha256 and set(rec.load_arrays()) >= ARRAY_KEYS
    assert main(argv) == 0 and "reused the record" in capsys.readouterr().out
    assert main(argv + ["--force"]) == 0 and "reused" not in capsys.readouterr().out


def test_cli_default_folder_and_bare_state_dict(tmp_path, monkeypatch, cnn, capsys):
    monkeypatch.chdir(tmp_path)
    torch.save(cnn.state_dict(), "weights.pt")
    assert main(["--checkpoint", "weights.pt", "--dataset", "digits", "--subset", "10", *FAST]) == 2
    assert "--arch" in capsys.readouterr().err
    assert main(["--checkpoint", "weights.pt", "--arch", "cnn001", "--dataset", "digits", "--subset", "10",
                 "--eps", "0.05", *FAST]) == 0
    folder = only_record(tmp_path / "runs" / "evaluate")
    assert folder.parent.name == "digits" and folder.name.startswith("weights_linf_eps0.05_subset10-")


@pytest.mark.parametrize("kind", ["html", "truncated", "pickled"])
def test_cli_bad_checkpoint_exits_with_a_clear_message(tmp_path, cnn, capsys, kind):
    path, msg = _bad_files(tmp_path, cnn)[kind]
    code = main(["--checkpoint", str(path), "--arch", "cnn001", "--dataset", "digits", "--subset", "5",
                 "--out", str(tmp_path / "o"), *FAST])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and msg in err and "Traceback" not in err


@pytest.mark.parametrize("extra, msg", [
    (["--attacks", "fgsm"], "Unknown attack 'fgsm'"),
    (["--lipschitz", "upwards"], "Unknown Lipschitz mode"),
    (["--device", "tpu:7"], "Unknown device"),
    (["--arch", "cnn002"], "contradicts"),
    (["--arch", "vgg"], "Unknown architecture"),
    (["--subset", "5000"], "larger than"),
    (["--out", "{ckpt}"], "is a file"),
])
def test_cli_bad_input(tmp_path, ckpt, capsys, extra, msg):
    extra = [e.replace("{ckpt}", str(ckpt)) for e in extra]
    out = [] if "--out" in extra else ["--out", str(tmp_path / "o")]
    argv = ["--checkpoint", str(ckpt), "--dataset", "digits", "--subset", "5", *out, *FAST, *extra]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert msg in err and err.count("\n") == 1 and not (tmp_path / "o").exists()


@pytest.mark.parametrize("argv", [["--norm", "l7"], ["--subset", "1"], ["--eps", "-1"], ["--eps", "nan"],
                                  ["--batch-size", "0"], ["--pgd-restarts", "0"], ["--lipschitz-rng", "x"]])
def test_cli_argparse_errors_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2 and "error:" in capsys.readouterr().err


@pytest.mark.parametrize("argv, msg", [
    (["--dataset", "digits"], "pass --checkpoint"),
    (["--checkpoint", "missing.pt", "--dataset", "digits"], "not found"),
    (["--model", "constructed", "--checkpoint", "x.pt", "--dataset", "digits"], "not used with --model constructed"),
])
def test_cli_bad_model_arguments(tmp_path, monkeypatch, capsys, argv, msg):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    assert msg in capsys.readouterr().err


def test_python_dash_m_entry_point(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "analysis.evaluate", "--checkpoint", str(tmp_path / "no.pt"),
                           "--dataset", "digits"], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 2
    assert "not found" in proc.stderr and "RuntimeWarning" not in proc.stderr


# -- the constructed classifier and real data ------------------------------------------------------

def test_cli_constructed_classifier(tmp_path, capsys):
    out = tmp_path / "constructed"
    assert main(["--model", "constructed", "--dataset", "digits", "--subset", "40", "--out", str(out),
                 *FAST]) == 0, capsys.readouterr().err
    rec = evaluation(out)
    res, arrays = rec.result, rec.load_arrays()
    assert rec.constructed and res.model.checkpoint is None and rec.config.data.subset == 40
    r = rec.config.model.config["r"]
    assert r > 0 and res.train.clean_acc == 1.0  # nearest class on its own training points
    bound = 10 / r  # ||f(x) - f(x')||_1 <= n_classes / r * ||x - x'||
    for split in ("train", "test"):
        assert (arrays[f"{split}_lipschitz"] <= bound * (1 + 1e-4)).all()
        assert (arrays[f"{split}_lipschitz_paper"] <= bound * (1 + 1e-4)).all()


@pytest.mark.realdata
def test_cli_on_real_mnist(tmp_path, shared_data_root, capsys):
    torch.manual_seed(0)
    model = build_model("cnn001", in_channels=1, num_classes=10, input_size=28)
    path = tmp_path / "cnn001_init.pt"
    save_checkpoint(path, model=model, config={"arch": "cnn001", "dropout": 0.0})
    out = tmp_path / "mnist"
    assert main(["--checkpoint", str(path), "--dataset", "mnist", "--data-root", str(shared_data_root),
                 "--subset", "16", "--out", str(out), *FAST]) == 0, capsys.readouterr().err
    res = evaluation(out).result
    assert res.dataset == "mnist" and res.eps == 0.1 and res.train.n == 16
    assert res.model.n_params == 1_199_882


def test_cli_uses_the_checkpoints_training_points(tmp_path, cnn, digits):
    path = tmp_path / "c.pt"
    save_checkpoint(path, model=cnn, config={"arch": "cnn001", "train_subset": 50, "subset_seed": 3})
    assert main(["--checkpoint", str(path), "--dataset", "digits", "--out", str(tmp_path / "a"), *FAST,
                 "--lipschitz", "none"]) == 0
    rec = evaluation(tmp_path / "a")
    assert rec.config.train_points == {"train_subset": 50, "subset_seed": 3}
    idx = np.sort(np.random.default_rng(3).choice(len(digits.x_train), 50, replace=False))
    np.testing.assert_array_equal(rec.load_arrays()["train_labels"], digits.y_train[idx])
    assert rec.result.test.n == len(digits.x_test)
    assert main(["--checkpoint", str(path), "--dataset", "digits", "--out", str(tmp_path / "b"), *FAST,
                 "--lipschitz", "none", "--train-points", "all", "--subset", "60"]) == 0
    assert evaluation(tmp_path / "b").result.train.n == 60


class _OneBadLogit(nn.Module):
    """A model that is finite everywhere except one logit of one point (the image whose first
    pixel is ``which``): a NaN there would take class 0 and count as correct and robust."""

    def __init__(self, inner: nn.Module, bad_first_pixel: float, value: float = float("nan")):
        super().__init__()
        self.inner, self.bad, self.value = inner, bad_first_pixel, value

    def forward(self, x):
        out = self.inner(x)
        hit = (x.flatten(1)[:, 0] == self.bad).unsqueeze(1) & (torch.arange(out.shape[1]) == 3).unsqueeze(0)
        return torch.where(hit, torch.full_like(out, self.value), out)


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_one_non_finite_logit_on_one_evaluated_point_is_refused_before_any_attack(tmp_path, cnn, digits, value):
    """Every evaluated point is checked, not the first 16: the test split's last point has one bad logit."""
    ds = digits.subset(40, seed=0)
    ds = dataclasses.replace(ds, x_test=ds.x_test.copy())
    ds.x_test[-1].reshape(-1)[0] = 0.987654321  # a first pixel no other point has
    bad = _OneBadLogit(cnn, float(np.float32(0.987654321)), value).eval()
    with pytest.raises(ValueError, match=r"^the model's outputs are not finite \(NaN or inf\) on 1 of the 40 test points"):
        evaluate(bad, ds, EvalConfig(eps=0.1, attacks=("pgd",), lipschitz=()), out=tmp_path)
    assert not list(tmp_path.rglob("record.json"))


def test_the_lipschitz_estimator_refuses_one_non_finite_logit_before_its_work(cnn, digits):
    from analysis.local_lipschitz import estimate_local_lipschitz

    x = torch.as_tensor(digits.x_test[:20], dtype=torch.float32).clone()
    x[7].view(-1)[0] = 0.987654321  # a first pixel no other point has
    bad = _OneBadLogit(cnn, float(x[7].view(-1)[0])).eval()
    with pytest.raises(ValueError, match=r"^the model's outputs are not finite \(NaN or inf\) on 1 of the 20 points"):
        estimate_local_lipschitz(bad, x, eps=0.1, norm="linf", steps=1)
