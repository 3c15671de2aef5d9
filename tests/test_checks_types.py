"""The checks name a wrong type in their own task (issue 25): a NumPy array, a Python float or a
tensor cut from the autograd graph, where the assignment needs a tensor that training can
differentiate, fails the function's own check with a message saying so, never a later cell."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from check_helpers import expect_mistake

from course_lib import checks, kl, scores
from course_lib.checks.core import _require_tensor


def _lrt(x, theta, log_sigma2, bias, eps):
    return F.linear(x, theta, bias) + torch.sqrt(F.linear(x * x, log_sigma2.exp()) + 1e-8) * eps


def _eval(x, theta, log_sigma2, bias, threshold):
    la = torch.clamp(log_sigma2 - torch.log(theta**2 + 1e-8), -8, 8)
    return F.linear(x, theta * (la < threshold), bias)


def _kl(la):
    return -kl.neg_kl_molchanov(la).sum()


def _loss(logits, y, k, n, kl_weight):
    return n * F.cross_entropy(logits, y) + kl_weight * k


NUMPY = "a NumPy array"
FLOAT = "a Python float"
DETACHED = "carries no gradient"

CASES = [
    (checks.check_lrt_forward, lambda *a: _lrt(*a).numpy(), "type", NUMPY),
    (checks.check_lrt_forward, lambda *a: _lrt(*a).detach(), "detached", DETACHED),
    (checks.check_eval_forward, lambda *a: _eval(*a).numpy(), "type", NUMPY),
    (checks.check_kl, lambda la: _kl(la).item(), "type", FLOAT),
    (checks.check_kl, lambda la: torch.tensor(_kl(la).item(), dtype=la.dtype), "detached", DETACHED),
    (checks.check_negative_elbo, lambda *a: _loss(*a).item(), "type", FLOAT),
    (checks.check_negative_elbo, lambda *a: _loss(*a).detach(), "detached", DETACHED),
    (checks.check_inverted_dropout, lambda x, p, u: (x * (u >= p) / (1 - p)).numpy(), "type", NUMPY),
    (checks.check_inverted_dropout, lambda x, p, u: (x * (u >= p) / (1 - p)).detach(), "detached", DETACHED),
    (
        checks.check_gaussian_dropout,
        lambda x, p, e: (x * (1 + (p / (1 - p)) ** 0.5 * e)).numpy(),
        "type",
        NUMPY,
    ),
    (checks.check_mc_average, lambda lg: torch.softmax(lg, -1).mean(0).numpy(), "type", NUMPY),
    (checks.check_entropy, lambda p: torch.special.entr(p).sum(-1).numpy(), "type", NUMPY),
    (checks.check_mutual_information, lambda s: np.zeros(s.shape[1]), "type", NUMPY),
]


@pytest.mark.parametrize("check, fn, mistake, match", CASES)
def test_a_wrong_type_fails_its_own_check_and_is_named(check, fn, mistake, match):
    expect_mistake(check, fn, mistake, match)


def test_the_type_check_lets_tensors_through_and_names_none():
    _require_tensor("check_x", torch.ones(2), "the output")
    _require_tensor("check_x", torch.ones(2), "the output", grad_of=(lambda x: 2 * x, (torch.ones(2),)))
    with pytest.raises(checks.CheckFailed, match="None: end your function with `return"):
        _require_tensor("check_x", None, "the output")


def test_ece_nan_from_an_empty_bin_is_named():
    def ece_empty_bins(probs, y, n_bins):
        conf, pred = probs.max(dim=1)
        correct = (pred == y).double()
        total = torch.zeros((), dtype=torch.float64)
        for m in range(n_bins):
            in_bin = (conf > m / n_bins) & (conf <= (m + 1) / n_bins)
            total = total + in_bin.double().mean() * (correct[in_bin].mean() - conf[in_bin].mean()).abs()
        return float(total)

    expect_mistake(checks.check_ece, ece_empty_bins, "nan", r"empty bin.*0 / 0")
    checks.check_ece(lambda probs, y, n: scores.expected_calibration_error(probs, y, n))


def test_the_wrong_axis_hint_does_not_spell_out_the_solution():
    with pytest.raises(checks.CheckFailed) as info:
        checks.check_conditional(lambda p, z: p[:, :, z].sum(axis=0) / p[:, :, z].sum())
    assert info.value.mistake == "wrong_axis"
    assert "axis=1" not in str(info.value) and "p[:, :, z]" not in str(info.value)
