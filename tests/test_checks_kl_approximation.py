"""Tests for course_lib.checks.kl_approximation: A3, the KL approximation.

The solution passes and each typical mistake is named.
"""

from __future__ import annotations

import numpy as np
import pytest
from check_helpers import expect_mistake
from scipy import optimize

from course_lib import checks, kl
from course_lib.checks import CheckFailed


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


@pytest.mark.parametrize(
    "mistake, match",
    [
        ("sign", r"you return \+KL"),
        ("no_constant", "constant C"),
        ("log_alpha_not_half", r"1/2 log alpha"),
        ("no_abs", "absolute value"),
    ],
)
def test_neg_kl_mc_mistakes(mistake, match):
    expect_mistake(checks.check_neg_kl_mc, lambda la, eps: neg_kl_mc(la, eps, mistake), mistake, match)


def approx(la, k1, k2, k3, variant="ok"):
    sig = 1 / (1 + np.exp(-(k2 + k3 * la)))
    sp = np.log1p(np.exp(la)) if variant == "log_one_plus_alpha" else np.log1p(np.exp(-la))
    half = 1.0 if variant == "softplus_half" else 0.5
    return k1 * sig - half * sp + (k1 if variant == "plus_k1" else -k1)


def test_neg_kl_approx_passes_solution():
    checks.check_neg_kl_approx(approx)


@pytest.mark.parametrize(
    "mistake, match",
    [
        ("log_one_plus_alpha", r"not log\(1 \+ alpha\)"),
        ("softplus_half", "factor 1/2"),
        ("plus_k1", r"not \+k1"),
    ],
)
def test_neg_kl_approx_mistakes(mistake, match):
    expect_mistake(checks.check_neg_kl_approx, lambda la, *k: approx(la, *k, variant=mistake), mistake, match)


def fit(tied=False):
    grid = np.linspace(-10, 10, 2001)
    ref = kl.neg_kl(grid)
    sp = -0.5 * np.logaddexp(0, -grid)

    def residual(k):
        C = -k[0] if tied else -kl.C_INF
        return k[0] / (1 + np.exp(-(k[1] + k[2] * grid))) + sp + C - ref

    return optimize.least_squares(residual, [0.6, 1.8, 1.5]).x


def fit_constants(log_alpha, reference, variant="ok"):
    """The student's Task 3, calling the notebook's neg_kl_approx (a global of this module)."""

    def residual(k):
        if variant == "inline_no_half":
            model = k[0] / (1 + np.exp(-(k[1] + k[2] * log_alpha))) - np.logaddexp(0, -log_alpha) - k[0]
        else:
            model = neg_kl_approx(log_alpha, *k)
        shift = {"tied": 0.0, "c_sign": k[0] + kl.C_INF}.get(variant, k[0] - kl.C_INF)
        return model + shift - reference

    if variant == "published":
        return (kl.K1, kl.K2, kl.K3)
    if variant == "not_converged":
        return tuple(optimize.least_squares(residual, [kl.K1, kl.K2, kl.K3], max_nfev=1).x + 0.05)
    return tuple(
        optimize.least_squares(residual, [kl.K1, kl.K2, kl.K3], xtol=1e-14, ftol=1e-14, gtol=1e-14).x
    )


def neg_kl_approx(la, k1, k2, k3):  # a WRONG Task 2 (the 1/2 missing): Task 3 must still pass
    return k1 / (1 + np.exp(-(k2 + k3 * la))) - np.logaddexp(0, -la) - k1


def test_fit_passes_own_least_squares_even_with_a_wrong_task_2(capsys):
    with pytest.raises(CheckFailed):
        checks.check_neg_kl_approx(neg_kl_approx)
    k = checks.check_fit(fit_constants)
    assert capsys.readouterr().out.startswith("OK - ")
    np.testing.assert_allclose(k, fit(), atol=1e-4)
    assert neg_kl_approx.__name__ == "neg_kl_approx"  # the global is restored after the check
    assert globals()["neg_kl_approx"] is neg_kl_approx


def test_fit_hidden_grid_passes_and_prints_nothing(capsys):
    checks.check_fit(fit_constants, grid=(-8.0, 6.0, 1401), hidden=1)
    assert capsys.readouterr().out == ""


def test_fit_hard_coded_constants_fail_the_hidden_grid():
    k = tuple(fit())
    with pytest.raises(CheckFailed) as info:
        checks.check_fit(lambda la, ref: k, grid=(-8.0, 6.0, 1401), hidden=1)
    assert info.value.mistake == "wrong"


@pytest.mark.parametrize(
    "variant, mistake, match",
    [
        ("published", "published", "published constants"),
        ("tied", "tied", "tied C = -k1"),
        ("c_sign", "c_sign", r"not \+0.6352"),
        ("inline_no_half", "wrong_approx", "factor 1/2 .* is missing"),
        ("not_converged", "wrong", r"miss the reference by up to"),
    ],
)
def test_fit_mistakes(variant, mistake, match):
    expect_mistake(checks.check_fit, lambda la, ref: fit_constants(la, ref, variant), mistake, match)


def test_fit_message_does_not_give_away_the_reference_constants():
    with pytest.raises(CheckFailed) as info:
        checks.check_fit(lambda la, ref: (0.5, 1.5, 1.5))
    ref = kl.fit_molchanov().constants
    for value in ref:
        for digits in (2, 3, 4):
            assert f"{value:.{digits}f}" not in str(info.value), str(info.value)


def test_fit_rejects_constants_and_wrong_length():
    expect_mistake(checks.check_fit, (1.0, 2.0, 3.0), "type", "pass your function fit_constants")
    expect_mistake(checks.check_fit, lambda la, ref: (1.0, 2.0), "shape", "three constants")


@pytest.mark.parametrize(
    "variant, mistake, match",
    [
        ("plus_c", "plus_constant", r"subtract kl.C_INF"),
        ("alpha_not_sqrt", "alpha_not_sqrt", r"eps is multiplied by alpha.*sqrt\(alpha\) = exp"),
    ],
)
def test_neg_kl_mc_more_mistakes(variant, mistake, match):
    def fn(la, eps):
        scale = np.exp(la) if variant == "alpha_not_sqrt" else np.exp(0.5 * la)
        e_log = np.log(np.abs(1 + scale[:, None] * eps)).mean(axis=1)
        return 0.5 * la - e_log + (kl.C_INF if variant == "plus_c" else -kl.C_INF)

    expect_mistake(checks.check_neg_kl_mc, fn, mistake, match)


def test_neg_kl_approx_alpha_in_sigmoid():
    expect_mistake(
        checks.check_neg_kl_approx,
        lambda la, k1, k2, k3: k1 / (1 + np.exp(-(k2 + k3 * np.exp(la)))) - 0.5 * np.logaddexp(0, -la) - k1,
        "alpha_in_sigmoid",
        "sigmoid takes log alpha",
    )


@pytest.mark.parametrize(
    "check, fn",
    [
        (checks.check_neg_kl_mc, neg_kl_mc),
        (checks.check_neg_kl_approx, approx),
    ],
)
def test_hidden_inputs_pass_the_solution_silently(check, fn, capsys):
    check(fn, hidden=1016)
    assert capsys.readouterr().out == ""
