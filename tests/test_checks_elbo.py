"""Tests for course_lib.checks.elbo: A2, the ELBO of Bayesian linear regression.

The solution passes and each typical mistake is named.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from check_helpers import expect_mistake

from course_lib import checks
from course_lib.checks import CheckFailed


def elbo_parts(m, S, Phi, t, lam, beta):
    N, D = Phi.shape
    data_const = 0.5 * N * np.log(beta / (2 * np.pi))
    resid2 = np.sum((t - Phi @ m) ** 2)
    trace = np.trace(Phi @ S @ Phi.T)
    kl_q = 0.5 * (lam * np.trace(S) + lam * m @ m - D - D * np.log(lam) - np.linalg.slogdet(S)[1])
    return data_const, resid2, trace, kl_q


def elbo(m, S, Phi, t, lam, beta):
    c, r, tr, k = elbo_parts(m, S, Phi, t, lam, beta)
    return c - 0.5 * beta * (r + tr) - k


def test_elbo_passes_solution_and_equals_library():
    from course_lib import vi

    checks.check_elbo(elbo)
    Phi, t, m, S, lam, beta = checks.elbo._regression_problem()
    q = vi.FullRankGaussian(m, scale_tril=np.linalg.cholesky(S))
    lib = float(vi.linear_gaussian_elbo(q, torch.tensor(Phi), torch.tensor(t), lam, beta).detach())
    assert elbo(m, S, Phi, t, lam, beta) == pytest.approx(lib, rel=1e-10)


def _elbo_variant(kind):
    def fn(m, S, Phi, t, lam, beta):
        c, r, tr, k = elbo_parts(m, S, Phi, t, lam, beta)
        return {
            "kl_sign": c - 0.5 * beta * (r + tr) + k,
            "kl_half": c - 0.5 * beta * (r + tr) - 2 * k,
            "data_half": c - beta * (r + tr) - k,
            "no_trace": c - 0.5 * beta * r - k,
            "no_kl": c - 0.5 * beta * (r + tr),
        }[kind]

    return fn


@pytest.mark.parametrize(
    "mistake, match",
    [
        ("kl_sign", "wrong sign"),
        ("kl_half", "twice too large"),
        ("data_half", "data term is missing a factor 1/2"),
        ("no_trace", "Add the trace term"),
        ("no_kl", "KL term is missing"),
    ],
)
def test_elbo_mistakes(mistake, match):
    expect_mistake(checks.check_elbo, _elbo_variant(mistake), mistake, match)


def mean_field(Phi, t, lam, beta):
    precision = lam * np.eye(Phi.shape[1]) + beta * Phi.T @ Phi
    m = beta * np.linalg.solve(precision, Phi.T @ t)
    return m, 1.0 / np.diag(precision)


def test_mean_field_passes_solution():
    checks.check_mean_field(mean_field)


@pytest.mark.parametrize(
    "variant, mistake, match",
    [
        ("marginal", "marginal_variances", r"KL\(p \|\| q\)"),
        ("prior", "prior_variance", "prior variance"),
        ("std", "std_not_variance", "standard deviations"),
        ("zero_mean", "prior_mean", "prior mean 0"),
    ],
)
def test_mean_field_mistakes(variant, mistake, match):
    def fn(Phi, t, lam, beta):
        m, s2 = mean_field(Phi, t, lam, beta)
        precision = lam * np.eye(Phi.shape[1]) + beta * Phi.T @ Phi
        return {
            "marginal": (m, np.diag(np.linalg.inv(precision))),
            "prior": (m, np.full_like(s2, 1 / lam)),
            "std": (m, np.sqrt(s2)),
            "zero_mean": (0 * m, s2),
        }[variant]

    expect_mistake(checks.check_mean_field, fn, mistake, match)


def test_mean_field_rejects_a_single_array():
    expect_mistake(checks.check_mean_field, lambda *a: np.zeros(3), "type", r"return a pair \(m, s2\)")


def elbo_estimate(m, L, Phi_b, t_b, N, lam, beta, eps, variant="ok"):
    W = m + (eps @ L if variant == "l_not_transposed" else eps @ L.T)
    ll = 0.5 * np.log(beta / (2 * np.pi)) - 0.5 * beta * (t_b[None, :] - W @ Phi_b.T) ** 2
    data = ll.sum(axis=1).mean()
    B = len(t_b)
    D = len(m)
    S = L @ L.T
    k = 0.5 * (lam * np.trace(S) + lam * m @ m - D - D * np.log(lam) - np.linalg.slogdet(S)[1])
    scale = {"no_n_scaling": 1.0, "batch_mean": 1.0 / B}.get(variant, N / B)
    return scale * data + (k if variant == "kl_sign" else -k)


def test_elbo_estimate_passes_solution():
    checks.check_elbo_estimate(elbo_estimate)


@pytest.mark.parametrize(
    "mistake, match",
    [
        ("no_n_scaling", "scaled by N/B"),
        ("batch_mean", "multiply the mean by N"),
        ("kl_sign", "wrong sign"),
        ("l_not_transposed", r"eps @ L.T"),
    ],
)
def test_elbo_estimate_mistakes(mistake, match):
    expect_mistake(checks.check_elbo_estimate, lambda *a: elbo_estimate(*a, variant=mistake), mistake, match)


@pytest.mark.parametrize(
    "variant, mistake, match",
    [
        ("n_d_swapped", "n_d_swapped", r"N and D are swapped.*\(N, D\) = \(12, 3\)"),
        ("no_minus_d", "no_minus_d", r"missing its '- D' \(here D = 3\)"),
        ("slogdet_sign", "slogdet_sign", r"you used \[0\], the sign"),
    ],
)
def test_elbo_more_mistakes(variant, mistake, match):
    def fn(m, S, Phi, t, lam, beta):
        n, d = Phi.shape
        if variant == "n_d_swapped":
            d, n = Phi.shape
        data = 0.5 * n * np.log(beta / (2 * np.pi)) - 0.5 * beta * (
            np.sum((t - Phi @ m) ** 2) + np.trace(Phi @ S @ Phi.T)
        )
        minus_d = 0 if variant == "no_minus_d" else d
        logdet = np.linalg.slogdet(S)[0 if variant == "slogdet_sign" else 1]
        kl_q = 0.5 * (lam * np.trace(S) + lam * m @ m - minus_d - d * np.log(lam) - logdet)
        return data - kl_q

    expect_mistake(checks.check_elbo, fn, mistake, match)


def test_mean_field_beta_missing_in_m_and_parts():
    def fn(Phi, t, lam, beta):
        m, s2 = mean_field(Phi, t, lam, beta)
        return m / beta, s2

    expect_mistake(checks.check_mean_field, fn, "beta_missing_m", r"off by the factor beta = 5.0")
    checks.check_mean_field(fn, part="s2")  # the variances alone are right
    with pytest.raises(CheckFailed):
        checks.check_mean_field(fn, part="m")
    with pytest.raises(ValueError, match="part must be"):
        checks.check_mean_field(mean_field, part="x")


def test_elbo_estimate_sum_over_samples():
    def fn(m, L, Phi_b, t_b, N, lam, beta, eps):
        W = m + eps @ L.T
        ll = 0.5 * np.log(beta / (2 * np.pi)) - 0.5 * beta * (t_b[None, :] - W @ Phi_b.T) ** 2
        D, S = len(m), L @ L.T
        k = 0.5 * (lam * np.trace(S) + lam * m @ m - D - D * np.log(lam) - np.linalg.slogdet(S)[1])
        return N / len(t_b) * ll.sum() - k

    expect_mistake(checks.check_elbo_estimate, fn, "sum_over_samples", r"summed over the 7 weight samples")


@pytest.mark.parametrize(
    "check, fn",
    [
        (checks.check_elbo, elbo),
        (checks.check_mean_field, mean_field),
        (checks.check_elbo_estimate, elbo_estimate),
    ],
)
def test_hidden_inputs_pass_the_solution_silently(check, fn, capsys):
    check(fn, hidden=1016)
    assert capsys.readouterr().out == ""
