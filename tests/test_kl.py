"""Tests for course_lib.kl: the variational-dropout KL term and its approximations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from course_lib import kl


def test_molchanov_formula_by_hand():
    la = np.array([-3.0, 0.0, 2.5])
    expected = kl.K1 / (1 + np.exp(-(kl.K2 + kl.K3 * la))) - 0.5 * np.log(1 + 1 / np.exp(la)) - kl.K1
    np.testing.assert_allclose(kl.neg_kl_molchanov(la), expected, rtol=1e-12, atol=1e-14)


def test_molchanov_numpy_and_torch_agree_and_are_finite_on_wide_range():
    la = np.linspace(-20, 20, 401)
    out_np = kl.neg_kl_molchanov(la)
    out_t = kl.neg_kl_molchanov(torch.tensor(la, dtype=torch.float64))
    assert isinstance(out_t, torch.Tensor)
    assert np.all(np.isfinite(out_np))
    np.testing.assert_allclose(out_t.numpy(), out_np, rtol=1e-12, atol=1e-14)
    # -KL -> -0.5 log(1/alpha) - k1 + k1 sigma(.) for small alpha, -> 0 for large alpha
    assert abs(out_np[-1]) < 1e-8
    assert out_np[0] == pytest.approx(-10.0 - kl.K1 + kl.K1 / (1 + np.exp(-(kl.K2 - 20 * kl.K3))), rel=1e-9)


def test_molchanov_float32_extremes_are_finite():
    la = torch.tensor([-20.0, -10.0, 0.0, 10.0, 20.0], dtype=torch.float32)
    out = kl.neg_kl_molchanov(la)
    assert torch.isfinite(out).all()
    assert out.dtype == torch.float32


def test_molchanov_torch_gradients_flow():
    la = torch.linspace(-20, 20, 41, dtype=torch.float64, requires_grad=True)
    kl.neg_kl_molchanov(la).sum().backward()
    assert la.grad is not None and torch.isfinite(la.grad).all()
    # -KL increases with alpha: the gradient is positive everywhere
    assert (la.grad > 0).all()
    # compare with a finite difference
    check = torch.tensor([0.3], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(kl.neg_kl_molchanov, (check,))


@pytest.mark.parametrize("bad", [np.array([0.0, np.nan]), np.array([np.inf]), [-np.inf, 1.0]])
def test_molchanov_rejects_nan_inf_numpy(bad):
    with pytest.raises(ValueError, match="NaN or inf.*clip it"):
        kl.neg_kl_molchanov(bad)


def test_molchanov_rejects_nan_inf_torch():
    with pytest.raises(ValueError, match="NaN or inf"):
        kl.neg_kl_molchanov(torch.tensor([0.0, float("nan")]))
    with pytest.raises(ValueError, match="NaN or inf"):
        kl.neg_kl_molchanov(torch.tensor([float("inf")], requires_grad=True))


def test_molchanov_rejects_empty():
    with pytest.raises(ValueError, match="empty"):
        kl.neg_kl_molchanov(np.array([]))
    with pytest.raises(ValueError, match="empty"):
        kl.neg_kl_molchanov(torch.empty(0))


def test_molchanov_rejects_non_numeric_and_integer_tensors():
    with pytest.raises(TypeError, match="must be a number"):
        kl.neg_kl_molchanov("abc")
    with pytest.raises(TypeError, match="floating-point tensor"):
        kl.neg_kl_molchanov(torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="k2 must be a finite number"):
        kl.neg_kl_molchanov(0.0, k2=float("nan"))


# ---------------------------------------------------------------------------------------
# The reference
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("log_alpha", [-8.0, -3.0, -1.0, 0.0, 0.7, 2.0, 5.0, 10.0])
def test_reference_matches_exact_series(log_alpha):
    assert float(kl.neg_kl(log_alpha)) == pytest.approx(float(kl.neg_kl_series(log_alpha)), abs=1e-9)


def test_series_matches_known_values_and_rejects_tiny_alpha():
    # alpha -> infinity: the series starts at E log chi2_1 = log 2 + digamma(1/2) = -2 C_INF, so -KL -> 0
    assert abs(float(kl.neg_kl_series(25.0))) < 1e-10
    assert kl.neg_kl_series([[0.0, 1.0]]).shape == (1, 2)
    with pytest.raises(ValueError, match="log_alpha >= -12.*use neg_kl"):
        kl.neg_kl_series(-13.0)


def test_reference_limits():
    # alpha -> infinity: -KL -> 0 (the normalisation); alpha -> 0: 1/2 log alpha - C_INF + alpha/2
    assert abs(float(kl.neg_kl(20.0))) < 1e-8
    for la in (-20.0, -15.0):
        assert float(kl.neg_kl(la)) == pytest.approx(0.5 * la - kl.C_INF + 0.5 * np.exp(la), abs=1e-9)
    assert kl.C_INF == pytest.approx(0.6351814227307391, abs=1e-15)


def test_reference_is_vectorized_monotone_and_keeps_shape():
    la = np.linspace(-20, 20, 81).reshape(9, 9)
    out = kl.neg_kl(la)
    assert out.shape == (9, 9)
    assert np.all(np.diff(out.ravel()) > 0)  # -KL increases with alpha
    assert np.all(out < 0)
    np.testing.assert_array_equal(kl.neg_kl(torch.tensor(la)), out)


def test_mc_agrees_with_reference_within_its_error():
    la = np.array([-6.0, -2.0, 0.0, 2.0, 6.0])
    est = kl.neg_kl_mc(la, n_samples=200_000, seed=1)
    z = (est.mean - kl.neg_kl(la)) / est.std_error
    assert np.all(np.abs(z) < 4.0), z
    assert est.n_samples == 200_000 and est.mean.shape == la.shape


def test_mc_error_shrinks_like_one_over_sqrt_n():
    small = kl.neg_kl_mc(0.0, n_samples=1_000, seed=0).std_error
    large = kl.neg_kl_mc(0.0, n_samples=100_000, seed=0).std_error
    assert float(small / large) == pytest.approx(10.0, rel=0.15)


def test_mc_is_reproducible_with_seed():
    a = kl.neg_kl_mc([0.0, 1.0], n_samples=500, seed=3)
    b = kl.neg_kl_mc([0.0, 1.0], n_samples=500, seed=3)
    c = kl.neg_kl_mc([0.0, 1.0], n_samples=500, seed=4)
    np.testing.assert_array_equal(a.mean, b.mean)
    assert not np.array_equal(a.mean, c.mean)


# ---------------------------------------------------------------------------------------
# theta-independence
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("log_alpha", [-8.0, -1.0, 0.0, 3.0, 8.0])
def test_kl_does_not_depend_on_theta(log_alpha):
    theta = np.array([-1e6, -3.0, 1e-8, 1e-3, 0.5, 1.0, 1e3, 1e8])
    direct = kl.neg_kl_w_space(theta, log_alpha)
    assert np.ptp(direct) < 1e-10
    # and it equals the alpha-only reference up to the prior's constant 1/2 log(2 pi e) + C_INF
    expected = kl.neg_kl(log_alpha) + 0.5 * np.log(2 * np.pi * np.e) + kl.C_INF
    np.testing.assert_allclose(direct, expected, atol=1e-10)


def test_w_space_broadcasts():
    out = kl.neg_kl_w_space(np.array([[1.0], [100.0]]), np.array([-1.0, 0.0, 1.0]))
    assert out.shape == (2, 3)
    np.testing.assert_allclose(out[0], out[1], atol=1e-10)


# ---------------------------------------------------------------------------------------
# The approximations and the fits
# ---------------------------------------------------------------------------------------


def test_paper_procedure_fit_reproduces_published_constants():
    fit = kl.fit_molchanov()
    assert not fit.tied and fit.C == pytest.approx(-kl.C_INF)
    rel = np.abs(fit.relative_difference())
    assert np.all(rel < 0.005), rel  # the bar: within 0.5 %
    assert np.all(rel < 0.002), rel  # what the procedure actually achieves: within 0.2 %
    assert fit.max_abs_error < 0.0095
    np.testing.assert_allclose(fit(fit.log_alpha) - fit.reference, fit.residual, atol=1e-12)


def test_tied_fit_moves_constants_and_lowers_error():
    tied = kl.fit_molchanov(tied=True)
    assert tied.tied and tied.C == pytest.approx(-tied.k1)
    rel = tied.relative_difference()
    assert 0.012 < abs(rel[2]) < 0.022  # k3 moves by about 1.7 %
    assert np.max(np.abs(rel)) == pytest.approx(abs(rel[2]))
    sse_pub, max_pub = kl.molchanov_errors(kl.K1, kl.K2, kl.K3, tied=True)
    assert max_pub == pytest.approx(0.0094, abs=0.0002)
    assert tied.sse < 0.7 * sse_pub  # about 40 % lower under the same form
    assert tied.max_abs_error < max_pub


def test_fit_with_mc_reference_is_close_to_quadrature_fit():
    mc = kl.fit_molchanov(n_grid=201, n_samples=20_000, seed=0)
    quad = kl.fit_molchanov(n_grid=201)
    np.testing.assert_allclose(mc.constants, quad.constants, rtol=0.05)


def test_molchanov_default_is_close_to_reference():
    la = np.linspace(-10, 10, 201)
    assert np.max(np.abs(kl.neg_kl_molchanov(la) - kl.neg_kl(la))) < 0.0095


def test_kingma_cubic_good_below_one_and_diverges_beyond():
    la = np.log((np.arange(1, 1001) - 0.5) / 1000)
    err = kl.neg_kl_kingma(la) - kl.neg_kl(la)
    assert np.max(np.abs(err)) < 0.035  # largest at alpha -> 0: C_KINGMA vs -C_INF
    assert abs(float(kl.neg_kl_kingma(np.log(10.0)) - kl.neg_kl(np.log(10.0)))) > 100
    assert kl.kingma_constant() == pytest.approx(kl.C_KINGMA, abs=1e-5)


def test_kingma_torch_gradients():
    la = torch.tensor([-3.0, -1.0, 0.0], dtype=torch.float64, requires_grad=True)
    kl.neg_kl_kingma(la).sum().backward()
    a = torch.exp(la.detach())
    expected = 0.5 + a * (kl.C1 + 2 * kl.C2 * a + 3 * kl.C3 * a**2)
    torch.testing.assert_close(la.grad, expected)


# ---------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("func", [kl.neg_kl, kl.neg_kl_kingma, lambda x: kl.neg_kl_mc(x, 10)])
def test_all_functions_reject_nan_inf_and_empty(func):
    with pytest.raises(ValueError, match="NaN or inf"):
        func(np.array([0.0, np.nan]))
    with pytest.raises(ValueError, match="NaN or inf"):
        func([np.inf])
    with pytest.raises(ValueError, match="empty"):
        func([])


def test_w_space_bad_input():
    with pytest.raises(ValueError, match="theta must be non-zero"):
        kl.neg_kl_w_space(0.0, 0.0)
    with pytest.raises(ValueError, match="theta contains NaN or inf"):
        kl.neg_kl_w_space(np.nan, 0.0)
    with pytest.raises(ValueError, match="do not broadcast"):
        kl.neg_kl_w_space(np.ones(2), np.zeros(3))


def test_mc_bad_arguments():
    with pytest.raises(ValueError, match="n_samples must be an integer >= 2, got 1; use at least 2 samples"):
        kl.neg_kl_mc(0.0, n_samples=1)
    with pytest.raises(TypeError, match="n_samples must be an integer"):
        kl.neg_kl_mc(0.0, n_samples=10.5)
    with pytest.raises(ValueError, match="seed must be a non-negative integer, got -1"):
        kl.neg_kl_mc(0.0, seed=-1)


def test_fit_bad_arguments():
    with pytest.raises(ValueError, match="fit range is empty"):
        kl.fit_molchanov(log_alpha_min=3.0, log_alpha_max=-3.0)
    with pytest.raises(ValueError, match="log_alpha_max must be a finite number"):
        kl.fit_molchanov(log_alpha_max=np.inf)
    with pytest.raises(ValueError, match="n_grid must be an integer >= 4, got 3; a fit of 3 constants"):
        kl.fit_molchanov(n_grid=3)
    with pytest.raises(TypeError, match="tied must be True or False"):
        kl.fit_molchanov(tied="yes")
    with pytest.raises(ValueError, match="constant must be a finite number"):
        kl.neg_kl_kingma(0.0, constant=np.nan)
