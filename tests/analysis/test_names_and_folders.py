"""Names from users are single safe path components: nothing is written or deleted outside the
chosen roots, and two training configurations never share a folder."""
from __future__ import annotations

import pytest

from analysis.evaluate import main as evaluate_main
from analysis.grid import main as grid_main
from analysis.train import main as train_main
from analysis.train_config import TrainConfig
from separation.core.errors import ConfigError, UsageError
from separation.core.paths import below, safe_name

BAD_NAMES = ["/tmp/escape", "../../escape", "..", ".", "a/b", "", "-flag", "x" * 121, "tab\tname"]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_safe_name_refuses_what_is_not_one_folder_name(name):
    with pytest.raises(UsageError, match="name"):
        safe_name(name)


@pytest.mark.parametrize("name", ["natural", "trades-b6", "rst-l0.5-drop0.5", "run_1", "a.b+c=d,e@f"])
def test_safe_name_keeps_ordinary_names(name):
    assert safe_name(name) == name


def test_below_never_leaves_its_root(tmp_path):
    assert below(tmp_path, "a/b") == tmp_path / "a" / "b"
    for rel in ("../x", "/abs", "a/../../x"):
        with pytest.raises(UsageError, match="not a path below"):
            below(tmp_path, rel)


@pytest.mark.parametrize("name", ["/tmp/escape", "../../escape", ".."])
def test_a_training_run_name_that_is_a_path_is_refused(name):
    with pytest.raises(ConfigError, match=r"the run's name is its folder name"):
        TrainConfig(dataset="digits", name=name)


@pytest.mark.parametrize("name", ["/tmp/escape-train", "../../escape-train"])
def test_train_refuses_a_path_as_run_name_before_any_work(tmp_path, capsys, name):
    argv = ["--dataset", "digits", "--name", name, "--checkpoint-root", str(tmp_path / "ck"),
            "--results-root", str(tmp_path / "res"), "--no-progress"]
    assert train_main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("error: name ")
    assert not (tmp_path / "ck").exists() and not (tmp_path / "res").exists()
    assert not (tmp_path.parent / "escape-train").exists()


@pytest.mark.parametrize("grid_name, run_name", [("..", None), ("../../g", None), ("ok", "../../x"), ("ok", "/tmp/x")])
def test_a_grid_or_run_named_as_a_path_is_refused(tmp_path, capsys, grid_name, run_name):
    run = {"method": "natural"} if run_name is None else {"method": "natural", "name": run_name}
    path = tmp_path / "g.yaml"
    path.write_text(f"grid: {grid_name!r}\nbase: {{dataset: digits, epochs: 1}}\nruns: [{run}]\n".replace("'", '"'))
    argv = [str(path), "--checkpoint-root", str(tmp_path / "ck"), "--results-root", str(tmp_path / "res")]
    assert grid_main(argv) == 2
    assert capsys.readouterr().err.startswith("error: ")
    assert not (tmp_path / "ck").exists() and not (tmp_path / "res").exists()


@pytest.mark.parametrize("name", ["../../../escape-eval", "/tmp/escape-eval", "a/b"])
def test_evaluate_refuses_a_path_as_model_name(tmp_path, capsys, name):
    argv = ["--model", "constructed", "--dataset", "digits", "--subset", "20", "--name", name, "--out",
            str(tmp_path / "out"), "--attacks", "none", "--lipschitz", "none"]
    assert evaluate_main(argv) == 2
    assert capsys.readouterr().err.strip().startswith("error: --name ")
    assert not (tmp_path / "out").exists() and not (tmp_path.parent.parent / "escape-eval").exists()


def test_two_configurations_of_one_name_get_folders_of_their_own(tmp_path):
    """The folder is <name>-<key>: a second run with another lr (the same name) writes beside the
    first, and --restart of one deletes only its own files."""
    from analysis.training.train_job import run_folders

    a = TrainConfig(dataset="digits", name="natural", lr=0.01)
    b = TrainConfig(dataset="digits", name="natural", lr=0.02)
    (ca, ra), (cb, rb) = (run_folders(c, "g", tmp_path / "ck", tmp_path / "res") for c in (a, b))
    assert ca != cb and ra != rb and ca.parent == cb.parent == tmp_path / "ck" / "g"
    assert ca.name.startswith("natural-") and cb.name.startswith("natural-")
    # runtime-only fields (the device) do not change the folder
    assert run_folders(TrainConfig(dataset="digits", name="natural", lr=0.01, device="cpu"), "g", tmp_path / "ck",
                       tmp_path / "res")[0] == ca
    with pytest.raises(UsageError, match="group"):
        run_folders(a, "../up", tmp_path / "ck", tmp_path / "res")
