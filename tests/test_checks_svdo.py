"""Tests for course_lib.checks.svdo: A4, LinearSVDO and the trained network.

The solution passes and each typical mistake is named.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from check_helpers import expect_mistake

from course_lib import checks, kl
from course_lib.checks import CheckFailed


def log_alpha(theta, log_sigma2):
    return torch.clamp(log_sigma2 - torch.log(theta**2 + 1e-8), -8.0, 8.0)


def test_log_alpha_passes_solution_and_matches_layer():
    from course_lib.layers import LinearSVDO

    checks.check_log_alpha(log_alpha)
    layer = LinearSVDO(4, 3)
    torch.testing.assert_close(log_alpha(layer.theta, layer.log_sigma2), layer.log_alpha)


@pytest.mark.parametrize(
    "fn, mistake, match",
    [
        (
            lambda th, ls: torch.clamp(ls - torch.log(2 * th.abs()), -8, 8),
            "log_2_abs_theta",
            r"log\(2\|theta\|\)",
        ),
        (lambda th, ls: ls - torch.log(2 * th.abs()), "log_2_abs_theta", r"and clip the result"),
        (
            lambda th, ls: torch.clamp(ls - torch.log(th.abs() + 1e-8), -8, 8),
            "log_abs_theta",
            r"not log\|theta\|",
        ),
        (lambda th, ls: ls - torch.log(th**2 + 1e-8), "no_clip", "not clipped"),
    ],
)
def test_log_alpha_mistakes(fn, mistake, match):
    expect_mistake(checks.check_log_alpha, fn, mistake, match)


def lrt_forward(x, theta, log_sigma2, bias, eps):
    mean = F.linear(x, theta, bias)
    var = F.linear(x * x, log_sigma2.exp())
    return mean + torch.sqrt(var + 1e-8) * eps


def test_lrt_forward_passes_solution():
    checks.check_lrt_forward(lrt_forward)


@pytest.mark.parametrize(
    "fn, mistake, match",
    [
        (
            lambda x, th, ls, b, e: F.linear(x, th, b) + torch.sqrt(F.linear(x * x, ls.exp(), b) + 1e-8) * e,
            "bias_in_variance",
            "bias is inside the variance",
        ),
        (
            lambda x, th, ls, b, e: F.linear(x, th, b) + (F.linear(x * x, ls.exp()) + 1e-8) * e,
            "var_not_std",
            "standard deviation",
        ),
        (
            lambda x, th, ls, b, e: F.linear(x, th, b) + torch.sqrt(F.linear(x, ls.exp()) + 1e-8) * e,
            "x_not_squared",
            r"use x \* x",
        ),
        (
            lambda x, th, ls, b, e: (
                F.linear(x, th, b) + torch.sqrt(F.linear(x * x, (ls / 2).exp()) + 1e-8) * e
            ),
            "sigma_not_sigma2",
            r"sigma\^2 = exp\(log_sigma2\)",
        ),
    ],
)
def test_lrt_forward_mistakes(fn, mistake, match):
    expect_mistake(checks.check_lrt_forward, fn, mistake, match)


def eval_forward(x, theta, log_sigma2, bias, threshold):
    return F.linear(x, theta * (log_alpha(theta, log_sigma2) < threshold), bias)


def test_eval_forward_passes_solution():
    checks.check_eval_forward(eval_forward)


@pytest.mark.parametrize(
    "fn, mistake, match",
    [
        (
            lambda x, th, ls, b, thr: lrt_forward(
                x, th, ls, b, torch.randn(x.shape[0], th.shape[0], dtype=x.dtype)
            ),
            "noisy",
            "you evaluate with noise",
        ),
        (lambda x, th, ls, b, thr: F.linear(x, th, b), "unpruned", "you use all of theta"),
        (
            lambda x, th, ls, b, thr: F.linear(x, th * (log_alpha(th, ls) >= thr), b),
            "mask_reversed",
            "reversed",
        ),
        (lambda x, th, ls, b, thr: F.linear(x, th * (log_alpha(th, ls) < thr)), "no_bias", "bias is missing"),
    ],
)
def test_eval_forward_mistakes(fn, mistake, match):
    expect_mistake(checks.check_eval_forward, fn, mistake, match)


def test_kl_passes_solution():
    checks.check_kl(lambda la: -kl.neg_kl_molchanov(la).sum())


@pytest.mark.parametrize(
    "fn, mistake, match",
    [
        (lambda la: kl.neg_kl_molchanov(la).sum(), "kl_sign", "your KL is negative"),
        (lambda la: -kl.neg_kl_molchanov(la).mean(), "mean_not_sum", "averaged over weights"),
        (lambda la: -(kl.neg_kl_molchanov(la) + 2 * kl.K1).sum(), "plus_k1", r"not \+k1"),
    ],
)
def test_kl_mistakes(fn, mistake, match):
    expect_mistake(checks.check_kl, fn, mistake, match)


def test_negative_elbo_passes_solution():
    checks.check_negative_elbo(
        lambda logits, y, k, n, kl_weight: n * F.cross_entropy(logits, y) + kl_weight * k
    )


@pytest.mark.parametrize(
    "fn, mistake, match",
    [
        (lambda lo, y, k, n, b: F.cross_entropy(lo, y) + b * k, "no_n_scaling", "multiply it by N"),
        (lambda lo, y, k, n, b: F.cross_entropy(lo, y, reduction="sum") + b * k, "batch_sum", "a factor B"),
        (lambda lo, y, k, n, b: n * F.cross_entropy(lo, y) - b * k, "kl_sign", "KL is subtracted"),
        (
            lambda lo, y, k, n, b: n * F.cross_entropy(lo, y) + k,
            "kl_weight_ignored",
            "KL weight kappa is ignored",
        ),
    ],
)
def test_negative_elbo_mistakes(fn, mistake, match):
    expect_mistake(checks.check_negative_elbo, fn, mistake, match)


def _tiny_sparse_net(noisy: bool):
    from course_lib.layers import LinearSVDO

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = LinearSVDO(4, 2)
            with torch.no_grad():
                self.fc.theta.copy_(torch.tensor([[1.0, 0, 0, 0], [0, 1.0, 0, 0]]))
                self.fc.bias.zero_()
                self.fc.log_sigma2.copy_(torch.log(self.fc.theta**2 + 1e-8) + 5 * (self.fc.theta == 0))

        def forward(self, x):
            out = self.fc(x)
            return out + torch.randn_like(out) if noisy else out

    return Net()


def test_trained_passes_and_reports():
    x = torch.eye(4)[:2].repeat(4, 1)
    y = torch.tensor([0, 1] * 4)
    result = checks.check_trained(_tiny_sparse_net(False), x, y, max_error=0.01, min_sparsity=0.7)
    assert result["error"] == 0.0 and result["sparsity"] == pytest.approx(0.75)
    assert result["compression"] == pytest.approx(4.0)


def test_trained_mistakes():
    x = torch.eye(4)[:2].repeat(4, 1)
    y = torch.tensor([0, 1] * 4)
    with pytest.raises(CheckFailed, match="evaluates with noise") as info:
        checks.check_trained(_tiny_sparse_net(True), x, y, 0.1, 0.5)
    assert info.value.mistake == "noisy"
    with pytest.raises(CheckFailed, match="only 75.0% of the weights are pruned") as info:
        checks.check_trained(_tiny_sparse_net(False), x, y, 0.1, 0.9)
    assert info.value.mistake == "not_sparse"
    with pytest.raises(CheckFailed, match="test error 100.00% is above") as info:
        checks.check_trained(_tiny_sparse_net(False), x, 1 - y, 0.1, 0.5)
    assert info.value.mistake == "error_high"


def test_check_trained_rejects_bad_targets():
    with pytest.raises(ValueError, match="max_error must be in"):
        checks.check_trained(_tiny_sparse_net(False), torch.eye(4), torch.arange(4) % 2, 5.0, 0.5)
    with pytest.raises(CheckFailed, match="pass the trained network"):
        checks.check_trained("net", torch.eye(4), torch.arange(4) % 2, 0.1, 0.5)


@pytest.mark.parametrize(
    "fn, mistake, match",
    [
        (lambda th, ls: torch.clamp(ls - 2 * torch.log(th.abs()), -8, 8), "no_eps", "left out the 1e-8.*NaN"),
        (lambda th, ls: torch.clamp(ls - torch.log(th**2), -8, 8), "no_eps", r"log\(theta\*\*2 \+ 1e-8\)"),
        (lambda th, ls: log_alpha(th, ls).detach(), "detached", "no gradient flows"),
    ],
)
def test_log_alpha_gradient_mistakes(fn, mistake, match):
    expect_mistake(checks.check_log_alpha, fn, mistake, match)


@pytest.mark.parametrize(
    "fn, mistake, match",
    [
        (lambda x, th, ls, b, e: F.linear(x, th, b), "no_noise", "variance term .* is missing"),
        (
            lambda x, th, ls, b, e: F.linear(x, th, b) + torch.sqrt(F.linear(x * x, ls) + 1e-8) * e,
            "log_sigma2_as_variance",
            "log_sigma2 itself as the variance",
        ),
    ],
)
def test_lrt_forward_more_mistakes(fn, mistake, match):
    expect_mistake(checks.check_lrt_forward, fn, mistake, match)


def test_eval_forward_mask_on_log_sigma2():
    expect_mistake(
        checks.check_eval_forward,
        lambda x, th, ls, b, thr: F.linear(x, th * (ls < thr), b),
        "mask_on_log_sigma2",
        "compares log_sigma2 with the threshold",
    )


def test_eval_forward_is_graded_on_its_own():
    """A wrong log_alpha in the notebook's namespace does not fail eval_forward's check."""
    namespace = {"F": F, "log_alpha": lambda th, ls: ls - torch.log(2 * th.abs())}
    exec(
        "def eval_forward(x, theta, log_sigma2, bias, threshold):\n"
        "    return F.linear(x, theta * (log_alpha(theta, log_sigma2) < threshold), bias)\n",
        namespace,
    )
    wrong = namespace["log_alpha"]
    checks.check_eval_forward(namespace["eval_forward"])
    assert namespace["log_alpha"] is wrong  # restored


@pytest.mark.parametrize(
    "fn, mistake, match",
    [
        (lambda la: kl.neg_kl_molchanov(la).mean(), "kl_sign", "Also sum over the weights"),
        (lambda la: -kl.neg_kl_molchanov(-la).sum(), "minus_log_alpha", "at -log alpha"),
    ],
)
def test_kl_more_mistakes(fn, mistake, match):
    expect_mistake(checks.check_kl, fn, mistake, match)


@pytest.mark.parametrize(
    "fn, mistake, match",
    [
        (
            lambda lo, y, k, n, b: n * F.cross_entropy(lo, y, reduction="sum") + b * k,
            "n_times_batch_sum",
            "counts the data 16 times",
        ),
        (lambda lo, y, k, n, b: F.cross_entropy(lo, y) + b * k / n, "kl_over_n", "per-example loss"),
        (lambda lo, y, k, n, b: n * F.cross_entropy(lo, y) + b * k / n, "kl_over_n", "weakens the prior"),
    ],
)
def test_negative_elbo_more_mistakes(fn, mistake, match):
    expect_mistake(checks.check_negative_elbo, fn, mistake, match)


def test_trained_wraps_the_network_errors_and_grades_parts():
    class Broken(torch.nn.Module):
        def forward(self, x):
            return x @ torch.ones(3, 3)

    x, y = torch.eye(4)[:2].repeat(4, 1), torch.tensor([0, 1] * 4)
    expect_mistake(
        lambda m: checks.check_trained(m, x, y, max_error=0.1),
        Broken(),
        "error",
        r"running your network on the test images raised RuntimeError",
    )
    net = _tiny_sparse_net(False)
    assert checks.check_trained(net, x, y, max_error=0.01)["sparsity"] == pytest.approx(0.75)
    expect_mistake(lambda m: checks.check_trained(m, x, y, min_sparsity=0.9), net, "not_sparse", "only 75.0%")
    with pytest.raises(ValueError, match="give max_error, min_sparsity or both"):
        checks.check_trained(net, x, y)


def test_trained_hidden_counts_with_the_reference_log_alpha():
    x, y = torch.eye(4)[:2].repeat(4, 1), torch.tensor([0, 1] * 4)
    net = _tiny_sparse_net(False)
    net.fc.mask = lambda: torch.ones_like(net.fc.theta, dtype=torch.bool)  # a layer that lies about its mask
    with pytest.raises(CheckFailed):
        checks.check_trained(net, x, y, min_sparsity=0.7)
    assert checks.check_trained(net, x, y, min_sparsity=0.7, hidden=1)["sparsity"] == pytest.approx(0.75)


@pytest.mark.parametrize(
    "check, fn",
    [
        (checks.check_log_alpha, log_alpha),
        (checks.check_lrt_forward, lrt_forward),
        (checks.check_eval_forward, eval_forward),
        (checks.check_kl, lambda la: -kl.neg_kl_molchanov(la).sum()),
        (
            checks.check_negative_elbo,
            lambda logits, y, k, n, kl_weight: n * F.cross_entropy(logits, y) + kl_weight * k,
        ),
    ],
)
def test_hidden_inputs_pass_the_solution_silently(check, fn, capsys):
    check(fn, hidden=1016)
    assert capsys.readouterr().out == ""
