"""Config input: scientific notation is a number, booleans are not, bad values are one line naming
the field, and YAML bombs are refused fast."""
from __future__ import annotations

import re
import time

import pytest

from analysis.train import main as train_main
from analysis.train_config import ConfigError, load_config, parse_override
from separation.core.config_files import load_yaml


@pytest.mark.parametrize("text, value", [("1e-4", 1e-4), ("5E-4", 5e-4), ("-2e3", -2000.0), ("1.5e-3", 1.5e-3),
                                         ("3", 3), ("0.1", 0.1), ("true", True), ("abc", "abc"), ("1e", "1e")])
def test_scalars_read_as_meant(text, value):
    got = load_yaml(f"v: {text}")["v"]
    assert got == value and type(got) is type(value)


def write(tmp_path, text):
    p = tmp_path / "c.yaml"
    p.write_text(text)
    return p


def test_scientific_notation_in_files_and_overrides(tmp_path):
    cfg = load_config(write(tmp_path, "lr: 1e-4\nweight_decay: 5e-4\noptimizer: adam\n"), overrides=["gamma=5e-1"])
    assert (cfg.lr, cfg.weight_decay, cfg.gamma) == (1e-4, 5e-4, 0.5)
    assert parse_override("lr=1e-4") == {"lr": 1e-4}


@pytest.mark.parametrize("line, message", [
    ("dropout: abc", "dropout: expected a number, got 'abc'"),
    ("momentum: x", "momentum: expected a number, got 'x'"),
    ("milestones: abc", "milestones: expected a list of integers, got 'abc'"),
    ("milestones: [1, two]", "milestones[1]: expected an integer, got 'two'"),
    ("device: 3", "device: expected a string, got 3"),
    ("num_threads: two", "num_threads: expected an integer or null, got 'two'"),
    ("epochs: true", "epochs: expected an integer, got True"),
    ("lr: true", "lr: expected a number, got True"),
    ("eps: .inf", "eps: must be finite, got inf"),
    ("channels_last: 1", "channels_last: expected true/false, got 1"),
    ("evaluation: [1]", "evaluation: expected a mapping"),
])
def test_ill_typed_values_name_the_field(tmp_path, line, message):
    with pytest.raises(ConfigError, match="^" + message.replace("[", r"\[").replace("]", r"\]")):
        load_config(write(tmp_path, line + "\n"))


def test_integers_are_accepted_for_numbers(tmp_path):
    cfg = load_config(write(tmp_path, "lr: 1\ndropout: 0\n"))
    assert cfg.lr == 1.0 and isinstance(cfg.lr, float) and isinstance(cfg.dropout, float)


BOMB = """a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x"]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
h: [*g, *g, *g, *g, *g, *g, *g, *g, *g]
"""


def test_alias_bomb_is_refused_at_once(tmp_path):
    t0 = time.perf_counter()
    with pytest.raises(ConfigError, match="aliases"):
        load_config(write(tmp_path, BOMB))
    assert time.perf_counter() - t0 < 2


@pytest.mark.parametrize("text", ["[" * 100000 + "]" * 100000, "a:\n" + "".join("  " * i + "b:\n" for i in range(1, 60))])
def test_deep_nesting_is_refused(tmp_path, text):
    with pytest.raises(ConfigError, match="nested"):
        load_config(write(tmp_path, text))
    with pytest.raises(ConfigError, match="nested"):
        load_yaml(text)


def test_oversized_input_is_refused():
    with pytest.raises(ConfigError, match="limited to"):
        load_yaml("a: " + "x" * (2 << 20))


@pytest.mark.parametrize("argv, message", [
    (["--lr", "abc"], "lr: expected a number, got 'abc'"),
    (["--epochs", "true"], "epochs: expected an integer, got True"),
    (["--dropout", "nan"], "dropout: expected a number, got 'nan'"),
    (["--eps", ".inf"], "eps: must be finite, got inf"),
])
def test_train_cli_one_line_exit_2(tmp_path, capsys, argv, message):
    rc = train_main(argv + ["--checkpoint-root", str(tmp_path / "c"), "--results-root", str(tmp_path / "r")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.startswith(f"error: {message}") and "\n" not in err
    assert not (tmp_path / "c").exists() and not (tmp_path / "r").exists()


def test_train_cli_reads_scientific_notation_and_string_fields(capsys):
    assert train_main(["--lr", "1e-4", "--name", "123", "--print-config"]) == 0
    out = capsys.readouterr().out
    assert "lr: 0.0001" in out and "name: '123'" in out


@pytest.mark.parametrize("suffix, text", [
    (".yaml", "dataset: digits\nepochs: " + "9" * 5000 + "\n"),
    (".json", '{"dataset": "digits", "epochs": ' + "9" * 5000 + "}"),
], ids=["yaml", "json"])
def test_a_number_of_thousands_of_digits_is_a_config_error(tmp_path, suffix, text):
    path = tmp_path / f"c{suffix}"
    path.write_text(text)
    from separation.core.config_files import load_mapping

    with pytest.raises(ConfigError, match=re.escape(str(path))):
        load_mapping(path)


def test_an_integer_beyond_64_bits_is_refused_naming_its_field():
    from analysis.train_config import TrainConfig

    with pytest.raises(ConfigError, match=r"^epochs: 100000000000\.\.\. is too large \(at most 9223372036854775807\)$"):
        TrainConfig(dataset="digits", epochs=10**20)
    assert TrainConfig(dataset="digits", seed=2**63 - 1).seed == 2**63 - 1  # exactly at the bound


def test_the_train_command_refuses_an_oversized_number_in_one_line(tmp_path, capsys):
    from analysis.train import main

    path = tmp_path / "c.yaml"
    path.write_text("dataset: digits\nepochs: " + "9" * 5000 + "\n")
    assert main(["--config", str(path), "--print-config"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {path}: ") and "\n" not in err
