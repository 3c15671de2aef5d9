"""Tests for course_lib.checks.dropout: A5, dropout as noise and its two predictions.

The solution passes and each typical mistake is named.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from check_helpers import expect_mistake

from course_lib import checks


def inverted_dropout(x, p, u):
    return x * (u >= p) / (1 - p)


def gaussian_dropout(x, p, eps):
    return x * (1 + (p / (1 - p)) ** 0.5 * eps)


def mc_average(logits):
    return torch.softmax(logits, dim=-1).mean(0)


def test_a5_solutions_pass(capsys):
    checks.check_inverted_dropout(inverted_dropout)
    checks.check_gaussian_dropout(gaussian_dropout)
    checks.check_mc_average(mc_average)
    assert capsys.readouterr().out.count("OK - ") == 3


def test_a5_solutions_equal_the_library():
    from course_lib import dropout

    assert dropout.dropout_alpha(0.7) == pytest.approx(0.7 / 0.3)
    x, u = torch.randn(1000, dtype=torch.float64), torch.rand(1000, dtype=torch.float64)
    kept = inverted_dropout(x, 0.3, u) != 0
    assert torch.allclose(inverted_dropout(x, 0.3, u)[kept], x[kept] / 0.7)


@pytest.mark.parametrize(
    "fn, mistake, match",
    [
        (lambda x, p, u: x * (u >= p), "no_rescale", r"divide them by 1 - p = 0.8"),
        (lambda x, p, u: x * (u < p) / (1 - p), "keep_is_drop", "keep a unit when u >= p"),
        (lambda x, p, u: x * (u < p) / p, "retain_convention", "retain probability"),
        (lambda x, p, u: x * (u >= p) / p, "divide_by_p", "divide by the keep probability"),
        (lambda x, p, u: x * (u >= p) * (1 - p), "times_keep_prob", "test-time weight scaling"),
    ],
)
def test_inverted_dropout_mistakes(fn, mistake, match):
    expect_mistake(checks.check_inverted_dropout, fn, mistake, match)


@pytest.mark.parametrize(
    "fn, mistake, match",
    [
        (lambda x, p, e: x * (1 + p / (1 - p) * e), "alpha_as_std", "scale eps by sqrt"),
        (lambda x, p, e: x * (1 + ((1 - p) / p) ** 0.5 * e), "inverse_alpha", r"alpha = \(1 - p\)/p = 4"),
        (lambda x, p, e: x * (1 + (p * (1 - p)) ** 0.5 * e), "mask_variance", "before rescaling"),
        (lambda x, p, e: x * (1 + p**0.5 * e), "alpha_is_p", "you used alpha = p"),
        (lambda x, p, e: x * (p / (1 - p)) ** 0.5 * e, "zero_mean", "mean 1"),
        (lambda x, p, e: x + (p / (1 - p)) ** 0.5 * e, "additive", "dropout multiplies"),
    ],
)
def test_gaussian_dropout_mistakes(fn, mistake, match):
    expect_mistake(checks.check_gaussian_dropout, fn, mistake, match)


@pytest.mark.parametrize(
    "fn, mistake, match",
    [
        (lambda lo: torch.softmax(lo.mean(0), -1), "mean_logits", "averaged the logits"),
        (lambda lo: torch.log_softmax(lo, -1).mean(0), "mean_log_probs", "averaged log-probabilities"),
        (lambda lo: torch.softmax(lo[0], -1), "one_pass", "one pass only"),
        (lambda lo: F.one_hot(lo.argmax(-1), lo.shape[-1]).double().mean(0), "vote", "one-hot votes"),
        (lambda lo: torch.softmax(lo, 0).mean(0), "softmax_over_passes", r"over the classes \(dim=-1\)"),
        (lambda lo: torch.softmax(lo, -1).sum(0), "sum_not_mean", "summed the 5 passes"),
        (lambda lo: torch.softmax(lo, -1).mean(1), "mean_over_inputs", "averaged over the inputs"),
    ],
)
def test_mc_average_mistakes(fn, mistake, match):
    expect_mistake(checks.check_mc_average, fn, mistake, match)


@pytest.mark.parametrize(
    "check, fn",
    [
        (checks.check_inverted_dropout, inverted_dropout),
        (checks.check_gaussian_dropout, gaussian_dropout),
        (checks.check_mc_average, mc_average),
    ],
)
def test_hidden_inputs_pass_the_solution_silently(check, fn, capsys):
    check(fn, hidden=2024)
    assert capsys.readouterr().out == ""
