"""Tests for course_lib.checks: each check passes the solution and names each typical mistake."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import optimize

from course_lib import checks, kl
from course_lib.checks import CheckFailed


def expect_mistake(check, arg, mistake: str, match: str) -> None:
    """The check fails on ``arg`` with the named mistake and a message matching ``match``."""
    with pytest.raises(CheckFailed, match=match) as info:
        check(arg)
    assert info.value.mistake == mistake, str(info.value)


# -- A1 -------------------------------------------------------------------------------
def conditional(p, z):
    joint = p[:, :, z].sum(axis=1)
    return joint / joint.sum()


def posterior(prior, lik, t):
    u = prior * lik[:, t]
    return u / u.sum()


def test_conditional_passes_solution(capsys):
    checks.check_conditional(conditional)
    assert capsys.readouterr().out.startswith("OK - ")


@pytest.mark.parametrize("fn, mistake, match", [
    (lambda p, z: p[:, :, z].sum(axis=1), "not_normalized", r"joint p\(X, Z=0\).*Divide by p\(Z=0\)"),
    (lambda p, z: p[:, 0, z] / p[:, 0, z].sum(), "nuisance_fixed", r"p\(X \| Y=0, Z=0\).*summed"),
    (lambda p, z: p[:, 2, z] / p[:, 2, z].sum(), "nuisance_fixed", r"p\(X \| Y=2, Z=0\)"),
    (lambda p, z: p[:, :, z].sum(axis=1) / p.sum(axis=(1, 2)), "reversed", r"reversed conditional"),
])
def test_conditional_mistakes(fn, mistake, match):
    expect_mistake(checks.check_conditional, fn, mistake, match)


def test_posterior_passes_solution():
    checks.check_posterior(posterior)


@pytest.mark.parametrize("fn, mistake, match", [
    (lambda prior, lik, t: prior * lik[:, t], "no_evidence", r"evidence p\(t=0\)"),
    (lambda prior, lik, t: lik[:, t], "likelihood", r"base-rate fallacy"),
    (lambda prior, lik, t: lik[:, t] / lik[:, t].sum(), "prior_forgotten", r"forgot the prior"),
])
def test_posterior_mistakes(fn, mistake, match):
    expect_mistake(checks.check_posterior, fn, mistake, match)


# -- A2 -------------------------------------------------------------------------------
def elbo_parts(m, S, Phi, t, alpha, beta):
    N, D = Phi.shape
    data_const = 0.5 * N * np.log(beta / (2 * np.pi))
    resid2 = np.sum((t - Phi @ m) ** 2)
    trace = np.trace(Phi @ S @ Phi.T)
    kl_q = 0.5 * (alpha * np.trace(S) + alpha * m @ m - D - D * np.log(alpha) - np.linalg.slogdet(S)[1])
    return data_const, resid2, trace, kl_q


def elbo(m, S, Phi, t, alpha, beta):
    c, r, tr, k = elbo_parts(m, S, Phi, t, alpha, beta)
    return c - 0.5 * beta * (r + tr) - k


def test_elbo_passes_solution_and_equals_library():
    from course_lib import vi
    checks.check_elbo(elbo)
    Phi, t, m, S, alpha, beta = checks._regression_problem()
    q = vi.FullRankGaussian(m, scale_tril=np.linalg.cholesky(S))
    lib = float(vi.linear_gaussian_elbo(q, torch.tensor(Phi), torch.tensor(t), alpha, beta).detach())
    assert elbo(m, S, Phi, t, alpha, beta) == pytest.approx(lib, rel=1e-10)


def _elbo_variant(kind):
    def fn(m, S, Phi, t, alpha, beta):
        c, r, tr, k = elbo_parts(m, S, Phi, t, alpha, beta)
        return {"kl_sign": c - 0.5 * beta * (r + tr) + k, "kl_half": c - 0.5 * beta * (r + tr) - 2 * k,
                "data_half": c - beta * (r + tr) - k, "no_trace": c - 0.5 * beta * r - k,
                "no_kl": c - 0.5 * beta * (r + tr)}[kind]
    return fn


@pytest.mark.parametrize("mistake, match", [
    ("kl_sign", "wrong sign"), ("kl_half", "twice too large"), ("data_half", "data term is missing a factor 1/2"),
    ("no_trace", "Add the trace term"), ("no_kl", "KL term is missing"),
])
def test_elbo_mistakes(mistake, match):
    expect_mistake(checks.check_elbo, _elbo_variant(mistake), mistake, match)


def mean_field(Phi, t, alpha, beta):
    precision = alpha * np.eye(Phi.shape[1]) + beta * Phi.T @ Phi
    m = beta * np.linalg.solve(precision, Phi.T @ t)
    return m, 1.0 / np.diag(precision)


def test_mean_field_passes_solution():
    checks.check_mean_field(mean_field)


@pytest.mark.parametrize("variant, mistake, match", [
    ("marginal", "marginal_variances", r"KL\(p \|\| q\)"),
    ("prior", "prior_variance", "prior variance"),
    ("std", "std_not_variance", "standard deviations"),
    ("zero_mean", "prior_mean", "prior mean 0"),
])
def test_mean_field_mistakes(variant, mistake, match):
    def fn(Phi, t, alpha, beta):
        m, s2 = mean_field(Phi, t, alpha, beta)
        precision = alpha * np.eye(Phi.shape[1]) + beta * Phi.T @ Phi
        return {"marginal": (m, np.diag(np.linalg.inv(precision))), "prior": (m, np.full_like(s2, 1 / alpha)),
                "std": (m, np.sqrt(s2)), "zero_mean": (0 * m, s2)}[variant]
    expect_mistake(checks.check_mean_field, fn, mistake, match)


def test_mean_field_rejects_a_single_array():
    expect_mistake(checks.check_mean_field, lambda *a: np.zeros(3), "type", r"return a pair \(m, s2\)")


def elbo_estimate(m, L, Phi_b, t_b, N, alpha, beta, eps, variant="ok"):
    W = m + (eps @ L if variant == "l_not_transposed" else eps @ L.T)
    ll = 0.5 * np.log(beta / (2 * np.pi)) - 0.5 * beta * (t_b[None, :] - W @ Phi_b.T) ** 2
    data = ll.sum(axis=1).mean()
    B = len(t_b)
    D = len(m)
    S = L @ L.T
    k = 0.5 * (alpha * np.trace(S) + alpha * m @ m - D - D * np.log(alpha) - np.linalg.slogdet(S)[1])
    scale = {"no_n_scaling": 1.0, "batch_mean": 1.0 / B}.get(variant, N / B)
    return scale * data + (k if variant == "kl_sign" else -k)


def test_elbo_estimate_passes_solution():
    checks.check_elbo_estimate(elbo_estimate)


@pytest.mark.parametrize("mistake, match", [
    ("no_n_scaling", "scaled by N/B"), ("batch_mean", "multiply the mean by N"),
    ("kl_sign", "wrong sign"), ("l_not_transposed", r"eps @ L.T"),
])
def test_elbo_estimate_mistakes(mistake, match):
    expect_mistake(checks.check_elbo_estimate,
                   lambda *a: elbo_estimate(*a, variant=mistake), mistake, match)


# -- A3 -------------------------------------------------------------------------------
def neg_kl_mc(log_alpha, eps, variant="ok"):
    out = []
    for la in np.atleast_1d(log_alpha):
        inner = 1 + np.sqrt(np.exp(la)) * eps
        with np.errstate(invalid="ignore"):
            e_log = np.mean(np.log(inner if variant == "no_abs" else np.abs(inner)))
        first = la if variant == "log_alpha_not_half" else 0.5 * la
        const = 0.0 if variant == "no_constant" else kl.C_INF
        out.append(first - e_log - const)
    out = np.array(out)
    return -out if variant == "sign" else out


def test_neg_kl_mc_passes_solution_and_matches_library():
    checks.check_neg_kl_mc(neg_kl_mc)
    eps = np.random.default_rng(0).standard_normal(10_000)
    la = np.array([-2.0, 0.0, 2.0])
    np.testing.assert_allclose(neg_kl_mc(la, eps), kl.neg_kl_mc(la, 10_000, seed=0).mean, atol=1e-10)


@pytest.mark.parametrize("mistake, match", [
    ("sign", r"you return \+KL"), ("no_constant", "constant C"),
    ("log_alpha_not_half", r"1/2 log alpha"), ("no_abs", "absolute value"),
])
def test_neg_kl_mc_mistakes(mistake, match):
    expect_mistake(checks.check_neg_kl_mc, lambda la, eps: neg_kl_mc(la, eps, mistake), mistake, match)


def approx(la, k1, k2, k3, variant="ok"):
    sig = 1 / (1 + np.exp(-(k2 + k3 * la)))
    sp = np.log1p(np.exp(la)) if variant == "log_one_plus_alpha" else np.log1p(np.exp(-la))
    half = 1.0 if variant == "softplus_half" else 0.5
    return k1 * sig - half * sp + (k1 if variant == "plus_k1" else -k1)


def test_neg_kl_approx_passes_solution():
    checks.check_neg_kl_approx(approx)


@pytest.mark.parametrize("mistake, match", [
    ("log_one_plus_alpha", r"not log\(1 \+ alpha\)"), ("softplus_half", "factor 1/2"),
    ("plus_k1", r"not \+k1"),
])
def test_neg_kl_approx_mistakes(mistake, match):
    expect_mistake(checks.check_neg_kl_approx, lambda la, *k: approx(la, *k, variant=mistake),
                   mistake, match)


def fit(tied=False):
    grid = np.linspace(-10, 10, 2001)
    ref = kl.neg_kl(grid)
    sp = -0.5 * np.logaddexp(0, -grid)

    def residual(k):
        C = -k[0] if tied else -kl.C_INF
        return k[0] / (1 + np.exp(-(k[1] + k[2] * grid))) + sp + C - ref
    return optimize.least_squares(residual, [0.6, 1.8, 1.5]).x


def test_fit_passes_own_least_squares():
    checks.check_fit(fit())


@pytest.mark.parametrize("constants, mistake, match", [
    ((kl.K1, kl.K2, kl.K3), "published", "published constants"),
    ("tied", "tied", "tied C = -k1"),
    ((0.5, 1.5, 1.5), "wrong", r"miss the reference by up to"),
])
def test_fit_mistakes(constants, mistake, match):
    if constants == "tied":
        constants = fit(tied=True)
    expect_mistake(checks.check_fit, constants, mistake, match)


def test_fit_rejects_wrong_length():
    expect_mistake(checks.check_fit, (1.0, 2.0), "shape", "three constants")


# -- A4 -------------------------------------------------------------------------------
def log_alpha(theta, log_sigma2):
    return torch.clamp(log_sigma2 - torch.log(theta**2 + 1e-8), -8.0, 8.0)


def test_log_alpha_passes_solution_and_matches_layer():
    from course_lib.layers import LinearSVDO
    checks.check_log_alpha(log_alpha)
    layer = LinearSVDO(4, 3)
    torch.testing.assert_close(log_alpha(layer.theta, layer.log_sigma2), layer.log_alpha)


@pytest.mark.parametrize("fn, mistake, match", [
    (lambda th, ls: torch.clamp(ls - torch.log(2 * th.abs()), -8, 8), "log_2_abs_theta", r"log\(2\|theta\|\)"),
    (lambda th, ls: ls - torch.log(2 * th.abs()), "log_2_abs_theta", r"and clip the result"),
    (lambda th, ls: torch.clamp(ls - torch.log(th.abs() + 1e-8), -8, 8), "log_abs_theta", r"not log\|theta\|"),
    (lambda th, ls: ls - torch.log(th**2 + 1e-8), "no_clip", "not clipped"),
])
def test_log_alpha_mistakes(fn, mistake, match):
    expect_mistake(checks.check_log_alpha, fn, mistake, match)


def lrt_forward(x, theta, log_sigma2, bias, eps):
    mean = F.linear(x, theta, bias)
    var = F.linear(x * x, log_sigma2.exp())
    return mean + torch.sqrt(var + 1e-8) * eps


def test_lrt_forward_passes_solution():
    checks.check_lrt_forward(lrt_forward)


@pytest.mark.parametrize("fn, mistake, match", [
    (lambda x, th, ls, b, e: F.linear(x, th, b) + torch.sqrt(F.linear(x * x, ls.exp(), b) + 1e-8) * e,
     "bias_in_variance", "bias is inside the variance"),
    (lambda x, th, ls, b, e: F.linear(x, th, b) + (F.linear(x * x, ls.exp()) + 1e-8) * e,
     "var_not_std", "standard deviation"),
    (lambda x, th, ls, b, e: F.linear(x, th, b) + torch.sqrt(F.linear(x, ls.exp()) + 1e-8) * e,
     "x_not_squared", r"use x \* x"),
    (lambda x, th, ls, b, e: F.linear(x, th, b) + torch.sqrt(F.linear(x * x, (ls / 2).exp()) + 1e-8) * e,
     "sigma_not_sigma2", r"sigma\^2 = exp\(log_sigma2\)"),
])
def test_lrt_forward_mistakes(fn, mistake, match):
    expect_mistake(checks.check_lrt_forward, fn, mistake, match)


def eval_forward(x, theta, log_sigma2, bias, threshold):
    return F.linear(x, theta * (log_alpha(theta, log_sigma2) < threshold), bias)


def test_eval_forward_passes_solution():
    checks.check_eval_forward(eval_forward)


@pytest.mark.parametrize("fn, mistake, match", [
    (lambda x, th, ls, b, thr: lrt_forward(x, th, ls, b, torch.randn(x.shape[0], th.shape[0], dtype=x.dtype)),
     "noisy", "you evaluate with noise"),
    (lambda x, th, ls, b, thr: F.linear(x, th, b), "unpruned", "you use all of theta"),
    (lambda x, th, ls, b, thr: F.linear(x, th * (log_alpha(th, ls) >= thr), b), "mask_reversed", "reversed"),
    (lambda x, th, ls, b, thr: F.linear(x, th * (log_alpha(th, ls) < thr)), "no_bias", "bias is missing"),
])
def test_eval_forward_mistakes(fn, mistake, match):
    expect_mistake(checks.check_eval_forward, fn, mistake, match)


def test_kl_passes_solution():
    checks.check_kl(lambda la: -kl.neg_kl_molchanov(la).sum())


@pytest.mark.parametrize("fn, mistake, match", [
    (lambda la: kl.neg_kl_molchanov(la).sum(), "kl_sign", "your KL is negative"),
    (lambda la: -kl.neg_kl_molchanov(la).mean(), "mean_not_sum", "averaged over weights"),
    (lambda la: -(kl.neg_kl_molchanov(la) + 2 * kl.K1).sum(), "plus_k1", r"not \+k1"),
])
def test_kl_mistakes(fn, mistake, match):
    expect_mistake(checks.check_kl, fn, mistake, match)


def test_negative_elbo_passes_solution():
    checks.check_negative_elbo(lambda logits, y, k, n, beta: n * F.cross_entropy(logits, y) + beta * k)


@pytest.mark.parametrize("fn, mistake, match", [
    (lambda lo, y, k, n, b: F.cross_entropy(lo, y) + b * k, "no_n_scaling", "multiply it by N"),
    (lambda lo, y, k, n, b: F.cross_entropy(lo, y, reduction="sum") + b * k, "batch_sum", "a factor B"),
    (lambda lo, y, k, n, b: n * F.cross_entropy(lo, y) - b * k, "kl_sign", "KL is subtracted"),
    (lambda lo, y, k, n, b: n * F.cross_entropy(lo, y) + k, "beta_ignored", "beta is ignored"),
])
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


# -- bad input ------------------------------------------------------------------------
def test_not_callable_is_explained():
    expect_mistake(checks.check_conditional, np.zeros(3), "type", "pass the function itself")


def test_stub_is_explained():
    def stub(p, z):
        raise NotImplementedError()
    with pytest.raises(NotImplementedError, match="check_conditional: your function is still the stub"):
        checks.check_conditional(stub)


def test_student_exception_is_reported():
    expect_mistake(checks.check_posterior, lambda prior, lik, t: prior[10], "error", "raised IndexError")


def test_none_return_is_explained():
    expect_mistake(checks.check_posterior, lambda prior, lik, t: None, "type", r"use `return \.\.\.`")


def test_wrong_shape_is_explained():
    expect_mistake(checks.check_posterior, lambda prior, lik, t: np.ones((2, 2)) / 4, "shape",
                   r"has shape \(2, 2\), expected \(3,\)")


def test_unknown_mistake_gives_numbers():
    expect_mistake(checks.check_posterior, lambda prior, lik, t: np.array([0.2, 0.3, 0.5]), "wrong",
                   "matches none of the typical mistakes.*reference is")


def test_unknown_nan_is_explained():
    expect_mistake(checks.check_posterior, lambda prior, lik, t: np.full(3, np.nan), "nan",
                   "contains NaN or inf")


def test_check_trained_rejects_bad_targets():
    with pytest.raises(ValueError, match="max_error must be in"):
        checks.check_trained(_tiny_sparse_net(False), torch.eye(4), torch.arange(4) % 2, 5.0, 0.5)
    with pytest.raises(CheckFailed, match="pass the trained network"):
        checks.check_trained("net", torch.eye(4), torch.arange(4) % 2, 0.1, 0.5)


def test_check_failed_is_an_assertion_error_with_the_check_name():
    assert issubclass(CheckFailed, AssertionError)
    err = CheckFailed("check_x", "what to fix", "kl_sign")
    assert str(err) == "check_x: what to fix" and err.mistake == "kl_sign"
