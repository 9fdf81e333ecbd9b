"""Exact radii: ``exact_eps`` reads a radius as the rational it spells (a float as the decimal of
its shortest repr), ``eps_text`` writes it back canonically, ``check_eps`` gives the float nearest
to it, and the command-line types (``eps_value`` ...) turn bad text into argparse errors."""
from __future__ import annotations

import argparse
import subprocess
import sys
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from separation.core.cli import eps_float, eps_value, positive_eps_float, positive_eps_value
from separation.core.errors import InvalidInputError, InvalidTypeError
from separation.core.threat import (ThreatModel, check_eps, check_eps_list, eps_text, exact_eps, exact_eps_list)

from helpers.paths import REPO


@pytest.mark.parametrize("value, want", [
    ("251/510", Fraction(251, 510)), ("8/255", Fraction(8, 255)), ("0.3", Fraction(3, 10)), (" 0.3 ", Fraction(3, 10)),
    ("3e-1", Fraction(3, 10)), ("1e-3", Fraction(1, 1000)), ("2", Fraction(2)), ("0.5/2", Fraction(1, 4)),
    (0.3, Fraction(3, 10)), (np.float64(0.3), Fraction(3, 10)), (np.float32(0.5), Fraction(1, 2)),
    (251 / 255, Fraction("0.984313725490196")), (0, Fraction(0)), (np.int64(2), Fraction(2)),
    (Fraction(94, 255), Fraction(94, 255)), (Decimal("0.1"), Fraction(1, 10)), (-0.0, Fraction(0)),
])
def test_exact_eps_reads_the_number_written(value, want):
    got = exact_eps(value)
    assert isinstance(got, Fraction) and got == want


def test_a_float_is_the_decimal_of_its_shortest_repr_not_the_double():
    assert exact_eps(0.3) == Fraction(3, 10) != Fraction(0.3)
    # the double fl(k/255) is below k/255 for 143 of the 255 l-inf byte distances (the issue's
    # count); the decimal it spells is below k/255 for 132, above for 118, and equal only where
    # k/255 is a terminating decimal (k = 51 m: m/5)
    assert sum(Fraction(k / 255) < Fraction(k, 255) for k in range(1, 256)) == 143
    below = [k for k in range(1, 256) if exact_eps(k / 255) < Fraction(k, 255)]
    equal = [k for k in range(1, 256) if exact_eps(k / 255) == Fraction(k, 255)]
    assert len(below) == 132 and 251 in below and 1 in below and equal == [51, 102, 153, 204, 255]


@pytest.mark.parametrize("value, kind", [
    ("abc", InvalidTypeError), ("1/0", InvalidTypeError), ("", InvalidTypeError), ("1/2/3", InvalidTypeError),
    (None, InvalidTypeError), (True, InvalidTypeError), ([0.1], InvalidTypeError), ("9" * 65, InvalidTypeError),
    ("-0.1", InvalidInputError), (-1, InvalidInputError), (Fraction(-1, 3), InvalidInputError),
    ("nan", InvalidInputError), ("inf", InvalidInputError), (float("inf"), InvalidInputError),
    (float("nan"), InvalidInputError), (Decimal("NaN"), InvalidInputError), ("1/-3", InvalidInputError),
])
def test_exact_eps_refuses_what_is_not_a_radius(value, kind):
    with pytest.raises(kind, match=r"^eps"):
        exact_eps(value)
    with pytest.raises(kind, match=r"^radius"):
        exact_eps(value, "radius")


@pytest.mark.parametrize("value, text", [
    ("0.3", "0.3"), (0.3, "0.3"), ("8/255", "8/255"), ("16/510", "8/255"), ("251/510", "251/510"),
    ("2", "2"), ("2.0", "2"), ("1.50", "1.5"), ("1e-3", "0.001"), (Fraction(1, 8), "0.125"), ("0", "0"),
    (Fraction(3, 40), "0.075"), (1.199355, "1.199355"), ("188/510", "94/255"), ("81/510", "27/170"),
])
def test_eps_text_is_canonical(value, text):
    assert eps_text(value) == text and exact_eps(text) == exact_eps(value)


@settings(max_examples=200, deadline=None)
@given(st.fractions(min_value=0, max_value=1000, max_denominator=10**6))
def test_eps_text_round_trips_any_fraction(f):
    text = eps_text(f)
    assert exact_eps(text) == f and eps_text(text) == text
    rest = f.denominator
    for p in (2, 5):
        while rest % p == 0:
            rest //= p
    assert ("/" in text) == (rest != 1)  # a fraction exactly where no decimal terminates


@settings(max_examples=200, deadline=None)
@given(st.floats(min_value=0, max_value=1e6, allow_nan=False, allow_infinity=False))
def test_a_float_round_trips_through_its_text(x):
    assert float(exact_eps(x)) == x and float(eps_text(x)) == x


def test_check_eps_gives_the_float_nearest_to_an_exact_value():
    assert check_eps("8/255") == 8 / 255 and check_eps(Fraction(1, 3)) == 1 / 3 and check_eps("0.3") == 0.3
    assert check_eps(Decimal("0.1")) == 0.1 and check_eps(0.25) == 0.25
    assert ThreatModel("linf", "8/255").eps == 8 / 255
    with pytest.raises(InvalidInputError):
        check_eps("-1/3")
    with pytest.raises(InvalidTypeError):
        check_eps("eight")


def test_lists_are_sorted_and_distinct():
    assert check_eps_list(["0.3", 0.3, "3/10", 0.1]) == [0.1, 0.3]
    assert exact_eps_list(["251/510", 0.3, "0.30", Fraction(1, 10)]) == [Fraction(1, 10), Fraction(3, 10),
                                                                         Fraction(251, 510)]
    assert exact_eps_list("8/255") == [Fraction(8, 255)] and exact_eps_list(0.5) == [Fraction(1, 2)]
    # distinct exact radii whose floats coincide stay distinct
    assert len(exact_eps_list([Fraction(1, 3), Fraction(1, 3) + Fraction(1, 10**30)])) == 2
    with pytest.raises(InvalidInputError, match="empty"):
        exact_eps_list([])


# -- the command-line types ------------------------------------------------------------------------
def test_eps_value_parses_exactly_and_refuses_with_argparse_errors():
    assert eps_value("8/255") == Fraction(8, 255) and eps_value("0.3") == Fraction(3, 10) and eps_value("0") == 0
    assert eps_float("8/255") == 8 / 255 and positive_eps_float("251/510") == 251 / 510
    assert positive_eps_value("1e-3") == Fraction(1, 1000)
    for text, message in (("-1", "must be >= 0"), ("1/-2", "must be >= 0"), ("nan", "is not a finite number"),
                          ("-inf", "is not a finite number"), ("abc", "is not a number: write a radius such as 0.3 "
                                                                          "or 8/255"),
                          ("1/0", "is not a number"), ("9" * 80, "not a number of a sensible size")):
        with pytest.raises(argparse.ArgumentTypeError, match=message):
            eps_value(text)
    for text in ("0", "0/3", "0.0"):
        with pytest.raises(argparse.ArgumentTypeError, match="must be > 0"):
            positive_eps_value(text)
        with pytest.raises(argparse.ArgumentTypeError, match="must be > 0"):
            positive_eps_float(text)


@pytest.mark.parametrize("argv, shown", [
    (["lipschitz_construct.bounds", "--dataset", "digits", "--norm", "linf", "--eps", "8/255", "1/0"],
     "argument --eps: '1/0' is not a number"),
    (["lipschitz_construct.bounds", "--dataset", "digits", "--norm", "linf", "--eps=-8/255"],
     "argument --eps: '-8/255' must be >= 0"),
    (["lipschitz_construct.verify", "--dataset", "digits", "--norm", "linf", "--eps", "0/255"],
     "argument --eps: '0/255' must be > 0"),
])
def test_a_bad_eps_on_the_command_line_is_one_error_line_and_exit_2(tmp_path, argv, shown):
    run = subprocess.run([sys.executable, "-m", *argv, "--out", str(tmp_path / "out"), "--no-progress"], cwd=REPO,
                         capture_output=True, text=True, timeout=300)
    lines = [ln for ln in run.stderr.splitlines() if ln.startswith("error:") or "error:" in ln]
    assert run.returncode == 2 and len(lines) == 1 and shown in lines[0], run.stderr
    assert "Traceback" not in run.stderr and not (tmp_path / "out").exists()
