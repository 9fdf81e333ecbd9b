"""Config input: scientific notation is a number, booleans are not, bad values are one line naming
the field, and YAML bombs are refused fast."""
from __future__ import annotations

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
