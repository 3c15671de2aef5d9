"""Tests for course_lib.validation: one policy (wrong type -> TypeError, wrong value -> ValueError)."""

import math

import numpy as np
import pytest

from course_lib import validation as V


# ---------------------------------------------------------------------------------------
# integers
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("value", [1, 784, np.int64(784), np.int32(3), np.uint8(7)])
def test_positive_int_accepts_python_and_numpy_integers(value):
    out = V.positive_int(value, "n")
    assert out == int(value) and type(out) is int


@pytest.mark.parametrize("value", [True, False, np.bool_(True), 2.0, 2.5, np.float64(3.0), "3", None, [3]])
def test_positive_int_refuses_non_integers_with_type_error(value):
    with pytest.raises(
        TypeError,
        match=r"n_samples must be a positive integer, got .*; pass a whole number, "
        r"e\.g\. n_samples=1\.",
    ):
        V.positive_int(value, "n_samples")


@pytest.mark.parametrize("value", [0, -1, np.int64(-5)])
def test_positive_int_refuses_zero_and_negatives_with_value_error(value):
    with pytest.raises(
        ValueError, match=r"^n_samples must be a positive integer, got -?\d+; use n_samples >= 1\.$"
    ):
        V.positive_int(value, "n_samples")


def test_meaning_and_hint_appear_in_the_message():
    with pytest.raises(
        ValueError,
        match=r"^n_samples \(Monte Carlo samples\) must be a positive integer, got 0; "
        r"ask for at least one sample\.$",
    ):
        V.positive_int(0, "n_samples", meaning="Monte Carlo samples", hint="ask for at least one sample")
    with pytest.raises(
        TypeError, match=r"^k \(the index\) must be a non-negative integer, got 1\.5 \(float\)"
    ):
        V.nonnegative_int(1.5, "k", meaning="the index")


def test_nonnegative_int_accepts_zero_refuses_negatives():
    assert V.nonnegative_int(0, "seed") == 0
    assert V.nonnegative_int(np.int64(12), "seed") == 12
    with pytest.raises(ValueError, match=r"seed must be a non-negative integer, got -1; use seed >= 0"):
        V.nonnegative_int(-1, "seed")
    with pytest.raises(TypeError, match="seed must be a non-negative integer"):
        V.nonnegative_int(False, "seed")


def test_integer_with_a_minimum_and_without():
    assert V.integer(-7, "offset") == -7
    assert V.integer(np.int16(3), "n_grid", minimum=3) == 3
    with pytest.raises(ValueError, match=r"^n_grid must be an integer >= 3, got 2; use n_grid >= 3\.$"):
        V.integer(2, "n_grid", minimum=3)
    with pytest.raises(
        TypeError,
        match=r"^offset must be an integer, got 'a' \(str\); pass a whole number, "
        r"e\.g\. offset=1\.$",
    ):
        V.integer("a", "offset")
    assert V.integer(np.int64(50), "n_points", minimum=1, maximum=50) == 50
    with pytest.raises(
        ValueError,
        match=r"^n_points must be an integer from 1 to 50, got 51; "
        r"use a value from 1 to 50\.$",
    ):
        V.integer(51, "n_points", minimum=1, maximum=50)
    with pytest.raises(ValueError, match=r"^k must be an integer <= 3, got 4; use k <= 3\.$"):
        V.integer(4, "k", maximum=3)
    with pytest.raises(TypeError, match=r"n_points must be an integer from 1 to 50, got 2\.0 \(float\)"):
        V.integer(2.0, "n_points", minimum=1, maximum=50)


# ---------------------------------------------------------------------------------------
# real numbers
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("value", [0.5, 2, np.float32(0.25), np.float64(1e-3), np.int64(4)])
def test_positive_float_accepts_python_and_numpy_numbers(value):
    out = V.positive_float(value, "beta")
    assert out == pytest.approx(float(value)) and type(out) is float


@pytest.mark.parametrize("value", [True, "1.0", None, [1.0], np.array([1.0]), 1 + 0j])
def test_positive_float_refuses_non_numbers_with_type_error(value):
    with pytest.raises(
        TypeError,
        match=r"^beta must be a positive finite number, got .*; pass a number such as "
        r"beta=1\.0\.$",
    ):
        V.positive_float(value, "beta")


@pytest.mark.parametrize("value", [0, 0.0, -1.0, math.nan, math.inf, -math.inf, np.float64("nan")])
def test_positive_float_refuses_zero_negative_and_non_finite_with_value_error(value):
    with pytest.raises(
        ValueError,
        match=r"^beta \(noise precision\) must be a positive finite number, got .*; "
        r"pass e\.g\. beta=1\.0\.$",
    ):
        V.positive_float(value, "beta", meaning="noise precision")


def test_nonnegative_float_and_finite_float_bounds():
    assert V.nonnegative_float(0, "weight_decay") == 0.0
    with pytest.raises(ValueError, match=r"weight_decay must be a non-negative finite number, got -0\.1"):
        V.nonnegative_float(-0.1, "weight_decay")
    assert V.finite_float(-3, "threshold") == -3.0
    with pytest.raises(
        ValueError, match=r"^threshold must be a finite number, got inf; pass a finite value\.$"
    ):
        V.finite_float(math.inf, "threshold")
    assert V.finite_float(2.0, "x", low=1, high=2) == 2.0
    with pytest.raises(ValueError, match=r"x must be a finite number >= 1 and < 2, got 2\.0; use x < 2\.$"):
        V.finite_float(2.0, "x", low=1, high=2, high_open=True, hint="use x < 2")


# ---------------------------------------------------------------------------------------
# probabilities, flags, choices
# ---------------------------------------------------------------------------------------
def test_probability_closed_and_open_ends():
    assert V.probability(0, "p") == 0.0 and V.probability(1, "p") == 1.0
    assert V.probability(np.float32(0.5), "p") == 0.5
    with pytest.raises(
        ValueError, match=r"^p must be a probability in \[0, 1\), got 1\.0; pass e\.g\. p=0\.5\.$"
    ):
        V.probability(1.0, "p", high_open=True)
    with pytest.raises(ValueError, match=r"level must be a probability in \(0, 1\), got 0"):
        V.probability(0, "level", low_open=True, high_open=True)
    with pytest.raises(ValueError, match=r"p must be a probability in \[0, 1\], got 1\.5"):
        V.probability(1.5, "p")
    with pytest.raises(TypeError, match=r"p must be a probability in \[0, 1\], got '0\.5' \(str\)"):
        V.probability("0.5", "p")


def test_boolean_accepts_only_flags():
    assert V.boolean(True, "tied") is True
    assert V.boolean(np.bool_(False), "tied") is False
    for bad in (0, 1, "True", None, 1.0):
        with pytest.raises(
            TypeError, match=r"^tied must be True or False, got .*; pass tied=True or tied=False\.$"
        ):
            V.boolean(bad, "tied")


def test_one_of_returns_the_choice_or_lists_the_choices():
    assert V.one_of("cpu", "device", ("cpu", "cuda")) == "cpu"
    with pytest.raises(
        ValueError, match=r"^device must be one of 'cpu', 'cuda', got 'tpu'; pick one of those\.$"
    ):
        V.one_of("tpu", "device", ("cpu", "cuda"))
    with pytest.raises(ValueError, match=r"kind \(the reparameterization\) must be one of 'a', got \['a'\]"):
        V.one_of(["a"], "kind", {"a"}, meaning="the reparameterization")
