"""TrainConfig: defaults, validation, files, profiles, overrides, grids."""
from __future__ import annotations

import json

import pytest
import yaml

from analysis.methods import METHODS
from analysis.train_config import TrainConfig, build_config, default_run_name, load_config, profile_defaults
from separation.core.config_files import parse_override
from separation.core.errors import ConfigError
from analysis.training.grid_file import expand_grid, load_grid
from helpers.paths import REPO

CONFIGS = REPO / "configs"


def test_defaults_are_complete_and_explicit():
    cfg = TrainConfig(method="trades")
    assert cfg.eps == 0.1  # MNIST's radius
    assert cfg.method_params == METHODS["trades"].defaults
    assert cfg.name == "trades-b6"
    assert TrainConfig(dataset="cifar10").eps == 0.031
    assert TrainConfig(method="rst", method_params={"lambda": 0.5}, dropout=0.5).name == "rst-l0.5-drop0.5"


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_file_round_trip(tmp_path, suffix):
    cfg = TrainConfig(method="llr", method_params={"lambda": 3.0, "variant": "official"}, dropout=0.5,
                      milestones=[2, 4], train_subset=100, evaluation={"subset": 50, "attacks": ["pgd"]})
    path = cfg.save(tmp_path / f"c{suffix}")
    again = load_config(path)
    assert again == cfg
    assert TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


def test_overrides_and_merge_order(tmp_path):
    f = tmp_path / "run.yaml"
    f.write_text(yaml.safe_dump({"profile": "cpu", "dataset": "mnist", "method": "trades", "epochs": 5,
                                 "method_params": {"beta": 3}}))
    cfg = load_config(f, overrides=["lr=0.01", "method_params.steps=5", "evaluation.subset=100",
                                    "milestones=[1, 2]", "train_subset=null"])
    assert cfg.profile == "cpu"
    assert cfg.epochs == 5                      # file beats profile
    assert cfg.lr == 0.01                       # CLI beats file
    assert cfg.method_params["beta"] == 3.0 and cfg.method_params["steps"] == 5
    assert cfg.evaluation["subset"] == 100 and cfg.evaluation["attacks"] == ["pgd"]  # nested merge
    assert cfg.milestones == [1, 2] and cfg.train_subset is None
    assert cfg.optimizer == "adam"              # from the profile
    assert parse_override("a.b.c=[1, 2]") == {"a": {"b": {"c": [1, 2]}}}
    assert parse_override("name=x=y") == {"name": "x=y"}
    with pytest.raises(ConfigError, match="field=value"):
        parse_override("lr")


def test_profiles_paper_budgets():
    mnist = build_config({"profile": "paper", "dataset": "mnist", "method": "natural"})
    assert (mnist.epochs, mnist.batch_size, mnist.momentum, mnist.milestones) == (160, 64, 0.9,
                                                                                   [40, 80, 120, 140])
    assert mnist.lr == pytest.approx(1e-4 * 64) and mnist.loss_reduction == "mean"
    cifar_nat = build_config({"profile": "paper", "dataset": "cifar10", "method": "trades"})
    cifar_at = build_config({"profile": "paper", "dataset": "cifar10", "method": "at"})
    assert cifar_nat.arch == "wrn-40-10" and cifar_nat.epochs == 120
    assert cifar_nat.augmentation == "crop_flip" and cifar_nat.momentum == 0.0
    assert cifar_nat.lr == pytest.approx(1e-2 * 64) and cifar_at.lr == pytest.approx(1e-3 * 64)
    assert build_config({"profile": "paper", "dataset": "svhn"}).epochs == 60
    rin = build_config({"profile": "paper", "dataset": "restricted-imagenet"})
    assert (rin.arch, rin.optimizer, rin.epochs, rin.batch_size) == ("resnet50", "adam", 70, 128)
    cpu = profile_defaults("cpu", "mnist", "natural")
    assert cpu["train_subset"] and cpu["epochs"] <= 3


@pytest.mark.parametrize("data,match", [
    ({"methd": "at"}, "Unknown config field"),
    ({"method": "madry"}, "method"),
    ({"method": "at", "method_params": {"beta": 1}}, "not understood by method 'at'"),
    ({"method": "gr", "method_params": {"direction": "up"}}, "direction"),
    ({"norm": "l1"}, "norm"),
    ({"epochs": 0}, "epochs"),
    ({"dropout": 1.0}, "dropout"),
    ({"milestones": [3, 2]}, "milestones"),
    ({"profile": "nope"}, "profile"),
    ({"profile": "cpu", "dataset": "svhn"}, "no settings for dataset"),
    ({"dataset": "mystery"}, "eps"),
])
def test_actionable_errors(data, match):
    with pytest.raises(ConfigError, match=match):
        build_config(data)


def test_run_names():
    assert default_run_name("natural", {}, 0.0) == "natural"
    assert default_run_name("trades", {"beta": 1.0}, 0.5) == "trades-b1-drop0.5"


def test_shipped_grids_expand():
    grids = sorted(CONFIGS.glob("*.yaml"))
    assert {g.stem for g in grids} >= {"mnist_cpu", "mnist_paper", "cifar10_paper", "svhn_paper",
                                       "restricted_imagenet_paper"}
    for path in grids:
        grid = load_grid(path)
        assert grid.configs and len(set(grid.names())) == len(grid.configs)
    mnist = load_grid(CONFIGS / "mnist_cpu.yaml")
    assert len(mnist.configs) == 20
    methods = sorted({(c.method, c.method_params.get("beta"), c.method_params.get("lambda"))
                      for c in mnist.configs if c.method in ("rst", "trades")})
    assert methods == [("rst", None, 0.5), ("rst", None, 1.0), ("rst", None, 2.0),
                       ("trades", 1.0, None), ("trades", 3.0, None), ("trades", 6.0, None)]
    assert sorted({c.dropout for c in mnist.configs}) == [0.0, 0.5]
    assert all(c.profile == "cpu" for c in mnist.configs)
    for path in sorted((CONFIGS / "examples").glob("*.yaml")):
        load_config(path)


def test_grid_names_and_errors():
    spec = {"grid": "g", "base": {"dataset": "mnist"}, "vary": {"seed": [0, 1]},
            "runs": [{"method": "natural"}, {"method": "at", "name": "madry"}]}
    names = expand_grid(spec).names()
    assert names == ["natural-seed0", "natural-seed1", "madry-seed0", "madry-seed1"]
    with pytest.raises(ConfigError, match="repeat"):
        expand_grid({"grid": "g", "runs": [{"method": "natural"}, {"method": "natural"}]})
    with pytest.raises(ConfigError, match="unknown key"):
        expand_grid({"grid": "g", "runs": [{"method": "natural"}], "extra": 1})
    with pytest.raises(ConfigError, match=r"runs\[0\]"):
        expand_grid({"grid": "g", "runs": [{"method": "natural", "lr": -1}]})
    cfgs = expand_grid(spec, overrides=["epochs=1"]).configs
    assert all(c.epochs == 1 for c in cfgs)


def test_train_cli_prints_config(capsys):
    from analysis.train import main

    assert main(["--config", str(CONFIGS / "examples" / "mnist_trades_cpu.yaml"), "--param", "beta=3",
                 "--dropout", "0.5", "--epochs", "1", "--print-config"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["method_params"]["beta"] == 3.0 and printed["dropout"] == 0.5
    assert printed["epochs"] == 1 and printed["name"] == "trades-b3-drop0.5"
    assert main(["--method", "madry", "--print-config"]) == 2
