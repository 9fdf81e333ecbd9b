"""Training: checkpoints, exact resume, records, CLI (tiny synthetic data, seconds each)."""
from __future__ import annotations

import dataclasses
import shutil

import numpy as np
import pytest
import torch

from analysis.train_config import TrainConfig
from analysis.checkpoints import load_checkpoint
from analysis.train import main
from analysis.training import (CHECKPOINT_FILE, CheckpointMismatch, TrainingInterrupted, augment, derive_seed,
                               prepare_data, train)
from separation.core.records import load_record
from separation.core.datasets import Dataset
from helpers.paths import SHARED_DATA

SHARED_DATA = SHARED_DATA


def synthetic(n_train=48, n_test=24, seed=0, size=8) -> Dataset:
    """Three classes of 1x8x8 uint8 images: bright blob in one of three places plus noise."""
    rng = np.random.default_rng(seed)

    def make(n):
        y = rng.integers(0, 3, n)
        x = rng.integers(0, 60, (n, 1, size, size))
        for i, c in enumerate(y):
            x[i, 0, 2 * c:2 * c + 3, 2:6] += 180
        return x.astype(np.uint8), y.astype(np.int64)

    xtr, ytr = make(n_train)
    xte, yte = make(n_test)
    return Dataset("synthetic", xtr, ytr, xte, yte, classes=["a", "b", "c"], source="test")


def tiny_config(**kw) -> TrainConfig:
    base = dict(dataset="synthetic", eps=0.1, arch="cnn001", method="at", dropout=0.5, epochs=2,
                batch_size=16, optimizer="sgd", lr=0.05, momentum=0.9, schedule="multistep",
                milestones=[1], monitor_size=8, monitor_steps=2, device="cpu", num_threads=1,
                method_params={"steps": 2}, evaluation={"attacks": ["pgd"], "lipschitz": ["ascent"],
                                                        "subset": 8})
    base.update(kw)
    return TrainConfig(**base)


def _weights(model_or_state):
    sd = model_or_state.state_dict() if hasattr(model_or_state, "state_dict") else model_or_state
    return {k: v.detach().clone() for k, v in sd.items()}


def _assert_same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


@pytest.mark.parametrize("method,stop", [("at", 4), ("trades", 3), ("gr", 1)])
def test_interrupted_run_resumes_to_identical_weights(tmp_path, method, stop):
    """Interrupted mid-epoch (4), at an epoch boundary (3) or after one step, then resumed: the
    weights, optimiser state and history equal those of an uninterrupted run, bit for bit."""
    ds = synthetic()
    params = {"steps": 2} if method in ("at", "trades") else {}
    cfg = tiny_config(method=method, method_params=params, augmentation="crop_flip", crop_padding=1)
    ref = train(cfg, run_dir=tmp_path / "ref", dataset=ds, progress=False, evaluate=False)
    with pytest.raises(TrainingInterrupted):
        train(cfg, run_dir=tmp_path / "cut", dataset=ds, progress=False, evaluate=False,
              stop_after_steps=stop)
    state = load_checkpoint(tmp_path / "cut" / CHECKPOINT_FILE)
    assert state["epoch"] * 3 + state["step"] == stop and not state["complete"]
    torch.manual_seed(999)  # resuming must not depend on the global RNG state of the new process
    res = train(cfg, run_dir=tmp_path / "cut", dataset=ds, progress=False, evaluate=False)
    _assert_same(_weights(ref.model), _weights(res.model))
    a = load_checkpoint(tmp_path / "ref" / CHECKPOINT_FILE)
    b = load_checkpoint(tmp_path / "cut" / CHECKPOINT_FILE)
    assert a["complete"] and b["complete"] and a["epoch"] == b["epoch"] == 2
    for k, v in a["optimizer"]["state"].items():
        for name, t in v.items():
            assert torch.equal(t, b["optimizer"]["state"][k][name])
    assert a["scheduler"] == b["scheduler"]
    strip = lambda h: [dataclasses.replace(e, seconds=0.0) for e in h]  # noqa: E731
    assert strip(ref.history) == strip(res.history)


def test_full_run_writes_records_and_is_reused(tmp_path):
    ds = synthetic()
    cfg = tiny_config(method="trades", method_params={"steps": 2, "beta": 3.0}, name="t3")
    run_dir, res_dir = tmp_path / "ck" / "g" / "t3", tmp_path / "res" / "g" / "t3"
    out = train(cfg, run_dir=run_dir, results_dir=res_dir, dataset=ds, progress=False)
    assert out.status == "completed"
    assert (res_dir / "record.json").read_bytes() == (run_dir / "record.json").read_bytes()
    rec = load_record(res_dir)  # the copy is a verified record too
    assert rec.KIND == "training" and rec.config == cfg and rec.config.method_params["beta"] == 3.0
    res = rec.result
    assert res.epochs_completed == 2 and len(res.history) == 2
    for entry in res.history:
        assert 0 <= entry.train_clean_acc <= 1 and 0 <= entry.train_adv_acc <= entry.train_clean_acc
    ev = res.evaluation
    for split in (ev.train, ev.test):
        assert split.clean_acc is not None and split.adv_acc is not None and split.lipschitz_mean is not None
    assert ev.gaps.clean is not None and ev.gaps.lipschitz is not None
    assert ev.train.n == 8  # evaluation subset of the trained points
    assert set(rec.timing) == {"train_seconds", "eval_seconds"}
    assert list((run_dir / "evaluation").rglob("arrays.npz"))  # full evaluation record beside the checkpoint
    # the checkpoint loads with weights_only=True and rebuilds the model on its own
    from analysis.checkpoints import model_from_checkpoint

    ckpt = torch.load(run_dir / CHECKPOINT_FILE, weights_only=True)
    assert {"model", "config", "optimizer", "scheduler", "epoch", "rng", "device"} <= set(ckpt)
    model, _ = model_from_checkpoint(run_dir / CHECKPOINT_FILE)
    _assert_same(_weights(model), _weights(out.model))
    # a second call reuses the record
    again = train(cfg, run_dir=run_dir, results_dir=res_dir, dataset=ds, progress=False)
    assert again.status == "reused" and again.record.key == rec.key
    # ... also when only the checkpoint folder has it (the committed copy is restored)
    (res_dir / "record.json").unlink()
    assert train(cfg, run_dir=run_dir, results_dir=res_dir, dataset=ds, progress=False).status == "reused"
    assert (res_dir / "record.json").is_file()


def test_changed_config_refuses_the_old_checkpoint(tmp_path):
    ds = synthetic()
    cfg = tiny_config(method="natural", method_params={}, epochs=2)
    with pytest.raises(TrainingInterrupted):
        train(cfg, run_dir=tmp_path, dataset=ds, progress=False, evaluate=False, stop_after_steps=1)
    other = tiny_config(method="natural", method_params={}, epochs=2, lr=0.01)
    with pytest.raises(CheckpointMismatch, match="lr"):
        train(other, run_dir=tmp_path, dataset=ds, progress=False, evaluate=False)
    out = train(other, run_dir=tmp_path, dataset=ds, progress=False, evaluate=False, restart=True)
    assert len(out.history) == 2
    import dataclasses

    # where the run executes does not invalidate a checkpoint; the thread count does (it changes
    # floating-point results, so resuming with another one would break the bit-exact promise)
    same = dataclasses.replace(other, device="auto")
    assert train(same, run_dir=tmp_path, dataset=ds, progress=False, evaluate=False).history == out.history
    with pytest.raises(CheckpointMismatch, match="num_threads: 1 -> 2"):
        train(dataclasses.replace(other, num_threads=2), run_dir=tmp_path, dataset=ds, progress=False, evaluate=False)


def test_loss_reduction_sum_with_scaled_lr_matches_mean(tmp_path):
    """The official sum-reduced loss with lr / batch equals our mean-reduced default (SGD)."""
    ds = synthetic(n_train=32)
    finals = []
    for red, lr in (("mean", 0.05), ("sum", 0.05 / 16)):
        cfg = tiny_config(method="natural", method_params={}, dropout=0.0, epochs=1,
                          loss_reduction=red, lr=lr, monitor_size=0)
        out = train(cfg, run_dir=tmp_path / red, dataset=ds, progress=False, evaluate=False)
        finals.append(_weights(out.model))
    for k in finals[0]:
        assert torch.allclose(finals[0][k], finals[1][k], atol=1e-6), k


def test_augment_is_seeded_and_shape_preserving():
    x = torch.rand(6, 3, 8, 8)
    a = augment(x, kind="crop_flip", padding=2, generator=torch.Generator().manual_seed(1))
    b = augment(x, kind="crop_flip", padding=2, generator=torch.Generator().manual_seed(1))
    assert a.shape == x.shape and torch.equal(a, b) and not torch.equal(a, x)
    assert torch.equal(augment(x, kind="none", padding=2, generator=torch.Generator()), x)
    flipped = augment(x, kind="flip", padding=0, generator=torch.Generator().manual_seed(3))
    for i in range(6):
        assert torch.equal(flipped[i], x[i]) or torch.equal(flipped[i], x[i].flip(-1))
    assert derive_seed(1, 2) == derive_seed(1, 2) != derive_seed(2, 1)


def test_train_subset_is_fixed_and_used_for_evaluation():
    ds = synthetic(n_train=40)
    cfg = tiny_config(train_subset=10, subset_seed=3)
    d1, d2 = prepare_data(cfg, dataset=ds), prepare_data(cfg, dataset=ds)
    assert len(d1.x_train) == 10 and np.array_equal(d1.train_indices, d2.train_indices)
    assert np.array_equal(d1.dataset.x_train, ds.x_train[d1.train_indices])
    assert len(d1.dataset.x_test) == len(ds.x_test) and d1.num_classes == 3


def test_cli_stop_and_resume(tmp_path, monkeypatch):
    """``python -m analysis.train`` on sklearn's digits: stop after 2 steps (exit 3), re-run resumes."""
    pytest.importorskip("sklearn")
    cfg = tmp_path / "run.yaml"
    cfg.write_text("dataset: digits\nmethod: natural\ntrain_subset: 64\nepochs: 1\nbatch_size: 16\n"
                   "arch: cnn001\ndevice: cpu\nnum_threads: 1\nmonitor_size: 8\nmonitor_steps: 1\n"
                   "evaluation: {subset: 8, attacks: [pgd], lipschitz: [ascent]}\n")
    args = ["--config", str(cfg), "--checkpoint-root", str(tmp_path / "ck"), "--results-root",
            str(tmp_path / "res"), "--group", "g", "--no-progress"]
    assert main(args + ["--stop-after-steps", "2"]) == 3
    [run] = (tmp_path / "ck" / "g").iterdir()  # <name>-<key of the configuration>
    assert run.name.startswith("natural-") and len(run.name) == len("natural-") + 8
    state = load_checkpoint(run / CHECKPOINT_FILE)
    assert (state["epoch"], state["step"]) == (0, 2)
    assert main(args) == 0
    rec = load_record(tmp_path / "res" / "g" / run.name)
    assert rec.result.epochs_completed == 1 and rec.config.train_subset == 64
    # another configuration under the same name gets folders of its own: nothing is overwritten
    assert main(args + ["--lr", "0.5", "--stop-after-steps", "1"]) == 3
    assert len(list((tmp_path / "ck" / "g").iterdir())) == 2
    assert load_record(tmp_path / "res" / "g" / run.name).digest == rec.digest


@pytest.mark.realdata
def test_mnist_subset_one_epoch(tmp_path):
    if not (SHARED_DATA / "MNIST" / "raw").is_dir():
        pytest.skip("../shared/data/MNIST not available")
    root = tmp_path / "data"
    shutil.copytree(SHARED_DATA / "MNIST", root / "MNIST")
    cfg = TrainConfig(dataset="mnist", method="natural", train_subset=128, epochs=1, batch_size=64,
                      optimizer="adam", lr=1e-3, monitor_size=16, monitor_steps=1, device="cpu",
                      channels_last=True)
    out = train(cfg, run_dir=tmp_path / "run", data_root=root, progress=False, evaluate=False)
    assert out.history[0].epoch == 1 and out.history[0].loss > 0
    assert load_checkpoint(tmp_path / "run" / CHECKPOINT_FILE)["config"]["input_size"] == 28


@pytest.mark.gpu
def test_cuda_interrupted_run_resumes_to_identical_weights(tmp_path):
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    ds = synthetic()
    cfg = tiny_config(method="llr", method_params={}, device="cuda", deterministic=True)
    ref = train(cfg, run_dir=tmp_path / "ref", dataset=ds, progress=False, evaluate=False)
    with pytest.raises(TrainingInterrupted):
        train(cfg, run_dir=tmp_path / "cut", dataset=ds, progress=False, evaluate=False, stop_after_steps=4)
    res = train(cfg, run_dir=tmp_path / "cut", dataset=ds, progress=False, evaluate=False)
    _assert_same(_weights(ref.model), _weights(res.model))
    assert next(res.model.parameters()).is_cuda
