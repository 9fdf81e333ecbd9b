"""analysis.evaluate and analysis.checkpoints: records, the CLI, checkpoint loading and its errors."""
from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn

import analysis
from analysis.checkpoints import (CheckpointError, load_checkpoint, model_from_checkpoint,
                                  save_checkpoint)
from analysis.evaluate import evaluate_model, main, run_evaluation
from analysis.models import build_model
from separation.records import load_record

REPO = Path(__file__).resolve().parents[1]
RESULT_SPLIT_KEYS = {"n", "clean_acc", "adv_acc", "adv_acc_per_attack", "lipschitz_mean", "lipschitz_paper_mean"}
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
    torch.manual_seed(0)
    model = build_model("cnn001", in_channels=1, num_classes=10, input_size=8)
    x = torch.tensor(digits.x_train, dtype=torch.float32)
    y = torch.tensor(digits.y_train)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for i in range(40):
        b = torch.arange(i * 128, (i + 1) * 128) % len(x)
        opt.zero_grad()
        nn.functional.cross_entropy(model(x[b]), y[b]).backward()
        opt.step()
    return model.eval()


@pytest.fixture
def ckpt(tmp_path, cnn):
    path = tmp_path / "cnn001_digits.pt"
    save_checkpoint(path, model=cnn, config={"arch": "cnn001", "dropout": 0.0, "in_channels": 1,
                                             "num_classes": 10, "input_size": 8},
                    epoch=3, rng={"torch": torch.get_rng_state()})
    return path


# -- the library -----------------------------------------------------------------------------------

def test_evaluate_model_record_layout(tmp_path, cnn, digits):
    out = tmp_path / "rec"
    res = evaluate_model(cnn, digits, eps=0.1, subset=40, lipschitz_steps=3, batch_size=16,
                         attacks=["pgd", {"name": "multitargeted", "steps": 3}], out=out, name="tiny",
                         arch="cnn001")
    assert set(res) >= {"model", "dataset", "norm", "eps", "attacks", "train", "test", "gaps"}
    assert set(res["model"]) == {"name", "arch", "checkpoint", "n_params"}
    assert res["model"]["n_params"] == sum(p.numel() for p in cnn.parameters())
    assert res["attacks"] == ["pgd", "multitargeted"] and res["dataset"] == "digits" and res["eps"] == 0.1
    rec, arrays = load_record(out, with_arrays=True)
    assert rec["kind"] == "evaluate" and rec["result"] == json.loads(json.dumps(res))
    assert "torchattacks" in rec["meta"]["versions"] and rec["timing"]["total"] > 0
    assert set(arrays) >= ARRAY_KEYS | {"train_lipschitz_paper", "test_lipschitz_paper"}
    for split in ("train", "test"):
        s = res[split]
        assert set(s) >= RESULT_SPLIT_KEYS and s["n"] == 40
        assert set(s["adv_acc_per_attack"]) == {"pgd", "multitargeted"}
        assert s["clean_acc"] == pytest.approx(arrays[f"{split}_correct"].mean())
        assert s["adv_acc"] == pytest.approx(arrays[f"{split}_adv_correct"].mean())
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
        assert s["lipschitz_mean"] == pytest.approx(arrays[f"{split}_lipschitz"].mean())
        assert s["lipschitz_paper_mean"] == pytest.approx(arrays[f"{split}_lipschitz_paper"].mean())
        assert (arrays[f"{split}_adv_correct"] <= arrays[f"{split}_correct"]).all()
    g = res["gaps"]
    assert g["clean"] == pytest.approx(res["train"]["clean_acc"] - res["test"]["clean_acc"])
    assert g["adv"] == pytest.approx(res["train"]["adv_acc"] - res["test"]["adv_acc"])
    assert g["lipschitz"] == pytest.approx(res["test"]["lipschitz_mean"] - res["train"]["lipschitz_mean"])


def test_reuse_and_force(tmp_path, cnn, digits):
    kw = dict(eps=0.1, subset=20, attacks=["pgd"], lipschitz=["ascent"], lipschitz_steps=2, out=tmp_path / "r")
    first = run_evaluation(cnn, digits, **kw)
    again = run_evaluation(cnn, digits, **kw)
    assert not first.reused and again.reused and again.result == json.loads(json.dumps(first.result))
    assert not run_evaluation(cnn, digits, force=True, **kw).reused
    assert not run_evaluation(cnn, digits, **{**kw, "eps": 0.2}).reused  # another config


def test_analysis_evaluate_is_callable_and_writes_the_default_folder(tmp_path, monkeypatch, cnn, digits):
    monkeypatch.chdir(tmp_path)
    ev = analysis.evaluate(cnn, digits, eps=0.1, subset=10, attacks=["pgd"], lipschitz=False, name="small")
    assert ev.folder == Path("results/evaluate/digits/small")
    assert (tmp_path / ev.folder / "record.json").is_file()
    assert ev.result["train"]["lipschitz_mean"] is None and ev.result["gaps"]["lipschitz"] is None
    import analysis.evaluate as module

    assert callable(module) and module.evaluate_model is evaluate_model


def test_train_mode_model_warns_and_is_restored(cnn, digits):
    model = build_model("cnn001", in_channels=1, num_classes=10, input_size=8, dropout=True).train()
    with pytest.warns(UserWarning, match="train mode"):
        res = evaluate_model(model, digits, eps=0.1, subset=8, attacks=[], lipschitz=["paper"], lipschitz_steps=1)
    assert all(m.training for m in model.modules())
    assert any("train mode" in w for w in res["warnings"])
    assert res["train"]["adv_acc"] is None and res["gaps"]["adv"] is None
    assert res["train"]["lipschitz_mean"] is None and res["train"]["lipschitz_paper_mean"] > 0


def test_library_input_errors(cnn, digits):
    with pytest.raises(ValueError, match="Unknown attack"):
        evaluate_model(cnn, digits, eps=0.1, attacks=["fgsm"])
    with pytest.raises(ValueError, match="Lipschitz mode"):
        evaluate_model(cnn, digits, eps=0.1, lipschitz=["upwards"])
    with pytest.raises(ValueError, match="norm"):
        evaluate_model(cnn, digits, eps=0.1, norm="l1")
    with pytest.raises(TypeError, match="Dataset"):
        evaluate_model(cnn, (digits.x_train, digits.y_train), eps=0.1)
    wrong = nn.Sequential(nn.Flatten(), nn.Linear(64, 3)).eval()
    with pytest.raises(ValueError, match="labels up to 9"):
        evaluate_model(wrong, digits, eps=0.1, subset=5, attacks=[], lipschitz=False)


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

def test_cli_evaluates_a_checkpoint(tmp_path, ckpt, capsys):
    out = tmp_path / "rec"
    argv = ["--checkpoint", str(ckpt), "--dataset", "digits", "--subset", "24", "--out", str(out), *FAST]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "cnn001" in printed and f"record: {out}" in printed
    rec, arrays = load_record(out, with_arrays=True)
    res = rec["result"]
    assert res["model"]["name"] == "cnn001_digits" and res["model"]["arch"] == "cnn001"
    assert res["model"]["checkpoint"] == str(ckpt) and res["eps"] == 0.1  # the paper's default eps
    assert res["train"]["lipschitz_mean"] > 0 and res["train"]["lipschitz_paper_mean"] > 0
    assert rec["config"]["checkpoint_sha256"] and set(arrays) >= ARRAY_KEYS
    assert main(argv) == 0 and "reused" in capsys.readouterr().out
    assert main(argv + ["--force"]) == 0 and "reused" not in capsys.readouterr().out


def test_cli_default_folder_and_bare_state_dict(tmp_path, monkeypatch, cnn, capsys):
    monkeypatch.chdir(tmp_path)
    torch.save(cnn.state_dict(), "weights.pt")
    assert main(["--checkpoint", "weights.pt", "--dataset", "digits", "--subset", "10", *FAST]) == 2
    assert "--arch" in capsys.readouterr().err
    assert main(["--checkpoint", "weights.pt", "--arch", "cnn001", "--dataset", "digits", "--subset", "10",
                 "--eps", "0.05", *FAST]) == 0
    assert (tmp_path / "results/evaluate/digits/weights_linf_eps0.05_subset10/record.json").is_file()


@pytest.mark.parametrize("kind", ["html", "truncated", "pickled"])
def test_cli_bad_checkpoint_exits_with_a_clear_message(tmp_path, cnn, capsys, kind):
    path, msg = _bad_files(tmp_path, cnn)[kind]
    code = main(["--checkpoint", str(path), "--arch", "cnn001", "--dataset", "digits", "--subset", "5",
                 "--out", str(tmp_path / "o"), *FAST])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and msg in err and "Traceback" not in err


@pytest.mark.parametrize("extra, msg", [
    (["--attacks", "fgsm"], "Unknown attack 'fgsm'"),
    (["--subset", "1"], "--subset must be at least 2"),
    (["--eps", "-1"], "--eps must be a finite number >= 0"),
    (["--lipschitz", "upwards"], "Unknown Lipschitz mode"),
    (["--batch-size", "0"], "--batch-size must be positive"),
    (["--device", "tpu:7"], "Unknown device"),
    (["--arch", "cnn002"], "contradicts"),
    (["--arch", "vgg"], "Unknown architecture"),
])
def test_cli_bad_input(tmp_path, ckpt, capsys, extra, msg):
    argv = ["--checkpoint", str(ckpt), "--dataset", "digits", "--subset", "5", "--out", str(tmp_path / "o"),
            *FAST, *extra]
    assert main(argv) == 2
    assert msg in capsys.readouterr().err


@pytest.mark.parametrize("argv, msg", [
    (["--dataset", "digits"], "pass --checkpoint"),
    (["--checkpoint", "missing.pt", "--dataset", "digits"], "not found"),
    (["--model", "constructed", "--checkpoint", "x.pt", "--dataset", "digits"], "not used with --model constructed"),
])
def test_cli_bad_model_arguments(tmp_path, monkeypatch, capsys, argv, msg):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    assert msg in capsys.readouterr().err


def test_cli_argparse_errors_exit_nonzero(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--norm", "l7"])
    assert exc.value.code == 2 and "invalid choice" in capsys.readouterr().err


def test_python_dash_m_entry_point(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "analysis.evaluate", "--checkpoint", str(tmp_path / "no.pt"),
                           "--dataset", "digits"], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 2
    assert "not found" in proc.stderr and "RuntimeWarning" not in proc.stderr


# -- the constructed classifier and real data ------------------------------------------------------

def test_cli_constructed_classifier(tmp_path, capsys):
    lc = pytest.importorskip("lipschitz_construct")
    if not hasattr(lc, "LocallyLipschitzClassifier"):
        pytest.skip("lipschitz_construct.LocallyLipschitzClassifier is not available in this checkout yet")
    out = tmp_path / "constructed"
    assert main(["--model", "constructed", "--dataset", "digits", "--subset", "40", "--out", str(out),
                 *FAST]) == 0, capsys.readouterr().err
    rec, arrays = load_record(out, with_arrays=True)
    res, cfg = rec["result"], rec["config"]
    assert res["model"]["arch"] == "constructed" and res["model"]["checkpoint"] is None
    r = cfg["model"]["config"]["r"]
    assert r > 0 and res["train"]["clean_acc"] == 1.0  # nearest class on its own training points
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
    res = load_record(out)["result"]
    assert res["dataset"] == "mnist" and res["eps"] == 0.1 and res["train"]["n"] == 16
    assert res["model"]["n_params"] == 1_199_882


def test_cli_uses_the_checkpoints_training_points(tmp_path, cnn, digits):
    path = tmp_path / "c.pt"
    save_checkpoint(path, model=cnn, config={"arch": "cnn001", "train_subset": 50, "subset_seed": 3})
    out = tmp_path / "o"
    assert main(["--checkpoint", str(path), "--dataset", "digits", "--out", str(out), *FAST,
                 "--lipschitz", "none"]) == 0
    rec, arrays = load_record(out, with_arrays=True)
    assert rec["config"]["train_points"] == {"train_subset": 50, "subset_seed": 3}
    idx = np.sort(np.random.default_rng(3).choice(len(digits.x_train), 50, replace=False))
    np.testing.assert_array_equal(arrays["train_labels"], digits.y_train[idx])
    assert rec["result"]["test"]["n"] == len(digits.x_test)
    assert main(["--checkpoint", str(path), "--dataset", "digits", "--out", str(out), *FAST,
                 "--lipschitz", "none", "--train-points", "all", "--subset", "60"]) == 0
    assert load_record(out)["result"]["train"]["n"] == 60
